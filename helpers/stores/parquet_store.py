"""Parquet: one row per image (``key``, ``label``, ``image``; see ``arrow_table``), written with pyarrow.

A batch is one file, ``many.parquet``; a single image is ``single/<id>.parquet`` holding one row. The
files open with ``pyarrow.parquet.read_table``, ``pandas.read_parquet`` and DuckDB's ``read_parquet``;
the image shape and dtype are in the schema metadata.

Written at pyarrow's fastest documented settings for raw pixels, each measured: no compression (raw
pixels barely compress and decompressing costs more than reading them), no dictionary encoding and no
statistics for the image column (a dictionary of 100,000 distinct images is only work), PLAIN encoding of
fixed-size values, and no page checksums (``write_page_checksum`` would let a reader detect a flipped
pixel byte, but verifying them tripled the time to read a batch and quintupled a random read).

Row groups. Parquet can read no less than one column chunk of one row group, so a random read decodes its
whole row group and the group's size sets both costs: small groups make random reads cheap and add a
fixed cost per group (about 60 µs of pyarrow's work) to bulk reads. ``benchmarks/parquet_row_groups.py``
on 100,000 CIFAR-shaped images (3,072 bytes each), each layout against the NumPy floor measured next to
it (a shared two-core machine under heavy load, so single ratios move by about 1.5x between runs):

==============  ==========  =========  ==================
rows per group  store_many  read_many  random single read
==============  ==========  =========  ==================
64              3.0x        3.6x       84 µs (12x)
128             2.6x        2.8x       97 µs (14x)
256             2.5x        3.8x       147 µs (22x)
1,024           2.4x        4.8x       400 µs (56x)
4,096           2.2x        3.6x       4,910 µs (700x)
16,384          (noise)     3.4x       15,070 µs (2,200x)
==============  ==========  =========  ==================

Bulk reads and writes stop improving past 128-256 rows (the differences there are within the noise);
random reads grow with the group from 256 rows on. So a group holds ``ROW_GROUP_BYTES`` (768 KiB: 256
CIFAR images; one 512x512 16-bit scan per group for large images): half the groups, so half the fixed
cost, of 128 rows, for a random read that stays under 0.2 ms.

Writing. pyarrow copies each value into its page buffer before writing it, where ``np.save`` writes the
array directly, and no writer option changes that. What did close the gap is where the bytes go:
``np.save`` allocates the file's blocks in one call before its single write, and a file written without
that pays ext4's block reservation on every page (``helpers.core.files.preallocated``). Measured on 100,000
CIFAR-shaped images, 256 rows per group, medians of 5 against ``np.save`` in the same run (0.040 s):

==========================================================  =========
how the file was written                                    vs floor
==========================================================  =========
``pq.write_table`` to the path (the previous way)           2.30-2.42x
the same, columns declared non-nullable (REQUIRED)          2.36x
pyarrow alone, into a ``pa.MockOutputStream`` (no file)     0.88x
``ParquetWriter`` into a preallocated file (this store)     1.80-1.88x
  and no statistics for key and label either                1.79x
  and no dictionary for label, PLAIN everywhere             1.79x
  and ``data_page_size`` 4 MiB, or ``write_batch_size``     1.86x
  with 1,024 rows per group                                 1.60x
==========================================================  =========

The options within noise are left at what serves readers: key and label keep their statistics (DuckDB
skips row groups on ``WHERE label = 3`` with them) and the labels their dictionary. The table is handed
to pyarrow without a copy (``pa.FixedSizeBinaryArray.from_buffers`` over the images' own buffer).

With ``compression=`` each image is encoded by the codec and the ``image`` column holds the encoded
values (``binary``; see ``arrow_table``): the row groups keep the rows of the raw layout (256 CIFAR
images), so a random read fetches a smaller column chunk and decodes one image of it.

A random read (``read_one``) costs one row-group read and decode: pyarrow's per-call work (locating the
column chunks, building a one-group table, about 60 µs whatever the size) plus copying the group's pixels
(768 KiB) out of the page cache into the decoded buffer, which the reader keeps (viewed, not copied
again) for the next read: neighbouring reads are a copy of one image. ``read_indices`` decodes each group it needs once per call.

Damage: a truncated file loses its footer and is refused; pyarrow checks page headers and sizes, and the
schema is checked against the metadata. Like HDF5 and ``.npy``, the pixel bytes carry no checksum (see
above), so a flipped pixel byte reads back as a different pixel. ``durable`` fsyncs each file and its
folder (pyarrow itself never does).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from helpers.core import space
from helpers.core.errors import CorruptStoreError, StorageReportError
from helpers.stores import arrow_table
from helpers.stores.arrow_table import READ_ERRORS

ROW_GROUP_BYTES = 768 * 1024
FILE_OVERHEAD = 16 * 1024  # magic, footer, schema and metadata of a file (measured: ~2 KiB for one row)
GROUP_OVERHEAD = 1024  # column chunk metadata and page headers of one row group (measured: ~600 bytes)


def rows_per_group(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return max(1, ROW_GROUP_BYTES // (int(np.prod(shape)) * np.dtype(dtype).itemsize))


def write_parts(sink: pa.NativeFile, schema: pa.Schema, parts: Iterable[pa.Table], rows_per_group: int) -> None:
    with pq.ParquetWriter(
        sink, schema, compression="none", use_dictionary=["label"], write_statistics=["key", "label"],
        store_schema=True,
    ) as writer:
        for part in parts:
            writer.write_table(part, row_group_size=rows_per_group)


def open_file(path: Path) -> tuple[pq.ParquetFile, arrow_table.Layout]:
    """The file opened for reading with its layout, checked against its row groups."""
    if not path.exists():
        raise CorruptStoreError(f"{path}: file is missing from the store")
    try:
        file = pq.ParquetFile(path)
        layout = arrow_table.describe(file.schema_arrow, path)
        rows = file.metadata.num_rows
    except StorageReportError:
        raise
    except READ_ERRORS as error:
        raise CorruptStoreError(f"{path}: not a readable Parquet file ({error})") from None
    if layout.count is None:  # written from chunks without a declared total: the file's rows are the batch
        return file, layout._replace(count=rows)
    if rows != layout.count:
        file.close()
        raise CorruptStoreError(f"{path}: {rows} rows, its metadata promises {layout.count}")
    return file, layout


class ParquetStore(arrow_table.TableStore):
    name = "parquet"
    label = "Parquet"
    colour = "#e377c2"
    choose_when = (
        "Parquet when images travel with tabular data to analytics tools (pandas, DuckDB, Spark) and are "
        "read in bulk, not at random"
    )
    trade_off = (
        "Parquet keeps rows in row groups with a footer of metadata: bulk reads are one decode per group, "
        "but a random read decodes a whole row group."
    )
    batch_name = "many.parquet"
    suffix = ".parquet"

    rows_per_part = staticmethod(rows_per_group)
    write_file = staticmethod(write_parts)

    @classmethod
    def space_needed(cls, n_images: int, image_shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
        raw = int(np.prod(image_shape)) * dtype.itemsize
        if single:
            return n_images * (space.round_to_blocks(raw + FILE_OVERHEAD) + space.DIRECTORY_ENTRY)
        groups = -(-n_images // rows_per_group(image_shape, dtype))
        rows = n_images * (raw + 2 * space.LABEL_BYTES + 8)  # pixels, key, label, a length or level
        return space.round_to_blocks(rows + groups * GROUP_OVERHEAD + FILE_OVERHEAD)

    @classmethod
    def disk_usage_note(cls, n_images: int, apparent_bytes: int, allocated_bytes: int, raw_image_bytes: int) -> str:
        rows = max(1, ROW_GROUP_BYTES // raw_image_bytes)
        extra = apparent_bytes / n_images - raw_image_bytes
        return (f"Without compression= Parquet keeps the pixels as fixed-size values, {rows:,} images per row "
                f"group "
                f"({-(-n_images // rows):,} groups here); the key column (8 bytes per image), the "
                f"dictionary-encoded labels, page headers and the footer add {extra:,.0f} bytes per image "
                f"({extra / raw_image_bytes:.1%} of the pixels). One file, so only its last block is rounded up.")

    def _open_reader(self, path: Path) -> "ParquetReader":
        return ParquetReader(path)


class ParquetReader(arrow_table.TableReader):
    """The file open with its row-group boundaries; the last decoded row group is kept for the next read."""

    def __init__(self, path: Path) -> None:
        self.file, self.layout = open_file(path)
        super().__init__(path, self.layout.count, self.layout.shape, self.layout.dtype)
        sizes = [self.file.metadata.row_group(g).num_rows for g in range(self.file.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.cached_group = -1
        self.cached: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))

    def first_key(self) -> int:
        try:
            return int(self.file.read_row_group(0, columns=["key"]).column("key")[0].as_py())
        except READ_ERRORS as error:
            raise CorruptStoreError(f"{self.path}: cannot read the first key ({error})") from None

    def group(self, group: int) -> tuple[np.ndarray | arrow_table.EncodedColumn, np.ndarray]:
        """(images, labels) of one row group, decoded once and kept until another group is asked for.

        The images are a read-only view of the decoded Arrow buffer (kept alive with it), not a copy; encoded
        images (``compression=``) are decoded by the codec when indexed.
        """
        if group != self.cached_group:
            rows = int(self.starts[group + 1] - self.starts[group])
            try:
                table = self.file.read_row_group(group, columns=["label", "image"], use_threads=False)
                chunks = table.column("image").chunks
                if table.num_rows != rows or table.column("label").null_count or len(chunks) != 1:
                    raise ValueError(f"{table.num_rows} rows in {len(chunks)} chunks, expected {rows} labelled rows")
                images = arrow_table.images_of(chunks[0], self.layout, lambda row: self.where(group, row))
                labels = table.column("label").to_numpy()
            except READ_ERRORS as error:
                raise CorruptStoreError(f"{self.path}: cannot read row group {group} ({error})") from None
            self.cached_group, self.cached = group, (images, labels)
        return self.cached

    def where(self, group: int, row: int) -> str:
        return f"{self.path} row {int(self.starts[group]) + row} (row group {group})"

    def decode(self, read, images: np.ndarray, labels: np.ndarray, what: str) -> None:
        """Copy (decode) the table ``read()`` gives into ``images`` and ``labels``, from their first row."""
        try:
            table = read()
            if table.num_rows != len(images) or table.column("label").null_count:
                raise ValueError(f"{table.num_rows} rows, expected {len(images)} labelled rows")
            arrow_table.copy_rows(table, images, labels, self.layout, lambda row: f"{self.path} row {row}")
        except READ_ERRORS as error:
            raise CorruptStoreError(f"{self.path}: cannot read {what} ({error})") from None

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        group = int(np.searchsorted(self.starts, index, side="right")) - 1
        images, labels = self.group(group)
        row = index - int(self.starts[group])
        return images[row].copy(), int(labels[row])

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.empty((len(indices), *self.shape), dtype=self.dtype)
        labels = np.empty(len(indices), dtype=np.int64)
        groups = np.searchsorted(self.starts, indices, side="right") - 1
        order = np.argsort(groups, kind="stable")  # each group decoded once, the cached one first
        bounds = np.flatnonzero(np.diff(groups[order])) + 1
        runs = [run for run in np.split(order, bounds) if len(run)]
        runs.sort(key=lambda run: groups[run[0]] != self.cached_group)
        for run in runs:
            group = int(groups[run[0]])
            group_images, group_labels = self.group(group)
            rows = indices[run] - self.starts[group]
            images[run], labels[run] = group_images[rows], group_labels[rows]
        return images, labels

    def read_first(self, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``num_images`` rows, from the row groups that hold them, read in parallel by pyarrow a
        run of groups (about ``arrow_table.RUN_BYTES``) at a time: each run's buffers are copied out and
        given back to pyarrow's pool for the next, instead of a second copy of the whole batch in fresh
        memory (which made one read in several take ten times as long)."""
        groups = int(np.searchsorted(self.starts, num_images, side="left"))
        images = np.empty((num_images, *self.shape), self.dtype)
        labels = np.empty(num_images, np.int64)
        group_bytes = max(1, int(self.starts[1]) if len(self.starts) > 1 else 1) * images[0].nbytes
        per_run = max(1, arrow_table.RUN_BYTES // group_bytes)
        for first in range(0, groups, per_run):
            run = range(first, min(first + per_run, groups))
            start, stop = int(self.starts[run.start]), min(int(self.starts[run.stop]), num_images)
            self.decode(lambda: self.file.read_row_groups(run, columns=["label", "image"]).slice(0, stop - start),
                        images[start:stop], labels[start:stop], f"rows {start} to {stop - 1}")
        return images, labels

    def close(self) -> None:
        self.closed = True
        self.cached_group, self.cached = -1, (np.empty(0), np.empty(0))
        self.file.close()
