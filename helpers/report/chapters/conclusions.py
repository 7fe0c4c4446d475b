"""Chapter 09, conclusions (notebooks/09-conclusions.ipynb): what this run's measurements say, and how they
compare with the article.

Everything here is computed from the results tables the earlier chapters wrote (``helpers.report.results``),
never from their code: the summary at the largest count, the recommendations, the best codecs (from the
compression chapter's ``compression_trade_off`` table), small photos against large scans (with the raw bytes
of one image of each from the run's facts). The only numbers written down are the article's published
results, kept in ``ARTICLE_RESULTS`` and quoted as such.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from helpers.core.measure import format_bytes, format_seconds
from helpers.report import results
from helpers.report.durability import durability_pair
from helpers.report.style import method_label, ordered_methods
from helpers.report.text import (
    largest_cutoff,
    per_image,
    pick,
    ranked,
    stored_methods,
    timed,
    times,
    winner_sentence,
)
from helpers.stores import FLOOR, names, store_class

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
#: The article's ratios set beside this run's: (what, operation or disk column, cache, numerator, denominator).
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


# -- the summary and the recommendations -----------------------------------------------------------------
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


def floor_verdict(many: pd.DataFrame, n: int, best: str) -> str | None:
    """How the best reader compares with the NumPy floor, or None when either was not measured."""
    floor = pick(many, FLOOR, "read_many", n, "warm")
    best_read = pick(many, best, "read_many", n, "warm")
    if floor is None or best_read is None:
        return None
    ratio = best_read["ratio_to_floor"]
    if ratio < 1:
        verdict = ("faster than the floor: timings this close are within the machine's noise, and the floor is "
                   "a reference point, not a hard limit.")
    elif ratio < 2:
        verdict = "little is left to gain."
    else:
        verdict = "there is still room below it."
    return (f"- {method_label(best)} reads in {times(ratio)} the time the NumPy floor takes to read "
            f"the same images back as one raw array ({format_seconds(floor['median'])}): {verdict}")


def single_image_lines(single: pd.DataFrame | None) -> list[str]:
    """The best method for one image at a time, reading and writing, with writes not flushed where measured."""
    if single is None or single.empty:
        return []
    unflushed = single[~single["durable"]] if (~single["durable"]).any() else single
    lines = []
    for operation, cache, what in (("read_single", "warm", "reading (warm)"), ("store_single", "", "writing")):
        ranking = ranked(unflushed, 1, operation, cache)
        if ranking:
            lines.append("- " + winner_sentence(ranking, f"One image at a time, {what}"))
    return lines


def durability_line(durability: pd.DataFrame | None) -> list[str]:
    """What flushing every write multiplied each method's store time by, as one bullet (none if not measured)."""
    if durability is None or durability.empty:
        return []
    costs = []
    for method in ordered_methods(durability["method"]):
        pair = durability_pair(durability, method)
        if pair is not None and method != FLOOR:
            relaxed, flushed = pair
            costs.append(f"{method_label(method)} {times(flushed['median'] / relaxed['median'])}")
    if not costs:
        return []
    dn = int(durability["n_images"].max())
    return [f"- Making writes durable (flushed to disk before returning) multiplied the time to "
            f"store {dn:,} images by: " + ", ".join(costs) + "."]


def recommendations(many: pd.DataFrame, single: pd.DataFrame | None = None,
                    durability: pd.DataFrame | None = None) -> str:
    """Recommendations as markdown bullets, each chosen and quantified from the measured numbers."""
    n = largest_cutoff(many)
    lines = [f"Measured at {n:,} images unless said otherwise."]
    reads = ranked(many, n, "read_many", "warm")
    if not reads:
        return lines[0] + " No read was measured."
    lines.append("- " + winner_sentence(reads, f"Reading {n:,} images (warm cache)"))
    cold = ranked(many, n, "read_many", "cold")
    if cold:
        lines.append("- " + winner_sentence(cold, "Reading them cold (files evicted from the page cache)"))
    lines.append("- " + winner_sentence(ranked(many, n, "store_many", ""), f"Writing {n:,} images"))
    space = ranked(many, n, "store_many", "", "bytes_allocated")
    if space:
        lines.append("- " + winner_sentence(space, "Disk space (allocated)", unit=lambda b: format_bytes(int(b))))
    if verdict := floor_verdict(many, n, reads[0][0]):
        lines.append(verdict)
    lines += single_image_lines(single)
    lines += durability_line(durability)
    best, second = reads[0][0], reads[1][0] if len(reads) > 1 else None
    advice = (f"\n**For a read-heavy workload such as training a model on a fixed set of images, this run "
              f"favours {method_label(best)}**")
    if second:
        advice += f", then {method_label(second)} ({times(reads[1][1] / reads[0][1])} slower to read)"
    # What each method offers that the numbers do not show, in its own words (Store.choose_when).
    reasons = [store_class(m).choose_when for m in ordered_methods(many["method"]) if m in names()]
    lines.append(advice + ". Choose " + "; ".join(reason for reason in reasons if reason) + ".")
    return "\n".join(lines)


