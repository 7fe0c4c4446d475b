"""How every chapter measures: verify a store before timing it, time it, and write the runs as tidy rows.

Timing follows ``helpers.core.measure.time_call``: an untimed warm-up, ``repeats`` or more timed runs,
setup (clearing a store, evicting its files) outside the timed region. Rows have the columns of
``helpers.report.results.COLUMNS``, one per timed run, ready for ``helpers.report.results.append_rows``.
Each method works in its own folder, ``work_dir/<method>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from helpers import stores
from helpers.core import space
from helpers.core.errors import CorruptStoreError, DatasetError, ImageFormatError
from helpers.core.measure import DiskUsage, Timing, disk_usage, evict, time_call
from helpers.report.parameters import chosen_methods


# -- verification ---------------------------------------------------------------------------------
def verify_round_trip(
    store: stores.Store, images: np.ndarray, labels: np.ndarray, *, write: bool = True
) -> None:
    """Check that ``store`` reads the batch ``images, labels`` back exactly; CorruptStoreError if not.

    ``write=True`` stores the batch first (replacing the store's batch); ``write=False`` checks the batch
    the store already holds, e.g. the one a timed ``store_many`` just wrote.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if write:
        store.store_many(images, labels)
    read_images, read_labels = store.read_many(len(images))
    problem = difference(images, read_images, "images")
    problem = problem or difference(labels.astype(np.int64), read_labels, "labels")
    if problem:
        raise CorruptStoreError(
            f"{store.name} store in {store.root}: reading back {len(images)} images gave different data "
            f"({problem}); its timings would not be worth reporting"
        )


def difference(expected: np.ndarray, actual: np.ndarray, what: str) -> str:
    """How ``actual`` differs from ``expected`` in a few words, or "" if it is identical."""
    actual = np.asarray(actual)
    if actual.shape != expected.shape:
        return f"{what} of shape {actual.shape} instead of {expected.shape}"
    if actual.dtype != expected.dtype:
        return f"{what} of dtype {actual.dtype} instead of {expected.dtype}"
    unequal = actual != expected
    if unequal.any():
        first = np.argwhere(unequal)[0]
        return f"{what} differ at index {tuple(int(i) for i in first)}, {int(unequal.sum())} values in all"
    return ""


# -- what is measured --------------------------------------------------------------------------------
def unpack(images: object, labels: object, dataset: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(images, labels, dataset name) from arrays, or from a Dataset when ``labels`` is None."""
    if hasattr(images, "images"):
        if labels is None:
            labels = images.labels
        if not dataset:
            dataset = str(getattr(images, "source", ""))
        images = images.images
    if labels is None:
        raise ImageFormatError("labels is None; pass the labels, or a Dataset as images")
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ImageFormatError(
            f"images must be a non-empty batch (n, height, width[, channels]), got shape {images.shape}"
        )
    if labels.shape != (len(images),):
        raise ImageFormatError(f"labels has shape {labels.shape}; expected ({len(images)},), one per image")
    return images, labels, dataset


def checked_methods(methods: Sequence[str] | str | None, floor: bool) -> list[str]:
    """The methods to measure (None: every registered one but the floor), with the floor when ``floor``;
    UnknownMethodError before anything is measured."""
    methods = chosen_methods(methods)
    for method in methods:
        stores.store_class(method)
    if floor and stores.FLOOR not in methods:
        methods.append(stores.FLOOR)
    if not methods:
        raise ValueError("no storage methods to measure; pass some of " + ", ".join(stores.names()))
    return methods


def checked_cutoffs(cutoffs: Sequence[int], available: int) -> list[int]:
    checked = []
    for cutoff in cutoffs:
        if isinstance(cutoff, (bool, np.bool_)) or not isinstance(cutoff, (int, np.integer)) or cutoff < 1:
            raise ValueError(f"cutoffs must be positive integers, got {cutoff!r}")
        if cutoff > available:
            raise DatasetError(
                f"cutoff {cutoff} asks for more images than the {available} given; load a larger dataset "
                f"with helpers.datasets.load(n={max(cutoffs)}), which repeats the images as the article does"
            )
        checked.append(int(cutoff))
    if not checked:
        raise ValueError("cutoffs is empty; give at least one number of images")
    return checked


def check_space_for_batches(
    work_dir: str | Path, methods: Sequence[str], cutoffs: Sequence[int], images: np.ndarray
) -> None:
    """InsufficientSpaceError before anything is written unless the largest batch of every method fits at
    once (bytes and files): each store keeps one batch at a time."""
    needed = stores.experiment_bytes(methods, cutoffs, images.shape[1:], images.dtype, include_single=False)
    files = stores.experiment_files(methods, cutoffs, include_single=False)
    space.check_free_space(
        work_dir, needed, f"{len(methods)} stores of up to {max(cutoffs):,} images of {images.shape[1:]}",
        needed_files=files,
    )


def caches(cold_cache: bool) -> list[str]:
    return ["warm", "cold"] if cold_cache else ["warm"]


# -- timing ----------------------------------------------------------------------------------------------
def time_read(store: stores.Store, read: Callable[[], object], cache: str, repeats: int, *, reopen: bool = False,
              cold_warmup: bool = True, files: list[Path] | None = None) -> Timing:
    """``read`` timed warm (after an untimed run), or cold: before each run the store is closed and its
    files (or ``files``, those the read opens) evicted, then with ``reopen`` its batch opened again
    (untimed: opening reads the batch's description, not an image). ``cold_warmup=False`` skips the
    untimed first cold run."""
    if cache == "warm":
        return time_call(read, repeats=repeats)
    files = store.files() if files is None else files

    def drop_from_cache() -> None:
        store.close()  # a mapped file keeps its pages in the cache
        evict(files)
        if reopen:
            store.batch_reader()

    return time_call(read, repeats=repeats, setup=drop_from_cache, warmup=cold_warmup)


def timing_rows(timing: Timing, *, usage: DiskUsage | None, **fields: object) -> list[dict]:
    """One row per timed run: ``fields``, the run's seconds, and the store's disk usage (NaN for reads)."""
    sizes = (
        {"bytes_apparent": usage.apparent, "bytes_allocated": usage.allocated, "files": usage.files}
        if usage is not None
        else {"bytes_apparent": np.nan, "bytes_allocated": np.nan, "files": np.nan}
    )
    return [
        {**fields, **sizes, "repeat": repeat, "seconds": seconds}
        for repeat, seconds in enumerate(timing.seconds)
    ]


def measure_many(
    store: stores.Store, images: np.ndarray, labels: np.ndarray, repeats: int, cold_cache: bool, dataset: str,
    *, experiment: str, store_warmup: bool = True,
) -> list[dict]:
    """Rows of ``store_many`` (with the batch's disk usage) and ``read_many`` timings for one store.

    The store is cleared before every timed write (untimed), the batch read back and compared, then
    ``read_many`` timed warm and, if ``cold_cache``, cold. ``store_warmup=False`` skips the untimed first
    write, for a write long enough to be its own warm-up.
    """
    n = len(images)
    common = dict(experiment=experiment, method=store.name, n_images=n, durable=store.durable, dataset=dataset)
    timing = time_call(lambda: store.store_many(images, labels), repeats=repeats, setup=store.clear,
                       warmup=store_warmup)
    verify_round_trip(store, images, labels, write=False)
    # The batch alone: single images an earlier experiment left in the same folder are not its cost.
    rows = timing_rows(timing, operation="store_many", cache="", usage=disk_usage(store.batch_path), **common)
    for cache in caches(cold_cache):
        timing = time_read(store, lambda: store.read_many(n), cache, repeats)
        rows += timing_rows(timing, operation="read_many", cache=cache, usage=None, **common)
    return rows


def progress_bar(
    steps: list, enabled: bool, *, desc: str = "methods x cutoffs", unit: str = "step",
    label: Callable[[object], str] = lambda step: f"{step[0]}, n={step[1]}",
) -> Iterator:
    """The steps, with a tqdm bar that shows the step in progress (``label(step)``) when ``enabled``."""
    if not enabled:
        yield from steps
        return
    # Plain text: tqdm.auto inside a kernel warns (TqdmExperimentalWarning) or wants ipywidgets; the report
    # shows this bar on the console through the kernel's stderr anyway.
    from tqdm import tqdm

    with tqdm(steps, desc=desc, unit=unit) as bar:
        for step in bar:
            bar.set_postfix_str(label(step))
            yield step
