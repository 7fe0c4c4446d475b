"""Chapter 01: one image stored and read back per method, checked first, and the figure that shows it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace

import numpy as np
import pytest
from report_fixtures import fake_rows, fake_single

from helpers import stores
from helpers.core.errors import CorruptStoreError
from helpers.report.chapters import single_image as chapter
from helpers.report.chapters.single_image import run_single
from helpers.report.results import COLUMNS, append_rows, read_results, summarize

ARTICLE_METHODS = ["disk", "lmdb", "hdf5"]


def test_verify_single_catches_a_wrong_label(tmp_path, batch):
    store = stores.open_store("lmdb", tmp_path)
    images, labels = batch
    chapter.verify_single(store, images[0], 4, int(labels[0]))
    with pytest.raises(CorruptStoreError, match="lmdb store .*label"):
        chapter.verify_single(store, images[0], 4, int(labels[0]) + 1, write=False)


def test_run_single_times_store_and_reads(tmp_path, batch):
    rows = run_single(
        *batch, ARTICLE_METHODS, repeats=2, cold_cache=True, work_dir=tmp_path, dataset="random"
    )
    assert list(rows.columns) == COLUMNS
    counts = rows.groupby(["method", "operation", "cache"]).size()
    for method in ARTICLE_METHODS:
        assert counts[(method, "store_single", "")] == 2
        assert counts[(method, "read_single", "warm")] == 2
        assert counts[(method, "read_single", "cold")] == 2
    assert set(rows["experiment"]) == {"single_image"}
    assert (rows["n_images"] == 1).all() and (~rows["durable"]).all()
    assert set(rows["dataset"]) == {"random"}
    assert (rows["seconds"] > 0).all()
    stored = rows[rows["operation"] == "store_single"]
    assert (stored["files"] >= 1).all() and (stored["bytes_allocated"] > 0).all()
    assert rows.loc[rows["operation"] == "read_single", ["bytes_apparent", "files"]].isna().all().all()
    for method in ARTICLE_METHODS:  # each method in its own folder, holding the single image
        image, label = stores.open_store(method, tmp_path / method).read_single(0)
        np.testing.assert_array_equal(image, batch[0][0])


def test_run_single_rows_can_be_saved(tmp_path, batch):
    rows = run_single(*batch, ["npy"], repeats=1, cold_cache=False, work_dir=tmp_path / "work", durable=True)
    append_rows(tmp_path / "results", "single_image", rows)
    table = read_results(tmp_path / "results", "single_image")
    assert len(table) == 2 and table["durable"].all()
    assert set(table["cache"]) == {"", "warm"}


def test_the_chapter_measures_both_durabilities_and_lists_the_files_each_store_left(tmp_path, batch):
    data = SimpleNamespace(images=batch[0][:1], labels=batch[1][:1], source="synthetic, for the test")
    single = chapter.measure(data, ["hdf5"], repeats=1, cold_cache=False, work_dir=tmp_path / "work",
                             results_dir=tmp_path / "results")
    assert set(single["method"]) == {"hdf5", "npy"} and set(single["durable"]) == {False, True}
    files = chapter.store_files_table(tmp_path / "work", ["hdf5"])
    assert set(files.index.get_level_values("method")) == {"HDF5", "NumPy floor (npy)"}
    assert (files["bytes allocated"] > 0).all()
    table = chapter.single_table(single)
    assert table.loc[("HDF5", "yes"), "store"] and "read, warm cache" in table.columns


def test_single_image_plot_has_a_panel_per_durability_setting(tmp_path):
    figure = chapter.single_image_plot(summarize(fake_single()), tmp_path)
    assert len(figure.axes) == 2
    assert len(figure.axes[0].patches) == 4 * 3  # store, warm read, cold read of each method
    assert (tmp_path / "single_image.png").exists()


def test_the_figure_refuses_a_table_without_single_images(tmp_path):
    with pytest.raises(ValueError, match="no store_single"):
        chapter.single_image_plot(summarize(fake_rows()), tmp_path)
