"""How the Parquet store's row-group size sets its bulk and random read costs, against the NumPy floor.

    .venv/bin/python benchmarks/parquet_row_groups.py [--images 100000] [--rows 64,128,256,1024,4096]

For each number of rows per group, writes the batch with the Parquet store, then times store_many,
read_many and random single reads (``read_indices([i])``, no two in a row from the same group); the NumPy
floor is timed the same way in the same run. Each measurement is run once untimed, then ``--repeats``
times; medians are printed, with ratios to the floor. ``helpers/stores/parquet_store.py`` explains the
choice these numbers support.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np

from helpers.core.measure import time_call
from helpers.datasets import synthetic
from helpers.stores import open_store, parquet_store


def measure(method: str, root: str, images: np.ndarray, labels: np.ndarray, repeats: int) -> tuple[float, ...]:
    """(store_many s, read_many s, µs per random single read) medians for one store."""
    store = open_store(method, root)
    stored = time_call(lambda: store.store_many(images, labels), setup=store.clear, repeats=repeats, min_total=0)
    read = time_call(lambda: store.read_many(len(images)), repeats=repeats, min_total=0)
    back, back_labels = store.read_many(len(images))
    if not (np.array_equal(back, images) and np.array_equal(back_labels, labels)):
        raise SystemExit(f"{method}: the images read back differ from those stored")
    # Positions spread over the whole batch, each far from the last, so no read finds its group decoded.
    positions = (np.arange(500) * 7919 + 13) % len(images)

    def random_reads() -> None:
        for position in positions.tolist():
            store.read_indices([position])

    single = time_call(random_reads, repeats=repeats, min_total=0)
    store.clear()
    return stored.median, read.median, single.median / len(positions) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--rows", default="64,128,256,1024,4096,16384", help="rows per group to try")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work-dir", default=None, help="where the stores are written (default: a temp folder)")
    args = parser.parse_args()

    data = synthetic(args.images)
    image_bytes = data.images[0].nbytes
    print(f"{args.images:,} images of {image_bytes:,} bytes; medians of {args.repeats} runs after one untimed")
    print(f"{'layout':>22} {'store_many':>16} {'read_many':>16} {'random single read':>22}")
    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        chosen = parquet_store.ROW_GROUP_BYTES
        try:
            for rows in (int(r) for r in args.rows.split(",")):
                # The floor is measured again next to each layout: on a shared machine the load changes.
                floor = measure("npy", f"{work}/npy", data.images, data.labels, args.repeats)
                print(f"{'NumPy floor':>22} {floor[0]:8.3f} s       {floor[1]:8.3f} s       {floor[2]:10.1f} µs")
                parquet_store.ROW_GROUP_BYTES = rows * image_bytes
                result = measure("parquet", f"{work}/parquet", data.images, data.labels, args.repeats)
                ratios = [value / base for value, base in zip(result, floor)]
                print(f"{f'{rows:,} rows per group':>22} {result[0]:8.3f} s {ratios[0]:4.1f}x "
                      f"{result[1]:8.3f} s {ratios[1]:4.1f}x {result[2]:10.1f} µs {ratios[2]:6.0f}x")
        finally:
            parquet_store.ROW_GROUP_BYTES = chosen
    print(f"The store uses {chosen // image_bytes:,} rows per group for these images "
          f"(ROW_GROUP_BYTES = {chosen:,}).")


if __name__ == "__main__":
    main()
