"""Measure Zarr chunk and shard layouts: how the zarr store's layout was chosen (table in its docstring).

    .venv/bin/python benchmarks/zarr_layouts.py [--images 100000] [--repeats 3] [--one-per-chunk]

For each layout (images per chunk / images per shard) the same synthetic CIFAR-shaped images are written
with zarr-python exactly as the store writes them (CRC-32C per chunk, every chunk written), then read back
whole with zarr-python and with TensorStore, and one random image at a time with TensorStore. Prints
allocated bytes, store_many seconds, read_many seconds and the random single read in microseconds, with
the NumPy floor's write and read measured in the same run. Medians of repeats after one untimed run. Layouts
with one image per chunk take tens of seconds each and run only with ``--one-per-chunk``. Not a target
check: it prints numbers and always exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from helpers.core.measure import disk_usage
from helpers.datasets import synthetic
from helpers.stores import zarr_store

LAYOUTS = [(16, 4096), (32, 512), (32, 4096), (64, 1024), (64, 2048), (64, 8192), (128, 2048), (128, 4096), (256, 4096),
           (512, 8192)]
ONE_PER_CHUNK = [(1, 1024), (1, 4096), (1, 10000)]
SINGLE_READS = 300


def median_seconds(action, repeats: int) -> float:
    action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write(folder: Path, images: np.ndarray, per_chunk: int, per_shard: int) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    group = zarr.open_group(folder, mode="w-")
    shape = images.shape[1:]
    zarr_store.create_array(group, "images", images, chunks=(per_chunk, *shape), shards=(per_shard, *shape))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one-per-chunk", action="store_true", help="also the slow one-image-per-chunk layouts")
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args()
    images = synthetic(args.images).images
    positions = np.random.default_rng(0).integers(0, len(images), SINGLE_READS).tolist()
    layouts = (ONE_PER_CHUNK if args.one_per_chunk else []) + LAYOUTS
    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        root = Path(work)
        floor = root / "floor.npy"
        floor_write = median_seconds(lambda: np.save(floor, images), args.repeats)
        floor_read = median_seconds(lambda: np.load(floor), args.repeats)
        print(f"{len(images):,} images, {images.nbytes / 1e6:.1f} MB raw; floor: write {floor_write:.3f} s, "
              f"read {floor_read:.3f} s")
        print(f"{'chunk/shard':>12} {'allocated MB':>13} {'store_many s':>13} {'read zarr s':>12} "
              f"{'read ts s':>10} {'single ts us':>13}")
        for per_chunk, per_shard in layouts:
            folder = root / "layout.zarr"
            stored = median_seconds(lambda: write(folder, images, per_chunk, per_shard), args.repeats)
            allocated = disk_usage(folder).allocated
            array = zarr.open_group(folder, mode="r")["images"]
            by_zarr = median_seconds(lambda: array[...], args.repeats)
            tensor = zarr_store.open_tensorstore(folder / "images")
            by_tensorstore = median_seconds(lambda: tensor.read().result(), args.repeats)
            single = median_seconds(lambda: [tensor[i].read().result() for i in positions], args.repeats)
            print(f"{per_chunk:>5}/{per_shard:<6} {allocated / 1e6:13.1f} {stored:13.3f} {by_zarr:12.3f} "
                  f"{by_tensorstore:10.3f} {single / len(positions) * 1e6:13.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
