"""The reference floor: the same images as one raw ``.npy`` array, written and read with NumPy.

Not a way anyone should store a growing dataset (no random access by key without a memory map, no
appends), but the cheapest way this machine can move the same bytes: every other method is shown as a
ratio to it. A batch is the folder ``many.npy.d`` with ``images.npy`` and ``labels.npy``, exactly as
``np.save`` writes them and nothing more, so that the floor stays the floor. A single image is an ``.npz``
archive, whose zip entries carry CRC-32s that NumPy's reader checks.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from helpers.core import space
from helpers.core.errors import CorruptStoreError, ImageNotFoundError, StorageReportError
from helpers.core.files import replaced_when_written
from helpers.stores.base import BatchReader, Store
from helpers.stores.checks import check_count, check_stored


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
    label = "NumPy floor (npy)"
    colour = "#555555"
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

    @classmethod
    def disk_usage_note(cls, n_images: int, apparent_bytes: int, allocated_bytes: int, raw_image_bytes: int) -> str:
        return "The NumPy floor is the raw array in one file: the least any uncompressed method can take."

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

    def _write_chunks(
        self, path: Path, chunks: Iterator[tuple[np.ndarray, np.ndarray]], total: int | None
    ) -> None:
        """Both files written chunk by chunk behind a header that gives the final length.

        The header is written first for ``total`` images (or, not knowing it, with room for any count) and
        rewritten in place at the end; the pixels follow with ``ndarray.tofile``, as ``np.save`` writes a
        contiguous array, so ``np.load`` reads the files as it reads those of ``np.save``.
        """
        path.mkdir()
        with ExitStack() as files:
            images_file = labels_file = None
            for images, labels in chunks:
                if images_file is None:
                    images_file = files.enter_context(GrowingNpy(path / "images.npy", images, total))
                    labels_file = files.enter_context(GrowingNpy(path / "labels.npy", labels, total))
                images_file.append(images)
                labels_file.append(labels)

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


class GrowingNpy:
    """A ``.npy`` file written chunk by chunk; its header is rewritten with the final length on close.

    The header is NumPy's own (``numpy.lib.format``, version 1.0, what ``np.save`` writes), which NumPy
    pads so that the length of the first axis can grow in place: the final header has the first one's size.
    """

    def __init__(self, path: Path, first: np.ndarray, total: int | None) -> None:
        self.path, self.row_shape, self.dtype, self.count = path, first.shape[1:], first.dtype, 0
        self.handle = open(path, "wb")
        header = self.header(total or 0)
        self.header_size = len(header)
        self.handle.write(header)

    def header(self, rows: int) -> bytes:
        out = io.BytesIO()
        np.lib.format.write_array_header_1_0(out, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
            "shape": (rows, *self.row_shape),
        })
        return out.getvalue()

    def append(self, rows: np.ndarray) -> None:
        rows.tofile(self.handle)
        self.count += len(rows)

    def __enter__(self) -> "GrowingNpy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                header = self.header(self.count)
                if len(header) != self.header_size:  # NumPy keeps room for 21 digits: never with a real count
                    raise StorageReportError(f"{self.path}: the header for {self.count} rows does not fit the "
                                             "room left for it")
                self.handle.seek(0)
                self.handle.write(header)
        finally:
            self.handle.close()


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
