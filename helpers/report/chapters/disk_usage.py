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
    ``disk_usage_note``, else its ``trade_off``."""
    cls = stores.store_class(method)
    note = cls.disk_usage_note(n, int(stored["bytes_apparent"]), int(stored["bytes_allocated"]), raw_image_bytes)
    return note or cls.trade_off


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
