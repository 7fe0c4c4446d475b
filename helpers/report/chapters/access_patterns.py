"""Chapter 04, access patterns (notebooks/04-access-patterns.ipynb): how a training loop reads.

Random single images, shuffled epochs in mini-batches (in this process and with loader workers), warm and
cold, into the ``access_patterns`` results table; the table, sentences and figures that show them beside
the many-images chapter's sequential reads. The advice these numbers give is
``helpers.report.read_patterns.access_recommendations``, which the conclusions repeat.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from helpers import stores
from helpers.core.errors import CorruptStoreError
from helpers.core.measure import check_repeats, time_call
from helpers.loader import epoch_order, read_epoch
from helpers.report import results
from helpers.report.measuring import (
    caches,
    check_space_for_batches,
    checked_methods,
    progress_bar,
    time_read,
    timing_rows,
    unpack,
    verify_round_trip,
)
from helpers.report.read_patterns import (
    ACCESS_PATTERNS,
    access_row,
    epoch_size,
    pattern_rows,
    rate,
    rate_text,
)
from helpers.report.style import caches_of, method_color, method_label, ordered_methods, save, spread
from helpers.report.text import COLD_CACHE_CAUTION, NO_COLD_READS, per_image, pick, times
from helpers.stores import FLOOR

EXPERIMENT = "access_patterns"
#: The chapter's folder inside ``work_dir``: one store per method below it.
WORK_FOLDER = "access-patterns"
#: Single images read at random positions per timed run (each a cold disk read when cold).
RANDOM_READS = 1000
#: Mini-batches a cold epoch run reads: the start of a shuffled epoch, every image of it from the disk, so
#: its rate is a whole cold epoch's without the minutes 100,000 cold PNG files take.
COLD_EPOCH_BATCHES = 20


# -- the experiment --------------------------------------------------------------------------------------
def run_access(
    images: np.ndarray | object,
    labels: np.ndarray | None,
    methods: Sequence[str] | None,
    *,
    batch_size: int = 256,
    workers: Sequence[int] = (1, 2),
    repeats: int,
    cold_cache: bool,
    work_dir: str | os.PathLike[str],
    random_reads: int = RANDOM_READS,
    floor: bool = True,
    dataset: str = "",
    progress: bool = True,
) -> pd.DataFrame:
    """Time how a training loop reads: random single images, and shuffled epochs in mini-batches.

    Each method holds all of ``images`` as one batch in ``work_dir/<method>`` (written and verified unless
    an earlier run left exactly these images there). Then, per method: ``read_random`` (``random_reads``
    images at random positions, one ``read_one`` each) warm and, if ``cold_cache``, cold (files evicted
    and the batch reopened before each run, untimed); ``read_epoch`` (one epoch of
    ``helpers.loader.batches`` with ``batch_size``) warm in this process, then with each number of
    ``workers`` (rows with ``workers`` > 0), and cold: the first ``COLD_EPOCH_BATCHES`` mini-batches of the
    epoch (``n_images`` says how many images that is). Cold runs skip the untimed first run (every cold
    run starts cold anyway); worker runs have one, which starts the persistent workers the timed epochs use.
    """
    images, labels, dataset = unpack(images, labels, dataset)
    methods = checked_methods(methods, floor)
    check_repeats(repeats)
    worker_counts = [int(w) for w in workers]
    if any(w < 1 for w in worker_counts):
        raise ValueError(f"workers must be positive numbers of processes, got {list(workers)}")
    n = len(images)
    check_space_for_batches(work_dir, methods, [n], images)
    sample = np.random.default_rng(0).integers(0, n, min(random_reads, n)).tolist()
    rows: list[dict] = []
    for method, _ in progress_bar([(method, n) for method in methods], progress):
        store = stores.open_store(method, Path(work_dir) / method)
        try:
            holds_batch(store, images, labels)
            common = dict(experiment=EXPERIMENT, method=method, durable=False, dataset=dataset)
            rows += measure_patterns(store, n, sample, batch_size, repeats, cold_cache, common)
            for worker_count in worker_counts:
                timing = time_call(lambda: read_epoch(store, batch_size, workers=worker_count), repeats=repeats,
                                   warmup=True)
                rows += timing_rows(timing, operation="read_epoch", n_images=n, cache="warm", usage=None,
                                    workers=worker_count, **common)
        finally:
            store.close()
    return pd.DataFrame(rows, columns=results.COLUMNS)


def measure_patterns(store: stores.Store, n: int, sample: list[int], batch_size: int, repeats: int,
                     cold_cache: bool, common: dict) -> list[dict]:
    """Rows of ``read_random`` (the ``sample`` positions, one ``read_one`` each) and ``read_epoch`` in this
    process, warm and, if ``cold_cache``, cold (a cold epoch: its first ``COLD_EPOCH_BATCHES`` mini-batches)."""
    def read_random() -> None:
        read_one = store.batch_reader().read_one
        for index in sample:
            read_one(index)

    cold_count = min(n, COLD_EPOCH_BATCHES * batch_size)
    cold_epoch = epoch_order(n, seed=0)[:cold_count]  # the positions a cold epoch run reads
    rows = []
    for cache in caches(cold_cache):
        epoch_count = n if cache == "warm" else cold_count
        limit = None if cache == "warm" else COLD_EPOCH_BATCHES
        for operation, read, count, positions in (
            ("read_random", read_random, len(sample), sample),
            ("read_epoch", lambda: read_epoch(store, batch_size, limit=limit), epoch_count, cold_epoch),
        ):
            timing = time_read(store, read, cache, repeats, reopen=True, cold_warmup=False,
                               files=store.files_holding(positions))
            rows += timing_rows(timing, operation=operation, n_images=count, cache=cache, usage=None,
                                workers=0, **common)
    return rows


def holds_batch(store: stores.Store, images: np.ndarray, labels: np.ndarray) -> None:
    """Make ``store``'s batch exactly ``images, labels``: kept if it already is, written (and checked) if not."""
    if len(store) == len(images):
        try:
            verify_round_trip(store, images, labels, write=False)
            return
        except CorruptStoreError:
            pass
    verify_round_trip(store, images, labels)


