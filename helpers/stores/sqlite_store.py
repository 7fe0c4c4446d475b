"""SQLite: a real database, one row per image, written and read with the standard library's ``sqlite3``.

Tables (the same in the batch ``many.sqlite`` and in ``single.sqlite``)::

    images(id INTEGER PRIMARY KEY, label INTEGER NOT NULL, image BLOB NOT NULL)  -- raw pixels, little-endian
    metadata(key TEXT PRIMARY KEY, value TEXT NOT NULL)  -- format, shape, dtype, count (JSON values)

``id`` is the image's position in the batch (or its id for single images), so a random read is one
primary-key lookup in the table's B-tree. ``sqlite3 many.sqlite "SELECT id, label, length(image) FROM
images LIMIT 3"`` reads it from the command line.

Choices, each measured on 100,000 CIFAR-shaped images (3,072 bytes each) against the NumPy floor in the
same run (SQLite 3.40; floor: 0.043 s to write, 0.025 s to read, 1.5-3.5 µs per random image; writes are
medians of five, taken in turn with the floor's):

- Rows are inserted a block of about 1 MiB at a time, each block bound once as one BLOB and cut into rows
  by SQL (``INSERT ... SELECT substr(block, ...) FROM json_each(labels)``, see ``insert_raw_rows``):
  0.12 s, against 0.24 s for ``executemany`` with a memoryview per row, 0.23 s with slices of one
  memoryview and 0.24 s with ``bytes`` per row. ``executemany`` costs about 1 µs per row before any pixel
  is copied (0.10 s for 100,000 empty BLOBs): a Python tuple and a bind per row. Blocks of 256 KiB to
  2 MiB write alike (0.122-0.128 s); 12 MiB blocks took 0.157 s and 48 MiB 0.30 s (presumably as such a
  block no longer stays in the CPU's caches between its copies).
- Page size 64 KiB (``PRAGMA page_size``, set before the first table): 0.126 s to write, against 0.140 s
  with 32 KiB and 0.169 s with 16 KiB pages (0.24, 0.24, 0.27 and 0.37 s from 64 down to 8 KiB with
  ``executemany``). Bigger pages hold more rows: the default 4 KiB takes a page per row (1.34 x the raw
  bytes), 16 KiB 1.07 x, 64 KiB packs 21 rows a page, 1.02 x, and reads are no slower.
- The batch is one transaction with ``journal_mode=OFF``: it goes to a temporary file that is renamed only
  once complete, so a rollback journal or a write-ahead log protects nothing there. WAL writes every page
  twice (0.35 s against 0.126 s); ``MEMORY`` and ``DELETE`` journals measured the same as ``OFF``
  (0.127 s, 0.128 s). The finished file is left in rollback-journal mode, which read-only
  readers open without creating any file (a WAL database makes even a ``mode=ro`` reader create its
  ``-wal`` and ``-shm`` files). ``single.sqlite`` uses the rollback journal for the same reason: a single
  image is one short transaction, and readers never write beside it.
- SQLite's page cache stays at its default (2,000 KiB, 31 pages of 64 KiB): 16 pages wrote as fast, and
  64 MiB was slower (0.173 s; presumably the dirty pages then wait for the commit instead of leaving
  early).
  ``locking_mode=EXCLUSIVE`` measured within the noise (0.123 s against 0.126 s) and is not set: the
  temporary file has no other user whose locks it would save.
- Readers open the finished batch with ``file:...?mode=ro&immutable=1``: the file never changes once
  renamed into place (a new batch is a new file), so SQLite may skip its locks and change checks
  (random read 4.6 µs against 12.2 µs with ``mode=ro`` alone), and they map it (``PRAGMA mmap_size``), so
  a lookup reads the page in place instead of copying 64 KiB into SQLite's cache (2.1 µs against 6.5 µs).
  ``single.sqlite`` may be written while it is read, so its readers use ``mode=ro`` without ``immutable``.
- ``read_indices`` is one query joining the positions (a JSON array through ``json_each``) with the table,
  which returns rows in the order asked, repeats included: 0.9 µs per image against 3.4 µs for one query
  per image.

``durable`` maps to ``PRAGMA synchronous``: FULL (SQLite fsyncs the database at every commit, and the
base class fsyncs the batch and its folder before and after renaming it into place; 0.08 s more for
100,000 images) against OFF (SQLite hands its writes to the operating
system and returns, as Pillow and h5py do; a power cut can lose recent single images, never corrupt a
finished batch, which is renamed into place only once written).

Damage: SQLite checks the structure of every page it reads and reports a truncated or garbled file as
"database disk image is malformed"; counts, ids and blob sizes are checked against the metadata. Like
LMDB, the pixel bytes carry no checksum.

With ``compression=`` (any codec of ``helpers.codecs``) each ``image`` BLOB of a batch holds the image
encoded by that codec (a PNG, a zstd frame...), and the metadata table names the codec with its level
(``compression``), so a reader opened with any ``compression=`` reads what was recorded:
``CompressedSqliteReader`` decodes each row it fetches, a mini-batch of zstd frames in one call. Single
images stay raw.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from helpers.codecs import get_codec
from helpers.codecs import names as codec_names
from helpers.core.errors import CorruptStoreError, ImageNotFoundError, StorageReportError
from helpers.stores.base import BatchReader, Store
from helpers.stores.checks import check_stored
from helpers.stores.values import image_payloads

FORMAT = "image-storage-report/1"
PAGE_SIZE = 65536
MMAP_BYTES = 1 << 40  # as much as SQLite allows (2 GiB in the usual builds); the rest is read with pread
BYTES_PER_INSERT = 1 << 20  # pixels bound per INSERT: 256 KiB to 2 MiB measured alike, 12 MiB 1.3x slower
ROWS_PER_FETCH = 1024  # rows copied into the result at once when reading many
POSITIONS_PER_QUERY = 100_000  # positions per json_each query in read_indices
ROW_OVERHEAD = 24  # record header, id and label varints, cell pointer of one row (measured: ~12 bytes)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS images(id INTEGER PRIMARY KEY, label INTEGER NOT NULL, image BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS metadata(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
)
INSERT_BLOCK = (
    "INSERT INTO images(id, label, image) "
    "SELECT ? + wanted.key, wanted.value, substr(?, wanted.key * ? + 1, ?) FROM json_each(?) AS wanted"
)
SELECT_ONE = "SELECT label, image FROM images WHERE id = ?"
SELECT_MANY = (
    "SELECT images.label, images.image FROM json_each(?) AS wanted JOIN images ON images.id = wanted.value "
    "ORDER BY wanted.key"
)


def connect_for_writing(path: Path, durable: bool, journal: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # only takes effect on a new database
    connection.execute(f"PRAGMA journal_mode = {journal}")
    connection.execute(f"PRAGMA synchronous = {'FULL' if durable else 'OFF'}")
    connection.executescript(SCHEMA)
    return connection


@contextmanager
def full_disk_as_os_error(path: Path) -> Iterator[None]:
    """SQLite's "database or disk is full" (SQLITE_FULL) as the OSError ENOSPC the base class recognises."""
    try:
        yield
    except sqlite3.OperationalError as error:
        if getattr(error, "sqlite_errorname", "") != "SQLITE_FULL" and "disk is full" not in str(error):
            raise
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({error})", str(path)) from error


