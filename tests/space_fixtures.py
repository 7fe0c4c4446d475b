"""A file system as ``helpers.core.space`` sees it, with the inode counts a test chooses."""

from __future__ import annotations

import os

import numpy as np

from helpers.core import space


def fake_statvfs(monkeypatch, *, files: int, favail: int) -> None:
    """os.statvfs as seen by helpers.core.space, with these inode counts and the real byte counts."""
    real = os.statvfs

    class Stats:
        def __init__(self, path):
            stats = real(path)
            for name in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_flag", "f_namemax"):
                setattr(self, name, getattr(stats, name))
            self.f_files, self.f_ffree, self.f_favail = files, favail, favail

    monkeypatch.setattr(space.os, "statvfs", Stats)


def images_of(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), np.arange(n) % 10
