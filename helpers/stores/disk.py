"""PNG files on disk: one PNG per image (Pillow's default compression) and labels in CSV, as the article.

Single images: ``single/<id>.png`` and ``single/<id>.csv``. A batch: the folder ``many/`` holding
``<shard>/<i>.png`` for i = 0..n-1 (1,000 images per shard folder, ``0000/`` for images 0 to 999),
``labels.csv`` (one row per image) and ``batch.json`` (count, shape, dtype), so that an image of shape
(h, w, 1), which PNG keeps as plain greyscale, reads back with its shape.

Shards keep folders small (a folder of millions of files slows every tool that lists or backs it up) and
give each writer a folder of its own: in one test on ext4 here, two processes creating files in one folder
were slower than one process, and faster than it in two folders. The batch folder is marked for ext4 to
put each shard in a block group of its own (``chattr +T``, see ``spread_subfolders``): writers in one
group contend for its inode bitmap and table. Encoding and decoding PNG is CPU-bound,
so batches use a pool of processes (one per core) writing whole shards, or reading chunks of any shard.
The files are the same bytes whatever the number of processes.

``compression=`` picks the image file format: ``png:N`` (PNG at zlib level N, default Pillow's 6), lossless
``webp`` and ``jpeg2000`` (``.webp``, ``.jp2``), or lossy ``jpeg:Q`` and ``webp:Q`` (``.jpg``, ``.webp``),
encoded and decoded by ``helpers.stores.image_files``; every file is a standard image with its usual
extension, which Pillow and image viewers open. ``batch.json`` (and a single image's CSV) records the format, so the reader
is never told. Only PNG carries a checksum (per chunk, checked here); WebP, JPEG and JPEG 2000 files do not.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from helpers import codecs
from helpers.core import space
from helpers.core.errors import CorruptStoreError, ImageNotFoundError, UnknownCodecError
from helpers.core.files import fsync_tree, remove, spread_subfolders, write_atomically, write_new_file
from helpers.core.pool import PARALLEL_THRESHOLD, in_pool, preload_in_workers, use_pool
from helpers.stores.base import BatchReader, Store
from helpers.stores.checks import check_count, check_image_shape
from helpers.stores.chunks import AlignedBlocks
from helpers.stores.image_files import (
    decode_file,
    encode_file,
    file_suffix,
    png_bound,
)
from helpers.stores.pieces import WritesPieces, writing_name

READ_CHUNK_IMAGES = 256  # images per call when reading: reads share no folder lock, so any split works
SHARD_IMAGES = 1000  # images per folder of a batch, and per call a pool worker handles
PIECE_LABELS = "labels.npy"  # a written piece's labels, until the commit puts them in labels.csv
CSV_ROW_BYTES = 36  # a labels.csv row: "<image id up to 12 digits>,<int64 label up to 20 characters>\r\n"

preload_in_workers(__name__)  # the pool's workers run _write_range and _read_range

#: The image file formats ``compression=`` may name (files Pillow and image viewers open).
FILE_FORMATS = ("png", "webp", "jpeg2000", "jpeg")


def png_path(batch: Path, index: int, suffix: str = ".png") -> Path:
    """Where image ``index`` of a batch is kept (``suffix``: the file format's, see file_suffix)."""
    return Path(batch) / f"{index // SHARD_IMAGES:04d}" / f"{index}{suffix}"


def _write_range(folder: str, start: int, images: np.ndarray, compression: codecs.Compression | None = None) -> None:
    """Images ``start`` onwards, all of one shard, into their shard folder of the batch ``folder``."""
    shard = png_path(folder, start).parent
    shard.mkdir(exist_ok=True)
    write_image_files(shard, start, images, compression)


def write_image_files(shard: Path, start: int, images: np.ndarray, compression: codecs.Compression | None) -> None:
    suffix = file_suffix(compression)
    for index, image in enumerate(images, start):
        write_new_file(shard / f"{index}{suffix}", encode_file(image, compression))


def _read_range(
    folder: str, start: int, stop: int, shape: tuple[int, ...], dtype: str,
    compression: codecs.Compression | None = None,
) -> np.ndarray:
    return _read_positions(folder, range(start, stop), shape, dtype, compression)


def _read_positions(
    folder: str, indices: Iterable[int], shape: tuple[int, ...], dtype: str,
    compression: codecs.Compression | None = None,
) -> np.ndarray:
    indices = list(indices)
    out = np.empty((len(indices), *shape), dtype=dtype)
    suffix = file_suffix(compression)
    for position, index in enumerate(indices):
        out[position] = decode_file(png_path(folder, int(index), suffix), shape, np.dtype(dtype), compression)
    return out


def bounds(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]


class DiskStore(WritesPieces, Store):
    name = "disk"
    label = "PNG files"
    colour = "#1f77b4"
    choose_when = "PNG files when images must stay viewable and editable one by one"
    trade_off = "PNG compresses each image (zlib), costing CPU on every write and read; one file per image."
    writer_memory_note = ("The PNG method encodes in a pool of worker processes (a few shards each at a time), "
                          "whose memory is not in its row: the row is the writing process's own.")
    batch_name = "many"
    compressions = FILE_FORMATS
    native_compression = "png:6"  # Pillow's default zlib level

    def __init__(
        self, root, *, durable: bool = False, compression: str | None = None, workers: int | None = None
    ) -> None:
        super().__init__(root, durable=durable, compression=compression)
        self.workers = workers if workers is not None else (os.cpu_count() or 1)

    @classmethod
    def space_needed(cls, n_images: int, image_shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
        png = space.round_to_blocks(png_bound(image_shape, dtype)) + space.DIRECTORY_ENTRY
        if single:  # <id>.png and <id>.csv
            return n_images * (png + space.BLOCK + space.DIRECTORY_ENTRY)
        labels = space.round_to_blocks(n_images * CSV_ROW_BYTES + 64)
        return n_images * png + labels + space.BLOCK + 3 * space.DIRECTORY_ENTRY + space.BLOCK  # + folder

    @classmethod
    def files_needed(cls, n_images: int, single: bool) -> int:
        if single:  # <id>.png and <id>.csv, the single/ folder and a temporary file while one is written
            return 2 * int(n_images) + 2
        shards = -(-int(n_images) // SHARD_IMAGES)
        return int(n_images) + shards + 3  # a PNG per image, a folder per shard, labels.csv, batch.json, many/

    @classmethod
    def disk_usage_note(cls, n_images: int, apparent_bytes: int, allocated_bytes: int, raw_image_bytes: int) -> str:
        apparent = apparent_bytes / n_images
        return (f"PNG compresses each image (to {apparent / raw_image_bytes:.0%} of its raw pixels here), but every "
                f"image is a file of its own, and a file occupies whole 4 KiB blocks: a file of ~{apparent:,.0f} "
                f"bytes still takes a full block, plus its name in the folder.")

    def _store_single(self, image: np.ndarray, image_id: int, label: int) -> None:
        png = self.single_path(image_id, file_suffix(self.parsed_compression))
        meta = self.single_path(image_id, ".csv")
        png.parent.mkdir(exist_ok=True)
        data = encode_file(image, self.parsed_compression)
        write_atomically(png, data, self.durable)
        # The PNG's CRC-32 ties the two files together: a crash between the two renames leaves a new PNG
        # with an old label, which the reader then refuses instead of pairing them.
        row = io.StringIO()
        header = ["label", "shape", "dtype", "png_crc32"]
        values = [label, shape_text(image.shape), image.dtype.name, zlib.crc32(data)]
        if self.compression is not None:  # the file's format, and its CRC-32 whatever the format
            header[3:] = ["file_crc32", "compression"]
            values.append(self.compression)
        csv.writer(row).writerows([header, values])
        write_atomically(meta, row.getvalue().encode(), self.durable)

    def _read_single(self, image_id: int) -> tuple[np.ndarray, int]:
        meta = self.single_path(image_id, ".csv")
        if not meta.exists():
            raise ImageNotFoundError(f"no image with id {image_id} in {self.root} (no {meta.name})")
        rows = read_csv(meta)
        try:
            label, shape, dtype = int(rows[1][0]), parse_shape(rows[1][1]), np.dtype(rows[1][2])
            crc = int(rows[1][3])
            compression = self.parse_compression(rows[1][4]) if len(rows[1]) > 4 else None
            check_image_shape(shape, dtype)
        except (IndexError, ValueError, TypeError) as error:  # an unknown format is an UnknownCodecError
            raise CorruptStoreError(f"{meta}: not a label file of this library ({error})") from None
        path = self.single_path(image_id, file_suffix(compression))
        return decode_file(path, shape, dtype, compression, crc), label

    def _write_chunks(
        self, path: Path, chunks: Iterator[tuple[np.ndarray, np.ndarray]], total: int | None
    ) -> None:
        """Shard folders written as the chunks arrive (by the pool when it pays), labels appended to the CSV.

        Chunks of any size are regrouped into whole shards, so the files are the same however the batch was
        cut; at most a few shards are in flight, whatever the total.
        """
        path.mkdir()
        spread_subfolders(path)  # shards in separate block groups: the pool's writers do not contend
        with open(path / "labels.csv", "w", newline="") as handle:
            labels_csv = csv.writer(handle)
            labels_csv.writerow(["image_id", "label"])
            shards = AlignedBlocks(chunks, SHARD_IMAGES, lambda start, labels: labels_csv.writerows(
                zip(range(start, start + len(labels)), labels.tolist())))
            planned = total if total is not None else PARALLEL_THRESHOLD  # unknown: assume worth a pool
            if use_pool(self.workers, planned, -(-planned // SHARD_IMAGES) if total else 2):
                calls = ((str(path), start, images, self.parsed_compression) for start, images, _ in shards)
                for _ in in_pool(_write_range, calls, self.workers):
                    pass
            else:
                for start, images, _ in shards:
                    _write_range(str(path), start, images, self.parsed_compression)
        write_batch_description(path, shards.count, shards.shape, shards.dtype, self.compression)

    # A piece is one shard folder, written under a temporary name and renamed when complete, with its
    # labels beside the PNGs until the commit gathers them into labels.csv.
    writes_pieces = True

    def images_per_piece(self, image_shape: tuple[int, ...], dtype: np.dtype) -> int:
        return SHARD_IMAGES

    def _begin_pieces(self, partial: Path) -> None:
        spread_subfolders(partial)

    def _write_piece(
        self, partial: Path, index: int, images: np.ndarray, labels: np.ndarray, count: int
    ) -> None:
        final = partial / f"{index:04d}"
        if self._piece_done(partial, index):  # written by an earlier attempt at this task: the same images
            return
        remove(final)  # a piece whose labels an interrupted commit had taken already: written again
        temporary = partial / writing_name(f"{index:04d}")
        remove(temporary)
        temporary.mkdir()
        try:
            write_image_files(temporary, index * SHARD_IMAGES, images, self.parsed_compression)
            np.save(temporary / PIECE_LABELS, labels)
            if self.durable:
                fsync_tree(temporary)
            try:
                os.rename(temporary, final)
            except OSError:
                if not (final / PIECE_LABELS).exists():  # not another attempt finishing first
                    raise
        finally:
            remove(temporary)

    def _piece_done(self, partial: Path, index: int) -> bool:
        return (partial / f"{index:04d}" / PIECE_LABELS).exists()

    def _commit_pieces(self, partial: Path, count: int, image_shape: tuple[int, ...], dtype: np.dtype) -> None:
        pieces_labels = [partial / f"{index:04d}" / PIECE_LABELS for index in range(-(-count // SHARD_IMAGES))]
        with open(partial / "labels.csv", "w", newline="") as handle:
            labels_csv = csv.writer(handle)
            labels_csv.writerow(["image_id", "label"])
            for index, piece_labels in enumerate(pieces_labels):
                labels = np.load(piece_labels, allow_pickle=False)
                start = index * SHARD_IMAGES
                labels_csv.writerows(zip(range(start, start + len(labels)), labels.tolist()))
        for piece_labels in pieces_labels:  # only once labels.csv holds them all
            piece_labels.unlink()
        write_batch_description(partial, count, image_shape, dtype, self.compression)

    def _read_batch(self, path: Path, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        count, shape, dtype = read_batch_description(path)
        compression = recorded_compression(path)
        num_images = check_count(num_images, count, path)
        labels = self._read_labels(path / "labels.csv", num_images)
        chunks = bounds(num_images, READ_CHUNK_IMAGES)
        if use_pool(self.workers, num_images, len(chunks)):
            images = np.empty((num_images, *shape), dtype=dtype)
            calls = ((str(path), a, b, shape, dtype.str, compression) for a, b in chunks)
            for (a, b), chunk in zip(chunks, in_pool(_read_range, calls, self.workers)):
                images[a:b] = chunk
        else:
            images = _read_range(str(path), 0, num_images, shape, dtype.str, compression)
        return images, labels

    def _open_reader(self, path: Path) -> "PngReader":
        return PngReader(path, self.workers, recorded_compression(path))

    def files_holding(self, indices: object) -> list[Path]:
        """The image files of these positions, with the batch's description and labels."""
        batch = self.finished_batch_path()
        suffix = file_suffix(recorded_compression(batch))
        positions = np.unique(np.asarray(indices, dtype=np.int64))
        return [batch / "batch.json", batch / "labels.csv", *(png_path(batch, int(i), suffix) for i in positions)]

    @staticmethod
    def _read_labels(path: Path, num_images: int) -> np.ndarray:
        rows = read_csv(path)
        try:
            labels = np.array([int(row[1]) for row in rows[1 : num_images + 1]], dtype=np.int64)
        except (IndexError, ValueError) as error:
            raise CorruptStoreError(f"{path}: malformed label row ({error})") from None
        if len(labels) != num_images:
            raise CorruptStoreError(f"{path}: holds {len(labels)} labels, expected {num_images} (truncated)")
        return labels


def write_batch_description(
    path: Path, count: int, shape: tuple[int, ...], dtype: np.dtype, compression: str | None
) -> None:
    batch = {"count": int(count), "shape": list(shape), "dtype": np.dtype(dtype).name}
    if compression is not None:
        batch["compression"] = compression
    (path / "batch.json").write_text(json.dumps(batch))


def read_batch_description(path: Path) -> tuple[int, tuple[int, ...], np.dtype]:
    """(count, image shape, dtype) of the batch folder ``path``, from its batch.json."""
    batch_file = path / "batch.json"
    try:
        batch = json.loads(batch_file.read_text())
        count, shape, dtype = int(batch["count"]), tuple(batch["shape"]), np.dtype(batch["dtype"])
        check_image_shape(shape, dtype)
    except FileNotFoundError:
        raise CorruptStoreError(f"{batch_file}: file is missing from the store") from None
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptStoreError(f"{batch_file}: not a batch description ({error})") from None
    return count, shape, dtype


class PngReader(BatchReader):
    """The labels read once; each image is its own PNG file, opened and decoded when asked for."""

    def __init__(self, path: Path, workers: int, compression: codecs.Compression | None = None) -> None:
        count, shape, dtype = read_batch_description(path)
        super().__init__(path, count, shape, dtype)
        self.labels = DiskStore._read_labels(path / "labels.csv", count)
        self.workers = workers
        self.compression = compression  # the file format batch.json names (None: PNG, Pillow's default)
        self.suffix = file_suffix(compression)

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        image = decode_file(png_path(self.path, index, self.suffix), self.shape, self.dtype, self.compression)
        # Pillow's array is a read-only view of its bytes; the caller owns what it gets (torch warns
        # about read-only arrays), and a copy of one image is small next to its decoding.
        return (image if image.flags.writeable else image.copy()), int(self.labels[index])

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Long lists are decoded by the process pool, in chunks as read_many does; a mini-batch of up to
        # READ_CHUNK_IMAGES stays in this process (a loader's workers are the parallelism there).
        chunks = bounds(len(indices), READ_CHUNK_IMAGES)
        if not use_pool(self.workers, len(indices), len(chunks)):
            return super().read_indices(indices)
        images = np.empty((len(indices), *self.shape), dtype=self.dtype)
        calls = ((str(self.path), indices[a:b], self.shape, self.dtype.str, self.compression) for a, b in chunks)
        for (a, b), chunk in zip(chunks, in_pool(_read_positions, calls, self.workers)):
            images[a:b] = chunk
        return images, self.labels[indices]


def read_csv(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="") as handle:
            return list(csv.reader(handle))
    except FileNotFoundError:
        raise CorruptStoreError(f"{path}: file is missing from the store") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise CorruptStoreError(f"{path}: not a CSV file ({error})") from None


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(d) for d in text.split("x"))


# -- other image file formats (compression=) ------------------------------------------------------------
def recorded_compression(path: Path) -> codecs.Compression | None:
    """The file format batch.json names (None: PNG at Pillow's default level); read_batch_description
    has checked the file."""
    compression = json.loads((path / "batch.json").read_text()).get("compression")
    if compression is None:
        return None
    try:
        return DiskStore.parse_compression(compression)
    except UnknownCodecError:
        raise CorruptStoreError(f"{path / 'batch.json'}: names an unknown file format {compression!r}") from None
