"""The disk space of the stores, as a table and a figure: the disk-usage chapter shows them for the small
images, the large-images chapter for its scans, both from the ``store_many`` rows of a summary table."""

from __future__ import annotations

import os

import pandas as pd
from matplotlib.figure import Figure

from helpers.core.measure import format_bytes
from helpers.report.style import (
    legend,
    log_log_axes,
    method_color,
    method_label,
    ordered_methods,
    save,
    select,
    style_key,
)
from helpers.report.text import pick


def store_usage(summary: pd.DataFrame, durable: bool | None) -> pd.DataFrame:
    """The ``store_many`` rows (``helpers.report.style.select``); ValueError when they carry no disk usage."""
    rows = select(summary, "store_many", durable=durable)
    if rows[["bytes_apparent", "bytes_allocated"]].isna().all().all():
        raise ValueError("the store_many rows carry no disk usage (bytes_apparent, bytes_allocated)")
    return rows


def disk_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Measured bytes of every store: apparent, allocated, per image, and the share lost to block rounding."""
    rows = []
    for n in sorted(set(summary["n_images"])):
        for method in ordered_methods(summary["method"]):
            stored = pick(summary, method, "store_many", n)
            if stored is None or pd.isna(stored["bytes_allocated"]):
                continue
            rows.append({
                "images": f"{n:,}", "method": method_label(method),
                "apparent": format_bytes(stored["bytes_apparent"]),
                "allocated": format_bytes(stored["bytes_allocated"]),
                "apparent per image": f"{stored['bytes_apparent'] / n:,.0f} B",
                "allocated per image": f"{stored['bytes_allocated'] / n:,.0f} B",
                "allocated / apparent": f"{stored['bytes_allocated'] / max(stored['bytes_apparent'], 1):.2f}",
            })
    return pd.DataFrame(rows).set_index(["images", "method"])


def bytes_per_image_plot(
    summary: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    *,
    raw_image_bytes: int | None = None,
    durable: bool | None = None,
    name: str = "bytes_per_image",
) -> Figure:
    """Bytes on disk per image against the number of images: allocated (solid) and apparent (dashed)."""
    rows = store_usage(summary, durable)
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    for method in ordered_methods(rows["method"]):
        part = rows[rows["method"] == method].sort_values("n_images")
        color = method_color(method)
        axes.plot(part["n_images"], part["bytes_allocated"] / part["n_images"], "-o", color=color,
                  markersize=4, label=method_label(method))
        axes.plot(part["n_images"], part["bytes_apparent"] / part["n_images"], "--", color=color)
    style_key(axes, {"allocated": "-", "apparent": "--"})
    if raw_image_bytes:
        axes.axhline(raw_image_bytes, color="black", linewidth=0.8, linestyle=":",
                     label=f"raw pixels ({raw_image_bytes:,} bytes)")
    log_log_axes(axes, rows["n_images"])
    axes.set_ylabel("Bytes per image")
    axes.set_title("Disk space per image")
    legend(axes, fontsize="x-small")
    save(figure, figures_dir, name)
    return figure
