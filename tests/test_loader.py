"""helpers.loader: every image once per epoch, in a seeded order, from this process or from workers."""

from __future__ import annotations

import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import shared_memory
from pathlib import Path

import h5py
import numpy as np
import pytest

from helpers import loader
from helpers.loader import ImageDataset, WorkerError, batches, epoch_order
from helpers.stores import names, open_store
from helpers.stores.hdf5_store import Hdf5Reader
from helpers.stores.lmdb_store import LmdbReader
from helpers.stores.npy_store import NpyReader

COUNT = 45  # not a multiple of the batch size: the last mini-batch is short
SHAPE = (6, 5, 3)


def make_images(count: int = COUNT, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, size=(count, *shape), dtype=np.uint8)


@pytest.fixture(scope="module", params=names())
def filled(request, tmp_path_factory):
    """(store, images): a batch whose label i marks image i."""
    store = open_store(request.param, tmp_path_factory.mktemp(request.param))
    images = make_images()
    store.store_many(images, np.arange(COUNT))
    yield store, images
    store.close()


#: Names of the shared-memory blocks the loader created in this test run (others' tests share /dev/shm).
CREATED: set[str] = set()


class RecordedMemory(shared_memory.SharedMemory):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if kwargs.get("create"):
            CREATED.add(self.name)


def shared_memory_blocks() -> set[str]:
    """The loader's blocks that still exist."""
    return {name for name in CREATED if os.path.exists(f"/dev/shm/{name}")}


def new_children(before: set) -> set:
    """Child processes started since ``before`` (the PNG store's process pool may already be running)."""
    return set(multiprocessing.active_children()) - before


@pytest.fixture(autouse=True)
def no_workers_left(monkeypatch):
    """Each test starts without persistent workers, and stops any it started."""
    monkeypatch.setattr(shared_memory, "SharedMemory", RecordedMemory)
    loader.close_workers()
    yield
    loader.close_workers()


def worker_pids(before: set) -> set[int]:
    return {process.pid for process in new_children(before)}


@pytest.mark.parametrize("workers", [0, 2])
def test_every_image_exactly_once_per_epoch(filled, workers):
    store, images = filled
    before, children = shared_memory_blocks(), set(multiprocessing.active_children())
    for epoch in (0, 1):
        got = list(batches(store, 8, seed=1, epoch=epoch, workers=workers))
        assert [len(labels) for _, labels in got] == [8] * 5 + [5]
        labels = np.concatenate([labels for _, labels in got])
        assert sorted(labels.tolist()) == list(range(COUNT))
        np.testing.assert_array_equal(labels, epoch_order(COUNT, seed=1, epoch=epoch))
        read = np.concatenate([batch for batch, _ in got])
        assert read.dtype == images.dtype
        np.testing.assert_array_equal(read, images[labels])
    assert len(new_children(children)) == workers  # kept for the next epoch
    loader.close_workers()
    assert new_children(children) == set()
    assert shared_memory_blocks() == before


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_the_same_workers_serve_every_epoch_until_closed(tmp_path, monkeypatch, method):
    monkeypatch.setattr(loader, "process_context", lambda: multiprocessing.get_context(method))
    store = open_store("npy", tmp_path)
    images = make_images()
    store.store_many(images, np.arange(COUNT))
    before, children = shared_memory_blocks(), set(multiprocessing.active_children())
    first = [labels for _, labels in batches(store, 8, epoch=0, workers=2)]
    pids = worker_pids(children)
    assert len(pids) == 2 and len(shared_memory_blocks() - before) == 1
    second = [labels for _, labels in batches(store, 8, epoch=1, workers=2)]
    assert worker_pids(children) == pids
    assert sorted(np.concatenate(second).tolist()) == sorted(np.concatenate(first).tolist())
    list(batches(store, 4, workers=2))  # another batch size: a pool of its own
    assert len(worker_pids(children)) == 4
    store.close()  # stops the store's workers and frees their shared memory
    assert new_children(children) == set()
    assert shared_memory_blocks() == before
    assert len(list(batches(store, 8, workers=2))) == 6  # a closed store starts new ones when used again
    assert not worker_pids(children) & pids
    loader.close_workers()
    assert new_children(children) == set() and shared_memory_blocks() == before


def test_workers_read_a_rewritten_batch(tmp_path):
    store = open_store("lmdb", tmp_path)
    store.store_many(make_images(), np.arange(COUNT))
    list(batches(store, 8, workers=2))
    replaced = make_images(20, (3, 3, 3))  # another count and shape: the old workers' slots would not fit
    store.store_many(replaced, np.arange(20) + 100)
    read, labels = map(np.concatenate, zip(*batches(store, 8, shuffle=False, workers=2)))
    np.testing.assert_array_equal(read, replaced)
    assert labels.tolist() == list(range(100, 120))


