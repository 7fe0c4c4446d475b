"""How much disk a write will take, and whether the disk has it: checked before anything is written.

The estimates are deliberately on the high side: running out of space half-way through a long write
costs far more than refusing a write that would just have fitted. They count allocated space (whole
4 KiB blocks per file), which is what fills a disk, not the apparent size of the files.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from helpers.errors import ImageFormatError, InsufficientSpaceError, UnknownMethodError
from helpers.measure import format_bytes

BLOCK = 4096  # filesystem block and LMDB page
DIRECTORY_ENTRY = 64  # bytes a file's name takes in its folder, generously
HDF5_FILE_OVERHEAD = 16 * 1024  # superblock, object headers, attributes of one file (measured: ~6 KiB)
NPY_HEADER = 128
LABEL_BYTES = 8  # int64
CSV_ROW_BYTES = 36  # "<image id up to 12 digits>,<int64 label up to 20 characters>\r\n"


def round_to_blocks(size: int) -> int:
    """``size`` bytes rounded up to whole blocks; an empty file still takes an inode and an entry."""
    return max(1, -(-int(size) // BLOCK)) * BLOCK


def png_bound(image_shape: tuple[int, ...], dtype: np.dtype) -> int:
    """The largest PNG Pillow can write for this image: noise does not compress and PNG adds to it.

    One filter byte per row, zlib's stored-block overhead (deflateBound: about n/4096 + n/16384 + 13),
    IDAT chunk headers every 64 KiB, and the signature, IHDR and IEND chunks.
    """
    height, width = image_shape[:2]
    filtered = int(np.prod(image_shape)) * dtype.itemsize + height
    zlib_bound = filtered + (filtered >> 12) + (filtered >> 14) + 13
    chunks = 12 * (zlib_bound // 65536 + 1)
    return zlib_bound + chunks + 8 + 25 + 12 + 256  # 256: room for an ancillary chunk Pillow may add


def lmdb_value_bytes(value_size: int) -> int:
    """Pages one LMDB record takes: a value of more than about half a page gets overflow pages of its own."""
    return -(-(value_size + 16 + 16) // BLOCK) * BLOCK  # key + node header, page header


def _check_request(method: str, n_images: int, image_shape: tuple[int, ...], dtype: object) -> np.dtype:
    from helpers.stores.base import check_image_shape  # the stores import this module

    if method not in ESTIMATES:
        raise UnknownMethodError(f"no space estimate for method {method!r}; known: {', '.join(ESTIMATES)}")
    if isinstance(n_images, (bool, np.bool_)) or not isinstance(n_images, (int, np.integer)) or n_images < 0:
        raise ImageFormatError(f"n_images must be a non-negative integer, got {n_images!r}")
    try:
        dtype = np.dtype(dtype)
    except TypeError as error:
        raise ImageFormatError(f"dtype {dtype!r} is not a numpy dtype ({error})") from None
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in image_shape):
        raise ImageFormatError(f"image_shape must be integers, got {image_shape!r}")
    check_image_shape(tuple(int(d) for d in image_shape), dtype)
    return dtype


def _disk(n: int, shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
    png = round_to_blocks(png_bound(shape, dtype)) + DIRECTORY_ENTRY
    if single:  # <id>.png and <id>.csv
        return n * (png + BLOCK + DIRECTORY_ENTRY)
    return n * png + round_to_blocks(n * CSV_ROW_BYTES + 64) + BLOCK + 3 * DIRECTORY_ENTRY + BLOCK  # + folder


def _lmdb(n: int, shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
    from helpers.stores.codec import HEADER_SIZE

    value = HEADER_SIZE + int(np.prod(shape)) * dtype.itemsize
    leaves_and_branches = round_to_blocks(n * 2 * (8 + 16))  # pointers to overflow pages, half-full pages
    fixed = 8 * BLOCK + 2 * BLOCK  # meta pages, roots, the batch record; lock.mdb; the folder
    return n * lmdb_value_bytes(value) + leaves_and_branches + fixed


def _hdf5(n: int, shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
    raw = int(np.prod(shape)) * dtype.itemsize
    if single:
        return n * (round_to_blocks(raw + LABEL_BYTES + HDF5_FILE_OVERHEAD) + DIRECTORY_ENTRY)
    return round_to_blocks(n * raw + n * LABEL_BYTES + HDF5_FILE_OVERHEAD)


def _npy(n: int, shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
    raw = int(np.prod(shape)) * dtype.itemsize
    if single:  # an .npz: a zip of two .npy files
        return n * (round_to_blocks(raw + LABEL_BYTES + 2 * NPY_HEADER + 512) + DIRECTORY_ENTRY)
    files = (n * raw + NPY_HEADER, n * LABEL_BYTES + NPY_HEADER)
    return sum(round_to_blocks(size) + DIRECTORY_ENTRY for size in files) + BLOCK  # + the folder


ESTIMATES = {"disk": _disk, "lmdb": _lmdb, "hdf5": _hdf5, "npy": _npy}


def estimate_bytes(method: str, n_images: int, image_shape: tuple[int, ...], dtype: object) -> int:
    """Disk space a batch of ``n_images`` written by ``method`` may take, rounded up to whole blocks."""
    dtype = _check_request(method, n_images, image_shape, dtype)
    return int(ESTIMATES[method](int(n_images), tuple(int(d) for d in image_shape), dtype, False))


def estimate_single_bytes(method: str, n_images: int, image_shape: tuple[int, ...], dtype: object) -> int:
    """Disk space ``n_images`` images stored one at a time (store_single) by ``method`` may take."""
    dtype = _check_request(method, n_images, image_shape, dtype)
    return int(ESTIMATES[method](int(n_images), tuple(int(d) for d in image_shape), dtype, True))


def experiment_bytes(
    methods: Iterable[str],
    cutoffs: Iterable[int],
    image_shape: tuple[int, ...],
    dtype: object,
    *,
    include_single: bool = True,
) -> int:
    """Disk space a whole experiment may need at its peak.

    Each store keeps one batch at a time, so only the largest cutoff counts; the reference floor is
    measured beside the chosen methods. ``include_single`` adds that many images stored one by one.
    """
    from helpers.stores import FLOOR

    cutoffs = list(cutoffs)
    if not cutoffs:
        raise ImageFormatError("cutoffs is empty; expected at least one number of images")
    largest = max(cutoffs)
    chosen = list(dict.fromkeys([*methods, FLOOR]))
    total = 0
    for method in chosen:
        total += estimate_bytes(method, largest, image_shape, dtype)
        if include_single:
            total += estimate_single_bytes(method, largest, image_shape, dtype)
    return total


def existing_parent(path: str | os.PathLike[str]) -> Path:
    """``path`` itself if it exists, else its nearest ancestor that does (where it would be created)."""
    candidate = Path(path).absolute()
    while not candidate.exists() and candidate != candidate.parent:
        candidate = candidate.parent
    return candidate


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes an unprivileged process may still write on the filesystem that holds (or will hold) ``path``."""
    return shutil.disk_usage(existing_parent(path)).free


