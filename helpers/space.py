"""How much disk a write will take, and whether the disk has it: checked before anything is written.

The estimates are deliberately on the high side: running out of space half-way through a long write
costs far more than refusing a write that would just have fitted. They count allocated space (whole
4 KiB blocks per file), which is what fills a disk, not the apparent size of the files. Each store
estimates its own layout (``Store.space_needed``) with the rules below; this module checks the request
and adds up whole experiments.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from helpers.errors import ImageFormatError, InsufficientSpaceError
from helpers.measure import format_bytes

BLOCK = 4096  # filesystem block and LMDB page
DIRECTORY_ENTRY = 64  # bytes a file's name takes in its folder, generously
LABEL_BYTES = 8  # int64


def round_to_blocks(size: int) -> int:
    """``size`` bytes rounded up to whole blocks; an empty file still takes an inode and an entry."""
    return max(1, -(-int(size) // BLOCK)) * BLOCK


def _check_request(
    method: str, n_images: int, image_shape: tuple[int, ...], dtype: object
) -> tuple[type, np.dtype]:
    from helpers.stores import store_class  # the stores import this module
    from helpers.stores.base import check_image_shape

    store = store_class(method)  # UnknownMethodError names the known ones
    if isinstance(n_images, (bool, np.bool_)) or not isinstance(n_images, (int, np.integer)) or n_images < 0:
        raise ImageFormatError(f"n_images must be a non-negative integer, got {n_images!r}")
    try:
        dtype = np.dtype(dtype)
    except TypeError as error:
        raise ImageFormatError(f"dtype {dtype!r} is not a numpy dtype ({error})") from None
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in image_shape):
        raise ImageFormatError(f"image_shape must be integers, got {image_shape!r}")
    check_image_shape(tuple(int(d) for d in image_shape), dtype)
    return store, dtype


def estimate_bytes(method: str, n_images: int, image_shape: tuple[int, ...], dtype: object) -> int:
    """Disk space a batch of ``n_images`` written by ``method`` may take, rounded up to whole blocks."""
    store, dtype = _check_request(method, n_images, image_shape, dtype)
    return int(store.space_needed(int(n_images), tuple(int(d) for d in image_shape), dtype, single=False))


def estimate_single_bytes(method: str, n_images: int, image_shape: tuple[int, ...], dtype: object) -> int:
    """Disk space ``n_images`` images stored one at a time (store_single) by ``method`` may take."""
    store, dtype = _check_request(method, n_images, image_shape, dtype)
    return int(store.space_needed(int(n_images), tuple(int(d) for d in image_shape), dtype, single=True))


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
