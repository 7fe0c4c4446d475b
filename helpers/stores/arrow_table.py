"""The table layout the Parquet and Arrow stores share: one row per image, raw pixels as fixed-size bytes.

Columns: ``key`` (int64: the image's position in the batch, or its id for a single image), ``label``
(int64) and ``image`` (``fixed_size_binary[h * w * c * itemsize]``: the raw pixels in C order,
little-endian). The schema's metadata holds, under ``image-storage-report``, a JSON object with the format
tag, the image ``shape``, the ``dtype`` and the ``count`` of rows, so any reader (pyarrow, pandas, DuckDB,
Hugging Face ``datasets``) sees plain columns and the shape needed to rebuild each image.

Fixed-size values rather than ``binary``: every image of a batch has the same size, so the column is one
contiguous buffer with no offsets, which pyarrow turns into a NumPy view without copying; Parquet stores
it as FIXED_LEN_BYTE_ARRAY (no 4-byte length before each value). Measured while choosing, on 100,000
CIFAR-shaped images in Parquet row groups of 256 rows (a shared two-core machine, medians of 3-5 runs):
write 0.20 s and read 0.10 s with fixed-size values, 0.35 s and 0.20 s with ``binary``.

With ``compression=`` (any codec of ``helpers.codecs``) the ``image`` column is ``binary`` instead: each
value is one image encoded by the codec (a PNG, a zstd frame...), nothing else, and the metadata object
names the codec with its level (``compression``), so a reader is never told which, and pyarrow, pandas
or DuckDB still see three plain columns (``imagecodecs`` or Pillow decode a value). Readers take each
part's values as ``EncodedColumn``, which decodes the images asked for as they are indexed; the raw
fixed-size path is unchanged. Parts (row groups, record batches) are written one at a time, so encoded
bytes of at most one part are held beyond the images given. A single image's file is encoded the same way.

Columns are declared non-nullable (Parquet ``REQUIRED``): no value is ever missing, and a required column
carries no definition levels to write or read.
"""

from __future__ import annotations

import itertools
import json
import os
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np
import pyarrow as pa

from helpers.codecs import Codec, get_codec
from helpers.codecs import names as codec_names
from helpers.core.errors import CorruptStoreError, ImageNotFoundError
from helpers.core.files import preallocated, replaced_when_written
from helpers.stores.base import BatchReader, Store
from helpers.stores.checks import check_stored
from helpers.stores.chunks import AlignedBlocks
from helpers.stores.values import EncodedImages, decode_payloads, image_payloads

FORMAT = "image-storage-report/1"
#: What pyarrow raises for a damaged or foreign file, reported as CorruptStoreError by both readers.
READ_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError, KeyError, IndexError)
RUN_BYTES = 16 << 20  # whole parts handed to the writer at a time (about this many bytes) from chunks
METADATA_KEY = b"image-storage-report"


class Layout(NamedTuple):
    """What a file's metadata says about its rows: how many, each image's shape and dtype, and the codec
    that encoded them, by name and ready to decode (None: raw fixed-size pixels)."""

    count: int | None  # None in the metadata of a batch written from chunks without a declared total
    shape: tuple[int, ...]
    dtype: np.dtype
    compression: str | None
    image_codec: Codec | None


def image_type(shape: tuple[int, ...], dtype: np.dtype, compression: str | None = None) -> pa.DataType:
    if compression is not None:
        return pa.binary()
    return pa.binary(int(np.prod(shape)) * np.dtype(dtype).itemsize)


def schema_for(
    shape: tuple[int, ...], dtype: np.dtype, count: int | None, compression: str | None = None
) -> pa.Schema:
    """The columns and metadata of a file of ``count`` rows (None: a batch written from chunks without a
    declared total, whose row count is then the file's own)."""
    description = {"format": FORMAT, "shape": list(shape), "dtype": np.dtype(dtype).name}
    if count is not None:
        description["count"] = int(count)
    if compression is not None:
        description["compression"] = compression
    return pa.schema(
        [pa.field("key", pa.int64(), nullable=False), pa.field("label", pa.int64(), nullable=False),
         pa.field("image", image_type(shape, dtype, compression), nullable=False)],
        metadata={METADATA_KEY: json.dumps(description).encode()},
    )


