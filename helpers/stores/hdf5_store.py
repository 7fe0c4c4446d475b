"""HDF5: a batch is one file, ``many.h5``, with a dataset ``images`` (n, h, w[, c]) and one ``labels`` (n,).

Single images are one file each, ``single/<id>.h5`` with datasets ``image`` and ``label``, as the article.
Datasets are contiguous and uncompressed, so a batch is one bulk copy each way. Readers open files with
mode "r" (the article's "r+" would let a reader change the file).

Files use the HDF5 1.10 format, whose superblock and object headers carry checksums, so damaged metadata
is reported. The pixels themselves carry none (HDF5 checks data only through filters such as fletcher32,
which need chunked storage and here doubled the read time): like a raw array, a flipped pixel byte reads
back as a different pixel.

Random reads (``Hdf5Reader``): ``ds[i]`` costs about 7 to 15 µs in h5py whatever the image size (the
low-level ``ds.id.read`` with a hyperslab selected per image measured slower, ``read_direct`` 3x slower,
fancy indexing over 20 µs per index). The images dataset is contiguous and unfiltered, so the reader
memory-maps it where HDF5 says it starts (``DatasetID.get_offset``, the documented way to map a contiguous
dataset): a random read is then a copy out of the map, as for the ``.npy`` floor. Cold random reads of
small images advise the map ``MADV_RANDOM`` (no read-ahead), large ones keep read-ahead
(``helpers.stores.base.wants_readahead``, the same rule as LMDB's). A dataset that is chunked or filtered
(not written by this library's batches) is read with ``ds[i]``, through a file opened with a one-page sieve
buffer: HDF5's default 64 KiB sieve made cold random 3 KiB reads 2x slower than ``os.pread``.

With ``compression=`` the images dataset is chunked one image per chunk and compressed by an HDF5 filter:
``gzip[:level]`` and ``lzf`` (built into h5py), ``zstd[:level]`` and ``blosc[:level]`` from ``hdf5plugin``, so a
random read decodes one image. ``blosc`` means what it means everywhere in this library (the codec
``blosc`` of ``helpers.codecs``, zarr's BloscCodec): zstd after a bit-shuffle, level 5 by default, with
the compressor and levels taken from ``helpers.codecs`` (``BLOSC_COMPRESSOR``, ``BLOSC_LEVELS``); here in
the Blosc filter that HDF5 readers with ``hdf5plugin`` know (id 32001). Measured on 200 synthetic 512x512
16-bit scans, a shuffled epoch timed in turn with the raw store's: zstd:5 stores them 4.16x smaller than
raw pixels and reads one in 225 us (2.44x the raw epoch), written in 0.54 s; zstd:3 4.11x, 258 us;
zstd:9 4.33x, 225 us, but 8 s to write; a byte shuffle instead of the bit-shuffle 4.00x, 306 us. LZ4HC
(level 9) reads faster, 166 us (1.65x), for a larger file (3.95x) written in 2.1 s, and LZ4 3.55x, 188 us:
both were left out so that one name means one thing. The filter is part of the file
(any HDF5 reader with the plugin decodes it, and this store's reader whatever ``compression=`` it was
opened with); the ``compression`` attribute of the file names it with its level, for people.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import h5py
import hdf5plugin  # registers the Blosc and Zstd filters with HDF5, for writing and for reading
import imagecodecs
import numpy as np

from helpers.codecs import BLOSC_COMPRESSOR, Compression
from helpers.core import space
from helpers.core.errors import CorruptStoreError, ImageNotFoundError, StorageReportError
from helpers.core.files import replaced_when_written
from helpers.stores.base import BatchReader, Store, wants_readahead
from helpers.stores.checks import check_count, check_stored

FORMAT = "image-storage-report/1"
FILE_OVERHEAD = 16 * 1024  # superblock, object headers, attributes of one file (measured: ~6 KiB)
CHUNK_BYTES = 1 << 20  # bytes of images per HDF5 chunk when a batch of unknown size is streamed in
LIBVER = "v110"  # checksummed metadata; readable by HDF5 1.10 and later


SIEVE_BYTES = 4096  # HDF5's sieve buffer for random reads: one page (its default, 64 KiB, reads 16 times that)


def open_for_reading(path: Path, sieve_bytes: int | None = None) -> h5py.File:
    """``path`` opened read-only; ``sieve_bytes`` sets HDF5's data sieve buffer (None: HDF5's default)."""
    if not path.exists():
        raise CorruptStoreError(f"{path}: file is missing from the store")
    try:
        if sieve_bytes is None:
            return h5py.File(path, "r")
        access = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        access.set_sieve_buf_size(sieve_bytes)
        return h5py.File(h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY, fapl=access))
    except OSError as error:
        raise CorruptStoreError(f"{path}: not a readable HDF5 file ({error})") from None


def dataset(file: h5py.File, name: str, path: Path) -> h5py.Dataset:
    try:
        data = file[name]
    except KeyError:
        raise CorruptStoreError(f"{path}: the dataset {name!r} is missing") from None
    if not isinstance(data, h5py.Dataset):
        raise CorruptStoreError(f"{path}: {name!r} is not a dataset")
    return data


class Hdf5Store(Store):
    name = "hdf5"
    label = "HDF5"
    colour = "#2ca02c"
    choose_when = "HDF5 when the set is one array that is written once and read in slices"
    trade_off = "HDF5 writes the whole batch as one contiguous array: one bulk copy, a small fixed header."
    batch_name = "many.h5"
    compressions = ("gzip", "lzf", "zstd", "blosc")

    @classmethod
    def space_needed(cls, n_images: int, image_shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
        raw = int(np.prod(image_shape)) * dtype.itemsize
        if single:
            per_file = space.round_to_blocks(raw + space.LABEL_BYTES + FILE_OVERHEAD) + space.DIRECTORY_ENTRY
            return n_images * per_file
        return space.round_to_blocks(n_images * (raw + space.LABEL_BYTES) + FILE_OVERHEAD)

    @classmethod
    def disk_usage_note(cls, n_images: int, apparent_bytes: int, allocated_bytes: int, raw_image_bytes: int) -> str:
        return ("HDF5 keeps all images as one contiguous, uncompressed array in one file: raw pixels, "
                "a label per image and a few KiB of metadata, so it is close to the raw size.")

    def _store_single(self, image: np.ndarray, image_id: int, label: int) -> None:
        with replaced_when_written(self.single_path(image_id, ".h5"), self.durable) as partial:
            with h5py.File(partial, "w", libver=LIBVER) as file:
                file.attrs["format"] = FORMAT
                file.create_dataset("image", data=image, **self.filter_options(image.shape))
                file.create_dataset("label", data=np.int64(label))

    def _read_single(self, image_id: int) -> tuple[np.ndarray, int]:
        path = self.single_path(image_id, ".h5")
        if not path.exists():
            raise ImageNotFoundError(f"no image with id {image_id} in {self.root} (no {path.name})")
        try:
            with open_for_reading(path) as file:
                check_format(file, path)
                image = dataset(file, "image", path)[()]
                label = int(dataset(file, "label", path)[()])
        except StorageReportError:
            raise
        except (OSError, ValueError, TypeError, KeyError) as error:  # damaged data blocks surface here
            raise CorruptStoreError(f"{path}: cannot read the image ({error})") from None
        check_stored(image.shape, image.dtype, path)
        return image, label

    def _write_chunks(
        self, path: Path, chunks: Iterator[tuple[np.ndarray, np.ndarray]], total: int | None
    ) -> None:
        """Each chunk copied into place as it arrives.

        With ``total`` known (always so for ``store_many``) both datasets are laid out at once, contiguous,
        exactly as writing the whole array would; without it they are chunked and resizable, grown chunk by
        chunk (HDF5 cannot grow a contiguous dataset), ``CHUNK_BYTES`` of images per HDF5 chunk.
        """
        with h5py.File(path, "w", libver=LIBVER) as file:
            file.attrs["format"] = FORMAT
            if self.compression is not None:
                file.attrs["compression"] = self.compression
            images_data = labels_data = None
            count = 0
            for images, labels in chunks:
                if images_data is None:
                    images_data, labels_data = create_batch_datasets(
                        file, images, total, self.filter_options(images.shape[1:], batch=True)
                    )
                stop = count + len(images)
                if total is None:
                    images_data.resize(stop, axis=0)
                    labels_data.resize(stop, axis=0)
                images_data.write_direct(images, dest_sel=np.s_[count:stop])
                labels_data.write_direct(labels, dest_sel=np.s_[count:stop])
                count = stop

    def filter_options(self, image_shape: tuple[int, ...], batch: bool = False) -> dict:
        """``create_dataset`` arguments for the images: none (contiguous) or one compressed chunk per image."""
        if self.compression is None:
            return {}
        return {"chunks": (1, *image_shape) if batch else image_shape, **filter_options(self.parsed_compression)}

    def _read_batch(self, path: Path, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            with open_for_reading(path) as file:
                images_data, labels_data = batch_datasets(file, path)
                num_images = check_count(num_images, images_data.shape[0], path)
                images = np.empty((num_images, *images_data.shape[1:]), dtype=images_data.dtype)
                images_data.read_direct(images, np.s_[:num_images])
                labels = labels_data[:num_images].astype(np.int64)
        except StorageReportError:  # already says what is wrong (bad request, missing image, damage)
            raise
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise CorruptStoreError(f"{path}: cannot read the batch ({error})") from None
        return images, labels

    def _open_reader(self, path: Path) -> "Hdf5Reader":
        reader = Hdf5Reader(path)
        if reader.map is not None or blosc_chunks(reader.images) is None:  # mapped: raw pixels, no filter
            return reader
        return BloscChunkReader(reader)


def create_batch_datasets(
    file: h5py.File, first_images: np.ndarray, total: int | None, filters: dict
) -> tuple[h5py.Dataset, h5py.Dataset]:
    """Empty ``images`` and ``labels`` datasets for a batch shaped like ``first_images``: ``total`` long, or
    empty, chunked and resizable when the total is not known. ``filters``: the images' compression options
    (``Hdf5Store.filter_options``); none lays a known total out contiguous."""
    image_shape = first_images.shape[1:]
    if total is not None:
        images = file.create_dataset("images", shape=(total, *image_shape), dtype=first_images.dtype, **filters)
        return images, file.create_dataset("labels", shape=(total,), dtype=np.int64)
    rows = max(1, CHUNK_BYTES // first_images[0].nbytes)
    images = file.create_dataset(
        "images", shape=(0, *image_shape), maxshape=(None, *image_shape), dtype=first_images.dtype,
        **{"chunks": (rows, *image_shape), **filters},
    )
    labels = file.create_dataset("labels", shape=(0,), maxshape=(None,), chunks=(CHUNK_BYTES // 8,), dtype=np.int64)
    return images, labels


def batch_datasets(file: h5py.File, path: Path) -> tuple[h5py.Dataset, h5py.Dataset]:
    """The ``images`` and ``labels`` datasets of a batch file, checked to belong together."""
    check_format(file, path)
    images_data = dataset(file, "images", path)
    labels_data = dataset(file, "labels", path)
    check_stored(images_data.shape[1:], images_data.dtype, path)
    if labels_data.shape != images_data.shape[:1] or labels_data.dtype.kind not in "iu":
        raise CorruptStoreError(
            f"{path}: {labels_data.shape[0] if labels_data.shape else 0} labels "
            f"for {images_data.shape[0]} images"
        )
    return images_data, labels_data


class Hdf5Reader(BatchReader):
    """The batch held open read-only: labels read once; images memory-mapped where HDF5 stores them when
    the dataset is contiguous and unfiltered (as this library writes it), else one ``ds[i]`` at a time."""

    def __init__(self, path: Path) -> None:
        self.file = open_for_reading(path, SIEVE_BYTES)
        self.map = None
        try:
            self.images, labels = batch_datasets(self.file, path)
            self.labels = labels[()].astype(np.int64)
            mapped = map_contiguous(self.images, path)
        except BaseException:
            self.file.close()
            raise
        super().__init__(path, self.images.shape[0], self.images.shape[1:], self.images.dtype)
        if mapped is not None:
            self.map, self.images = mapped
            self.file.close()  # the map holds the pixels; the labels are in memory

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        try:
            return np.array(self.images[index]), int(self.labels[index])
        except (OSError, ValueError) as error:
            raise CorruptStoreError(f"{self.path}: cannot read image {index} ({error})") from None

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.map is None:
            return super().read_indices(indices)
        # As the floor: in file order, so that a cold read moves forward; then back in the order asked.
        order = np.argsort(indices, kind="stable")
        images = np.empty((len(indices), *self.shape), dtype=self.dtype)
        images[order] = self.images[indices[order]]
        return images, self.labels[indices]

    def close(self) -> None:
        if self.map is not None:
            self.images = None
            try:
                self.map.close()
            except BufferError:  # a view of the map is still referenced: it is unmapped when released
                pass
            self.map = None
        self.file.close()


def map_contiguous(images: h5py.Dataset, path: Path) -> tuple[mmap.mmap, np.ndarray] | None:
    """(the map, the images as an array over it), or None if the dataset cannot be mapped as raw bytes."""
    offset = images.id.get_offset()
    if offset is None or images.chunks is not None or images.compression or not images.dtype.isnative:
        return None
    size = images.size * images.dtype.itemsize
    # A map past the end of a truncated file would kill the process with SIGBUS on the first read there.
    if os.path.getsize(path) < offset + size:
        raise CorruptStoreError(f"{path}: the images dataset runs past the end of the file (truncated)")
    with open(path, "rb") as handle:
        mapping = mmap.mmap(handle.fileno(), offset + size, access=mmap.ACCESS_READ)
    if not wants_readahead(images.dtype.itemsize * int(np.prod(images.shape[1:]))):
        mapping.madvise(mmap.MADV_RANDOM)
    array = np.frombuffer(mapping, images.dtype, images.size, offset).reshape(images.shape)
    return mapping, array


BLOSC_FILTER = 32001  # the HDF5 filter id of Blosc (hdf5plugin.BLOSC_ID)


def blosc_chunks(images: h5py.Dataset) -> int | None:
    """Bytes of one chunk when ``images`` is Blosc-compressed one image per chunk (and nothing else), else None."""
    if images.chunks != (1, *images.shape[1:]):
        return None
    plist = images.id.get_create_plist()
    if plist.get_nfilters() != 1 or plist.get_filter(0)[0] != BLOSC_FILTER:
        return None
    return int(np.prod(images.shape[1:])) * images.dtype.itemsize


class BloscChunkReader(BatchReader):
    """Random access into a Blosc batch: each chunk's bytes read as stored (``read_direct_chunk``) and
    decoded by Blosc itself straight into the result, skipping h5py's selection and its chunk-cache copy
    (about a tenth of a shuffled epoch of 16-bit scans). The raw reader stays as it is and is closed with this."""

    def __init__(self, raw: Hdf5Reader) -> None:
        super().__init__(raw.path, raw.count, raw.shape, raw.dtype)
        self.raw = raw
        self.chunk_bytes = blosc_chunks(raw.images)
        self.origin = (0,) * len(raw.shape)

    @property
    def closed(self) -> bool:  # type: ignore[override]
        return not self.raw.file.id.valid

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        images, labels = self.read_indices(np.array([index]))
        return images[0], int(labels[0])

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.empty((len(indices), *self.shape), dtype=self.dtype)
        slots = images.reshape(len(indices), -1).view(np.uint8)
        read_chunk = self.raw.images.id.read_direct_chunk
        for position, index in enumerate(indices.tolist()):
            try:
                mask, data = read_chunk((index, *self.origin))
                if mask:  # Blosc could not shrink this chunk, so HDF5 kept it as it was (an optional filter)
                    slots[position] = np.frombuffer(data, dtype=np.uint8)
                # A Blosc header keeps the decoded size at bytes 4-8: a chunk of another size is not an image.
                elif int.from_bytes(data[4:8], "little") != self.chunk_bytes:
                    raise ValueError("not a whole Blosc-compressed image")
                else:
                    imagecodecs.blosc_decode(data, out=slots[position])
            except (OSError, ValueError, RuntimeError, imagecodecs.BloscError) as error:
                raise CorruptStoreError(f"{self.path}: cannot read image {index} ({error})") from None
        return images, self.raw.labels[indices]

    def close(self) -> None:
        self.raw.close()


def check_format(file: h5py.File, path: Path) -> None:
    found = file.attrs.get("format")
    found = found.decode() if isinstance(found, bytes) else found
    if found != FORMAT:
        raise CorruptStoreError(
            f"{path}: format {found!r}, this library reads {FORMAT!r} (written by another version or "
            f"program); clear() and store again"
        )


def filter_options(compression: Compression) -> dict:
    """h5py ``create_dataset`` arguments for one of Hdf5Store.compressions, at the level ``helpers.codecs``
    parsed (its ranges and defaults are the codecs' own: gzip 0-9, default 4, as h5py)."""
    level = compression.parameter
    if compression.family == "gzip":
        return {"compression": "gzip", "compression_opts": level}
    if compression.family == "lzf":
        return {"compression": "lzf"}
    if compression.family == "zstd":
        return dict(hdf5plugin.Zstd(clevel=level))
    return dict(hdf5plugin.Blosc(cname=BLOSC_COMPRESSOR, clevel=level, shuffle=hdf5plugin.Blosc.BITSHUFFLE))
