"""LMDB: the contract, and what only this method promises (the codec recorded once per batch, a map that
grows by itself)."""

from __future__ import annotations

from pathlib import Path

import lmdb
import pytest
from stores.contract import Damage, StoreContract
from stores.faults import batch_file, truncate_to_half
from stores.samples import assert_same, digest, labels_for, patterned_images, small_batch

from helpers.core.errors import CorruptStoreError
from helpers.stores import open_store


class TestLmdb(StoreContract):
    method = "lmdb"
    bounded_memory_totals = (True, False)
    # store_single may write single.lmdb while others read it, so its readers register in LMDB's lock table
    # (lock.mdb holds no data; data.mdb is still compared). A finished batch never changes, so its readers
    # open it without the lock, and its lock.mdb must stay as it was.
    files_readers_write = ("single.lmdb/lock.mdb",)
    damage_cases = [
        Damage("data-mdb-cut-in-half", batch_file("data.mdb"), truncate_to_half, "read_many", 10),
        Damage("data-mdb-missing", batch_file("data.mdb"), Path.unlink, "read_many", 10),
        Damage("single-data-mdb-cut", lambda s: s.root / "single.lmdb" / "data.mdb", truncate_to_half,
               "read_single", 2),
    ]


def test_lmdb_records_the_codec_once_per_batch_and_reports_a_damaged_value(tmp_path):
    images, labels = small_batch()
    store = open_store("lmdb", tmp_path, compression="zstd:7")
    store.store_many(images, labels)
    with lmdb.open(str(store.batch_path), readonly=True, lock=False) as env, env.begin() as txn:
        assert b'"compression": "zstd:7"' in txn.get(b"__batch__")
        value = txn.get(b"00000004")
    store.close()
    with lmdb.open(str(store.batch_path), map_size=1 << 24) as env, env.begin(write=True) as txn:
        txn.put(b"00000004", value[:-1])
    with pytest.raises(CorruptStoreError, match="key 00000004: damaged or truncated value"):
        store.read_indices([1, 4])
    with pytest.raises(CorruptStoreError, match="key 00000004"):
        store.read_many(6)


def test_lmdb_grows_its_map_for_large_images(tmp_path):
    shape = (256, 256, 3)
    images = patterned_images(1500, shape=shape)
    labels = labels_for(1500)
    store = open_store("lmdb", tmp_path)
    for image_id in range(50):
        store.store_single(images[image_id], image_id, label=int(labels[image_id]))
    store.store_many(images, labels)
    for image_id in (0, 17, 49):
        image, label = store.read_single(image_id)
        assert_same(image, images[image_id])
        assert label == labels[image_id]
    back, back_labels = store.read_many(1500)
    assert digest(back) == digest(images)
    assert_same(back_labels, labels)
