"""Chapter 06, compression (notebooks/06-compression.ipynb): what each byte saved costs to write and to read,
per method and codec.

Each measured *variant* is a method with one ``compression=`` (``"lmdb+zstd"``; the method alone is its
baseline without a codec, ``"disk"`` being PNG at Pillow's level). Its rows go to the results table
``compression`` (``helpers.report.results``) with the variant in the ``method`` column: ``store_many`` (with the
allocated bytes of the batch), ``read_many`` (sequential) and ``read_epoch`` (every image once in a
random order, in mini-batches of ``batch_size`` through ``store.read_indices``), all warm. Lossless
variants are checked to read back exactly before they are timed; lossy ones get their PSNR, kept with the
raw bytes of one image in the results table ``compression_quality``. The trade-off of every variant, per
dataset, is the results table ``compression_trade_off``, from which the conclusions choose their codecs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from helpers import codecs, loader, stores
from helpers.core.measure import check_repeats, disk_usage, format_bytes, format_seconds, time_call
from helpers.report import results
from helpers.report.measuring import progress_bar, time_read, timing_rows, unpack, verify_round_trip
from helpers.report.parameters import check_compressions, chosen_methods
from helpers.report.style import method_color, method_label, ordered_methods, save

EXPERIMENT = "compression"
QUALITY_TABLE = "compression_quality"
QUALITY_COLUMNS = ["method", "dataset", "image_bytes", "psnr", "skipped"]
TRADE_OFF_TABLE = "compression_trade_off"
TRADE_OFF_COLUMNS = ["method", "codec", "lossy", "image_bytes", "bytes_per_image", "ratio", "store_per_image",
                     "read_per_image", "shuffled_per_image", "psnr", "pareto"]
SEPARATOR = "+"
#: The ``dataset`` of the chapter's rows: short names the tables and conclusions show.
CIFAR = "CIFAR"
SCANS = "16-bit scans"
#: Scans measured next to CIFAR, per CIFAR image measured (10 for 2,000): a scan is 170 times larger, and
#: its PNG takes about 0.1 s to write.
SCANS_PER_IMAGE = 1 / 250
MIN_SCANS = 4


# -- what is measured ------------------------------------------------------------------------------------
def variant_name(method: str, compression: str | None) -> str:
    return method if compression is None else f"{method}{SEPARATOR}{compression}"


def split_variant(name: str) -> tuple[str, str | None]:
    """(method, compression) of a variant name; compression None for a method's baseline."""
    method, _, compression = name.partition(SEPARATOR)
    return method, compression or None


def variants(methods: Sequence[str] | None, compressions: Sequence[str],
             floor: bool = True) -> list[tuple[str, str | None]]:
    """(method, compression) pairs: each method's baseline, then each of ``compressions`` it accepts (in the
    order given), then the NumPy floor. A codec is measured once per method however it is named (``"png"``
    and ``"png:6"`` are one codec): the method's own default is its baseline, and a second name for a codec
    already listed is skipped. Each compression is named as the stores record it (trimmed, lower case), so
    that a variant's name and its store's ``compression`` agree.

    UnknownCodecError if no method takes one of ``compressions``, or its level is out of range.
    """
    check_compressions(compressions)
    specs = [codecs.parse(name).spec for name in compressions]
    methods = chosen_methods(methods)
    pairs: list[tuple[str, str | None]] = []
    for method in methods:
        cls = stores.store_class(method)
        kept: list[str] = []
        for spec in specs:
            taken = codecs.family(spec) in cls.compressions
            if taken and not any(codecs.same_codec(spec, seen) for seen in (cls.native_compression, *kept)):
                kept.append(spec)
        pairs += [(method, None)] + [(method, spec) for spec in kept]
    if floor and stores.FLOOR not in methods:
        pairs.append((stores.FLOOR, None))
    return pairs


