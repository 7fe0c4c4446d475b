"""Chapter 02, many images at once (notebooks/02-many-images.ipynb): the article's main experiment.

``store_many`` of the first n images and ``read_many(n)`` per method and cutoff n, into the ``many_images``
results table, and the same at one cutoff with writes flushed and not into ``durability``; the tables,
sentences and figures that show them (the article's timing figures, with error bars and cost per image).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from helpers import stores
from helpers.core.measure import check_repeats, format_bytes, format_seconds
from helpers.report import results
from helpers.report.durability import durability_pair
from helpers.report.measuring import (
    check_space_for_batches,
    checked_cutoffs,
    checked_methods,
    measure_many,
    progress_bar,
    unpack,
)
from helpers.report.style import (
    SECONDS_LABEL,
    legend,
    lines_per_method_and_cache,
    log_log_axes,
    method_label,
    ordered_methods,
    save,
    select,
    style_key,
    timing_line,
)
from helpers.report.text import (
    COLD_CACHE_CAUTION,
    NO_COLD_READS,
    largest_cutoff,
    per_image,
    pick,
    timed,
    times,
)

EXPERIMENT = "many_images"
DURABILITY_EXPERIMENT = "durability"
#: The chapter's folder inside ``work_dir``: one store per method below it.
WORK_FOLDER = "many-images"
DURABILITY_MAX_CUTOFF = 1000
#: Fastest-to-slowest ratio of a measurement's runs above which the report explains the spread.
SPREAD_WORTH_EXPLAINING = 1.5
OPERATION_TITLES = {
    "store_many": "Storing many images",
    "read_many": "Reading many images",
}


# -- the experiment --------------------------------------------------------------------------------------
def run_many(
    images: np.ndarray | object,
    labels: np.ndarray | None,
    methods: Sequence[str] | None,
    cutoffs: Sequence[int],
    *,
    repeats: int,
    cold_cache: bool,
    work_dir: str | os.PathLike[str],
    durable: Sequence[bool] | bool = (False,),
    floor: bool = True,
    dataset: str = "",
    progress: bool = True,
) -> pd.DataFrame:
    """Time ``store_many`` of the first n images and ``read_many(n)``, per method, cutoff n and durability.

    For each: the store is cleared before every timed write (untimed), the batch read back and compared,
    its disk usage recorded on the store rows, then ``read_many(n)`` timed warm (after an untimed read)
    and, if ``cold_cache``, cold (the store's files evicted before every run). ``floor=True`` adds the
    ``npy`` reference floor. A cutoff larger than the dataset is an error: load a larger one with
    ``helpers.datasets.load(n=...)``, which repeats the images as the article does.
    """
    images, labels, dataset = unpack(images, labels, dataset)
    methods = checked_methods(methods, floor)
    check_repeats(repeats)
    cutoffs = checked_cutoffs(cutoffs, len(images))
    settings = [bool(durable)] if isinstance(durable, (bool, np.bool_)) else [bool(d) for d in durable]
    if not settings:
        raise ValueError("durable must be True, False, or a non-empty list of them")

    check_space_for_batches(work_dir, methods, cutoffs, images)
    steps = [(method, n) for method in methods for n in cutoffs]
    rows: list[dict] = []
    for method, n in progress_bar(steps, progress):
        batch, batch_labels = images[:n], labels[:n]
        for setting in settings:
            store = stores.open_store(method, Path(work_dir) / method, durable=setting)
            try:
                rows += measure_many(store, batch, batch_labels, repeats, cold_cache, dataset, experiment=EXPERIMENT)
            finally:
                store.close()
    return pd.DataFrame(rows, columns=results.COLUMNS)


def measure(data: object, methods: Sequence[str] | None, cutoffs: Sequence[int], *, repeats: int,
            cold_cache: bool, work_dir: str | os.PathLike[str], results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The main experiment, writes not flushed, into a fresh ``many_images`` table; its summary."""
    results.reset(results_dir, EXPERIMENT)
    rows = run_many(data, None, methods, cutoffs, repeats=repeats, cold_cache=cold_cache,
                    work_dir=Path(work_dir) / WORK_FOLDER, durable=(False,), floor=True)
    results.append_rows(results_dir, EXPERIMENT, rows)
    return results.read_summary(results_dir, EXPERIMENT)


def durability_cutoff(cutoffs: Sequence[int]) -> int:
    """The cutoff the durable-write comparison uses: the largest up to 1,000 (flushing is slow)."""
    small = [int(n) for n in cutoffs if int(n) <= DURABILITY_MAX_CUTOFF]
    return max(small) if small else min(int(n) for n in cutoffs)


def measure_durability(data: object, methods: Sequence[str] | None, cutoffs: Sequence[int], *, repeats: int,
                       work_dir: str | os.PathLike[str], results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """``store_many`` at ``durability_cutoff(cutoffs)`` with writes flushed and not, warm reads only, into a
    fresh ``durability`` table; its summary."""
    results.reset(results_dir, DURABILITY_EXPERIMENT)
    rows = run_many(data, None, methods, [durability_cutoff(cutoffs)], repeats=repeats, cold_cache=False,
                    work_dir=Path(work_dir) / WORK_FOLDER, durable=(False, True), floor=True)
    results.append_rows(results_dir, DURABILITY_EXPERIMENT, rows)
    return results.read_summary(results_dir, DURABILITY_EXPERIMENT)


# -- tables and sentences --------------------------------------------------------------------------------
def many_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per cutoff and method: store and read times (median, fastest-slowest), per-image read cost, floor ratio."""
    rows = []
    for n in sorted(set(summary["n_images"])):
        for method in ordered_methods(summary["method"]):
            stored = pick(summary, method, "store_many", n)
            if stored is None:
                continue
            row = {"images": f"{n:,}", "method": method_label(method), "store": timed(stored)}
            for cache in ("warm", "cold"):
                read = pick(summary, method, "read_many", n, cache)
                if read is not None:
                    row[f"read, {cache}"] = timed(read)
            warm = pick(summary, method, "read_many", n, "warm")
            if warm is not None:
                row["read per image (warm)"] = per_image(warm["per_image"])
                row["read vs floor (warm)"] = times(warm["ratio_to_floor"])
            rows.append(row)
    return pd.DataFrame(rows).set_index(["images", "method"])


def durability_table(summary: pd.DataFrame) -> pd.DataFrame:
    """store_many with writes left to the OS and with writes flushed, per method, and the cost of flushing."""
    rows = []
    for n in sorted(set(summary["n_images"])):
        for method in ordered_methods(summary["method"]):
            pair = durability_pair(summary, method, n)
            if pair is None:
                continue
            relaxed, flushed = pair
            rows.append({"images": f"{n:,}", "method": method_label(method),
                         "store, not flushed": timed(relaxed), "store, flushed (durable)": timed(flushed),
                         "cost of flushing": times(flushed["median"] / relaxed["median"])})
    return pd.DataFrame(rows).set_index(["images", "method"])


def file_system_note(environment_info: dict) -> str:
    """A caution when the work folder's file system makes writing many files slower than usual, else ""."""
    if environment_info.get("filesystem_type") != "ext4" or environment_info.get("filesystem_journal") is not False:
        return ""
    return (
        "**Caution:** the work folder is on ext4 *without a journal* "
        f"({environment_info.get('filesystem_device', 'unknown device')}). There, creating a file passes over "
        "every inode freed in the last minute or so, and each timed write above came just after the store's "
        "previous batch was deleted. So PNG writes, thousands of files each, took longer here than they would "
        "on a journaled ext4 or with the deleted files a few minutes old; the other methods write a handful "
        "of files and are not affected. `benchmarks/performance.py` measures the PNG store both ways."
    )


def cache_note(summary: pd.DataFrame, cold_cache_possible: object = True) -> str:
    """How much slower reads were with the files evicted from the page cache, at the largest cutoff."""
    n = largest_cutoff(summary)
    parts = []
    for method in ordered_methods(summary["method"]):
        warm = pick(summary, method, "read_many", n, "warm")
        cold = pick(summary, method, "read_many", n, "cold")
        if warm is not None and cold is not None:
            parts.append(f"{method_label(method)} {times(cold['median'] / warm['median'])}")
    if not parts:
        return NO_COLD_READS
    text = (f"At {n:,} images, a cold read took this many times the warm read: " + ", ".join(parts) + ".")
    if cold_cache_possible is False:
        text += COLD_CACHE_CAUTION
    return text


def spread_note(summary: pd.DataFrame) -> str:
    """How far the runs of each ``store_many`` at the largest cutoff spread, and what that spread is.

    Measured for LMDB (issue 10): over repeats of 100,000 images, the steps LMDB's own code takes besides
    copying the values (fallocate of the map, opening, truncating and closing the environment) took a
    few milliseconds each and barely varied, map growth never happened, and the system's dirty and
    writeback pages before a run did not predict its time. The whole spread was in the copy into the
    memory map: the kernel's time for giving a new file fresh page-cache pages, and the CPU time left by
    other processes. So the sentence is computed from this run's numbers and says the spread is the
    machine's.
    """
    rows = summary[(summary["operation"] == "store_many") & (summary["cache"] == "")]
    if rows.empty:
        return ""
    n = int(rows["n_images"].max())
    rows = rows[(rows["n_images"] == n) & (rows["runs"] > 1)]
    if "durable" in rows:
        rows = rows[~rows["durable"].astype(bool)]
    spreads = []
    for method in ordered_methods(rows["method"].unique()):
        row = rows[rows["method"] == method].iloc[0]
        if row["min"] > 0:
            spreads.append((row["max"] / row["min"], method, row))
    if not spreads:
        return ""
    widest = max(spreads, key=lambda item: item[0])
    described = "; ".join(
        f"{method_label(method)} {format_seconds(row['min'])} to {format_seconds(row['max'])} "
        f"({times(ratio)})"
        for ratio, method, row in spreads
    )
    if widest[0] < SPREAD_WORTH_EXPLAINING:
        return (
            f"**Spread between runs:** writing {n:,} images, each method's runs stayed within "
            f"{times(widest[0])} of each other ({described})."
        )
    written = widest[2].get("bytes_allocated", float("nan"))
    size = f" ({format_bytes(written)} here)" if np.isfinite(written) else ""
    return (
        f"**Spread between runs:** writing {n:,} images, the fastest and slowest runs of each method were "
        f"{described}. The widest, {method_label(widest[1])} at {times(widest[0])}, is this machine's, not "
        "the method's: every run wrote the same bytes into an emptied store, and the steps the code takes "
        "around the copy (for LMDB: reserving, opening, truncating and closing its file) take milliseconds "
        "and vary little. What varies is the operating system's share: handing the new batch fresh page "
        f"cache{size} while the previous batch's pages are freed, and the CPU time other processes leave. "
        "Compare methods by their medians; the range says how far one run on this machine can stray."
    )


# -- figures ---------------------------------------------------------------------------------------------
def timing_plot(
    summary: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    operation: str = "store_many",
    *,
    log: bool = False,
    durable: bool | None = None,
    name: str | None = None,
) -> Figure:
    """The article's timing figure for ``operation`` against the number of images, linear or log-log.

    Reads show warm cache as solid lines and cold cache as dashed ones. Saved as
    ``<operation>_linear`` or ``<operation>_log`` unless ``name`` is given.
    """
    rows = select(summary, operation, durable=durable)
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    caches = lines_per_method_and_cache(axes, rows, ", {} cache")
    if log:
        log_log_axes(axes, rows["n_images"])
    else:
        axes.set_xlabel("Number of images")
        axes.grid(True, alpha=0.3)
    title = OPERATION_TITLES.get(operation, operation) + (" (log-log)" if log else "")
    if caches == ["warm"] or caches == ["cold"]:
        title += f", {caches[0]} cache"
    axes.set_title(title)
    axes.set_ylabel(SECONDS_LABEL)
    legend(axes)
    save(figure, figures_dir, name or f"{operation}_{'log' if log else 'linear'}")
    return figure


def store_and_read_plot(
    summary: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    *,
    cache: str = "warm",
    durable: bool | None = None,
    name: str = "store_and_read",
) -> Figure:
    """The article's combined figure: storing (solid) and reading (dotted) many images, log-log."""
    stored = select(summary, "store_many", durable=durable)
    read = select(summary, "read_many", cache=cache, durable=durable)
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    for method in ordered_methods([*stored["method"], *read["method"]]):
        labelled = False
        for rows, style in ((stored, "-"), (read, ":")):
            part = rows[rows["method"] == method]
            if not part.empty:
                timing_line(axes, part, method, linestyle=style, label=None if labelled else method_label(method))
                labelled = True
    style_key(axes, {"store": "-", f"read ({cache} cache)": ":"})
    log_log_axes(axes, stored["n_images"])
    axes.set_title(f"Storing (solid) and reading (dotted, {cache} cache) many images")
    axes.set_ylabel(SECONDS_LABEL)
    legend(axes)
    save(figure, figures_dir, name)
    return figure


def per_image_plot(
    summary: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    *,
    durable: bool | None = None,
    name: str = "per_image_cost",
) -> Figure:
    """Microseconds per image for storing and reading, against the number of images (log-log)."""
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    store_axes, read_axes = figure.subplots(1, 2, sharey=True)
    for axes, operation in ((store_axes, "store_many"), (read_axes, "read_many")):
        rows = select(summary, operation, durable=durable)
        lines_per_method_and_cache(axes, rows, ", {}", per_image=True, unit=1e6)
        log_log_axes(axes, rows["n_images"])
        axes.set_title(f"{OPERATION_TITLES[operation]}: cost per image")
    legend(read_axes, fontsize="x-small")  # the same methods and styles in both panels
    store_axes.set_ylabel("Microseconds per image (median; bars: min-max)")
    save(figure, figures_dir, name)
    return figure
