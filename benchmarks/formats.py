"""Check the speed and size targets of the formats people use today against the NumPy floor, in one run.

    .venv/bin/python benchmarks/formats.py [--images 100000] [--repeats 3] [--methods zarr,tar]

Every method of FORMATS that is registered (zarr, tar, parquet, arrow, sqlite) is written and read with
the same synthetic CIFAR-shaped images as the floor (``npy``), warm page cache, no sync. Whole-batch
writes and reads are timed alternately with the floor's (``paired_medians``, one untimed run first, the
store cleared untimed before each write). Random single reads are ``store.batch_reader().read_one(i)`` at
random positions against ``np.array(mm[i])`` on the memory-mapped ``.npy``; a shuffled epoch is
``reader.read_indices(perm[k:k + 256])`` over a permutation, against the floor's reader doing the same.
Both report the median of repeats of the per-image time. Disk is allocated bytes over raw pixel bytes.
Prints every target with the measured ratio and exits 1 if any is missed. A few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from performance import Report, paired_medians  # noqa: E402

from helpers.core.measure import disk_usage  # noqa: E402
from helpers.datasets import synthetic  # noqa: E402
from helpers.stores import FLOOR, REGISTRY, open_store  # noqa: E402

FORMATS = ("zarr", "tar", "parquet", "arrow", "sqlite")
# Targets from the issue, as ratios to the floor measured in the same run; None: measured, no target.
TARGETS: dict[str, dict[str, float | None]] = {
    "read_many": {"parquet": 6, "arrow": 6, "tar": 10, "zarr": 10, "sqlite": 15},
    "store_many": {"parquet": 2, "arrow": 2, "sqlite": 5, "tar": 10, "zarr": 15},
    "random read_one": {"tar": 1.5, "sqlite": 4.5, "arrow": 20, "parquet": None, "zarr": None},
    "shuffled epoch, batch 256": {"tar": 6, "sqlite": 10},
}
DISK_TARGETS = {"zarr": 1.1, "tar": 1.7}
RANDOM_READS = 2_000
EPOCH_IMAGES = 20_000  # the first part of a shuffled epoch: enough batches for a stable rate
BATCH = 256


def per_image_median(action: Callable[[], int], repeats: int) -> float:
    """Median over repeats of the seconds per image of ``action()``, which returns how many it read."""
    action()  # untimed first run
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = action()
        rates.append((time.perf_counter() - start) / count)
    return statistics.median(rates)


def random_single_reads(reader, positions: list[int]) -> Callable[[], int]:
    def run() -> int:
        for index in positions:
            reader.read_one(index)
        return len(positions)

    return run


def floor_single_reads(images: np.ndarray, positions: list[int]) -> Callable[[], int]:
    def run() -> int:
        for index in positions:
            np.array(images[index])
        return len(positions)

    return run


def shuffled_batches(reader, permutation: np.ndarray) -> Callable[[], int]:
    def run() -> int:
        for start in range(0, len(permutation), BATCH):
            reader.read_indices(permutation[start : start + BATCH])
        return len(permutation)

    return run


def check(report: Report, operation: str, name: str, ratio: float, detail: str) -> None:
    limit = TARGETS[operation].get(name)
    what = f"{name} {operation} / floor"
    if limit is None:
        print(f"  {what:58} {ratio:7.2f}x  (measured, no target)  {detail}", flush=True)
    else:
        report.check(what, ratio, limit)
        print(f"  {'':58} {detail}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--methods", default=",".join(FORMATS), help="comma-separated, of " + ", ".join(FORMATS))
    parser.add_argument("--work-dir", default=None, help="where stores are written (default: a temp folder)")
    args = parser.parse_args()
    asked = [name for name in args.methods.split(",") if name]
    unknown = sorted(set(asked) - set(FORMATS))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    methods = [name for name in asked if name in REGISTRY]
    skipped = [name for name in asked if name not in REGISTRY]
    data = synthetic(args.images)
    images, labels, n = data.images, data.labels, args.images
    print(f"{n:,} synthetic CIFAR-shaped images ({images.nbytes / 1e6:.0f} MB raw), {args.repeats} timed runs "
          f"each; methods: {', '.join(methods) or 'none'}" + (f" (not registered: {', '.join(skipped)})" if skipped else ""))
    rng = np.random.default_rng(0)
    positions = rng.integers(0, n, size=min(RANDOM_READS, n)).tolist()
    permutation = rng.permutation(n)[:EPOCH_IMAGES]
    report = Report()
    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        root = Path(work)
        floor = open_store(FLOOR, root / FLOOR)
        floor.store_many(images, labels)
        for name in methods:
            print(f"{name}:", flush=True)
            store = open_store(name, root / name)
            floor_s, ours_s = paired_medians(lambda: floor.store_many(images, labels),
                                             lambda: store.store_many(images, labels), args.repeats,
                                             floor.clear, store.clear)
            check(report, "store_many", name, ours_s / floor_s, f"{ours_s:.3f} s against {floor_s:.3f} s")
            floor_r, ours_r = paired_medians(lambda: floor.read_many(n), lambda: store.read_many(n), args.repeats)
            check(report, "read_many", name, ours_r / floor_r, f"{ours_r:.3f} s against {floor_r:.3f} s")

            mapped = np.load(floor.batch_path / "images.npy", mmap_mode="r")
            reader, floor_reader = store.batch_reader(), floor.batch_reader()
            floor_one = per_image_median(floor_single_reads(mapped, positions), args.repeats)
            ours_one = per_image_median(random_single_reads(reader, positions), args.repeats)
            check(report, "random read_one", name, ours_one / floor_one,
                  f"{ours_one * 1e6:.1f} us against {floor_one * 1e6:.1f} us per image")
            if name in TARGETS["shuffled epoch, batch 256"]:
                floor_epoch = per_image_median(shuffled_batches(floor_reader, permutation), args.repeats)
                ours_epoch = per_image_median(shuffled_batches(reader, permutation), args.repeats)
                check(report, "shuffled epoch, batch 256", name, ours_epoch / floor_epoch,
                      f"{1 / ours_epoch:,.0f} images/s against {1 / floor_epoch:,.0f} images/s")
            if name in DISK_TARGETS:
                allocated = disk_usage(store.batch_path).allocated
                report.check(f"{name} allocated disk / raw pixel bytes", allocated / images.nbytes, DISK_TARGETS[name])
                print(f"  {'':58} {allocated / 1e6:.1f} MB for {images.nbytes / 1e6:.1f} MB of pixels", flush=True)
            del mapped
            store.clear()
            store.close()
    return report.exit_status()


if __name__ == "__main__":
    sys.exit(main())
