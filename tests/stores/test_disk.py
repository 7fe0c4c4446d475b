"""PNG files on disk: the contract, and what only this method promises (byte-identical parallel writes,
standard image files, PNG's own checksums)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from stores.contract import Damage, StoreContract
from stores.faults import batch_file, flip, garble, read_in_child, truncate_to_half
from stores.samples import digest, labels_for, random_images, small_batch, smooth_image

from helpers.codecs import get_codec
from helpers.stores import open_store
from helpers.stores.disk import DiskStore, png_path


class TestDisk(StoreContract):
    method = "disk"
    chunks_keep_bytes = (False, True)  # shards are regrouped: the same files however the batch was cut
    damage_cases = [
        Damage("png-cut-in-half", lambda s: png_path(s.batch_path, 3), truncate_to_half, "read_many", 10),
        Damage("png-missing", lambda s: png_path(s.batch_path, 3), Path.unlink, "read_many", 10),
        Damage("labels-csv-missing", batch_file("labels.csv"), Path.unlink, "read_many", 10),
        Damage("labels-csv-cut", batch_file("labels.csv"), truncate_to_half, "read_many", 300),
        Damage("batch-json-garbage", batch_file("batch.json"), garble, "read_many", 1),
        Damage("single-png-cut", lambda s: s.root / "single" / "2.png", truncate_to_half, "read_single", 2),
        Damage("single-csv-missing", lambda s: s.root / "single" / "2.csv", Path.unlink, "read_single", 2),
    ]


def test_parallel_png_files_are_byte_identical_to_one_process(tmp_path):
    images = random_images(2_100, (8, 8, 3), seed=4)  # three shard folders: the pool writes them
    labels = np.arange(2_100) % 10
    one = DiskStore(tmp_path / "one", workers=1)
    many = DiskStore(tmp_path / "many", workers=2)
    one.store_many(images, labels)
    many.store_many(images, labels)
    one_files = {p.relative_to(one.root): p.read_bytes() for p in one.files()}
    many_files = {p.relative_to(many.root): p.read_bytes() for p in many.files()}
    assert one_files.keys() == many_files.keys() and len(one_files) == 2_100 + 2
    assert one_files == many_files
    np.testing.assert_array_equal(many.read_many(2_100)[0], images)


# PNG carries a CRC-32 per chunk, checked on every read. The raw formats (contiguous HDF5 data, .npy, LMDB
# values) carry none for pixels, as the stores' docstrings say: checking one per read would cost more than
# the read itself at page-cache speed, so a flipped pixel byte there is out of this test's reach.
def test_flipped_bytes_in_png_pixels_are_detected(tmp_path):
    store = open_store("disk", tmp_path)
    images = np.repeat(smooth_image()[np.newaxis], 300, axis=0)
    images[:, 0, 0, 0] = np.arange(300) % 256
    store.store_many(images, labels_for(300))
    path = png_path(store.batch_path, 0)  # any byte of the first PNG's compressed pixels
    offsets = np.linspace(41, path.stat().st_size - 17, 9).astype(int).tolist()
    original = path.read_bytes()
    for offset in offsets:
        path.write_bytes(original)
        flip(path, offset)
        outcome = read_in_child(store, "read_many", 300)
        if outcome[0] == "ok":
            assert outcome[1] == digest(images), f"{path.name}: byte {offset} damaged, wrong pixels returned"
        else:
            assert outcome[3], f"{outcome[1]}: {outcome[2]}"
            assert path.name in outcome[2]


@pytest.mark.parametrize("compression", ["png:9", "webp", "jpeg2000", "jpeg:80"])
def test_disk_files_are_standard_images_with_their_extension(tmp_path, compression):
    images, labels = small_batch()
    store = open_store("disk", tmp_path, compression=compression)
    store.store_many(images, labels)
    path = png_path(store.batch_path, 2, get_codec(compression).suffix)
    with Image.open(path) as picture:
        assert picture.size == (16, 16)
        opened = np.asarray(picture.convert("RGB"))
    np.testing.assert_array_equal(opened, store.read_indices([2])[0][0])


def test_disk_png_level_changes_the_size_not_the_pixels(tmp_path):
    smooth = np.tile(np.arange(64, dtype=np.uint8), (4, 64, 1))[..., None].repeat(3, axis=3)
    sizes = {}
    for level in (0, 9):
        store = open_store("disk", tmp_path / str(level), compression=f"png:{level}")
        store.store_many(smooth, np.zeros(4, dtype=np.int64))
        sizes[level] = png_path(store.batch_path, 0).stat().st_size
        np.testing.assert_array_equal(store.read_many(4)[0], smooth)
    assert sizes[9] < sizes[0] / 2
