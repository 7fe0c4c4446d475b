"""How every chapter measures: verify first, the methods and cutoffs it takes, the rows it writes."""

from types import SimpleNamespace

import numpy as np
import pytest

from helpers import measure, stores
from helpers.core.errors import CorruptStoreError, ImageFormatError, UnknownMethodError
from helpers.report import measuring
from helpers.report.measuring import verify_round_trip
from helpers.stores.npy_store import NpyStore


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


def test_no_methods_means_every_registered_one_and_the_floor_comes_once():
    every = [name for name in stores.names() if name != stores.FLOOR]
    assert measuring.checked_methods(None, floor=False) == every
    assert measuring.checked_methods(None, floor=True) == [*every, stores.FLOOR]
    assert measuring.checked_methods("lmdb", floor=True) == ["lmdb", stores.FLOOR]
    assert measuring.checked_methods(["npy", "lmdb", "npy"], floor=True) == ["npy", "lmdb"]
    with pytest.raises(UnknownMethodError, match="feather"):
        measuring.checked_methods(["feather"], floor=True)


def test_a_dataset_or_arrays_are_unpacked_and_checked(batch):
    dataset = SimpleNamespace(images=batch[0], labels=batch[1], source="synthetic, for the test")
    images, labels, name = measuring.unpack(dataset, None, "")
    assert images is dataset.images and name == "synthetic, for the test"
    with pytest.raises(ImageFormatError, match="labels is None"):
        measuring.unpack(batch[0], None, "")
    with pytest.raises(ImageFormatError, match="one per image"):
        measuring.unpack(batch[0], batch[1][:3], "")


def test_timing_rows_give_each_run_its_row_and_reads_no_disk_usage():
    timing = measure.Timing((0.5, 0.25))
    rows = measuring.timing_rows(timing, usage=None, method="lmdb", operation="read_many")
    assert [row["seconds"] for row in rows] == [0.5, 0.25] and [row["repeat"] for row in rows] == [0, 1]
    assert all(np.isnan(row["bytes_allocated"]) for row in rows)
