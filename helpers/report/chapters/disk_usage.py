"""Chapter 03, disk usage (notebooks/03-disk-usage.ipynb): the space each method took, measured on the stores
the many-images chapter wrote (its ``many_images`` results table). The table and the bytes-per-image figure
are ``helpers.report.disk_space``'s, shared with the large-images chapter; here are the article's stacked
bars and why the methods differ.
"""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from helpers import stores
from helpers.report.disk_space import store_usage
from helpers.report.style import method_label, ordered_methods, save
from helpers.report.text import largest_cutoff, pick


def method_note(method: str, n: int, stored: pd.Series, raw_image_bytes: int) -> str:
    """Why ``method``'s batch of ``n`` took the bytes of its ``store_many`` row: the method's own
    ``disk_usage_note`` when it has one, else what the report knows of the article's three and the floor,
    else its ``trade_off``."""
    note = stores.store_class(method).disk_usage_note(
        n, int(stored["bytes_apparent"]), int(stored["bytes_allocated"]), raw_image_bytes)
    if note:
        return note
    apparent = stored["bytes_apparent"] / n
    if method == "disk":
        return (f"PNG compresses each image (to {apparent / raw_image_bytes:.0%} of its raw pixels here), but every "
                f"image is a file of its own, and a file occupies whole 4 KiB blocks: a file of ~{apparent:,.0f} "
                f"bytes still takes a full block, plus its name in the folder.")
    if method == "lmdb":
        return ("LMDB stores each value uncompressed in pages of 4 KiB; a value larger than half a page gets "
                "whole overflow pages of its own, so each image (raw pixels plus a small header) "
                "rounds up to a page, and the B-tree adds pages of keys.")
    if method == "hdf5":
        return ("HDF5 keeps all images as one contiguous, uncompressed array in one file: raw pixels, "
                "a label per image and a few KiB of metadata, so it is close to the raw size.")
    if method == stores.FLOOR:
        return "The NumPy floor is the raw array in one file: the least any uncompressed method can take."
    return stores.store_class(method).trade_off


def disk_explanation(summary: pd.DataFrame, raw_image_bytes: int) -> str:
    """Why the methods take different space, with this run's numbers (markdown bullets)."""
    n = largest_cutoff(summary)
    lines = [f"At {n:,} images, with {raw_image_bytes:,} bytes of raw pixels per image:"]
    for method in ordered_methods(summary["method"]):
        stored = pick(summary, method, "store_many", n)
        if stored is None or pd.isna(stored["bytes_allocated"]):
            continue
        apparent, allocated = stored["bytes_apparent"] / n, stored["bytes_allocated"] / n
        share = apparent / raw_image_bytes
        sizes = (f"{apparent:,.0f} bytes per image in file lengths ({share:.2f} x raw), {allocated:,.0f} bytes "
                 f"allocated ({allocated / raw_image_bytes:.2f} x raw)")
        lines.append(f"- **{method_label(method)}**: {sizes}. {method_note(method, n, stored, raw_image_bytes)}")
    return "\n".join(lines)


def disk_usage_stacked(
    summary: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    *,
    durable: bool | None = None,
    name: str = "disk_usage_stacked",
) -> Figure:
    """The article's stacked bars: one bar per method, one segment per cutoff (its store's size in KB).

    Two panels, apparent bytes (file sizes) and allocated bytes (whole file-system blocks).
    """
    rows = store_usage(summary, durable)
    methods = ordered_methods(rows["method"])
    cutoffs = sorted(set(rows["n_images"]))
    colors = matplotlib.colormaps["viridis"](np.linspace(0.15, 0.9, len(cutoffs)))
    figure = Figure(figsize=(11, 5), layout="constrained")
    for axes, column, title in zip(figure.subplots(1, 2, sharey=True), ("bytes_apparent", "bytes_allocated"),
                                   ("Apparent size (file lengths)", "Allocated on disk (whole blocks)")):
        bottom = np.zeros(len(methods))
        for color, cutoff in zip(colors, cutoffs):
            sizes = np.array([
                rows.loc[(rows["method"] == m) & (rows["n_images"] == cutoff), column].sum() / 1000 for m in methods
            ])
            axes.bar(range(len(methods)), sizes, 0.6, bottom=bottom, color=color, label=f"{cutoff:,} images")
            bottom += sizes
        axes.set_xticks(range(len(methods)), [method_label(m) for m in methods],
                        rotation=30 if len(methods) > 4 else 0, ha="right" if len(methods) > 4 else "center")
        axes.set_title(title)
        axes.grid(True, axis="y", alpha=0.3)
    figure.axes[0].set_ylabel("KB (1 KB = 1,000 bytes), one segment per store size")
    figure.axes[1].legend(fontsize="small", title="store of")
    save(figure, figures_dir, name)
    return figure
