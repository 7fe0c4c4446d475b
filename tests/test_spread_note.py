"""The report's sentence on how far repeated runs spread, computed from the measured runs."""

from __future__ import annotations

import pandas as pd

from helpers.report import summary


def summary_rows(spreads: dict[str, tuple[float, float, float]], n: int = 100_000) -> pd.DataFrame:
    rows = [
        dict(method=method, operation="store_many", n_images=n, cache="", durable=False, runs=3,
             min=low, median=mid, max=high, bytes_allocated=float(n * 4096))
        for method, (low, mid, high) in spreads.items()
    ]
    rows.append(dict(method="lmdb", operation="store_many", n_images=10, cache="", durable=False, runs=3,
                     min=0.001, median=0.001, max=0.1))  # a smaller cutoff does not count
    return pd.DataFrame(rows)


def test_a_wide_spread_is_given_with_its_numbers_and_called_the_machines():
    note = summary.spread_note(summary_rows({"lmdb": (0.150, 0.2, 0.593), "disk": (15.6, 20.0, 28.9)}))
    assert "100,000" in note
    assert summary.format_seconds(0.150) in note and summary.format_seconds(0.593) in note
    assert "4.0x" in note and "LMDB at 4.0x" in note
    assert "machine" in note and "median" in note
    assert summary.format_bytes(100_000 * 4096) in note  # the size of the batch the runs wrote


def test_runs_that_agree_are_said_to_agree():
    note = summary.spread_note(summary_rows({"lmdb": (0.150, 0.155, 0.160)}))
    assert "stayed within" in note and "machine" not in note


def test_nothing_to_say_without_repeated_store_many_runs():
    assert summary.spread_note(pd.DataFrame(columns=["method", "operation", "n_images", "cache", "durable", "runs",
                                                     "min", "median", "max"])) == ""
    single_runs = summary_rows({"lmdb": (0.1, 0.1, 0.1)}).assign(runs=1)
    assert summary.spread_note(single_runs) == ""
