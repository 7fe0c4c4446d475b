import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.report import results
from helpers.report.results import COLUMNS, append_rows, read_results, reset, summarize

PROJECT = Path(__file__).resolve().parents[2]


def row(**fields) -> dict:
    base = {
        "experiment": "many_images", "method": "lmdb", "operation": "read_many", "n_images": 10,
        "repeat": 0, "cache": "warm", "durable": False, "seconds": 0.5,
        "bytes_apparent": np.nan, "bytes_allocated": np.nan, "files": np.nan, "dataset": "synthetic",
    }
    return {**base, **fields}


def store_row(**fields) -> dict:
    defaults = {
        "operation": "store_many", "cache": "", "bytes_apparent": 1000, "bytes_allocated": 4096, "files": 3,
    }
    return row(**{**defaults, **fields})


def test_columns_are_the_published_ones():
    assert COLUMNS == [
        "experiment", "method", "operation", "n_images", "repeat", "cache", "durable", "seconds",
        "bytes_apparent", "bytes_allocated", "files", "dataset", "workers",
    ]


def test_rows_round_trip_with_their_types(tmp_path):
    rows = [store_row(seconds=1.25), row(repeat=0, seconds=0.5), row(repeat=1, cache="cold", durable=True)]
    path = append_rows(tmp_path, "many_images", rows)
    assert path == tmp_path / "many_images.csv"
    table = read_results(tmp_path, "many_images")
    assert list(table.columns) == COLUMNS
    assert len(table) == 3
    assert table["n_images"].dtype == np.int64 and table["repeat"].dtype == np.int64
    assert table["durable"].dtype == bool and table["durable"].tolist() == [False, False, True]
    for column in ("seconds", "bytes_apparent", "bytes_allocated", "files"):
        assert table[column].dtype == np.float64
    for column in results.TEXT_COLUMNS:
        assert pd.api.types.is_string_dtype(table[column])
    assert table["cache"].tolist() == ["", "warm", "cold"]  # an empty cache stays "", not NaN
    assert table.loc[0, "bytes_allocated"] == 4096 and table.loc[0, "files"] == 3
    assert table.loc[1:, "bytes_apparent"].isna().all()
    assert table["seconds"].tolist() == [1.25, 0.5, 0.5]


def test_appends_accumulate_and_experiment_comes_from_the_argument(tmp_path):
    append_rows(tmp_path, "single_image", [row(experiment="whatever", operation="read_single", n_images=1)])
    append_rows(tmp_path, "single_image", pd.DataFrame([row(operation="read_single", n_images=1, repeat=1)]))
    table = read_results(tmp_path, "single_image")
    assert table["repeat"].tolist() == [0, 1]
    assert set(table["experiment"]) == {"single_image"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_reset_removes_the_table(tmp_path):
    append_rows(tmp_path, "many_images", [row()])
    reset(tmp_path, "many_images")
    assert not (tmp_path / "many_images.csv").exists()
    reset(tmp_path, "many_images")  # nothing to remove is fine


def test_missing_results_name_the_notebook_that_writes_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="02-many-images"):
        read_results(tmp_path, "many_images")
    with pytest.raises(FileNotFoundError, match="01-single-image"):
        read_results(tmp_path, "single_image")
    with pytest.raises(FileNotFoundError, match="06-compression"):
        results.read_table(tmp_path, "compression_quality")
    with pytest.raises(FileNotFoundError, match="00-setup"):
        results.read_facts(tmp_path)
    assert results.read_summary(tmp_path, "large_images", required=False) is None


# -- other tables and the run's facts ---------------------------------------------------------------
def test_a_table_round_trips_with_its_text_kept_as_text(tmp_path):
    frame = pd.DataFrame({"method": ["lmdb", "nan"], "skipped": ["", "jpeg cannot hold uint16 images"],
                          "psnr": [np.inf, np.nan], "lossy": [False, True], "image_bytes": [3072, 3072]})
    path = results.write_table(tmp_path, "compression_quality", frame)
    assert path == tmp_path / "compression_quality.csv"
    table = results.read_table(tmp_path, "compression_quality", text=("method", "skipped"))
    pd.testing.assert_frame_equal(table, frame)
    results.write_table(tmp_path, "compression_quality", frame.iloc[:1])  # replaced, not appended
    assert len(results.read_table(tmp_path, "compression_quality")) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_facts_are_added_to_and_replaced_by_name(tmp_path):
    results.record_facts(tmp_path, dataset_source="SYNTHETIC, no CIFAR-10", image_bytes=3072)
    results.record_facts(tmp_path, large_image_bytes=524_288, image_bytes=12)
    assert results.read_facts(tmp_path) == {"dataset_source": "SYNTHETIC, no CIFAR-10", "image_bytes": 12,
                                            "large_image_bytes": 524_288}


def test_read_summary_summarizes_the_table(tmp_path):
    append_rows(tmp_path, "many_images", [row(repeat=0, seconds=1.0), row(repeat=1, seconds=3.0)])
    summary = results.read_summary(tmp_path, "many_images")
    assert len(summary) == 1 and summary.iloc[0]["median"] == 2.0


