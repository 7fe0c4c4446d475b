"""Tables and sentences for the report, computed from the measured numbers (never typed in).

The notebooks show these tables and render these texts; every figure of speech here that carries a
number takes it from the summary tables of ``helpers.report.results.summarize``. The only numbers written down
are the article's published results, kept in ``ARTICLE_RESULTS`` and quoted as such.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import stores
from helpers.stores import store_class
from helpers.datasets import is_synthetic_source
from helpers.core.measure import disk_usage, format_bytes, format_seconds
from helpers.report.plots import method_label, ordered_methods, pattern_rows

#: Facts from the article "Three Ways of Storing and Accessing Lots of Images in Python" (Real Python):
#: its published timings and disk usage for 100,000 CIFAR-10 images (the 50,000 training images twice).
#: Quoted for comparison only; nothing in this project was measured to produce them.
ARTICLE_RESULTS = {
    "source": 'Real Python, "Three Ways of Storing and Accessing Lots of Images in Python"',
    "n_images": 100_000,
    "store_seconds": {"disk": 80.6, "lmdb": 4.34, "hdf5": 0.285},
    "read_seconds": {"disk": 62.5, "lmdb": 3.46, "hdf5": 1.31},
    "disk_kb": {"disk": 200_296, "lmdb": 393_000, "hdf5": 293_000},
}
DURABILITY_MAX_CUTOFF = 1000


# -- formatting -------------------------------------------------------------------------------------
def timed(row: pd.Series | None) -> str:
    """'1.25 s (1.20 s–1.31 s)': the median and the fastest and slowest runs."""
    if row is None:
        return "not measured"
    if row["runs"] <= 1:
        return format_seconds(row["median"])
    return f"{format_seconds(row['median'])} ({format_seconds(row['min'])}–{format_seconds(row['max'])})"


def times(ratio: float) -> str:
    """A ratio as the report writes it: 2.6x, 18x, 280x."""
    if not np.isfinite(ratio):
        return "n/a"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    if ratio >= 10:
        return f"{ratio:.0f}x"
    return f"{ratio:.2f}x" if ratio < 1 else f"{ratio:.1f}x"


def per_image(seconds: float) -> str:
    """A per-image cost with three significant digits: 1.45 µs, 58.3 µs, 1.20 ms."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    return format_seconds(seconds)


def pick(summary: pd.DataFrame, method: str, operation: str, n_images: int | None = None,
         cache: str = "", durable: bool | None = None) -> pd.Series | None:
    """The one summary row for these keys, or None when it was not measured."""
    rows = summary[(summary["method"] == method) & (summary["operation"] == operation)
                   & (summary["cache"] == cache)]
    if n_images is not None:
        rows = rows[rows["n_images"] == n_images]
    if durable is not None:
        rows = rows[rows["durable"] == durable]
    return None if rows.empty else rows.iloc[0]


def stored_methods(summary: pd.DataFrame, n: int):
    """(method, its store_many row at ``n``) for every method measured at ``n``, in the figures' order."""
    for method in ordered_methods(summary["method"]):
        stored = pick(summary, method, "store_many", n)
        if stored is not None:
            yield method, stored


def largest_cutoff(summary: pd.DataFrame) -> int:
    rows = summary[summary["operation"] == "store_many"]
    if rows.empty:
        raise ValueError("no store_many rows in the summary: run notebooks/02-many-images.ipynb first")
    return int(rows["n_images"].max())


# -- 00: the dataset ----------------------------------------------------------------------------------
def banner_html(source: str) -> str:
    """A box saying which images were measured; a loud warning when the synthetic set stands in."""
    text = html.escape(str(source))
    if is_synthetic_source(source):
        return (
            '<div class="report-banner report-banner-warning" style="border:2px solid #b45309;'
            'background:#fef3c7;color:#451a03;padding:0.8em 1em;border-radius:4px;margin:0.5em 0">'
            "<strong>Warning: synthetic images, not CIFAR-10.</strong> The real dataset was not available, so "
            "generated 32x32 colour images with PNG sizes like CIFAR-10's stand in for it. Timings and disk "
            "usage are indicative; run <code>make data</code> (or put <code>cifar-10-batches-py</code> in "
            f"<code>data/raw/</code>) and run the report again for the real numbers.<br><small>{text}</small></div>"
        )
    return (
        '<div class="report-banner report-banner-info" style="border:1px solid #2563eb;background:#eff6ff;'
        f'color:#1e3a8a;padding:0.6em 1em;border-radius:4px;margin:0.5em 0"><strong>Dataset:</strong> {text}</div>'
    )


def dataset_banner(source: str):
    """``banner_html`` as an object a notebook displays."""
    from IPython.display import HTML

    return HTML(banner_html(source))


def dataset_overview(data) -> pd.DataFrame:
    """What was loaded: counts, shapes, types and bytes, as a two-column table."""
    images = data.images
    rows = [
        ("Images", f"{len(images):,}"),
        ("Array shape", str(tuple(images.shape))),
        ("Pixel type", str(images.dtype)),
        ("Bytes per image (raw pixels)", f"{images[0].nbytes:,}"),
        ("All pixels in memory", format_bytes(images.nbytes)),
        ("Classes", ", ".join(data.class_names)),
        ("Synthetic stand-in", "yes" if data.is_synthetic else "no"),
    ]
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")


