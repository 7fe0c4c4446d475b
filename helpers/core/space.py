"""How much disk a write will take, and whether the disk has it: checked before anything is written.

The estimates are deliberately on the high side: running out of space half-way through a long write
costs far more than refusing a write that would just have fitted. They count allocated space (whole
4 KiB blocks per file), which is what fills a disk, not the apparent size of the files. Each store
estimates its own layout (``Store.space_needed``, ``Store.files_needed``) with the rules below; this
module checks the disk. Estimates by method name live with the registry (``helpers.stores``): the stores
import this module, never the other way round.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from helpers.core.errors import InsufficientSpaceError
from helpers.core.measure import format_bytes

BLOCK = 4096  # filesystem block and LMDB page
DIRECTORY_ENTRY = 64  # bytes a file's name takes in its folder, generously
LABEL_BYTES = 8  # int64


def round_to_blocks(size: int) -> int:
    """``size`` bytes rounded up to whole blocks; an empty file still takes an inode and an entry."""
    return max(1, -(-int(size) // BLOCK)) * BLOCK


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


def free_files(path: str | os.PathLike[str]) -> int | None:
    """Files (inodes) an unprivileged process may still create on the filesystem of ``path``.

    None when the filesystem does not count inodes (btrfs, some network file systems report 0 in all):
    there the number of files is limited by space only.
    """
    stats = os.statvfs(existing_parent(path))
    if stats.f_files == 0:
        return None
    return int(stats.f_favail)


def check_free_space(
    path: str | os.PathLike[str], needed_bytes: int, what: str = "", needed_files: int = 0
) -> None:
    """Raise InsufficientSpaceError if the filesystem of ``path`` has less than ``needed_bytes`` free,
    or fewer free inodes than ``needed_files`` (100,000 PNG files can run out of inodes first)."""
    subject = what or "the write"
    available = free_bytes(path)
    if needed_bytes > available:
        error = InsufficientSpaceError(
            f"not enough free space for {subject} in {existing_parent(path)}: needs about "
            f"{human_bytes(needed_bytes)}, {human_bytes(available)} free; free some space or choose "
            f"another folder (work_dir)"
        )
        error.errno = errno.ENOSPC  # lets callers treat it like the OSError the write would have raised
        raise error
    files = free_files(path) if needed_files > 0 else None
    if files is not None and needed_files > files:
        error = InsufficientSpaceError(
            f"not enough free inodes for {subject} in {existing_parent(path)}: needs about "
            f"{int(needed_files):,} files, the filesystem can create {files:,} more; delete files or choose "
            f"another folder (work_dir) on a filesystem with more inodes"
        )
        error.errno = errno.ENOSPC  # what creating the file past the last inode would raise
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
