"""Chapter 04's experiment, table, cache note and figures: what is measured and how it is told."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_fixtures import access_summary, sequential_summary

from helpers import stores
from helpers.report.chapters import access_patterns as chapter
from helpers.report.results import COLUMNS, append_rows, read_results


def test_run_access_times_every_pattern_for_every_method(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, size=(30, 6, 5, 3), dtype=np.uint8)
    labels = np.arange(30)
    rows = chapter.run_access(images, labels, ["disk", "lmdb"], batch_size=8, workers=[2], repeats=1,
                              cold_cache=True, work_dir=tmp_path, random_reads=10, progress=False)
    assert list(rows.columns) == COLUMNS
    measured = set(zip(rows["method"], rows["operation"], rows["cache"], rows["workers"], rows["n_images"]))
    for method in ("disk", "lmdb", "npy"):
        assert {(method, "read_random", "warm", 0, 10), (method, "read_random", "cold", 0, 10),
                (method, "read_epoch", "warm", 0, 30), (method, "read_epoch", "cold", 0, 30),
                (method, "read_epoch", "warm", 2, 30)} <= measured
    append_rows(tmp_path, chapter.EXPERIMENT, rows)
    assert set(read_results(tmp_path, chapter.EXPERIMENT)["workers"]) == {0, 2}
    # A second run finds the same images in place and keeps them.
    batch = tmp_path / "lmdb" / "many.lmdb" / "data.mdb"
    before = batch.stat().st_mtime_ns
    chapter.run_access(images, labels, ["lmdb"], workers=[], repeats=1, cold_cache=False, work_dir=tmp_path,
                       random_reads=5, floor=False, progress=False)
    assert batch.stat().st_mtime_ns == before


def test_run_access_refuses_zero_workers(tmp_path):
    images = np.zeros((4, 2, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="workers"):
        chapter.run_access(images, np.arange(4), ["npy"], workers=[0], repeats=1, cold_cache=False,
                           work_dir=tmp_path)


@pytest.fixture
def access() -> pd.DataFrame:
    return access_summary()


@pytest.fixture
def many() -> pd.DataFrame:
    return sequential_summary()


def test_access_table_puts_every_pattern_side_by_side(access, many):
    table = chapter.access_table(access, many)
    assert list(table.index) == ["PNG files", "LMDB", "HDF5", "NumPy floor (npy)"]
    assert table.loc["LMDB", "shuffled epoch (warm)"] == "5,000/s"
    assert table.loc["PNG files", "epoch, 2 workers (speed-up)"] == "182/s (1.8x)"
    assert table.loc["HDF5", "sequential read_many (warm)"] == "100,000/s"
    assert table.loc["LMDB", "random image (warm)"] == "2 µs"
    assert table.loc["LMDB", "sequential read_many (cold)"] == "n/a"


def test_cache_note_gives_cold_over_warm_and_cautions(access):
    note = chapter.access_cache_note(access, cold_cache_possible=False)
    assert "LMDB (random images 5.0x, epoch 3.0x)" in note and "Caution" in note


def test_access_figures_are_saved(access, many, tmp_path):
    for pattern in ("read_random", "read_epoch", "read_many"):
        chapter.access_pattern_plot(access, tmp_path, pattern, many=many)
        assert (tmp_path / f"access_{pattern}.png").exists() and (tmp_path / f"access_{pattern}.svg").exists()
    chapter.workers_plot(access, tmp_path)
    assert (tmp_path / "access_workers.png").exists()
    with pytest.raises(ValueError, match="unknown read pattern"):
        chapter.access_pattern_plot(access, tmp_path, "read_sideways")


def test_png_names_only_the_files_a_read_opens(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, size=(12, 4, 4, 3), dtype=np.uint8)
    png = stores.open_store("disk", tmp_path / "disk")
    png.store_many(images, np.arange(12))
    files = png.files_holding([7, 3, 7])
    assert {path.name for path in files} == {"batch.json", "labels.csv", "3.png", "7.png"}
    assert all(path.exists() for path in files)
    lmdb = stores.open_store("lmdb", tmp_path / "lmdb")
    lmdb.store_many(images, np.arange(12))
    assert lmdb.files_holding([1]) == lmdb.files()