def class_counts(data) -> pd.DataFrame:
    counts = np.bincount(data.labels, minlength=len(data.class_names))
    return pd.DataFrame({"class": data.class_names, "images": counts}).set_index("class")


# -- 01: one image -----------------------------------------------------------------------------------
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


def store_files_table(work_dir: str | os.PathLike[str], methods: Sequence[str]) -> pd.DataFrame:
    """Every file each store holds in ``work_dir/<method>``, with its apparent and allocated size."""
    rows = []
    for method in ordered_methods(methods):
        root = Path(work_dir) / method
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


# -- 02: many images ---------------------------------------------------------------------------------
def many_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per cutoff and method: store and read times (median, fastest-slowest), per-image read cost, floor ratio."""
    rows = []
    for n in sorted(set(summary["n_images"])):
        for method in ordered_methods(summary["method"]):
            stored = pick(summary, method, "store_many", n)
            if stored is None:
                continue
            row = {"images": f"{n:,}", "method": method_label(method), "store": timed(stored)}
            for cache in ("warm", "cold"):
                read = pick(summary, method, "read_many", n, cache)
                if read is not None:
                    row[f"read, {cache}"] = timed(read)
            warm = pick(summary, method, "read_many", n, "warm")
            if warm is not None:
                row["read per image (warm)"] = per_image(warm["per_image"])
                row["read vs floor (warm)"] = times(warm["ratio_to_floor"])
            rows.append(row)
    return pd.DataFrame(rows).set_index(["images", "method"])


def durability_cutoff(cutoffs: Sequence[int]) -> int:
    """The cutoff the durable-write comparison uses: the largest up to 1,000 (flushing is slow)."""
    small = [int(n) for n in cutoffs if int(n) <= DURABILITY_MAX_CUTOFF]
    return max(small) if small else min(int(n) for n in cutoffs)


def durability_pair(
    summary: pd.DataFrame, method: str, n: int | None = None
) -> tuple[pd.Series, pd.Series] | None:
    """The store_many rows of ``method`` with writes not flushed and flushed, or None unless both exist."""
    relaxed = pick(summary, method, "store_many", n, durable=False)
    flushed = pick(summary, method, "store_many", n, durable=True)
    return None if relaxed is None or flushed is None else (relaxed, flushed)


def durability_table(summary: pd.DataFrame) -> pd.DataFrame:
    """store_many with writes left to the OS and with writes flushed, per method, and the cost of flushing."""
    rows = []
    for n in sorted(set(summary["n_images"])):
        for method in ordered_methods(summary["method"]):
            pair = durability_pair(summary, method, n)
            if pair is None:
                continue
            relaxed, flushed = pair
            rows.append({"images": f"{n:,}", "method": method_label(method),
                         "store, not flushed": timed(relaxed), "store, flushed (durable)": timed(flushed),
                         "cost of flushing": times(flushed["median"] / relaxed["median"])})
    return pd.DataFrame(rows).set_index(["images", "method"])


def file_system_note(environment_info: dict) -> str:
    """A caution when the work folder's file system makes writing many files slower than usual, else ""."""
    if environment_info.get("filesystem_type") != "ext4" or environment_info.get("filesystem_journal") is not False:
        return ""
    return (
        "**Caution:** the work folder is on ext4 *without a journal* "
        f"({environment_info.get('filesystem_device', 'unknown device')}). There, creating a file passes over "
        "every inode freed in the last minute or so, and each timed write above came just after the store's "
        "previous batch was deleted. So PNG writes, thousands of files each, took longer here than they would "
        "on a journaled ext4 or with the deleted files a few minutes old; the other methods write a handful "
        "of files and are not affected. `benchmarks/performance.py` measures the PNG store both ways."
    )


def cache_note(summary: pd.DataFrame, cold_cache_possible: object = True) -> str:
    """How much slower reads were with the files evicted from the page cache, at the largest cutoff."""
    n = largest_cutoff(summary)
    parts = []
    for method in ordered_methods(summary["method"]):
        warm = pick(summary, method, "read_many", n, "warm")
        cold = pick(summary, method, "read_many", n, "cold")
        if warm is not None and cold is not None:
            parts.append(f"{method_label(method)} {times(cold['median'] / warm['median'])}")
    if not parts:
        return "Cold reads were not measured in this run (`cold_cache=False`): every read above is warm."
    text = (f"At {n:,} images, a cold read took this many times the warm read: " + ", ".join(parts) + ".")
    if cold_cache_possible is False:
        text += (" **Caution:** the work folder's file system did not let the page cache be emptied (tmpfs, "
                 "for instance), so the 'cold' reads here were served from memory too.")
    return text