def connect_for_reading(path: Path, immutable: bool) -> sqlite3.Connection:
    if not path.exists():
        raise CorruptStoreError(f"{path}: file is missing from the store")
    uri = f"{path.absolute().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
    try:
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        connection.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    except sqlite3.Error as error:
        raise CorruptStoreError(f"{path}: not a readable SQLite database ({error})") from None
    return connection


def image_metadata(shape: tuple[int, ...], dtype: np.dtype, count: int) -> list[tuple[str, str]]:
    values = {"format": FORMAT, "shape": list(shape), "dtype": np.dtype(dtype).name, "count": int(count)}
    return [(key, json.dumps(value)) for key, value in values.items()]


def read_metadata(connection: sqlite3.Connection, path: Path) -> tuple[int, tuple[int, ...], np.dtype]:
    """(count, shape, dtype) from the metadata table; CorruptStoreError if it is missing or foreign."""
    try:
        found = {key: json.loads(value) for key, value in connection.execute("SELECT key, value FROM metadata")}
        if found.get("format") != FORMAT:
            raise ValueError(f"format {found.get('format')!r}, this library reads {FORMAT!r}")
        count, shape, dtype = int(found["count"]), tuple(int(d) for d in found["shape"]), np.dtype(found["dtype"])
    except (sqlite3.Error, ValueError, KeyError, TypeError) as error:
        raise CorruptStoreError(f"{path}: unreadable metadata table ({error})") from None
    check_stored(shape, dtype, path)
    return count, shape, dtype


