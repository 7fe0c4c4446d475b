"""The report's figures: drawn from a summary table, saved under stable names, with min-max error bars."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from helpers.report import plots
from helpers.report.results import COLUMNS, summarize

METHODS = ["disk", "lmdb", "hdf5", "npy"]
CUTOFFS = [10, 100, 1000]


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


@pytest.fixture(scope="module")
def many() -> pd.DataFrame:
    return summarize(fake_rows())


@pytest.mark.parametrize(
    ("draw", "name"),
    [
        (lambda s, d: plots.timing_plot(s, d, "store_many"), "store_many_linear"),
        (lambda s, d: plots.timing_plot(s, d, "store_many", log=True), "store_many_log"),
        (lambda s, d: plots.timing_plot(s, d, "read_many"), "read_many_linear"),
        (lambda s, d: plots.timing_plot(s, d, "read_many", log=True), "read_many_log"),
        (lambda s, d: plots.store_and_read_plot(s, d), "store_and_read"),
        (lambda s, d: plots.per_image_plot(s, d), "per_image_cost"),
        (lambda s, d: plots.disk_usage_stacked(s, d), "disk_usage_stacked"),
        (lambda s, d: plots.bytes_per_image_plot(s, d, raw_image_bytes=3072), "bytes_per_image"),
    ],
)
def test_each_figure_is_saved_as_png_and_svg_under_its_stable_name(many, tmp_path, draw, name):
    figure = draw(many, tmp_path)
    assert isinstance(figure, Figure)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.png", f"{name}.svg"]
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / f"{name}.svg").read_text()


def test_saving_the_same_figure_twice_gives_the_same_svg(many, tmp_path):
    plots.timing_plot(many, tmp_path / "a", "store_many")
    plots.timing_plot(many, tmp_path / "b", "store_many")
    assert (tmp_path / "a" / "store_many_linear.svg").read_bytes() == (tmp_path / "b" / "store_many_linear.svg").read_bytes()


def test_error_bars_run_from_the_fastest_to_the_slowest_run(many, tmp_path):
    figure = plots.timing_plot(many, tmp_path, "store_many")
    container = figure.axes[0].containers[0]  # the first method drawn: PNG files
    data_line, _caps, (bars,) = container.lines
    rows = many[(many["method"] == "disk") & (many["operation"] == "store_many")].sort_values("n_images")
    np.testing.assert_allclose(data_line.get_ydata(), rows["median"])
    lows = [segment[0][1] for segment in bars.get_segments()]
    highs = [segment[1][1] for segment in bars.get_segments()]
    np.testing.assert_allclose(lows, rows["min"])
    np.testing.assert_allclose(highs, rows["max"])


def test_reads_draw_warm_solid_and_cold_dashed_for_every_method(many, tmp_path):
    figure = plots.timing_plot(many, tmp_path, "read_many")
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels == ["PNG files", "LMDB", "HDF5", "NumPy floor (npy)", "warm cache", "cold cache"]
    styles = {line.get_label(): line.get_linestyle() for line in figure.axes[0].get_lines()}
    assert styles["warm cache"] == "-" and styles["cold cache"] == "--"


def test_per_image_cost_divides_by_the_number_of_images(many, tmp_path):
    figure = plots.per_image_plot(many, tmp_path)
    line = figure.axes[0].containers[0].lines[0]
    rows = many[(many["method"] == "disk") & (many["operation"] == "store_many")].sort_values("n_images")
    np.testing.assert_allclose(line.get_ydata(), rows["median"] / rows["n_images"] * 1e6)


def test_stacked_bars_stack_every_cutoff_in_kilobytes(many, tmp_path):
    figure = plots.disk_usage_stacked(many, tmp_path)
    allocated_axes = figure.axes[1]
    tops = {}
    for patch in allocated_axes.patches:
        x = round(patch.get_x() + patch.get_width() / 2)
        tops[x] = max(tops.get(x, 0), patch.get_y() + patch.get_height())
    stored = many[(many["operation"] == "store_many") & (many["method"] == "disk")]
    assert tops[0] == pytest.approx(stored["bytes_allocated"].sum() / 1000)
    assert [t.get_text() for t in allocated_axes.get_xticklabels()] == ["PNG files", "LMDB", "HDF5", "NumPy floor (npy)"]


def test_single_image_plot_has_a_panel_per_durability_setting(tmp_path):
    figure = plots.single_image_plot(summarize(fake_single()), tmp_path)
    assert len(figure.axes) == 2
    assert len(figure.axes[0].patches) == len(METHODS) * 3  # store, warm read, cold read
    assert (tmp_path / "single_image.png").exists()


def test_mixed_durability_must_be_chosen(tmp_path):
    mixed = summarize(fake_rows(durable_settings=(False, True)))
    with pytest.raises(ValueError, match="durable"):
        plots.timing_plot(mixed, tmp_path, "store_many")
    figure = plots.timing_plot(mixed, tmp_path, "store_many", durable=True)
    assert figure.axes[0].containers


def test_missing_rows_and_foreign_tables_are_refused(many, tmp_path):
    with pytest.raises(ValueError, match="no store_single"):
        plots.single_image_plot(many, tmp_path)
    with pytest.raises(ValueError, match="missing columns"):
        plots.timing_plot(pd.DataFrame({"method": ["disk"]}), tmp_path)


def test_methods_are_ordered_as_in_the_article_with_the_floor_last():
    assert plots.ordered_methods(["npy", "zarr", "hdf5", "disk", "lmdb"]) == ["disk", "lmdb", "hdf5", "zarr", "npy"]
    assert plots.method_color("zarr") == plots.method_color("zarr")


def test_sample_grid_shows_one_row_per_class(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(30) % 3
    figure = plots.sample_grid(images, labels, ["a", "b", "c"], tmp_path, per_class=4)
    assert len(figure.axes) == 12
    assert sum(bool(axes.images) for axes in figure.axes) == 12
    assert (tmp_path / "dataset_samples.svg").exists()


def test_the_memory_at_scale_plot_says_so_when_no_method_was_written(tmp_path):
    skipped = pd.DataFrame([{"method": "lmdb", "n_images": 1_000_000, "seconds": np.nan, "baseline_rss": np.nan,
                             "peak_rss": np.nan, "data_bytes": np.nan, "skipped": "its batch may need more disk"}])
    figure = plots.at_scale_memory_plot(skipped, tmp_path)
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert any("no method was written" in text for text in texts)
    assert (tmp_path / "at_scale_memory.png").exists()