# -- 03: disk usage ----------------------------------------------------------------------------------
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
        note = stores.store_class(method).disk_usage_note(
            n, int(stored["bytes_apparent"]), int(stored["bytes_allocated"]), raw_image_bytes)
        if note:
            why = note
        elif method == "disk":
            why = (f"PNG compresses each image (to {share:.0%} of its raw pixels here), but every image is a "
                   f"file of its own, and a file occupies whole 4 KiB blocks: a file of ~{apparent:,.0f} bytes "
                   f"still takes a full block, plus its name in the folder.")
        elif method == "lmdb":
            why = ("LMDB stores each value uncompressed in pages of 4 KiB; a value larger than half a page gets "
                   "whole overflow pages of its own, so each image (raw pixels plus a small header) "
                   "rounds up to a page, and the B-tree adds pages of keys.")
        elif method == "hdf5":
            why = ("HDF5 keeps all images as one contiguous, uncompressed array in one file: raw pixels, "
                   "a label per image and a few KiB of metadata, so it is close to the raw size.")
        elif method == stores.FLOOR:
            why = "The NumPy floor is the raw array in one file: the least any uncompressed method can take."
        else:
            why = stores.store_class(method).trade_off
        lines.append(f"- **{method_label(method)}**: {sizes}. {why}")
    return "\n".join(lines)


# -- 04: conclusions ---------------------------------------------------------------------------------
def conclusions_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per method at the largest cutoff: times, ratio to the floor, and space."""
    n = largest_cutoff(summary)
    rows = []
    for method, stored in stored_methods(summary, n):
        warm = pick(summary, method, "read_many", n, "warm")
        cold = pick(summary, method, "read_many", n, "cold")
        rows.append({
            "method": method_label(method),
            "store": timed(stored),
            "read (warm)": timed(warm),
            "read (cold)": timed(cold),
            "read vs floor (warm)": times(warm["ratio_to_floor"]) if warm is not None else "n/a",
            "allocated on disk": format_bytes(stored["bytes_allocated"]),
            "bytes per image": f"{stored['bytes_allocated'] / n:,.0f}",
        })
    table = pd.DataFrame(rows).set_index("method")
    table.columns.name = f"{n:,} images"
    return table


def _ranked(summary: pd.DataFrame, n: int, operation: str, cache: str, value: str = "median") -> list[tuple[str, float]]:
    """(method, value) of the article's kind of methods (not the floor), best first."""
    found = []
    for method in ordered_methods(summary["method"]):
        if method == stores.FLOOR:
            continue
        row = pick(summary, method, operation, n, cache)
        if row is not None and pd.notna(row[value]):
            found.append((method, float(row[value])))
    return sorted(found, key=lambda item: item[1])


def _winner_sentence(ranked: list[tuple[str, float]], what: str, unit=format_seconds) -> str:
    best, best_value = ranked[0]
    others = ", ".join(f"{method_label(m)} {unit(v)} ({times(v / best_value)})" for m, v in ranked[1:])
    return f"{what}: **{method_label(best)}** is best at {unit(best_value)}" + (f"; {others}." if others else ".")


def recommendations(many: pd.DataFrame, single: pd.DataFrame | None = None,
                    durability: pd.DataFrame | None = None) -> str:
    """Recommendations as markdown bullets, each chosen and quantified from the measured numbers."""
    n = largest_cutoff(many)
    lines = [f"Measured at {n:,} images unless said otherwise."]
    reads = _ranked(many, n, "read_many", "warm")
    if not reads:
        return lines[0] + " No read was measured."
    lines.append("- " + _winner_sentence(reads, f"Reading {n:,} images (warm cache)"))
    cold = _ranked(many, n, "read_many", "cold")
    if cold:
        lines.append("- " + _winner_sentence(cold, "Reading them cold (files evicted from the page cache)"))
    lines.append("- " + _winner_sentence(_ranked(many, n, "store_many", ""), f"Writing {n:,} images"))
    space = _ranked(many, n, "store_many", "", "bytes_allocated")
    if space:
        lines.append("- " + _winner_sentence(space, "Disk space (allocated)", unit=lambda b: format_bytes(int(b))))
    floor = pick(many, stores.FLOOR, "read_many", n, "warm")
    best_read = pick(many, reads[0][0], "read_many", n, "warm")
    if floor is not None and best_read is not None:
        ratio = best_read["ratio_to_floor"]
        if ratio < 1:
            verdict = ("faster than the floor: timings this close are within the machine's noise, and the floor is "
                       "a reference point, not a hard limit.")
        elif ratio < 2:
            verdict = "little is left to gain."
        else:
            verdict = "there is still room below it."
        lines.append(f"- {method_label(reads[0][0])} reads in {times(ratio)} the time the NumPy floor takes to read "
                     f"the same images back as one raw array ({format_seconds(floor['median'])}): {verdict}")
    if single is not None and not single.empty:
        unflushed = single[~single["durable"]] if (~single["durable"]).any() else single
        one = _ranked(unflushed, 1, "read_single", "warm")
        if one:
            lines.append("- " + _winner_sentence(one, "One image at a time, reading (warm)"))
        one = _ranked(unflushed, 1, "store_single", "")
        if one:
            lines.append("- " + _winner_sentence(one, "One image at a time, writing"))
    if durability is not None and not durability.empty:
        costs = []
        for method in ordered_methods(durability["method"]):
            pair = durability_pair(durability, method)
            if pair is not None and method != stores.FLOOR:
                relaxed, flushed = pair
                costs.append(f"{method_label(method)} {times(flushed['median'] / relaxed['median'])}")
        if costs:
            dn = int(durability["n_images"].max())
            lines.append(f"- Making writes durable (flushed to disk before returning) multiplied the time to "
                         f"store {dn:,} images by: " + ", ".join(costs) + ".")
    best, second = reads[0][0], reads[1][0] if len(reads) > 1 else None
    advice = (f"\n**For a read-heavy workload such as training a model on a fixed set of images, this run "
              f"favours {method_label(best)}**")
    if second:
        advice += f", then {method_label(second)} ({times(reads[1][1] / reads[0][1])} slower to read)"
    # What each method offers that the numbers do not show, in its own words (Store.choose_when).
    reasons = [store_class(m).choose_when for m in ordered_methods(many["method"]) if m in stores.names()]
    lines.append(advice + ". Choose " + "; ".join(reason for reason in reasons if reason) + ".")
    return "\n".join(lines)