def test_without_persistence_workers_stop_with_the_epoch(filled):
    store, _ = filled
    before, children = shared_memory_blocks(), set(multiprocessing.active_children())
    assert len(list(batches(store, 8, workers=2, persistent=False))) == 6
    assert new_children(children) == set()
    assert shared_memory_blocks() == before


def test_order_depends_on_seed_and_epoch_only(filled):
    store, _ = filled

    def labels(**options) -> list[int]:
        return np.concatenate([lab for _, lab in batches(store, 16, **options)]).tolist()

    first = labels(seed=3)
    assert labels(seed=3) == first == labels(seed=3, workers=2)
    assert labels(seed=3, epoch=1) != first
    assert sorted(labels(seed=3, epoch=1)) == sorted(first)
    assert labels(seed=4) != first
    assert labels(shuffle=False) == list(range(COUNT))


def test_drop_last_leaves_out_the_short_batch(filled):
    store, _ = filled
    sizes = [len(labels) for _, labels in batches(store, 8, drop_last=True, workers=2)]
    assert sizes == [8] * 5
    assert [len(labels) for _, labels in batches(store, 100)] == [COUNT]
    assert list(batches(store, 100, drop_last=True)) == []


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"workers": -1}, {"seed": -2}, {"epoch": 1.5}])
def test_bad_arguments_are_refused_by_name(filled, bad):
    store, _ = filled
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        next(batches(store, **{"batch_size": 8, **bad}))


def test_leaving_early_keeps_the_workers_for_the_next_epoch(filled):
    store, images = filled
    before, children = shared_memory_blocks(), set(multiprocessing.active_children())
    epoch = batches(store, 4, workers=2)
    next(epoch)
    pids = worker_pids(children)
    assert len(pids) == 2 and len(shared_memory_blocks() - before) == 1
    epoch.close()  # the batches in flight are collected, so the next epoch starts clean
    abandoned = batches(store, 4, workers=2)
    next(abandoned)  # left without close(): the next epoch takes over the workers
    got = list(batches(store, 4, epoch=1, workers=2))
    labels = np.concatenate([labels for _, labels in got])
    np.testing.assert_array_equal(labels, epoch_order(COUNT, epoch=1))
    np.testing.assert_array_equal(np.concatenate([batch for batch, _ in got]), images[labels])
    with pytest.raises(RuntimeError, match="newer epoch"):
        next(abandoned)
    assert worker_pids(children) == pids
    loader.close_workers()
    assert new_children(children) == set()
    assert shared_memory_blocks() == before


def interrupted(*args, **kwargs):
    raise KeyboardInterrupt


def test_an_interrupt_while_the_loader_waits_stops_its_workers(filled, monkeypatch):
    store, images = filled
    before, children = shared_memory_blocks(), set(multiprocessing.active_children())
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the training step: the workers are kept
        for _ in batches(store, 4, workers=2):
            raise KeyboardInterrupt
    assert len(new_children(children)) == 2
    epoch = batches(store, 4, workers=2)
    next(epoch)
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(loader.WorkerPool, "_receive", interrupted)  # Ctrl-C while waiting for a batch
        next(epoch)
    assert new_children(children) == set()
    assert shared_memory_blocks() == before
    got = list(batches(store, 4, workers=2))  # the next epoch starts new ones
    np.testing.assert_array_equal(np.concatenate([b for b, _ in got]), images[epoch_order(COUNT)])


def fail_in_worker(self, indices):
    raise ValueError(f"cannot read {len(indices)} images here")


def exit_in_worker(self, indices):
    os._exit(3)


def test_a_worker_error_is_raised_with_its_message(tmp_path, monkeypatch):
    store = open_store("npy", tmp_path)
    store.store_many(make_images(), np.arange(COUNT))
    before, children = shared_memory_blocks(), set(multiprocessing.active_children())
    # Workers forked (not started by a fork server, as when other threads run) inherit the patched reader.
    monkeypatch.setattr(loader, "process_context", lambda: multiprocessing.get_context("fork"))
    monkeypatch.setattr(NpyReader, "read_indices", fail_in_worker)
    with pytest.raises(ValueError, match="cannot read 8 images here") as raised:
        list(batches(store, 8, workers=2))
    assert "in loader worker" in "".join(getattr(raised.value, "__notes__", []))
    monkeypatch.setattr(NpyReader, "read_indices", exit_in_worker)
    with pytest.raises(WorkerError, match="exited with code 3"):
        list(batches(store, 8, workers=2))
    assert new_children(children) == set()
    assert shared_memory_blocks() == before


