"""The contract every storage method keeps: store, read, validate, commit atomically.

A store lives in one folder (``root``). It holds two independent things, as in the article:
single images written one at a time by id (``store_single``), and one batch written at once
(``store_many``, or ``store_chunks`` from an iterable of chunks). A new batch replaces the previous one.
Batches are written to a temporary name and renamed into place when complete, so an interrupted write is
never mistaken for a finished one; free space is checked before anything is touched. A finished batch is
read in bulk (``read_many``) or at random (``read_indices``) through a ``BatchReader`` each process opens.

Each method implements the ``_``-prefixed hooks (``_store_single``, ``_read_single``, ``_write_chunks``,
``_open_reader``, ``space_needed``) and says what it is in class attributes. What callers give is checked
by ``helpers.stores.checks``; a batch arriving in chunks goes through ``helpers.stores.chunks``. Optional
abilities are mix-ins only the methods that have them carry: ``helpers.stores.pieces.WritesPieces`` (a
batch written by many processes at once). What the report says of a method (``label``, ``colour``,
``trade_off``, ``choose_when``, ``writer_memory_note``, ``disk_usage_note``, ``compressed_space_note``) lives
on its class too.
"""

from __future__ import annotations

import errno
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from helpers import codecs
from helpers.core import space
from helpers.core.errors import (
    ImageNotFoundError,
    IncompleteStoreError,
    InsufficientSpaceError,
    UnknownCodecError,
)
from helpers.core.files import fsync_path, fsync_tree, remove
from helpers.core.measure import disk_usage, regular_files
from helpers.stores.checks import (
    check_batch,
    check_count,
    check_image,
    check_image_id,
    check_indices,
    check_label,
    check_total,
)
from helpers.stores.chunks import ChunkStream, planned_batch

PARTIAL_SUFFIX = ".partial"
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
    #: Name of the batch inside ``root`` (a file or a folder).
    batch_name: ClassVar[str]
    #: What ``compression=`` accepts for this method (codec names of ``helpers.codecs``, store filters such
    #: as HDF5's gzip included); empty: the method stores what it stores and takes no other compression.
    compressions: ClassVar[tuple[str, ...]] = ()
    #: What the method writes with ``compression=None``, as a ``compressions`` name (None: raw pixels).
    native_compression: ClassVar[str | None] = None
    #: Whether each image is encoded on its own by ``image_codec`` (one value per image), so that
    #: ``store_chunks`` also takes chunks of ``values.EncodedImages`` that other processes encoded.
    encodes_each_image: ClassVar[bool] = False
    #: Whether separate processes may write the batch at once, in pieces: the ``WritesPieces`` mix-in.
    writes_pieces: ClassVar[bool] = False

    # -- what the report says of the method ----------------------------------------------------------
    #: How the report names the method (figures, tables, sentences).
    label: ClassVar[str]
    #: The method's colour in every figure (a matplotlib colour), unique among the registered methods.
    colour: ClassVar[str]
    #: What this method pays for, in one sentence, for the report.
    trade_off: ClassVar[str]
    #: When to choose it whatever its speed here, what it offers that the measurements do not show, as the
    #: end of "Choose ...": "LMDB when you need keyed random access and transactions"; "" for the floor.
    choose_when: ClassVar[str] = ""
    #: What the peak memory of the writing process leaves out of this method's writes, in one sentence for
    #: the report's at-scale chapter (memory of the worker processes that encode for it); "" when the
    #: writer's own memory is all of it.
    writer_memory_note: ClassVar[str] = ""

    @classmethod
    def disk_usage_note(cls, n_images: int, apparent_bytes: int, allocated_bytes: int, raw_image_bytes: int) -> str:
        """Why a batch of ``n_images`` took these measured bytes (file lengths, allocated blocks) when each
        image has ``raw_image_bytes`` of pixels: a sentence or two of markdown for the report's disk-usage
        chapter, its numbers computed from the arguments. "" (the default) makes the report fall back to
        ``trade_off``."""
        return ""

    @classmethod
    def compressed_space_note(
        cls, codec: str, value_bytes: float, allocated_bytes: float, raw_allocated_bytes: float
    ) -> str:
        """Why the method's smallest lossless compressed batch takes the space it does beside its batch of raw
        pixels, per image: ``codec`` made values of ``value_bytes`` (the encoded image), which took
        ``allocated_bytes`` of disk against ``raw_allocated_bytes`` without a codec. A sentence of markdown
        for the report's compression chapter, its numbers computed from the arguments; "" (the default)
        when the chapter's own numbers say it all."""
        return ""

    def __init__(
        self, root: str | os.PathLike[str], *, durable: bool = False, compression: str | None = None
    ) -> None:
        self.root = Path(root)
        self.durable = durable
        #: ``compression=`` parsed once (None: the method's own default); ``compression`` is its name.
        self.parsed_compression = self.parse_compression(compression)
        self.compression = None if self.parsed_compression is None else self.parsed_compression.spec
        self.root.mkdir(parents=True, exist_ok=True)
        self._reader: BatchReader | None = None
        self._reader_pid = -1

    def __repr__(self) -> str:
        extra = f", compression={self.compression!r}" if self.compression else ""
        return f"{type(self).__name__}(root={str(self.root)!r}, durable={self.durable}{extra})"

    @classmethod
    def parse_compression(cls, compression: object) -> codecs.Compression | None:
        """``compression`` parsed, if this method takes it; UnknownCodecError naming what the method
        accepts, or what is wrong with the level or quality."""
        if compression is None:
            return None
        if not isinstance(compression, str) or codecs.family(compression) not in cls.compressions:
            accepted = ", ".join(cls.compressions) if cls.compressions else "no compression= (None only)"
            raise UnknownCodecError(
                f"the {cls.name} method does not take compression {compression!r}; it accepts: {accepted}"
            )
        return codecs.parse(compression)

    @classmethod
    def check_compression(cls, compression: object) -> str | None:
        """``compression`` as this method records it; UnknownCodecError naming what the method accepts."""
        parsed = cls.parse_compression(compression)
        return None if parsed is None else parsed.spec

    def check_codec_holds(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        """ImageFormatError, before anything is written, when ``compression=`` names a codec that cannot
        hold such images (JPEG and 16 bits, WebP and grey with alpha)."""
        if self.parsed_compression is not None:
            self.parsed_compression.codec.check(shape, dtype)

    @property
    def image_codec(self) -> codecs.Codec | None:
        """The ``helpers.codecs`` codec ``compression=`` names (None: raw pixels), for methods that encode
        each image as one value with it."""
        return None if self.parsed_compression is None else self.parsed_compression.image_codec

    @property
    def chunk_codec(self) -> str | None:
        """The name of the codec whose ``values.EncodedImages`` chunks ``store_chunks`` takes, or None when
        this store takes arrays only (it encodes no image on its own, or has no codec)."""
        return self.image_codec.name if self.encodes_each_image and self.image_codec is not None else None

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
        processes encoded already, ``values.EncodedImages`` of the same codec.
        """
        stream = ChunkStream(chunks, check_total(total), self.chunk_codec)
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

    # -- free space, checked before anything is written -----------------------------------------------
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