ARTICLE_RATIOS = (
    ("Store time", "store_many", "", "disk", "lmdb"),
    ("Store time", "store_many", "", "lmdb", "hdf5"),
    ("Store time", "store_many", "", "disk", "hdf5"),
    ("Read time (warm)", "read_many", "warm", "disk", "lmdb"),
    ("Read time (warm)", "read_many", "warm", "lmdb", "hdf5"),
    ("Read time (warm)", "read_many", "warm", "disk", "hdf5"),
    ("Disk space (apparent bytes)", "bytes_apparent", "", "lmdb", "disk"),
    ("Disk space (apparent bytes)", "bytes_apparent", "", "hdf5", "disk"),
    ("Disk space (allocated bytes)", "bytes_allocated", "", "lmdb", "disk"),
    ("Disk space (allocated bytes)", "bytes_allocated", "", "hdf5", "disk"),
)


def comparison_cutoff(summary: pd.DataFrame) -> int:
    """The article's 100,000 images if this run measured it, else this run's largest cutoff."""
    measured = set(summary.loc[summary["operation"] == "store_many", "n_images"])
    return ARTICLE_RESULTS["n_images"] if ARTICLE_RESULTS["n_images"] in measured else largest_cutoff(summary)


def _article_value(kind: str, method: str) -> float:
    if kind == "store_many":
        return ARTICLE_RESULTS["store_seconds"][method]
    if kind == "read_many":
        return ARTICLE_RESULTS["read_seconds"][method]
    return ARTICLE_RESULTS["disk_kb"][method]


def _measured_value(summary: pd.DataFrame, kind: str, cache: str, method: str, n: int) -> float:
    if kind in ("store_many", "read_many"):
        row = pick(summary, method, kind, n, cache)
        return float(row["median"]) if row is not None else np.nan
    row = pick(summary, method, "store_many", n)
    return float(row[kind]) if row is not None else np.nan


def article_comparison(summary: pd.DataFrame) -> pd.DataFrame:
    """The article's ratios between methods next to this run's, at ``comparison_cutoff``.

    Ratios, not seconds, are compared: they cancel most of the difference between two machines.
    """
    n = comparison_cutoff(summary)
    rows = []
    for what, kind, cache, top, bottom in ARTICLE_RATIOS:
        article = _article_value(kind, top) / _article_value(kind, bottom)
        here = _measured_value(summary, kind, cache, top, n) / _measured_value(summary, kind, cache, bottom, n)
        if not np.isfinite(here):
            continue
        rows.append({"comparison": f"{what}: {method_label(top)} / {method_label(bottom)}",
                     f"article ({ARTICLE_RESULTS['n_images']:,} images)": times(article),
                     f"this run ({n:,} images)": times(here)})
    return pd.DataFrame(rows).set_index("comparison")


