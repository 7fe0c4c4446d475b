"""Zarr v3: a batch is one group, ``many.zarr``, with an array ``images`` (n, h, w[, c]) and one ``labels`` (n,).

Written with zarr-python (3.x); any Zarr v3 reader opens it: ``zarr.open_group("many.zarr", mode="r")``.
Single images are one small group each, ``single/<id>.zarr``, holding an array ``image`` (one chunk) and
the label as the group attribute ``label``; each is written beside its final name and renamed into place.

Layout, chosen by measurement (``benchmarks/zarr_layouts.py``; 100,000 CIFAR-shaped images, 307 MB of
pixels, uint8, warm page cache, floor = ``np.save``/``np.load`` of one ``.npy``: 0.05-0.2 s to write,
0.025-0.05 s to read). Each layout was measured in two or three runs on two cores shared with other jobs,
so a range is given where runs disagreed; "single" is one random image through TensorStore::

    images per chunk / per shard   allocated   store_many   read all: zarr / TensorStore   single
    1 / - (no sharding)            ~1.6 GB     one file per image (the issue's prototype; not re-run)
    1 / 1024                       310 MB      15.1 s       10.3 s / 1.00 s                64 us
    1 / 4096                       310 MB      23.0 s       14.2 s / 1.12 s                48 us
    1 / 10000                      309 MB      16.5 s       14.1 s / 0.76 s                54 us
    16 / 4096                      307 MB      1.5-5.0 s    0.58-8.1 s / 0.31-0.85 s       87-256 us
    32 / 512                       308 MB      1.3-2.2 s    0.64-1.6 s / 0.29-0.36 s       50-95 us
    32 / 4096                      308 MB      0.83 s       0.65 s / 0.18 s                88 us
    64 / 1024                      308 MB      0.74-0.94 s  0.35-0.56 s / 0.23-0.26 s      51-114 us
    64 / 2048                      308 MB      0.72-0.82 s  0.30-0.39 s / 0.27-0.47 s      45-113 us
    64 / 8192                      307 MB      0.47-2.2 s   0.31-0.35 s / 0.31-0.37 s      59-225 us
    128 / 2048                     308 MB      0.36-0.68 s  0.19-0.48 s / 0.29-0.43 s      142-168 us
    128 / 4096 (chosen)            308 MB      0.26-0.69 s  0.19-0.64 s / 0.15-0.21 s      130-250 us
    256 / 4096                     308 MB      0.24-0.55 s  0.19-0.31 s / 0.14-0.30 s      254-321 us
    512 / 8192                     308 MB      0.30-0.69 s  0.12-0.59 s / 0.24-0.32 s      354-422 us
    1024 / - (no sharding)         -           -            0.11 s / 0.25 s                -

One image per chunk is what random access would like, but zarr-python spends tens of microseconds per chunk
on both sides, so a batch of 100,000 takes 15-23 s to write and 10-14 s to read. Sharding keeps the file
count down either way (one image per chunk and no shards is one file per image, 1.6 GB allocated for
307 MB of pixels). Chunks of about 384 KiB (128 CIFAR images) are the smallest that write and read the whole
batch about as fast as any layout tried (0.3-0.7 s, 0.15-0.2 s through TensorStore), at 130-250 us for one
random image: a whole chunk is read and checksummed for it. Smaller chunks halve that single read but make
bulk reads and writes 1.5-10x slower; larger ones gain nothing in bulk. 32 chunks to a shard gives 25 files
of 12.6 MB for 100,000 images; more chunks per shard gained nothing and in one run wrote 2-3x slower.
Chunks are sized in bytes, so a 512x512 16-bit scan gets one chunk per image and 32 images per shard.

Every chunk, the labels and every shard index carry a CRC-32C (the ``crc32c`` codec, checked by both
readers), so a damaged byte is reported rather than read as a pixel. ``write_empty_chunks`` is on, so every
chunk is written even when it is all zeros: a missing chunk or shard is damage, never "fill value". On
opening, each shard file's size is compared with the size its chunks make (a truncated shard is named).

Reads go through TensorStore, which reads the same files faster than zarr-python: one image costs
0.5-0.9 ms per call with zarr-python, 130-250 us with TensorStore; the whole batch 0.15-0.2 s against
0.2-0.6 s. TensorStore cannot be used in a process forked after it started its threads (it aborts the child), so such a child
(a fork-based DataLoader worker, say) reads with zarr-python instead: same files, same checks, slower.
A spawned worker uses TensorStore. ``durable`` flushes every file and folder written (the base class's
fsync of the whole batch folder); zarr-python itself does not sync.

``compression=`` adds one of zarr's own codecs before the checksum: ``zstd[:level]`` (ZstdCodec) or
``blosc[:level]`` (BloscCodec with zstd after a bit-shuffle). A compressed batch keeps one image per chunk,
so a random read decodes one image and not 128, 4,096 chunks to a shard (COMPRESSED_PER_SHARD); the
chunks' sizes then vary, so only the shard files' presence is checked on opening (each chunk's CRC-32C
still catches damage). The codecs are part of the array's metadata: zarr-python and TensorStore decode
them whatever ``compression=`` the reader was opened with; the group's ``compression`` attribute names it.

At scale, ``store_chunks`` writes shard by shard, and ``helpers.convert`` has many workers write shards at
once (``writes_pieces``): each piece is one shard file, made as a one-shard array of the batch's layout
and moved into place; the result is byte for byte the batch ``store_many`` writes.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

from helpers.codecs import BLOSC_COMPRESSOR, Compression
from helpers.core import space
from helpers.core.errors import CorruptStoreError, ImageNotFoundError, StorageReportError
from helpers.core.files import fsync_path, fsync_tree, remove
from helpers.stores.base import PARTIAL_SUFFIX, REMOVING_SUFFIX, BatchReader, Store
from helpers.stores.checks import check_stored
from helpers.stores.chunks import AlignedBlocks
from helpers.stores.pieces import WritesPieces, writing_name

FORMAT = "image-storage-report/1"
CHUNK_BYTES = 384 * 1024  # bytes of pixels per chunk (see the table above)
CHUNKS_PER_SHARD = 32
CRC_BYTES = 4
INDEX_ENTRY_BYTES = 16  # offset and length of one chunk in a shard's index
# Chunk files named c.0.0.0.0, all in the array's own folder, instead of nested folders c/0/0/0/0.
KEY_ENCODING = {"name": "default", "configuration": {"separator": "."}}
METADATA_BYTES = 4096  # one zarr.json (about 1 KiB), rounded up to a block
COMPRESSED_PER_SHARD = 4096  # images (one per chunk) per shard file of a compressed batch
PIECE_LABELS = "labels.npy"  # a piece's labels, moved beside the batch when the piece is done
UNBOUNDED = 2**62  # a number of images larger than any batch: the layout of a batch whose size is not known


def layout(count: int, image_shape: tuple[int, ...], itemsize: int, compressed: bool = False) -> tuple[int, int]:
    """(images per chunk, images per shard) for a batch of ``count`` images."""
    if compressed:
        return 1, max(1, min(count, COMPRESSED_PER_SHARD))
    image_bytes = int(np.prod(image_shape)) * itemsize
    per_chunk = max(1, min(count, CHUNK_BYTES // image_bytes))
    chunks = -(-count // per_chunk)
    return per_chunk, per_chunk * min(CHUNKS_PER_SHARD, chunks)


def piece_labels_name(index: int) -> str:
    return f"{index}.labels.npy"


def shard_name(shard: int, ndim: int) -> str:
    """The file of shard ``shard`` inside the images array's folder."""
    return ".".join(["c", str(shard)] + ["0"] * (ndim - 1))


