"""The experiments the notebooks run, one call each: verify every store, then time it, as tidy rows.

Each function returns a ``pandas.DataFrame`` with ``helpers.report.results.COLUMNS``, one row per timed run,
ready for ``helpers.report.results.append_rows``. Timing follows ``helpers.core.measure.time_call``: an untimed
warm-up, ``repeats`` or more timed runs, setup (clearing a store, evicting its files) outside the timed
region. Each method works in its own folder, ``work_dir/<method>``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core import space
from helpers import stores
from helpers.core.errors import CorruptStoreError, DatasetError, ImageFormatError
from helpers.core.measure import DiskUsage, Timing, check_repeats, disk_usage, evict, time_call
from helpers.report.results import COLUMNS

#: The results tables (``helpers.report.results``) the two experiments fill.
SINGLE_EXPERIMENT = "single_image"
MANY_EXPERIMENT = "many_images"


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


def verify_single(
    store: stores.Store, image: np.ndarray, image_id: int, label: int, *, write: bool = True
) -> None:
    """As ``verify_round_trip``, for one image stored with ``store_single`` under ``image_id``."""
    if write:
        store.store_single(image, image_id, label)
    read_image, read_label = store.read_single(image_id)
    problem = difference(np.asarray(image), read_image, "image")
    if not problem and int(read_label) != int(label):
        problem = f"label {read_label} instead of {label}"
    if problem:
        raise CorruptStoreError(
            f"{store.name} store in {store.root}: reading back image {image_id} gave different data "
            f"({problem})"
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


# -- experiments ----------------------------------------------------------------------------------
def run_single(
    images: np.ndarray | object,
    labels: np.ndarray | None,
    methods: Sequence[str],
    *,
    repeats: int,
    cold_cache: bool,
    work_dir: str | os.PathLike[str],
    durable: bool = False,
    dataset: str = "",
    floor: bool = False,
) -> pd.DataFrame:
    """Time ``store_single`` of the first image and ``read_single`` of it (warm, cold if asked), per method.

    ``images`` may be a Dataset (anything with ``.images``, ``.labels``, ``.source``), ``labels`` then None.
    ``floor=True`` adds the ``npy`` reference floor to ``methods``.
    """
    images, labels, dataset = unpack(images, labels, dataset)
    methods = checked_methods(methods, floor)
    check_repeats(repeats)
    image, label = images[0], int(labels[0])
    rows: list[dict] = []
    for method in methods:
        store = stores.open_store(method, Path(work_dir) / method, durable=durable)
        try:
            store.clear()
            verify_single(store, image, 0, label)
            common = dict(
                experiment=SINGLE_EXPERIMENT, method=method, n_images=1, durable=durable, dataset=dataset
            )
            timing = time_call(
                lambda: store.store_single(image, 0, label), repeats=repeats, setup=store.clear
            )
            verify_single(store, image, 0, label, write=False)
            rows += timing_rows(timing, operation="store_single", cache="", usage=footprint(store), **common)
            for cache in caches(cold_cache):
                timing = time_read(store, lambda: store.read_single(0), cache, repeats)
                rows += timing_rows(timing, operation="read_single", cache=cache, usage=None, **common)
        finally:
            store.close()
    return pd.DataFrame(rows, columns=COLUMNS)


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


def run_many(
    images: np.ndarray | object,
    labels: np.ndarray | None,
    methods: Sequence[str],
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
                rows += measure_many(store, batch, batch_labels, repeats, cold_cache, dataset)
            finally:
                store.close()
    return pd.DataFrame(rows, columns=COLUMNS)


def measure_many(
    store: stores.Store, images: np.ndarray, labels: np.ndarray, repeats: int, cold_cache: bool, dataset: str,
    *, store_warmup: bool = True,
) -> list[dict]:
    """Rows of ``store_many`` (with the batch's disk usage) and ``read_many`` timings for one store.

    ``store_warmup=False`` skips the untimed first write, for a write long enough to be its own warm-up.
    """
    n = len(images)
    common = dict(
        experiment=MANY_EXPERIMENT, method=store.name, n_images=n, durable=store.durable, dataset=dataset
    )
    timing = time_call(lambda: store.store_many(images, labels), repeats=repeats, setup=store.clear,
                       warmup=store_warmup)
    verify_round_trip(store, images, labels, write=False)
    # The batch alone: single images an earlier experiment left in the same folder are not its cost.
    rows = timing_rows(timing, operation="store_many", cache="", usage=disk_usage(store.batch_path), **common)
    for cache in caches(cold_cache):
        timing = time_read(store, lambda: store.read_many(n), cache, repeats)
        rows += timing_rows(timing, operation="read_many", cache=cache, usage=None, **common)
    return rows


# -- pieces -----------------------------------------------------------------------------------------
def time_read(store: stores.Store, read, cache: str, repeats: int, *, reopen: bool = False,
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


def footprint(store: stores.Store) -> DiskUsage:
    """What the store wrote: everything inside its folder, folders included, but not the folder itself."""
    return disk_usage(sorted(store.root.iterdir()))


def timing_rows(timing: Timing, *, usage: DiskUsage | None, **fields: object) -> list[dict]:
    sizes = (
        {"bytes_apparent": usage.apparent, "bytes_allocated": usage.allocated, "files": usage.files}
        if usage is not None
        else {"bytes_apparent": np.nan, "bytes_allocated": np.nan, "files": np.nan}
    )
    return [
        {**fields, **sizes, "repeat": repeat, "seconds": seconds}
        for repeat, seconds in enumerate(timing.seconds)
    ]


def caches(cold_cache: bool) -> list[str]:
    return ["warm", "cold"] if cold_cache else ["warm"]


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


def checked_methods(methods: Sequence[str], floor: bool) -> list[str]:
    if isinstance(methods, str):
        methods = [methods]
    methods = list(dict.fromkeys(methods))
    for method in methods:
        stores.store_class(method)  # UnknownMethodError before anything is measured
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


def progress_bar(
    steps: list, enabled: bool, *, desc: str = "methods x cutoffs", unit: str = "step",
    label: Callable[[object], str] = lambda step: f"{step[0]}, n={step[1]}",
):
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


# -- access patterns of a training loop -------------------------------------------------------------
#: The results table of notebook 04.
ACCESS_EXPERIMENT = "access_patterns"
#: Single images read at random positions per timed run (each a cold disk read when cold).
RANDOM_READS = 1000
#: Mini-batches a cold epoch run reads: the start of a shuffled epoch, every image of it from the disk, so
#: its rate is a whole cold epoch's without the minutes 100,000 cold PNG files take.
COLD_EPOCH_BATCHES = 20


def run_access(
    images: np.ndarray | object,
    labels: np.ndarray | None,
    methods: Sequence[str],
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
    from helpers.loader import batches, epoch_order

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
            common = dict(experiment=ACCESS_EXPERIMENT, method=method, durable=False, dataset=dataset)

            def read_random() -> None:
                read_one = store.batch_reader().read_one
                for index in sample:
                    read_one(index)

            def read_epoch(worker_count: int = 0, limit: int | None = None) -> None:
                for number, _ in enumerate(batches(store, batch_size, seed=0, workers=worker_count), 1):
                    if number == limit:
                        break

            cold_count = min(n, COLD_EPOCH_BATCHES * batch_size)
            cold_epoch = epoch_order(n, seed=0)[:cold_count]  # the positions a cold epoch run reads
            for cache in caches(cold_cache):
                epoch_count = n if cache == "warm" else cold_count
                for operation, read, count, positions in (
                    ("read_random", read_random, len(sample), sample),
                    ("read_epoch", lambda: read_epoch(limit=None if cache == "warm" else COLD_EPOCH_BATCHES),
                     epoch_count, cold_epoch),
                ):
                    timing = time_read(store, read, cache, repeats, reopen=True, cold_warmup=False,
                                       files=store.files_holding(positions))
                    rows += timing_rows(timing, operation=operation, n_images=count, cache=cache, usage=None,
                                        workers=0, **common)
            for worker_count in worker_counts:
                timing = time_call(lambda: read_epoch(worker_count), repeats=repeats, warmup=True)
                rows += timing_rows(timing, operation="read_epoch", n_images=n, cache="warm", usage=None,
                                    workers=worker_count, **common)
        finally:
            store.close()
    return pd.DataFrame(rows, columns=COLUMNS)


def holds_batch(store: stores.Store, images: np.ndarray, labels: np.ndarray) -> None:
    """Make ``store``'s batch exactly ``images, labels``: kept if it already is, written (and checked) if not."""
    if len(store) == len(images):
        try:
            verify_round_trip(store, images, labels, write=False)
            return
        except CorruptStoreError:
            pass
    verify_round_trip(store, images, labels)
