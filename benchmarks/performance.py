"""Check the speed targets: every store against the NumPy floor and the article's own code, in one run.

    .venv/bin/python benchmarks/performance.py [--images 100000] [--repeats 3]

All numbers are ratios of medians measured in this run, warm page cache, no sync (the floor has none),
so a noisy machine moves both sides of each ratio. The measurements of a pair alternate run by run.
Each measurement runs once untimed first. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

from article_baseline import ARTICLE_STORES  # noqa: E402

from helpers.datasets import synthetic  # noqa: E402
from helpers.measure import time_call  # noqa: E402
from helpers.stores import FLOOR, open_store  # noqa: E402
from helpers.stores.disk import DiskStore  # noqa: E402

Action = Callable[[], object]


def paired_medians(first: Action, second: Action, repeats: int,
                   setup_first: Action | None = None, setup_second: Action | None = None) -> tuple[float, float]:
    """Medians of two operations timed alternately, so that a slow spell of the machine hits both."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for action, setup, bucket in ((first, setup_first, times[0]), (second, setup_second, times[1])):
            bucket.extend(time_call(action, setup=setup, repeats=1, min_total=0, warmup=not bucket).seconds)
    return statistics.median(times[0]), statistics.median(times[1])


def peak_memory(action: Action) -> int:
    """Peak bytes Python and NumPy allocate while ``action`` runs (memory maps are not counted)."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def empty_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def digest(folder: Path) -> str:
    hasher = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            hasher.update(path.relative_to(folder).as_posix().encode())
            hasher.update(path.read_bytes())
    return hasher.hexdigest()


class Report:
    def __init__(self) -> None:
        self.missed: list[str] = []

    def check(self, what: str, value: float, limit: float, at_most: bool = True) -> None:
        met = value <= limit if at_most else value >= limit
        if not met:
            self.missed.append(what)
        sign = "<=" if at_most else ">="
        print(f"  {what:58} {value:7.2f}x  target {sign} {limit:<4}  {'met' if met else 'MISSED'}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work-dir", default=None, help="where stores are written (default: a temp folder)")
    parser.add_argument("--parts", default="floor,memory,disk,article",
                        help="which checks to run, comma-separated (default: all of them)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    data = synthetic(args.images)
    images, labels = data.images, data.labels
    print(f"{args.images:,} synthetic CIFAR-shaped images ({images.nbytes / 1e6:.0f} MB raw), "
          f"{args.repeats} timed runs each")
    report = Report()
    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        root = Path(work)
        stores = {name: open_store(name, root / name) for name in ("hdf5", "lmdb", FLOOR)}
        stores["disk"] = DiskStore(root / "disk")
        if "floor" in parts:
            print("Ratios to the floor (the same images as one .npy, NumPy save/load):")
            check_floor_ratios(report, stores, images, labels, args.repeats)
        if "memory" in parts:
            print("Peak memory of read_many / size of the returned array:")
            check_peak_memory(report, stores, images, labels)
        if "disk" in parts:
            print("PNG on disk, all cores against one process:")
            check_png_pool(report, DiskStore(root / "png-one", workers=1), stores["disk"], images, labels,
                           args.repeats)
        if "article" in parts:
            print("The article's implementation / ours (above 1 means ours is faster):")
            check_article(report, root, stores, images, labels, args.repeats)
    if report.missed:
        print(f"MISSED {len(report.missed)} target(s): {', '.join(report.missed)}")
        return 1
    print("All targets met.")
    return 0


def check_floor_ratios(report: Report, stores: dict, images, labels, repeats: int) -> None:
    floor, n = stores[FLOOR], len(images)
    for name, (store_limit, read_limit) in {"hdf5": (1.5, 1.3), "lmdb": (7.0, 2.5)}.items():
        store = stores[name]
        floor_s, ours_s = paired_medians(lambda: floor.store_many(images, labels),
                                         lambda: store.store_many(images, labels), repeats, floor.clear, store.clear)
        report.check(f"{name} store_many / floor write", ours_s / floor_s, store_limit)
        floor_r, ours_r = paired_medians(lambda: floor.read_many(n), lambda: store.read_many(n), repeats)
        report.check(f"{name} read_many / floor read", ours_r / floor_r, read_limit)


def check_peak_memory(report: Report, stores: dict, images, labels) -> None:
    for name, store in stores.items():
        store.store_many(images, labels)
        store.read_many(len(images))  # untimed first run: pools and page cache ready
        ratio = peak_memory(lambda: store.read_many(len(images))) / images.nbytes
        report.check(f"{name} read_many peak memory", ratio, 1.5)


def check_png_pool(report: Report, one: DiskStore, pool: DiskStore, images, labels, repeats: int) -> None:
    n = len(images)
    one_s, pool_s = paired_medians(lambda: one.store_many(images, labels),
                                   lambda: pool.store_many(images, labels), repeats, one.clear, pool.clear)
    report.check(f"disk store_many speed-up with {pool.workers} processes", one_s / pool_s, 1.7, at_most=False)
    one_r, pool_r = paired_medians(lambda: one.read_many(n), lambda: pool.read_many(n), repeats)
    report.check(f"disk read_many speed-up with {pool.workers} processes", one_r / pool_r, 1.7, at_most=False)
    identical = digest(one.batch_path) == digest(pool.batch_path)
    print(f"  files written by one process and by the pool are byte-identical: {'yes' if identical else 'NO'}")
    if not identical:
        report.missed.append("byte-identical PNG files")
    one.clear()


def check_article(report: Report, root: Path, stores: dict, images, labels, repeats: int) -> None:
    n = len(images)
    for name in ("disk", "lmdb", "hdf5"):
        article = ARTICLE_STORES[name](root / f"article-{name}")
        ours = stores[name]
        if name == "lmdb":  # the article's LMDB syncs every commit: compare with ours doing the same
            ours = open_store("lmdb", root / "lmdb-durable", durable=True)
        article_s, ours_s = paired_medians(lambda: article.store_many(images, labels),
                                           lambda: ours.store_many(images, labels), repeats,
                                           lambda: empty_folder(article.root), ours.clear)
        report.check(f"{name} store_many: article / ours" + (" (both sync)" if name == "lmdb" else ""),
                     article_s / ours_s, 1.0, at_most=False)
        if name == "lmdb":
            ours.clear()
            ours = stores[name]
            ours.store_many(images, labels)
        article_r, ours_r = paired_medians(lambda: article.read_many(n), lambda: ours.read_many(n), repeats)
        report.check(f"{name} read_many: article / ours", article_r / ours_r, 3.0 if name == "lmdb" else 1.0,
                     at_most=False)
        empty_folder(article.root)


if __name__ == "__main__":
    sys.exit(main())
