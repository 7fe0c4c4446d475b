"""Chapter 05, large images (notebooks/05-large-images.ipynb): 512x512 16-bit scans instead of 3 KB photos.

``run_large`` times, per method and image count, what the many-images chapter times (store, sequential read
warm and cold, disk usage: ``helpers.report.measuring.measure_many``) plus a shuffled read: one epoch over a
random permutation, read in mini-batches of ``batch_size`` through ``Store.read_indices``, as a training
loop reads. Rows go to the ``large_images`` results table, and the raw bytes of one image to the run's facts.
``compression_side_by_side`` measures, in the run, how 16-bit PNG and lossless JPEG 2000 compress real CT
slices from ``pydicom-data`` and the first synthetic scans. The disk-usage table and figure are
``helpers.report.disk_space``'s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from helpers import datasets, loader, stores
from helpers.core.errors import CorruptStoreError
from helpers.core.measure import format_bytes
from helpers.datasets import scans
from helpers.report import results
from helpers.report.measuring import (
    caches,
    check_space_for_batches,
    checked_cutoffs,
    checked_methods,
    difference,
    measure_many,
    progress_bar,
    time_read,
    timing_rows,
    unpack,
)
from helpers.report.style import (
    lines_per_method_and_cache,
    log_log_axes,
    method_label,
    ordered_methods,
    save,
    select,
)
from helpers.report.text import (
    largest_cutoff,
    per_image,
    pick,
    ranked,
    stored_methods,
    timed,
    times,
    winner_sentence,
)

EXPERIMENT = "large_images"
#: The chapter's folder inside ``work_dir``: one store per method below it.
WORK_FOLDER = "large-images"
SHUFFLED_OPERATION = "read_epoch"
#: Timed runs of each measurement at least (after the untimed one); fast ones still repeat until they add up
#: to helpers.core.measure.MIN_TOTAL_SECONDS. One PNG store of 1,000 scans takes most of a minute on two cores, so
#: more would take the chapter past its three minutes in the full report.
LARGE_REPEATS = 1
#: A write expected (from the previous count) to take longer than this is its own warm-up: first-run costs
#: (imports, a process pool starting, caches) are small beside it, and an untimed copy would double its time.
LONG_RUN_SECONDS = 10.0
SYNTHETIC_SHOWN = 3  # synthetic scans shown and measured beside the real slices
LARGE_READS = (("read_many", "read in order"), ("read_epoch", "read shuffled"))
LARGE_OPERATIONS = (("store_many", "Storing"), ("read_many", "Reading in order"),
                    ("read_epoch", "Reading shuffled (mini-batches)"))


# -- the images ------------------------------------------------------------------------------------------
def load_large(large_dataset: str, large_cutoffs: Sequence[int], image_size=None) -> datasets.Dataset:
    """The chapter's images: ``max(large_cutoffs)`` synthetic scans, or that many images of a folder."""
    size = None if large_dataset == "scans" else image_size
    return datasets.load(large_dataset, n=max(large_cutoffs), size=size)


def record_image_bytes(results_dir: str | os.PathLike[str], data: datasets.Dataset) -> None:
    """Record the raw bytes of one large image in the run's facts, for the conclusions' comparison."""
    results.record_facts(results_dir, large_image_bytes=int(data.images[0].nbytes))


def compression_side_by_side(data: datasets.Dataset, shown: int = SYNTHETIC_SHOWN) -> tuple[dict, pd.DataFrame]:
    """The real CT slices of pydicom-data and the first ``shown`` images of ``data``, and their compression
    ratios (16-bit PNG at Pillow's default level, lossless JPEG 2000) measured now."""
    pictures = {f"real: {name}": image for name, image in scans.real_slices().items()}
    for index in range(min(shown, len(data))):
        pictures[f"{'synthetic' if data.source.startswith(scans.SCAN_PREFIX) else 'dataset'}: image {index}"] = (
            data.images[index, :, :, 0] if data.images.shape[-1] == 1 else data.images[index]
        )
    return pictures, scans.compression_ratios(pictures)


def compression_table(ratios: pd.DataFrame) -> pd.DataFrame:
    """``helpers.datasets.scans.compression_ratios`` as the report shows it."""
    return pd.DataFrame({
        "image": ratios["image"], "pixels": ratios["shape"],
        "raw": ratios["raw_bytes"].map(format_bytes),
        "16-bit PNG": ratios["png_bytes"].map(format_bytes), "PNG ratio": ratios["png_ratio"].map(times),
        "lossless JPEG 2000": ratios["jpeg2000_bytes"].map(format_bytes),
        "JPEG 2000 ratio": ratios["jpeg2000_ratio"].map(times),
    }).set_index("image")


