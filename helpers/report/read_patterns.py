"""The read patterns of a training loop, and what they recommend.

The access-patterns chapter (04) measures them into the ``access_patterns`` results table; its figures and
table read them with ``pattern_rows``, and ``access_recommendations`` turns them into advice, which the
conclusions (09) repeat from the same table. Rates are images per second of a row's median run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.report.style import method_label, ordered_methods
from helpers.report.text import per_image, pick, times, winner_sentence
from helpers.stores import FLOOR

#: The read patterns the access-patterns chapter compares, in the order a reader meets them.
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
        raise ValueError("no read_epoch rows: run notebooks/04-access-patterns.ipynb first")
    if pattern == "read_many":
        if many is None:
            return access.iloc[0:0]
        rows = many[(many["operation"] == "read_many") & (many["n_images"] == epochs["n_images"].max())]
        return rows[~rows["durable"]] if (~rows["durable"]).any() else rows
    if pattern not in ACCESS_PATTERNS:
        raise ValueError(f"unknown read pattern {pattern!r}; expected one of {list(ACCESS_PATTERNS)}")
    rows = access[access["operation"] == pattern]
    return rows[rows["workers"] == 0]


def access_row(rows: pd.DataFrame, method: str, operation: str, cache: str, workers: int = 0) -> pd.Series | None:
    """The one summary row of this read by ``workers`` loader processes, or None when it was not measured."""
    found = rows[(rows["method"] == method) & (rows["operation"] == operation) & (rows["cache"] == cache)
                 & (rows["workers"] == workers)]
    return None if found.empty else found.iloc[0]


def rate(row: pd.Series | None) -> float:
    """Images per second of a summary row (its median run), NaN when it was not measured."""
    return float(row["n_images"] / row["median"]) if row is not None else float("nan")


def rate_text(value: float) -> str:
    return f"{value:,.0f}/s" if np.isfinite(value) else "n/a"


def epoch_size(access: pd.DataFrame) -> int:
    """The images of the batch the chapter read (those of one warm epoch)."""
    return int(pattern_rows(access, "read_epoch")["n_images"].max())


def ranked_rates(rows: pd.DataFrame, operation: str, cache: str, workers: int = 0) -> list[tuple[str, float]]:
    """(method, images per second) of the storage methods (not the floor), fastest first."""
    found = [(method, rate(access_row(rows, method, operation, cache, workers)))
             for method in ordered_methods(rows["method"]) if method != FLOOR]
    return sorted([item for item in found if np.isfinite(item[1])], key=lambda item: -item[1])


def rate_sentence(ranking: list[tuple[str, float]], what: str) -> str:
    best, fastest = ranking[0]
    others = ", ".join(f"{method_label(m)} {rate_text(r)} ({times(fastest / r)} slower)" for m, r in ranking[1:])
    return f"{what}: **{method_label(best)}** is fastest at {rate_text(fastest)}" + (f"; {others}." if others else ".")


def worker_gains(access: pd.DataFrame, warm: list[tuple[str, float]]) -> list[str]:
    """Per method, the best speed-up of a warm epoch with loader workers over reading in one process."""
    gains = []
    for method, alone in warm:
        rates = [(w, rate(access_row(access, method, "read_epoch", "warm", w)))
                 for w in sorted(set(access["workers"])) if w > 0]
        rates = [item for item in rates if np.isfinite(item[1])]
        if rates:
            workers, fastest = max(rates, key=lambda item: item[1])
            gains.append(f"{method_label(method)} {times(fastest / alone)} with {workers}")
    return gains


def ranking_change(access: pd.DataFrame, many: pd.DataFrame | None, warm: list[tuple[str, float]]) -> str:
    """How reading the batch in order (notebook 02) ranks the methods beside a shuffled epoch, or ""."""
    sequential = pattern_rows(access, "read_many", many)
    if sequential.empty:
        return ""
    n = epoch_size(access)
    in_order = sorted(((m, rate(pick(sequential, m, "read_many", n, "warm"))) for m, _ in warm),
                      key=lambda item: -item[1])
    in_order = [item for item in in_order if np.isfinite(item[1])]
    if not in_order:
        return ""

    def ranking(methods: list[tuple[str, float]]) -> str:
        return " > ".join(method_label(m) for m, _ in methods)

    changed = [m for m, _ in in_order] != [m for m, _ in warm]
    return (f"- Reading the whole batch in order (notebook 02) ranks {ranking(in_order)}; a shuffled epoch ranks "
            f"{ranking(warm)}" + (": **the access pattern changes the ranking**." if changed else ": the same order."))


def access_recommendations(access: pd.DataFrame, many: pd.DataFrame | None = None,
                           batch_size: int | None = None) -> str:
    """What the access-pattern rows recommend, as markdown bullets; every number computed from them."""
    batch = f"in mini-batches of {batch_size}" if batch_size else "in mini-batches"
    lines = [f"Measured on a batch of {epoch_size(access):,} images."]
    warm = ranked_rates(access, "read_epoch", "warm")
    cold = ranked_rates(access, "read_epoch", "cold")
    if warm:
        lines.append("- " + rate_sentence(warm, f"For shuffled training reads (one epoch {batch}, warm cache)"))
    if cold:
        lines.append("- " + rate_sentence(cold, "For shuffled training reads from a cold cache (a first epoch, "
                                                "or data larger than memory)"))
    single = [(m, float(access_row(access, m, "read_random", "warm")["per_image"]))
              for m in ordered_methods(access["method"])
              if m != FLOOR and access_row(access, m, "read_random", "warm") is not None]
    if single:
        lines.append("- " + winner_sentence(sorted(single, key=lambda item: item[1]),
                                            "For random single images (warm), per image", unit=per_image))
    gains = worker_gains(access, warm)
    if gains:
        lines.append("- Loader worker processes, best speed-up over reading in one process: " + ", ".join(gains)
                     + ". Workers pay off where decoding an image costs more than handing a batch back.")
    if warm and (change := ranking_change(access, many, warm)):
        lines.append(change)
    if warm:
        advice = f"\n**For shuffled training reads, this run favours {method_label(warm[0][0])}**"
        if cold and cold[0][0] != warm[0][0]:
            advice += f", and {method_label(cold[0][0])} when the images are not in the page cache"
        lines.append(advice + ".")
    return "\n".join(lines)
