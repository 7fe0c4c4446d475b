"""The interface every storage method implements, and the checks they share.

A store lives in one folder (``root``). It holds two independent things, as in the article:
single images written one at a time by id (``store_single``), and one batch written at once
(``store_many``). A new batch replaces the previous one. Batches are written to a temporary name and
renamed into place when complete, so an interrupted write is never mistaken for a finished one.
"""

from __future__ import annotations

import errno
import json
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from helpers import codecs
from helpers.core import space
from helpers.core.errors import (
    CorruptStoreError,
    ImageFormatError,
    ImageNotFoundError,
    IncompleteStoreError,
    InsufficientSpaceError,
    UnknownCodecError,
)
from helpers.core.files import fsync_path, fsync_tree, remove, write_atomically
from helpers.core.measure import disk_usage, regular_files
from helpers.stores.codec import EncodedImages

SUPPORTED_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
UINT8_CHANNELS = (1, 2, 3, 4)  # grey, grey+alpha, RGB, RGBA: what PNG can hold
PARTIAL_SUFFIX = ".partial"
PIECES_PLAN = ".pieces.json"  # inside a partial batch written in pieces: what the pieces add up to
PIECE_WRITING = ".writing-"  # in the name of a piece a process is still writing


def writing_name(name: str) -> str:
    """The temporary name this process and thread write the piece ``name`` under, before renaming it."""
    return f"{name}{PIECE_WRITING}{os.getpid()}.{threading.get_ident()}"


def planned_batch(count: int, image_shape: tuple[int, ...], dtype: object) -> np.ndarray:
    """A batch of ``count`` images of this shape and dtype as a broadcast view, no memory: what a space
    check needs of a batch not yet in hand is its length, shape and dtype."""
    return np.broadcast_to(np.zeros((1, *image_shape), dtype), (int(count), *image_shape))


