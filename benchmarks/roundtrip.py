"""Round-trip CIFAR-shaped images through every store, check they come back exactly, print the seconds.

    .venv/bin/python benchmarks/roundtrip.py [--images 100000] [--work-dir data/work/bench]

Each operation is run once untimed, then timed ``--repeats`` times; the median is printed.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np

from helpers.core.measure import time_call
from helpers.datasets import synthetic
from helpers.stores import names, open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work-dir", default=None, help="where the stores are written (default: a temp folder)")
    args = parser.parse_args()

    data = synthetic(args.images)
    print(f"{args.images:,} images of shape {data.images.shape[1:]}, {data.images.nbytes / 1e6:.0f} MB raw")
    print(f"{'method':8} {'store_many s':>13} {'read_many s':>12}  exact")
    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        for method in names():
            store = open_store(method, f"{work}/{method}")
            stored = time_call(lambda: store.store_many(data.images, data.labels), setup=store.clear,
                               repeats=args.repeats, min_total=0)
            read = time_call(lambda: store.read_many(args.images), repeats=args.repeats, min_total=0)
            images, labels = store.read_many(args.images)
            exact = np.array_equal(images, data.images) and np.array_equal(labels, data.labels)
            print(f"{method:8} {stored.median:13.3f} {read.median:12.3f}  {'yes' if exact else 'NO'}")
            store.clear()
            if not exact:
                raise SystemExit(f"{method}: the images read back differ from those stored")


if __name__ == "__main__":
    main()