def article_values_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The article's published numbers beside this run's medians, each labelled with its image count."""
    n = comparison_cutoff(summary)
    article_n = f"{ARTICLE_RESULTS['n_images']:,}"
    rows = []
    for method in ARTICLE_RESULTS["store_seconds"]:
        stored = pick(summary, method, "store_many", n)
        read = pick(summary, method, "read_many", n, "warm")
        rows.append({
            "method": method_label(method),
            f"store, article ({article_n})": f"{ARTICLE_RESULTS['store_seconds'][method]:g} s",
            f"store, here ({n:,})": format_seconds(stored["median"]) if stored is not None else "not measured",
            f"read, article ({article_n})": f"{ARTICLE_RESULTS['read_seconds'][method]:g} s",
            f"read warm, here ({n:,})": format_seconds(read["median"]) if read is not None else "not measured",
            f"disk, article ({article_n})": f"{ARTICLE_RESULTS['disk_kb'][method]:,} KB",
            f"disk allocated, here ({n:,})": (f"{stored['bytes_allocated'] / 1000:,.0f} KB"
                                              if stored is not None else "not measured"),
        })
    return pd.DataFrame(rows).set_index("method")


def comparison_note(summary: pd.DataFrame) -> str:
    n = comparison_cutoff(summary)
    source = ARTICLE_RESULTS["source"]
    caveat = (" The article gives one disk figure per method without saying whether it counts file lengths or "
              "allocated blocks, so it is set against both; its reads were made right after writing (warm).")
    if n == ARTICLE_RESULTS["n_images"]:
        return (f"The article's numbers are quoted from {source}, measured at {n:,} images; this run measured "
                f"the same number of images, so both columns describe the same workload." + caveat)
    return (f"The article's numbers are quoted from {source}, measured at {ARTICLE_RESULTS['n_images']:,} images. "
            f"**This run's largest cutoff is {n:,} images**, so its ratios are taken at {n:,} images, the "
            f"largest count this run has. Ratios between methods depend less on the count than seconds do, "
            f"but small stores are dominated by fixed costs, so read them with care." + caveat)


def durability_statement(many: pd.DataFrame, durability: pd.DataFrame | None = None) -> str:
    """Which durability setting the timings used, and why it matters."""
    settings = sorted(set(many["durable"]))
    used = " and ".join("flushed (durable=True)" if s else "not flushed (durable=False)" for s in settings)
    text = ("LMDB syncs its data to disk on every commit by default, while Pillow (PNG files) and h5py (HDF5) "
            "return as soon as the data is in the operating system's page cache. Compared out of the box, LMDB "
            "would pay for a flush the others skip. In this report every method uses the same setting: the "
            f"many-image timings were measured with writes {used} for every method, LMDB included "
            "(opened with `sync=False` when not durable).")
    if durability is not None and not durability.empty:
        dn = int(durability["n_images"].max())
        text += (f" A separate comparison at {dn:,} images measures every method with writes flushed "
                 "(durable=True: fsync of every file and folder, LMDB's own sync on commit) to show what durability costs.")
    return text


# -- 05: large images ------------------------------------------------------------------------------------
LARGE_READS = (("read_many", "read in order"), ("read_epoch", "read shuffled"))


def compression_table(ratios: pd.DataFrame) -> pd.DataFrame:
    """``helpers.datasets.scans.compression_ratios`` as the report shows it."""
    return pd.DataFrame({
        "image": ratios["image"], "pixels": ratios["shape"],
        "raw": ratios["raw_bytes"].map(format_bytes),
        "16-bit PNG": ratios["png_bytes"].map(format_bytes), "PNG ratio": ratios["png_ratio"].map(times),
        "lossless JPEG 2000": ratios["jpeg2000_bytes"].map(format_bytes),
        "JPEG 2000 ratio": ratios["jpeg2000_ratio"].map(times),
    }).set_index("image")


def compression_note(ratios: pd.DataFrame) -> str:
    """How the synthetic (or loaded) images compress next to the real CT slices, from this run's ratios."""
    real = ratios[ratios["image"].str.startswith("real:")]
    other = ratios[~ratios["image"].str.startswith("real:")]
    if real.empty or other.empty:
        return ""
    reference = real.iloc[0]
    png = other["raw_bytes"].sum() / other["png_bytes"].sum()
    j2k = other["raw_bytes"].sum() / other["jpeg2000_bytes"].sum()
    return (
        f"The reference slice ({reference['image'].removeprefix('real: ')}) compresses "
        f"{times(reference['png_ratio'])} with 16-bit PNG and {times(reference['jpeg2000_ratio'])} with lossless "
        f"JPEG 2000; the {len(other)} images of this chapter's dataset shown here compress {times(png)} and "
        f"{times(j2k)} ({png / reference['png_ratio'] - 1:+.0%} and {j2k / reference['jpeg2000_ratio'] - 1:+.0%}). "
        f"The other real slices range from {times(real['png_ratio'].min())} to {times(real['png_ratio'].max())} "
        "with PNG: how much a lossless codec saves depends on the noise in the slice more than on anything else."
    )


