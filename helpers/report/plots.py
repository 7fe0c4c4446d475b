"""The report's figures, drawn from the summary table of ``helpers.report.results.summarize``.

Every function takes that table (plus a few options) and ``figures_dir``, saves the figure there as PNG
and SVG under a stable name (so the README and readers can point at ``figures/<name>.png``) and returns
the ``matplotlib.figure.Figure``. Figures are built without pyplot, so nothing is shown twice in a
notebook and no display is needed in tests. Times are medians; error bars run from the fastest to the
slowest run (min-max), so a reader sees how much a number can be trusted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from helpers.stores import FLOOR, names, store_class

#: Colours for a method not in the registry (each registered method names its own ``colour``).
EXTRA_COLORS = ("#d62728", "#393b79", "#e7969c", "#637939", "#7b4173")
ARTICLE_ORDER = ("disk", "lmdb", "hdf5")
CACHE_STYLES = {"": "-", "warm": "-", "cold": "--"}
OPERATION_TITLES = {
    "store_many": "Storing many images",
    "read_many": "Reading many images",
    "store_single": "Storing one image",
    "read_single": "Reading one image",
}
SAVE_DPI = 150
LEGEND_INSIDE_MAX = 8  # legend entries that fit inside a plot without hiding its lines
STYLE_KEY = "line-style-key"  # gid of the legend entries that explain line styles rather than name a method


def method_label(method: str) -> str:
    """The method's own ``label`` (its registry name when it is not registered)."""
    return store_class(method).label if method in names() else method


def method_color(method: str) -> str:
    """The method's own ``colour``; an unregistered name gets a stable one of ``EXTRA_COLORS``."""
    if method in names():
        return store_class(method).colour
    return EXTRA_COLORS[sum(map(ord, method)) % len(EXTRA_COLORS)]  # stable across runs, unlike hash()


def ordered_methods(methods: Sequence[str]) -> list[str]:
    """The article's three in its order, then the other registered methods in registry order (any unknown
    name after them, sorted), the reference floor last."""
    present = list(dict.fromkeys(methods))
    first = [m for m in ARTICLE_ORDER if m in present]
    registered = [m for m in names() if m in present and m not in first and m != FLOOR]
    unknown = sorted(m for m in present if m not in first and m not in registered and m != FLOOR)
    return first + registered + unknown + ([FLOOR] if FLOOR in present else [])


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


def _line(axes, rows: pd.DataFrame, method: str, *, per_image: bool = False, linestyle: str = "-",
          label: str | None = None, unit: float = 1.0) -> None:
    scale = unit / rows["n_images"].to_numpy() if per_image else unit
    axes.errorbar(
        rows["n_images"], rows["median"].to_numpy() * scale, yerr=spread(rows, scale),
        color=method_color(method), linestyle=linestyle, marker="o", markersize=4, capsize=3,
        linewidth=1.2 if method == FLOOR else 1.8, label=label,
    )


def _count_axis(axes, counts: Sequence[int]) -> None:
    """A logarithmic x axis labelled with the image counts themselves (10, 1,000) instead of powers of ten."""
    counts = sorted(set(int(n) for n in counts))
    axes.set_xscale("log")
    axes.set_xticks(counts, [f"{n:,}" for n in counts])
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _caches(rows: pd.DataFrame) -> list[str]:
    return [cache for cache in ("", "warm", "cold") if cache in set(rows["cache"])]


def _lines_per_method_and_cache(axes, rows: pd.DataFrame, cache_label: str, **line_options) -> list[str]:
    """One line per method and cache (warm solid, cold dashed); the caches drawn.

    ``cache_label`` (e.g. ", {} cache") names the cache in the legend when there is more than one.
    """
    caches = _caches(rows)
    for method in ordered_methods(rows["method"]):
        labelled = False
        for cache in caches:
            part = rows[(rows["method"] == method) & (rows["cache"] == cache)]
            if part.empty:
                continue
            # One legend entry per method (its colour); the line styles get a key of their own below.
            _line(axes, part, method, linestyle=CACHE_STYLES[cache],
                  label=None if labelled else method_label(method), **line_options)
            labelled = True
    if len(caches) > 1:
        _style_key(axes, {cache_label.format(cache).strip(" ,"): CACHE_STYLES[cache] for cache in caches})
    return caches


