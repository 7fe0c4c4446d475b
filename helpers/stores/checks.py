"""The checks every store makes of what it is given and of what it finds: the validators of the contract.

Each turns a caller's value into the one form the stores write (a C-contiguous image, an int64 label, a
1-D int64 array of positions) or raises ImageFormatError, ImageNotFoundError or CorruptStoreError saying
what is wrong, before anything is written or read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers.core.errors import CorruptStoreError, ImageFormatError, ImageNotFoundError
from helpers.stores.values import EncodedImages

SUPPORTED_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
UINT8_CHANNELS = (1, 2, 3, 4)  # grey, grey+alpha, RGB, RGBA: what PNG can hold


def check_image_shape(shape: tuple[int, ...], dtype: np.dtype, what: str = "image") -> None:
    """Raise ImageFormatError unless one image of this shape and dtype can be stored by every method."""
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise ImageFormatError(
            f"{what} has dtype {dtype}; the stores take uint8 images or uint16 grayscale images "
            f"(convert floats with (x * 255).round().astype('uint8'))"
        )
    if len(shape) not in (2, 3):
        raise ImageFormatError(
            f"{what} has shape {shape}; expected (height, width) or (height, width, channels)"
        )
    if min(shape[:2]) < 1:
        raise ImageFormatError(f"{what} has shape {shape}; height and width must be at least 1")
    if len(shape) == 3:
        channels = shape[2]
        allowed = UINT8_CHANNELS if dtype == np.uint8 else (1,)
        if channels not in allowed:
            raise ImageFormatError(
                f"{what} has {channels} channels with dtype {dtype}; allowed: {allowed}"
            )


def check_stored(shape: tuple[int, ...], dtype: np.dtype, path: Path) -> None:
    """CorruptStoreError unless ``path`` holds images of a shape and dtype the stores write."""
    try:
        check_image_shape(tuple(shape), dtype)
    except ValueError as error:
        raise CorruptStoreError(f"{path}: holds images this library did not write ({error})") from None


def check_image(image: object) -> np.ndarray:
    """One image as a C-contiguous ndarray, or ImageFormatError saying what is wrong with it."""
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(f"image must be a numpy array, got {type(image).__name__}")
    check_image_shape(image.shape, image.dtype)
    return np.ascontiguousarray(image)


def check_label(label: object) -> int:
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        raise ImageFormatError(f"label must be an integer, got {label!r} ({type(label).__name__})")
    if not -(2**63) <= int(label) < 2**63:
        raise ImageFormatError(f"label {label} does not fit in 64 bits")
    return int(label)


def check_image_id(image_id: object) -> int:
    if isinstance(image_id, (bool, np.bool_)) or not isinstance(image_id, (int, np.integer)):
        raise ImageFormatError(f"image_id must be an integer, got {image_id!r}")
    if not 0 <= int(image_id) < 10**12:
        raise ImageFormatError(f"image_id must be between 0 and 10**12 - 1, got {image_id}")
    return int(image_id)


def check_batch(images: object, labels: object, *, encoded_with: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A batch as (images C-contiguous, labels int64), or ImageFormatError naming the problem.

    ``encoded_with``: the codec name of the store, when it takes chunks its workers encoded already
    (``values.EncodedImages`` of that codec, passed on as they are).
    """
    if isinstance(images, EncodedImages):
        if encoded_with is None:
            raise ImageFormatError("images encoded already are taken only by a store that encodes each image "
                                   "with their codec (Store.encodes_each_image)")
        if images.codec_name != encoded_with:
            raise ImageFormatError(f"images encoded with {images.codec_name!r}; this store encodes with {encoded_with!r}")
    elif not isinstance(images, np.ndarray):
        raise ImageFormatError(f"images must be a numpy array, got {type(images).__name__}")
    if images.ndim not in (3, 4):
        raise ImageFormatError(
            f"images has shape {images.shape}; expected (n, height, width) or (n, height, width, channels)"
        )
    if len(images) == 0:
        raise ImageFormatError("images is empty; store_many needs at least one image")
    check_image_shape(images.shape[1:], images.dtype, what="each image")
    try:
        labels_array = np.asarray(labels)
    except (ValueError, TypeError, OverflowError) as error:  # ragged or mixed sequences
        raise ImageFormatError(f"labels must be a sequence of integers, one per image ({error})") from None
    if labels_array.dtype.kind not in "iu" or labels_array.dtype == np.uint64:
        raise ImageFormatError(f"labels must be integers, got dtype {labels_array.dtype}")
    if labels_array.shape != (len(images),):
        raise ImageFormatError(
            f"labels has shape {labels_array.shape} but there are {len(images)} images; "
            f"expected one label per image, shape ({len(images)},)"
        )
    if isinstance(images, EncodedImages):
        return images, labels_array.astype(np.int64)
    return np.ascontiguousarray(images), labels_array.astype(np.int64)


def check_indices(indices: object) -> np.ndarray:
    """Positions into a batch as a 1-D int64 array, or ImageFormatError naming what is wrong."""
    try:
        positions = np.asarray(indices)
    except (ValueError, TypeError, OverflowError) as error:
        raise ImageFormatError(f"indices must be a sequence of integers ({error})") from None
    if positions.ndim != 1:
        raise ImageFormatError(
            f"indices has shape {positions.shape}; expected a 1-D sequence of positions, e.g. [3, 0, 7]"
        )
    if positions.size == 0:
        return np.empty(0, dtype=np.int64)
    if positions.dtype.kind not in "iu" or positions.dtype == np.uint64:
        raise ImageFormatError(f"indices must be integers, got dtype {positions.dtype} ({positions[:3]}...)")
    positions = positions.astype(np.int64, copy=False)
    if positions.min() < 0:
        first = int(positions[np.argmax(positions < 0)])
        raise ImageFormatError(f"index {first} is negative; positions count from 0")
    return positions


def check_count(num_images: object, stored: int, where: Path) -> int:
    """The number of images to read, or an error if it is not a positive int within what was stored."""
    if isinstance(num_images, (bool, np.bool_)) or not isinstance(num_images, (int, np.integer)):
        raise ImageFormatError(f"num_images must be an integer, got {num_images!r}")
    if num_images < 1:
        raise ImageFormatError(f"num_images must be at least 1, got {num_images}")
    if num_images > stored:
        raise ImageNotFoundError(
            f"asked for {num_images} images but the batch in {where} holds {stored}"
        )
    return int(num_images)


def check_total(total: object) -> int | None:
    """The number of images ``store_chunks`` is told to expect (None: not told), or ImageFormatError."""
    if total is None:
        return None
    if isinstance(total, (bool, np.bool_)) or not isinstance(total, (int, np.integer)) or total < 1:
        raise ImageFormatError(f"total must be a positive number of images or None, got {total!r}")
    return int(total)