def compression_note(ratios: pd.DataFrame) -> str:
    """How the synthetic (or loaded) images compress next to the real CT slices, from this run's ratios."""
    real = ratios[ratios["image"].str.startswith("real:")]
    other = ratios[~ratios["image"].str.startswith("real:")]
    if real.empty or other.empty:
        return ""
    reference = real.iloc[0]
    png = other["raw_bytes"].sum() / other["png_bytes"].sum()
    j2k = other["raw_bytes"].sum() / other["jpeg2000_bytes"].sum()
    return (
        f"The reference slice ({reference['image'].removeprefix('real: ')}) compresses "
        f"{times(reference['png_ratio'])} with 16-bit PNG and {times(reference['jpeg2000_ratio'])} with lossless "
        f"JPEG 2000; the {len(other)} images of this chapter's dataset shown here compress {times(png)} and "
        f"{times(j2k)} ({png / reference['png_ratio'] - 1:+.0%} and {j2k / reference['jpeg2000_ratio'] - 1:+.0%}). "
        f"The other real slices range from {times(real['png_ratio'].min())} to {times(real['png_ratio'].max())} "
        "with PNG: how much a lossless codec saves depends on the noise in the slice more than on anything else."
    )


def scan_gallery(
    pictures: dict[str, np.ndarray],
    ratios: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    *,
    name: str = "scan_gallery",
) -> Figure:
    """The images side by side, each shown between its 1st and 99.5th percentile (a display window), titled
    with its lossless compression ratios from ``ratios`` (``helpers.datasets.scans.compression_ratios``)."""
    figure = Figure(figsize=(2.6 * len(pictures), 3.2), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(pictures)))
    by_name = ratios.set_index("image")
    for axes, (title, image) in zip(panels, pictures.items()):
        image = np.squeeze(image)
        low, high = np.percentile(image, [1, 99.5])
        axes.imshow(image, cmap="gray", vmin=low, vmax=max(high, low + 1), interpolation="antialiased")
        axes.set_xticks([])
        axes.set_yticks([])
        row = by_name.loc[title]
        axes.set_title(f"{title}\nPNG {row['png_ratio']:.2f}x, JPEG 2000 {row['jpeg2000_ratio']:.2f}x",
                       fontsize="small")
    save(figure, figures_dir, name)
    return figure


# -- the experiment --------------------------------------------------------------------------------------
def verify_shuffled(store: stores.Store, images: np.ndarray, labels: np.ndarray, batch_size: int,
                    seed: int) -> None:
    """CorruptStoreError unless the shuffled epoch gives exactly the stored images and labels, each once."""
    order = loader.epoch_order(len(images), seed=seed)
    start = 0
    for got_images, got_labels in loader.batches(store, batch_size, seed=seed):
        positions = order[start:start + len(got_images)]
        problem = difference(images[positions], got_images, "images")
        problem = problem or difference(labels[positions].astype(np.int64), got_labels, "labels")
        if problem:
            raise CorruptStoreError(f"{store.name} store in {store.root}: a shuffled read of positions "
                                    f"{start}..{start + len(positions) - 1} of the order gave different data "
                                    f"({problem})")
        start += len(got_images)
    if start != len(images):
        raise CorruptStoreError(f"{store.name} store in {store.root}: a shuffled epoch gave {start} images "
                                f"of {len(images)}")


def measure_shuffled(store: stores.Store, images: np.ndarray, labels: np.ndarray, *, repeats: int,
                     cold_cache: bool, batch_size: int, seed: int, dataset: str) -> list[dict]:
    verify_shuffled(store, images, labels, batch_size, seed)
    common = dict(experiment=EXPERIMENT, method=store.name, n_images=len(images), durable=store.durable,
                  dataset=dataset)
    rows = []
    for cache in caches(cold_cache):
        timing = time_read(store, lambda: loader.read_epoch(store, batch_size, seed=seed), cache, repeats)
        rows += timing_rows(timing, operation=SHUFFLED_OPERATION, cache=cache, usage=None, **common)
    return rows