def little_endian(images: np.ndarray) -> np.ndarray:
    return images.astype(images.dtype.newbyteorder("<"), copy=False)


class SqliteStore(Store):
    name = "sqlite"
    label = "SQLite"
    colour = "#bcbd22"
    choose_when = (
        "SQLite when images are added, replaced and looked up one by one, with transactions, in one file"
    )
    trade_off = (
        "SQLite keeps each image as a BLOB row of a B-tree in one database file: a query per read, "
        "64 KiB pages nearly full, no compression."
    )
    batch_name = "many.sqlite"
    compressions = tuple(codec_names())
    encodes_each_image = True

    @classmethod
    def space_needed(cls, n_images: int, image_shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
        raw = int(np.prod(image_shape)) * dtype.itemsize
        row = raw + ROW_OVERHEAD
        if single:  # default-sized rows in 64 KiB pages, each write may leave a page partly filled
            return n_images * (row + PAGE_SIZE) + 4 * PAGE_SIZE
        rows_per_page = max(1, (PAGE_SIZE - 64) // row)
        if rows_per_page == 1:  # a row larger than a page spills into overflow pages of its own
            data_pages = n_images * -(-(row + 64) // (PAGE_SIZE - 8))
        else:
            data_pages = -(-n_images // rows_per_page)
        interior_pages = data_pages // 1000 + 2  # the B-tree's interior pages: ~5,000 children each
        return (data_pages + interior_pages + 4) * PAGE_SIZE  # schema, metadata, freelist header

    @classmethod
    def disk_usage_note(cls, n_images: int, apparent_bytes: int, allocated_bytes: int, raw_image_bytes: int) -> str:
        per_page = (PAGE_SIZE - 64) // (raw_image_bytes + ROW_OVERHEAD)
        extra = apparent_bytes / n_images - raw_image_bytes
        layout = (f"{per_page:,} rows fit in a page here, and the space left at the end of each page" if per_page
                  else "each row is larger than a page and spills into overflow pages, whose unused tails")
        return (f"SQLite keeps the rows in the B-tree's {PAGE_SIZE // 1024} KiB pages; {layout}, the interior "
                f"pages and each row's small header add {extra:,.0f} bytes per image "
                f"({extra / raw_image_bytes:.1%} of the pixels). Nothing is compressed.")

    @property
    def single_database(self) -> Path:
        return self.root / "single.sqlite"

    def _store_single(self, image: np.ndarray, image_id: int, label: int) -> None:
        with full_disk_as_os_error(self.single_database):
            connection = connect_for_writing(self.single_database, self.durable, "DELETE")
            try:
                with connection:
                    connection.execute("BEGIN IMMEDIATE")
                    connection.execute(
                        "INSERT OR REPLACE INTO images(id, label, image) VALUES (?, ?, ?)",
                        (image_id, label, little_endian(image).tobytes()),
                    )
                    connection.execute(
                        "INSERT OR REPLACE INTO metadata(key, value) VALUES (?, ?)",
                        (f"shape:{image_id}", json.dumps([list(image.shape), image.dtype.name])),
                    )
                    connection.execute("INSERT OR IGNORE INTO metadata(key, value) VALUES ('format', ?)",
                                       (json.dumps(FORMAT),))
            finally:
                connection.close()

    def _read_single(self, image_id: int) -> tuple[np.ndarray, int]:
        path = self.single_database
        if not path.exists():
            raise ImageNotFoundError(f"no image with id {image_id} in {self.root} (no single images stored)")
        connection = connect_for_reading(path, immutable=False)
        try:
            row = connection.execute(SELECT_ONE, (image_id,)).fetchone()
            if row is None:
                raise ImageNotFoundError(f"no image with id {image_id} in {path}")
            found = connection.execute("SELECT value FROM metadata WHERE key = ?", (f"shape:{image_id}",)).fetchone()
            shape, dtype = json.loads(found[0]) if found else (None, None)
            shape, dtype = tuple(shape), np.dtype(dtype)
        except StorageReportError:
            raise
        except (sqlite3.Error, ValueError, TypeError) as error:
            raise CorruptStoreError(f"{path}: cannot read image {image_id} ({error})") from None
        finally:
            connection.close()
        check_stored(shape, dtype, path)
        label, blob = row
        return pixels(blob, shape, dtype, path, image_id).copy(), int(label)

    def _write_chunks(
        self, path: Path, chunks: Iterator[tuple[np.ndarray, np.ndarray]], total: int | None
    ) -> None:
        """Every chunk inserted as it arrives, in one transaction (the metadata, with the count, last)."""
        image_codec = self.image_codec
        with full_disk_as_os_error(path):
            connection = connect_for_writing(path, self.durable, "OFF")
            try:
                connection.execute("BEGIN")
                count, shape, dtype = 0, (), np.dtype(np.uint8)
                for images, labels in chunks:
                    shape, dtype = images.shape[1:], images.dtype
                    if image_codec is None:
                        rows = little_endian(images).reshape(len(images), -1).view(np.uint8)
                        insert_raw_rows(connection, rows, labels, first=count)
                    else:  # encoded images differ in length: one bound row each
                        connection.executemany(
                            "INSERT INTO images(id, label, image) VALUES (?, ?, ?)",
                            zip(range(count, count + len(images)), labels.tolist(),
                                image_payloads(images, image_codec)),
                        )
                    count += len(images)
                metadata = image_metadata(shape, dtype, count)
                if image_codec is not None:
                    metadata.append(("compression", json.dumps(image_codec.name)))
                connection.executemany("INSERT INTO metadata(key, value) VALUES (?, ?)", metadata)
                connection.execute("COMMIT")
            finally:
                connection.close()

    def _open_reader(self, path: Path) -> "SqliteReader":
        reader = SqliteReader(path)
        if reader.compression is None:
            return reader
        reader.close()  # SQLite connections are cheap: open the batch again through the compressed reader
        return CompressedSqliteReader(path)


def insert_raw_rows(connection: sqlite3.Connection, rows: np.ndarray, labels: np.ndarray, first: int = 0) -> None:
    """Insert ``rows`` (n, bytes per image) as images ``first`` .. ``first + n - 1``, a block of about
    BYTES_PER_INSERT at a time.

    Each block is bound once as one BLOB and cut into rows inside SQLite (``substr`` counts bytes on a
    BLOB; ``json_each`` walks the block's labels), so the per-row work of ``executemany`` (a Python tuple,
    a memoryview and a bind per image) is not paid: 0.12 s against 0.24 s for 100,000 CIFAR images.
    """
    count, row_bytes = rows.shape
    flat = rows.reshape(-1)
    per_insert = max(1, BYTES_PER_INSERT // row_bytes)
    for start in range(0, count, per_insert):
        stop = min(start + per_insert, count)
        connection.execute(
            INSERT_BLOCK,
            (first + start, memoryview(flat[start * row_bytes : stop * row_bytes]), row_bytes, row_bytes,
             json.dumps(labels[start:stop].tolist())),
        )


def pixels(blob: bytes, shape: tuple[int, ...], dtype: np.dtype, path: Path, image_id: int) -> np.ndarray:
    expected = int(np.prod(shape)) * dtype.itemsize
    if not isinstance(blob, bytes) or len(blob) != expected:
        size = len(blob) if isinstance(blob, bytes) else type(blob).__name__
        raise CorruptStoreError(f"{path}: image {image_id} holds {size} bytes, expected {expected}")
    return np.frombuffer(blob, dtype.newbyteorder("<")).reshape(shape)


class SqliteReader(BatchReader):
    """One read-only, immutable, memory-mapped connection to the finished batch, kept for the process."""

    def __init__(self, path: Path) -> None:
        self.connection = connect_for_reading(path, immutable=True)
        try:
            count, shape, dtype = read_metadata(self.connection, path)
        except BaseException:
            self.connection.close()
            raise
        super().__init__(path, count, shape, dtype)
        self.image_bytes = int(np.prod(shape)) * self.dtype.itemsize
        self.stored_dtype = self.dtype.newbyteorder("<")
        found = self.connection.execute("SELECT value FROM metadata WHERE key = 'compression'").fetchone()
        self.compression = None if found is None else json.loads(found[0])  # CompressedSqliteReader

    def fail(self, error: Exception, what: str) -> CorruptStoreError:
        return CorruptStoreError(f"{self.path}: cannot read {what} ({error})")

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        try:
            row = self.connection.execute(SELECT_ONE, (index,)).fetchone()
        except sqlite3.Error as error:
            raise self.fail(error, f"image {index}") from None
        if row is None:
            raise CorruptStoreError(f"{self.path}: image {index} is missing (the metadata promises {self.count})")
        label, blob = row
        if len(blob) != self.image_bytes:
            raise CorruptStoreError(f"{self.path}: image {index} holds {len(blob)} bytes, expected {self.image_bytes}")
        return np.frombuffer(blob, self.stored_dtype).reshape(self.shape).astype(self.dtype), int(label)

    def fill(self, cursor: sqlite3.Cursor, images: np.ndarray, labels: np.ndarray, what: str) -> None:
        """Copy the (label, blob) rows of ``cursor`` into ``images`` and ``labels``, checking sizes and count.

        Rows come ``ROWS_PER_FETCH`` at a time; their blobs are joined and copied in as one block, which
        costs less than a NumPy assignment per image (measured: 0.31 s against 0.37 s for 100,000).
        """
        flat = images.reshape(len(images), -1).view(np.uint8)
        position = 0
        try:
            while rows := cursor.fetchmany(ROWS_PER_FETCH):
                row_labels, blobs = zip(*rows)
                data = b"".join(blobs)
                if len(data) != len(rows) * self.image_bytes or position + len(rows) > len(images):
                    sizes = sorted({len(blob) for blob in blobs})
                    raise CorruptStoreError(
                        f"{self.path}: {what} gave rows of {sizes} bytes (expected {self.image_bytes}) "
                        f"or more than {len(images)} rows"
                    )
                flat[position : position + len(rows)] = np.frombuffer(data, np.uint8).reshape(len(rows), -1)
                labels[position : position + len(rows)] = row_labels
                position += len(rows)
        except (sqlite3.Error, TypeError, ValueError) as error:
            raise self.fail(error, what) from None
        if position != len(images):
            raise CorruptStoreError(f"{self.path}: {what} gave {position} rows, expected {len(images)}")

    def read_first(self, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        images = np.empty((num_images, *self.shape), self.dtype)
        labels = np.empty(num_images, np.int64)
        what = f"the first {num_images} images"
        try:
            # Ids are unique integers: num_images rows with ids in [0, num_images) are exactly 0 .. n - 1.
            rows = self.connection.execute(
                "SELECT label, image FROM images WHERE id >= 0 AND id < ? ORDER BY id", (num_images,)
            )
        except sqlite3.Error as error:
            raise self.fail(error, what) from None
        self.fill(rows, images, labels, what)
        return self.to_native(images), labels

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.empty((len(indices), *self.shape), self.dtype)
        labels = np.empty(len(indices), np.int64)
        for start in range(0, len(indices), POSITIONS_PER_QUERY):
            part = indices[start : start + POSITIONS_PER_QUERY]
            what = f"{len(part)} images by position"
            try:
                rows = self.connection.execute(SELECT_MANY, (json.dumps(part.tolist()),))
            except sqlite3.Error as error:
                raise self.fail(error, what) from None
            self.fill(rows, images[start : start + len(part)], labels[start : start + len(part)], what)
        return self.to_native(images), labels

    def to_native(self, images: np.ndarray) -> np.ndarray:
        """Pixels copied in as stored (little-endian) in the caller's byte order."""
        if self.stored_dtype == self.dtype:
            return images
        return images.view(self.stored_dtype).astype(self.dtype)

    def close(self) -> None:
        self.closed = True
        self.connection.close()


class CompressedSqliteReader(SqliteReader):
    """A batch whose BLOBs are encoded images: the same queries, each fetched block decoded by the codec the
    metadata names (``Codec.decode_many``) straight into the result."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.image_codec = get_codec(self.compression)
        self.stored_dtype = self.dtype  # decoded pixels come out in this machine's byte order

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        images, labels = self.read_indices(np.array([index]))
        return images[0], int(labels[0])

    def fill(self, cursor: sqlite3.Cursor, images: np.ndarray, labels: np.ndarray, what: str) -> None:
        position = 0
        try:
            while rows := cursor.fetchmany(ROWS_PER_FETCH):
                if position + len(rows) > len(images):
                    raise CorruptStoreError(f"{self.path}: {what} gave more than {len(images)} rows")
                row_labels, blobs = zip(*rows)
                images[position : position + len(rows)] = self.image_codec.decode_many(list(blobs), self.shape, self.dtype)
                labels[position : position + len(rows)] = row_labels
                position += len(rows)
        except StorageReportError:
            raise
        except Exception as error:  # sqlite3's errors, and each codec library's own for a damaged image
            raise self.fail(error, what) from None
        if position != len(images):
            raise CorruptStoreError(f"{self.path}: {what} gave {position} rows, expected {len(images)}")
