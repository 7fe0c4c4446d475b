"""LMDB: one key per image (``%08d``), each value a small header plus the raw pixels (see ``values``).

Single images live in the environment ``single.lmdb``; a batch in ``many.lmdb``, written in one write
transaction with keys in append order and a ``__batch__`` record (count, shape, dtype) that sorts after
every image key. The map size is computed from the data and doubled on ``MapFullError``, so callers never
choose it. ``durable`` maps to LMDB's own ``sync``: each commit is flushed to stable storage, as LMDB does
by default; without it the operating system writes the pages back when it likes, as Pillow and h5py do.
Readers open environments read-only.

Random reads (``LmdbReader``) choose LMDB's ``readahead`` by the size of one value (``wants_readahead``):
small values, such as CIFAR-10's 3 KiB, are read with ``readahead=False`` (the map is advised
``MADV_RANDOM``, so a cold read fetches the value's own pages instead of 128 KiB around them: measured here
about 3x faster for cold random 3 KiB reads); values over 16 KiB keep the kernel's read-ahead, which then
fetches the value's consecutive overflow pages in one request (measured about 3.5x faster than page by page
for 512 KiB values).
With ``compression=`` (any codec of ``helpers.codecs``) each value is a compressed value of ``values``
(header, codec byte, encoded length, encoded image) and the batch record names the codec with its level;
a reader finds the codec there and in each value, so it is never told (a store opened with another
``compression=``, or none, reads what was recorded). The raw path is untouched: compressed batches have
their own reader (``CompressedLmdbReader``) and bulk read (``read_compressed_values``), which decode a
chunk or a mini-batch of values at once (``values.decode_batch_values``).
"""

from __future__ import annotations

import itertools
import json
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import lmdb
import numpy as np

from helpers.codecs import Codec, Compression, parse
from helpers.codecs import names as codec_names
from helpers.core import space
from helpers.core.errors import CorruptStoreError, ImageNotFoundError, UnknownCodecError
from helpers.core.measure import format_bytes
from helpers.stores import values
from helpers.stores.base import BatchReader, Store, wants_readahead
from helpers.stores.checks import check_count, check_image_shape

BATCH_KEY = b"__batch__"
CHUNK = 1024  # images per buffer when encoding or decoding a batch
LABEL = slice(values.HEADER_SIZE - 8, values.HEADER_SIZE)  # where each header keeps its int64 label
unpack_label = struct.Struct("<q").unpack_from  # (label,) from a value at offset LABEL.start
PAGE = 4096
MIN_MAP_SIZE = 1 << 20
# Written pages stay resident while the map is open: reopening the environment after this many bytes keeps
# a large batch's memory bounded.
REMAP_BYTES = 64 << 20


def image_key(image_id: int) -> bytes:
    return b"%08d" % image_id