# -- ImageDataset ---------------------------------------------------------------------------------------
def test_dataset_indexes_like_a_sequence(filled):
    store, images = filled
    dataset = ImageDataset(store)
    assert len(dataset) == COUNT
    image, label = dataset[7]
    np.testing.assert_array_equal(image, images[7])
    assert label == 7 and isinstance(label, int)
    image[:] = 0  # the caller's own copy
    np.testing.assert_array_equal(dataset[7][0], images[7])
    assert dataset[np.int64(44)][1] == 44
    with pytest.raises(IndexError, match="index 45 is out of range.*holds 45 images"):
        dataset[COUNT]
    with pytest.raises(IndexError):
        dataset[-1]
    with pytest.raises(TypeError, match="integers"):
        dataset[1.0]
    assert [label for _, label in dataset] == list(range(COUNT))  # iteration stops at IndexError


def read_in_child(dataset: ImageDataset, index: int) -> tuple[np.ndarray, int]:
    return dataset[index]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_dataset_pickles_without_handles_and_reads_in_other_processes(tmp_path, method):
    store = open_store("lmdb", tmp_path)
    images = make_images()
    store.store_many(images, np.arange(COUNT))
    dataset = ImageDataset(store)
    dataset[3]  # the parent holds the batch open before the fork and the pickle
    assert len(pickle.dumps(dataset)) < 1000
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as pool:
        results = list(pool.map(read_in_child, [dataset] * 4, [0, 44, 3, 9]))
    for (image, label), index in zip(results, [0, 44, 3, 9]):
        np.testing.assert_array_equal(image, images[index])
        assert label == index
    np.testing.assert_array_equal(dataset[44][0], images[44])  # the parent's reader still works


def test_torch_dataloader_reads_every_image_under_fork_and_spawn(tmp_path):
    torch = pytest.importorskip("torch")
    store = open_store("hdf5", tmp_path)
    images = make_images()
    store.store_many(images, np.arange(COUNT))
    for method in ("fork", "spawn"):
        loader = torch.utils.data.DataLoader(
            ImageDataset(store), batch_size=8, shuffle=True, num_workers=2,
            multiprocessing_context=method,
        )
        seen = []
        for batch, labels in loader:
            np.testing.assert_array_equal(batch.numpy(), images[labels.numpy()])
            seen += labels.tolist()
        assert sorted(seen) == list(range(COUNT))


# -- each method's random-read path ---------------------------------------------------------------------
def test_lmdb_reads_small_values_without_readahead_and_large_ones_with_it(tmp_path):
    small = open_store("lmdb", tmp_path / "small")
    small.store_many(make_images(4), np.arange(4))
    large = open_store("lmdb", tmp_path / "large")
    large_images = make_images(4, (128, 128, 3))
    large.store_many(large_images, np.arange(4))
    assert isinstance(small.batch_reader(), LmdbReader) and not small.batch_reader().readahead
    assert large.batch_reader().readahead
    np.testing.assert_array_equal(large.read_indices([3, 1])[0], large_images[[3, 1]])


def test_hdf5_maps_its_contiguous_dataset_and_reads_others_with_h5py(tmp_path):
    store = open_store("hdf5", tmp_path)
    images = make_images()
    store.store_many(images, np.arange(COUNT))
    reader = store.batch_reader()
    assert isinstance(reader, Hdf5Reader) and reader.map is not None
    store.close()
    # The same batch rewritten chunked (as another program might): no offset to map, read with ds[i].
    path = Path(store.batch_path)
    with h5py.File(path, "r+") as file:
        del file["images"]
        file.create_dataset("images", data=images, chunks=(1, *SHAPE))
    reader = store.batch_reader()
    assert reader.map is None
    np.testing.assert_array_equal(store.read_indices([44, 0, 44])[0], images[[44, 0, 44]])
    assert reader.read_one(5)[1] == 5


def test_png_decodes_a_long_index_list_with_its_process_pool(tmp_path):
    images = make_images(600, (4, 4, 3))
    store = open_store("disk", tmp_path)
    store.store_many(images, np.arange(600))
    order = np.random.default_rng(1).permutation(600)
    read, labels = store.read_indices(order)  # three chunks of up to 256 images, decoded by the pool
    np.testing.assert_array_equal(read, images[order])
    np.testing.assert_array_equal(labels, order)


def test_read_epoch_reads_every_image_or_only_its_first_mini_batches(tmp_path):
    store = open_store("npy", tmp_path)
    store.store_many(np.zeros((10, 4, 4), dtype=np.uint8), np.arange(10))
    assert loader.read_epoch(store, 4) == 10
    assert loader.read_epoch(store, 4, limit=2) == 8
    assert loader.read_epoch(store, 4, limit=5) == 10  # a limit past the epoch's end reads the epoch
