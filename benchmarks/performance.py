"""Check the speed targets: every store against the NumPy floor and the article's own code, in one run.

    .venv/bin/python benchmarks/performance.py [--images 100000] [--repeats 3]

All numbers are ratios of medians measured in this run, warm page cache, no sync (the floor has none),
so a noisy machine moves both sides of each ratio. The measurements of a pair alternate run by run.
Each measurement runs once untimed first. Writes compared with the article's code and the PNG pool go to a
new folder each run, after an untimed sync (see FreshFolders). About 13 minutes on 2 cores; exits 1 if a
target is missed.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from article_baseline import ARTICLE_STORES  # noqa: E402

from helpers.core.measure import time_call  # noqa: E402
from helpers.datasets import synthetic  # noqa: E402
from helpers.report.environment import has_journal, mount_of  # noqa: E402
from helpers.stores import FLOOR, open_store  # noqa: E402
from helpers.stores.disk import DiskStore  # noqa: E402

Action = Callable[[], object]
INODE_AGE_SECONDS = 61


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
        sign = "<=" if at_most else ">="
        self.verdict(what, met, f"{value:7.2f}x  target {sign} {limit:<4}")

    def verdict(self, what: str, met: bool, measured: str) -> None:
        """Record and print one target; ``measured`` gives the number found and the target's."""
        if not met:
            self.missed.append(what)
        print(f"  {what:58} {measured}  {'met' if met else 'MISSED'}", flush=True)

    def exit_status(self) -> int:
        """Say whether every target was met; the script's exit status (1 if any was missed)."""
        if self.missed:
            print(f"MISSED {len(self.missed)} target(s): {', '.join(self.missed)}")
            return 1
        print("All targets met.")
        return 0


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
            check_png_pool(report, root, images, labels, args.repeats)
        if "article" in parts:
            print("The article's implementation / ours (above 1 means ours is faster):")
            check_article(report, root, images, labels, args.repeats)
    return report.exit_status()


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


class FreshFolders:
    """Stores made by ``make(folder)`` in a new folder for every timed write, all deleted by ``remove_all``.

    For PNG batches, which are many files. On ext4 without a journal (this VM's disk), to create a file
    the kernel passes over every inode freed in the last minute or so (``recently_deleted`` in
    fs/ext4/ialloc.c): creating 100,000 files just after deleting 100,000 costs several times the kernel
    time of creating them in fresh space, time that two processes do not share. Clearing the store before
    every timed write would measure that bookkeeping, not the store.

    Before each run the files of earlier runs are flushed to disk (untimed): otherwise the kernel's flusher
    writes them back during a later timed run, on the core a single process leaves idle but taken from a
    pool that uses both.
    """

    def __init__(self, parent: Path, make: Callable[[Path], object]) -> None:
        self.parent, self.make = parent, make
        self.runs = itertools.count()
        self.current = None

    def next_store(self) -> None:
        if hasattr(self.current, "close"):
            self.current.close()
        os.sync()
        self.current = self.make(self.parent / str(next(self.runs)))

    def store_many(self, images, labels) -> None:
        self.current.store_many(images, labels)

    def remove_all(self) -> None:
        shutil.rmtree(self.parent, ignore_errors=True)


def let_deleted_inodes_age(folder: Path) -> None:
    """On ext4 without a journal, wait until files deleted before now no longer slow down creating files.

    The kernel passes over an inode freed less than a minute ago, five if its inode table block is not yet
    written back; after a sync, one minute is enough.
    """
    mount = mount_of(folder)
    if has_journal(folder, mount["type"]) is not False:
        return
    print(f"  ({mount['device']} is ext4 without a journal: waiting {INODE_AGE_SECONDS} s for inodes deleted "
          f"earlier to age, see FreshFolders)", flush=True)
    os.sync()
    time.sleep(INODE_AGE_SECONDS)


def check_png_pool(report: Report, root: Path, images, labels, repeats: int) -> None:
    n = len(images)
    let_deleted_inodes_age(root)
    one = FreshFolders(root / "png-one", lambda folder: DiskStore(folder, workers=1))
    pool = FreshFolders(root / "png-pool", DiskStore)
    one_s, pool_s = paired_medians(lambda: one.store_many(images, labels),
                                   lambda: pool.store_many(images, labels), repeats, one.next_store, pool.next_store)
    workers = pool.current.workers
    report.check(f"disk store_many speed-up with {workers} processes", one_s / pool_s, 1.7, at_most=False)
    one_r, pool_r = paired_medians(lambda: one.current.read_many(n), lambda: pool.current.read_many(n), repeats)
    report.check(f"disk read_many speed-up with {workers} processes", one_r / pool_r, 1.7, at_most=False)
    identical = digest(one.current.batch_path) == digest(pool.current.batch_path)
    print(f"  files written by one process and by the pool are byte-identical: {'yes' if identical else 'NO'}")
    if not identical:
        report.missed.append("byte-identical PNG files")
    one.remove_all()
    pool.remove_all()
    # The same pair, each write just after deleting the previous batch, as a report's repeats do.
    single, several = DiskStore(root / "png-one", workers=1), DiskStore(root / "png-pool")
    one_s, pool_s = paired_medians(lambda: single.store_many(images, labels),
                                   lambda: several.store_many(images, labels), repeats, single.clear, several.clear)
    print(f"  {'(not a target) the same, each write just after deleting a batch':58} {one_s / pool_s:7.2f}x")
    single.clear()
    several.clear()


def check_article(report: Report, root: Path, images, labels, repeats: int) -> None:
    n = len(images)
    for name in ("disk", "lmdb", "hdf5"):
        if name == "disk":
            let_deleted_inodes_age(root)
        durable = name == "lmdb"  # the article's LMDB syncs every commit: compare with ours doing the same
        article = FreshFolders(root / f"article-{name}", ARTICLE_STORES[name])
        ours = FreshFolders(root / f"ours-{name}", functools.partial(open_store, name, durable=durable))
        article_s, ours_s = paired_medians(lambda: article.store_many(images, labels),
                                           lambda: ours.store_many(images, labels), repeats,
                                           article.next_store, ours.next_store)
        report.check(f"{name} store_many: article / ours" + (" (both sync)" if durable else ""),
                     article_s / ours_s, 1.0, at_most=False)
        article_r, ours_r = paired_medians(lambda: article.current.read_many(n), lambda: ours.current.read_many(n),
                                           repeats)
        report.check(f"{name} read_many: article / ours", article_r / ours_r, 3.0 if name == "lmdb" else 1.0,
                     at_most=False)
        article.remove_all()
        ours.remove_all()


if __name__ == "__main__":
    sys.exit(main())