def map_size_for(value_sizes: int, count: int) -> int:
    """Bytes of map that ``count`` values totalling ``value_sizes`` bytes need, with room to spare.

    A value larger than about half a page goes to overflow pages of its own, so round each up to pages.
    """
    per_value = value_sizes / max(count, 1)
    pages_each = -(-(int(per_value) + 64) // PAGE)
    estimate = count * pages_each * PAGE + count * 64
    return max(MIN_MAP_SIZE, int(estimate * 1.25) + 16 * PAGE)


def open_environment(
    path: Path, *, write: bool, map_size: int = MIN_MAP_SIZE, sync: bool = True, writemap: bool = False,
    lock: bool = True, readahead: bool = True,
) -> lmdb.Environment:
    if not write:
        if not (path / "data.mdb").exists():
            raise CorruptStoreError(f"{path / 'data.mdb'}: file is missing from the store")
        try:
            env = lmdb.open(str(path), readonly=True, lock=lock, readahead=readahead, max_dbs=0)
        except lmdb.Error as error:
            raise CorruptStoreError(f"{path}: not a readable LMDB environment ({error})") from None
        # LMDB reads through a memory map: a page past the end of a truncated file would kill the process
        # with SIGBUS, so compare the pages the environment says it uses with the file's size first.
        used = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
        size = (path / "data.mdb").stat().st_size
        if size < used:
            env.close()
            raise CorruptStoreError(
                f"{path / 'data.mdb'}: {size} bytes, the environment uses {used} (truncated)"
            )
        return env
    env = lmdb.open(str(path), map_size=map_size, sync=sync, metasync=sync, writemap=writemap, max_dbs=0)
    if writemap:
        try:
            reserve(path, map_size)
        except BaseException:
            env.close()
            raise
    return env


def reserve(path: Path, size: int) -> None:
    """Allocate the disk blocks of the first ``size`` bytes of data.mdb now (the data already there is
    kept). With writemap LMDB writes through the memory map into a sparse file, and a full disk would then
    kill the process with SIGBUS on the first page it cannot back, instead of raising ENOSPC here."""
    descriptor = os.open(path / "data.mdb", os.O_RDWR)
    try:
        os.posix_fallocate(descriptor, 0, size)
    finally:
        os.close(descriptor)


def write_with_growth(env: lmdb.Environment, fill: Callable[[lmdb.Transaction], None]) -> None:
    """Run ``fill(txn)`` in one write transaction, doubling the map until it fits."""
    while True:
        try:
            with env.begin(write=True) as txn:
                fill(txn)
            return
        except lmdb.MapFullError:
            larger = env.info()["map_size"] * 2
            env.set_mapsize(larger)
            if env.flags()["writemap"]:
                reserve(Path(env.path()), larger)


class LmdbStore(Store):
    name = "lmdb"
    label = "LMDB"
    colour = "#ff7f0e"
    choose_when = "LMDB when you need keyed random access and transactions"
    trade_off = (
        "LMDB copies raw bytes into a memory-mapped B-tree: no compression, values rounded up to 4 KiB "
        "pages, and a flush to disk on every commit unless told not to."
    )
    batch_name = "many.lmdb"
    compressions = tuple(codec_names())
    encodes_each_image = True

    @classmethod
    def space_needed(cls, n_images: int, image_shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
        value = values.HEADER_SIZE + int(np.prod(image_shape)) * dtype.itemsize
        # A value of more than about half a page gets whole overflow pages: key, node and page headers too.
        pages_per_value = -(-(value + 16 + 16) // space.BLOCK)
        leaves_and_branches = space.round_to_blocks(n_images * 2 * (8 + 16))  # pointers, half-full pages
        fixed = 8 * space.BLOCK + 2 * space.BLOCK  # meta pages, roots, the batch record; lock.mdb; the folder
        return n_images * pages_per_value * space.BLOCK + leaves_and_branches + fixed

    @classmethod
    def files_needed(cls, n_images: int, single: bool) -> int:
        return 3  # the environment's folder, data.mdb and lock.mdb, however many images it holds

    @classmethod
    def disk_usage_note(cls, n_images: int, apparent_bytes: int, allocated_bytes: int, raw_image_bytes: int) -> str:
        return ("LMDB stores each value uncompressed in pages of 4 KiB; a value larger than half a page gets "
                "whole overflow pages of its own, so each image (raw pixels plus a small header) "
                "rounds up to a page, and the B-tree adds pages of keys.")

    @classmethod
    def compressed_space_note(
        cls, codec: str, value_bytes: float, allocated_bytes: float, raw_allocated_bytes: float
    ) -> str:
        pages, raw_pages = allocated_bytes / PAGE, raw_allocated_bytes / PAGE
        # within a tenth of the raw pages, the codec saved no page: values still round up to whole ones
        verdict = (f"still costs LMDB {pages:.2f} pages of 4 KiB per image, as raw pixels do ({raw_pages:.2f})"
                   if pages >= 0.9 * raw_pages else
                   f"saves LMDB space: {pages:.2f} pages of 4 KiB per image against {raw_pages:.2f} raw")
        return (f"The smallest lossless LMDB value ({codec}, about {format_bytes(int(value_bytes))} of file per "
                f"image) {verdict}: LMDB gives a value over about half a page whole overflow pages of its own.")

    @property
    def single_path(self) -> Path:
        return self.root / "single.lmdb"

    def _store_single(self, image: np.ndarray, image_id: int, label: int) -> None:
        value = values.encode_value(image, label, self.image_codec)
        self.single_path.mkdir(exist_ok=True)
        needed = map_size_for(len(value), 1)
        with open_environment(self.single_path, write=True, map_size=needed, sync=self.durable) as env:
            if env.info()["map_size"] < needed:  # an existing environment keeps the size it was given
                env.set_mapsize(needed)
            write_with_growth(env, lambda txn: txn.put(image_key(image_id), value))

    def _read_single(self, image_id: int) -> tuple[np.ndarray, int]:
        if not self.single_path.exists():
            raise ImageNotFoundError(f"no image with id {image_id} in {self.root} (no single images stored)")
        with open_environment(self.single_path, write=False) as env, env.begin() as txn:
            value = txn.get(image_key(image_id))
        if value is None:
            raise ImageNotFoundError(f"no image with id {image_id} in {self.single_path}")
        return values.decode_value(value, f"{self.single_path} key {image_key(image_id).decode()}")

    def _write_chunks(
        self, path: Path, chunks: Iterator[tuple[np.ndarray, np.ndarray]], total: int | None
    ) -> None:
        """One write transaction per chunk into ``path`` (atomicity comes from the rename of the folder).

        Values are put with ``putmulti`` in append order. The map is sized for ``total`` when it is known
        and grown between chunks otherwise. writemap lets LMDB write values straight into the mapped file
        instead of copying every page through its own buffers (about half the time here); the pages written
        that way stay in the process's resident set while mapped, so the environment is reopened every
        ``REMAP_BYTES`` to let them go. The file grows to the whole map, so the unused tail is cut off once
        the environment is closed.
        """
        path.mkdir()
        image_codec = self.image_codec
        env: lmdb.Environment | None = None
        count = mapped_since_open = 0
        shape, dtype = (), np.dtype(np.uint8)
        try:
            for images, labels in chunks:
                if env is None:
                    shape, dtype = images.shape[1:], images.dtype
                    # raw size: an upper bound for compressed values too (the map grows if a codec expands)
                    record_size = values.HEADER_SIZE + int(np.prod(shape)) * dtype.itemsize
                    planned = total or len(images)
                    env = self._open_for_writing(path, map_size_for(planned * record_size, planned))
                needed = map_size_for((count + len(images)) * record_size, count + len(images))
                if env.info()["map_size"] < needed:
                    env.set_mapsize(max(needed, 2 * env.info()["map_size"]))
                    reserve(path, env.info()["map_size"])
                write_with_growth(
                    env, lambda txn, at=count, i=images, l=labels: put_chunk(txn, at, i, l, image_codec)
                )
                count += len(images)
                mapped_since_open += len(images) * record_size
                if mapped_since_open >= REMAP_BYTES:
                    map_size = env.info()["map_size"]
                    env.close()
                    env, mapped_since_open = self._open_for_writing(path, map_size), 0
            assert env is not None  # the stream holds at least one chunk
            description = {"count": count, "shape": list(shape), "dtype": dtype.name}
            if image_codec is not None:
                description["compression"] = image_codec.name
            batch = json.dumps(description)
            write_with_growth(env, lambda txn: txn.put(BATCH_KEY, batch.encode()))
            used = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
        finally:
            if env is not None:
                env.close()
        os.truncate(path / "data.mdb", used)

    def _open_for_writing(self, path: Path, map_size: int) -> lmdb.Environment:
        return open_environment(path, write=True, map_size=map_size, sync=self.durable, writemap=True)

    def _read_batch(self, path: Path, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        reader = LmdbReader.acquire(path)
        try:
            num_images = check_count(num_images, reader.count, path)
            if reader.compression is not None:
                return read_compressed_values(reader, num_images)
            return read_values(reader.txn, path, num_images, reader.shape, reader.dtype)
        finally:
            reader.close()

    def _open_reader(self, path: Path) -> BatchReader:
        reader = LmdbReader.acquire(path)
        return reader if reader.compression is None else CompressedLmdbReader(reader)


def batch_record(txn: lmdb.Transaction, path: Path) -> tuple[int, tuple[int, ...], np.dtype]:
    """(count, image shape, dtype) from the batch's ``__batch__`` record."""
    raw = txn.get(BATCH_KEY)
    if raw is None:
        raise CorruptStoreError(f"{path}: the batch record is missing (incomplete or foreign environment)")
    try:
        batch = json.loads(bytes(raw))
        count, shape, dtype = int(batch["count"]), tuple(batch["shape"]), np.dtype(batch["dtype"])
        check_image_shape(shape, dtype)
    except (ValueError, KeyError, TypeError, OverflowError) as error:
        raise CorruptStoreError(f"{path}: unreadable batch record ({error})") from None
    return count, shape, dtype


class LmdbReader(BatchReader):
    """One read-only environment and one read transaction kept open for the life of the reader.

    A finished batch never changes, so the transaction never goes stale and needs no lock table (readers
    never write lock.mdb). py-lmdb opens an environment once per process, so stores of one folder share
    the reader (``acquire``) and the last ``close`` closes it. ``readahead`` follows the value size (see
    the module's docstring): the environment is opened without it, and reopened with it for large values.
    """

    _open: ClassVar[dict[str, "LmdbReader"]] = {}

    @classmethod
    def acquire(cls, path: Path) -> "LmdbReader":
        reader = cls._open.get(str(path))
        if reader is not None and reader.pid != os.getpid():
            # Inherited through fork: py-lmdb refuses a second open of the path until this copy is closed.
            # Closing it unmaps only this process's view (no lock table), the parent's reader is untouched.
            reader.txn.abort()
            reader.env.close()
            reader = None
        elif reader is not None and reader.inode != data_inode(path):
            reader.release()  # a batch since replaced under this name; its holders reopen (``closed``)
            reader = None
        if reader is None:
            reader = cls._open[str(path)] = cls(path)
        reader.users += 1
        return reader

    def __init__(self, path: Path) -> None:
        self.pid, self.users = os.getpid(), 0
        self.env, self.txn, (count, shape, dtype) = self._begin(path, readahead=False)
        super().__init__(path, count, shape, dtype)
        self.compression = batch_compression(self.txn, path)  # None: raw values (CompressedLmdbReader)
        self.inode = data_inode(path)
        self.header = values.encode_header(shape, dtype, 0)[: LABEL.start]
        self.value_size = values.HEADER_SIZE + int(np.prod(shape)) * self.dtype.itemsize
        self.pixel_count = int(np.prod(shape))
        self.readahead = wants_readahead(self.value_size)
        if self.readahead:
            self.txn.abort()
            self.env.close()
            self.env, self.txn, _ = self._begin(path, readahead=True)
        self.get = self.txn.get

    @staticmethod
    def _begin(path: Path, readahead: bool):
        env = open_environment(path, write=False, lock=False, readahead=readahead)
        try:
            txn = env.begin(buffers=True)
            return env, txn, batch_record(txn, path)
        except BaseException:
            env.close()
            raise

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        # The hot path of random access: one lookup, two checks, one copy (about the floor's cost).
        value = self.get(b"%08d" % index)
        if value is None or len(value) != self.value_size or value[: LABEL.start] != self.header:
            raise self.damaged(index)
        image = np.frombuffer(value, self.dtype, self.pixel_count, values.HEADER_SIZE).reshape(self.shape)
        return image.copy(), unpack_label(value, LABEL.start)[0]

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Each value copied whole into a row of one buffer, then checked and split with array operations.
        records = np.empty((len(indices), self.value_size), dtype=np.uint8)
        get = self.get
        for slot, index in zip(record_slots(records), indices.tolist()):
            value = get(b"%08d" % index)
            if value is None or len(value) != self.value_size:
                raise self.damaged(index)
            slot[:] = value
        images = np.empty((len(indices), *self.shape), dtype=self.dtype)
        labels = np.empty(len(indices), dtype=np.int64)
        pixels = images.reshape(len(indices), self.pixel_count).view(np.uint8)
        unpack_records(records, self.header, pixels, labels, lambda row: str(self.damaged(int(indices[row]))))
        return images, labels

    def damaged(self, index: int) -> CorruptStoreError:
        return CorruptStoreError(f"{self.path}: the value of key {image_key(index).decode()} is missing or damaged")

    def where(self, index: int) -> str:
        return f"{self.path} key {image_key(index).decode()}"

    def close(self) -> None:
        self.users -= 1
        if self.users <= 0 and self.pid == os.getpid():
            self.release()

    def release(self) -> None:
        if not self.closed:
            self.closed = True
            if self._open.get(str(self.path)) is self:
                del self._open[str(self.path)]
            self.txn.abort()
            self.env.close()


def data_inode(path: Path) -> int:
    try:
        return (path / "data.mdb").stat().st_ino
    except FileNotFoundError:
        return -1


def batch_key_list(indices: np.ndarray) -> list[bytes]:
    """The keys of these image positions, made with one array operation."""
    return np.char.zfill(indices.astype("S8"), 8).tolist()


def put_chunk(
    txn: lmdb.Transaction, first: int, images: np.ndarray, labels: np.ndarray, image_codec: Codec | None
) -> None:
    """Put images ``first``, ``first + 1``, ... with their labels (compressed by ``image_codec`` if given),
    in append order."""
    cursor = txn.cursor()
    encoded = encoded_chunks(images, labels) if image_codec is None else compressed_chunks(images, labels, image_codec)
    for start, records in encoded:
        cursor.putmulti(zip(batch_keys(first + start, first + start + len(records)), records), append=True)


def batch_keys(start: int, stop: int) -> list[bytes]:
    return batch_key_list(np.arange(start, stop))


def encoded_chunks(images: np.ndarray, labels: np.ndarray) -> Iterator[tuple[int, list[memoryview]]]:
    """(first index, one encoded value per image) for successive chunks, built with array copies.

    The values are views of one reused buffer: LMDB copies each value when it is put.
    """
    header = np.frombuffer(values.encode_header(images.shape[1:], images.dtype, 0), dtype=np.uint8)
    pixels = images.reshape(len(images), -1).view(np.uint8)
    label_bytes = labels.astype("<i8").view(np.uint8).reshape(-1, 8)
    chunk = np.empty((CHUNK, values.HEADER_SIZE + pixels.shape[1]), dtype=np.uint8)
    chunk[:, : values.HEADER_SIZE] = header
    slots = record_slots(chunk)
    for start in range(0, len(images), CHUNK):
        stop = min(start + CHUNK, len(images))
        chunk[: stop - start, LABEL] = label_bytes[start:stop]
        chunk[: stop - start, values.HEADER_SIZE :] = pixels[start:stop]
        yield start, slots[: stop - start]


def record_slots(chunk: np.ndarray) -> list[memoryview]:
    if not chunk.size:
        return []
    flat = memoryview(chunk).cast("B")
    size = chunk.shape[1]
    return [flat[row * size : (row + 1) * size] for row in range(len(chunk))]


def unpack_records(
    records: np.ndarray, header: bytes | np.ndarray, pixels: np.ndarray, labels: np.ndarray,
    damage: Callable[[int], str],
) -> None:
    """Check the header of each whole value (a row of ``records``) and move out its pixels and label.

    ``pixels`` is the destination viewed as (rows, bytes); ``damage(row)`` says which value is damaged.
    """
    expected = np.frombuffer(header, dtype=np.uint8)[: LABEL.start]
    damaged = (records[:, : LABEL.start] != expected).any(axis=1)
    if damaged.any():
        raise CorruptStoreError(damage(int(np.flatnonzero(damaged)[0])))
    pixels[:] = records[:, values.HEADER_SIZE :]
    labels[:] = records[:, LABEL].copy().view("<i8").reshape(-1)


def read_values(txn: lmdb.Transaction, path: Path, num_images: int, shape: tuple[int, ...], dtype: np.dtype):
    """Walk the cursor from the first key, copying values chunk by chunk into one preallocated array.

    Each value is copied whole into a reused chunk buffer (one Python step per image), then headers are
    checked and pixels and labels moved out with array copies: peak memory stays the result plus a chunk.
    """
    images = np.empty((num_images, *shape), dtype=dtype)
    labels = np.empty(num_images, dtype=np.int64)
    pixels = images.reshape(num_images, -1).view(np.uint8)
    chunk = np.empty((CHUNK, values.HEADER_SIZE + pixels.shape[1]), dtype=np.uint8)
    slots = record_slots(chunk)
    expected_header = values.encode_header(shape, dtype, 0)
    cursor, stored = values_from_first_key(txn, path)
    for start in range(0, num_images, CHUNK):
        stop = min(start + CHUNK, num_images)
        copied = 0
        for slot, value in zip(slots[: stop - start], stored):
            if len(value) != len(slot):
                raise CorruptStoreError(
                    f"{path}: value {start + copied} is {len(value)} bytes, expected {len(slot)}"
                )
            slot[:] = value
            copied += 1
        check_found(start + copied, stop, num_images, path)
        unpack_records(chunk[:copied], expected_header, pixels[start:stop], labels[start:stop],
                       lambda row: f"{path}: the value of key {image_key(start + row).decode()} has a damaged header")
    check_last_key(cursor, num_images, path)
    return images, labels


# The walk of a bulk read, raw or compressed: from key 0, CHUNK values at a time, each chunk checked to be
# whole, ending at key n - 1. What is done with a chunk differs (a copy into a reused buffer, a batch decode).
def values_from_first_key(txn: lmdb.Transaction, path: Path) -> tuple[lmdb.Cursor, Iterator[memoryview]]:
    """The cursor on key 0, and the values from there on in key order; CorruptStoreError if key 0 is missing."""
    cursor = txn.cursor()
    if not cursor.first() or bytes(cursor.key()) != image_key(0):
        raise CorruptStoreError(f"{path}: the first image key {image_key(0)!r} is missing")
    return cursor, cursor.iternext(keys=False, values=True)


def check_found(found: int, wanted: int, num_images: int, path: Path) -> None:
    """CorruptStoreError if the walk ended after ``found`` values where the chunk needed ``wanted``."""
    if found != wanted:
        raise CorruptStoreError(f"{path}: found {found} images, the batch record promises {num_images}")


def check_last_key(cursor: lmdb.Cursor, num_images: int, path: Path) -> None:
    # Keys are unique and sorted: n values from key 0 ending at key n-1 are exactly keys 0..n-1.
    if bytes(cursor.key()) != image_key(num_images - 1):
        raise CorruptStoreError(
            f"{path}: image {num_images - 1} was read from key {bytes(cursor.key())!r}; keys are missing or foreign"
        )


# -- compressed batches ---------------------------------------------------------------------------------
def batch_compression(txn: lmdb.Transaction, path: Path) -> Compression | None:
    """The codec the batch record names (None: raw values); batch_record has checked the record."""
    compression = json.loads(bytes(txn.get(BATCH_KEY))).get("compression")
    if compression is None:
        return None
    try:
        parsed = parse(compression)
    except UnknownCodecError:
        parsed = None
    if parsed is None or not parsed.standalone:  # values hold an image codec's bytes, never a filter's
        raise CorruptStoreError(f"{path}: unreadable batch record (compression {compression!r})")
    return parsed


def compressed_chunks(
    images: np.ndarray | values.EncodedImages, labels: np.ndarray, image_codec: Codec
) -> Iterator[tuple[int, list[bytes]]]:
    """(first index, one compressed value per image) for successive chunks of CHUNK images."""
    shape, dtype = images.shape[1:], images.dtype
    for start in range(0, len(images), CHUNK):
        stop = min(start + CHUNK, len(images))
        yield start, [
            values.compressed_value(payload, shape, dtype, image_codec, label)
            for payload, label in zip(values.image_payloads(images[start:stop], image_codec), labels[start:stop].tolist())
        ]


def read_compressed_values(reader: LmdbReader, num_images: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``num_images`` of a compressed batch, walking the cursor from key 0, CHUNK values at a time."""
    cursor, stored = values_from_first_key(reader.txn, reader.path)
    images = np.empty((num_images, *reader.shape), dtype=reader.dtype)
    labels = np.empty(num_images, dtype=np.int64)
    image_codec = reader.compression.image_codec
    for start in range(0, num_images, CHUNK):
        stop = min(start + CHUNK, num_images)
        chunk = list(itertools.islice(stored, stop - start))
        check_found(start + len(chunk), stop, num_images, reader.path)
        images[start:stop], labels[start:stop] = values.decode_batch_values(
            chunk, reader.shape, reader.dtype, image_codec, lambda position: reader.where(start + position)
        )
    check_last_key(cursor, num_images, reader.path)
    return images, labels


class CompressedLmdbReader(BatchReader):
    """Random access into a compressed batch: the values asked for, then one batch decode, through the
    shared raw reader's transaction (which it closes with itself)."""

    def __init__(self, raw: LmdbReader) -> None:
        super().__init__(raw.path, raw.count, raw.shape, raw.dtype)
        self.raw = raw
        self.image_codec = raw.compression.image_codec

    @property
    def closed(self) -> bool:  # type: ignore[override]
        return self.raw.closed

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        images, labels = self.read_indices(np.array([index]))
        return images[0], int(labels[0])

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        get = self.raw.txn.get
        # Keys formatted one at a time, as the raw reader does: a CIFAR epoch measured 3% faster than
        # with batch_key_list's array formatting.
        found = [get(b"%08d" % index) for index in indices.tolist()]
        return values.decode_batch_values(
            found, self.shape, self.dtype, self.image_codec, lambda position: self.raw.where(int(indices[position]))
        )

    def close(self) -> None:
        self.raw.close()
