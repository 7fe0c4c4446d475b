"""How the report writes its numbers, and picks them out of a summary table.

Every sentence of the report that carries a number takes it from a table of
``helpers.report.results.summarize``; these are the pieces the chapters share to find that number and
write it the same way everywhere: a timing with its spread, a ratio, a cost per image, a ranking of the
methods with the best first, and the box that says which images were measured.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from helpers.core.measure import format_seconds
from helpers.datasets import is_synthetic_source
from helpers.report.style import method_label, ordered_methods
from helpers.stores import FLOOR

#: Said where a chapter would compare cold reads with warm ones and none were measured.
NO_COLD_READS = "Cold reads were not measured in this run (`cold_cache=False`): every read above is warm."
#: Added where 'cold' reads were measured on a file system whose page cache could not be emptied.
COLD_CACHE_CAUTION = (" **Caution:** the work folder's file system did not let the page cache be emptied (tmpfs, "
                      "for instance), so the 'cold' reads here were served from memory too.")


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


def stored_methods(summary: pd.DataFrame, n: int) -> Iterator[tuple[str, pd.Series]]:
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


def ranked(summary: pd.DataFrame, n: int, operation: str, cache: str, value: str = "median") -> list[tuple[str, float]]:
    """(method, value) of the storage methods (not the floor), best (smallest) first."""
    found = []
    for method in ordered_methods(summary["method"]):
        if method == FLOOR:
            continue
        row = pick(summary, method, operation, n, cache)
        if row is not None and pd.notna(row[value]):
            found.append((method, float(row[value])))
    return sorted(found, key=lambda item: item[1])


def winner_sentence(ranking: list[tuple[str, float]], what: str, unit: Callable[[float], str] = format_seconds) -> str:
    """'what: **best** is best at its value; the others with theirs (and how many times the best's)'."""
    best, best_value = ranking[0]
    others = ", ".join(f"{method_label(m)} {unit(v)} ({times(v / best_value)})" for m, v in ranking[1:])
    return f"{what}: **{method_label(best)}** is best at {unit(best_value)}" + (f"; {others}." if others else ".")


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