def parts_of(
    images: np.ndarray | EncodedImages, labels: np.ndarray, keys: np.ndarray, rows: int, image_codec: Codec | None,
    schema: pa.Schema,
) -> Iterator[pa.Table]:
    """The rows for ``images`` (C-contiguous, or encoded already by ``image_codec``) as tables of ``schema``.

    Raw pixels: one table viewing ``images`` (nothing copied; the writer cuts it into parts of ``rows``).
    Encoded: one table of ``rows`` rows at a time, so that only one part's encoded bytes are held at once.
    """
    shape, dtype = images.shape[1:], images.dtype
    if image_codec is None:
        little = images.astype(dtype.newbyteorder("<"), copy=False)
        pixels = pa.py_buffer(np.ascontiguousarray(little).reshape(-1).view(np.uint8))
        column = pa.FixedSizeBinaryArray.from_buffers(image_type(shape, dtype), len(images), [None, pixels])
        yield pa.Table.from_arrays([pa.array(keys.astype(np.int64)), pa.array(labels.astype(np.int64)), column],
                                   schema=schema)
        return
    for start in range(0, len(images), rows):
        stop = min(start + rows, len(images))
        column = pa.array(image_payloads(images[start:stop], image_codec), pa.binary())
        yield pa.Table.from_arrays(
            [pa.array(keys[start:stop].astype(np.int64)), pa.array(labels[start:stop].astype(np.int64)), column],
            schema=schema,
        )


def describe(schema: pa.Schema, path: Path) -> Layout:
    """The layout a schema written by ``schema_for`` describes; CorruptStoreError otherwise."""
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise CorruptStoreError(f"{path}: no {METADATA_KEY.decode()} metadata (not written by this library)")
    try:
        found = json.loads(raw)
        if found["format"] != FORMAT:
            raise ValueError(f"format {found['format']!r}, this library reads {FORMAT!r}")
        count = None if found.get("count") is None else int(found["count"])
        shape, dtype = tuple(int(d) for d in found["shape"]), np.dtype(found["dtype"])
        compression = found.get("compression")
        # An unknown codec name is an UnknownCodecError, which is a ValueError.
        image_codec = None if compression is None else get_codec(str(compression))
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptStoreError(f"{path}: unreadable {METADATA_KEY.decode()} metadata ({error})") from None
    check_stored(shape, dtype, path)
    expected = schema_for(shape, dtype, count, compression)
    if schema.names != expected.names or schema.types != expected.types:
        what = f"{shape} {dtype}" + (f" encoded with {compression}" if compression else "")
        raise CorruptStoreError(f"{path}: columns {schema.names} do not match key, label, image of {what}")
    return Layout(count, shape, dtype, compression, image_codec)