def large_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per method at the largest count: store, reads in order and shuffled (warm, cold), throughput, disk."""
    n = largest_cutoff(summary)
    rows = []
    for method, stored in stored_methods(summary, n):
        row = {"method": method_label(method), "store": timed(stored)}
        for operation, label in LARGE_READS:
            for cache in ("warm", "cold"):
                read = pick(summary, method, operation, n, cache)
                if read is not None:
                    row[f"{label}, {cache}"] = timed(read)
        warm = pick(summary, method, "read_epoch", n, "warm")
        if warm is not None:
            row["shuffled per image (warm)"] = per_image(warm["per_image"])
        if not pd.isna(stored["bytes_allocated"]):
            row["on disk per image"] = format_bytes(stored["bytes_allocated"] / n)
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def _ratio_text(summary: pd.DataFrame, method: str, n: int, cache: str) -> str | None:
    ordered = pick(summary, method, "read_many", n, cache)
    shuffled = pick(summary, method, "read_epoch", n, cache)
    if ordered is None or shuffled is None:
        return None
    return f"{method_label(method)} {times(shuffled['median'] / ordered['median'])}"


def large_statement(summary: pd.DataFrame, raw_image_bytes: int) -> str:
    """What the large-image measurements say: the fastest writer and readers, the cost of shuffling."""
    n = largest_cutoff(summary)
    lines = [f"At {n:,} images of {format_bytes(raw_image_bytes)} each ({format_bytes(n * raw_image_bytes)} "
             "of raw pixels):"]
    for operation, what in (("store_many", "store"), ("read_many", "read in order (warm)"),
                            ("read_epoch", "read shuffled (warm)")):
        ranked = _ranked(summary, n, operation, "" if operation == "store_many" else "warm")
        if ranked:
            lines.append("- " + _winner_sentence(ranked, what))
    for cache in ("warm", "cold"):
        parts = [text for method in ordered_methods(summary["method"])
                 if (text := _ratio_text(summary, method, n, cache))]
        if parts:
            lines.append(f"- A shuffled epoch ({cache} cache) took this many times an epoch in order: "
                         + ", ".join(parts) + ".")
    return "\n".join(lines)


def photos_vs_scans(many: pd.DataFrame, large: pd.DataFrame | None) -> pd.DataFrame:
    """Per method: per-image store and warm read cost, and disk bytes per image, for the small photos of
    notebook 02 and the large images of notebook 05, at each one's largest count."""
    if large is None or large.empty:
        return pd.DataFrame()
    n_small, n_large = largest_cutoff(many), largest_cutoff(large)
    rows = []
    for method in ordered_methods([*many["method"], *large["method"]]):
        row = {"method": method_label(method)}
        for label, table, n in (("small", many, n_small), ("large", large, n_large)):
            stored = pick(table, method, "store_many", n)
            read = pick(table, method, "read_many", n, "warm")
            row[f"store per image, {label}"] = per_image(stored["per_image"]) if stored is not None else "–"
            row[f"read per image, {label}"] = per_image(read["per_image"]) if read is not None else "–"
            row[f"read vs floor, {label}"] = times(read["ratio_to_floor"]) if read is not None else "–"
            on_disk = np.nan if stored is None else stored["bytes_allocated"] / n
            row[f"disk per image, {label}"] = "–" if pd.isna(on_disk) else format_bytes(on_disk)
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def photos_vs_scans_statement(many: pd.DataFrame, large: pd.DataFrame | None, photo_bytes: int,
                              scan_bytes: int) -> str:
    """What changes between small photos and large scans, from the two experiments' numbers (markdown)."""
    if large is None or large.empty:
        return ("The large-images chapter (05) did not run, so there is no comparison between small photos "
                "and large scans in this report.")
    n_small, n_large = largest_cutoff(many), largest_cutoff(large)
    lines = [f"Small images ({format_bytes(photo_bytes)} of raw pixels each, {n_small:,} stored) against large ones "
             f"({format_bytes(scan_bytes)} each, {scan_bytes / max(photo_bytes, 1):,.0f} times more, "
             f"{n_large:,} stored):"]
    for operation, cache, what in (("store_many", "", "Storing"), ("read_many", "warm", "Reading (warm)")):
        small, big = _ranked(many, n_small, operation, cache), _ranked(large, n_large, operation, cache)
        if small and big:
            lines.append(f"- {what}: fastest for small images {method_label(small[0][0])}, for large ones "
                         f"{method_label(big[0][0])}.")
    closer, farther = [], []
    for method in ordered_methods([*many["method"], *large["method"]]):
        if method == stores.FLOOR:
            continue
        small = pick(many, method, "read_many", n_small, "warm")
        big = pick(large, method, "read_many", n_large, "warm")
        small_store, big_store = pick(many, method, "store_many", n_small), pick(large, method, "store_many", n_large)
        if small is None or big is None or small_store is None or big_store is None:
            continue
        growth = big["per_image"] / small["per_image"]
        disk_small = small_store["bytes_allocated"] / n_small / photo_bytes
        disk_big = big_store["bytes_allocated"] / n_large / scan_bytes
        lines.append(
            f"- **{method_label(method)}**: a warm read costs {times(growth)} more per image for the large "
            f"images (the pixels are {scan_bytes / max(photo_bytes, 1):,.0f} times more), "
            f"{times(small['ratio_to_floor'])} the NumPy floor for small images and "
            f"{times(big['ratio_to_floor'])} for large ones; on disk it takes {disk_small:.2f} x the raw "
            f"pixels for small images and {disk_big:.2f} x for large ones."
        )
        (closer if big["ratio_to_floor"] < small["ratio_to_floor"] else farther).append(method_label(method))
    if closer:
        lines.append(f"Closer to the NumPy floor with large images, so their per-image overhead (a file, a key, a "
                     f"header) weighed more on small ones: {', '.join(closer)}.")
    if farther:
        lines.append(f"Further from the floor with large images, so their cost grows with the pixels (copying, "
                     f"compressing, pages of their own): {', '.join(farther)}.")
    return "\n".join(lines)


#: Fastest-to-slowest ratio of a measurement's runs above which the report explains the spread.
SPREAD_WORTH_EXPLAINING = 1.5


