"""Zarr: the contract, and what only this method promises (its layout, its two readers, zarr's own codecs,
files plain zarr opens)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from stores.contract import Damage, StoreContract
from stores.faults import batch_file, flip, garble, truncate_to_half
from stores.samples import (
    INTEROP_BATCHES,
    cut,
    file_bytes,
    images_with_extreme_labels,
    random_images,
    small_batch,
)

from helpers.core.errors import CorruptStoreError
from helpers.stores import open_store, zarr_store


class TestZarr(StoreContract):
    method = "zarr"
    bounded_memory_totals = (False,)
    damage_cases = [
        Damage("shard-cut-in-half", batch_file("images/c.0.0.0.0"), truncate_to_half, "read_many", 10),
        Damage("shard-missing", batch_file("images/c.0.0.0.0"), Path.unlink, "read_many", 10),
        Damage("shard-byte-flipped", batch_file("images/c.0.0.0.0"), lambda p: flip(p, 5000), "read_many", 10),
        Damage("group-zarr-json-missing", batch_file("zarr.json"), Path.unlink, "read_many", 10),
        Damage("images-zarr-json-garbage", batch_file("images/zarr.json"), garble, "read_many", 10),
        Damage("labels-chunk-cut", batch_file("labels/c.0"), truncate_to_half, "read_many", 10),
        Damage("single-chunk-cut", lambda s: s.root / "single" / "2.zarr" / "image" / "c.0.0.0", truncate_to_half,
               "read_single", 2),
        Damage("single-zarr-json-garbage", lambda s: s.root / "single" / "2.zarr" / "zarr.json", garble,
               "read_single", 2),
    ]


def test_zarr_layout_is_sized_in_bytes():
    assert zarr_store.layout(100_000, (32, 32, 3), 1) == (128, 128 * 32)
    assert zarr_store.layout(300, (32, 32, 3), 1) == (128, 384)
    assert zarr_store.layout(5, (32, 32, 3), 1) == (5, 5)
    assert zarr_store.layout(1000, (512, 512), 2) == (1, 32)


def test_zarr_writes_every_chunk_even_all_zeros(tmp_path):
    images = np.zeros((300, 8, 8), dtype=np.uint8)
    store = open_store("zarr", tmp_path)
    store.store_many(images, np.zeros(300, dtype=np.int64))
    np.testing.assert_array_equal(store.read_many(300)[0], images)
    store.close()
    (store.batch_path / "images" / "c.0.0.0").unlink()
    with pytest.raises(CorruptStoreError, match="c.0.0.0"):
        store.read_many(300)


@pytest.fixture(params=["tensorstore", "zarr-python"])
def zarr_backend(request, monkeypatch):
    """Read with TensorStore, or with zarr-python as a child forked after TensorStore started would."""
    monkeypatch.setattr(zarr_store, "_tensorstore_pid", None if request.param == "tensorstore" else -1)
    return request.param


def test_zarr_both_readers_read_the_same(tmp_path, zarr_backend):
    images, labels = images_with_extreme_labels(700, (12, 10), np.uint16)
    store = open_store("zarr", tmp_path)
    store.store_many(images, labels)
    reader = store.batch_reader()
    assert reader.uses_tensorstore == (zarr_backend == "tensorstore")
    order = [699, 0, 5, 5, 300, 128, 127]
    back, back_labels = store.read_indices(order)
    np.testing.assert_array_equal(back, images[order])
    np.testing.assert_array_equal(back_labels, labels[order])
    image, label = reader.read_one(699)
    np.testing.assert_array_equal(image, images[699])
    assert label == labels[699]
    np.testing.assert_array_equal(store.read_many(450)[0], images[:450])


def test_zarr_both_readers_refuse_a_flipped_pixel_byte(tmp_path, zarr_backend):
    images, labels = images_with_extreme_labels(300, (8, 8, 3))
    store = open_store("zarr", tmp_path)
    store.store_many(images, labels)
    shard = store.batch_path / "images" / "c.0.0.0.0"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0x5A
    shard.write_bytes(bytes(data))
    store.close()
    for read in (lambda: store.read_many(300), lambda: store.read_indices([1]), lambda: store.batch_reader().read_one(0)):
        with pytest.raises(CorruptStoreError, match="c.0.0.0.0"):
            read()


@pytest.mark.parametrize("compression", [None, "zstd"])
def test_zarr_without_a_total_grows_shard_by_shard_into_the_layout_its_count_gives(compression, tmp_path):
    images = random_images(2_345, shape=(64, 64, 3))  # 32 images a chunk, 1,024 a shard (4,096 compressed)
    labels = np.arange(2_345)
    serial = open_store("zarr", tmp_path / "serial", compression=compression)
    serial.store_many(images, labels)
    chunked = open_store("zarr", tmp_path / "chunked", compression=compression)
    chunked.store_chunks(cut(images, labels, [5, 1_500, 3, 837]))
    np.testing.assert_array_equal(chunked.read_many(2_345)[0], images)
    assert file_bytes(chunked) == file_bytes(serial)


def test_zarr_compresses_one_image_per_chunk_with_zarrs_own_codec(tmp_path):
    images, labels = small_batch(shape=(16, 16))
    store = open_store("zarr", tmp_path, compression="blosc")
    store.store_many(images, labels)
    array = zarr.open_group(store.batch_path, mode="r")["images"]
    assert array.chunks == (1, 16, 16)
    assert [type(codec).__name__ for codec in array.compressors] == ["BloscCodec", "Crc32cCodec"]
    np.testing.assert_array_equal(array[...], images)


@pytest.mark.parametrize("shape,dtype", INTEROP_BATCHES, ids=str)
def test_zarr_batch_opens_with_plain_zarr(tmp_path, shape, dtype):
    images, labels = images_with_extreme_labels(300, shape, dtype)
    store = open_store("zarr", tmp_path / "store")
    store.store_many(images, labels)
    group = zarr.open_group(store.batch_path, mode="r")
    assert group["images"].dtype == dtype and group["images"].shape == images.shape
    np.testing.assert_array_equal(group["images"][...], images)
    np.testing.assert_array_equal(group["labels"][...], labels)
    # Written under a temporary name and renamed: no metadata may remember where it was written.
    for metadata in store.batch_path.rglob("zarr.json"):
        assert str(tmp_path) not in metadata.read_text()


def test_zarr_single_image_opens_with_plain_zarr(tmp_path):
    images, labels = images_with_extreme_labels(3, (9, 7), np.uint16)
    store = open_store("zarr", tmp_path)
    store.store_single(images[0], 42, int(labels[1]))
    group = zarr.open_group(tmp_path / "single" / "42.zarr", mode="r")
    np.testing.assert_array_equal(group["image"][...], images[0])
    assert group.attrs["label"] == labels[1]
