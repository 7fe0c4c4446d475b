"""Chapter 07, at scale (notebooks/07-at-scale.ipynb): writing more images than fit in memory, and converting
on a Dask cluster. Its tables go to the results as ``at_scale_writes`` and ``at_scale_conversions``.

Peak memory is measured in a fresh process per write (``python -m helpers.report.chapters.at_scale write ...``), so that what
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
import pandas as pd
from matplotlib.figure import Figure

from helpers.convert import SyntheticSource, convert, dask_client
from helpers.core import space
from helpers.core.errors import CorruptStoreError
from helpers.core.files import remove
from helpers.core.measure import disk_usage, format_bytes
from helpers.loader import batches
from helpers.report import results
from helpers.report.measuring import checked_methods
from helpers.report.style import method_color, method_label, ordered_methods, save
from helpers.stores import estimate_bytes, open_store, store_class

WRITES_TABLE = "at_scale_writes"
CONVERSIONS_TABLE = "at_scale_conversions"

CHUNK_IMAGES = 10_000  # images per chunk given to store_chunks: 30 MB of CIFAR-shaped images
DISTINCT_IMAGES = 10_000  # synthetic images made once and repeated: making a million takes minutes
WARM_UP_IMAGES = 2_000  # converted untimed first: two pieces of the PNG store, so that both workers start


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
    command = [sys.executable, "-m", "helpers.report.chapters.at_scale", "write", method, str(root), str(n_images),
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
    distinct: int = DISTINCT_IMAGES, starts: Sequence[int] | None = None,
) -> None:
    """CorruptStoreError unless the store holds exactly the synthetic images ``write_here`` wrote, compared
    chunk by chunk so that the whole batch is never in memory: every chunk, or those beginning at ``starts``."""
    store = open_store(method, root)
    source = SyntheticSource(n_images, distinct=min(distinct, n_images))
    try:
        if len(store) != n_images:
            raise CorruptStoreError(f"{root}: holds {len(store)} images, {n_images} were written")
        # Every chunk through the loader in order, as a reader at scale does; some through read_indices.
        read = (zip(range(0, n_images, chunk_size), batches(store, chunk_size, shuffle=False)) if starts is None
                else ((start, store.read_indices(np.arange(start, min(start + chunk_size, n_images))))
                      for start in starts))
        for start, (images, labels) in read:
            stop = start + len(images)
            expected_images, expected_labels = source.read(start, stop)
            if not (np.array_equal(images, expected_images) and np.array_equal(labels, expected_labels)):
                raise CorruptStoreError(f"{root}: images {start} to {stop - 1} differ from what was written")
    finally:
        store.close()


def conversion_seconds(
    method: str, root: str | os.PathLike[str], n_images: int, client: object, *,
    distinct: int = DISTINCT_IMAGES, chunk_size: int = CHUNK_IMAGES, compression: str | None = None,
) -> float:
    """Seconds ``convert`` takes to write ``n_images`` synthetic images on the cluster of ``client``; every
    worker makes the repeated images first, and a small untimed conversion imports the method's libraries."""
    source = SyntheticSource(n_images, distinct=min(distinct, n_images))
    client.run(source.read, 0, 1)  # every worker makes the repeated images before the clock
    warm_up = SyntheticSource(min(n_images, WARM_UP_IMAGES), distinct=source.distinct)
    convert(warm_up, method, root, client=client, chunk_size=chunk_size, compression=compression, progress=False)
    start = time.perf_counter()
    convert(source, method, root, client=client, chunk_size=chunk_size, compression=compression, progress=False)
    return time.perf_counter() - start


def conversions(
    methods: Sequence[str | tuple[str, str | None]], n_images: int, work_dir: str | os.PathLike[str],
    workers: Sequence[int] = (1, 2),
) -> pd.DataFrame:
    """One row per method and number of workers: seconds ``convert`` took on a local cluster of that many
    processes (started before the clock, once per size), and whether the method's batch is written by many
    workers at once (pieces) or by one writer. A method may be given as (method, compression)."""
    rows = []
    for count in workers:
        with dask_client(None, count) as client:
            for entry in methods:
                method, compression = entry if isinstance(entry, tuple) else (entry, None)
                root = Path(work_dir) / f"convert-{method}-{count}"
                seconds = conversion_seconds(method, root, n_images, client, compression=compression)
                rows.append({"method": method, "compression": compression or "", "workers": count,
                             "n_images": n_images, "seconds": seconds, "parallel_writers": parallel_writers(method)})
                remove(root)
    table = pd.DataFrame(rows)
    one = table[table["workers"] == min(workers)].set_index("method")["seconds"]
    table["speed_up"] = table["method"].map(one) / table["seconds"]
    return table


