"""Chapter 03: the article's stacked bars, the bytes per image, and why the methods differ, from the numbers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
from report_fixtures import fake_rows, summary_of

from helpers import stores
from helpers.report import disk_space
from helpers.report.chapters import disk_usage as chapter
from helpers.report.results import summarize
from helpers.report.text import pick


@pytest.fixture(scope="module")
def many() -> pd.DataFrame:
    return summarize(fake_rows())


@pytest.mark.parametrize(
    ("draw", "name"),
    [
        (lambda s, d: chapter.disk_usage_stacked(s, d), "disk_usage_stacked"),
        (lambda s, d: disk_space.bytes_per_image_plot(s, d, raw_image_bytes=3072), "bytes_per_image"),
    ],
)
def test_each_figure_is_saved_as_png_and_svg_under_its_stable_name(many, tmp_path, draw, name):
    draw(many, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.png", f"{name}.svg"]


def test_stacked_bars_stack_every_cutoff_in_kilobytes(many, tmp_path):
    figure = chapter.disk_usage_stacked(many, tmp_path)
    allocated_axes = figure.axes[1]
    tops = {}
    for patch in allocated_axes.patches:
        x = round(patch.get_x() + patch.get_width() / 2)
        tops[x] = max(tops.get(x, 0), patch.get_y() + patch.get_height())
    stored = many[(many["operation"] == "store_many") & (many["method"] == "disk")]
    assert tops[0] == pytest.approx(stored["bytes_allocated"].sum() / 1000)
    assert [t.get_text() for t in allocated_axes.get_xticklabels()] == ["PNG files", "LMDB", "HDF5", "NumPy floor (npy)"]


def test_every_method_explains_its_disk_usage_from_its_own_numbers():
    measured = summary_of({"disk": 1e-3, "lmdb": 2e-5, "hdf5": 1e-5, "parquet": 2e-5, "arrow": 1e-5,
                           "sqlite": 3e-5, "npy": 5e-6})
    text = chapter.disk_explanation(measured, raw_image_bytes=2900)
    lines = {line.split("**")[1]: line for line in text.splitlines() if line.startswith("- **")}
    assert list(lines) == ["PNG files", "LMDB", "HDF5", "Parquet", "Arrow IPC", "SQLite", "NumPy floor (npy)"]
    for method in ("Parquet", "Arrow IPC", "SQLite"):  # 3,000 bytes per image measured, 2,900 of pixels
        assert "100 bytes per image" in lines[method] and "3.4%" in lines[method], lines[method]
    assert "row group" in lines["Parquet"] and "record-batch" in lines["Arrow IPC"] and "64 KiB" in lines["SQLite"]
    assert "a file of ~3,000 bytes still takes a full block" in lines["PNG files"]
    assert "whole overflow pages of its own" in lines["LMDB"] and "one contiguous, uncompressed array" in lines["HDF5"]
    assert "the least any uncompressed method can take" in lines["NumPy floor (npy)"]


def test_a_method_without_a_disk_usage_note_is_explained_by_its_trade_off():
    stored = pick(summary_of({"zarr": 1e-5, "npy": 5e-6}), "zarr", "store_many", 1000)
    assert stores.store_class("zarr").disk_usage_note(1000, 3_000_000, 4_096_000, 2900) == ""
    assert chapter.method_note("zarr", 1000, stored, 2900) == stores.store_class("zarr").trade_off
