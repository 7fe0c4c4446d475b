"""How every figure of the report looks: each method's name, colour and place, the line styles, saving.

A method's label and colour are its Store class's own (``label``, ``colour``), so a newly registered method
appears in every figure with no edit here. Figures are built without pyplot, so nothing is shown twice in a
notebook and no display is needed in tests. Times are medians; error bars run from the fastest to the
slowest run (min-max), so a reader sees how much a number can be trusted. Each chapter draws its own
figures from these pieces and saves them with ``save`` under a stable name, so that the README and readers
can point at ``figures/<name>.png``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers.stores import FLOOR, names, store_class

#: Colours for a method not in the registry (each registered method names its own ``colour``).
EXTRA_COLORS = ("#d62728", "#393b79", "#e7969c", "#637939", "#7b4173")
CACHE_STYLES = {"": "-", "warm": "-", "cold": "--"}
SAVE_DPI = 150
LEGEND_INSIDE_MAX = 8  # legend entries that fit inside a plot without hiding its lines
STYLE_KEY = "line-style-key"  # gid of the legend entries that explain line styles rather than name a method
#: The axis label of every timing figure.
SECONDS_LABEL = "Seconds (median; bars: fastest to slowest run)"


def method_label(method: str) -> str:
    """The method's own ``label`` (its registry name when it is not registered)."""
    return store_class(method).label if method in names() else method


def method_color(method: str) -> str:
    """The method's own ``colour``; an unregistered name gets a stable one of ``EXTRA_COLORS``."""
    if method in names():
        return store_class(method).colour
    return EXTRA_COLORS[sum(map(ord, method)) % len(EXTRA_COLORS)]  # stable across runs, unlike hash()


def ordered_methods(methods: Sequence[str]) -> list[str]:
    """The registered methods in registry order (the article's three first), any unknown name after them
    (sorted), the reference floor last."""
    present = list(dict.fromkeys(methods))
    registered = [m for m in names() if m in present and m != FLOOR]
    unknown = sorted(m for m in present if m not in registered and m != FLOOR)
    return registered + unknown + ([FLOOR] if FLOOR in present else [])


def save(figure: Figure, figures_dir: str | os.PathLike[str], name: str) -> list[Path]:
    """Write ``figure`` as ``<name>.png`` and ``<name>.svg`` in ``figures_dir``; the two paths."""
    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.svg"]
    # A fixed salt and no date keep the SVG identical from one run to the next with the same numbers.
    with matplotlib.rc_context({"svg.hashsalt": "image-storage-report"}):
        figure.savefig(paths[0], dpi=SAVE_DPI, bbox_inches="tight")
        figure.savefig(paths[1], bbox_inches="tight", metadata={"Date": None})
    return paths


def select(
    summary: pd.DataFrame, operation: str, cache: str | None = None, durable: bool | None = None
) -> pd.DataFrame:
    """Rows of one operation (and cache), at one durability setting, sorted by method and n_images.

    ``durable=None`` takes the setting the rows have, and refuses to mix two settings in one figure.
    """
    missing = {"method", "operation", "n_images", "cache", "durable", "median", "min", "max"} - set(summary)
    if missing:
        raise ValueError(f"expected the table of helpers.report.results.summarize; missing columns {sorted(missing)}")
    rows = summary[summary["operation"] == operation]
    if cache is not None:
        rows = rows[rows["cache"] == cache]
    if durable is None:
        settings = sorted(set(rows["durable"]))
        if len(settings) > 1:
            raise ValueError(f"{operation} rows were measured with durable={settings}; pass durable= to pick one")
    else:
        rows = rows[rows["durable"] == durable]
    if rows.empty:
        raise ValueError(f"no {operation} rows{f' with cache {cache!r}' if cache else ''} in the summary to plot")
    return rows.sort_values(["method", "n_images"])


def spread(rows: pd.DataFrame, scale: float | np.ndarray = 1.0) -> np.ndarray:
    """Error bar lengths below and above the median: down to the fastest run, up to the slowest."""
    median = rows["median"].to_numpy() * scale
    return np.vstack([median - rows["min"].to_numpy() * scale, rows["max"].to_numpy() * scale - median])


def timing_line(axes: Axes, rows: pd.DataFrame, method: str, *, per_image: bool = False, linestyle: str = "-",
                label: str | None = None, unit: float = 1.0) -> None:
    """The method's medians against the number of images, with min-max error bars, in its colour."""
    scale = unit / rows["n_images"].to_numpy() if per_image else unit
    axes.errorbar(
        rows["n_images"], rows["median"].to_numpy() * scale, yerr=spread(rows, scale),
        color=method_color(method), linestyle=linestyle, marker="o", markersize=4, capsize=3,
        linewidth=1.2 if method == FLOOR else 1.8, label=label,
    )


def count_axis(axes: Axes, counts: Sequence[int]) -> None:
    """A logarithmic x axis labelled with the image counts themselves (10, 1,000) instead of powers of ten."""
    counts = sorted(set(int(n) for n in counts))
    axes.set_xscale("log")
    axes.set_xticks(counts, [f"{n:,}" for n in counts])
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def caches_of(rows: pd.DataFrame) -> list[str]:
    """The caches the rows were measured with, in the order the figures draw them."""
    return [cache for cache in ("", "warm", "cold") if cache in set(rows["cache"])]


def lines_per_method_and_cache(axes: Axes, rows: pd.DataFrame, cache_label: str, **line_options) -> list[str]:
    """One line per method and cache (warm solid, cold dashed); the caches drawn.

    ``cache_label`` (e.g. ", {} cache") names the cache in the legend when there is more than one.
    """
    caches = caches_of(rows)
    for method in ordered_methods(rows["method"]):
        labelled = False
        for cache in caches:
            part = rows[(rows["method"] == method) & (rows["cache"] == cache)]
            if part.empty:
                continue
            # One legend entry per method (its colour); the line styles get a key of their own below.
            timing_line(axes, part, method, linestyle=CACHE_STYLES[cache],
                        label=None if labelled else method_label(method), **line_options)
            labelled = True
    if len(caches) > 1:
        style_key(axes, {cache_label.format(cache).strip(" ,"): CACHE_STYLES[cache] for cache in caches})
    return caches


def style_key(axes: Axes, styles: dict[str, str]) -> None:
    """Legend entries for what each line style means (black lines that draw nothing)."""
    for label, style in styles.items():
        axes.plot([], [], color="black", linestyle=style, linewidth=1.2, label=label, gid=STYLE_KEY)


def legend(axes: Axes, fontsize: str = "small") -> None:
    """The methods, then the line-style key; inside the axes when short, beside them when it would hide lines."""
    def explains_a_style(pair) -> bool:  # errorbar containers have no gid
        return getattr(pair[0], "get_gid", lambda: None)() == STYLE_KEY

    pairs = sorted(zip(*axes.get_legend_handles_labels()), key=explains_a_style)
    handles, labels = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    if len(labels) > LEGEND_INSIDE_MAX:
        axes.legend(handles, labels, fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    else:
        axes.legend(handles, labels, fontsize=fontsize)


def log_log_axes(axes: Axes, counts: Sequence[int]) -> None:
    """Both axes logarithmic, the x axis labelled with the image counts, a grid on every decade."""
    count_axis(axes, counts)
    axes.set_yscale("log")
    axes.set_xlabel("Number of images")
    axes.grid(True, which="both", alpha=0.3)