def human_bytes(size: int) -> str:
    """``size`` in binary units with the exact count, e.g. ``1.5 MiB (1,572,864 bytes)``."""
    return f"{format_bytes(size)} ({int(size):,} bytes)"


def check_free_space(path: str | os.PathLike[str], needed_bytes: int, what: str = "") -> None:
    """Raise InsufficientSpaceError if the filesystem of ``path`` has less than ``needed_bytes`` free."""
    available = free_bytes(path)
    if needed_bytes > available:
        subject = what or "the write"
        error = InsufficientSpaceError(
            f"not enough free space for {subject} in {existing_parent(path)}: needs about "
            f"{human_bytes(needed_bytes)}, {human_bytes(available)} free; free some space or choose "
            f"another folder (work_dir)"
        )
        error.errno = errno.ENOSPC  # lets callers treat it like the OSError the write would have raised
        raise error


def is_out_of_space(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is the filesystem being full, however the library said so.

    The OS says ENOSPC or EDQUOT; HDF5 and LMDB wrap it in their own errors with the text of strerror,
    and NumPy's ``tofile`` reports a short write without an errno.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(current)
        if os.strerror(errno.ENOSPC) in text or os.strerror(errno.EDQUOT) in text or "errno = 28" in text:
            return True
        if isinstance(current, OSError) and " requested and " in text and " written" in text:
            return True  # ndarray.tofile's short write: the disk took only part of it
        current = current.__cause__ or current.__context__
    return False
