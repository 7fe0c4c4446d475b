"""Measurements at scale: writing more images than fit in memory, and converting on a Dask cluster.

Peak memory is measured in a fresh process per write (``python -m helpers.scale write ...``), so that what
earlier measurements left in this one does not count: its peak resident set (the kernel's high-water mark,
VmHWM) beside its resident set just before the write began, and the size of the data written.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from helpers.convert import SyntheticSource, convert, dask_client
from helpers.errors import CorruptStoreError
from helpers.stores import open_store, store_class

CHUNK_IMAGES = 10_000  # images per chunk given to store_chunks: 30 MB of CIFAR-shaped images
DISTINCT_IMAGES = 10_000  # synthetic images made once and repeated: making a million takes minutes


def resident_bytes() -> tuple[int, int]:
    """(resident set now, its peak so far) of this process, in bytes."""
    fields = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    peak = fields.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return fields.get("VmRSS", peak), peak


def source_chunks(source: SyntheticSource, chunk_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, source.count, chunk_size):
        yield source.read(start, min(start + chunk_size, source.count))


def write_here(
    method: str, root: str | os.PathLike[str], n_images: int, *, chunk_size: int = CHUNK_IMAGES,
    distinct: int = DISTINCT_IMAGES, declare_total: bool = True, compression: str | None = None,
) -> dict:
    """Write ``n_images`` synthetic images with ``store_chunks`` in this process; seconds and memory."""
    store = open_store(method, root, compression=compression)
    source = SyntheticSource(n_images, distinct=min(distinct, n_images))
    image_bytes = source.read(0, 1)[0][0].nbytes  # the repeated images are made before clock and baseline
    baseline, _ = resident_bytes()
    start = time.perf_counter()
    store.store_chunks(source_chunks(source, chunk_size), total=n_images if declare_total else None)
    seconds = time.perf_counter() - start
    _, peak = resident_bytes()
    return {
        "method": method, "n_images": n_images, "seconds": seconds, "baseline_rss": baseline,
        "peak_rss": peak, "data_bytes": n_images * image_bytes, "chunk_bytes": chunk_size * image_bytes,
    }


def write_in_subprocess(
    method: str, root: str | os.PathLike[str], n_images: int, *, chunk_size: int = CHUNK_IMAGES,
    distinct: int = DISTINCT_IMAGES, declare_total: bool = True, compression: str | None = None,
) -> dict:
    """``write_here`` in a fresh Python process, so that its peak memory is the write's own."""
    command = [sys.executable, "-m", "helpers.scale", "write", method, str(root), str(n_images),
               "--chunk-size", str(chunk_size), "--distinct", str(distinct)]
    if not declare_total:
        command.append("--no-total")
    if compression:
        command += ["--compression", compression]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"writing {n_images} images with {method} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def verify_streaming(
    method: str, root: str | os.PathLike[str], n_images: int, *, chunk_size: int = CHUNK_IMAGES,
    distinct: int = DISTINCT_IMAGES,
) -> None:
    """CorruptStoreError unless the store holds exactly the synthetic images ``write_here`` wrote, compared
    chunk by chunk so that the whole batch is never in memory."""
    store = open_store(method, root)
    source = SyntheticSource(n_images, distinct=min(distinct, n_images))
    try:
        if len(store) != n_images:
            raise CorruptStoreError(f"{root}: holds {len(store)} images, {n_images} were written")
        for start in range(0, n_images, chunk_size):
            stop = min(start + chunk_size, n_images)
            images, labels = store.read_indices(np.arange(start, stop))
            expected_images, expected_labels = source.read(start, stop)
            if not (np.array_equal(images, expected_images) and np.array_equal(labels, expected_labels)):
                raise CorruptStoreError(f"{root}: images {start} to {stop - 1} differ from what was written")
    finally:
        store.close()


def conversion_seconds(
    method: str, root: str | os.PathLike[str], n_images: int, workers: int, *,
    distinct: int = DISTINCT_IMAGES, chunk_size: int = CHUNK_IMAGES, compression: str | None = None,
) -> float:
    """Seconds ``convert`` takes to write ``n_images`` synthetic images on a local cluster of ``workers``
    processes, the cluster started before the clock (and one small untimed conversion first, to warm it)."""
    distinct = min(distinct, n_images)
    with dask_client(None, workers) as client:
        warm_up = SyntheticSource(min(n_images, 2 * chunk_size), distinct=distinct)
        convert(warm_up, method, root, client=client, chunk_size=chunk_size, compression=compression,
                progress=False)
        start = time.perf_counter()
        convert(SyntheticSource(n_images, distinct=distinct), method, root, client=client,
                chunk_size=chunk_size, compression=compression, progress=False)
        return time.perf_counter() - start


def parallel_writers(method: str) -> bool:
    """Whether separate processes can write ``method``'s batch at once (it is made of pieces)."""
    return bool(store_class(method).piece_images)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.scale")
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write", help="store_chunks of synthetic images; prints seconds and memory (JSON)")
    write.add_argument("method")
    write.add_argument("root", type=Path)
    write.add_argument("n_images", type=int)
    write.add_argument("--chunk-size", type=int, default=CHUNK_IMAGES)
    write.add_argument("--distinct", type=int, default=DISTINCT_IMAGES)
    write.add_argument("--no-total", dest="declare_total", action="store_false")
    write.add_argument("--compression", default=None)
    args = parser.parse_args(argv)
    result = write_here(args.method, args.root, args.n_images, chunk_size=args.chunk_size,
                        distinct=args.distinct, declare_total=args.declare_total, compression=args.compression)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
