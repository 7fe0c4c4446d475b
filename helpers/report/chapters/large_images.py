"""The large-images chapter (notebooks/05-large-images.ipynb): 512x512 16-bit scans instead of 3 KB photos.

``run_large`` times, per method and image count, what ``helpers.report.experiments.run_many`` times (store,
sequential read warm and cold, disk usage) plus a shuffled read: one epoch over a random permutation, read
in mini-batches of ``batch_size`` through ``Store.read_indices``, as a training loop reads. Rows go to the
``large_images`` results table. ``compression_side_by_side`` measures, in the run, how 16-bit PNG and
lossless JPEG 2000 compress real CT slices from ``pydicom-data`` and the first synthetic scans.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import datasets, loader, stores
from helpers.report import experiments
from helpers.datasets import scans
from helpers.core.errors import CorruptStoreError
from helpers.report.results import COLUMNS

LARGE_EXPERIMENT = "large_images"
SHUFFLED_OPERATION = "read_epoch"
#: Timed runs of each measurement at least (after the untimed one); fast ones still repeat until they add up
#: to helpers.core.measure.MIN_TOTAL_SECONDS. One PNG store of 1,000 scans takes most of a minute on two cores, so
#: more would take the chapter past its three minutes in the full report.
LARGE_REPEATS = 1
#: A write expected (from the previous count) to take longer than this is its own warm-up: first-run costs
#: (imports, a process pool starting, caches) are small beside it, and an untimed copy would double its time.
LONG_RUN_SECONDS = 10.0
SYNTHETIC_SHOWN = 3  # synthetic scans shown and measured beside the real slices


def load_large(large_dataset: str, large_cutoffs: Sequence[int], image_size=None) -> datasets.Dataset:
    """The chapter's images: ``max(large_cutoffs)`` synthetic scans, or that many images of a folder."""
    size = None if large_dataset == "scans" else image_size
    return datasets.load(large_dataset, n=max(large_cutoffs), size=size)


def verify_shuffled(store: stores.Store, images: np.ndarray, labels: np.ndarray, batch_size: int,
                    seed: int) -> None:
    """CorruptStoreError unless the shuffled epoch gives exactly the stored images and labels, each once."""
    order = loader.epoch_order(len(images), seed=seed)
    start = 0
    for got_images, got_labels in loader.batches(store, batch_size, seed=seed):
        positions = order[start:start + len(got_images)]
        problem = experiments.difference(images[positions], got_images, "images")
        problem = problem or experiments.difference(labels[positions].astype(np.int64), got_labels, "labels")
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
    common = dict(experiment=LARGE_EXPERIMENT, method=store.name, n_images=len(images), durable=store.durable,
                  dataset=dataset)
    rows = []
    for cache in experiments.caches(cold_cache):
        timing = experiments.time_read(store, lambda: loader.read_epoch(store, batch_size, seed=seed), cache, repeats)
        rows += experiments.timing_rows(timing, operation=SHUFFLED_OPERATION, cache=cache, usage=None, **common)
    return rows


def run_large(
    data: datasets.Dataset,
    methods: Sequence[str],
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

    Store and sequential reads are ``helpers.report.experiments.measure_many``'s; every store's read-back is
    checked in sequence and in the shuffled order before any read is timed. A write expected to take over
    LONG_RUN_SECONDS (its time at the previous count, scaled) is timed without an untimed run first.
    """
    images, labels, dataset = experiments.unpack(data, None, "")
    methods = experiments.checked_methods(methods, floor)
    cutoffs = experiments.checked_cutoffs(cutoffs, len(images))
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of images, got {batch_size!r}")
    experiments.check_space_for_batches(work_dir, methods, cutoffs, images)
    rows: list[dict] = []
    previous: dict[str, tuple[int, float]] = {}  # method -> (n, median seconds of its last store)
    for method, n in experiments.progress_bar([(m, n) for m in methods for n in cutoffs], progress):
        store = stores.open_store(method, Path(work_dir) / method)
        try:
            expected = previous[method][1] * n / previous[method][0] if method in previous else 0.0
            stored = experiments.measure_many(store, images[:n], labels[:n], repeats, cold_cache, dataset,
                                              store_warmup=expected < LONG_RUN_SECONDS)
            previous[method] = (n, float(np.median([row["seconds"] for row in stored
                                                    if row["operation"] == "store_many"])))
            rows += stored
            rows += measure_shuffled(store, images[:n], labels[:n], repeats=repeats, cold_cache=cold_cache,
                                     batch_size=int(batch_size), seed=seed, dataset=dataset)
        finally:
            store.close()
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["experiment"] = LARGE_EXPERIMENT
    return frame


def compression_side_by_side(data: datasets.Dataset, shown: int = SYNTHETIC_SHOWN) -> tuple[dict, pd.DataFrame]:
    """The real CT slices of pydicom-data and the first ``shown`` images of ``data``, and their compression
    ratios (16-bit PNG at Pillow's default level, lossless JPEG 2000) measured now."""
    pictures = {f"real: {name}": image for name, image in scans.real_slices().items()}
    for index in range(min(shown, len(data))):
        pictures[f"{'synthetic' if data.source.startswith(scans.SCAN_PREFIX) else 'dataset'}: image {index}"] = (
            data.images[index, :, :, 0] if data.images.shape[-1] == 1 else data.images[index]
        )
    return pictures, scans.compression_ratios(pictures)


def record_image_bytes(results_dir: str | os.PathLike[str], data: datasets.Dataset) -> None:
    """Note the raw bytes of one large image in ``environment.json``, for the conclusions' comparison."""
    from helpers.report import environment

    info = environment.load(results_dir)
    info["large_image_bytes"] = int(data.images[0].nbytes)
    environment.save(info, results_dir)


def read_summary(results_dir: str | os.PathLike[str]) -> pd.DataFrame | None:
    """The summarized ``large_images`` table, or None when notebook 05 did not run with this results_dir."""
    from helpers.report import results

    if not results.results_path(results_dir, LARGE_EXPERIMENT).exists():
        return None
    return results.summarize(results.read_results(results_dir, LARGE_EXPERIMENT))