def pixels_of(column: pa.FixedSizeBinaryArray, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The images of one column chunk as a read-only NumPy view of its buffer, shape (rows, *shape)."""
    size = column.type.byte_width
    buffer = column.buffers()[1]
    if column.null_count or buffer is None or buffer.size < (column.offset + len(column)) * size:
        raise ValueError(f"image column of {len(column)} rows has missing values or a short buffer")
    flat = np.frombuffer(buffer, np.dtype(dtype).newbyteorder("<"), len(column) * size // np.dtype(dtype).itemsize,
                         column.offset * size)
    return flat.reshape(len(column), *shape)


class EncodedColumn:
    """The images of one chunk of a ``binary`` image column, decoded when indexed, as an array would give
    them: ``images[i]`` one image, ``images[positions]`` or ``images[a:b]`` a new array of them.

    The values stay where pyarrow keeps them (a memory map, a decoded row group): each is a memoryview
    sliced at its offsets, handed to the codec without a copy.
    """

    def __init__(self, column: pa.BinaryArray, shape: tuple[int, ...], dtype: np.dtype, image_codec: Codec,
                 where: Callable[[int], str]) -> None:
        offsets_buffer, data = column.buffers()[1:3]
        if column.null_count or offsets_buffer is None or offsets_buffer.size < (column.offset + len(column) + 1) * 4:
            raise ValueError(f"image column of {len(column)} rows has missing values or short offsets")
        offsets = np.frombuffer(offsets_buffer, np.dtype("<i4"), len(column) + 1, column.offset * 4).astype(np.int64)
        data_size = 0 if data is None else data.size
        if len(column) and (offsets[0] < 0 or offsets[-1] > data_size or (np.diff(offsets) < 0).any()):
            raise ValueError(f"image column of {len(column)} rows has offsets outside its {data_size} bytes")
        # pyarrow exports its buffers as signed chars; the codecs take unsigned bytes.
        self.data = memoryview(b"") if data is None else memoryview(data).cast("B")
        self.offsets = offsets.tolist()
        self.shape, self.dtype, self.image_codec, self.where = tuple(shape), np.dtype(dtype), image_codec, where

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def payload(self, row: int) -> memoryview:
        return self.data[self.offsets[row] : self.offsets[row + 1]]

    def __getitem__(self, key: int | np.integer | slice | np.ndarray) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            row = range(len(self))[key]
            return self.image_codec.decode(self.payload(row), self.shape, self.dtype, self.where(row))
        rows = range(len(self))[key] if isinstance(key, slice) else np.asarray(key).tolist()
        return decode_payloads(self.image_codec, [self.payload(row) for row in rows], self.shape, self.dtype,
                               lambda position: self.where(rows[position]))


def images_of(column: pa.Array, layout: Layout, where: Callable[[int], str]) -> np.ndarray | EncodedColumn:
    """The images of one chunk of the image column: a NumPy view of raw pixels, or ``EncodedColumn``.

    ``where(row)`` names a row of the chunk in an error.
    """
    if layout.image_codec is None:
        return pixels_of(column, layout.shape, layout.dtype)
    return EncodedColumn(column, layout.shape, layout.dtype, layout.image_codec, where)


def copy_rows(table: pa.Table | pa.RecordBatch, images: np.ndarray, labels: np.ndarray, layout: Layout,
              where: Callable[[int], str]) -> int:
    """Copy (decode) the rows of ``table`` into ``images`` and ``labels`` from row 0; the rows copied.

    ``where(row)`` names a row of ``table`` in an error.
    """
    image_column, label_column = table.column("image"), table.column("label")
    chunks = image_column.chunks if isinstance(image_column, pa.ChunkedArray) else [image_column]
    row = 0
    for chunk in chunks:
        images[row : row + len(chunk)] = images_of(chunk, layout, lambda r, first=row: where(first + r))[:]
        row += len(chunk)
    labels[:row] = label_column.to_numpy()
    return row


class TableReader(BatchReader):
    """A batch of these rows held open: what the Parquet and Arrow readers add to ``BatchReader``."""

    @abstractmethod
    def first_key(self) -> int:
        """The ``key`` of the first row (a single image's file holds one row, keyed by its id)."""

    @abstractmethod
    def read_first(self, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``num_images`` rows' images and labels, as fresh arrays."""


class TableStore(Store):
    """A store of these rows in one file per batch and one file per single image (``single/<id><suffix>``)."""

    #: The single images' file name suffix, e.g. ".parquet".
    suffix: ClassVar[str]
    compressions = tuple(codec_names())  # any image codec: each value of the image column is one image
    encodes_each_image = True

    @staticmethod
    @abstractmethod
    def rows_per_part(shape: tuple[int, ...], dtype: np.dtype) -> int:
        """Rows per row group or record batch for images of this shape and dtype."""

    @staticmethod
    @abstractmethod
    def write_file(sink: pa.NativeFile, schema: pa.Schema, parts: Iterable[pa.Table], rows_per_part: int) -> None:
        """Write ``parts`` (tables of ``schema``) into ``sink`` as one file, in parts of ``rows_per_part`` rows."""

    @abstractmethod
    def _open_reader(self, path: Path) -> TableReader: ...

    def write_parts(
        self, path: Path, parts: Callable[[pa.Schema, int], Iterable[pa.Table]], shape: tuple[int, ...],
        dtype: np.dtype, count: int | None, single: bool = False,
    ) -> None:
        """The file at ``path`` from the tables ``parts(schema, rows per part)`` gives, images encoded by
        ``compression=`` if given. Written into a file preallocated to the (raw) size estimate when the
        count is known, which is cut to what was written."""
        rows = 1 if single else self.rows_per_part(shape, dtype)
        schema = schema_for(shape, dtype, count, None if self.image_codec is None else self.image_codec.name)
        size = 0 if count is None else self.space_needed(count, shape, dtype, single=False)
        with preallocated(path, size) as fd, pa.OSFile(os.dup(fd), "wb") as sink:
            self.write_file(sink, schema, parts(schema, rows), rows)

    def _store_single(self, image: np.ndarray, image_id: int, label: int) -> None:
        with replaced_when_written(self.single_path(image_id, self.suffix), self.durable) as partial:
            self.write_parts(partial, lambda schema, rows: parts_of(
                image[np.newaxis], np.array([label]), np.array([image_id]), rows, self.image_codec, schema,
            ), image.shape, image.dtype, 1, single=True)

    def _read_single(self, image_id: int) -> tuple[np.ndarray, int]:
        path = self.single_path(image_id, self.suffix)
        if not path.exists():
            raise ImageNotFoundError(f"no image with id {image_id} in {self.root} (no {path.name})")
        reader = self._open_reader(path)
        try:
            if reader.count != 1 or reader.first_key() != image_id:
                raise CorruptStoreError(f"{path}: expected one row with key {image_id}")
            return reader.read_one(0)
        finally:
            reader.close()

    def _write_chunks(
        self, path: Path, chunks: Iterator[tuple[np.ndarray, np.ndarray]], total: int | None
    ) -> None:
        """The batch written as its chunks arrive, regrouped into runs of whole parts (row groups or record
        batches, about ``RUN_BYTES`` a run), so that the file has the parts ``store_many`` would give it."""
        chunks = iter(chunks)
        first = next(chunks)
        shape, dtype = first[0].shape[1:], first[0].dtype

        def parts(schema: pa.Schema, rows: int) -> Iterator[pa.Table]:
            run = rows * max(1, RUN_BYTES // (rows * int(np.prod(shape)) * dtype.itemsize))
            for start, images, labels in AlignedBlocks(itertools.chain([first], chunks), run):
                yield from parts_of(images, labels, np.arange(start, start + len(images)), rows, self.image_codec,
                                    schema)

        self.write_parts(path, parts, shape, dtype, total)