def piece_count(plan: dict) -> int:
    """The number of pieces a plan of ``begin_pieces`` cuts its batch into."""
    return -(-plan["count"] // plan["piece_images"])
# A batch being deleted is renamed first, so a kill half-way through the deletion leaves no batch at all
# rather than a batch with some of its files gone.
REMOVING_SUFFIX = ".removing"
#: Images larger than this are read with the kernel's read-ahead on, smaller ones without (see wants_readahead).
READAHEAD_MIN_BYTES = 16 * 1024


def wants_readahead(image_bytes: int) -> bool:
    """Whether cold random reads of images of ``image_bytes`` each are faster with the kernel's read-ahead.

    Read-ahead fetches about 128 KiB around a cold page: for a 3 KiB CIFAR-10 image that is 40 times the
    bytes wanted (cold random reads measured about 3x slower with it), for a 512 KiB scan it turns a page
    at a time into one large request (about 3.5x faster with it). Between the two, from a few pages on,
    one larger request costs less than several page faults.
    """
    return image_bytes > READAHEAD_MIN_BYTES


def check_image_shape(shape: tuple[int, ...], dtype: np.dtype, what: str = "image") -> None:
    """Raise ImageFormatError unless one image of this shape and dtype can be stored by every method."""
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise ImageFormatError(
            f"{what} has dtype {dtype}; the stores take uint8 images or uint16 grayscale images "
            f"(convert floats with (x * 255).round().astype('uint8'))"
        )
    if len(shape) not in (2, 3):
        raise ImageFormatError(
            f"{what} has shape {shape}; expected (height, width) or (height, width, channels)"
        )
    if min(shape[:2]) < 1:
        raise ImageFormatError(f"{what} has shape {shape}; height and width must be at least 1")
    if len(shape) == 3:
        channels = shape[2]
        allowed = UINT8_CHANNELS if dtype == np.uint8 else (1,)
        if channels not in allowed:
            raise ImageFormatError(
                f"{what} has {channels} channels with dtype {dtype}; allowed: {allowed}"
            )


def check_stored(shape: tuple[int, ...], dtype: np.dtype, path: Path) -> None:
    """CorruptStoreError unless ``path`` holds images of a shape and dtype the stores write."""
    try:
        check_image_shape(tuple(shape), dtype)
    except ValueError as error:
        raise CorruptStoreError(f"{path}: holds images this library did not write ({error})") from None


def check_image(image: object) -> np.ndarray:
    """One image as a C-contiguous ndarray, or ImageFormatError saying what is wrong with it."""
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(f"image must be a numpy array, got {type(image).__name__}")
    check_image_shape(image.shape, image.dtype)
    return np.ascontiguousarray(image)


def check_label(label: object) -> int:
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        raise ImageFormatError(f"label must be an integer, got {label!r} ({type(label).__name__})")
    if not -(2**63) <= int(label) < 2**63:
        raise ImageFormatError(f"label {label} does not fit in 64 bits")
    return int(label)


def check_image_id(image_id: object) -> int:
    if isinstance(image_id, (bool, np.bool_)) or not isinstance(image_id, (int, np.integer)):
        raise ImageFormatError(f"image_id must be an integer, got {image_id!r}")
    if not 0 <= int(image_id) < 10**12:
        raise ImageFormatError(f"image_id must be between 0 and 10**12 - 1, got {image_id}")
    return int(image_id)


def check_batch(images: object, labels: object, *, encoded_with: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A batch as (images C-contiguous, labels int64), or ImageFormatError naming the problem.

    ``encoded_with``: the codec name of the store, when it takes chunks its workers encoded already
    (``codec.EncodedImages`` of that codec, passed on as they are).
    """
    if isinstance(images, EncodedImages):
        if encoded_with is None:
            raise ImageFormatError("images encoded already are taken only by a store that encodes each image "
                                   "with their codec (Store.encodes_each_image)")
        if images.codec_name != encoded_with:
            raise ImageFormatError(f"images encoded with {images.codec_name!r}; this store encodes with {encoded_with!r}")
    elif not isinstance(images, np.ndarray):
        raise ImageFormatError(f"images must be a numpy array, got {type(images).__name__}")
    if images.ndim not in (3, 4):
        raise ImageFormatError(
            f"images has shape {images.shape}; expected (n, height, width) or (n, height, width, channels)"
        )
    if len(images) == 0:
        raise ImageFormatError("images is empty; store_many needs at least one image")
    check_image_shape(images.shape[1:], images.dtype, what="each image")
    try:
        labels_array = np.asarray(labels)
    except (ValueError, TypeError, OverflowError) as error:  # ragged or mixed sequences
        raise ImageFormatError(f"labels must be a sequence of integers, one per image ({error})") from None
    if labels_array.dtype.kind not in "iu" or labels_array.dtype == np.uint64:
        raise ImageFormatError(f"labels must be integers, got dtype {labels_array.dtype}")
    if labels_array.shape != (len(images),):
        raise ImageFormatError(
            f"labels has shape {labels_array.shape} but there are {len(images)} images; "
            f"expected one label per image, shape ({len(images)},)"
        )
    if isinstance(images, EncodedImages):
        return images, labels_array.astype(np.int64)
    return np.ascontiguousarray(images), labels_array.astype(np.int64)


def check_indices(indices: object) -> np.ndarray:
    """Positions into a batch as a 1-D int64 array, or ImageFormatError naming what is wrong."""
    try:
        positions = np.asarray(indices)
    except (ValueError, TypeError, OverflowError) as error:
        raise ImageFormatError(f"indices must be a sequence of integers ({error})") from None
    if positions.ndim != 1:
        raise ImageFormatError(
            f"indices has shape {positions.shape}; expected a 1-D sequence of positions, e.g. [3, 0, 7]"
        )
    if positions.size == 0:
        return np.empty(0, dtype=np.int64)
    if positions.dtype.kind not in "iu" or positions.dtype == np.uint64:
        raise ImageFormatError(f"indices must be integers, got dtype {positions.dtype} ({positions[:3]}...)")
    positions = positions.astype(np.int64, copy=False)
    if positions.min() < 0:
        first = int(positions[np.argmax(positions < 0)])
        raise ImageFormatError(f"index {first} is negative; positions count from 0")
    return positions


def check_count(num_images: object, stored: int, where: Path) -> int:
    """The number of images to read, or an error if it is not a positive int within what was stored."""
    if isinstance(num_images, (bool, np.bool_)) or not isinstance(num_images, (int, np.integer)):
        raise ImageFormatError(f"num_images must be an integer, got {num_images!r}")
    if num_images < 1:
        raise ImageFormatError(f"num_images must be at least 1, got {num_images}")
    if num_images > stored:
        raise ImageNotFoundError(
            f"asked for {num_images} images but the batch in {where} holds {stored}"
        )
    return int(num_images)


class BatchReader(ABC):
    """A finished batch held open for random access by one process (see ``Store.batch_reader``).

    ``count``, ``shape`` and ``dtype`` describe the batch. ``read_one`` and ``read_indices`` take positions
    already checked to be in range (the store checks them), so each method's hot path is only its read.
    """

    #: Set once the reader can no longer be used; the store then opens a new one.
    closed = False

    def __init__(self, path: Path, count: int, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path = path
        self.count = count
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    @abstractmethod
    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        """Image ``index`` (a fresh array the caller owns) and its label."""

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels at ``indices`` (int64, in range, any order, repeats allowed), in that order.

        One ``read_one`` per position into a preallocated array; methods with a faster bulk path override it.
        """
        images = np.empty((len(indices), *self.shape), dtype=self.dtype)
        labels = np.empty(len(indices), dtype=np.int64)
        for position, index in enumerate(indices.tolist()):
            images[position], labels[position] = self.read_one(index)
        return images, labels

    def read_first(self, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``num_images`` images and labels (in range); methods with a bulk path override it."""
        return self.read_indices(np.arange(num_images, dtype=np.int64))

    def close(self) -> None:
        """Release what the reader holds open."""


class Store(ABC):
    """One storage method in one folder. Subclasses implement the ``_``-prefixed hooks.

    ``durable=True`` makes each write flush to stable storage before returning (fsync of every file
    and its folder; LMDB syncs its commits); ``False`` leaves that to the operating system, as Pillow
    and h5py do by default. The setting is the same across methods so that their times compare.
    """

    name: ClassVar[str]
    #: How the report names the method (figures, tables, sentences).
    label: ClassVar[str]
    #: The method's colour in every figure (a matplotlib colour), unique among the registered methods.
    colour: ClassVar[str]
    #: What this method pays for, in one sentence, for the report.
    trade_off: ClassVar[str]
    #: When to choose it whatever its speed here, what it offers that the measurements do not show, as the
    #: end of "Choose ...": "LMDB when you need keyed random access and transactions"; "" for the floor.
    choose_when: ClassVar[str] = ""
    #: Name of the batch inside ``root`` (a file or a folder).
    batch_name: ClassVar[str]

    #: What ``compression=`` accepts for this method (codec names of ``helpers.codecs``, or the method's
    #: own filters); empty: the method stores what it stores and takes no other compression.
    compressions: ClassVar[tuple[str, ...]] = ()
    #: What the method writes with ``compression=None``, as a ``compressions`` name (None: raw pixels).
    native_compression: ClassVar[str | None] = None

    def __init__(
        self, root: str | os.PathLike[str], *, durable: bool = False, compression: str | None = None
    ) -> None:
        self.root = Path(root)
        self.durable = durable
        self.compression = self.check_compression(compression)
        self.root.mkdir(parents=True, exist_ok=True)
        self._reader: BatchReader | None = None
        self._reader_pid = -1

    def __repr__(self) -> str:
        extra = f", compression={self.compression!r}" if self.compression else ""
        return f"{type(self).__name__}(root={str(self.root)!r}, durable={self.durable}{extra})"

    @classmethod
    def check_compression(cls, compression: object) -> str | None:
        """``compression`` as this method records it; UnknownCodecError naming what the method accepts."""
        if compression is None:
            return None
        family = str(compression).strip().lower().partition(":")[0]
        if not isinstance(compression, str) or family not in cls.compressions:
            accepted = ", ".join(cls.compressions) if cls.compressions else "no compression= (None only)"
            raise UnknownCodecError(
                f"the {cls.name} method does not take compression {compression!r}; it accepts: {accepted}"
            )
        compression = compression.strip().lower()
        if family in codecs.CODECS:
            codecs.get_codec(compression)  # a level or quality out of range is refused here, with the range
        return compression

    def check_codec_holds(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        """ImageFormatError, before anything is written, when ``compression=`` names a codec that cannot
        hold such images (JPEG and 16 bits, WebP and grey with alpha)."""
        if self.compression is not None and self.compression.partition(":")[0] in codecs.CODECS:
            codecs.get_codec(self.compression).check(shape, dtype)

    @property
    def image_codec(self) -> codecs.Codec | None:
        """The ``helpers.codecs`` codec ``compression=`` names (None: raw pixels), for methods that encode
        each image as one value with it."""
        return None if self.compression is None else codecs.get_codec(self.compression)

    # -- the article's four operations -------------------------------------------------------------
    def store_single(self, image: np.ndarray, image_id: int, label: int) -> None:
        """Store one image under ``image_id`` with its label, replacing any earlier one."""
        image, image_id, label = check_image(image), check_image_id(image_id), check_label(label)
        self.check_codec_holds(image.shape, image.dtype)
        try:
            self._store_single(image, image_id, label)
        except Exception as error:
            needed = self.space_needed(1, image.shape, image.dtype, single=True)
            if self._ran_out_of_space(error, needed):
                raise self._out_of_space(error, f"image {image_id}") from error
            raise

    def read_single(self, image_id: int) -> tuple[np.ndarray, int]:
        """The image and label stored under ``image_id``."""
        return self._read_single(check_image_id(image_id))

    def store_many(self, images: np.ndarray, labels: np.ndarray | list[int]) -> None:
        """Store a batch, replacing the previous one; the batch is visible only once complete.

        Free space is checked first (InsufficientSpaceError, nothing touched). The previous batch is then
        removed before the new one is written, so the disk never holds two. The batch is written as one
        chunk by the same code as ``store_chunks``.
        """
        images, labels = check_batch(images, labels)
        self.check_codec_holds(images.shape[1:], images.dtype)
        self._check_space_for(images)
        self._replace_batch(
            iter([(images, labels)]), len(images), lambda: self.estimated_batch_bytes(images),
            lambda: f"a batch of {len(images)} images",
        )

    def store_chunks(self, chunks: Iterable[tuple[np.ndarray, object]], *, total: int | None = None) -> int:
        """Store a batch arriving as ``(images, labels)`` chunks, replacing the previous one; images written.

        Memory stays bounded by a couple of chunks plus the method's own buffers, whatever the total, so a
        batch larger than RAM can be written from a generator. Every chunk must hold images of the first
        chunk's shape and dtype (ImageFormatError naming the chunk otherwise). ``total``, the number of
        images the chunks will hold, lets the free space be checked once for the whole batch before anything
        is touched (and lets some methods lay the batch out at once); without it, space is checked before
        each chunk. As with ``store_many``, the batch is visible only once complete: a bad chunk, a full disk
        or a kill leaves no batch that reads as finished (the previous one is gone either way). A method that
        encodes each image with its codec (``encodes_each_image``) also takes chunks of images that other
        processes encoded already, ``codec.EncodedImages`` of the same codec.
        """
        if total is not None and (
            isinstance(total, (bool, np.bool_)) or not isinstance(total, (int, np.integer)) or total < 1
        ):
            raise ImageFormatError(f"total must be a positive number of images or None, got {total!r}")
        stream = ChunkStream(chunks, None if total is None else int(total), self.chunk_codec)
        self.check_codec_holds(stream.image_shape, stream.dtype)
        planned = planned_batch(stream.total or len(stream.peek()[0]), stream.image_shape, stream.dtype)
        self._check_space_for(planned)
        if stream.total is None:
            stream.before_each = self._check_space_for_chunk
        self._replace_batch(
            stream, stream.total, lambda: self.estimated_batch_bytes(planned),
            lambda: f"a batch of {stream.total or f'{stream.count} or more'} images",
        )
        return stream.count

    def _check_space_for_chunk(self, images: np.ndarray, index: int) -> None:
        if index:  # the first chunk was checked with the previous batch's space counted as free
            needed = self.estimated_batch_bytes(images)
            space.check_free_space(self.root, needed, f"chunk {index} ({len(images)} images) of a {self.name} batch")

    def _replace_batch(
        self, chunks: Iterator[tuple[np.ndarray, np.ndarray]], total: int | None, estimate: Callable[[], int],
        what: Callable[[], str],
    ) -> None:
        """Remove the previous batch, write ``chunks`` at the partial path, and rename it into place."""
        self.close()
        partial = self.partial_path
        remove(partial)
        self._remove_batch()
        try:
            self._write_chunks(partial, chunks, total)
        except BaseException as error:
            full = isinstance(error, Exception) and self._ran_out_of_space(error, estimate())
            remove(partial)
            if full:
                raise self._out_of_space(error, what()) from error
            raise
        self._publish(partial)

    def _remove_batch(self) -> None:
        """Remove the batch in place, and what an interrupted removal left: it is renamed aside first, so a
        kill half-way through the deletion leaves no batch rather than one with some of its files gone."""
        removing = self.root / (self.batch_name + REMOVING_SUFFIX)
        remove(removing)
        if self.batch_path.exists():
            os.replace(self.batch_path, removing)
            remove(removing)

    def _publish(self, partial: Path) -> None:
        """Make the finished batch at ``partial`` the store's batch (flushed first if durable)."""
        if self.durable:
            fsync_tree(partial)
        os.replace(partial, self.batch_path)
        if self.durable:
            fsync_path(self.root)

    #: Whether each image is encoded on its own by ``image_codec`` (one value per image), so that
    #: ``store_chunks`` also takes chunks of ``codec.EncodedImages`` that other processes encoded.
    encodes_each_image: ClassVar[bool] = False

    @property
    def chunk_codec(self) -> str | None:
        """The name of the codec whose ``codec.EncodedImages`` chunks ``store_chunks`` takes, or None when
        this store takes arrays only (it encodes no image on its own, or has no codec)."""
        return self.image_codec.name if self.encodes_each_image and self.image_codec is not None else None

    # -- a batch written in pieces by many processes (helpers.convert) ------------------------------------
    #: Whether separate processes may write the batch at once, in pieces (``write_piece``); False when the
    #: method's batch is one file that only one writer can build (LMDB, HDF5 without MPI, NumPy).
    writes_pieces: ClassVar[bool] = False

    def images_per_piece(self, image_shape: tuple[int, ...], dtype: np.dtype) -> int:
        """Images in each piece (the last may hold fewer) of a batch of images of this shape and dtype."""
        raise NotImplementedError(f"the {self.name} method writes its batch with one writer (no pieces)")

    def piece_bounds(self, index: int) -> tuple[int, int]:
        """(first image, one past the last) of piece ``index`` of the batch being written in pieces."""
        plan = self._plan()
        start = index * plan["piece_images"]
        return start, min(start + plan["piece_images"], plan["count"])

    @property
    def pieces_plan_path(self) -> Path:
        return self.partial_path / PIECES_PLAN

    def begin_pieces(self, total: int, image_shape: tuple[int, ...], dtype: object) -> int:
        """Prepare the partial batch for ``total`` images written as pieces by any number of processes.

        Pieces already written by an interrupted run with the same plan are kept (a rerun finishes the
        batch); anything else, and the previous batch, is removed. Returns the number of pieces.
        """
        dtype = np.dtype(dtype)
        check_image_shape(tuple(image_shape), dtype)
        per_piece = self.images_per_piece(tuple(image_shape), dtype)
        plan = {"method": self.name, "compression": self.compression, "count": int(total),
                "shape": list(image_shape), "dtype": dtype.name, "piece_images": per_piece}
        self.close()
        partial = self.partial_path
        if self._read_plan() != plan:
            self._check_space_for(planned_batch(total, image_shape, dtype))
            remove(partial)
            partial.mkdir()
            self._begin_pieces(partial)
            write_atomically(self.pieces_plan_path, json.dumps(plan).encode(), durable=self.durable)
        self._remove_batch()
        self._discard_unfinished_pieces(partial)
        return piece_count(plan)

    def _read_plan(self) -> dict | None:
        try:
            return json.loads(self.pieces_plan_path.read_text())
        except (OSError, ValueError):
            return None

    def _plan(self) -> dict:
        plan = self._read_plan()
        if plan is None:
            raise IncompleteStoreError(f"no batch is being written in pieces in {self.root}; call begin_pieces")
        return plan

    def pieces_done(self) -> set[int]:
        """Indices of the pieces already written (each appears only once complete)."""
        partial = self.partial_path
        return {index for index in range(piece_count(self._plan())) if self._piece_done(partial, index)}

    def write_piece(self, index: int, images: np.ndarray, labels: np.ndarray | list[int]) -> None:
        """Write piece ``index`` (images ``index * piece_images`` onwards), atomically: a process killed
        half-way leaves no piece that counts as written. Safe to call from several processes at once."""
        plan = self._plan()
        images, labels = check_batch(images, labels)
        pieces = piece_count(plan)
        if not 0 <= index < pieces:
            raise ImageFormatError(f"piece {index} is out of range: the batch has pieces 0 to {pieces - 1}")
        expected = min(plan["piece_images"], plan["count"] - index * plan["piece_images"])
        if len(images) != expected or list(images.shape[1:]) != plan["shape"] or images.dtype.name != plan["dtype"]:
            raise ImageFormatError(
                f"piece {index} holds {len(images)} images of shape {images.shape[1:]} {images.dtype}; "
                f"the plan expects {expected} of shape {tuple(plan['shape'])} {plan['dtype']}"
            )
        self._write_piece(self.partial_path, index, images, labels, plan["count"])

    def commit_pieces(self) -> None:
        """Join the written pieces into the store's batch, visible from now on; IncompleteStoreError naming
        the first missing piece if any is."""
        plan = self._plan()
        pieces = piece_count(plan)
        missing = sorted(set(range(pieces)) - self.pieces_done())
        if missing:
            raise IncompleteStoreError(
                f"{len(missing)} of {pieces} pieces of the batch in {self.root} are not written "
                f"(first: piece {missing[0]}); write them and commit again"
            )
        self._discard_unfinished_pieces(self.partial_path)  # left by workers killed while writing a piece
        self._commit_pieces(self.partial_path, plan["count"], tuple(plan["shape"]), np.dtype(plan["dtype"]))
        self.pieces_plan_path.unlink()
        self._publish(self.partial_path)

    def _write_piece(
        self, partial: Path, index: int, images: np.ndarray, labels: np.ndarray, count: int
    ) -> None:
        """Write piece ``index`` of a batch of ``count`` images atomically (a temporary name, then a rename)."""
        raise NotImplementedError

    def _piece_done(self, partial: Path, index: int) -> bool:
        """Whether piece ``index`` is written (all of it, as it appears only once complete)."""
        raise NotImplementedError

    def _begin_pieces(self, partial: Path) -> None:
        """Prepare the empty partial folder for pieces (e.g. file system hints)."""

    def _discard_unfinished_pieces(self, partial: Path) -> None:
        """Remove what processes killed while writing a piece left behind (pieces are never half there):
        everything named by ``writing_name``."""
        for entry in partial.iterdir():
            if PIECE_WRITING in entry.name:
                remove(entry)

    def _commit_pieces(self, partial: Path, count: int, image_shape: tuple[int, ...], dtype: np.dtype) -> None:
        raise NotImplementedError

    def estimated_batch_bytes(self, images: np.ndarray) -> int:
        """Disk space storing ``images`` as a batch may take."""
        needed = self.space_needed(len(images), images.shape[1:], images.dtype, single=False)
        if self.compression is not None:  # a codec grows an incompressible image a little (its headers)
            needed += needed // 32 + 64 * len(images)
        return needed

    def _check_space_for(self, images: np.ndarray) -> None:
        needed = self.estimated_batch_bytes(images)
        needed_files = self.files_needed(len(images), single=False)
        what = f"a {self.name} batch of {len(images)} images"
        free_files = space.free_files(self.root)
        if space.free_bytes(self.root) >= needed and (free_files is None or free_files >= needed_files):
            return
        # Only now count what the previous batch frees: walking 100,000 PNG files is not free.
        leftovers = [self.batch_path, self.partial_path, self.root / (self.batch_name + REMOVING_SUFFIX)]
        usages = [disk_usage(path) for path in leftovers if path.exists()]
        reclaimed = sum(usage.allocated for usage in usages)
        reclaimed_files = sum(usage.files for usage in usages)  # regular files: folders are a bonus
        if reclaimed:
            what += (
                f" (counting {space.human_bytes(reclaimed)} and {reclaimed_files:,} files freed by removing "
                f"the previous batch)"
            )
        space.check_free_space(
            self.root, needed - reclaimed, what, needed_files=needed_files - reclaimed_files
        )

    def _ran_out_of_space(self, error: Exception, needed: int) -> bool:
        """Whether a failed write failed for want of space (asked while its partial output still exists).

        LMDB reports a short write as EIO, NumPy without an errno: when the error does not say, a disk with
        less room left than the write needs is taken as the reason.
        """
        if isinstance(error, InsufficientSpaceError):
            return False  # already says so
        return space.is_out_of_space(error) or space.free_bytes(self.root) < needed

    def _out_of_space(self, error: BaseException, what: str) -> InsufficientSpaceError:
        free = space.free_bytes(self.root)
        out = InsufficientSpaceError(
            f"the disk holding {self.root} filled up while writing {what} ({error}); "
            f"{space.human_bytes(free)} free now; nothing half-written was kept"
        )
        out.errno = errno.ENOSPC
        return out

    def read_many(self, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``num_images`` images and labels of the batch."""
        return self._read_batch(self.finished_batch_path(), num_images)

    def finished_batch_path(self) -> Path:
        """Where the complete batch is; IncompleteStoreError or ImageNotFoundError when there is none."""
        final = self.batch_path
        if not final.exists():
            partial = self.partial_path
            if partial.exists():
                raise IncompleteStoreError(
                    f"the batch in {self.root} was not finished (found {partial.name}, an interrupted "
                    f"store_many); call clear() and store the batch again"
                )
            raise ImageNotFoundError(f"no batch stored in {self.root}; call store_many first")
        return final

    # -- random access, beyond the article -------------------------------------------------------
    def __len__(self) -> int:
        """Images in the batch; 0 when there is none."""
        if self._reader is None and not self.batch_path.exists():
            return 0
        return self.batch_reader().count

    def __bool__(self) -> bool:  # a store with no batch yet is still a store
        return True

    def read_indices(self, indices: object) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels at these positions of the batch, in the order asked (repeats allowed).

        Positions count from 0 in the order ``store_many`` was given; an empty list gives arrays of length
        0 with the batch's image shape.
        """
        positions = check_indices(indices)
        reader = self.batch_reader()
        if positions.size and positions.max() >= reader.count:
            raise ImageNotFoundError(
                f"index {int(positions.max())} is out of range: the batch in {self.root} holds "
                f"{reader.count} images (positions 0 to {reader.count - 1})"
            )
        return reader.read_indices(positions)

    def batch_reader(self) -> BatchReader:
        """The batch held open for random access in this process, opened on first use.

        It stays open until ``close()``, ``clear()`` or the next ``store_many`` through this store; a batch
        replaced from another process is seen after ``close()``. A forked child opens its own.
        """
        reader = self._reader
        if reader is None or reader.closed or self._reader_pid != os.getpid():
            reader = self._open_reader(self.finished_batch_path())
            self._reader, self._reader_pid = reader, os.getpid()
        return reader

    # -- bookkeeping -------------------------------------------------------------------------------
    @property
    def batch_path(self) -> Path:
        return self.root / self.batch_name

    def single_path(self, image_id: int, suffix: str) -> Path:
        """The file of image ``image_id``, for methods that keep one file per single image."""
        return self.root / "single" / f"{image_id}{suffix}"

    @property
    def partial_path(self) -> Path:
        """Where a batch is written until it is complete."""
        return self.root / (self.batch_name + PARTIAL_SUFFIX)

    def files(self) -> list[Path]:
        """Every file this store wrote, sorted."""
        return regular_files(self.root)

    def files_holding(self, indices: object) -> list[Path]:
        """The files a read of these batch positions opens: by default every file of the store; a method
        with one file per image names only those (evicting 100,000 PNG files for a cold read of 1,000 of
        them costs minutes)."""
        return self.files()

    def clear(self) -> None:
        """Remove everything the store wrote, including interrupted writes."""
        self.close()
        for entry in list(self.root.iterdir()):
            remove(entry)

    def close(self) -> None:
        """Release open handles; the store reopens them when used again."""
        reader, self._reader = self._reader, None
        if reader is not None and self._reader_pid == os.getpid() and not reader.closed:
            reader.close()
        for hook in list(self.__dict__.get("_close_hooks", ())):  # e.g. helpers.loader's persistent workers
            hook(self)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        # Handles (LMDB environments, HDF5 files) are per process: a worker reopens its own.
        return {"root": self.root, "durable": self.durable, "compression": self.compression}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root"], durable=state["durable"], compression=state.get("compression"))

    # -- what each method implements -----------------------------------------------------------
    @abstractmethod
    def _store_single(self, image: np.ndarray, image_id: int, label: int) -> None: ...

    @abstractmethod
    def _read_single(self, image_id: int) -> tuple[np.ndarray, int]: ...

    def _write_batch(self, path: Path, images: np.ndarray, labels: np.ndarray) -> None:
        """Write the whole batch at ``path`` (a temporary name; the caller renames it): one chunk."""
        self._write_chunks(path, iter([(images, labels)]), len(images))

    def _write_chunks(
        self, path: Path, chunks: Iterator[tuple[np.ndarray, np.ndarray]], total: int | None
    ) -> None:
        """Write the batch at ``path`` from checked chunks of one shape and dtype (``total`` images if known).

        Each method overrides this (or, for a method not yet written for streaming, ``_write_batch``: the
        chunks are then gathered in memory first, which ``streams`` reports).
        """
        parts = list(chunks)
        images = parts[0][0] if len(parts) == 1 else np.concatenate([images for images, _ in parts])
        labels = parts[0][1] if len(parts) == 1 else np.concatenate([labels for _, labels in parts])
        del parts
        self._write_batch(path, images, labels)

    @classmethod
    def streams(cls) -> bool:
        """Whether ``store_chunks`` writes with bounded memory (the method implements ``_write_chunks``)."""
        return cls._write_chunks is not Store._write_chunks

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls._write_chunks is Store._write_chunks and cls._write_batch is Store._write_batch:
            raise TypeError(f"{cls.__name__} must implement _write_chunks (or _write_batch)")

    def _read_batch(self, path: Path, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        """Read the first ``num_images`` of the batch at ``path`` (validated with check_count): by default
        through the batch reader held in this process (``BatchReader.read_first``)."""
        reader = self.batch_reader()
        return reader.read_first(check_count(num_images, reader.count, path))

    @abstractmethod
    def _open_reader(self, path: Path) -> BatchReader:
        """Open the finished batch at ``path`` for random access (CorruptStoreError if it is damaged)."""

    @classmethod
    def files_needed(cls, n_images: int, single: bool) -> int:
        """Files and folders (inodes) ``n_images`` images may take, on the high side: as one batch, or one
        by one if ``single``. This default suits a method keeping a batch in a few files and each single
        image in a file of its own; methods with other layouts override it."""
        return int(n_images) + 4 if single else 8

    @classmethod
    @abstractmethod
    def space_needed(cls, n_images: int, image_shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
        """Disk space ``n_images`` images of a valid shape and dtype may take, allocated blocks included, on
        the high side (``helpers.core.space`` has the shared rules): as one batch, or one by one if ``single``."""

    @classmethod
    def disk_usage_note(cls, n_images: int, apparent_bytes: int, allocated_bytes: int, raw_image_bytes: int) -> str:
        """Why a batch of ``n_images`` took these measured bytes (file lengths, allocated blocks) when each
        image has ``raw_image_bytes`` of pixels: a sentence or two of markdown for the report's disk-usage
        chapter, its numbers computed from the arguments. "" (the default) makes the report fall back to
        ``trade_off``."""
        return ""


def allocated_bytes(path: Path) -> int:
    """Disk space a file or folder tree takes (blocks actually allocated), 0 if it does not exist."""
    return disk_usage(path).allocated if Path(path).exists() else 0


class AlignedBlocks:
    """``(first index, images, labels)`` blocks of ``block_images`` images (the last may be short),
    regrouped from a batch arriving as chunks of any size, so that a writer whose files hold fixed runs of
    images (PNG shard folders, Zarr shards, Parquet row groups) writes each run once, whole.

    A chunk's whole blocks are passed on as views; a block split between chunks is gathered first. Images
    may be arrays or ``codec.EncodedImages``. ``on_labels(first index, labels)``, if given, sees each
    chunk's labels as it arrives. ``count``, ``shape`` and ``dtype`` describe what went through.
    """

    def __init__(
        self, chunks: Iterable[tuple[np.ndarray, np.ndarray]], block_images: int,
        on_labels: Callable[[int, np.ndarray], None] | None = None,
    ) -> None:
        self.chunks, self.block_images, self.on_labels = chunks, block_images, on_labels
        self.count, self.shape, self.dtype = 0, (), np.dtype(np.uint8)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        start, gathered, gathered_count = 0, [], 0  # the block being gathered: first index, parts, images
        for images, labels in self.chunks:
            if self.on_labels is not None:
                self.on_labels(self.count, labels)
            self.count += len(images)
            self.shape, self.dtype = images.shape[1:], images.dtype
            offset = 0
            while offset < len(images):
                block_end = (start // self.block_images + 1) * self.block_images
                take = min(len(images) - offset, block_end - start - gathered_count)
                gathered.append((images[offset : offset + take], labels[offset : offset + take]))
                gathered_count += take
                offset += take
                if start + gathered_count == block_end:
                    block, gathered, gathered_count = joined(gathered), [], 0  # the parts go before the block is used
                    yield (start, *block)
                    start, block = block_end, None
        if gathered:
            yield (start, *joined(gathered))


def joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of consecutive parts as one run (the part itself when there is one)."""
    if len(parts) == 1:
        return parts[0]
    labels = np.concatenate([labels for _, labels in parts])
    if isinstance(parts[0][0], EncodedImages):
        return EncodedImages.join([images for images, _ in parts]), labels
    return np.concatenate([images for images, _ in parts]), labels


class ChunkStream:
    """The chunks given to ``store_chunks``, checked one by one as the writer takes them.

    The first chunk is taken at once (its shape and dtype are the batch's); each later one must match it.
    ``before_each(images, index)`` runs before a chunk is handed on (the space check when no total was
    declared). ``count`` is the number of images handed on so far; a declared ``total`` must be met exactly.
    """

    def __init__(
        self, chunks: Iterable[tuple[np.ndarray, object]], total: int | None, encoded_with: str | None = None
    ) -> None:
        self.total = total
        self.encoded_with = encoded_with
        self.count = 0
        self.before_each: Callable[[np.ndarray, int], None] | None = None
        self._source = iter(chunks)
        self._index = 0
        try:
            first = next(self._source)
        except StopIteration:
            raise ImageFormatError("chunks is empty; store_chunks needs at least one chunk of images") from None
        self._pending: tuple[np.ndarray, np.ndarray] | None = self._check(first)
        #: The batch's image shape and dtype, from the first chunk (which is not kept once handed on).
        self.image_shape, self.dtype = self._pending[0].shape[1:], self._pending[0].dtype

    def _check(self, chunk: object) -> tuple[np.ndarray, np.ndarray]:
        what = f"chunk {self._index}"
        if not isinstance(chunk, tuple) or len(chunk) != 2:
            raise ImageFormatError(f"{what} is a {type(chunk).__name__}; each chunk must be an (images, labels) pair")
        try:
            images, labels = check_batch(*chunk, encoded_with=self.encoded_with)
        except ImageFormatError as error:
            raise ImageFormatError(f"{what}: {error}") from None
        if self._index and (images.shape[1:] != self.image_shape or images.dtype != self.dtype):
            raise ImageFormatError(
                f"{what} holds images of shape {images.shape[1:]} {images.dtype}; the first chunk's are "
                f"{self.image_shape} {self.dtype}, and one batch holds one shape and dtype"
            )
        if self.total is not None and self.count + len(images) > self.total:
            raise ImageFormatError(
                f"{what} brings the batch to {self.count + len(images)} images; total={self.total} was declared"
            )
        return images, labels

    def peek(self) -> tuple[np.ndarray, np.ndarray]:
        """The first chunk, before it is handed on."""
        assert self._pending is not None and not self._index
        return self._pending

    def __iter__(self) -> "ChunkStream":
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pending is not None:
            chunk, self._pending = self._pending, None
        else:
            try:
                raw = next(self._source)
            except StopIteration:
                if self.total is not None and self.count != self.total:
                    raise ImageFormatError(
                        f"the chunks held {self.count} images; total={self.total} was declared"
                    ) from None
                raise
            chunk = self._check(raw)
        if self.before_each is not None:
            self.before_each(chunk[0], self._index)
        self._index += 1
        self.count += len(chunk[0])
        return chunk

