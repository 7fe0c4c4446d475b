"""The reference floor: the same images as one raw ``.npy`` array, written and read with NumPy.

Not a way anyone should store a growing dataset (no random access by key without a memory map, no
appends), but the cheapest way this machine can move the same bytes: every other method is shown as a
ratio to it. A batch is the folder ``many.npy.d`` with ``images.npy`` and ``labels.npy``, exactly as
``np.save`` writes them and nothing more, so that the floor stays the floor. A single image is an ``.npz``
archive, whose zip entries carry CRC-32s that NumPy's reader checks.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from helpers import space
from helpers.errors import CorruptStoreError, ImageNotFoundError
from helpers.fileio import replaced_when_written
from helpers.stores.base import BatchReader, Store, check_count, check_stored


def load_array(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise CorruptStoreError(f"{path}: file is missing from the store") from None
    except (OSError, ValueError, EOFError) as error:
        raise CorruptStoreError(f"{path}: not a readable .npy file ({error})") from None


NPY_HEADER = 128  # the header np.save writes before the array, at most


class NpyStore(Store):
    name = "npy"
    trade_off = "One raw array per batch, no header per image and no compression: the reference floor."
    batch_name = "many.npy.d"

    @classmethod
    def space_needed(cls, n_images: int, image_shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
        raw = int(np.prod(image_shape)) * dtype.itemsize
        if single:  # an .npz: a zip of two .npy files
            per_file = space.round_to_blocks(raw + space.LABEL_BYTES + 2 * NPY_HEADER + 512)
            return n_images * (per_file + space.DIRECTORY_ENTRY)
        files = (n_images * raw + NPY_HEADER, n_images * space.LABEL_BYTES + NPY_HEADER)
        folder = space.BLOCK
        return sum(space.round_to_blocks(size) + space.DIRECTORY_ENTRY for size in files) + folder

    def _store_single(self, image: np.ndarray, image_id: int, label: int) -> None:
        with replaced_when_written(self.single_path(image_id, ".npz"), self.durable) as partial:
            with open(partial, "wb") as handle:  # a file object: np.savez would add ".npz" to a name
                np.savez(handle, image=image, label=np.int64(label))

    def _read_single(self, image_id: int) -> tuple[np.ndarray, int]:
        path = self.single_path(image_id, ".npz")
        if not path.exists():
            raise ImageNotFoundError(f"no image with id {image_id} in {self.root} (no {path.name})")
        try:
            with np.load(path, allow_pickle=False) as archive:
                image, label = archive["image"], int(archive["label"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise CorruptStoreError(f"{path}: not a readable image archive ({error})") from None
        check_stored(image.shape, image.dtype, path)
        return image, label

    def _write_batch(self, path: Path, images: np.ndarray, labels: np.ndarray) -> None:
        path.mkdir()
        np.save(path / "images.npy", images)
        np.save(path / "labels.npy", labels)

    def _read_batch(self, path: Path, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        header, labels = open_batch(path)  # shape and dtype without reading pixels
        count = header.shape[0]
        num_images = check_count(num_images, count, path)
        del header
        if num_images == count:
            images = load_array(path / "images.npy")
        else:
            images = np.array(load_array(path / "images.npy", mmap=True)[:num_images])
        return images, labels[:num_images]

    def _open_reader(self, path: Path) -> "NpyReader":
        return NpyReader(path)


def open_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The batch's images memory-mapped and its labels as int64, checked to belong together."""
    images = load_array(path / "images.npy", mmap=True)
    labels = load_array(path / "labels.npy")
    check_stored(images.shape[1:], images.dtype, path / "images.npy")
    if labels.shape != images.shape[:1] or labels.dtype.kind not in "iu":
        raise CorruptStoreError(f"{path}: {labels.shape} labels for {images.shape[0]} images")
    return images, labels.astype(np.int64)


class NpyReader(BatchReader):
    """The images memory-mapped (``np.load(mmap_mode="r")``): a random read is a copy out of the map."""

    def __init__(self, path: Path) -> None:
        self.images, self.labels = open_batch(path)
        super().__init__(path, len(self.images), self.images.shape[1:], self.images.dtype)

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        return np.array(self.images[index]), int(self.labels[index])

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # In file order, so that a cold read moves forward through the file; then back in the order asked.
        order = np.argsort(indices, kind="stable")
        images = np.empty((len(indices), *self.shape), dtype=self.dtype)
        images[order] = self.images[indices[order]]
        return images, self.labels[indices]

    def close(self) -> None:
        self.images = self.labels = None
