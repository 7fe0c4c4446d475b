"""Chapter 02: the main experiment (what is measured, in which order, refused before anything is written),
its figures (saved under stable names, min-max error bars) and its sentences, computed from the runs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from report_fixtures import fake_rows
from space_fixtures import fake_statvfs, images_of

from helpers import stores
from helpers.core import space
from helpers.core.errors import CorruptStoreError, DatasetError, InsufficientSpaceError, UnknownMethodError
from helpers.core.measure import format_bytes, format_seconds
from helpers.report import measuring
from helpers.report.chapters import many_images as chapter
from helpers.report.chapters.many_images import run_many
from helpers.report.durability import durability_statement
from helpers.report.results import COLUMNS, summarize
from helpers.stores.npy_store import NpyStore

ARTICLE_METHODS = ["disk", "lmdb", "hdf5"]


# -- the experiment --------------------------------------------------------------------------------------
def test_run_many_measures_each_method_cutoff_and_durability(tmp_path, batch):
    rows = run_many(*batch, ARTICLE_METHODS, [3, 12], repeats=2, cold_cache=True, work_dir=tmp_path,
                    durable=(False, True), dataset="random", progress=False)
    assert list(rows.columns) == COLUMNS
    assert set(rows["method"]) == {*ARTICLE_METHODS, "npy"}  # the floor comes along
    counts = rows.groupby(["method", "n_images", "durable", "operation", "cache"]).size()
    assert len(counts) == 4 * 2 * 2 * 3 and (counts == 2).all()
    assert set(rows["experiment"]) == {"many_images"}
    stored = rows[rows["operation"] == "store_many"]
    assert (stored["bytes_allocated"] > 0).all() and (stored["bytes_apparent"] > 0).all()
    disk_files = stored.loc[stored["method"] == "disk"].groupby("n_images")["files"].first()
    assert disk_files[12] - disk_files[3] == 9 and disk_files[3] >= 3  # one PNG per image
    assert rows.loc[rows["operation"] == "read_many", "files"].isna().all()
    summary = summarize(rows)
    assert summary["ratio_to_floor"].notna().all()


def test_run_many_does_not_add_the_floor_twice_or_when_told_not_to(tmp_path, batch):
    quick = dict(repeats=1, cold_cache=False, work_dir=tmp_path, progress=False)
    with_floor = run_many(*batch, ["npy", "hdf5"], [4], **quick)
    assert sorted(with_floor.groupby("method").size().to_dict().items()) == [("hdf5", 2), ("npy", 2)]
    without = run_many(*batch, ["hdf5"], [4], floor=False, **quick)
    assert set(without["method"]) == {"hdf5"}
    assert set(without["cache"]) == {"", "warm"}


def test_run_many_accepts_a_dataset(tmp_path, batch):
    dataset = SimpleNamespace(images=batch[0], labels=batch[1], source="synthetic, for the test")
    rows = run_many(dataset, None, ["lmdb"], [5], repeats=1, cold_cache=False, work_dir=tmp_path,
                    floor=False, progress=True)
    assert set(rows["dataset"]) == {"synthetic, for the test"}
    assert len(rows) == 2


def test_run_many_clears_before_each_write_and_evicts_before_each_cold_read(tmp_path, batch, monkeypatch):
    events = []
    monkeypatch.setattr(measuring, "evict", lambda files: events.append(("evict", len(files))))
    original_clear = NpyStore.clear

    def recording_clear(self):
        events.append(("clear", None))
        original_clear(self)

    monkeypatch.setattr(NpyStore, "clear", recording_clear)
    run_many(*batch, ["npy"], [6], repeats=3, cold_cache=True, work_dir=tmp_path, progress=False)
    files = len(stores.open_store("npy", tmp_path / "npy").files())
    # warm-up + 3 timed runs of each: a clear before every write, all files evicted before every cold read
    assert files >= 2
    assert events == [("clear", None)] * 4 + [("evict", files)] * 4


def test_run_many_refuses_a_cutoff_above_the_dataset(tmp_path, batch):
    with pytest.raises(DatasetError, match=r"helpers\.datasets\.load\(n=100\)"):
        run_many(*batch, ["hdf5"], [10, 100], repeats=1, cold_cache=False, work_dir=tmp_path, progress=False)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_run_many_refuses_unknown_methods_before_measuring(tmp_path, batch):
    with pytest.raises(UnknownMethodError, match="feather"):  # not a registered method
        run_many(*batch, ["hdf5", "feather"], [4], repeats=1, cold_cache=False, work_dir=tmp_path,
                 progress=False)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("cutoffs", [[], [0], [2.5], [True]])
def test_run_many_refuses_bad_cutoffs(tmp_path, batch, cutoffs):
    with pytest.raises(ValueError, match="cutoff"):
        run_many(*batch, ["hdf5"], cutoffs, repeats=1, cold_cache=False, work_dir=tmp_path, progress=False)


def test_run_many_stops_on_a_store_that_reads_back_wrong(tmp_path, batch, monkeypatch):
    original = NpyStore._read_batch

    def reversed_images(self, path, n):
        images, labels = original(self, path, n)
        return images[::-1].copy(), labels

    monkeypatch.setattr(NpyStore, "_read_batch", reversed_images)
    with pytest.raises(CorruptStoreError, match="npy"):
        run_many(*batch, ["hdf5"], [5], repeats=1, cold_cache=False, work_dir=tmp_path, progress=False)


def test_run_many_single_durability_flag(tmp_path, batch):
    rows = run_many(*batch, ["hdf5"], [4], repeats=1, cold_cache=False, work_dir=tmp_path, durable=True,
                    floor=False, progress=False)
    assert rows["durable"].all()
    assert isinstance(rows, pd.DataFrame)


def test_run_many_checks_free_space_for_the_whole_experiment_before_writing(tmp_path, batch, monkeypatch):
    monkeypatch.setattr(space, "free_bytes", lambda path: 10_000)
    with pytest.raises(InsufficientSpaceError, match=r"stores of up to 12 images.*10,000 bytes"):
        run_many(*batch, ARTICLE_METHODS, [4, 12], repeats=1, cold_cache=False, work_dir=tmp_path,
                 progress=False)
    assert list(tmp_path.iterdir()) == []


def test_run_many_disk_usage_counts_the_batch_only(tmp_path, batch):
    store = stores.open_store("hdf5", tmp_path / "hdf5")
    store.store_single(batch[0][0], 1, 1)  # left by an earlier experiment in the same folder
    rows = run_many(*batch, ["hdf5"], [12], repeats=1, cold_cache=False, work_dir=tmp_path, floor=False,
                    progress=False)
    stored = rows[rows.operation == "store_many"].iloc[0]
    assert stored.bytes_apparent == store.batch_path.stat().st_size
    assert stored.files == 1


def test_the_chapter_writes_its_tables_and_returns_their_summaries(tmp_path, batch):
    data = SimpleNamespace(images=batch[0], labels=batch[1], source="synthetic, for the test")
    many = chapter.measure(data, ["hdf5"], [4, 12], repeats=1, cold_cache=False, work_dir=tmp_path / "work",
                           results_dir=tmp_path / "results")
    assert set(many["method"]) == {"hdf5", "npy"} and set(many["n_images"]) == {4, 12}
    durability = chapter.measure_durability(data, ["hdf5"], [4, 12], repeats=1, work_dir=tmp_path / "work",
                                            results_dir=tmp_path / "results")
    assert set(durability["durable"]) == {False, True} and set(durability["n_images"]) == {12}
    assert (tmp_path / "work" / chapter.WORK_FOLDER / "hdf5").is_dir()
    assert "A separate comparison at 12 images" in durability_statement(many, durability)


# -- figures ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def many() -> pd.DataFrame:
    return summarize(fake_rows())


@pytest.mark.parametrize(
    ("draw", "name"),
    [
        (lambda s, d: chapter.timing_plot(s, d, "store_many"), "store_many_linear"),
        (lambda s, d: chapter.timing_plot(s, d, "store_many", log=True), "store_many_log"),
        (lambda s, d: chapter.timing_plot(s, d, "read_many"), "read_many_linear"),
        (lambda s, d: chapter.timing_plot(s, d, "read_many", log=True), "read_many_log"),
        (lambda s, d: chapter.store_and_read_plot(s, d), "store_and_read"),
        (lambda s, d: chapter.per_image_plot(s, d), "per_image_cost"),
    ],
)
def test_each_figure_is_saved_as_png_and_svg_under_its_stable_name(many, tmp_path, draw, name):
    figure = draw(many, tmp_path)
    assert isinstance(figure, Figure)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.png", f"{name}.svg"]
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / f"{name}.svg").read_text()


def test_saving_the_same_figure_twice_gives_the_same_svg(many, tmp_path):
    chapter.timing_plot(many, tmp_path / "a", "store_many")
    chapter.timing_plot(many, tmp_path / "b", "store_many")
    assert (tmp_path / "a" / "store_many_linear.svg").read_bytes() == (tmp_path / "b" / "store_many_linear.svg").read_bytes()


def test_error_bars_run_from_the_fastest_to_the_slowest_run(many, tmp_path):
    figure = chapter.timing_plot(many, tmp_path, "store_many")
    container = figure.axes[0].containers[0]  # the first method drawn: PNG files
    data_line, _caps, (bars,) = container.lines
    rows = many[(many["method"] == "disk") & (many["operation"] == "store_many")].sort_values("n_images")
    np.testing.assert_allclose(data_line.get_ydata(), rows["median"])
    lows = [segment[0][1] for segment in bars.get_segments()]
    highs = [segment[1][1] for segment in bars.get_segments()]
    np.testing.assert_allclose(lows, rows["min"])
    np.testing.assert_allclose(highs, rows["max"])


def test_reads_draw_warm_solid_and_cold_dashed_for_every_method(many, tmp_path):
    figure = chapter.timing_plot(many, tmp_path, "read_many")
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels == ["PNG files", "LMDB", "HDF5", "NumPy floor (npy)", "warm cache", "cold cache"]
    styles = {line.get_label(): line.get_linestyle() for line in figure.axes[0].get_lines()}
    assert styles["warm cache"] == "-" and styles["cold cache"] == "--"


def test_per_image_cost_divides_by_the_number_of_images(many, tmp_path):
    figure = chapter.per_image_plot(many, tmp_path)
    line = figure.axes[0].containers[0].lines[0]
    rows = many[(many["method"] == "disk") & (many["operation"] == "store_many")].sort_values("n_images")
    np.testing.assert_allclose(line.get_ydata(), rows["median"] / rows["n_images"] * 1e6)


def test_mixed_durability_must_be_chosen(tmp_path):
    mixed = summarize(fake_rows(durable_settings=(False, True)))
    with pytest.raises(ValueError, match="durable"):
        chapter.timing_plot(mixed, tmp_path, "store_many")
    figure = chapter.timing_plot(mixed, tmp_path, "store_many", durable=True)
    assert figure.axes[0].containers


def test_a_foreign_table_is_refused(tmp_path):
    with pytest.raises(ValueError, match="missing columns"):
        chapter.timing_plot(pd.DataFrame({"method": ["disk"]}), tmp_path)


# -- sentences -------------------------------------------------------------------------------------------
def spread_rows(spreads: dict[str, tuple[float, float, float]], n: int = 100_000) -> pd.DataFrame:
    rows = [
        dict(method=method, operation="store_many", n_images=n, cache="", durable=False, runs=3,
             min=low, median=mid, max=high, bytes_allocated=float(n * 4096))
        for method, (low, mid, high) in spreads.items()
    ]
    rows.append(dict(method="lmdb", operation="store_many", n_images=10, cache="", durable=False, runs=3,
                     min=0.001, median=0.001, max=0.1))  # a smaller cutoff does not count
    return pd.DataFrame(rows)


def test_a_wide_spread_is_given_with_its_numbers_and_called_the_machines():
    note = chapter.spread_note(spread_rows({"lmdb": (0.150, 0.2, 0.593), "disk": (15.6, 20.0, 28.9)}))
    assert "100,000" in note
    assert format_seconds(0.150) in note and format_seconds(0.593) in note
    assert "4.0x" in note and "LMDB at 4.0x" in note
    assert "machine" in note and "median" in note
    assert format_bytes(100_000 * 4096) in note  # the size of the batch the runs wrote


def test_runs_that_agree_are_said_to_agree():
    note = chapter.spread_note(spread_rows({"lmdb": (0.150, 0.155, 0.160)}))
    assert "stayed within" in note and "machine" not in note


def test_nothing_to_say_without_repeated_store_many_runs():
    assert chapter.spread_note(pd.DataFrame(columns=["method", "operation", "n_images", "cache", "durable", "runs",
                                                     "min", "median", "max"])) == ""
    single_runs = spread_rows({"lmdb": (0.1, 0.1, 0.1)}).assign(runs=1)
    assert chapter.spread_note(single_runs) == ""


@pytest.mark.parametrize(("fs_type", "journal", "cautions"), [
    ("ext4", False, True), ("ext4", True, False), ("ext4", None, False), ("xfs", None, False), (None, None, False),
])
def test_the_file_system_caution_appears_only_for_ext4_without_a_journal(fs_type, journal, cautions):
    info = {"filesystem_type": fs_type, "filesystem_journal": journal, "filesystem_device": "/dev/vdz"}
    note = chapter.file_system_note({k: v for k, v in info.items() if v is not None})
    assert ("without a journal" in note and "/dev/vdz" in note) is cautions
    assert (note == "") is not cautions


def test_the_cache_note_gives_cold_over_warm_and_says_when_there_were_no_cold_reads(many):
    note = chapter.cache_note(many, cold_cache_possible=False)
    assert "At 1,000 images, a cold read took this many times the warm read: PNG files 1.0x" in note
    assert "Caution" in note
    warm_only = many[many["cache"] != "cold"]
    assert "not measured in this run" in chapter.cache_note(warm_only)


def test_experiment_level_check_counts_inodes(tmp_path, monkeypatch):
    assert stores.experiment_files(["disk"], [10, 1000], include_single=False) >= 1000 + stores.store_class(
        stores.FLOOR
    ).files_needed(1000, single=False)
    images, labels = images_of(1000)
    fake_statvfs(monkeypatch, files=1_000_000, favail=900)
    with pytest.raises(InsufficientSpaceError, match="inodes"):
        run_many(
            images, labels, methods=["disk"], cutoffs=[1000], work_dir=tmp_path, repeats=1,
            cold_cache=False, progress=False,
        )
    assert not any(tmp_path.iterdir())  # refused before any store was made