def compression_conclusions(results_dir: str | os.PathLike[str]) -> str:
    """The best lossless codec for each goal on each dataset the compression chapter measured, as Markdown,
    from its ``compression_trade_off`` results table."""
    try:
        trade_offs = results.read_table(results_dir, "compression_trade_off", text=("method", "codec", "dataset"))
    except FileNotFoundError:
        return "The compression chapter (06) did not run, so no codec is recommended."
    lines = []
    for dataset in trade_offs["dataset"].unique():
        best = best_codecs(trade_offs[trade_offs["dataset"] == dataset])
        if best:
            smallest, fastest, balance = best["smallest"], best["fastest"], best["balance"]
            lines.append(
                f"- **{dataset}**: smallest, {with_codec(smallest)} ({smallest['ratio']:.2f}x, "
                f"{format_bytes(int(smallest['bytes_per_image']))} per image); fastest to read, "
                f"{with_codec(fastest)} ({format_seconds(fastest['shuffled_per_image'])} per image "
                f"in a shuffled epoch); best balance of size and read time, {with_codec(balance)}."
            )
    return "\n".join(lines) or "The compression chapter measured no lossless codec."


def best_codecs(table: pd.DataFrame) -> dict[str, pd.Series]:
    """The lossless variant with a codec best for each goal: ``smallest`` (allocated bytes), ``fastest``
    (shuffled read) and ``balance`` (smallest product of the two, each divided by the best of its kind)."""
    if table.empty:
        return {}
    compressed = table[~table["lossy"].astype(bool) & (table["codec"] != "none")]
    if compressed.empty:
        return {}
    score = (compressed["bytes_per_image"] / compressed["bytes_per_image"].min()) * (
        compressed["shuffled_per_image"] / compressed["shuffled_per_image"].min()
    )
    return {
        "smallest": compressed.loc[compressed["bytes_per_image"].idxmin()],
        "fastest": compressed.loc[compressed["shuffled_per_image"].idxmin()],
        "balance": compressed.loc[score.idxmin()],
    }


def with_codec(variant: pd.Series) -> str:
    return f"{variant['method']} with {variant['codec']}"


# -- the article ---------------------------------------------------------------------------------------
def comparison_cutoff(summary: pd.DataFrame) -> int:
    """The article's 100,000 images if this run measured it, else this run's largest cutoff."""
    measured = set(summary.loc[summary["operation"] == "store_many", "n_images"])
    return ARTICLE_RESULTS["n_images"] if ARTICLE_RESULTS["n_images"] in measured else largest_cutoff(summary)


def article_value(kind: str, method: str) -> float:
    if kind == "store_many":
        return ARTICLE_RESULTS["store_seconds"][method]
    if kind == "read_many":
        return ARTICLE_RESULTS["read_seconds"][method]
    return ARTICLE_RESULTS["disk_kb"][method]


def measured_value(summary: pd.DataFrame, kind: str, cache: str, method: str, n: int) -> float:
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
        article = article_value(kind, top) / article_value(kind, bottom)
        here = measured_value(summary, kind, cache, top, n) / measured_value(summary, kind, cache, bottom, n)
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


# -- small photos and large scans ------------------------------------------------------------------------
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
        small, big = ranked(many, n_small, operation, cache), ranked(large, n_large, operation, cache)
        if small and big:
            lines.append(f"- {what}: fastest for small images {method_label(small[0][0])}, for large ones "
                         f"{method_label(big[0][0])}.")
    closer, farther = [], []
    for method in ordered_methods([*many["method"], *large["method"]]):
        if method == FLOOR:
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