# -- the experiment --------------------------------------------------------------------------------------
def run_compression(
    images: np.ndarray | object,
    labels: np.ndarray | None,
    methods: Sequence[str] | None,
    compressions: Sequence[str],
    *,
    repeats: int,
    work_dir: str | os.PathLike[str],
    batch_size: int = loader.BATCH_SIZE,
    dataset: str = "",
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time every variant of ``methods`` x ``compressions`` on the whole batch ``images``, warm.

    Returns (results rows, quality rows): the rows of ``helpers.report.results`` (variant in ``method``) and one
    row per variant with the raw bytes of one image, its PSNR (``inf`` for lossless ones, checked to read
    back exactly), or why it was skipped (a codec that cannot hold the images).
    """
    images, labels, dataset = unpack(images, labels, dataset)
    check_repeats(repeats)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    rows: list[dict] = []
    quality: list[dict] = []
    for method, compression in progress_steps(variants(methods, compressions), progress):
        name = variant_name(method, compression)
        measured = {"method": name, "dataset": dataset, "image_bytes": images[0].nbytes, "psnr": math.nan,
                    "skipped": ""}
        if not codecs.holds(compression, images.shape[1:], images.dtype):
            measured["skipped"] = f"{compression} cannot hold {images.dtype.name} images of shape {images.shape[1:]}"
            quality.append(measured)
            continue
        store = stores.open_store(method, Path(work_dir) / EXPERIMENT / name.replace(":", "-"), compression=compression)
        try:
            rows += measure_variant(store, name, images, labels, batch_size, repeats, dataset)
            measured["psnr"] = measured_psnr(store, images, labels)
        finally:
            store.clear()  # one variant on disk at a time
        quality.append(measured)
    return pd.DataFrame(rows, columns=results.COLUMNS), pd.DataFrame(quality, columns=QUALITY_COLUMNS)


def measure_variant(
    store: stores.Store, name: str, images: np.ndarray, labels: np.ndarray,
    batch_size: int, repeats: int, dataset: str,
) -> list[dict]:
    n = len(images)
    common = dict(experiment=EXPERIMENT, method=name, n_images=n, durable=store.durable, dataset=dataset)
    timing = time_call(lambda: store.store_many(images, labels), repeats=repeats, setup=store.clear)
    rows = timing_rows(timing, operation="store_many", cache="", usage=disk_usage(store.batch_path), **common)
    reads = {"read_many": lambda: store.read_many(n), "read_epoch": lambda: loader.read_epoch(store, batch_size)}
    for operation, read in reads.items():
        rows += timing_rows(time_read(store, read, "warm", repeats), operation=operation, cache="warm",
                            usage=None, **common)
    return rows


def measured_psnr(store: stores.Store, images: np.ndarray, labels: np.ndarray) -> float:
    """The batch's PSNR as read back (inf: identical, checked); CorruptStoreError if a lossless one differs."""
    if not codecs.is_lossy(store.compression):
        verify_round_trip(store, images, labels, write=False)
        return math.inf
    back, _ = store.read_many(len(images))
    return codecs.psnr(images, back)


def progress_steps(steps: list[tuple[str, str | None]], enabled: bool):
    return progress_bar(steps, enabled, desc="methods x codecs", unit="variant",
                        label=lambda step: variant_name(*step))


# -- what the notebook calls -----------------------------------------------------------------------------
def start(results_dir: str | os.PathLike[str]) -> None:
    """Remove the chapter's tables, so a run starts from no rows."""
    for table in (EXPERIMENT, QUALITY_TABLE, TRADE_OFF_TABLE):
        results.reset(results_dir, table)


def run_and_save(
    data: object, methods: Sequence[str] | None, compressions: Sequence[str], *, dataset: str, repeats: int,
    work_dir: str | os.PathLike[str], results_dir: str | os.PathLike[str], batch_size: int = loader.BATCH_SIZE,
) -> None:
    """``run_compression`` on a Dataset, its rows and quality added to the results (``save_measurements``)."""
    rows, quality = run_compression(data, None, methods, compressions, repeats=repeats, batch_size=batch_size,
                                    work_dir=work_dir, dataset=dataset)
    save_measurements(results_dir, rows, quality)


def save_measurements(results_dir: str | os.PathLike[str], rows: pd.DataFrame, quality: pd.DataFrame) -> None:
    """Add the timing rows and quality rows of ``run_compression`` to the chapter's results tables, and
    write the trade-off table of every dataset measured so far."""
    results.append_rows(results_dir, EXPERIMENT, rows)
    try:
        quality = pd.concat([read_quality(results_dir), quality], ignore_index=True)
    except FileNotFoundError:
        pass
    results.write_table(results_dir, QUALITY_TABLE, quality)
    summary, quality = read(results_dir)
    tables = [table.assign(dataset=dataset) for dataset in summary["dataset"].unique()
              if not (table := trade_off_table(summary, quality, dataset)).empty]
    every = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    results.write_table(results_dir, TRADE_OFF_TABLE, every.reindex(columns=[*TRADE_OFF_COLUMNS, "dataset"]))


def load_scans(compression_images: int) -> object | None:
    """The synthetic 16-bit scans measured beside CIFAR (one per 250 CIFAR images, at least MIN_SCANS), or None,
    said in one line, when ``helpers.datasets.synthetic_scans`` does not exist in this version."""
    from helpers import datasets

    if not hasattr(datasets, "synthetic_scans"):
        print("The 16-bit scans are skipped: helpers.datasets.synthetic_scans is not available in this version.")
        return None
    return datasets.synthetic_scans(max(MIN_SCANS, int(compression_images * SCANS_PER_IMAGE)))


def read(results_dir: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary of the compression results, quality table), as trade_off_table takes them."""
    return results.read_summary(results_dir, EXPERIMENT), read_quality(results_dir)


def read_quality(results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    return results.read_table(results_dir, QUALITY_TABLE, text=("method", "dataset", "skipped"))


# -- the chapter's table and findings --------------------------------------------------------------------
def trade_off_table(summary: pd.DataFrame, quality: pd.DataFrame, dataset: str = CIFAR) -> pd.DataFrame:
    """One row per variant measured on ``dataset``: bytes per image, ratio, store and read times per image,
    PSNR, and whether it is on the Pareto front of bytes against shuffled read time."""
    summary = summary[(summary["experiment"] == EXPERIMENT) & (summary["dataset"] == dataset)]
    quality = quality[quality["dataset"] == dataset]
    rows = []
    for _, stored in summary[summary["operation"] == "store_many"].iterrows():
        name, n = stored["method"], stored["n_images"]
        method, compression = split_variant(name)
        reads = summary[summary["method"] == name].set_index("operation")["median"]
        measured = quality[quality["method"] == name].iloc[0]
        rows.append({
            "method": method,
            "codec": compression or stores.store_class(method).native_compression or "none",
            "lossy": codecs.is_lossy(compression),
            "image_bytes": measured["image_bytes"],
            "bytes_per_image": stored["bytes_allocated"] / n,
            "ratio": measured["image_bytes"] * n / stored["bytes_apparent"],
            "store_per_image": stored["median"] / n,
            "read_per_image": reads["read_many"] / n,
            "shuffled_per_image": reads["read_epoch"] / n,
            "psnr": float(measured["psnr"]),
        })
    table = pd.DataFrame(rows)
    if not table.empty:
        table["pareto"] = pareto_front(table["bytes_per_image"].to_numpy(), table["shuffled_per_image"].to_numpy())
    return table


def pareto_front(sizes: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """True where no other point is at least as small and as fast, and strictly better in one of the two."""
    as_good = (sizes[None, :] <= sizes[:, None]) & (seconds[None, :] <= seconds[:, None])
    better = (sizes[None, :] < sizes[:, None]) | (seconds[None, :] < seconds[:, None])
    return ~(as_good & better).any(axis=1)


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The trade-off table as the report shows it: readable units, smallest first."""
    if table.empty:
        return pd.DataFrame()
    shown = table.sort_values(["bytes_per_image", "shuffled_per_image"])
    return pd.DataFrame({
        "method": shown["method"],
        "codec": shown["codec"],
        "allocated per image": shown["bytes_per_image"].map(lambda b: format_bytes(int(round(b)))),
        "ratio": shown["ratio"].map(lambda r: f"{r:.2f}x"),
        "store / image": shown["store_per_image"].map(format_seconds),
        "sequential read / image": shown["read_per_image"].map(format_seconds),
        "shuffled read / image": shown["shuffled_per_image"].map(format_seconds),
        "PSNR": shown["psnr"].map(psnr_text),
        "Pareto": shown["pareto"].map(lambda on: "yes" if on else ""),
    }).reset_index(drop=True)


def psnr_text(psnr: float) -> str:
    return "lossless" if psnr == math.inf else ("" if math.isnan(psnr) else f"{psnr:.1f} dB")


def _variant(table: pd.DataFrame, method: str, codec: str) -> pd.Series | None:
    rows = table[(table["method"] == method) & (table["codec"] == codec)]
    return None if rows.empty else rows.iloc[0]


def _label(row: pd.Series) -> str:
    if row["method"] == stores.FLOOR:
        return "the raw NumPy floor"
    return f"{row['method']} without a codec" if row["codec"] == "none" else f"{row['method']} with {row['codec']}"


def _smallest(rows: pd.DataFrame) -> pd.Series:
    return rows.loc[rows["bytes_per_image"].idxmin()]


def compressed_space_notes(table: pd.DataFrame) -> list[str]:
    """Each method's own word (``Store.compressed_space_note``) on the space its smallest lossless codec
    took beside its raw values, for the methods measured both ways."""
    notes = []
    for method in ordered_methods(table["method"]):
        raw = _variant(table, method, "none")
        compressed = table[(table["method"] == method) & (table["codec"] != "none") & ~table["lossy"]]
        if raw is None or compressed.empty or method not in stores.names():
            continue
        best = _smallest(compressed)
        note = stores.store_class(method).compressed_space_note(
            best["codec"], best["image_bytes"] / best["ratio"], best["bytes_per_image"], raw["bytes_per_image"])
        if note:
            notes.append(note)
    return notes


def findings(table: pd.DataFrame, what: str = CIFAR, quality: pd.DataFrame | None = None) -> str:
    """One sentence per finding, every number taken from ``table`` (trade_off_table); with ``quality``, the
    variants skipped on ``what`` and why."""
    if table.empty:
        return f"No compression was measured on {what}."
    sentences = []
    smallest = _smallest(table[~table["lossy"]])
    sentences.append(
        f"Losslessly, {_label(smallest)} takes the least space on {what}: "
        f"{format_bytes(int(smallest['bytes_per_image']))} allocated per image, a ratio of {smallest['ratio']:.2f}x "
        f"over the raw pixels, read in a shuffled epoch at {format_seconds(smallest['shuffled_per_image'])} per image."
    )
    sentences += compressed_space_notes(table)
    for _, row in table[table["codec"].map(codecs.family).isin(["zstd", "blosc"])].iterrows():
        raw = _variant(table, row["method"], "none")
        if raw is not None:
            sentences.append(
                f"With {row['codec']}, a shuffled epoch of {row['method']} takes "
                f"{row['shuffled_per_image'] / raw['shuffled_per_image']:.1f}x the time it takes without a codec, "
                f"and its files hold the pixels at a ratio of {row['ratio']:.2f}x (against {raw['ratio']:.2f}x)."
            )
    lossy_rows = table[table["lossy"]]
    if not lossy_rows.empty:
        small = _smallest(lossy_rows)
        sentences.append(
            f"Lossy, {_label(small)} reaches a ratio of {small['ratio']:.2f}x at a PSNR of {small['psnr']:.1f} dB: "
            f"images close to, not equal to, what was written."
        )
    front = table[table["pareto"]].sort_values("bytes_per_image")
    sentences.append("On the Pareto front (nothing else both smaller and faster to read shuffled): "
                     + ", ".join(_label(row) for _, row in front.iterrows()) + ".")
    if quality is not None:
        skipped = quality[(quality["dataset"] == what) & (quality["skipped"] != "")]
        if len(skipped):
            reasons = dict.fromkeys(skipped["skipped"])  # one codec refused by several methods: said once
            sentences.append("Not measured: " + "; ".join(reasons) + ".")
    return "\n".join(f"- {sentence}" for sentence in sentences)


def compression_trade_off_plot(
    table: pd.DataFrame, figures_dir: str | os.PathLike[str], name: str = "compression_trade_off",
    title: str = CIFAR,
) -> Figure:
    """Bytes per image (allocated) against the shuffled-epoch read time per image, one point per method and
    codec (``trade_off_table``), coloured by method; the Pareto front joined by a line."""
    figure = Figure(figsize=(8, 5.5))
    axes = figure.add_subplot()
    for _, row in table.iterrows():
        marker = "x" if row["lossy"] else ("o" if row["codec"] != "none" else "s")
        axes.scatter(row["bytes_per_image"], row["shuffled_per_image"] * 1e6, color=method_color(row["method"]),
                     marker=marker, s=60 if row["pareto"] else 30, zorder=3)
        axes.annotate(row["codec"], (row["bytes_per_image"], row["shuffled_per_image"] * 1e6), fontsize=7,
                      xytext=(4, 3), textcoords="offset points")
    front = table[table["pareto"]].sort_values("bytes_per_image")
    axes.step(front["bytes_per_image"], front["shuffled_per_image"] * 1e6, where="post", color="black",
              linewidth=1, linestyle=":", label="Pareto front", zorder=2)
    for method in ordered_methods(table["method"]):
        axes.scatter([], [], color=method_color(method), label=method_label(method))
    axes.scatter([], [], marker="s", color="grey", label="no codec (the method's own)")
    axes.scatter([], [], marker="x", color="grey", label="lossy")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("allocated bytes per image (log)")
    axes.set_ylabel("shuffled-epoch read, µs per image (log, warm)")
    axes.set_title(f"Compression: space against read time, {title}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    save(figure, figures_dir, name)
    return figure
