"""Small file operations that keep data safe: atomic writes, flushing to stable storage, removal."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Flush one file or folder to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """Flush every file below ``path``, the folders themselves, and the parent that names ``path``."""
    path = Path(path)
    if path.is_dir():
        for entry in sorted(path.rglob("*")):
            fsync_path(entry)
    fsync_path(path)
    fsync_path(path.parent)


def write_atomically(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary name, so a reader sees the old file or the new one.

    ``durable`` also flushes the data and the rename to stable storage (survives a power cut, not only a
    crash of this process).
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if durable:
        fsync_path(path.parent)


@contextmanager
def replaced_when_written(path: Path, durable: bool) -> Iterator[Path]:
    """A temporary path beside ``path`` (folder made) to write to; it replaces ``path`` once the block ends.

    For writers that need a file name rather than bytes (h5py, NumPy). On an error the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    try:
        yield temporary
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if durable:
        fsync_path(temporary)
    os.replace(temporary, path)
    if durable:
        fsync_path(path.parent)


def remove(path: Path) -> None:
    """Remove a file, link or folder tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