@pytest.mark.parametrize(
    "bad, message",
    [
        (row(operation="read_everything"), "unknown operation"),
        (row(cache=""), "warm"),
        (store_row(cache="warm"), "empty cache"),
        (row(n_images=0), "n_images"),
        (row(seconds=-1.0), "seconds"),
        (row(durable="maybe"), "durable"),
    ],
)
def test_bad_rows_are_refused(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        append_rows(tmp_path, "many_images", [bad])
    assert not (tmp_path / "many_images.csv").exists()


def test_missing_or_extra_columns_are_refused(tmp_path):
    incomplete = row()
    del incomplete["seconds"]
    with pytest.raises(ValueError, match="seconds"):
        append_rows(tmp_path, "many_images", [incomplete])
    with pytest.raises(ValueError, match="colour"):
        append_rows(tmp_path, "many_images", [row(colour="red")])


def test_bad_experiment_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="experiment"):
        append_rows(tmp_path, "../elsewhere", [row()])


def test_a_damaged_file_is_reported(tmp_path):
    (tmp_path / "many_images.csv").write_text("method,seconds\nlmdb,1\n")
    with pytest.raises(ValueError, match="not a results table"):
        read_results(tmp_path, "many_images")


# -- summarize --------------------------------------------------------------------------------------
def test_summary_statistics_on_known_runs():
    seconds = [4.0, 1.0, 10.0, 3.0, 2.0]
    frame = pd.DataFrame([row(method="hdf5", repeat=i, seconds=s) for i, s in enumerate(seconds)])
    summary = summarize(results.with_dtypes(frame))
    assert len(summary) == 1
    line = summary.iloc[0]
    assert (line["median"], line["min"], line["max"]) == (3.0, 1.0, 10.0)
    assert (line["q1"], line["q3"], line["iqr"]) == (2.0, 4.0, 2.0)
    assert line["runs"] == 5
    assert line["per_image"] == pytest.approx(0.3)
    assert np.isnan(line["ratio_to_floor"])  # no npy rows
    assert list(summary.columns) == results.SUMMARY_COLUMNS


def test_summary_groups_and_divides_by_the_floor():
    rows = [
        *(row(method="npy", seconds=s, repeat=i) for i, s in enumerate([1.0, 2.0, 3.0])),
        *(row(method="disk", seconds=s, repeat=i) for i, s in enumerate([10.0, 20.0, 30.0])),
        *(row(method="disk", cache="cold", seconds=s, repeat=i) for i, s in enumerate([40.0, 50.0])),
        *(store_row(method="disk", seconds=s, repeat=i, bytes_allocated=b) for i, (s, b) in
          enumerate([(5.0, 8192), (7.0, 8192), (6.0, 12288)])),
        *(store_row(method="npy", seconds=2.0, repeat=i) for i in range(3)),
        *(row(method="disk", durable=True, seconds=9.0, repeat=i) for i in range(2)),
    ]
    summary = summarize(results.with_dtypes(pd.DataFrame(rows)))
    summary = summary.set_index(["method", "operation", "cache", "durable"])
    assert summary.loc[("disk", "read_many", "warm", False), "ratio_to_floor"] == 10.0
    assert summary.loc[("npy", "read_many", "warm", False), "ratio_to_floor"] == 1.0
    # no cold floor, and no durable floor, were measured
    assert np.isnan(summary.loc[("disk", "read_many", "cold", False), "ratio_to_floor"])
    assert np.isnan(summary.loc[("disk", "read_many", "warm", True), "ratio_to_floor"])
    store = summary.loc[("disk", "store_many", "", False)]
    assert store["median"] == 6.0 and store["ratio_to_floor"] == 3.0
    assert store["bytes_allocated"] == 8192 and store["bytes_apparent"] == 1000
    assert np.isnan(summary.loc[("disk", "read_many", "warm", False), "bytes_allocated"])
    assert summary.loc[("disk", "read_many", "cold", False), "runs"] == 2


def test_summary_of_nothing_has_the_columns():
    summary = summarize(results.empty_table())
    assert summary.empty and list(summary.columns) == results.SUMMARY_COLUMNS


# -- crash safety -----------------------------------------------------------------------------------
APPENDER = textwrap.dedent(
    """
    import sys
    from helpers.report.results import append_rows
    results_dir = sys.argv[1]
    repeat = 0
    while True:
        append_rows(results_dir, "many_images", [{
            "experiment": "many_images", "method": "disk", "operation": "read_many", "n_images": 100,
            "repeat": repeat, "cache": "warm", "durable": False, "seconds": 0.25 + repeat,
            "bytes_apparent": None, "bytes_allocated": None, "files": None, "dataset": "x" * 2000,
        }])
        repeat += 1
    """
)


def check_whole(table: pd.DataFrame) -> None:
    assert table["repeat"].tolist() == list(range(len(table)))
    assert table["seconds"].tolist() == [0.25 + r for r in range(len(table))]
    assert (table["dataset"] == "x" * 2000).all()


def test_a_results_file_survives_a_crash_between_rows(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    child = subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path)], env=env)
    path = tmp_path / "many_images.csv"
    try:
        deadline = time.monotonic() + 60
        readings = 0
        def enough() -> bool:
            return readings >= 20 and path.exists() and len(read_results(tmp_path, "many_images")) >= 30

        while time.monotonic() < deadline and not enough():
            if path.exists():
                check_whole(read_results(tmp_path, "many_images"))  # readers never see a partial file
                readings += 1
            time.sleep(0.01)
            assert child.poll() is None, "the appending process stopped on its own"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    table = read_results(tmp_path, "many_images")
    assert len(table) >= 30
    check_whole(table)
    after = row(method="disk", n_images=100, repeat=len(table), seconds=0.25 + len(table), dataset="x" * 2000)
    append_rows(tmp_path, "many_images", [after])
    check_whole(read_results(tmp_path, "many_images"))  # appending after the crash carries on