def _style_key(axes, styles: dict[str, str]) -> None:
    """Legend entries for what each line style means (black lines that draw nothing)."""
    for label, style in styles.items():
        axes.plot([], [], color="black", linestyle=style, linewidth=1.2, label=label, gid=STYLE_KEY)


def _legend(axes, fontsize: str = "small") -> None:
    """The methods, then the line-style key; inside the axes when short, beside them when it would hide lines."""
    def explains_a_style(pair) -> bool:  # errorbar containers have no gid
        return getattr(pair[0], "get_gid", lambda: None)() == STYLE_KEY

    pairs = sorted(zip(*axes.get_legend_handles_labels()), key=explains_a_style)
    handles, labels = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    if len(labels) > LEGEND_INSIDE_MAX:
        axes.legend(handles, labels, fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    else:
        axes.legend(handles, labels, fontsize=fontsize)


def _log_log_axes(axes, counts: Sequence[int]) -> None:
    """Both axes logarithmic, the x axis labelled with the image counts, a grid on every decade."""
    _count_axis(axes, counts)
    axes.set_yscale("log")
    axes.set_xlabel("Number of images")
    axes.grid(True, which="both", alpha=0.3)


def timing_plot(
    summary: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    operation: str = "store_many",
    *,
    log: bool = False,
    durable: bool | None = None,
    name: str | None = None,
) -> Figure:
    """The article's timing figure for ``operation`` against the number of images, linear or log-log.

    Reads show warm cache as solid lines and cold cache as dashed ones. Saved as
    ``<operation>_linear`` or ``<operation>_log`` unless ``name`` is given.
    """
    rows = select(summary, operation, durable=durable)
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    caches = _lines_per_method_and_cache(axes, rows, ", {} cache")
    if log:
        _log_log_axes(axes, rows["n_images"])
    else:
        axes.set_xlabel("Number of images")
        axes.grid(True, alpha=0.3)
    title = OPERATION_TITLES.get(operation, operation) + (" (log-log)" if log else "")
    if caches == ["warm"] or caches == ["cold"]:
        title += f", {caches[0]} cache"
    axes.set_title(title)
    axes.set_ylabel("Seconds (median; bars: fastest to slowest run)")
    _legend(axes)
    save(figure, figures_dir, name or f"{operation}_{'log' if log else 'linear'}")
    return figure


def store_and_read_plot(
    summary: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    *,
    cache: str = "warm",
    durable: bool | None = None,
    name: str = "store_and_read",
) -> Figure:
    """The article's combined figure: storing (solid) and reading (dotted) many images, log-log."""
    stored = select(summary, "store_many", durable=durable)
    read = select(summary, "read_many", cache=cache, durable=durable)
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    for method in ordered_methods([*stored["method"], *read["method"]]):
        labelled = False
        for rows, style in ((stored, "-"), (read, ":")):
            part = rows[rows["method"] == method]
            if not part.empty:
                _line(axes, part, method, linestyle=style, label=None if labelled else method_label(method))
                labelled = True
    _style_key(axes, {"store": "-", f"read ({cache} cache)": ":"})
    _log_log_axes(axes, stored["n_images"])
    axes.set_title(f"Storing (solid) and reading (dotted, {cache} cache) many images")
    axes.set_ylabel("Seconds (median; bars: fastest to slowest run)")
    _legend(axes)
    save(figure, figures_dir, name)
    return figure


def per_image_plot(
    summary: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    *,
    durable: bool | None = None,
    name: str = "per_image_cost",
) -> Figure:
    """Microseconds per image for storing and reading, against the number of images (log-log)."""
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    store_axes, read_axes = figure.subplots(1, 2, sharey=True)
    for axes, operation in ((store_axes, "store_many"), (read_axes, "read_many")):
        rows = select(summary, operation, durable=durable)
        _lines_per_method_and_cache(axes, rows, ", {}", per_image=True, unit=1e6)
        _log_log_axes(axes, rows["n_images"])
        axes.set_title(f"{OPERATION_TITLES[operation]}: cost per image")
    _legend(read_axes, fontsize="x-small")  # the same methods and styles in both panels
    store_axes.set_ylabel("Microseconds per image (median; bars: min-max)")
    save(figure, figures_dir, name)
    return figure


def single_image_plot(
    summary: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    *,
    name: str = "single_image",
) -> Figure:
    """Bars of store_single and read_single (warm, cold) per method, one panel per durability setting."""
    rows = summary[summary["operation"].isin(["store_single", "read_single"])]
    if rows.empty:
        raise ValueError("no store_single or read_single rows in the summary to plot")
    settings = sorted(set(rows["durable"]))
    figure = Figure(figsize=(5.5 * len(settings), 4.5), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(settings)))
    methods = ordered_methods(rows["method"])
    for axes, durable in zip(panels, settings):
        part = rows[rows["durable"] == durable]
        groups = [("store_single", "")] + [("read_single", c) for c in ("warm", "cold") if c in set(part["cache"])]
        width = 0.8 / len(methods)
        for index, method in enumerate(methods):
            cells = [part[(part["method"] == method) & (part["operation"] == op) & (part["cache"] == cache)]
                     for op, cache in groups]
            present = [i for i, cell in enumerate(cells) if not cell.empty]
            if not present:
                continue
            chosen = pd.concat([cells[i] for i in present])
            positions = np.array(present) + (index - (len(methods) - 1) / 2) * width
            axes.bar(positions, chosen["median"] * 1e3, width, yerr=spread(chosen, 1e3), capsize=3,
                     color=method_color(method), label=method_label(method))
        axes.set_xticks(range(len(groups)), [op.replace("_single", "") + (f"\n{c} cache" if c else "")
                                             for op, c in groups])
        axes.set_ylabel("Milliseconds (median; bars: min-max)")
        axes.set_title("One image, " + ("durable writes (flushed)" if durable else "writes not flushed"))
        axes.grid(True, axis="y", alpha=0.3)
        axes.legend(fontsize="small")
    save(figure, figures_dir, name)
    return figure


