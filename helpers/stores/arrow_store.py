"""Arrow: an Arrow IPC file (Feather v2), read through a memory map.

The same columns as the Parquet store (``key``, ``label``, ``image``; see ``arrow_table``) in the Arrow IPC
file format, which is what Hugging Face ``datasets`` keeps on local disk: a batch is ``many.arrow``, a
single image ``single/<id>.arrow``. Any Arrow reader opens them: ``pyarrow.ipc.open_file``,
``pyarrow.feather.read_table``, ``datasets.Dataset.from_file``.

Readers map the file (``pa.memory_map`` + ``pa.ipc.open_file``) and take the image column as NumPy views
of the mapped record batches, without decoding or copying anything: a random read is a copy of one image
out of the page cache, a bulk read one copy of the mapped bytes. Records batches hold ``BATCH_BYTES``
(64 MiB) of pixels each, so a writer never needs more than that beyond the images it was given; a reader
sees one view per record batch.

Files are written into preallocated blocks (``helpers.core.files.preallocated``, as ``np.save`` does): 0.058 s
for 100,000 CIFAR-shaped images (1.40x the floor's write) into a new file, 0.039 s (1.01x) preallocated.

With ``compression=`` (any codec of ``helpers.codecs``) the ``image`` column holds each image encoded by
the codec (``binary``, the codec named in the schema metadata; see ``arrow_table``). Arrow's own IPC
compression (LZ4 or zstd over whole buffers) is not used: it would have a reader decompress a whole record
batch to reach one image, where a value of its own is one decode of one image, and any Arrow reader still
sees the encoded bytes as a plain column.

Damage: the file ends with a footer that locates every record batch, so a truncated file is refused when
it is opened (before any mapped page past its end could be touched), and pyarrow checks every buffer lies
inside the file (``validate``). The pixels carry no checksum, as in ``.npy`` and HDF5. ``durable`` fsyncs
each file and its folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa

from helpers.core import space
from helpers.core.errors import CorruptStoreError, StorageReportError
from helpers.stores import arrow_table
from helpers.stores.arrow_table import READ_ERRORS

BATCH_BYTES = 64 * 1024 * 1024
FILE_OVERHEAD = 16 * 1024  # magic, schema message, footer (measured: ~1.5 KiB)
BATCH_OVERHEAD = 1024  # one record batch's message header and padding (measured: ~350 bytes)


def rows_per_batch(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return max(1, BATCH_BYTES // (int(np.prod(shape)) * np.dtype(dtype).itemsize))


def write_parts(sink: pa.NativeFile, schema: pa.Schema, parts: Iterable[pa.Table], rows: int) -> None:
    options = pa.ipc.IpcWriteOptions(compression=None)
    with pa.ipc.new_file(sink, schema, options=options) as writer:
        for part in parts:
            writer.write_table(part, max_chunksize=rows)


class ArrowStore(arrow_table.TableStore):
    name = "arrow"
    label = "Arrow IPC"
    colour = "#17becf"
    choose_when = (
        "Arrow IPC when a training loop reads at random from local disk (the layout Hugging Face datasets"
        " keeps)"
    )
    trade_off = (
        "Arrow IPC lays the batch out as the columns sit in memory: reads map the file and copy, "
        "nothing is decoded, and nothing is compressed unless a codec is asked for."
    )
    batch_name = "many.arrow"
    suffix = ".arrow"

    rows_per_part = staticmethod(rows_per_batch)
    write_file = staticmethod(write_parts)

    @classmethod
    def space_needed(cls, n_images: int, image_shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
        raw = int(np.prod(image_shape)) * dtype.itemsize
        if single:
            return n_images * (space.round_to_blocks(raw + FILE_OVERHEAD) + space.DIRECTORY_ENTRY)
        batches = -(-n_images // rows_per_batch(image_shape, dtype))
        columns_padding = 3 * 64  # each buffer padded to 64 bytes
        rows = n_images * (raw + 2 * space.LABEL_BYTES)
        return space.round_to_blocks(rows + batches * (BATCH_OVERHEAD + columns_padding) + FILE_OVERHEAD)

    @classmethod
    def disk_usage_note(cls, n_images: int, apparent_bytes: int, allocated_bytes: int, raw_image_bytes: int) -> str:
        batches = -(-n_images // max(1, BATCH_BYTES // raw_image_bytes))
        extra = apparent_bytes / n_images - raw_image_bytes
        return (f"The Arrow IPC file holds the columns as they sit in memory: the pixels, an int64 key and label "
                f"per image (16 bytes), {batches:,} record-batch header(s) and a footer, {extra:,.0f} bytes per "
                f"image over the pixels ({extra / raw_image_bytes:.1%}); without compression= nothing is "
                f"compressed, and one file has only its last block rounded up.")

    def _open_reader(self, path: Path) -> "ArrowReader":
        return ArrowReader(path)


class ArrowReader(arrow_table.TableReader):
    """The file memory-mapped; one NumPy view of the image column per record batch, labels in memory."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise CorruptStoreError(f"{path}: file is missing from the store")
        self.source = None
        try:
            self.source = pa.memory_map(str(path), "r")
            ipc = pa.ipc.open_file(self.source)
            layout = arrow_table.describe(ipc.schema, path)
            count, shape, dtype = layout.count, layout.shape, layout.dtype
            batches = [ipc.get_batch(i) for i in range(ipc.num_record_batches)]
            for batch in batches:
                batch.validate()
            firsts = np.cumsum([0] + [batch.num_rows for batch in batches]).tolist()
            views = [arrow_table.images_of(batch.column("image"), layout,
                                           lambda row, first=first: f"{path} row {first + row}")
                     for batch, first in zip(batches, firsts) if batch.num_rows]
            labels = [batch.column("label") for batch in batches]
            if any(column.null_count for column in labels):
                raise ValueError("a label is missing")
            self.labels = np.concatenate([column.to_numpy() for column in labels]) if labels else np.empty(0, np.int64)
            self.keys = np.concatenate([batch.column("key").to_numpy() for batch in batches]) if batches else self.labels
        except StorageReportError:
            self.release()
            raise
        except READ_ERRORS as error:
            self.release()
            raise CorruptStoreError(f"{path}: not a readable Arrow IPC file ({error})") from None
        if count is None:  # written from chunks without a declared total: the file's rows are the batch
            count = len(self.labels)
        elif len(self.labels) != count:
            self.release()
            raise CorruptStoreError(f"{path}: {len(self.labels)} rows, its metadata promises {count}")
        super().__init__(path, count, shape, dtype)
        self.views = views
        self.starts = np.concatenate([[0], np.cumsum([len(view) for view in views], dtype=np.int64)])
        self.single_view = views[0] if len(views) == 1 else None

    def first_key(self) -> int:
        return int(self.keys[0])

    def read_first(self, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        images = np.empty((num_images, *self.shape), self.dtype)
        start = 0
        for view in self.views:
            stop = min(start + len(view), num_images)
            images[start:stop] = view[: stop - start]
            start = stop
            if start == num_images:
                break
        return images, self.labels[:num_images].copy()

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        if self.single_view is not None:
            return self.single_view[index].copy(), int(self.labels[index])
        batch = int(np.searchsorted(self.starts, index, side="right")) - 1
        return self.views[batch][index - int(self.starts[batch])].copy(), int(self.labels[index])

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.single_view is not None:
            return self.single_view[indices], self.labels[indices]
        images = np.empty((len(indices), *self.shape), dtype=self.dtype)
        batches = np.searchsorted(self.starts, indices, side="right") - 1
        if len(indices) and batches.min() == batches.max():  # a short read lands in one record batch
            images[:] = self.views[batches[0]][indices - self.starts[batches[0]]]
        else:
            for batch in np.unique(batches):
                chosen = batches == batch
                images[chosen] = self.views[batch][indices[chosen] - self.starts[batch]]
        return images, self.labels[indices]

    def release(self) -> None:
        self.views, self.single_view = [], None
        if self.source is not None:
            self.source.close()

    def close(self) -> None:
        self.closed = True
        self.release()
