"""Check the random-access targets: single random reads, shuffled epochs and loader workers, in one run.

    .venv/bin/python benchmarks/random_access.py [--images 100000] [--repeats 3] [--work-dir DIR]

All numbers are ratios of medians measured in this run; the two sides of a ratio alternate run by run
and each runs once untimed first (``performance.paired_medians``). The floor is the same images as one
``.npy``: warm random reads copy out of its memory map (``np.array(mm[i])``), a shuffled epoch sorts each
mini-batch, fancy-indexes the map and puts the images back in order, cold random reads are ``os.pread``
calls at each image's offset. Every epoch is first checked to hold every image once, exactly. Three to six
minutes on 2 cores (the PNG epochs take most of it); exits 1 if a target is missed. The worker targets need
idle cores: on a machine busy with other work, the two workers share what is left with the parent. The
workers persist across epochs as a training job's do; the untimed first epoch starts them, and after each
worker target one more pair of epochs shows where the time goes (CPU of the parent and of the workers,
other programs' share of the 2 cores, and the best speed-up that CPU time allows on 2 idle cores).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from performance import Report, paired_medians  # noqa: E402

from helpers.core.measure import evict  # noqa: E402
from helpers.core.pool import process_context  # noqa: E402
from helpers.datasets import synthetic  # noqa: E402
from helpers.loader import batches, epoch_order, worker_pids  # noqa: E402
from helpers.stores import FLOOR, open_store  # noqa: E402

BATCH_SIZE = 256
WARM_SAMPLE = 20_000  # random single reads per warm run
COLD_SAMPLE = 1_000  # random single reads per cold run (each one a disk read)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work-dir", default=None, help="where stores are written (default: a temp folder)")
    args = parser.parse_args()
    data = synthetic(args.images)
    images, labels = data.images, data.labels
    print(f"{args.images:,} synthetic CIFAR-shaped images, mini-batches of {BATCH_SIZE}, "
          f"{args.repeats} timed runs of each side", flush=True)
    report = Report()
    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        stores = {}
        for name in (FLOOR, "lmdb", "hdf5", "disk"):
            stores[name] = open_store(name, Path(work) / name)
            stores[name].store_many(images, labels)
        print("Every image once per epoch, exactly (in this process and with 2 workers):")
        for name, store in stores.items():
            for workers in (0, 2):
                check_epoch(report, store, images, labels, workers)
        print("Random single reads, warm (reader.read_one, against the floor's np.array(mm[i])):")
        sample = np.random.default_rng(1).integers(0, args.images, WARM_SAMPLE).tolist()
        floor_reader = stores[FLOOR].batch_reader()
        for name, limit in (("lmdb", 1.5), ("hdf5", 5.0)):
            reader = stores[name].batch_reader()
            floor_s, ours_s = paired_medians(lambda: read_each(floor_reader, sample),
                                             lambda: read_each(reader, sample), args.repeats)
            report.check(f"{name} random read / floor ({ours_s / len(sample) * 1e6:.1f} µs per image)",
                         ours_s / floor_s, limit)
        print(f"Shuffled epoch in mini-batches of {BATCH_SIZE}, warm, in this process:")
        for name, limit in (("lmdb", 7.0), ("hdf5", 25.0)):
            floor_s, ours_s = paired_medians(lambda: epoch(stores[FLOOR], 0), lambda: epoch(stores[name], 0),
                                             args.repeats)
            report.check(f"{name} epoch / floor epoch ({args.images / ours_s:,.0f} images/s)",
                         ours_s / floor_s, limit)
        print(f"Random single reads, cold ({COLD_SAMPLE:,} per run, files evicted first), against os.pread:")
        check_cold(report, stores, args.repeats)
        print("Shuffled epochs with 2 persistent loader workers (started by the untimed first epoch, "
              f"{process_context().get_start_method()}), speed-up over workers=0 in this process:")
        for name, limit in (("disk", 1.8), ("lmdb", 0.9), ("hdf5", 0.9)):
            one_s, two_s = paired_medians(lambda: epoch(stores[name], 0), lambda: epoch(stores[name], 2),
                                          args.repeats)
            pids = worker_pids(stores[name])
            report.check(f"{name} 2 workers / 1 process (speed-up)", one_s / two_s, limit, at_most=False)
            print(f"    {cpu_use(stores[name], pids)}", flush=True)
        print("Sequential read_many of the whole batch:")
        floor_s, ours_s = paired_medians(lambda: stores[FLOOR].read_many(args.images),
                                         lambda: stores["lmdb"].read_many(args.images), args.repeats)
        report.check("lmdb read_many / floor read_many", ours_s / floor_s, 2.5)
        for store in stores.values():
            store.close()
    return report.exit_status()


def read_each(reader, sample: list[int]) -> None:
    read_one = reader.read_one
    for index in sample:
        read_one(index)


EPOCHS = itertools.count()  # each timed epoch a new order, as in training


def epoch(store, workers: int) -> None:
    for _ in batches(store, BATCH_SIZE, seed=0, epoch=next(EPOCHS), workers=workers):
        pass


def cpu_use(store, pids: list[int]) -> str:
    """Where one more 2-worker epoch's time goes: the parent's CPU and the workers' (from /proc), against
    the same epoch in one process. The speed-up can be at most 2 cores' worth of the one-process CPU time
    over the CPU time the parent and workers need together."""

    def workers_cpu() -> float:  # nanoseconds on a CPU, exact (utime and stime are sampled at ticks)
        return sum(int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) for pid in pids) / 1e9

    one_cpu = time.process_time()
    epoch(store, 0)
    one_cpu = time.process_time() - one_cpu
    parent, workers, wall, machine = time.process_time(), workers_cpu(), time.perf_counter(), machine_busy()
    epoch(store, 2)
    wall, parent, workers = time.perf_counter() - wall, time.process_time() - parent, workers_cpu() - workers
    others = (machine_busy() - machine - parent - workers) / wall
    same = worker_pids(store) == pids
    return (f"one more epoch: 1 process {one_cpu:.2f} s CPU; 2 workers {wall:.2f} s wall, parent {parent:.2f} s "
            f"+ workers {workers:.2f} s CPU ({(parent + workers) / wall:.2f} cores busy; other programs "
            f"~{max(others, 0):.1f} cores; at most {2 * one_cpu / (parent + workers):.2f}x on 2 idle cores; "
            f"same worker processes: {same})")


def machine_busy() -> float:
    """CPU seconds all processes of the machine have used (from /proc/stat, in 10 ms ticks)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def check_epoch(report: Report, store, images: np.ndarray, labels: np.ndarray, workers: int) -> None:
    order = epoch_order(len(images), seed=5)
    got = list(batches(store, BATCH_SIZE, seed=5, workers=workers))
    read = np.concatenate([batch for batch, _ in got])
    read_labels = np.concatenate([batch_labels for _, batch_labels in got])
    exact = np.array_equal(read, images[order]) and np.array_equal(read_labels, labels[order])
    if not exact:
        report.missed.append(f"{store.name} epoch with {workers} workers")
    print(f"  {store.name:<5} workers={workers}: {len(read):,} images, each once: "
          f"{'exact' if exact else 'DIFFERENT'}", flush=True)