def _store_usage(summary: pd.DataFrame, durable: bool | None) -> pd.DataFrame:
    rows = select(summary, "store_many", durable=durable)
    if rows[["bytes_apparent", "bytes_allocated"]].isna().all().all():
        raise ValueError("the store_many rows carry no disk usage (bytes_apparent, bytes_allocated)")
    return rows


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
    rows = _store_usage(summary, durable)
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


def bytes_per_image_plot(
    summary: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    *,
    raw_image_bytes: int | None = None,
    durable: bool | None = None,
    name: str = "bytes_per_image",
) -> Figure:
    """Bytes on disk per image against the number of images: allocated (solid) and apparent (dashed)."""
    rows = _store_usage(summary, durable)
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    for method in ordered_methods(rows["method"]):
        part = rows[rows["method"] == method].sort_values("n_images")
        color = method_color(method)
        axes.plot(part["n_images"], part["bytes_allocated"] / part["n_images"], "-o", color=color,
                  markersize=4, label=method_label(method))
        axes.plot(part["n_images"], part["bytes_apparent"] / part["n_images"], "--", color=color)
    _style_key(axes, {"allocated": "-", "apparent": "--"})
    if raw_image_bytes:
        axes.axhline(raw_image_bytes, color="black", linewidth=0.8, linestyle=":",
                     label=f"raw pixels ({raw_image_bytes:,} bytes)")
    _log_log_axes(axes, rows["n_images"])
    axes.set_ylabel("Bytes per image")
    axes.set_title("Disk space per image")
    _legend(axes, fontsize="x-small")
    save(figure, figures_dir, name)
    return figure


def sample_grid(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    figures_dir: str | os.PathLike[str],
    *,
    per_class: int = 8,
    name: str = "dataset_samples",
) -> Figure:
    """The first ``per_class`` images of every class, one row per class."""
    labels = np.asarray(labels)
    figure = Figure(figsize=(per_class * 0.8 + 1.6, len(class_names) * 0.8), layout="constrained")
    grid = np.atleast_2d(figure.subplots(len(class_names), per_class, squeeze=False))
    for row, class_name in enumerate(class_names):
        chosen = np.flatnonzero(labels == row)[:per_class]
        for column in range(per_class):
            axes = grid[row, column]
            axes.set_xticks([])
            axes.set_yticks([])
            for spine in axes.spines.values():
                spine.set_visible(False)
            if column < len(chosen):
                axes.imshow(images[chosen[column]], interpolation="nearest")
        grid[row, 0].set_ylabel(class_name, rotation=0, ha="right", va="center", fontsize="small")
    save(figure, figures_dir, name)
    return figure


