"""Why does LMDB ``store_many`` of 100,000 images vary from run to run? Time its phases over repeats.

Each run is what the report times: ``store.clear()`` (untimed, as ``experiments.measure_many`` does), then
``store_many``. Around the store's own steps it records the time of each phase (``reserve``: the
posix_fallocate of the map; ``open``; ``fill``: the one write transaction copying the values into the
memory map, with any map growth; ``close``: unmapping; ``truncate``: cutting the unused tail), the
process's user and system CPU time, the load average, and /proc/meminfo Dirty and Writeback before the run.
``--png-first`` writes a 100,000-image PNG batch first, as the report does before LMDB; ``--sync`` adds an
untimed sync after the clear; ``--no-reserve`` skips the fallocate, to compare.

    .venv/bin/python benchmarks/lmdb_spread.py [--images 100000] [--runs 8] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.stores import lmdb_store  # noqa: E402
from helpers.stores.disk import DiskStore  # noqa: E402
from helpers.stores.lmdb_store import LmdbStore  # noqa: E402

phases: dict[str, float] = {}


def meminfo() -> dict[str, int]:
    """Dirty and Writeback in MiB."""
    found = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            key, value = line.split(":")
            if key in ("Dirty", "Writeback"):
                found[key] = int(value.split()[0]) // 1024
    return found


def timed(name: str, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - start
    return wrapper


class TimedEnvironment:
    """The environment ``open_environment`` returns, timing its close (the unmap) at the end of ``with``."""

    def __init__(self, env) -> None:
        self.env = env

    def __enter__(self):
        return self.env

    def __exit__(self, *exc_info) -> None:
        start = time.perf_counter()
        self.env.close()
        phases["close"] = time.perf_counter() - start


def instrument(no_reserve: bool) -> None:
    real_open = lmdb_store.open_environment
    lmdb_store.reserve = timed("reserve", (lambda path, size: None) if no_reserve else lmdb_store.reserve)
    lmdb_store.write_with_growth = timed("fill", lmdb_store.write_with_growth)

    def open_environment(*args, **kwargs):
        start = time.perf_counter()
        env = real_open(*args, **kwargs)
        phases["open"] = time.perf_counter() - start - phases.get("reserve", 0.0)
        return TimedEnvironment(env)

    lmdb_store.open_environment = open_environment
    lmdb_store.os.truncate = timed("truncate", os.truncate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=8, help="timed runs after one warm-up run")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--png-first", action="store_true")
    parser.add_argument("--sync", action="store_true")
    parser.add_argument("--no-reserve", action="store_true")
    args = parser.parse_args()
    instrument(args.no_reserve)
    images = np.random.default_rng(0).integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(args.images) % 10
    with tempfile.TemporaryDirectory(dir=args.work_dir, prefix="lmdb-spread-") as work:
        if args.png_first:
            start = time.perf_counter()
            DiskStore(Path(work) / "disk").store_many(images, labels)
            print(f"PNG batch first: {time.perf_counter() - start:.1f} s; {meminfo()}")
        store = LmdbStore(Path(work) / "lmdb")
        totals, fills = [], []
        print("run  total   fill reserve open truncate close  user   sys load1 Dirty Writeback (ms, MiB)")
        for run in range(args.runs + 1):
            store.clear()
            if args.sync:
                os.sync()
            before = meminfo()
            phases.clear()
            usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            store.store_many(images, labels)
            total = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
            ms = {name: round(seconds * 1000) for name, seconds in phases.items()}
            print(
                f"{'warm' if run == 0 else run:>4} {total * 1000:6.0f} {ms.get('fill', 0):6} "
                f"{ms.get('reserve', 0):7} {ms.get('open', 0):4} "
                f"{ms.get('truncate', 0):8} {ms.get('close', 0):5} "
                f"{(after.ru_utime - usage.ru_utime) * 1000:5.0f} "
                f"{(after.ru_stime - usage.ru_stime) * 1000:5.0f} "
                f"{os.getloadavg()[0]:5.1f} {before['Dirty']:5} {before['Writeback']:9}"
            )
            if run:
                totals.append(total)
                fills.append(phases.get("fill", 0.0))
        others = [t - f for t, f in zip(totals, fills)]
        print(
            f"store_many: min {min(totals) * 1000:.0f} ms, median {statistics.median(totals) * 1000:.0f} ms, "
            f"max {max(totals) * 1000:.0f} ms, max/min {max(totals) / min(totals):.2f}x; "
            f"everything but the fill: {min(others) * 1000:.0f} to {max(others) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