def measure(data: object, methods: Sequence[str] | None, *, batch_size: int, workers: Sequence[int],
            repeats: int, cold_cache: bool, work_dir: str | os.PathLike[str],
            results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The chapter's experiment on the whole of ``data`` into a fresh ``access_patterns`` table; its summary."""
    results.reset(results_dir, EXPERIMENT)
    rows = run_access(data, None, methods, batch_size=batch_size, workers=workers, repeats=repeats,
                      cold_cache=cold_cache, work_dir=Path(work_dir) / WORK_FOLDER)
    results.append_rows(results_dir, EXPERIMENT, rows)
    return results.read_summary(results_dir, EXPERIMENT)


# -- tables and sentences --------------------------------------------------------------------------------
def access_table(access: pd.DataFrame, many: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per method: random single reads (per image), shuffled epochs (images/s, warm and cold, then
    with each number of loader workers and the speed-up over reading in one process), and notebook 02's
    sequential ``read_many`` of as many images (images/s) beside them."""
    n = epoch_size(access)
    sequential = pattern_rows(access, "read_many", many)
    worker_counts = sorted(w for w in set(access["workers"]) if w > 0)
    rows = []
    for method in ordered_methods(access["method"]):
        row = {"method": method_label(method)}
        for cache in ("warm", "cold"):
            single = access_row(access, method, "read_random", cache)
            row[f"random image ({cache})"] = per_image(single["per_image"]) if single is not None else "n/a"
        for cache in ("warm", "cold"):
            row[f"shuffled epoch ({cache})"] = rate_text(rate(access_row(access, method, "read_epoch", cache)))
        alone = rate(access_row(access, method, "read_epoch", "warm"))
        for workers in worker_counts:
            with_workers = rate(access_row(access, method, "read_epoch", "warm", workers))
            row[f"epoch, {workers} worker{'s' if workers > 1 else ''} (speed-up)"] = (
                f"{rate_text(with_workers)} ({times(with_workers / alone)})" if np.isfinite(with_workers) else "n/a")
        for cache in ("warm", "cold"):
            row[f"sequential read_many ({cache})"] = rate_text(
                rate(pick(sequential, method, "read_many", n, cache)) if not sequential.empty else float("nan"))
        rows.append(row)
    table = pd.DataFrame(rows).set_index("method")
    table.columns.name = f"{n:,} images"
    return table


def access_cache_note(access: pd.DataFrame, cold_cache_possible: object = True) -> str:
    """How much a cold page cache slowed each read pattern (time per image, cold over warm), and a caution
    when the page cache could not be emptied."""
    parts = []
    for method in ordered_methods(access["method"]):
        ratios = []
        for operation, what in (("read_random", "random images"), ("read_epoch", "epoch")):
            warm, cold = (access_row(access, method, operation, cache) for cache in ("warm", "cold"))
            if warm is not None and cold is not None:
                ratios.append(f"{what} {times(cold['per_image'] / warm['per_image'])}")  # a cold epoch reads fewer
        if ratios:
            parts.append(f"{method_label(method)} ({', '.join(ratios)})")
    if not parts:
        return NO_COLD_READS
    text = "A cold read took this many times the warm one: " + "; ".join(parts) + "."
    if cold_cache_possible is False:
        text += COLD_CACHE_CAUTION
    return text


# -- figures ---------------------------------------------------------------------------------------------
def images_per_second(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(median images per second, error bars down to the slowest run and up to the fastest)."""
    count = rows["n_images"].to_numpy(dtype=float)
    median_rate = count / rows["median"].to_numpy()
    return median_rate, np.vstack([median_rate - count / rows["max"].to_numpy(),
                                   count / rows["min"].to_numpy() - median_rate])


def access_pattern_plot(
    access: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    pattern: str,
    *,
    many: pd.DataFrame | None = None,
    name: str | None = None,
) -> Figure:
    """Bars per method for one read pattern, warm and cold side by side, error bars min-max.

    Random single reads in microseconds per image (lower is better); epochs and sequential reads in
    images per second (higher is better). Saved as ``access_<pattern>`` unless ``name`` is given.
    """
    rows = pattern_rows(access, pattern, many)
    if rows.empty:
        raise ValueError(f"no {pattern} rows to plot")
    methods = ordered_methods(rows["method"])
    caches = caches_of(rows)
    width = 0.8 / len(caches)
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.subplots()
    for offset, cache in enumerate(caches):
        for position, method in enumerate(methods):
            part = rows[(rows["method"] == method) & (rows["cache"] == cache)]
            if part.empty:
                continue
            if pattern == "read_random":
                scale = 1e6 / part["n_images"].to_numpy()
                value, error = part["median"].to_numpy() * scale, spread(part, scale)
            else:
                value, error = images_per_second(part)
            axes.bar(position + (offset - (len(caches) - 1) / 2) * width, value, width, yerr=error, capsize=3,
                     color=method_color(method), alpha=1.0 if cache == "warm" else 0.55,
                     edgecolor="black", linewidth=0.5, hatch="" if cache == "warm" else "//",
                     label=f"{cache} cache" if position == 0 else None)
    # eight methods and the floor: slanted names stay apart
    axes.set_xticks(range(len(methods)), [method_label(m) for m in methods], rotation=25, ha="right")
    axes.set_yscale("log")
    axes.grid(True, axis="y", which="both", alpha=0.3)
    axes.set_title(f"{ACCESS_PATTERNS[pattern]}, from a batch of {epoch_size(access):,} images")
    axes.set_ylabel("Microseconds per image (lower is better)" if pattern == "read_random"
                    else "Images per second (higher is better)")
    axes.legend(title="bars: median, fastest to slowest run", fontsize="small", title_fontsize="small")
    save(figure, figures_dir, name or f"access_{pattern}")
    return figure


def workers_plot(access: pd.DataFrame, figures_dir: str | os.PathLike[str], *, name: str = "access_workers") -> Figure:
    """Images per second of a warm shuffled epoch against the number of loader worker processes.

    0 workers is the calling process reading alone; error bars run from the slowest run to the fastest.
    """
    rows = access[(access["operation"] == "read_epoch") & (access["cache"] == "warm")].sort_values("workers")
    if rows.empty:
        raise ValueError("no warm read_epoch rows: run notebooks/04-access-patterns.ipynb first")
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.subplots()
    for method in ordered_methods(rows["method"]):
        part = rows[rows["method"] == method]
        value, error = images_per_second(part)
        axes.errorbar(part["workers"], value, yerr=error, color=method_color(method), marker="o", capsize=3,
                      linewidth=1.2 if method == FLOOR else 1.8, label=method_label(method))
    counts = sorted(set(rows["workers"]))
    axes.set_xticks(counts, ["this process" if w == 0 else f"{w} worker{'s' if w > 1 else ''}" for w in counts])
    axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(f"Shuffled epoch of {int(rows['n_images'].max()):,} images with loader workers (warm cache)")
    axes.set_ylabel("Images per second (median; bars: min-max)")
    axes.legend(fontsize="small")
    save(figure, figures_dir, name)
    return figure
