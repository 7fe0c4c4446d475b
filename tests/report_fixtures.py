"""Results tables with known numbers, for the report's tables, sentences and figures (no store is written)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.report.results import COLUMNS, summarize

METHODS = ["disk", "lmdb", "hdf5", "npy"]
CUTOFFS = [10, 100, 1000]


def summary_of(read_seconds: dict, n_values=(10, 1000), store_seconds=None) -> pd.DataFrame:
    """The summary of one run per measurement: ``read_seconds`` per image per method (cold twice as slow),
    stores as slow per image unless ``store_seconds`` says otherwise, 3,000 bytes (4,096 allocated) per image."""
    rows = []
    for method, seconds_per_image in read_seconds.items():
        for n in n_values:
            stored = (store_seconds or read_seconds)[method] * n
            for operation, cache, seconds in (("store_many", "", stored),
                                              ("read_many", "warm", seconds_per_image * n),
                                              ("read_many", "cold", seconds_per_image * n * 2)):
                rows.append({"experiment": "many_images", "method": method, "operation": operation, "n_images": n,
                             "repeat": 0, "cache": cache, "durable": False, "seconds": seconds,
                             "bytes_apparent": 3000.0 * n if operation == "store_many" else np.nan,
                             "bytes_allocated": 4096.0 * n if operation == "store_many" else np.nan,
                             "files": 1.0 if operation == "store_many" else np.nan, "dataset": "synthetic"})
    return summarize(pd.DataFrame(rows, columns=COLUMNS))


def fake_rows(durable_settings=(False,)) -> pd.DataFrame:
    """Three runs per measurement with known seconds: base, base * 1.5, base * 3 (median 1.5 x base)."""
    rows = []
    for durable in durable_settings:
        for m_index, method in enumerate(METHODS):
            for n in CUTOFFS:
                base = (m_index + 1) * 1e-4 * n * (3 if durable else 1)
                measurements = [("store_many", "", base)] + [("read_many", c, base / 2) for c in ("warm", "cold")]
                for operation, cache, seconds in measurements:
                    for repeat, factor in enumerate((1.0, 1.5, 3.0)):
                        stored = operation.startswith("store")
                        rows.append({
                            "experiment": "many_images", "method": method, "operation": operation, "n_images": n,
                            "repeat": repeat, "cache": cache, "durable": durable, "seconds": seconds * factor,
                            "bytes_apparent": 3000 * n * (m_index + 1) if stored else np.nan,
                            "bytes_allocated": 4096 * n * (m_index + 1) if stored else np.nan,
                            "files": n if stored else np.nan, "dataset": "synthetic",
                        })
    return pd.DataFrame(rows, columns=COLUMNS)


def fake_single() -> pd.DataFrame:
    """store_single and read_single (warm, cold) of every method, flushed and not: 1, 2 and 4 ms."""
    rows = []
    for durable in (False, True):
        for method in METHODS:
            for operation, cache in (("store_single", ""), ("read_single", "warm"), ("read_single", "cold")):
                for repeat, seconds in enumerate((1e-3, 2e-3, 4e-3)):
                    stored = operation == "store_single"
                    rows.append({
                        "experiment": "single_image", "method": method, "operation": operation, "n_images": 1,
                        "repeat": repeat, "cache": cache, "durable": durable, "seconds": seconds,
                        "bytes_apparent": 5000 if stored else np.nan, "bytes_allocated": 8192 if stored else np.nan,
                        "files": 2 if stored else np.nan, "dataset": "synthetic",
                    })
    return pd.DataFrame(rows, columns=COLUMNS)


def access_rows(method: str, operation: str, n: int, seconds: float, cache: str = "warm",
                workers: int = 0) -> list[dict]:
    """Three runs of one read of the access-patterns chapter, around ``seconds``."""
    return [{"experiment": "access_patterns", "method": method, "operation": operation, "n_images": n,
             "repeat": repeat, "cache": cache, "durable": False, "seconds": seconds * (0.9 + 0.1 * repeat),
             "bytes_apparent": np.nan, "bytes_allocated": np.nan, "files": np.nan, "dataset": "synthetic",
             "workers": workers} for repeat in range(3)]


def access_summary() -> pd.DataFrame:
    """PNG slow but helped by workers, LMDB fastest shuffled, HDF5 fastest in order (see ``sequential_summary``)."""
    rows = []
    for method, epoch, single, two in (("disk", 10.0, 1e-4, 5.5), ("lmdb", 0.2, 2e-6, 0.25),
                                       ("hdf5", 0.4, 3e-6, 0.5), ("npy", 0.05, 1e-6, 0.3)):
        rows += access_rows(method, "read_epoch", 1000, epoch)
        rows += access_rows(method, "read_epoch", 1000, epoch * 3, cache="cold")
        rows += access_rows(method, "read_epoch", 1000, two, workers=2)
        rows += access_rows(method, "read_random", 100, single * 100)
        rows += access_rows(method, "read_random", 100, single * 500, cache="cold")
    return summarize(pd.DataFrame(rows, columns=COLUMNS))


def sequential_summary() -> pd.DataFrame:
    """The many-images chapter's read_many of the same 1,000 images: HDF5 and the floor fastest."""
    rows = []
    for method, seconds in (("disk", 8.0), ("lmdb", 0.05), ("hdf5", 0.01), ("npy", 0.01)):
        rows += [{**row, "experiment": "many_images", "operation": "read_many"}
                 for row in access_rows(method, "read_many", 1000, seconds)]
    return summarize(pd.DataFrame(rows, columns=COLUMNS))
