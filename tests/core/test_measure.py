import gc
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import measure
from helpers.core.measure import (
    DiskUsage,
    Timing,
    disk_usage,
    evict,
    format_bytes,
    resident_fraction,
    time_call,
)
from helpers.report.environment import mount_of


class FakeClock:
    """A perf_counter that moves only when told, so what lands inside the timed region is exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(measure, "time", fake)
    return fake


# -- Timing ---------------------------------------------------------------------------------------
def test_timing_statistics_on_known_runs():
    timing = Timing((4.0, 1.0, 10.0, 3.0, 2.0))
    assert timing.median == 3.0
    assert (timing.min, timing.max) == (1.0, 10.0)
    assert (timing.q1, timing.q3, timing.iqr) == (2.0, 4.0, 2.0)
    assert timing.runs == 5 and timing.total == 20.0
    assert timing.summary()["runs"] == 5


def test_timing_interpolates_quartiles_like_numpy():
    timing = Timing((1.0, 2.0, 3.0, 4.0))
    assert timing.median == 2.5
    assert timing.q1 == pytest.approx(1.75) and timing.q3 == pytest.approx(3.25)


def test_timing_needs_a_run():
    with pytest.raises(ValueError):
        Timing(())


def test_format_seconds_picks_a_readable_unit():
    assert measure.format_seconds(0.000812) == "812 µs"
    assert measure.format_seconds(0.0034) == "3.40 ms"
    assert measure.format_seconds(1.25) == "1.25 s"


# -- time_call --------------------------------------------------------------------------------------
def test_setup_and_teardown_stay_outside_the_timed_region(clock):
    calls = []

    def setup():
        calls.append("setup")
        clock.advance(100.0)

    def work():
        calls.append("work")
        clock.advance(1.0)

    def teardown():
        calls.append("teardown")
        clock.advance(50.0)

    timing = time_call(work, repeats=3, setup=setup, teardown=teardown, min_total=0)
    assert timing.seconds == (1.0, 1.0, 1.0)
    # the warm-up is a full run with its setup and teardown, but not timed
    assert calls == ["setup", "work", "teardown"] * 4


def test_warm_up_run_is_not_recorded(clock):
    durations = iter([7.0, 1.0, 2.0])
    timing = time_call(lambda: clock.advance(next(durations)), repeats=2, min_total=0)
    assert timing.seconds == (1.0, 2.0)


def test_no_warm_up_when_asked(clock):
    durations = iter([7.0, 1.0])
    timing = time_call(lambda: clock.advance(next(durations)), repeats=2, warmup=False, min_total=0)
    assert timing.seconds == (7.0, 1.0)


@pytest.mark.parametrize(("seconds", "repeats", "min_total", "max_runs", "runs"), [
    (0.03, 2, 0.2, 100, 7),  # fast: repeated until the total first reaches 0.2 s, at the seventh run
    (1e-6, 3, 1.0, 12, 12),  # very fast: stopped at the cap
    (5.0, 3, 0.2, 100, 3),  # slow: exactly repeats times
    (1e-6, 8, 1.0, 4, 8),  # repeats is a minimum, even above the cap
])
def test_number_of_timed_runs(clock, seconds, repeats, min_total, max_runs, runs):
    timing = time_call(lambda: clock.advance(seconds), repeats=repeats, min_total=min_total, max_runs=max_runs)
    assert timing.runs == runs


def test_module_defaults_are_read_at_call_time(clock, monkeypatch):
    monkeypatch.setattr(measure, "MIN_TOTAL_SECONDS", 0.0)
    timing = time_call(lambda: clock.advance(1e-6), repeats=2)
    assert timing.runs == 2


def test_garbage_collection_stays_on_while_timed():
    seen = []
    time_call(lambda: seen.append(gc.isenabled()), repeats=2, min_total=0)
    assert seen and all(seen)


def test_uses_a_real_clock():
    timing = time_call(lambda: sum(range(1000)), repeats=3, min_total=0)
    assert all(seconds > 0 for seconds in timing.seconds)


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True, "3"])
def test_bad_repeats_are_refused(repeats):
    with pytest.raises(ValueError, match="repeats"):
        time_call(lambda: None, repeats=repeats)


# -- page cache -------------------------------------------------------------------------------------
def write_random(path: Path, size: int) -> Path:
    path.write_bytes(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


@pytest.fixture
def evictable(tmp_path):
    if mount_of(tmp_path)["type"] in ("tmpfs", "ramfs"):
        pytest.skip(f"{tmp_path} is on {mount_of(tmp_path)['type']}: its pages have no disk to go back to")
    return tmp_path


def fincore_resident_bytes(path: Path) -> int:
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    return int(out.split()[0])


def test_evict_drops_a_file_from_the_page_cache(evictable):
    path = write_random(evictable / "big.bin", 4 * 1024 * 1024 + 123)
    path.read_bytes()
    assert resident_fraction(path) > 0.9
    assert evict(path) == 1
    assert resident_fraction(path) < 0.1
    if shutil.which("fincore"):  # an independent witness, where installed
        assert fincore_resident_bytes(path) < 0.1 * path.stat().st_size
    path.read_bytes()
    assert resident_fraction(path) > 0.9  # reading brings it back: the measurement is not stuck at 0
    if shutil.which("fincore"):
        assert fincore_resident_bytes(path) > 0.9 * path.stat().st_size


def test_evict_flushes_unwritten_pages_first(evictable):
    # freshly written pages are dirty; DONTNEED alone would leave them in the cache
    path = write_random(evictable / "dirty.bin", 2 * 1024 * 1024)
    evict(path)
    assert resident_fraction(path) < 0.1


def test_evict_takes_a_folder_or_a_list(evictable):
    folder = evictable / "store"
    (folder / "nested").mkdir(parents=True)
    files = [write_random(folder / "a.bin", 300_000), write_random(folder / "nested" / "b.bin", 300_000)]
    other = write_random(evictable / "other.bin", 300_000)
    for path in [*files, other]:
        path.read_bytes()
    assert evict(folder) == 2
    assert resident_fraction(folder) < 0.1
    assert resident_fraction(other) > 0.9  # only what was named
    other.read_bytes()
    assert evict([other, files[0]]) == 2
    assert resident_fraction(other) < 0.1


def test_evict_names_a_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        evict(tmp_path / "nothing-here")


def test_resident_fraction_of_an_empty_file_is_zero(tmp_path):
    empty = tmp_path / "empty"
    empty.touch()
    assert resident_fraction(empty) == 0.0


def test_eviction_works_here(evictable):
    assert measure.eviction_works(evictable)
    assert list(evictable.iterdir()) == []  # the probe is removed


# -- disk usage -------------------------------------------------------------------------------------
def du_bytes(*args: str) -> int:
    return int(subprocess.run(["du", *args], capture_output=True, text=True, check=True).stdout.split()[0])


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "a" / "b").mkdir(parents=True)
    (root / "empty-folder").mkdir()
    (root / "empty-file").touch()
    (root / "one-byte").write_bytes(b"x")
    write_random(root / "a" / "page-and-a-bit", 4097)
    write_random(root / "a" / "b" / "bigger", 100_000)
    with open(root / "sparse", "wb") as handle:  # apparent size far above the blocks it holds
        handle.seek(10 * 1024 * 1024)
        handle.write(b"end")
    os.link(root / "a" / "b" / "bigger", root / "hard-link")  # the same file twice: counted once
    os.symlink("a/b/bigger", root / "symlink")  # counts its own few bytes, not its target
    return root


@pytest.mark.skipif(shutil.which("du") is None, reason="du is not installed")
def test_disk_usage_matches_du_on_a_tree(tree):
    usage = disk_usage(tree)
    assert usage.apparent == du_bytes("--apparent-size", "-sb", str(tree))
    assert usage.allocated == du_bytes("-sB1", str(tree))
    assert usage.files == 5  # regular files: empty-file, one-byte, page-and-a-bit, bigger (once), sparse


@pytest.mark.skipif(shutil.which("du") is None, reason="du is not installed")
def test_disk_usage_of_a_single_file_matches_du(tree):
    path = tree / "a" / "page-and-a-bit"
    usage = disk_usage(path)
    assert usage == DiskUsage(4097, du_bytes("-sB1", str(path)), 1)
    assert usage.allocated >= 4097  # whole blocks


def test_sparse_file_allocates_less_than_it_appears(tree):
    usage = disk_usage(tree / "sparse")
    assert usage.apparent == 10 * 1024 * 1024 + 3
    assert usage.allocated < usage.apparent


def test_disk_usage_of_a_list_counts_shared_files_once(tree):
    bigger = tree / "a" / "b" / "bigger"
    both = disk_usage([bigger, tree / "hard-link"])
    assert both == disk_usage(bigger)
    assert disk_usage([tree / "one-byte", tree / "a" / "page-and-a-bit"]).apparent == 1 + 4097


def test_disk_usage_names_a_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        disk_usage(tmp_path / "missing")


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(293.7 * 2**20) == "293.7 MiB"


def test_disk_usage_skips_a_file_renamed_away_while_the_tree_is_walked(tmp_path, monkeypatch):
    (tmp_path / "kept.bin").write_bytes(b"k" * 100)
    (tmp_path / "chunk.partial").write_bytes(b"p" * 5000)
    real_lstat = os.lstat

    def lstat_after_rename(path, *args, **kwargs):  # the writer renamed it between scandir and lstat
        if str(path).endswith(".partial"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat_after_rename)
    usage = measure.disk_usage(tmp_path)
    assert usage.files == 1 and usage.apparent >= 100 and usage.apparent < 5000
    with pytest.raises(FileNotFoundError):
        measure.disk_usage(tmp_path / "gone.partial")  # the path asked for still has to exist
