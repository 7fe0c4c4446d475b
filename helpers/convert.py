"""Writing a dataset into a store at scale, in parallel on a Dask cluster.

``convert(source, method, dest)`` reads the source chunk by chunk on the workers of a Dask ``distributed``
cluster (a ``LocalCluster`` of processes started and closed here by default, or an existing cluster by its
scheduler address) and writes the store in one of two ways:

- methods whose batch is made of independent pieces (``Store.writes_pieces``: PNG shard folders, tar shards, Zarr shards) are
  written by every worker at once, each piece atomically, and joined into the batch by ``commit_pieces``
  once all are there; a rerun after a failure writes only the missing pieces;
- single-writer methods (one LMDB environment, one HDF5 file, one array) get the chunks from the workers,
  in order and a few at a time, and write them here with ``store_chunks``; a failure leaves nothing that
  reads as complete, and a rerun writes the batch again. Where the method encodes each image with a codec
  (``Store.encodes_each_image`` and ``compression=``), the workers encode, so the costly part runs in
  parallel and the writer only puts the bytes in place.

Either way the store reads back exactly as if ``store_many`` had been given the same images. The workers
and this process must see the same file system (a local cluster always does). From a shell:
``python -m helpers.convert synthetic data/work/tar --method tar -n 100000 --scheduler tcp://HOST:8786``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm  # plain text: tqdm.auto needs ipywidgets inside notebooks

from helpers import datasets
from helpers.codecs import get_codec
from helpers.core.errors import DatasetError, StorageReportError
from helpers.stores import Store, names, open_store
from helpers.stores.values import EncodedImages

DEFAULT_CHUNK_IMAGES = 10_000
SYNTHETIC = "synthetic"


# --- sources: what a worker reads a range of images from --------------------------------------------------


class Source(ABC):
    """Images a worker can read by range, without the whole set in memory; small to pickle."""

    count: int
    description: str

    @abstractmethod
    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Images ``start`` to ``stop - 1`` and their labels."""


class SyntheticSource(Source):
    """``count`` synthetic CIFAR-shaped images (``datasets.synthetic``), made on the worker that needs them.

    ``distinct`` repeats the first ``distinct`` images (made once per process) instead of making every
    image, for measurements of the store rather than of the generator (a million distinct images take
    minutes to make).
    """

    _made: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def __init__(self, count: int, seed: int = 0, distinct: int | None = None) -> None:
        self.count, self.seed, self.distinct = int(count), int(seed), distinct
        repeated = f", the first {distinct:,} repeated" if distinct else ""
        self.description = f"{count:,} synthetic CIFAR-shaped images (seed {seed}{repeated})"

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.distinct:
            return datasets.synthetic_range(start, stop, self.seed)
        key = (self.seed, self.distinct)
        if key not in self._made:
            self._made[key] = datasets.synthetic_range(0, self.distinct, self.seed)
        images, labels = self._made[key]
        order = np.arange(start, stop) % self.distinct
        return images[order], labels[order]


class StoreSource(Source):
    """The batch of an existing store, read by range (``read_indices``)."""

    def __init__(self, method: str, root: str | os.PathLike[str]) -> None:
        self.store = open_store(method, root)
        self.count = len(self.store)
        if not self.count:
            raise DatasetError(f"the {method} store in {root} holds no batch to convert")
        self.description = f"the {method} store in {root} ({self.count:,} images)"

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        return self.store.read_indices(np.arange(start, stop))


class CifarSource(Source):
    """CIFAR-10's training set from its folder (loaded once per worker), repeated in order to ``count``."""

    _loaded: dict[str, datasets.Dataset] = {}

    def __init__(self, path: str | os.PathLike[str], count: int | None = None) -> None:
        self.path = str(Path(path).resolve())
        size = len(self._dataset())
        self.count = int(count or size)
        self.description = f"CIFAR-10 from {self.path}, {self.count:,} images"

    def _dataset(self) -> datasets.Dataset:
        if self.path not in self._loaded:
            self._loaded[self.path] = datasets.load_cifar10(self.path)
        return self._loaded[self.path]

    def __getstate__(self) -> dict:  # the images stay behind: each worker loads its own copy
        return {"path": self.path, "count": self.count, "description": self.description}

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        dataset = self._dataset()
        order = np.arange(start, stop) % len(dataset)
        return dataset.images[order], dataset.labels[order]


