"""Past RAM and past one process: store_chunks of a million images, and conversion on a Dask cluster.

    .venv/bin/python benchmarks/at_scale.py [--images 1000000] [--convert-images 200000] [--work-dir DIR]

Targets, each printed as met or MISSED (exit status 1 if any is missed):
- store_chunks of ``--images`` CIFAR-shaped images into every streaming method except the PNG folder (whose
  million files are measured by the conversion instead): peak resident memory of the writing process
  (measured in a fresh process) at most 1 GB, and the store read back exactly, chunk by chunk;
- ``helpers.convert`` of ``--convert-images`` images into every method written in pieces (PNG shard
  folders; tar shards with PNG values where registered): 2 workers at least 1.7 times as fast as 1.
The synthetic images are the first 10,000 repeated (making a million distinct ones takes minutes and would
measure the generator). Conversions: a small untimed one on each cluster first, then the timed one; the
cluster sizes alternate, ``--repeats`` times, and the medians are compared.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from helpers.core.measure import format_bytes
from helpers.report.chapters.at_scale import (
    conversions,
    parallel_writers,
    verify_streaming,
    write_in_subprocess,
)
from helpers.stores import FLOOR, names, store_class

PEAK_RSS_LIMIT = 1 << 30
SPEED_UP_TARGET = 1.7


def streaming_methods() -> list[str]:
    """Methods store_chunks writes with bounded memory, but the PNG folder (a million files: see convert)."""
    return [m for m in names() if store_class(m).streams() and m not in ("disk", FLOOR)]


def piece_conversions() -> list[tuple[str, str | None]]:
    """(method, compression) of the issue's target, converted by many workers at once: PNG shard folders,
    tar shards of PNGs (Zarr shards are written in pieces too, measured in the report's at-scale chapter)."""
    chosen: list[tuple[str, str | None]] = [("disk", None)]
    if "tar" in names():
        chosen.append(("tar", "png" if "png" in store_class("tar").compressions else None))
    return [(method, compression) for method, compression in chosen if parallel_writers(method)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--convert-images", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2, help="timed conversions per cluster size (median)")
    parser.add_argument("--work-dir", default=None, help="where the stores are written (default: a temp folder)")
    args = parser.parse_args()
    missed: list[str] = []
    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        print(f"store_chunks of {args.images:,} CIFAR-shaped images ({format_bytes(args.images * 3072)} raw), "
              f"chunks of 10,000; peak RSS of the writing process, limit {format_bytes(PEAK_RSS_LIMIT)}")
        print(f"{'method':8} {'write s':>8} {'images/s':>9} {'baseline RSS':>13} {'peak RSS':>10}  exact  target")
        for method in streaming_methods():
            root = Path(work) / method
            result = write_in_subprocess(method, root, args.images)
            start = time.perf_counter()
            try:
                verify_streaming(method, root, args.images)
                exact = True
            except Exception as error:  # noqa: BLE001 - reported as a missed target below
                exact, problem = False, error
            check_seconds = time.perf_counter() - start
            met = exact and result["peak_rss"] <= PEAK_RSS_LIMIT
            if not met:
                missed.append(f"{method}: peak RSS {format_bytes(result['peak_rss'])}"
                              + ("" if exact else f", read-back differs ({problem})"))
            print(f"{method:8} {result['seconds']:8.1f} {args.images / result['seconds']:9,.0f} "
                  f"{format_bytes(result['baseline_rss']):>13} {format_bytes(result['peak_rss']):>10}  "
                  f"{'yes' if exact else 'NO':5}  {'met' if met else 'MISSED'}  (read-back check {check_seconds:.0f} s)")
            shutil.rmtree(root)
        reasons = {"disk": "a million files: measured by the conversion below", FLOOR: "the reference floor"}
        skipped = [f"{m} ({reasons.get(m, 'its store_chunks gathers the chunks in memory')})"
                   for m in names() if m not in streaming_methods()]
        print(f"not written at this size: {'; '.join(skipped)}")

        print(f"\nhelpers.convert of {args.convert_images:,} images on a LocalCluster of 1 and of 2 worker processes, "
              f"median of {args.repeats} (target: 2 workers >= {SPEED_UP_TARGET}x 1 worker)")
        if "tar" not in names():
            print("tar shards: the tar method is not registered in this tree; only PNG shard folders measured")
        # Other work on the machine comes and goes: the two cluster sizes alternate (1, 2, then 2, 1, ...) and
        # each is summarised by its median.
        runs = [conversions(piece_conversions(), args.convert_images, work, workers=(1, 2)[:: 1 - 2 * (r % 2)])
                for r in range(args.repeats)]
        table = pd.concat(runs).groupby(["method", "compression", "workers"], sort=False)["seconds"].median()
        for (method, compression), rows in table.groupby(level=["method", "compression"], sort=False):
            seconds = rows.droplevel(["method", "compression"])
            speed_up = seconds[1] / seconds[2]
            met = speed_up >= SPEED_UP_TARGET
            if not met:
                missed.append(f"{method} conversion: 2 workers {speed_up:.2f}x 1 worker")
            label = method + (f" ({compression})" if compression else "")
            print(f"{label:14} 1 worker {seconds[1]:6.1f} s   2 workers {seconds[2]:6.1f} s   speed-up "
                  f"{speed_up:.2f}x  {'met' if met else 'MISSED'}")
    if missed:
        print("\nMISSED: " + "; ".join(missed))
        return 1
    print("\nevery target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
