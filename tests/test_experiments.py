from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from helpers.report import experiments
from helpers import measure, stores
from helpers.core import space
from helpers.core.errors import CorruptStoreError, DatasetError, InsufficientSpaceError, UnknownMethodError
from helpers.report.experiments import run_many, run_single, verify_round_trip
from helpers.report.results import COLUMNS, append_rows, read_results, summarize
from helpers.stores.npy_store import NpyStore

ARTICLE_METHODS = ["disk", "lmdb", "hdf5"]


@pytest.fixture(autouse=True)
def quick_timing(monkeypatch):
    # every measurement runs exactly `repeats` times: the tests check what is measured, not how fast
    monkeypatch.setattr(measure, "MIN_TOTAL_SECONDS", 0.0)


@pytest.fixture
def batch():
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(12, 6, 5, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=12)
    return images, labels


# -- verification ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", stores.names())
def test_verify_round_trip_accepts_every_store(tmp_path, batch, method):
    store = stores.open_store(method, tmp_path)
    verify_round_trip(store, *batch)
    verify_round_trip(store, *batch, write=False)


def test_verify_round_trip_names_the_method_whose_read_back_differs(tmp_path, batch, monkeypatch):
    original = NpyStore._read_batch

    def one_pixel_off(self, path, num_images):
        images, labels = original(self, path, num_images)
        images[3, 2, 1, 0] ^= 1
        return images, labels

    monkeypatch.setattr(NpyStore, "_read_batch", one_pixel_off)
    with pytest.raises(CorruptStoreError, match=r"npy store .* differ at index \(3, 2, 1, 0\)"):
        verify_round_trip(stores.open_store("npy", tmp_path), *batch)


def test_verify_round_trip_checks_labels_too(tmp_path, batch):
    images, labels = batch
    store = stores.open_store("hdf5", tmp_path)
    store.store_many(images, labels)
    with pytest.raises(CorruptStoreError, match="hdf5 store .*labels"):
        verify_round_trip(store, images, labels + 1, write=False)


def test_verify_single_catches_a_wrong_label(tmp_path, batch, monkeypatch):
    store = stores.open_store("lmdb", tmp_path)
    images, labels = batch
    experiments.verify_single(store, images[0], 4, int(labels[0]))
    with pytest.raises(CorruptStoreError, match="lmdb store .*label"):
        experiments.verify_single(store, images[0], 4, int(labels[0]) + 1, write=False)


# -- run_single -------------------------------------------------------------------------------------
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


# -- run_many ---------------------------------------------------------------------------------------
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
    monkeypatch.setattr(experiments, "evict", lambda files: events.append(("evict", len(files))))
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