def open_source(spec: str | Source, n: int | None = None) -> Source:
    """A source from its description: ``synthetic`` (``synthetic:K`` repeats the first K images),
    ``METHOD:PATH`` (an existing store), ``cifar10`` or a path to a CIFAR-10 folder; ``n`` images of it
    (required for synthetic; otherwise all, and more than that repeats the set)."""
    if isinstance(spec, Source):
        return spec
    text = str(spec)
    kind, _, rest = text.partition(":")
    if kind == SYNTHETIC:
        if n is None:
            raise DatasetError("a synthetic source needs a number of images (n=, or -n on the command line)")
        distinct = int(rest) if rest else None
        if distinct is not None and distinct < 1:
            raise DatasetError(f"synthetic:K repeats the first K images; K must be positive, got {rest!r}")
        return SyntheticSource(n, distinct=distinct)
    if kind in names() and rest:
        source: Source = StoreSource(kind, rest)
        if n is not None and n != source.count:
            raise DatasetError(f"{source.description}: asked for n={n}; a store is converted whole")
        return source
    if text == "cifar10":
        return CifarSource(datasets.default_data_root(), n)
    if Path(text).exists():
        return CifarSource(text, n)
    raise DatasetError(
        f"unknown source {text!r}: expected synthetic, synthetic:K, METHOD:PATH with METHOD one of "
        f"{', '.join(names())}, cifar10, or the path of a CIFAR-10 folder"
    )


# --- the cluster ---------------------------------------------------------------------------------------


@contextmanager
def dask_client(client: object = None, workers: int | None = None) -> Iterator[object]:
    """A ``distributed.Client``: ``client`` itself, one connected to the scheduler address ``client``, or
    one on a ``LocalCluster`` of ``workers`` single-threaded processes started now and closed on exit.

    The local cluster logs only errors, so a successful run prints nothing of its own.
    """
    from distributed import Client, LocalCluster

    if isinstance(client, Client):
        yield client
        return
    if isinstance(client, str):
        with Client(client, timeout="30s") as connected:
            yield connected
        return
    if client is not None:
        raise TypeError(f"client must be a distributed.Client, a scheduler address or None, got {client!r}")
    count = workers or os.cpu_count() or 1
    # The scheduler serves HTTP whatever is asked (8787 when dashboard_address is None, with a warning when
    # another cluster holds that port): a free port chosen by the system keeps it quiet.
    with quiet_distributed(), LocalCluster(
        n_workers=count, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=logging.ERROR,
    ) as cluster, Client(cluster) as local:
        yield local


@contextmanager
def quiet_distributed() -> Iterator[None]:
    """distributed's own loggers in this process at ERROR while the block runs: a local cluster logs a
    worker's restart or its closing connections as warnings that are not the user's concern."""
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def worker_count(client: object) -> int:
    return max(1, len(client.scheduler_info()["workers"]))


# --- what the workers run ------------------------------------------------------------------------------


def write_piece_task(store: Store, source: Source, index: int) -> int:
    """Read piece ``index``'s images from the source and write the piece; the images written."""
    start, stop = store.piece_bounds(index)
    images, labels = source.read(start, stop)
    store.write_piece(index, images, labels)
    return stop - start


def read_task(
    source: Source, start: int, stop: int, codec_name: str | None = None
) -> tuple[np.ndarray | EncodedImages, np.ndarray]:
    """Images ``start`` to ``stop - 1`` and their labels, the images encoded here by ``codec_name`` if given."""
    images, labels = source.read(start, stop)
    if codec_name is None:
        return images, labels
    return EncodedImages.encode(images, get_codec(codec_name)), labels


# --- converting ------------------------------------------------------------------------------------------


