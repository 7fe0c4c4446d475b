"""What writes flushed to stable storage cost, and how the report says which setting it measured: the
many-images chapter measures both settings, the conclusions repeat its statement and its cost."""

from __future__ import annotations

import pandas as pd

from helpers.report.text import pick


def durability_pair(
    summary: pd.DataFrame, method: str, n: int | None = None
) -> tuple[pd.Series, pd.Series] | None:
    """The store_many rows of ``method`` with writes not flushed and flushed, or None unless both exist."""
    relaxed = pick(summary, method, "store_many", n, durable=False)
    flushed = pick(summary, method, "store_many", n, durable=True)
    return None if relaxed is None or flushed is None else (relaxed, flushed)


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