# -- 05: large images ------------------------------------------------------------------------------------
LARGE_OPERATIONS = (("store_many", "Storing"), ("read_many", "Reading in order"),
                    ("read_epoch", "Reading shuffled (mini-batches)"))


def large_images_plot(
    summary: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    *,
    name: str = "large_images",
) -> Figure:
    """Milliseconds per large image against the number of images (log-log): storing, reading in order and
    reading in a shuffled order, warm cache solid and cold dashed."""
    present = [(operation, title) for operation, title in LARGE_OPERATIONS
               if (summary["operation"] == operation).any()]
    figure = Figure(figsize=(5 * len(present), 4.5), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(present), sharey=True))
    for axes, (operation, title) in zip(panels, present):
        rows = select(summary, operation)
        _lines_per_method_and_cache(axes, rows, ", {}", per_image=True, unit=1e3)
        _log_log_axes(axes, rows["n_images"])
        axes.set_title(f"{title}: cost per image")
        axes.legend(fontsize="x-small")
    panels[0].set_ylabel("Milliseconds per image (median; bars: min-max)")
    save(figure, figures_dir, name)
    return figure


def scan_gallery(
    pictures: dict[str, np.ndarray],
    ratios: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    *,
    name: str = "scan_gallery",
) -> Figure:
    """The images side by side, each shown between its 1st and 99.5th percentile (a display window), titled
    with its lossless compression ratios from ``ratios`` (``helpers.datasets.scans.compression_ratios``)."""
    figure = Figure(figsize=(2.6 * len(pictures), 3.2), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(pictures)))
    by_name = ratios.set_index("image")
    for axes, (title, image) in zip(panels, pictures.items()):
        image = np.squeeze(image)
        low, high = np.percentile(image, [1, 99.5])
        axes.imshow(image, cmap="gray", vmin=low, vmax=max(high, low + 1), interpolation="antialiased")
        axes.set_xticks([])
        axes.set_yticks([])
        row = by_name.loc[title]
        axes.set_title(f"{title}\nPNG {row['png_ratio']:.2f}x, JPEG 2000 {row['jpeg2000_ratio']:.2f}x",
                       fontsize="small")
    save(figure, figures_dir, name)
    return figure


# -- access patterns of a training loop (notebook 04) -------------------------------------------------
#: The read patterns notebook 04 compares, in the order a reader meets them.
ACCESS_PATTERNS = {
    "read_many": "Sequential read_many of the whole batch (notebook 02)",
    "read_epoch": "One shuffled epoch in mini-batches",
    "read_random": "Random single images",
}


def pattern_rows(access: pd.DataFrame, pattern: str, many: pd.DataFrame | None = None) -> pd.DataFrame:
    """Summary rows of one read pattern, read by the calling process alone, from the access table's batch.

    ``read_many`` rows come from notebook 02's summary (``many``), at the same number of images, writes
    not flushed; an empty table when ``many`` is None.
    """
    epochs = access[access["operation"] == "read_epoch"]
    if epochs.empty:
        raise ValueError("no read_epoch rows: run helpers.report.experiments.run_access (notebook 04) first")
    if pattern == "read_many":
        if many is None:
            return access.iloc[0:0]
        rows = many[(many["operation"] == "read_many") & (many["n_images"] == epochs["n_images"].max())]
        return rows[~rows["durable"]] if (~rows["durable"]).any() else rows
    if pattern not in ACCESS_PATTERNS:
        raise ValueError(f"unknown read pattern {pattern!r}; expected one of {list(ACCESS_PATTERNS)}")
    rows = access[access["operation"] == pattern]
    return rows[rows["workers"] == 0]