def spread_note(summary: pd.DataFrame) -> str:
    """How far the runs of each ``store_many`` at the largest cutoff spread, and what that spread is.

    Measured for LMDB (issue 10): over repeats of 100,000 images, the steps LMDB's own code takes besides
    copying the values (fallocate of the map, opening, truncating and closing the environment) took a
    few milliseconds each and barely varied, map growth never happened, and the system's dirty and
    writeback pages before a run did not predict its time. The whole spread was in the copy into the
    memory map: the kernel's time for giving a new file fresh page-cache pages, and the CPU time left by
    other processes. So the sentence is computed from this run's numbers and says the spread is the
    machine's.
    """
    rows = summary[(summary["operation"] == "store_many") & (summary["cache"] == "")]
    if rows.empty:
        return ""
    n = int(rows["n_images"].max())
    rows = rows[(rows["n_images"] == n) & (rows["runs"] > 1)]
    if "durable" in rows:
        rows = rows[~rows["durable"].astype(bool)]
    spreads = []
    for method in ordered_methods(rows["method"].unique()):
        row = rows[rows["method"] == method].iloc[0]
        if row["min"] > 0:
            spreads.append((row["max"] / row["min"], method, row))
    if not spreads:
        return ""
    widest = max(spreads, key=lambda item: item[0])
    described = "; ".join(
        f"{method_label(method)} {format_seconds(row['min'])} to {format_seconds(row['max'])} "
        f"({times(ratio)})"
        for ratio, method, row in spreads
    )
    if widest[0] < SPREAD_WORTH_EXPLAINING:
        return (
            f"**Spread between runs:** writing {n:,} images, each method's runs stayed within "
            f"{times(widest[0])} of each other ({described})."
        )
    written = widest[2].get("bytes_allocated", float("nan"))
    size = f" ({format_bytes(written)} here)" if np.isfinite(written) else ""
    return (
        f"**Spread between runs:** writing {n:,} images, the fastest and slowest runs of each method were "
        f"{described}. The widest, {method_label(widest[1])} at {times(widest[0])}, is this machine's, not "
        "the method's: every run wrote the same bytes into an emptied store, and the steps the code takes "
        "around the copy (for LMDB: reserving, opening, truncating and closing its file) take milliseconds "
        "and vary little. What varies is the operating system's share: handing the new batch fresh page "
        f"cache{size} while the previous batch's pages are freed, and the CPU time other processes leave. "
        "Compare methods by their medians; the range says how far one run on this machine can stray."
    )


# -- access patterns of a training loop (notebook 04) -------------------------------------------------
def _rate(row: pd.Series | None) -> float:
    """Images per second of a summary row (its median run), NaN when it was not measured."""
    return float(row["n_images"] / row["median"]) if row is not None else float("nan")


def _rate_text(rate: float) -> str:
    return f"{rate:,.0f}/s" if np.isfinite(rate) else "n/a"


def _access_row(rows: pd.DataFrame, method: str, operation: str, cache: str, workers: int = 0) -> pd.Series | None:
    found = rows[(rows["method"] == method) & (rows["operation"] == operation) & (rows["cache"] == cache)
                 & (rows["workers"] == workers)]
    return None if found.empty else found.iloc[0]


def _epoch_size(access: pd.DataFrame) -> int:
    return int(pattern_rows(access, "read_epoch")["n_images"].max())


