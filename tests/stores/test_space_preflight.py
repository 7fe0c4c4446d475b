"""Each method's own estimate of the files (inodes) its batch takes, checked before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
from space_fixtures import fake_statvfs, images_of

from helpers import stores
from helpers.core.errors import InsufficientSpaceError
from helpers.stores import open_store
from helpers.stores.disk import DiskStore


def test_files_needed_counts_each_png_and_shard_folder_and_lmdb_as_a_few_files():
    disk = stores.store_class("disk")
    assert disk.files_needed(100_000, single=False) >= 100_000 + 100
    assert disk.files_needed(10, single=True) >= 20
    assert stores.store_class("lmdb").files_needed(100_000, single=False) < 10
    for name in stores.names():  # every method has an estimate, as small as its layout
        assert stores.store_class(name).files_needed(1000, single=False) >= 1


def test_disk_batch_is_refused_for_want_of_inodes_before_anything_is_touched(tmp_path, monkeypatch):
    store = DiskStore(tmp_path, workers=1)
    images, labels = images_of(20)
    store.store_many(images, labels)
    before = {path: path.read_bytes() for path in store.files()}
    # Plenty of bytes, but fewer inodes than 2,000 PNGs need even after the previous 20 files go.
    fake_statvfs(monkeypatch, files=1_000_000, favail=500)
    more, more_labels = images_of(2000)
    with pytest.raises(InsufficientSpaceError, match="inodes") as caught:
        store.store_many(more, more_labels)
    assert "500 more" in str(caught.value)
    assert {path: path.read_bytes() for path in store.files()} == before


def test_the_previous_batch_counts_as_files_it_will_free(tmp_path, monkeypatch):
    store = DiskStore(tmp_path, workers=1)
    images, labels = images_of(300)
    store.store_many(images, labels)
    # Just too few inodes for a second batch unless the first one's files are counted.
    needed = store.files_needed(300, single=False)
    freed = len(store.files())
    fake_statvfs(monkeypatch, files=1_000_000, favail=needed - freed + 1)
    store.store_many(images[::-1].copy(), labels)
    assert np.array_equal(store.read_many(300)[0], images[::-1])


def test_lmdb_batch_needs_few_inodes(tmp_path, monkeypatch):
    fake_statvfs(monkeypatch, files=1_000_000, favail=10)
    store = open_store("lmdb", tmp_path)
    images, labels = images_of(2000)
    store.store_many(images, labels)
    assert len(store) == 2000
