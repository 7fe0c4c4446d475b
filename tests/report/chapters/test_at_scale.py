"""Chapter 07: what is written at scale, and the sentences and figures that follow its measured numbers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

from helpers.core.measure import format_bytes
from helpers.report import results
from helpers.report.chapters import at_scale as scale
from helpers.stores import estimate_bytes


def conversion_rows(method: str, compression: str, one: float, two: float) -> list[dict]:
    return [{"method": method, "compression": compression, "workers": workers, "n_images": 20_000,
             "seconds": seconds, "speed_up": one / seconds, "parallel_writers": scale.parallel_writers(method)}
            for workers, seconds in ((1, one), (2, two))]


def test_each_way_of_writing_is_explained_from_its_numbers():
    table = pd.DataFrame(conversion_rows("disk", "png", 6.0, 3.5) + conversion_rows("lmdb", "png", 1.7, 1.2)
                         + conversion_rows("sqlite", "", 0.13, 0.126) + conversion_rows("hdf5", "", 1.0, 0.6))
    writes = pd.DataFrame([{"method": "sqlite", "n_images": 1_000_000, "seconds": 6.4, "skipped": ""},
                           {"method": "hdf5", "n_images": 1_000_000, "seconds": 2.0, "skipped": ""}])
    lines = scale.conversions_markdown(table, writes).splitlines()
    assert lines[0].startswith("- **disk (png values)**: 2 workers 1.71x one worker; its batch is made of independent")
    assert "the workers encode every image with png" in lines[1] and "1.42x" in lines[1]
    assert "0.13 s" in lines[2] and "the writer is the whole of it and more workers cannot help" in lines[2]
    assert "takes the writer about 0.04 s" in lines[3] and "the rest is making the images" in lines[3]


def test_what_a_writers_peak_memory_leaves_out_is_said_by_the_method(monkeypatch):
    def written(*methods: str) -> pd.DataFrame:
        return pd.DataFrame([{"method": method, "n_images": 1_000, "seconds": 1.0, "baseline_rss": 1e8,
                              "peak_rss": 1.5e8, "data_bytes": 3_072_000, "skipped": ""} for method in methods])

    pool = ("- The PNG method encodes in a pool of worker processes (a few shards each at a time), whose memory is "
            "not in its row: the row is the writing process's own.")
    assert scale.writes_markdown(written("lmdb", "disk")).splitlines()[-1] == pool
    assert "pool" not in scale.writes_markdown(written("lmdb", "hdf5"))
    monkeypatch.setattr(scale.store_class("hdf5"), "writer_memory_note", "HDF5 keeps memory elsewhere.")
    assert scale.writes_markdown(written("hdf5", "disk")).splitlines()[-2:] == [pool, "- HDF5 keeps memory elsewhere."]


def test_conversions_store_png_values_where_a_method_takes_them():
    plan = dict(scale.conversion_plan(["disk", "lmdb", "hdf5", "zarr"]))
    assert plan == {"disk": "png", "lmdb": "png", "hdf5": None, "zarr": None}


def test_a_write_that_would_not_fit_the_disk_is_skipped_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(scale.space, "free_bytes", lambda path: 1 << 20)  # the parent's check only
    writes = scale.scale_writes(["hdf5"], 20_000, tmp_path, probe_images=1_000)
    row = writes.iloc[0]
    needed = format_bytes(estimate_bytes("hdf5", 20_000, (32, 32, 3), np.uint8))
    assert f"may need {needed} of disk" in row.skipped and "free some space or set work_dir" in row.skipped
    assert pd.isna(row.seconds) and not (tmp_path / "at-scale-hdf5").exists()
    assert "**hdf5** was not written at 20,000 images" in scale.writes_markdown(writes)
    monkeypatch.undo()
    written = scale.scale_writes(["hdf5"], 2_000, tmp_path, probe_images=1_000).iloc[0]
    assert written.skipped == "" and written.seconds > 0


def test_the_writes_of_the_methods_and_the_floor_are_left_in_the_results(tmp_path):
    writes = scale.measure_writes(["hdf5"], 1_000, work_dir=tmp_path / "work", results_dir=tmp_path / "results")
    assert list(writes["method"]) == ["hdf5", "npy"] and (writes["skipped"] == "").all()
    saved = results.read_table(tmp_path / "results", scale.WRITES_TABLE, text=("method", "skipped"))
    assert list(saved["method"]) == ["hdf5", "npy"] and (saved["skipped"] == "").all()
    scale.at_scale_memory_plot(writes, tmp_path)
    assert (tmp_path / "at_scale_memory.png").exists()


def test_the_memory_at_scale_plot_says_so_when_no_method_was_written(tmp_path):
    skipped = pd.DataFrame([{"method": "lmdb", "n_images": 1_000_000, "seconds": np.nan, "baseline_rss": np.nan,
                             "peak_rss": np.nan, "data_bytes": np.nan, "skipped": "its batch may need more disk"}])
    figure = scale.at_scale_memory_plot(skipped, tmp_path)
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert any("no method was written" in text for text in texts)
    assert (tmp_path / "at_scale_memory.png").exists()


def test_the_conversion_figure_has_a_bar_per_method_and_cluster_size(tmp_path):
    table = pd.DataFrame(conversion_rows("disk", "png", 6.0, 3.5) + conversion_rows("hdf5", "", 1.0, 0.6))
    figure = scale.conversion_speed_up_plot(table, tmp_path)
    assert len(figure.axes[0].patches) == 4
    assert [label.get_text() for label in figure.axes[0].get_xticklabels()] == ["PNG files", "HDF5"]
    assert list(scale.conversion_table(table).columns) == ["method", "compression", "workers", "n_images",
                                                           "seconds", "speed_up", "parallel_writers"]
