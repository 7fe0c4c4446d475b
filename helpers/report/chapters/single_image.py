"""Chapter 01, one image at a time (notebooks/01-single-image.ipynb): the article's first experiment.

``store_single`` of one image and ``read_single`` of it (warm, cold if asked) per method, with writes
flushed and not, into the ``single_image`` results table; the table, figure and files that show it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from helpers import stores
from helpers.core.errors import CorruptStoreError
from helpers.core.measure import DiskUsage, check_repeats, disk_usage, time_call
from helpers.report import results
from helpers.report.measuring import (
    caches,
    checked_methods,
    difference,
    time_read,
    timing_rows,
    unpack,
)
from helpers.report.style import method_color, method_label, ordered_methods, save, spread
from helpers.report.text import pick, timed

EXPERIMENT = "single_image"
#: The chapter's folder inside ``work_dir``: one store per method below it.
WORK_FOLDER = "single-image"


# -- the experiment --------------------------------------------------------------------------------------
def verify_single(
    store: stores.Store, image: np.ndarray, image_id: int, label: int, *, write: bool = True
) -> None:
    """As ``helpers.report.measuring.verify_round_trip``, for one image stored with ``store_single``."""
    if write:
        store.store_single(image, image_id, label)
    read_image, read_label = store.read_single(image_id)
    problem = difference(np.asarray(image), read_image, "image")
    if not problem and int(read_label) != int(label):
        problem = f"label {read_label} instead of {label}"
    if problem:
        raise CorruptStoreError(
            f"{store.name} store in {store.root}: reading back image {image_id} gave different data "
            f"({problem})"
        )


def footprint(store: stores.Store) -> DiskUsage:
    """What the store wrote: everything inside its folder, folders included, but not the folder itself."""
    return disk_usage(sorted(store.root.iterdir()))


def run_single(
    images: np.ndarray | object,
    labels: np.ndarray | None,
    methods: Sequence[str] | None,
    *,
    repeats: int,
    cold_cache: bool,
    work_dir: str | os.PathLike[str],
    durable: bool = False,
    dataset: str = "",
    floor: bool = False,
) -> pd.DataFrame:
    """Time ``store_single`` of the first image and ``read_single`` of it (warm, cold if asked), per method.

    ``images`` may be a Dataset (anything with ``.images``, ``.labels``, ``.source``), ``labels`` then None.
    ``floor=True`` adds the ``npy`` reference floor to ``methods`` (None: every registered method).
    """
    images, labels, dataset = unpack(images, labels, dataset)
    methods = checked_methods(methods, floor)
    check_repeats(repeats)
    image, label = images[0], int(labels[0])
    rows: list[dict] = []
    for method in methods:
        store = stores.open_store(method, Path(work_dir) / method, durable=durable)
        try:
            store.clear()
            verify_single(store, image, 0, label)
            common = dict(experiment=EXPERIMENT, method=method, n_images=1, durable=durable, dataset=dataset)
            timing = time_call(
                lambda: store.store_single(image, 0, label), repeats=repeats, setup=store.clear
            )
            verify_single(store, image, 0, label, write=False)
            rows += timing_rows(timing, operation="store_single", cache="", usage=footprint(store), **common)
            for cache in caches(cold_cache):
                timing = time_read(store, lambda: store.read_single(0), cache, repeats)
                rows += timing_rows(timing, operation="read_single", cache=cache, usage=None, **common)
        finally:
            store.close()
    return pd.DataFrame(rows, columns=results.COLUMNS)


def measure(data: object, methods: Sequence[str] | None, *, repeats: int, cold_cache: bool,
            work_dir: str | os.PathLike[str], results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The chapter's experiment with writes flushed, then not, the floor beside the methods, into a fresh
    ``single_image`` table; its summary."""
    results.reset(results_dir, EXPERIMENT)
    for durable in (True, False):
        rows = run_single(data, None, methods, repeats=repeats, cold_cache=cold_cache,
                          work_dir=Path(work_dir) / WORK_FOLDER, durable=durable, floor=True)
        results.append_rows(results_dir, EXPERIMENT, rows)
    return results.read_summary(results_dir, EXPERIMENT)


# -- what the chapter shows ------------------------------------------------------------------------------
def single_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Store and read of one image per method and durability: median (fastest-slowest)."""
    rows = []
    for durable in sorted(set(summary["durable"])):
        for method in ordered_methods(summary["method"]):
            row = {"method": method_label(method), "writes flushed (durable)": "yes" if durable else "no",
                   "store": timed(pick(summary, method, "store_single", durable=durable))}
            for cache in ("warm", "cold"):
                found = pick(summary, method, "read_single", cache=cache, durable=durable)
                if found is not None:
                    row[f"read, {cache} cache"] = timed(found)
            rows.append(row)
    return pd.DataFrame(rows).set_index(["method", "writes flushed (durable)"])


def store_files_table(work_dir: str | os.PathLike[str], methods: Sequence[str] | None) -> pd.DataFrame:
    """Every file each store of the chapter (and the floor) holds, with its apparent and allocated size."""
    rows = []
    folder = Path(work_dir) / WORK_FOLDER
    for method in ordered_methods(checked_methods(methods, floor=True)):
        root = folder / method
        if not root.exists():
            continue
        store = stores.open_store(method, root)
        try:
            for path in store.files():
                usage = disk_usage(path)
                rows.append({"method": method_label(method), "file": str(path.relative_to(root)),
                             "bytes (apparent)": usage.apparent, "bytes allocated": usage.allocated})
        finally:
            store.close()
    return pd.DataFrame(rows, columns=["method", "file", "bytes (apparent)", "bytes allocated"]).set_index(
        ["method", "file"])


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
