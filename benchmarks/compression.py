"""Compression targets: lossless codecs read back exactly, 16-bit scans shrink 3x, reads stay cheap.

On 1,000 CIFAR-shaped images (``helpers.datasets.synthetic``) and 200 synthetic 512x512 16-bit scans
(``helpers.datasets.synthetic_scans``, which compress like real CT slices), every registered method stores the images with each lossless codec it accepts, and this checks that:

- every lossless codec reads back exactly through every method that accepts it (both datasets);
- on the scans, the best lossless codec reaches a ratio of at least 3x (raw pixels / file bytes);
- a warm shuffled epoch (every image once, in a random order, in mini-batches of 256 through
  ``helpers.loader.read_epoch``, as the report times it) with LMDB and zstd takes at most 2x LMDB without a codec on CIFAR, and with HDF5 and
  Blosc at most 3x HDF5 without a codec on the scans.

Each shuffled epoch in the table is run once untimed, then timed ``--repeats`` times (or until 0.2 s). The
two read-cost targets time their pair of stores in alternation (raw, compressed, raw, ...; ``--pairs``
times each after one untimed run of each) and compare the medians, so that load from other processes, which
changes over seconds, falls on both alike; the LMDB pair has a third arm, zstd decoding the same mini-batches
from bytes in memory (``Codec.decode_many``, no store), which shows how much of LMDB's cost is zstd's own
and so how low any LMDB store of zstd values can go. Everything is measured in this run. It prints the ratio and read time of every method and codec, each target met or
missed, and exits 1 if one was missed.

    .venv/bin/python benchmarks/compression.py [--repeats 3] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import datasets, stores  # noqa: E402
from helpers.codecs import get_codec, holds, same_codec  # noqa: E402
from helpers.core.measure import disk_usage, format_seconds, time_call  # noqa: E402
from helpers.loader import BATCH_SIZE, batch_bounds, epoch_order, read_epoch  # noqa: E402
from helpers.report.chapters.compression import variant_name  # noqa: E402

CIFAR_IMAGES = 1000
SCANS = 200
SCAN_SIZE = 512
#: Every lossless codec or filter some method accepts.
LOSSLESS = ("zstd", "blosc", "gzip", "lzf", "png", "jpegls", "jpeg2000", "webp")
SCANS_RATIO = 3.0
LMDB_ZSTD_SLOWDOWN = 2.0
HDF5_BLOSC_SLOWDOWN = 3.0


def measure(dataset: str, images: np.ndarray, work: Path, repeats: int) -> list[dict]:
    """Each method without a codec and with every lossless codec it accepts: exact, ratio, shuffled epoch."""
    labels = np.arange(len(images), dtype=np.int64)
    rows = []
    for method in stores.names():
        cls = stores.store_class(method)
        own = [c for c in LOSSLESS if c in cls.compressions and not same_codec(c, cls.native_compression)]
        for compression in (None, *own):
            if not holds(compression, images.shape[1:], images.dtype):
                continue
            store = stores.open_store(method, work / dataset / variant_name(method, compression),
                                      compression=compression)
            store.store_many(images, labels)
            back, back_labels = store.read_many(len(images))
            epoch = time_call(lambda: read_epoch(store, BATCH_SIZE, seed=0), repeats=repeats)
            rows.append({
                "dataset": dataset, "method": method,
                "codec": compression or cls.native_compression or "none",
                "exact": bool(np.array_equal(back, images) and np.array_equal(back_labels, labels)),
                "ratio": images.nbytes / disk_usage(store.batch_path).apparent,
                "epoch": epoch.median,
            })
            store.clear()
            store.close()
    return rows


def interleaved_ratio(
    method: str, compression: str, images: np.ndarray, work: Path, pairs: int, codec_alone: bool = False
) -> dict[str, float]:
    """Medians of shuffled epochs of ``method`` with ``compression`` and without, timed in alternation:
    "compressed" / raw and the raw seconds. With ``codec_alone`` (for a method that stores the codec's own
    bytes, as LMDB does), a third arm in the same alternation decodes the same mini-batches from bytes in
    memory with the codec alone, no store: "codec alone" / raw, the floor no store of this codec goes under."""
    labels = np.arange(len(images), dtype=np.int64)
    raw = stores.open_store(method, work / f"pair-{method}", compression=None)
    compressed = stores.open_store(method, work / f"pair-{method}-{compression}", compression=compression)
    arms = {"raw": lambda: read_epoch(raw, BATCH_SIZE, seed=1),
            "compressed": lambda: read_epoch(compressed, BATCH_SIZE, seed=1)}
    if codec_alone:
        image_codec = get_codec(compression)
        order = epoch_order(len(images), seed=1)  # the order read_epoch(seed=1) reads
        encoded = [[image_codec.encode(image) for image in images[order[start:stop]]]
                   for start, stop in batch_bounds(len(images), BATCH_SIZE, drop_last=False)]
        arms["codec alone"] = lambda: [image_codec.decode_many(payloads, images.shape[1:], images.dtype)
                                       for payloads in encoded]
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    try:
        for store in (raw, compressed):
            store.store_many(images, labels)
        for run in arms.values():
            run()  # untimed: opens the readers, warms the page cache
        for _ in range(pairs):
            for name, run in arms.items():
                started = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - started)
    finally:
        for store in (raw, compressed):
            store.clear()
            store.close()
    raw_median = statistics.median(seconds["raw"])
    return {name: statistics.median(times) / raw_median for name, times in seconds.items()} | {"seconds": raw_median}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=31, help="alternated runs of each store for the read-cost targets")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the stores go (default: a temporary folder)")
    args = parser.parse_args()

    cifar = datasets.synthetic(CIFAR_IMAGES).images
    scans = datasets.synthetic_scans(SCANS, size=SCAN_SIZE).images
    print(f"CIFAR: {len(cifar):,} images {cifar.shape[1:]} uint8 from helpers.datasets.synthetic")
    print(f"scans: {len(scans):,} images {scans.shape[1:]} {scans.dtype} from helpers.datasets.synthetic_scans")
    print(f"shuffled epoch: mini-batches of {BATCH_SIZE} through read_indices, warm, median of "
          f"{args.repeats}+ runs after an untimed one\n")
    with tempfile.TemporaryDirectory(prefix="compression-", dir=args.work_dir) as work:
        rows = measure("CIFAR", cifar, Path(work), args.repeats) + measure("scans", scans, Path(work), args.repeats)
        lmdb = interleaved_ratio("lmdb", "zstd", cifar, Path(work), args.pairs, codec_alone=True)
        hdf5 = interleaved_ratio("hdf5", "blosc", scans, Path(work), args.pairs)

    header = f"{'dataset':<7} {'method':<7} {'codec':<9} {'exact':>5} {'ratio':>7} {'epoch':>10} {'per image':>10}"
    print(header)
    print("-" * len(header))
    for row in rows:
        count = CIFAR_IMAGES if row["dataset"] == "CIFAR" else SCANS
        print(f"{row['dataset']:<7} {row['method']:<7} {row['codec']:<9} {'yes' if row['exact'] else 'NO':>5} "
              f"{row['ratio']:>6.2f}x {format_seconds(row['epoch']):>10} {format_seconds(row['epoch'] / count):>10}")

    inexact = [f"{r['dataset']} {r['method']}+{r['codec']}" for r in rows if not r["exact"]]
    best_scan = max((r for r in rows if r["dataset"] == "scans"), key=lambda r: r["ratio"])
    targets = [
        (not inexact, f"every lossless codec reads back exactly through every method that accepts it "
                      f"({len(rows)} pairs{'; NOT: ' + ', '.join(inexact) if inexact else ''})"),
        (best_scan["ratio"] >= SCANS_RATIO, f"scans, best lossless: {best_scan['method']} with {best_scan['codec']} "
                                           f"{best_scan['ratio']:.2f}x (target >= {SCANS_RATIO:.0f}x)"),
        (lmdb["compressed"] <= LMDB_ZSTD_SLOWDOWN,
         f"CIFAR shuffled epoch, LMDB zstd / LMDB raw: {lmdb['compressed']:.2f}x, raw {format_seconds(lmdb['seconds'])} "
         f"(target <= {LMDB_ZSTD_SLOWDOWN:.0f}x; {args.pairs} alternated runs each; zstd decoding the same "
         f"mini-batches from memory alone: {lmdb['codec alone']:.2f}x)"),
        (hdf5["compressed"] <= HDF5_BLOSC_SLOWDOWN,
         f"scans shuffled epoch, HDF5 blosc / HDF5 raw: {hdf5['compressed']:.2f}x, raw {format_seconds(hdf5['seconds'])} "
         f"(target <= {HDF5_BLOSC_SLOWDOWN:.0f}x; {args.pairs} alternated runs each)"),
    ]
    print()
    for met, text in targets:
        print(f"{'met   ' if met else 'MISSED'}  {text}")
    return 0 if all(met for met, _ in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
