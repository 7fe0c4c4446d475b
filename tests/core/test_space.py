"""The free-inode preflight: 100,000 PNG files can run out of inodes before they run out of bytes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from helpers.report.chapters import many_images as experiments
from helpers.core import space
from helpers import stores
from helpers.core.errors import InsufficientSpaceError
from helpers.stores import open_store
from helpers.stores.disk import DiskStore


def fake_statvfs(monkeypatch, *, files: int, favail: int) -> None:
    """os.statvfs as seen by helpers.core.space, with these inode counts and the real byte counts."""
    real = os.statvfs

    class Stats:
        def __init__(self, path):
            stats = real(path)
            for name in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_flag", "f_namemax"):
                setattr(self, name, getattr(stats, name))
            self.f_files, self.f_ffree, self.f_favail = files, favail, favail

    monkeypatch.setattr(space.os, "statvfs", Stats)


def images_of(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), np.arange(n) % 10


def test_free_files_reads_the_inodes_an_unprivileged_process_may_use(tmp_path, monkeypatch):
    fake_statvfs(monkeypatch, files=1000, favail=123)
    assert space.free_files(tmp_path / "not" / "made") == 123


def test_free_files_is_none_where_the_filesystem_does_not_count_inodes(tmp_path, monkeypatch):
    fake_statvfs(monkeypatch, files=0, favail=0)  # btrfs reports 0 total and 0 free
    assert space.free_files(tmp_path) is None
    space.check_free_space(tmp_path, 1, needed_files=10**9)  # no inode limit to enforce


def test_check_free_space_refuses_with_both_inode_numbers(tmp_path, monkeypatch):
    fake_statvfs(monkeypatch, files=1_000_000, favail=50_000)
    space.check_free_space(tmp_path, 1, needed_files=50_000)
    with pytest.raises(InsufficientSpaceError) as caught:
        space.check_free_space(tmp_path, 1, what="the experiment", needed_files=100_003)
    message = str(caught.value)
    assert "100,003 files" in message and "50,000 more" in message and "inodes" in message
    assert "the experiment" in message and str(tmp_path) in message
    assert isinstance(caught.value, OSError)


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


def test_experiment_level_check_counts_inodes(tmp_path, monkeypatch):
    assert stores.experiment_files(["disk"], [10, 1000], include_single=False) >= 1000 + stores.store_class(
        stores.FLOOR
    ).files_needed(1000, single=False)
    images, labels = images_of(1000)
    fake_statvfs(monkeypatch, files=1_000_000, favail=900)
    with pytest.raises(InsufficientSpaceError, match="inodes"):
        experiments.run_many(
            images, labels, methods=["disk"], cutoffs=[1000], work_dir=tmp_path, repeats=1,
            cold_cache=False, progress=False,
        )
    assert not any(tmp_path.iterdir())  # refused before any store was made
