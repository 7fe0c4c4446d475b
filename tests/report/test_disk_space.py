"""The disk-space table and figure the disk-usage and large-images chapters share."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
from report_fixtures import fake_rows

from helpers.report import disk_space
from helpers.report.results import summarize


def test_the_table_gives_each_store_its_bytes_per_image_and_block_rounding():
    table = disk_space.disk_table(summarize(fake_rows()))
    row = table.loc[("1,000", "PNG files")]
    assert row["apparent per image"] == "3,000 B" and row["allocated per image"] == "4,096 B"
    assert row["allocated / apparent"] == "1.37"
    assert list(table.loc["10"].index) == ["PNG files", "LMDB", "HDF5", "NumPy floor (npy)"]


def test_the_figure_draws_allocated_and_apparent_bytes_and_the_raw_pixels(tmp_path):
    figure = disk_space.bytes_per_image_plot(summarize(fake_rows()), tmp_path, raw_image_bytes=3072, name="x")
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels[:4] == ["PNG files", "LMDB", "HDF5", "NumPy floor (npy)"]
    assert "raw pixels (3,072 bytes)" in labels and "allocated" in labels and "apparent" in labels
    assert (tmp_path / "x.png").exists()


def test_rows_without_disk_usage_are_refused(tmp_path):
    summary = summarize(fake_rows())
    summary[["bytes_apparent", "bytes_allocated"]] = float("nan")
    with pytest.raises(ValueError, match="no disk usage"):
        disk_space.bytes_per_image_plot(summary, tmp_path)
