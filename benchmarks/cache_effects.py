"""Warm versus cold reads: does evicting a store's files from the page cache change what read_many costs?

For each storage method (and the NumPy floor) this stores N CIFAR-shaped images once, then times
``read_many(N)`` warm (files in the page cache) and cold (``helpers.core.measure.evict`` before every run),
and prints the medians, their min-max spread and the cold/warm ratio. It also asks the kernel how much
of the store is still cached right after an eviction (``resident_fraction``). If cold PNG reads are not
measurably slower than warm ones, eviction is not doing its job and "cold" numbers would mean nothing.

    .venv/bin/python benchmarks/cache_effects.py [--images 10000] [--repeats 5] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import stores  # noqa: E402
from helpers.core.measure import Timing, disk_usage, evict, format_seconds, resident_fraction  # noqa: E402
from helpers.datasets import synthetic  # noqa: E402
from helpers.report.environment import mount_of  # noqa: E402
from helpers.report.measuring import time_read  # noqa: E402


def spread(timing: Timing) -> str:
    return f"{format_seconds(timing.median):>9} ({format_seconds(timing.min)} - {format_seconds(timing.max)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the stores go (default: a temporary folder)")
    args = parser.parse_args()

    data = synthetic(args.images, seed=0)
    images, labels, source = data.images, data.labels, "helpers.datasets.synthetic"
    with tempfile.TemporaryDirectory(prefix="cache-effects-", dir=args.work_dir) as work:
        mount = mount_of(Path(work))
        print(f"{args.images} images {images.shape[1:]} from {source}; stores in {work} "
              f"({mount['type']} on {mount['device']}); {args.repeats} timed runs after a warm-up\n")
        header = (f"{'method':<6} {'size on disk':>12}  {'warm median (min - max)':>30}  "
                  f"{'cold median (min - max)':>30}  {'cold/warm':>9}  {'cached after evict':>18}")
        print(header)
        print("-" * len(header))
        outcome = {}
        for method in stores.names():
            store = stores.open_store(method, Path(work) / method)
            store.store_many(images, labels)
            read_back, read_labels = store.read_many(args.images)
            assert np.array_equal(read_back, images) and np.array_equal(read_labels, labels), method
            files = store.files()
            warm, cold = (time_read(store, lambda: store.read_many(args.images), cache, args.repeats)
                          for cache in ("warm", "cold"))
            evict(files)
            left = resident_fraction(files)
            ratio = cold.median / warm.median
            outcome[method] = (warm, cold)
            size = disk_usage(files).allocated / 1e6
            print(f"{method:<6} {size:>9.1f} MB  {spread(warm):>30}  {spread(cold):>30}  "
                  f"{ratio:>8.2f}x  {left:>17.1%}")
            store.clear()

    warm, cold = outcome["disk"]
    print()
    if cold.min > warm.max:
        print(f"PNG (disk): cold reads are measurably slower than warm ones (every cold run, "
              f"{format_seconds(cold.min)} or more, is slower than every warm run, "
              f"{format_seconds(warm.max)} or less): eviction works.")
        return 0
    print(f"PNG (disk): cold reads are NOT measurably slower than warm ones (cold min "
          f"{format_seconds(cold.min)}, warm max {format_seconds(warm.max)}): eviction is not working here, "
          f"so cold numbers are not cold.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