def conversion_plan(methods: Sequence[str], codec: str = "png") -> list[tuple[str, str | None]]:
    """(method, compression) for the chapter's conversions: each method with ``codec`` where it takes it,
    so that the workers have real encoding to share, else with its raw values."""
    return [(method, codec if codec in store_class(method).compressions else None) for method in methods]


def parallel_writers(method: str) -> bool:
    """Whether separate processes can write ``method``'s batch at once (it is made of pieces)."""
    return store_class(method).writes_pieces


# --- the at-scale chapter -------------------------------------------------------------------------------

CONVERSION_IMAGES = 20_000  # at most this many images per conversion: two cluster sizes, every method, PNG
PROBE_IMAGES = 10_000  # images written first to estimate each method's time at full scale
WRITE_BUDGET_SECONDS = 60.0  # a method whose estimated write takes longer is not written at full scale


def scale_writes(
    methods: Sequence[str], scale_images: int, work_dir: str | os.PathLike[str], *,
    budget_seconds: float = WRITE_BUDGET_SECONDS, probe_images: int = PROBE_IMAGES,
) -> pd.DataFrame:
    """One row per method: ``store_chunks`` of ``scale_images`` synthetic images in a fresh process, with
    its seconds, peak and baseline memory, and the data's size; or why it was skipped.

    Each method first writes ``probe_images`` (also the untimed first run); one whose estimated full write
    exceeds ``budget_seconds``, or whose full batch would not fit the free disk space (the store's own
    estimate, on the high side, against what is free once the probe's batch is gone), is skipped and the
    reason given, as is one that does not stream. The first, a middle and the last chunk of every full write
    are read back and compared (``verify_streaming`` checks every chunk, in the benchmark).
    """
    rows = []
    image_shape = SyntheticSource(1).read(0, 1)[0].shape[1:]
    for method in methods:
        if not store_class(method).streams():
            rows.append({"method": method, "n_images": scale_images, "streams": False, "estimated_seconds": np.nan,
                         "seconds": np.nan, "baseline_rss": np.nan, "peak_rss": np.nan, "data_bytes": np.nan,
                         "skipped": "its store_chunks still gathers the chunks in memory, so it cannot take a "
                                    "batch larger than RAM"})
            continue
        root = Path(work_dir) / f"at-scale-{method}"
        probe = write_in_subprocess(method, root, min(probe_images, scale_images))
        estimate = probe["seconds"] * scale_images / probe["n_images"]
        row = {"method": method, "n_images": scale_images, "streams": store_class(method).streams(),
               "estimated_seconds": estimate, "seconds": np.nan, "baseline_rss": np.nan, "peak_rss": np.nan,
               "data_bytes": scale_images * probe["data_bytes"] // probe["n_images"], "skipped": ""}
        needed = estimate_bytes(method, scale_images, image_shape, np.uint8)
        free = space.free_bytes(root) + disk_usage(root).allocated
        if estimate > budget_seconds:
            row["skipped"] = (f"estimated {estimate:.0f} s from {probe['n_images']:,} images "
                              f"({probe['n_images'] / probe['seconds']:,.0f} images/s), over the "
                              f"{budget_seconds:.0f} s budget")
        elif needed > free:
            row["skipped"] = (f"its batch may need {format_bytes(needed)} of disk and {format_bytes(free)} is "
                              f"free in {Path(work_dir).resolve()}: free some space or set work_dir to a larger "
                              f"disk to measure it")
        else:  # a probe of the whole batch (a small scale_images) is the measurement itself
            result = probe if probe["n_images"] == scale_images else write_in_subprocess(method, root, scale_images)
            row.update(seconds=result["seconds"], baseline_rss=result["baseline_rss"], peak_rss=result["peak_rss"])
            spot_check(method, root, scale_images)
        remove(root)
        rows.append(row)
    return pd.DataFrame(rows)


def spot_check(method: str, root: Path, n_images: int, chunk_size: int = 1_000) -> None:
    """CorruptStoreError unless the first, a middle and the last ``chunk_size`` images read back exactly."""
    starts = sorted({0, max(0, n_images // 2 - chunk_size), max(0, n_images - chunk_size)})
    verify_streaming(method, root, n_images, chunk_size=chunk_size, starts=starts)


def conversion_images(scale_images: int) -> int:
    """Images converted per method and cluster size in the chapter: ``scale_images`` up to a cap that keeps
    the chapter within its time budget (a PNG conversion of a million images takes minutes per run)."""
    return min(int(scale_images), CONVERSION_IMAGES)


def streaming_methods(methods: Sequence[str]) -> list[str]:
    """The ``methods`` whose ``store_chunks`` writes with bounded memory."""
    return [method for method in methods if store_class(method).streams()]


def measure_writes(methods: Sequence[str] | None, scale_images: int, *, work_dir: str | os.PathLike[str],
                   results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """``scale_writes`` of the methods (None: every registered one) and the floor, into the results."""
    writes = scale_writes(checked_methods(methods, floor=True), scale_images, work_dir)
    results.write_table(results_dir, WRITES_TABLE, writes)
    return writes


def measure_conversions(methods: Sequence[str] | None, scale_images: int, *, work_dir: str | os.PathLike[str],
                        results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """``conversions`` of the methods (None: every registered one but the floor) as ``conversion_plan`` says,
    at ``conversion_images(scale_images)``, into the results."""
    plan = conversion_plan(checked_methods(methods, floor=False))
    table = conversions(plan, conversion_images(scale_images), work_dir)
    results.write_table(results_dir, CONVERSIONS_TABLE, table)
    return table


def conversion_table(table: pd.DataFrame) -> pd.DataFrame:
    """The conversions as the chapter shows them."""
    return table[["method", "compression", "workers", "n_images", "seconds", "speed_up", "parallel_writers"]]


def writes_markdown(writes: pd.DataFrame) -> str:
    """The write table in words: what was written, the memory it took beside the data, what was skipped."""
    lines = ["| method | images | seconds | images/s | data | peak RSS | RSS growth | peak RSS / data |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in writes.itertuples():
        if row.skipped:
            continue
        growth = row.peak_rss - row.baseline_rss
        lines.append(f"| {row.method} | {row.n_images:,} | {row.seconds:.1f} | {row.n_images / row.seconds:,.0f} | "
                     f"{format_bytes(row.data_bytes)} | {format_bytes(row.peak_rss)} | {format_bytes(growth)} | "
                     f"{row.peak_rss / row.data_bytes:.2f} |")
    skipped = writes[writes["skipped"] != ""]
    notes = [f"- **{row.method}** was not written at {row.n_images:,} images: {row.skipped}."
             for row in skipped.itertuples()]
    written = writes[writes["skipped"] == ""]
    if len(written):
        worst = written.loc[(written["peak_rss"] - written["baseline_rss"]).idxmax()]
        notes.append(
            f"- The largest growth of memory during a write was {format_bytes(worst.peak_rss - worst.baseline_rss)} "
            f"({worst.method}), for {format_bytes(worst.data_bytes)} of images: memory follows the chunk "
            f"({format_bytes(CHUNK_IMAGES * worst.data_bytes // worst.n_images)}) and the method's buffers, not "
            "the size of the batch."
        )
    notes += [f"- {store_class(method).writer_memory_note}" for method in ordered_methods(written["method"])
              if store_class(method).writer_memory_note]
    return "\n".join(lines + [""] + notes)


def conversions_markdown(table: pd.DataFrame, writes: pd.DataFrame | None = None) -> str:
    """Which methods gained from more workers, and why, from the measured seconds.

    For a single-writer method the time its writer alone needs for the same images (from the
    ``store_chunks`` rate in ``writes``) is set beside the conversion's: when the two are close, the writer
    is the limit and more workers cannot help.
    """
    most = int(table["workers"].max())
    lines = []
    for method, rows in table.groupby("method", sort=False):
        fastest = rows[rows["workers"] == most].iloc[0]
        codec = fastest.compression if isinstance(fastest.compression, str) and fastest.compression else ""
        label = f"{method} ({codec} values)" if codec else f"{method} (raw)"
        text = f"- **{label}**: {most} workers {fastest.speed_up:.2f}x one worker"
        if parallel_writers(method):
            text += ("; its batch is made of independent pieces, each written whole by one worker, so the "
                     "workers encode and write at once and the speed-up is bounded by the cores they share.")
        elif codec and store_class(method).encodes_each_image:
            text += (f"; one writer, but the workers encode every image with {codec} before handing the chunks "
                     "over, so the costly part runs in parallel and the writer only puts the bytes in place.")
        else:
            text += "; its batch is one file with one writer, so the workers only make the chunks"
            written = None if writes is None else writes[(writes["method"] == method) & (writes["skipped"] == "")]
            if written is not None and len(written):
                rate = float(written["n_images"].iloc[0] / written["seconds"].iloc[0])
                alone = fastest.n_images / rate
                text += (f": writing {fastest.n_images:,} images alone takes the writer about {alone:.2f} s "
                         f"(at its store_chunks rate of {rate:,.0f} images/s), "
                         f"{alone / fastest.seconds:.0%} of the conversion's {fastest.seconds:.2f} s")
                text += (", so the writer is the whole of it and more workers cannot help" if alone >= 0.9 * fastest.seconds
                         else "; the rest is making the images and moving them from the workers, which more "
                              "workers share")
            text += "."
        lines.append(text)
    return "\n".join(lines)


def at_scale_memory_plot(writes: pd.DataFrame, figures_dir: str | os.PathLike[str]) -> Figure:
    """Peak memory of each method's ``store_chunks`` beside the size of the data it wrote (``scale_writes``)."""
    written = writes[writes["skipped"] == ""]
    methods = ordered_methods(list(written["method"]))
    figure = Figure(figsize=(7, 3.6))
    axes = figure.add_subplot()
    positions = np.arange(len(methods))
    rows = written.set_index("method").loc[methods]
    mib = 2.0**20
    axes.bar(positions - 0.2, rows["data_bytes"] / mib, width=0.4, color="#cccccc", label="data written")
    axes.bar(positions + 0.2, rows["peak_rss"] / mib, width=0.4, color=[method_color(m) for m in methods],
             label="peak resident memory of the writer")
    axes.set_xticks(positions, [method_label(m) for m in methods])
    axes.set_ylabel("MiB")
    axes.set_title(f"store_chunks of {int(writes['n_images'].iloc[0]):,} images: memory beside data")
    if methods:
        axes.legend(frameon=False)
    else:
        axes.text(0.5, 0.5, "no method was written at this size: the table's notes say why",
                  ha="center", va="center", transform=axes.transAxes)
    save(figure, figures_dir, "at_scale_memory")
    return figure


def conversion_speed_up_plot(table: pd.DataFrame, figures_dir: str | os.PathLike[str]) -> Figure:
    """Seconds of a Dask conversion per method and number of workers (``conversions``)."""
    methods = ordered_methods(list(table["method"]))
    counts = sorted(table["workers"].unique())
    figure = Figure(figsize=(7, 3.6))
    axes = figure.add_subplot()
    width = 0.8 / len(counts)
    for offset, count in enumerate(counts):
        rows = table[table["workers"] == count].set_index("method").loc[methods]
        axes.bar(np.arange(len(methods)) + (offset - (len(counts) - 1) / 2) * width, rows["seconds"], width=width,
                 color=[method_color(m) for m in methods], alpha=0.45 + 0.55 * offset / max(1, len(counts) - 1),
                 label=f"{count} worker{'s' if count > 1 else ''}")
    axes.set_xticks(np.arange(len(methods)), [method_label(m) for m in methods])
    axes.set_ylabel("seconds")
    axes.set_title(f"Converting {int(table['n_images'].iloc[0]):,} images on a local Dask cluster")
    axes.legend(frameon=False)
    save(figure, figures_dir, "conversion_speed_up")
    return figure


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.report.chapters.at_scale")
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