def convert(
    source: str | Source,
    method: str,
    dest: str | os.PathLike[str],
    *,
    compression: str | None = None,
    n: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_IMAGES,
    client: object = None,
    workers: int | None = None,
    progress: bool = True,
) -> Store:
    """Write ``n`` images of ``source`` (see ``open_source``) as the batch of the ``method`` store in
    ``dest``, replacing its previous batch; the store.

    ``client``: a ``distributed.Client``, a scheduler address (``tcp://host:8786``), or None for a local
    cluster of ``workers`` processes (one per core by default) started and closed here. Single-writer
    methods get ``chunk_size`` images per task; piece methods one piece per task.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise DatasetError(f"chunk_size must be a positive number of images, got {chunk_size!r}")
    store = open_store(method, dest, compression=compression)
    data = open_source(source, n)
    with dask_client(client, workers) as connected, tqdm(
        total=data.count, unit="img", unit_scale=True, desc=f"{method} <- {data.description}",
        disable=not progress, file=sys.stderr,
    ) as bar:
        if store.writes_pieces:
            write_pieces(connected, store, data, bar)
        else:
            write_with_one_writer(connected, store, data, int(chunk_size), bar)
    return store


def write_pieces(client: object, store: Store, source: Source, bar: tqdm) -> None:
    """Every worker writes whole pieces; a few per worker are submitted at a time.

    On a failure no more are submitted and those already running are waited for before the error is
    raised, so that no worker is still writing into the partial batch when the caller (or a rerun) next
    touches it.
    """
    from distributed import as_completed, wait

    first_images, _ = source.read(0, 1)
    pieces = store.begin_pieces(source.count, first_images.shape[1:], first_images.dtype)
    done = store.pieces_done()
    bar.update(sum(stop - start for start, stop in map(store.piece_bounds, done)))
    todo = iter([index for index in range(pieces) if index not in done])
    # The store and the source go to the cluster once, not with every task.
    store_future, source_future = client.scatter([store, source], broadcast=True, hash=False)

    in_flight: set = set()

    def submit(index: int) -> object:
        future = client.submit(write_piece_task, store_future, source_future, index, pure=False)
        in_flight.add(future)
        return future

    finished = as_completed([submit(index) for index in islice(todo, 2 * worker_count(client))])
    for future in finished:
        in_flight.discard(future)
        try:
            bar.update(future.result())
        except BaseException:
            wait(list(in_flight))
            raise
        for index in todo:  # one more in place of the one that finished
            finished.add(submit(index))
            break
    store.commit_pieces()


def write_with_one_writer(client: object, store: Store, source: Source, chunk_size: int, bar: tqdm) -> None:
    """The workers read (and make) chunks, and encode them when the store encodes each image with a codec;
    this process writes them in order with ``store_chunks``.

    A few chunks per worker are in flight, so memory here stays a few chunks whatever the total.
    """
    ranges = [(start, min(start + chunk_size, source.count)) for start in range(0, source.count, chunk_size)]
    source_future = client.scatter(source, broadcast=True, hash=False)
    window = 2 * worker_count(client)
    codec_name = store.chunk_codec

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        pending: deque = deque()
        upcoming = iter(ranges)
        try:
            for start, stop in upcoming:
                pending.append(client.submit(read_task, source_future, start, stop, codec_name, pure=False))
                if len(pending) >= window:
                    break
            while pending:
                images, labels = pending.popleft().result()
                for start, stop in upcoming:
                    pending.append(client.submit(read_task, source_future, start, stop, codec_name, pure=False))
                    break
                bar.update(len(images))
                yield images, labels
        finally:
            client.cancel(list(pending))

    store.store_chunks(chunks(), total=source.count)


# --- the command line ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.convert",
        description="Write a dataset into a store in parallel on a Dask cluster (a local one by default). "
                    "Methods made of pieces (disk: PNG shard folders, tar: shards, zarr: shards) are written by every "
                    "worker at once; single-writer methods (lmdb, hdf5, parquet, ...) get chunks read (and, with a "
                    "codec, encoded) by the workers and one writer. "
                    "The store appears only once complete; rerun after a failure to finish it.",
    )
    parser.add_argument("source", help="synthetic (synthetic:K repeats the first K images), METHOD:PATH of an "
                                        "existing store, cifar10, or the path of a CIFAR-10 folder")
    parser.add_argument("dest", type=Path, help="the store's folder (created if needed)")
    parser.add_argument("--method", required=True, choices=names(), help="storage method to write")
    parser.add_argument("--compression", default=None, help="the method's compression (see its compressions)")
    parser.add_argument("-n", "--images", dest="n", type=int, default=None,
                        help="number of images (required for synthetic; more than the set repeats it)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_IMAGES,
                        help=f"images per task for single-writer methods (default {DEFAULT_CHUNK_IMAGES:,})")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes of the local cluster (default: one per core); ignored with --scheduler")
    parser.add_argument("--scheduler", default=None,
                        help="address of an existing Dask scheduler, e.g. tcp://127.0.0.1:8786")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store = convert(args.source, args.method, args.dest, compression=args.compression, n=args.n,
                        chunk_size=args.chunk_size, client=args.scheduler, workers=args.workers,
                        progress=args.progress)
    except (StorageReportError, OSError) as error:
        print(f"convert: {error}", file=sys.stderr)
        return 1
    print(f"wrote {len(store):,} images to the {store.name} store in {store.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
