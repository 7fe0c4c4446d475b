"""Measurement you can trust: repeated timings, cold page cache on demand, and the bytes a store takes.

Timing rules (``time_call``):

* every run is timed alone with ``time.perf_counter`` and its seconds are kept, so the report can show the
  median and the spread rather than one number;
* the first run is an untimed warm-up: on this kind of machine memory that was freed and is touched again
  after a pause is slow, and pools, imports and file handles start on first use;
* ``setup`` and ``teardown`` run before and after every run (the warm-up too) outside the timed region:
  clearing a store before a write, evicting its files before a cold read;
* garbage collection stays on (``timeit`` switches it off, which hides a cost every real program pays);
* ``repeats`` is the least number of timed runs; an operation whose runs add up to less than
  ``min_total`` seconds is repeated until they do (as ``timeit.Timer.autorange``), at most ``max_runs``
  times, so that a slow operation is never repeated more than asked.

Cold reads: ``evict`` flushes files and asks the kernel to drop their pages from the page cache
(``posix_fadvise(POSIX_FADV_DONTNEED)``, no root needed); ``resident_fraction`` reads back, with
``mincore``, how much of a file is still cached, so the eviction can be checked rather than trusted.
On tmpfs there is no disk behind the cache and nothing can be evicted: ``eviction_works`` says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import stat
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Union

import numpy as np

PathLike = Union[str, os.PathLike]
PathsLike = Union[PathLike, Iterable[PathLike]]

#: Least number of seconds the timed runs of one measurement add up to (unless ``max_runs`` is reached).
MIN_TOTAL_SECONDS = 0.2
#: Most timed runs of one measurement, however fast it is.
MAX_RUNS = 50


# -- timing -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """The seconds of each timed run of one measurement (warm-up excluded), and their statistics.

    Quartiles use linear interpolation between runs, as ``numpy.percentile`` and ``pandas.quantile`` do
    by default, so these numbers equal what ``helpers.report.results.summarize`` computes from the same runs.
    """

    seconds: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.seconds:
            raise ValueError("a Timing needs at least one timed run")

    @property
    def runs(self) -> int:
        return len(self.seconds)

    @property
    def median(self) -> float:
        return float(statistics.median(self.seconds))

    @property
    def min(self) -> float:
        return float(min(self.seconds))

    @property
    def max(self) -> float:
        return float(max(self.seconds))

    @property
    def q1(self) -> float:
        return float(np.percentile(self.seconds, 25))

    @property
    def q3(self) -> float:
        return float(np.percentile(self.seconds, 75))

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def total(self) -> float:
        return float(sum(self.seconds))

    def summary(self) -> dict[str, float | int]:
        return {
            "median": self.median, "min": self.min, "max": self.max,
            "q1": self.q1, "q3": self.q3, "iqr": self.iqr, "runs": self.runs,
        }

    def __str__(self) -> str:
        return (f"median {format_seconds(self.median)} (min {format_seconds(self.min)}, "
                f"max {format_seconds(self.max)}, {self.runs} runs)")


def format_seconds(seconds: float) -> str:
    """Seconds in the unit a reader takes in at a glance: 812 µs, 3.40 ms, 1.25 s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def format_bytes(count: int) -> str:
    """Bytes in binary units a reader takes in at a glance: 512 B, 1.5 KiB, 293.7 MiB."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def time_call(
    function: Callable[[], object],
    *,
    repeats: int = 5,
    setup: Callable[[], object] | None = None,
    teardown: Callable[[], object] | None = None,
    warmup: bool = True,
    min_total: float | None = None,
    max_runs: int | None = None,
) -> Timing:
    """Time ``function()`` at least ``repeats`` times; see the module docstring for the rules.

    Runs continue past ``repeats`` while their total is under ``min_total`` seconds, up to ``max_runs``
    (never fewer than ``repeats``). ``setup``/``teardown`` are called around every run, untimed.
    Left as None, ``min_total`` and ``max_runs`` are this module's ``MIN_TOTAL_SECONDS`` and ``MAX_RUNS``
    at the time of the call (tests lower them to stay fast).
    """
    min_total = MIN_TOTAL_SECONDS if min_total is None else min_total
    max_runs = MAX_RUNS if max_runs is None else max_runs
    check_repeats(repeats)
    if max_runs < 1 or min_total < 0:
        raise ValueError(f"max_runs must be >= 1 and min_total >= 0, got {max_runs!r}, {min_total!r}")

    def one_run() -> float:
        if setup is not None:
            setup()
        start = time.perf_counter()
        function()
        elapsed = time.perf_counter() - start
        if teardown is not None:
            teardown()
        return elapsed

    if warmup:
        one_run()
    seconds: list[float] = []
    while len(seconds) < repeats or (sum(seconds) < min_total and len(seconds) < max_runs):
        seconds.append(one_run())
    return Timing(tuple(seconds))


def check_repeats(repeats: object) -> None:
    """ValueError unless ``repeats`` is a positive integer (a bool is not)."""
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")


# -- the page cache -----------------------------------------------------------------------------------
def regular_files(paths: PathsLike) -> list[Path]:
    """The regular files named by ``paths``: a file, a folder (every file below it) or a list of both."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir() and not path.is_symlink():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()))
        elif path.is_file():
            found.append(path)
        elif not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
    return found