def access_table(access: pd.DataFrame, many: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per method: random single reads (per image), shuffled epochs (images/s, warm and cold, then
    with each number of loader workers and the speed-up over reading in one process), and notebook 02's
    sequential ``read_many`` of as many images (images/s) beside them."""
    n = _epoch_size(access)
    sequential = pattern_rows(access, "read_many", many)
    worker_counts = sorted(w for w in set(access["workers"]) if w > 0)
    rows = []
    for method in ordered_methods(access["method"]):
        row = {"method": method_label(method)}
        for cache in ("warm", "cold"):
            single = _access_row(access, method, "read_random", cache)
            row[f"random image ({cache})"] = per_image(single["per_image"]) if single is not None else "n/a"
        for cache in ("warm", "cold"):
            row[f"shuffled epoch ({cache})"] = _rate_text(_rate(_access_row(access, method, "read_epoch", cache)))
        alone = _rate(_access_row(access, method, "read_epoch", "warm"))
        for workers in worker_counts:
            rate = _rate(_access_row(access, method, "read_epoch", "warm", workers))
            row[f"epoch, {workers} worker{'s' if workers > 1 else ''} (speed-up)"] = (
                f"{_rate_text(rate)} ({times(rate / alone)})" if np.isfinite(rate) else "n/a")
        for cache in ("warm", "cold"):
            row[f"sequential read_many ({cache})"] = _rate_text(
                _rate(pick(sequential, method, "read_many", n, cache)) if not sequential.empty else float("nan"))
        rows.append(row)
    table = pd.DataFrame(rows).set_index("method")
    table.columns.name = f"{n:,} images"
    return table


def _ranked_rates(rows: pd.DataFrame, operation: str, cache: str, workers: int = 0) -> list[tuple[str, float]]:
    """(method, images per second) of the storage methods (not the floor), fastest first."""
    found = [(method, _rate(_access_row(rows, method, operation, cache, workers)))
             for method in ordered_methods(rows["method"]) if method != stores.FLOOR]
    return sorted([item for item in found if np.isfinite(item[1])], key=lambda item: -item[1])


def _rate_sentence(ranked: list[tuple[str, float]], what: str) -> str:
    best, rate = ranked[0]
    others = ", ".join(f"{method_label(m)} {_rate_text(r)} ({times(rate / r)} slower)" for m, r in ranked[1:])
    return f"{what}: **{method_label(best)}** is fastest at {_rate_text(rate)}" + (f"; {others}." if others else ".")


def access_recommendations(access: pd.DataFrame, many: pd.DataFrame | None = None,
                           batch_size: int | None = None) -> str:
    """What the access-pattern rows recommend, as markdown bullets; every number computed from them."""
    n = _epoch_size(access)
    batch = f"in mini-batches of {batch_size}" if batch_size else "in mini-batches"
    lines = [f"Measured on a batch of {n:,} images."]
    warm = _ranked_rates(access, "read_epoch", "warm")
    cold = _ranked_rates(access, "read_epoch", "cold")
    if warm:
        lines.append("- " + _rate_sentence(warm, f"For shuffled training reads (one epoch {batch}, warm cache)"))
    if cold:
        lines.append("- " + _rate_sentence(cold, "For shuffled training reads from a cold cache (a first epoch, "
                                                 "or data larger than memory)"))
    single = [(m, float(_access_row(access, m, "read_random", "warm")["per_image"]))
              for m in ordered_methods(access["method"])
              if m != stores.FLOOR and _access_row(access, m, "read_random", "warm") is not None]
    if single:
        lines.append("- " + _winner_sentence(sorted(single, key=lambda item: item[1]),
                                             "For random single images (warm), per image", unit=per_image))
    gains = []
    for method, alone in warm:
        rates = [(w, _rate(_access_row(access, method, "read_epoch", "warm", w)))
                 for w in sorted(set(access["workers"])) if w > 0]
        rates = [item for item in rates if np.isfinite(item[1])]
        if rates:
            workers, rate = max(rates, key=lambda item: item[1])
            gains.append(f"{method_label(method)} {times(rate / alone)} with {workers}")
    if gains:
        lines.append("- Loader worker processes, best speed-up over reading in one process: " + ", ".join(gains)
                     + ". Workers pay off where decoding an image costs more than handing a batch back.")
    sequential = pattern_rows(access, "read_many", many)
    in_order = sorted(((m, _rate(pick(sequential, m, "read_many", n, "warm"))) for m, _ in warm),
                      key=lambda item: -item[1]) if not sequential.empty else []
    in_order = [item for item in in_order if np.isfinite(item[1])]
    if warm and in_order:
        def ranking(ranked):
            return " > ".join(method_label(m) for m, _ in ranked)

        changed = [m for m, _ in in_order] != [m for m, _ in warm]
        lines.append(f"- Reading the whole batch in order (notebook 02) ranks {ranking(in_order)}; a shuffled "
                     f"epoch ranks {ranking(warm)}"
                     + (": **the access pattern changes the ranking**." if changed else ": the same order."))
    if warm:
        advice = f"\n**For shuffled training reads, this run favours {method_label(warm[0][0])}**"
        if cold and cold[0][0] != warm[0][0]:
            advice += f", and {method_label(cold[0][0])} when the images are not in the page cache"
        lines.append(advice + ".")
    return "\n".join(lines)


def access_cache_note(access: pd.DataFrame, cold_cache_possible: object = True) -> str:
    """How much a cold page cache slowed each read pattern (time per image, cold over warm), and a caution
    when the page cache could not be emptied."""
    parts = []
    for method in ordered_methods(access["method"]):
        ratios = []
        for operation, what in (("read_random", "random images"), ("read_epoch", "epoch")):
            warm, cold = (_access_row(access, method, operation, cache) for cache in ("warm", "cold"))
            if warm is not None and cold is not None:
                ratios.append(f"{what} {times(cold['per_image'] / warm['per_image'])}")  # a cold epoch reads fewer
        if ratios:
            parts.append(f"{method_label(method)} ({', '.join(ratios)})")
    if not parts:
        return "Cold reads were not measured in this run (`cold_cache=False`): every read above is warm."
    text = "A cold read took this many times the warm one: " + "; ".join(parts) + "."
    if cold_cache_possible is False:
        text += (" **Caution:** the work folder's file system did not let the page cache be emptied (tmpfs, "
                 "for instance), so the 'cold' reads here were served from memory too.")
    return text


def compression_conclusions(results_dir: str | os.PathLike[str]) -> str:
    """The best lossless codec for each goal (smallest, fastest to read, best balance), per dataset the
    compression chapter measured, computed from its results (``helpers.report.chapters.compression.best_codecs``)."""
    from helpers.report.chapters import compression

    return compression.conclusions(results_dir)