def expected_shard_sizes(count: int, per_chunk: int, per_shard: int, chunk_bytes: int) -> list[int]:
    """The size of each shard file: its chunks (pixels and CRC, edge chunks padded) and its index."""
    index = (per_shard // per_chunk) * INDEX_ENTRY_BYTES + CRC_BYTES
    sizes = []
    for start in range(0, count, per_shard):
        chunks = -(-min(per_shard, count - start) // per_chunk)
        sizes.append(chunks * (chunk_bytes + CRC_BYTES) + index)
    return sizes


def compressors(compression: Compression | None) -> list:
    """The bytes-to-bytes codecs of an images array: the ``compression`` codec (if any), then CRC-32C; the
    levels are those of ``helpers.codecs``' zstd and blosc."""
    if compression is None:
        return [Crc32cCodec()]
    if compression.family == "zstd":
        return [ZstdCodec(level=compression.parameter), Crc32cCodec()]
    return [BloscCodec(cname=BLOSC_COMPRESSOR, clevel=compression.parameter, shuffle="bitshuffle"), Crc32cCodec()]


def create_array(group: zarr.Group, name: str, shape: tuple[int, ...], dtype: np.dtype, chunks: tuple[int, ...],
                 shards: tuple[int, ...] | None = None, compression: Compression | None = None) -> zarr.Array:
    """An empty array of this library's layout, every chunk written even if all zeros."""
    return group.create_array(
        name, shape=shape, dtype=dtype, chunks=chunks, shards=shards, filters=None,
        compressors=compressors(compression), fill_value=0, chunk_key_encoding=KEY_ENCODING,
        config={"write_empty_chunks": True},
    )


def open_group(path: Path) -> zarr.Group:
    """The group at ``path`` opened read-only, checked to be one this library wrote."""
    metadata = path / "zarr.json"
    if not metadata.exists():
        raise CorruptStoreError(f"{metadata}: file is missing from the store")
    try:
        group = zarr.open_group(path, mode="r")
        found = group.attrs.get("format")
    except (ValueError, TypeError, KeyError, OSError) as error:  # garbage JSON, a foreign node type
        raise CorruptStoreError(f"{metadata}: not readable Zarr v3 group metadata ({error})") from None
    if found != FORMAT:
        raise CorruptStoreError(f"{metadata}: format {found!r}, this library reads {FORMAT!r}")
    return group


def open_array(group: zarr.Group, path: Path, name: str) -> zarr.Array:
    metadata = path / name / "zarr.json"
    if not metadata.exists():
        raise CorruptStoreError(f"{metadata}: file is missing from the store")
    try:
        array = group[name]
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise CorruptStoreError(f"{metadata}: not readable Zarr v3 array metadata ({error})") from None
    if not isinstance(array, zarr.Array):
        raise CorruptStoreError(f"{path / name}: is not an array")
    return array


# -- TensorStore, where this process may use it ------------------------------------------------

#: The process that started TensorStore's threads; a child forked from it must not touch TensorStore.
_tensorstore_pid: int | None = None


def tensorstore_allowed() -> bool:
    """Whether this process may read with TensorStore (it aborts a process forked after its threads ran)."""
    return _tensorstore_pid is None or _tensorstore_pid == os.getpid()


def open_tensorstore(array_path: Path):
    global _tensorstore_pid
    import tensorstore

    _tensorstore_pid = os.getpid()
    # A chunk that is not there is an error rather than the fill value (this store writes every chunk).
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{array_path}/"},
            "fill_missing_data_reads": False}
    try:
        return tensorstore.open(spec, read=True).result()
    except ValueError as error:
        raise CorruptStoreError(f"{array_path}: TensorStore cannot open the array ({error})") from None


class ZarrStore(WritesPieces, Store):
    name = "zarr"
    label = "Zarr"
    colour = "#9467bd"
    choose_when = (
        "Zarr when the set is an array read in chunks from object storage or by many workers"
    )
    trade_off = (
        "Zarr v3 keeps the batch in checksummed chunks of about 384 KiB (128 CIFAR images), 32 to a shard "
        "file: near the raw size on disk, but a random image reads and checks its whole chunk."
    )
    batch_name = "many.zarr"
    compressions = ("zstd", "blosc")

    @classmethod
    def space_needed(cls, n_images: int, image_shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
        raw = int(np.prod(image_shape)) * np.dtype(dtype).itemsize
        folders = space.BLOCK + space.DIRECTORY_ENTRY
        if single:  # a group: zarr.json, image/zarr.json, one chunk file; two folders
            per_image = 2 * METADATA_BYTES + space.round_to_blocks(raw + CRC_BYTES) + 2 * folders
            return n_images * (per_image + 3 * space.DIRECTORY_ENTRY) + folders
        if n_images == 0:
            return 3 * METADATA_BYTES + 3 * folders
        per_chunk, per_shard = layout(n_images, image_shape, np.dtype(dtype).itemsize)
        shards = sum(space.round_to_blocks(size) + space.DIRECTORY_ENTRY
                     for size in expected_shard_sizes(n_images, per_chunk, per_shard, per_chunk * raw))
        labels = space.round_to_blocks(n_images * space.LABEL_BYTES + CRC_BYTES)
        return shards + labels + 3 * METADATA_BYTES + 3 * folders + 4 * space.DIRECTORY_ENTRY

    # -- single images: one small group each ---------------------------------------------------
    def _single_group(self, image_id: int) -> Path:
        return self.single_path(image_id, ".zarr")

    def _store_single(self, image: np.ndarray, image_id: int, label: int) -> None:
        final = self._single_group(image_id)
        partial = final.with_name(final.name + PARTIAL_SUFFIX)
        removing = final.with_name(final.name + REMOVING_SUFFIX)
        final.parent.mkdir(parents=True, exist_ok=True)
        remove(partial)
        try:
            group = zarr.open_group(partial, mode="w-", attributes={"format": FORMAT, "label": label})
            create_array(group, "image", image.shape, image.dtype, image.shape,
                         compression=self.parsed_compression)[...] = image
            if self.durable:
                fsync_tree(partial)
        except BaseException:
            remove(partial)
            raise
        # A folder cannot replace a folder in one rename: the old group is moved aside first, so a crash
        # in between leaves no image under this id (an error when read), never a mix of two writes.
        remove(removing)
        if final.exists():
            os.replace(final, removing)
        os.replace(partial, final)
        remove(removing)
        if self.durable:
            fsync_path(final.parent)

    def _read_single(self, image_id: int) -> tuple[np.ndarray, int]:
        path = self._single_group(image_id)
        if not path.exists():
            raise ImageNotFoundError(f"no image with id {image_id} in {self.root} (no {path.name})")
        group = open_group(path)
        label = group.attrs.get("label")
        if isinstance(label, bool) or not isinstance(label, int):
            raise CorruptStoreError(f"{path / 'zarr.json'}: the label attribute is {label!r}, not an integer")
        array = open_array(group, path, "image")
        check_stored(array.shape, array.dtype, path / "image")
        chunk = path / "image" / shard_name(0, array.ndim)
        expected = int(np.prod(array.shape)) * array.dtype.itemsize + CRC_BYTES
        if not chunk.exists() or (not is_compressed(array) and chunk.stat().st_size != expected):
            raise CorruptStoreError(f"{chunk}: the image's chunk is missing or not {expected} bytes")
        try:
            return np.asarray(array[...]), label
        except StorageReportError:
            raise
        except Exception as error:  # zarr raises what its codecs raise, e.g. ValueError on a bad checksum
            raise CorruptStoreError(f"{chunk}: cannot read the image ({error})") from None

    # -- the batch ---------------------------------------------------------------------------------
    def _write_chunks(
        self, path: Path, chunks: Iterator[tuple[np.ndarray, np.ndarray]], total: int | None
    ) -> None:
        """The images written a whole shard at a time as the chunks arrive; the labels (8 bytes an image)
        gathered and written at the end.

        The layout depends on the number of images only while it is below one full shard's worth, so
        without ``total`` that many are gathered first: a batch that ends sooner gets its exact layout,
        a longer one the full-shard layout, which is then the same as its count would give, and its array
        grows shard by shard.
        """
        compressed = self.compression is not None
        chunks = iter(chunks)
        head: list[tuple[np.ndarray, np.ndarray]] = []
        gathered = 0
        for images, labels in chunks:
            head.append((images, labels))
            gathered += len(images)
            full_shard = layout(UNBOUNDED, images.shape[1:], images.dtype.itemsize, compressed)[1]
            if total is not None or gathered >= full_shard:
                break
        else:
            total = gathered  # the whole batch is in hand
        image_shape, dtype = head[0][0].shape[1:], head[0][0].dtype
        per_chunk, per_shard = layout(total or UNBOUNDED, image_shape, dtype.itemsize, compressed)
        group = zarr.open_group(path, mode="w-", attributes=self.group_attributes())
        images_array = create_array(group, "images", (total or 0, *image_shape), dtype, (per_chunk, *image_shape),
                                    shards=(per_shard, *image_shape), compression=self.parsed_compression)
        labels_parts: list[np.ndarray] = []
        blocks = AlignedBlocks(itertools.chain(head, chunks), per_shard)
        for start, images, labels in blocks:
            labels_parts.append(labels)
            stop = start + len(images)
            if total is None:
                images_array.resize((stop, *image_shape))
            images_array[start:stop] = images
        labels = np.concatenate(labels_parts)
        create_array(group, "labels", labels.shape, labels.dtype, labels.shape)[...] = labels

    # A piece is one shard file. A worker writes its images as a one-shard array of the batch's layout
    # beside the batch (the shard file's bytes do not depend on where the shard sits in the array), moves
    # the shard file into place and then its labels, which mark the piece done; the commit writes the
    # arrays' metadata and the labels.
    writes_pieces = True

    def images_per_piece(self, image_shape: tuple[int, ...], dtype: np.dtype) -> int:
        return layout(UNBOUNDED, image_shape, np.dtype(dtype).itemsize, self.compression is not None)[1]

    def _write_piece(
        self, partial: Path, index: int, images: np.ndarray, labels: np.ndarray, count: int
    ) -> None:
        if self._piece_done(partial, index):  # written by an earlier attempt at this task: the same images
            return
        image_shape = images.shape[1:]
        per_chunk, per_shard = layout(count, image_shape, images.dtype.itemsize, self.compression is not None)
        scratch = partial / writing_name(f"piece-{index}")
        try:
            group = zarr.open_group(scratch, mode="w-")
            create_array(group, "images", images.shape, images.dtype, (per_chunk, *image_shape),
                         shards=(per_shard, *image_shape), compression=self.parsed_compression)[...] = images
            np.save(scratch / PIECE_LABELS, labels)
            shard = scratch / "images" / shard_name(0, images.ndim)
            if self.durable:
                fsync_path(shard)
                fsync_path(scratch / PIECE_LABELS)
            (partial / "images").mkdir(exist_ok=True)
            os.replace(shard, partial / "images" / shard_name(index, images.ndim))
            os.replace(scratch / PIECE_LABELS, partial / piece_labels_name(index))
        finally:
            remove(scratch)

    def _piece_done(self, partial: Path, index: int) -> bool:
        return (partial / piece_labels_name(index)).exists()

    def _commit_pieces(self, partial: Path, count: int, image_shape: tuple[int, ...], dtype: np.dtype) -> None:
        pieces = range(-(-count // self.images_per_piece(image_shape, dtype)))
        labels = np.concatenate([np.load(partial / piece_labels_name(index), allow_pickle=False) for index in pieces])
        per_chunk, per_shard = layout(count, image_shape, dtype.itemsize, self.compression is not None)
        group = zarr.open_group(partial, mode="a", attributes=self.group_attributes())
        create_array(group, "images", (count, *image_shape), dtype, (per_chunk, *image_shape),
                     shards=(per_shard, *image_shape), compression=self.parsed_compression)
        create_array(group, "labels", labels.shape, labels.dtype, labels.shape)[...] = labels
        for index in pieces:
            (partial / piece_labels_name(index)).unlink()

    def group_attributes(self) -> dict:
        return {"format": FORMAT, **({"compression": self.compression} if self.compression is not None else {})}

    def _open_reader(self, path: Path) -> "ZarrReader":
        return ZarrReader(path)


class ZarrReader(BatchReader):
    """The batch's metadata checked and its labels read once; images read through TensorStore (or
    zarr-python in a child forked after TensorStore started), one chunk per image asked for."""

    def __init__(self, path: Path) -> None:
        group = open_group(path)
        images = open_array(group, path, "images")
        labels = open_array(group, path, "labels")
        check_stored(images.shape[1:], images.dtype, path / "images")
        count = images.shape[0]
        if labels.shape != (count,) or labels.dtype.kind not in "iu":
            raise CorruptStoreError(f"{path / 'labels'}: {labels.shape} labels for {count} images")
        super().__init__(path, count, images.shape[1:], images.dtype)
        self.images_path = path / "images"
        self.per_chunk, self.per_shard = self.check_layout(images)
        self.labels = self.read_labels(labels)
        self.images = open_tensorstore(self.images_path) if tensorstore_allowed() else images
        self.uses_tensorstore = self.images is not images

    def check_layout(self, images: zarr.Array) -> tuple[int, int]:
        """(images per chunk, per shard), after checking that every shard file is there, whole."""
        per_chunk, per_shard = images.chunks[0], images.shards[0] if images.shards else None
        compressed = is_compressed(images)
        if per_shard is None or (per_chunk, per_shard) != layout(self.count, self.shape, self.dtype.itemsize,
                                                                 compressed):
            raise CorruptStoreError(f"{self.images_path / 'zarr.json'}: not the chunk layout this library writes")
        chunk_bytes = per_chunk * int(np.prod(self.shape)) * self.dtype.itemsize
        for shard, size in enumerate(expected_shard_sizes(self.count, per_chunk, per_shard, chunk_bytes)):
            file = self.images_path / shard_name(shard, len(self.shape) + 1)
            try:
                found = file.stat().st_size
            except FileNotFoundError:
                raise CorruptStoreError(f"{file}: shard file is missing from the store") from None
            if found != size and not compressed:  # compressed chunks vary in size; their CRC-32C still checks
                raise CorruptStoreError(f"{file}: shard file is {found} bytes, its chunks make {size} (damaged)")
        return per_chunk, per_shard

    def read_labels(self, labels: zarr.Array) -> np.ndarray:
        where = self.path / "labels" / shard_name(0, 1)
        if not where.exists():
            raise CorruptStoreError(f"{where}: the labels chunk is missing from the store")
        try:
            return np.asarray(labels[...]).astype(np.int64)
        except Exception as error:  # a checksum mismatch, a short file
            raise CorruptStoreError(f"{where}: cannot read the labels ({error})") from None

    def damaged(self, error: Exception, indices: np.ndarray | range) -> CorruptStoreError:
        """The error for a failed read of these positions, naming the shard files they are in."""
        shards = np.unique(np.asarray(indices) // self.per_shard).tolist()
        files = [str(self.images_path / shard_name(shard, len(self.shape) + 1)) for shard in shards[:3]]
        more = f" and {len(shards) - 3} more" if len(shards) > 3 else ""
        return CorruptStoreError(f"{', '.join(files)}{more}: cannot read the images ({error})")

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        try:
            if self.uses_tensorstore:
                image = self.images[index].read().result()
            else:
                image = self.images[index]
        except Exception as error:
            raise self.damaged(error, [index]) from None
        return image, int(self.labels[index])

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(indices) == 0:
            return np.empty((0, *self.shape), dtype=self.dtype), np.empty(0, dtype=np.int64)
        try:
            if self.uses_tensorstore:
                images = self.images[indices].read().result()
            else:
                images = self.images.get_orthogonal_selection((indices,))
        except Exception as error:
            raise self.damaged(error, indices) from None
        return np.asarray(images), self.labels[indices]

    def read_first(self, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``num_images`` images in one read, and their labels."""
        try:
            if self.uses_tensorstore:
                images = self.images[:num_images].read().result()
            else:
                images = np.asarray(self.images[:num_images])
        except Exception as error:
            raise self.damaged(error, range(num_images)) from None
        return images, self.labels[:num_images].copy()

    def close(self) -> None:
        self.images = None
        self.closed = True



def is_compressed(array: zarr.Array) -> bool:
    """Whether the array's chunks pass through a compressor (anything but the CRC-32C checksum)."""
    return any(not isinstance(codec, Crc32cCodec) for codec in array.compressors)