def evict(paths: PathsLike) -> int:
    """Drop the files' pages from the page cache so the next read comes from the disk; the number of files.

    Each file is flushed first (``fsync``), because the kernel keeps dirty pages until they are written.
    A file that is memory-mapped by a live process keeps its mapped pages: close stores before evicting.
    """
    files = regular_files(paths)
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return len(files)


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long,
]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
_MAP_FAILED = ctypes.c_void_p(-1).value


def resident_pages(path: PathLike) -> tuple[int, int]:
    """(pages of ``path`` in the page cache, pages of ``path``), asked of the kernel with ``mincore``.

    Mapping a file does not read it, so asking does not change the answer. Linux reports page-cache
    residency only for files the caller owns or may write; others look resident only where mapped.
    """
    size = os.stat(path).st_size
    if size == 0:
        return 0, 0
    page = mmap.PAGESIZE
    pages = -(-size // page)
    fd = os.open(path, os.O_RDONLY)
    try:
        address = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, _MAP_FAILED):
            error = ctypes.get_errno()
            raise OSError(error, f"mmap failed: {os.strerror(error)}", str(path))
        try:
            vector = (ctypes.c_ubyte * pages)()
            if _libc.mincore(address, size, vector) != 0:
                error = ctypes.get_errno()
                raise OSError(error, f"mincore failed: {os.strerror(error)}", str(path))
            resident = sum(byte & 1 for byte in vector)
        finally:
            _libc.munmap(address, size)
    finally:
        os.close(fd)
    return resident, pages


def resident_fraction(path: PathsLike) -> float:
    """Share of the pages of a file (or of all files below a folder, or in a list) that are in the page cache.

    0.0 for empty files, which have no pages to cache.
    """
    resident = total = 0
    for file in regular_files(path):
        in_cache, pages = resident_pages(file)
        resident += in_cache
        total += pages
    return resident / total if total else 0.0


def eviction_works(folder: PathLike, size: int = 1 << 20) -> bool:
    """Whether ``evict`` empties the page cache for files in ``folder`` (False on tmpfs, for instance).

    Writes, reads and evicts one probe file of ``size`` bytes, then removes it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".eviction-probe.{os.getpid()}"
    try:
        probe.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
        probe.read_bytes()
        before = resident_fraction(probe)
        evict(probe)
        return before > 0.9 and resident_fraction(probe) < 0.1
    finally:
        probe.unlink(missing_ok=True)


# -- disk usage ---------------------------------------------------------------------------------------
class DiskUsage(NamedTuple):
    """What some files take on disk.

    ``apparent``: bytes as ``ls -l`` shows them (``st_size``); ``allocated``: bytes of blocks the file
    system reserved (``st_blocks * 512``: whole blocks, less for sparse files); ``files``: regular files.
    """

    apparent: int
    allocated: int
    files: int


def disk_usage(paths: PathsLike) -> DiskUsage:
    """Disk usage of a file, a folder (everything below it) or a list of them, counted as ``du`` does.

    Folders count too, themselves and every folder below them, as ``du -sb`` and ``du -sB1`` count them:
    a folder of many small files needs directory blocks of its own, and that is part of what one file per
    image costs. Symbolic links count their own size and are not followed. A file with several hard links
    counts once. ``files`` counts regular files only.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    seen: set[tuple[int, int]] = set()
    apparent = allocated = files = 0
    for top in map(Path, paths):
        for info in _walk_lstat(top):
            key = (info.st_dev, info.st_ino)
            if key in seen:
                continue
            seen.add(key)
            apparent += info.st_size
            allocated += info.st_blocks * 512
            files += stat.S_ISREG(info.st_mode)
    return DiskUsage(apparent, allocated, files)


def _walk_lstat(top: Path, *, below: bool = False) -> Iterable[os.stat_result]:
    """lstat of ``top`` and of everything below it. A missing ``top`` raises FileNotFoundError naming it; an
    entry below it that vanishes during the walk is skipped, as du does: a tree being written renames its
    temporary files into place (zarr's ``*.partial`` files, a store's pieces) while it is measured."""
    try:
        info = os.lstat(top)
        if not stat.S_ISDIR(info.st_mode):
            yield info
            return
        entries = [Path(entry.path) for entry in os.scandir(top)]
    except FileNotFoundError:
        if below:
            return
        raise
    yield info
    for entry in entries:
        yield from _walk_lstat(entry, below=True)
