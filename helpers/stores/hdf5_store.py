"""HDF5: a batch is one file, ``many.h5``, with a dataset ``images`` (n, h, w[, c]) and one ``labels`` (n,).

Single images are one file each, ``single/<id>.h5`` with datasets ``image`` and ``label``, as the article.
Datasets are contiguous and uncompressed, so a batch is one bulk copy each way. Readers open files with
mode "r" (the article's "r+" would let a reader change the file).

Files use the HDF5 1.10 format, whose superblock and object headers carry checksums, so damaged metadata
is reported. The pixels themselves carry none (HDF5 checks data only through filters such as fletcher32,
which need chunked storage and here doubled the read time): like a raw array, a flipped pixel byte reads
back as a different pixel.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from helpers import space
from helpers.errors import CorruptStoreError, ImageNotFoundError, StorageReportError
from helpers.fileio import replaced_when_written
from helpers.stores.base import BatchReader, Store, check_count, check_stored

FORMAT = "image-storage-report/1"
FILE_OVERHEAD = 16 * 1024  # superblock, object headers, attributes of one file (measured: ~6 KiB)
CHUNK_BYTES = 1 << 20  # bytes of images per HDF5 chunk when a batch of unknown size is streamed in
LIBVER = "v110"  # checksummed metadata; readable by HDF5 1.10 and later


def open_for_reading(path: Path) -> h5py.File:
    if not path.exists():
        raise CorruptStoreError(f"{path}: file is missing from the store")
    try:
        return h5py.File(path, "r")
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
    trade_off = "HDF5 writes the whole batch as one contiguous array: one bulk copy, a small fixed header."
    batch_name = "many.h5"

    @classmethod
    def space_needed(cls, n_images: int, image_shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
        raw = int(np.prod(image_shape)) * dtype.itemsize
        if single:
            per_file = space.round_to_blocks(raw + space.LABEL_BYTES + FILE_OVERHEAD) + space.DIRECTORY_ENTRY
            return n_images * per_file
        return space.round_to_blocks(n_images * (raw + space.LABEL_BYTES) + FILE_OVERHEAD)

    def _store_single(self, image: np.ndarray, image_id: int, label: int) -> None:
        with replaced_when_written(self.single_path(image_id, ".h5"), self.durable) as partial:
            with h5py.File(partial, "w", libver=LIBVER) as file:
                file.attrs["format"] = FORMAT
                file.create_dataset("image", data=image)
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
            images_data = labels_data = None
            count = 0
            for images, labels in chunks:
                if images_data is None:
                    images_data, labels_data = create_batch_datasets(file, images, total)
                stop = count + len(images)
                if total is None:
                    images_data.resize(stop, axis=0)
                    labels_data.resize(stop, axis=0)
                images_data.write_direct(images, dest_sel=np.s_[count:stop])
                labels_data.write_direct(labels, dest_sel=np.s_[count:stop])
                count = stop

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
        return Hdf5Reader(path)


def create_batch_datasets(
    file: h5py.File, first_images: np.ndarray, total: int | None
) -> tuple[h5py.Dataset, h5py.Dataset]:
    """Empty ``images`` and ``labels`` datasets for a batch shaped like ``first_images``: ``total`` long and
    contiguous, or empty, chunked and resizable when the total is not known."""
    image_shape = first_images.shape[1:]
    if total is not None:
        images = file.create_dataset("images", shape=(total, *image_shape), dtype=first_images.dtype)
        return images, file.create_dataset("labels", shape=(total,), dtype=np.int64)
    rows = max(1, CHUNK_BYTES // first_images[0].nbytes)
    images = file.create_dataset(
        "images", shape=(0, *image_shape), maxshape=(None, *image_shape), chunks=(rows, *image_shape),
        dtype=first_images.dtype,
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
    """The batch file kept open read-only; labels read once, images one ``ds[i]`` at a time."""

    def __init__(self, path: Path) -> None:
        self.file = open_for_reading(path)
        try:
            self.images, labels = batch_datasets(self.file, path)
            self.labels = labels[()].astype(np.int64)
        except BaseException:
            self.file.close()
            raise
        super().__init__(path, self.images.shape[0], self.images.shape[1:], self.images.dtype)

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        try:
            return self.images[index], int(self.labels[index])
        except (OSError, ValueError) as error:
            raise CorruptStoreError(f"{self.path}: cannot read image {index} ({error})") from None

    def close(self) -> None:
        self.file.close()


def check_format(file: h5py.File, path: Path) -> None:
    found = file.attrs.get("format")
    found = found.decode() if isinstance(found, bytes) else found
    if found != FORMAT:
        raise CorruptStoreError(
            f"{path}: format {found!r}, this library reads {FORMAT!r} (written by another version or "
            f"program); clear() and store again"
        )