def run_large(
    data: datasets.Dataset,
    methods: Sequence[str] | None,
    cutoffs: Sequence[int],
    *,
    repeats: int,
    cold_cache: bool,
    work_dir: str | os.PathLike[str],
    batch_size: int = loader.BATCH_SIZE,
    seed: int = 0,
    floor: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Store, sequential read and shuffled read of the first n images, per method and cutoff n.

    Store and sequential reads are ``helpers.report.measuring.measure_many``'s; every store's read-back is
    checked in sequence and in the shuffled order before any read is timed. A write expected to take over
    LONG_RUN_SECONDS (its time at the previous count, scaled) is timed without an untimed run first.
    """
    images, labels, dataset = unpack(data, None, "")
    methods = checked_methods(methods, floor)
    cutoffs = checked_cutoffs(cutoffs, len(images))
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of images, got {batch_size!r}")
    check_space_for_batches(work_dir, methods, cutoffs, images)
    rows: list[dict] = []
    previous: dict[str, tuple[int, float]] = {}  # method -> (n, median seconds of its last store)
    for method, n in progress_bar([(m, n) for m in methods for n in cutoffs], progress):
        store = stores.open_store(method, Path(work_dir) / method)
        try:
            expected = previous[method][1] * n / previous[method][0] if method in previous else 0.0
            stored = measure_many(store, images[:n], labels[:n], repeats, cold_cache, dataset,
                                  experiment=EXPERIMENT, store_warmup=expected < LONG_RUN_SECONDS)
            previous[method] = (n, float(np.median([row["seconds"] for row in stored
                                                    if row["operation"] == "store_many"])))
            rows += stored
            rows += measure_shuffled(store, images[:n], labels[:n], repeats=repeats, cold_cache=cold_cache,
                                     batch_size=int(batch_size), seed=seed, dataset=dataset)
        finally:
            store.close()
    return pd.DataFrame(rows, columns=results.COLUMNS)


def measure(data: datasets.Dataset, methods: Sequence[str] | None, cutoffs: Sequence[int], *, repeats: int,
            cold_cache: bool, batch_size: int, work_dir: str | os.PathLike[str],
            results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The chapter's experiment, at most ``LARGE_REPEATS`` timed runs each, into a fresh ``large_images``
    table; its summary."""
    results.reset(results_dir, EXPERIMENT)
    rows = run_large(data, methods, cutoffs, repeats=min(repeats, LARGE_REPEATS), cold_cache=cold_cache,
                     work_dir=Path(work_dir) / WORK_FOLDER, batch_size=batch_size)
    results.append_rows(results_dir, EXPERIMENT, rows)
    return results.read_summary(results_dir, EXPERIMENT)


# -- what the chapter shows ------------------------------------------------------------------------------
def large_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per method at the largest count: store, reads in order and shuffled (warm, cold), throughput, disk."""
    n = largest_cutoff(summary)
    rows = []
    for method, stored in stored_methods(summary, n):
        row = {"method": method_label(method), "store": timed(stored)}
        for operation, label in LARGE_READS:
            for cache in ("warm", "cold"):
                read = pick(summary, method, operation, n, cache)
                if read is not None:
                    row[f"{label}, {cache}"] = timed(read)
        warm = pick(summary, method, "read_epoch", n, "warm")
        if warm is not None:
            row["shuffled per image (warm)"] = per_image(warm["per_image"])
        if not pd.isna(stored["bytes_allocated"]):
            row["on disk per image"] = format_bytes(stored["bytes_allocated"] / n)
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def shuffled_over_ordered(summary: pd.DataFrame, method: str, n: int, cache: str) -> str | None:
    """'LMDB 1.4x': a shuffled epoch's time over an epoch in order, or None unless both were measured."""
    ordered = pick(summary, method, "read_many", n, cache)
    shuffled = pick(summary, method, "read_epoch", n, cache)
    if ordered is None or shuffled is None:
        return None
    return f"{method_label(method)} {times(shuffled['median'] / ordered['median'])}"


def large_statement(summary: pd.DataFrame, raw_image_bytes: int) -> str:
    """What the large-image measurements say: the fastest writer and readers, the cost of shuffling."""
    n = largest_cutoff(summary)
    lines = [f"At {n:,} images of {format_bytes(raw_image_bytes)} each ({format_bytes(n * raw_image_bytes)} "
             "of raw pixels):"]
    for operation, what in (("store_many", "store"), ("read_many", "read in order (warm)"),
                            ("read_epoch", "read shuffled (warm)")):
        ranking = ranked(summary, n, operation, "" if operation == "store_many" else "warm")
        if ranking:
            lines.append("- " + winner_sentence(ranking, what))
    for cache in ("warm", "cold"):
        parts = [text for method in ordered_methods(summary["method"])
                 if (text := shuffled_over_ordered(summary, method, n, cache))]
        if parts:
            lines.append(f"- A shuffled epoch ({cache} cache) took this many times an epoch in order: "
                         + ", ".join(parts) + ".")
    return "\n".join(lines)


def large_images_plot(
    summary: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    *,
    name: str = "large_images",
) -> Figure:
    """Milliseconds per large image against the number of images (log-log): storing, reading in order and
    reading in a shuffled order, warm cache solid and cold dashed."""
    present = [(operation, title) for operation, title in LARGE_OPERATIONS
               if (summary["operation"] == operation).any()]
    figure = Figure(figsize=(5 * len(present), 4.5), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(present), sharey=True))
    for axes, (operation, title) in zip(panels, present):
        rows = select(summary, operation)
        lines_per_method_and_cache(axes, rows, ", {}", per_image=True, unit=1e3)
        log_log_axes(axes, rows["n_images"])
        axes.set_title(f"{title}: cost per image")
        axes.legend(fontsize="x-small")
    panels[0].set_ylabel("Milliseconds per image (median; bars: min-max)")
    save(figure, figures_dir, name)
    return figure