def check_cold(report: Report, stores: dict, repeats: int) -> None:
    stores[FLOOR].close()  # its memory map would keep the .npy's pages in the cache
    floor_path = stores[FLOOR].batch_path / "images.npy"
    mapped = np.load(floor_path, mmap_mode="r")
    offset, image_bytes, count = mapped.offset, mapped[0].nbytes, len(mapped)
    del mapped
    rng = np.random.default_rng(2)
    descriptor = [-1]

    def pread_setup() -> None:
        if descriptor[0] >= 0:
            os.close(descriptor[0])
        evict(floor_path)
        descriptor[0] = os.open(floor_path, os.O_RDONLY)

    def pread_sample() -> None:
        for index in rng.integers(0, count, COLD_SAMPLE).tolist():
            os.pread(descriptor[0], image_bytes, offset + index * image_bytes)

    for name in ("lmdb", "hdf5"):
        store = stores[name]
        files = store.files()

        def reopen_cold() -> None:
            store.close()  # a live map keeps its pages cached
            evict(files)
            store.batch_reader()  # opening reads the batch's description: not part of a random read

        def store_sample() -> None:
            read_each(store.batch_reader(), rng.integers(0, count, COLD_SAMPLE).tolist())

        pread_s, ours_s = paired_medians(pread_sample, store_sample, repeats, pread_setup, reopen_cold)
        report.check(f"{name} cold random read / os.pread ({ours_s / COLD_SAMPLE * 1e6:.0f} µs per image)",
                     ours_s / pread_s, 2.0)
    os.close(descriptor[0])


if __name__ == "__main__":
    sys.exit(main())