def images_per_second(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(median images per second, error bars down to the slowest run and up to the fastest)."""
    count = rows["n_images"].to_numpy(dtype=float)
    rate = count / rows["median"].to_numpy()
    return rate, np.vstack([rate - count / rows["max"].to_numpy(), count / rows["min"].to_numpy() - rate])


def access_pattern_plot(
    access: pd.DataFrame,
    figures_dir: str | os.PathLike[str],
    pattern: str,
    *,
    many: pd.DataFrame | None = None,
    name: str | None = None,
) -> Figure:
    """Bars per method for one read pattern, warm and cold side by side, error bars min-max.

    Random single reads in microseconds per image (lower is better); epochs and sequential reads in
    images per second (higher is better). Saved as ``access_<pattern>`` unless ``name`` is given.
    """
    rows = pattern_rows(access, pattern, many)
    if rows.empty:
        raise ValueError(f"no {pattern} rows to plot")
    methods = ordered_methods(rows["method"])
    caches = _caches(rows)
    width = 0.8 / len(caches)
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.subplots()
    for offset, cache in enumerate(caches):
        for position, method in enumerate(methods):
            part = rows[(rows["method"] == method) & (rows["cache"] == cache)]
            if part.empty:
                continue
            if pattern == "read_random":
                scale = 1e6 / part["n_images"].to_numpy()
                value, error = part["median"].to_numpy() * scale, spread(part, scale)
            else:
                value, error = images_per_second(part)
            axes.bar(position + (offset - (len(caches) - 1) / 2) * width, value, width, yerr=error, capsize=3,
                     color=method_color(method), alpha=1.0 if cache == "warm" else 0.55,
                     edgecolor="black", linewidth=0.5, hatch="" if cache == "warm" else "//",
                     label=f"{cache} cache" if position == 0 else None)
    # eight methods and the floor: slanted names stay apart
    axes.set_xticks(range(len(methods)), [method_label(m) for m in methods], rotation=25, ha="right")
    axes.set_yscale("log")
    axes.grid(True, axis="y", which="both", alpha=0.3)
    n = int(pattern_rows(access, "read_epoch")["n_images"].max())
    axes.set_title(f"{ACCESS_PATTERNS[pattern]}, from a batch of {n:,} images")
    axes.set_ylabel("Microseconds per image (lower is better)" if pattern == "read_random"
                    else "Images per second (higher is better)")
    axes.legend(title="bars: median, fastest to slowest run", fontsize="small", title_fontsize="small")
    save(figure, figures_dir, name or f"access_{pattern}")
    return figure


def workers_plot(access: pd.DataFrame, figures_dir: str | os.PathLike[str], *, name: str = "access_workers") -> Figure:
    """Images per second of a warm shuffled epoch against the number of loader worker processes.

    0 workers is the calling process reading alone; error bars run from the slowest run to the fastest.
    """
    rows = access[(access["operation"] == "read_epoch") & (access["cache"] == "warm")].sort_values("workers")
    if rows.empty:
        raise ValueError("no warm read_epoch rows: run helpers.report.experiments.run_access (notebook 04) first")
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.subplots()
    for method in ordered_methods(rows["method"]):
        part = rows[rows["method"] == method]
        value, error = images_per_second(part)
        axes.errorbar(part["workers"], value, yerr=error, color=method_color(method), marker="o", capsize=3,
                      linewidth=1.2 if method == FLOOR else 1.8, label=method_label(method))
    counts = sorted(set(rows["workers"]))
    axes.set_xticks(counts, ["this process" if w == 0 else f"{w} worker{'s' if w > 1 else ''}" for w in counts])
    axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(f"Shuffled epoch of {int(rows['n_images'].max()):,} images with loader workers (warm cache)")
    axes.set_ylabel("Images per second (median; bars: min-max)")
    axes.legend(fontsize="small")
    save(figure, figures_dir, name)
    return figure


def compression_trade_off_plot(
    table: pd.DataFrame, figures_dir: str | os.PathLike[str], name: str = "compression_trade_off",
    title: str = "CIFAR",
) -> Figure:
    """Bytes per image (allocated) against the shuffled-epoch read time per image, one point per method and
    codec (``helpers.report.chapters.compression.trade_off_table``), coloured by method; the Pareto front joined by a line."""
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


def at_scale_memory_plot(writes: pd.DataFrame, figures_dir: str | os.PathLike[str]) -> Figure:
    """Peak memory of each method's ``store_chunks`` beside the size of the data it wrote (``helpers.report.chapters.at_scale``)."""
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
    """Seconds of a Dask conversion per method and number of workers (``helpers.report.chapters.at_scale.conversions``)."""
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
