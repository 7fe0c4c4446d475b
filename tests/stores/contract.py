"""The store contract as tests: what every storage method promises, in one class each method's tests reuse.

In the shape of zarr-python's ``zarr.testing.store.StoreTests``: a method's test module subclasses
``StoreContract`` and names the method::

    class TestDisk(StoreContract):
        method = "disk"

and every test below runs against that method: round trips of every shape and dtype, random access,
``compression=``, chunked writes, writes in pieces (for the methods that carry ``WritesPieces``), kills,
full disks, damaged files, readers in other processes and bad input. Parametrisations that depend on the
method (its ``compressions``, its damage cases) are made per class by ``pytest_generate_tests``; a test of
an ability the method does not have is skipped and says why. The class attributes below tell the contract
what a method's files look like where methods differ; each method's own tests sit beside its class.

A method that is in no test module yet, such as a toy one registered at run time, is covered the same way:
register it before the tests are collected, and subclass the contract (or let ``contract_tests_for`` do it)::

    # tests/test_a_new_method.py
    from helpers import stores
    from stores.contract import contract_tests_for

    stores.REGISTRY["toy"] = f"{__name__}:ToyStore"  # the one registry line, here made by the test
    TestToy = contract_tests_for("toy")

The kill tests write from a separate Python, which imports the class by its module path, and the spawn
readers unpickle the store there, so a toy method's class must live in a module a child process can import.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stores import faults
from stores.bad_input import (
    bad_batch_labels,
    bad_counts,
    bad_ids,
    bad_images,
    bad_labels,
    good_images,
)
from stores.samples import (
    allocated_bytes,
    assert_same,
    batches,
    cut,
    digest,
    file_bytes,
    labels_for,
    patterned_images,
    random_images,
    smooth_images,
    snapshot,
)

from helpers import codecs
from helpers.core import space
from helpers.core.errors import (
    ImageFormatError,
    ImageNotFoundError,
    IncompleteStoreError,
    InsufficientSpaceError,
    StorageReportError,
    UnknownCodecError,
)
from helpers.stores import Store, estimate_bytes, estimate_single_bytes, open_store, store_class
from helpers.stores.values import EncodedImages

SHAPES = [
    ((32, 32, 3), np.uint8),
    ((17, 9), np.uint8),
    ((8, 8, 1), np.uint8),
    ((5, 6, 2), np.uint8),
    ((7, 3, 4), np.uint8),
    ((12, 10), np.uint16),
    ((4, 5, 1), np.uint16),
]
# 300 images: above the disk store's threshold for its own pool of PNG workers, inside each reader.
READ_SIZES = [300, 1, 299, 64, 300, 150, 2, 300]
# Every place a store_single can die: before and after each rename it makes (the disk store makes two:
# the PNG, then the label CSV; LMDB makes none, its commit is atomic).
CRASH_POINTS = [(n, after) for n in (1, 2, 3) for after in (False, True)]
# One @given test runs for each method's class: hypothesis sees one function called from several classes.
SHARED_BY_EVERY_METHOD = [HealthCheck.differing_executors]
per_method_settings = settings(suppress_health_check=SHARED_BY_EVERY_METHOD)
# Each method's property tests of bad input: fewer examples than a round trip's, as they run per method.
bad_input_settings = settings(
    max_examples=10,
    suppress_health_check=[*SHARED_BY_EVERY_METHOD, HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Damage(NamedTuple):
    """One way to damage a store's files: ``locate(store)`` gives the file, ``damage(path)`` harms it, and
    ``operation(argument)`` on the store must then raise one of the library's errors naming that file."""

    what: str
    locate: Callable[[Store], Path]
    damage: Callable[[Path], None]
    operation: str
    argument: object


def compression_cases(method: str) -> list[str]:
    """Every compression the method accepts, lossy ones also at a quality."""
    cases = []
    for family in store_class(method).compressions:
        cases.append(family)
        if family in ("jpeg", "webp"):
            cases.append(f"{family}:90")
    return cases


def cases_or_skip(values: list, reason: str) -> list:
    """Parameters for one test of a class; a single skipped one, saying why, when the method has none."""
    return values if values else [pytest.param(None, marks=pytest.mark.skip(reason=reason))]


# A store opened before fork, used by the forked workers of test_a_store_opened_before_fork_works_in_the_children.
SHARED_STORE: Store | None = None


def read_with_inherited_store(num_images: int) -> tuple[str, str]:
    """Runs in a forked worker: uses the store object the parent opened before forking."""
    images, labels = SHARED_STORE.read_many(num_images)
    single, label = SHARED_STORE.read_single(num_images % 5)
    return digest(images) + digest(labels), digest(single) + str(label)


def read_positions(call):
    store, positions = call
    return store.read_indices(positions)[0]


class StoreContract:
    """Every promise of ``helpers.stores.Store``, tested against the method ``method``."""

    #: The method under test, a name of ``helpers.stores.REGISTRY``.
    method: ClassVar[str]
    #: Ways to damage this method's files, each of which a read must report naming the file.
    damage_cases: ClassVar[list[Damage]] = []
    #: For which ways of calling store_chunks (total declared or not) the memory of a 200,000-image write is
    #: checked in a fresh process (helpers.report.chapters.at_scale's writer), and how much more than
    #: 128 MiB the method may hold while writing.
    bounded_memory_totals: ClassVar[tuple[bool, ...]] = ()
    bounded_memory_extra: ClassVar[int] = 0
    #: For which ways of calling store_chunks (total declared or not) the method promises the batch is byte
    #: for byte store_many's (every method promises the same file names).
    chunks_keep_bytes: ClassVar[tuple[bool, ...]] = ()
    #: Whether chunks encoded by other processes are written byte for byte as the store would write them.
    encoded_chunks_keep_bytes: ClassVar[bool] = False
    #: Files (relative to the store's root) a reader may write: LMDB's lock table of single.lmdb, which
    #: readers join because store_single may write that environment while they read.
    files_readers_write: ClassVar[tuple[str, ...]] = ()

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """The parameters that depend on the method: its compressions, damage cases, memory checks."""
        method = self.method
        names = metafunc.fixturenames
        if "compression" in names:
            metafunc.parametrize("compression", cases_or_skip(
                compression_cases(method), f"the {method} method takes no compression="))
        if "lossless_compression" in names:
            lossless = [name for name in compression_cases(method) if not codecs.is_lossy(name)][:1]
            metafunc.parametrize("lossless_compression", cases_or_skip(
                lossless, f"the {method} method takes no lossless compression="))
        if "damage" in names:
            metafunc.parametrize("damage", cases_or_skip(
                [pytest.param(case, id=case.what) for case in self.damage_cases],
                f"no damage cases are written for the {method} method"))
        if "declare_total" in names:
            metafunc.parametrize("declare_total", cases_or_skip(
                list(self.bounded_memory_totals), f"the {method} method's memory is not measured at scale"))

    @pytest.fixture
    def store(self, tmp_path) -> Store:
        return open_store(self.method, tmp_path)

    # -- the class ---------------------------------------------------------------------------------
    def test_the_class_says_what_it_is(self):
        cls = store_class(self.method)
        assert cls.name == self.method
        assert cls.trade_off.endswith(".")
        assert isinstance(cls.writer_memory_note, str)
        assert isinstance(cls.disk_usage_note(100, 400_000, 409_600, 3072), str)
        assert isinstance(cls.compressed_space_note("zstd", 2000.0, 4096.0, 8192.0), str)
        assert isinstance(cls.compressions, tuple)
        assert cls.writes_pieces == hasattr(cls, "write_piece")

    # -- round trips -------------------------------------------------------------------------------
    @pytest.mark.parametrize("shape,dtype", SHAPES, ids=str)
    def test_single_round_trip(self, store, shape, dtype):
        images = random_images(3, shape, dtype)
        for image_id, image in zip([0, 41, 10**9], images):
            store.store_single(image, image_id, label=image_id % 7 - 3)
        for image_id, image in zip([0, 41, 10**9], images):
            back, label = store.read_single(image_id)
            assert_same(back, image)
            assert label == image_id % 7 - 3

    @pytest.mark.parametrize("shape,dtype", SHAPES, ids=str)
    def test_many_round_trip_and_prefix(self, store, shape, dtype):
        images = random_images(20, shape, dtype, seed=1)
        labels = np.arange(20) * 3 - 7
        store.store_many(images, labels)
        back, back_labels = store.read_many(20)
        assert_same(back, images)
        assert_same(back_labels, labels.astype(np.int64))
        first, first_labels = store.read_many(6)
        assert_same(first, images[:6])
        assert_same(first_labels, labels[:6].astype(np.int64))

    def test_a_new_batch_replaces_the_old_one(self, store):
        store.store_many(random_images(30, seed=2), np.zeros(30, dtype=np.int64))
        smaller = random_images(10, (8, 8), seed=3)
        store.store_many(smaller, np.ones(10, dtype=np.int64))
        back, labels = store.read_many(10)
        assert_same(back, smaller)
        assert (labels == 1).all()
        with pytest.raises(ImageNotFoundError, match="holds 10"):
            store.read_many(11)

    def test_files_lists_what_was_written_and_clear_removes_it(self, tmp_path):
        store = open_store(self.method, tmp_path / self.method)
        assert store.files() == []
        store.store_single(random_images(1)[0], 5, 1)
        store.store_many(random_images(4), [1, 2, 3, 4])
        files = store.files()
        assert files and all(path.is_file() and tmp_path in path.parents for path in files)
        assert sum(path.stat().st_size for path in files) > 4 * 32 * 32 * 3 // 4
        store.clear()
        assert store.files() == []
        with pytest.raises(ImageNotFoundError):
            store.read_single(5)
        with pytest.raises(ImageNotFoundError):
            store.read_many(1)

    def test_labels_accept_lists_and_any_integer_dtype(self, store):
        images = random_images(3)
        for labels in ([9, 0, 4], np.array([9, 0, 4], dtype=np.uint8), np.array([9, 0, 4], dtype=np.int32)):
            store.store_many(images, labels)
            assert store.read_many(3)[1].tolist() == [9, 0, 4]

    def test_non_contiguous_input_is_stored_as_seen(self, store):
        big = random_images(10, (16, 16, 3))
        view = big[::2, ::2, 1::1]  # strided on two axes
        store.store_many(view, np.arange(5))
        assert_same(store.read_many(5)[0], np.ascontiguousarray(view))
        store.store_single(big[0, :, ::-1], 1, 0)
        assert_same(store.read_single(1)[0], np.ascontiguousarray(big[0, :, ::-1]))

    def test_durable_writes_round_trip(self, tmp_path):
        store = open_store(self.method, tmp_path, durable=True)
        images = random_images(5, (6, 6))
        store.store_many(images, np.arange(5))
        store.store_single(images[0], 3, 2)
        assert_same(store.read_many(5)[0], images)
        assert_same(store.read_single(3)[0], images[0])

    def test_store_pickles_without_handles_and_keeps_working(self, tmp_path):
        store = open_store(self.method, tmp_path, durable=True)
        images = random_images(4)
        store.store_many(images, np.arange(4))
        clone = pickle.loads(pickle.dumps(store))
        assert clone.root == store.root and clone.durable
        assert_same(clone.read_many(4)[0], images)

    @per_method_settings
    @given(batch=batches(), image_id=st.integers(0, 10**12 - 1))
    def test_property_every_store_reads_back_exactly(self, tmp_path_factory, batch, image_id):
        images, labels = batch
        store = open_store(self.method, tmp_path_factory.mktemp(self.method))
        store.store_many(images, labels)
        back, back_labels = store.read_many(len(images))
        assert_same(back, images)
        assert_same(back_labels, labels)
        store.store_single(images[-1], image_id, int(labels[-1]))
        single, label = store.read_single(image_id)
        assert_same(single, images[-1])
        assert label == labels[-1]

    def test_obvious_bad_input_is_named(self, store):
        with pytest.raises(ImageFormatError, match="float64"):
            store.store_single(np.zeros((4, 4, 3)), 0, 0)
        with pytest.raises(ImageFormatError, match="shape"):
            store.store_many(np.zeros((2, 4, 4, 3, 1), np.uint8), [0, 1])
        with pytest.raises(ImageFormatError, match="one label per image"):
            store.store_many(random_images(3), [0, 1])
        with pytest.raises(ImageNotFoundError, match="id 12"):
            store.read_single(12)
        store.store_many(random_images(3), [0, 1, 2])
        with pytest.raises(ImageNotFoundError, match="asked for 4 images"):
            store.read_many(4)

    # -- random access: len(store) and read_indices ------------------------------------------------
    @pytest.mark.parametrize("shape,dtype", [((32, 32, 3), np.uint8), ((12, 10), np.uint16), ((4, 5, 1), np.uint8)],
                             ids=str)
    def test_read_indices_in_any_order_with_repeats(self, store, shape, dtype):
        assert len(store) == 0 and store
        images = random_images(25, shape, dtype, seed=5)
        labels = np.arange(25) * 5 - 11
        store.store_many(images, labels)
        assert len(store) == 25
        order = [24, 0, 7, 7, 3, 24, 12]
        back, back_labels = store.read_indices(order)
        assert_same(back, images[order])
        assert_same(back_labels, labels[order].astype(np.int64))
        back, back_labels = store.read_indices(np.array(order, dtype=np.uint16))
        assert_same(back, images[order])

    def test_read_indices_empty_gives_the_batch_shape(self, store):
        store.store_many(random_images(3, (6, 7), np.uint16), [1, 2, 3])
        for empty in ([], np.array([], dtype=np.int64), ()):
            back, labels = store.read_indices(empty)
            assert back.shape == (0, 6, 7) and back.dtype == np.uint16
            assert labels.shape == (0,) and labels.dtype == np.int64

    def test_read_indices_refuses_bad_positions_by_name(self, store):
        with pytest.raises(ImageNotFoundError, match="no batch"):
            store.read_indices([0])
        store.store_many(random_images(4), [0, 1, 2, 3])
        with pytest.raises(ImageNotFoundError, match=r"index 4 is out of range.*holds 4 images"):
            store.read_indices([0, 4])
        with pytest.raises(ImageFormatError, match="index -1 is negative"):
            store.read_indices([2, -1])
        with pytest.raises(ImageFormatError, match="integers"):
            store.read_indices([0.0, 1.5])
        with pytest.raises(ImageFormatError, match="1-D"):
            store.read_indices([[0, 1], [2, 3]])
        with pytest.raises(ImageFormatError, match="1-D"):
            store.read_indices(2)
        with pytest.raises(ImageFormatError, match="integers"):
            store.read_indices([True, False])

    def test_an_interrupted_batch_has_no_length_and_refuses_random_reads(self, store):
        store.partial_path.mkdir()
        with pytest.raises(IncompleteStoreError):
            store.read_indices([0])
        assert len(store) == 0

    def test_random_reads_follow_a_new_batch_and_clear(self, store):
        store.store_many(random_images(5, seed=6), np.zeros(5, dtype=np.int64))
        store.read_indices([1])  # opens the batch for random access
        newer = random_images(3, (8, 8), seed=7)
        store.store_many(newer, [4, 5, 6])
        assert len(store) == 3
        assert_same(store.read_indices([2, 0])[0], newer[[2, 0]])
        store.clear()
        assert len(store) == 0
        with pytest.raises(ImageNotFoundError):
            store.read_indices([0])

    def test_open_store_pickles_and_reads_indices_in_a_forked_child(self, store):
        images = random_images(40, seed=8)
        store.store_many(images, np.arange(40))
        store.read_indices([0])  # the parent holds the batch open before the fork and the pickle
        clone = pickle.loads(pickle.dumps(store))
        assert_same(clone.read_indices([39, 1])[0], images[[39, 1]])
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map(read_positions, [(store, [5, 6]), (store, [39, 0, 39])])
        assert_same(results[0], images[[5, 6]])
        assert_same(results[1], images[[39, 0, 39]])
        assert_same(store.read_indices([7])[0], images[[7]])

    @per_method_settings
    @given(batch=batches(), data=st.data())
    def test_property_read_indices_agrees_with_read_many(self, tmp_path_factory, batch, data):
        images, labels = batch
        store = open_store(self.method, tmp_path_factory.mktemp(self.method))
        store.store_many(images, labels)
        positions = data.draw(st.lists(st.integers(0, len(images) - 1), max_size=12))
        everything, all_labels = store.read_many(len(images))
        back, back_labels = store.read_indices(positions)
        assert_same(back, everything[positions] if positions else everything[:0])
        assert_same(back_labels, all_labels[positions] if positions else all_labels[:0])
        assert len(store) == len(images)

    def test_two_stores_of_one_folder_see_each_others_batches(self, tmp_path):
        reader, writer = open_store(self.method, tmp_path), open_store(self.method, tmp_path)
        first = random_images(6, seed=9)
        writer.store_many(first, np.arange(6))
        assert_same(reader.read_indices([5])[0], first[[5]])
        assert_same(reader.read_many(6)[0], first)
        second = random_images(4, seed=10)
        writer.store_many(second, np.arange(4))
        reader.close()  # a batch replaced by another store is seen after close()
        assert_same(writer.read_indices([3, 0])[0], second[[3, 0]])
        assert_same(reader.read_indices([3, 0])[0], second[[3, 0]])
        assert len(reader) == 4

    # -- compression= --------------------------------------------------------------------------------
    def test_compression_the_method_does_not_take_is_refused_with_what_it_accepts(self, tmp_path):
        cls = store_class(self.method)
        with pytest.raises(UnknownCodecError, match=rf"the {self.method} method does not take compression 'lz77'"):
            open_store(self.method, tmp_path, compression="lz77")
        assert open_store(self.method, tmp_path, compression=None).compression is None
        for accepted in cls.compressions:
            store = open_store(self.method, tmp_path, compression=accepted)
            assert pickle.loads(pickle.dumps(store)).compression == store.compression
            assert store.parsed_compression == codecs.parse(accepted)  # every name is a codec of the registry

    @pytest.mark.parametrize("shape,dtype", SHAPES, ids=str)
    def test_compressed_round_trip(self, tmp_path, compression, shape, dtype):
        store = open_store(self.method, tmp_path, compression=compression)
        if not codecs.holds(compression, shape, dtype):
            with pytest.raises(ImageFormatError, match="cannot hold"):
                store.store_many(random_images(3, shape, dtype), np.arange(3))
            assert store.files() == []  # refused before anything was written
            return
        lossy = codecs.is_lossy(compression)
        images = smooth_images(12, shape, dtype, seed=4) if lossy else random_images(12, shape, dtype)
        labels = np.arange(12) * 5 - 9
        store.store_many(images, labels)
        store.store_single(images[2], 77, label=-4)
        reader = open_store(self.method, tmp_path)  # told nothing: the codec is recorded in the store
        every, every_labels = reader.read_many(12)
        some, some_labels = reader.read_indices([7, 0, 7])
        single, single_label = reader.read_single(77)
        assert_same(every_labels, labels)
        assert_same(some_labels, labels[[7, 0, 7]])
        assert single_label == -4
        if lossy:
            assert every.shape == images.shape and every.dtype == images.dtype
            # Garbage scores under 10 dB; images of a few pixels lose more to chroma subsampling and edges.
            floor = 30 if min(shape[:2]) >= 8 else 20
            assert min(codecs.psnr(a, b) for a, b in zip(images, every)) > floor
            assert_same(some, every[[7, 0, 7]])  # one random read decodes the same image as a bulk read
        else:
            assert_same(every, images)
            assert_same(some, images[[7, 0, 7]])
            assert_same(single, images[2])
            assert_same(reader.batch_reader().read_one(5)[0], images[5])

    def test_a_store_opened_with_another_codec_reads_what_was_recorded(self, tmp_path):
        accepted = store_class(self.method).compressions
        if len(accepted) < 2:
            pytest.skip(f"the {self.method} method takes fewer than two compressions")
        first, second = accepted[:2]
        images = random_images(5, (16, 16, 3))
        open_store(self.method, tmp_path, compression=first).store_many(images, np.arange(5))
        other = open_store(self.method, tmp_path, compression=second)
        assert_same(other.read_many(5)[0], images)
        assert_same(other.read_indices([4])[0], images[[4]])

    # -- store_chunks: a batch from chunks reads back as store_many's, and fails whole ----------------
    @pytest.mark.parametrize("total", [None, "declared"])
    def test_chunks_read_back_like_store_many(self, tmp_path, total):
        images = random_images(2_345, (8, 8, 3))
        labels = np.arange(2_345) % 7 - 3
        serial = open_store(self.method, tmp_path / "serial")
        serial.store_many(images, labels)
        chunked = open_store(self.method, tmp_path / "chunked")
        sizes = [1, 998, 1_200, 46, 100]  # across shard boundaries of the disk store, of unequal sizes
        written = chunked.store_chunks(cut(images, labels, sizes), total=2_345 if total else None)
        assert written == len(chunked) == 2_345
        read_images, read_labels = chunked.read_many(2_345)
        np.testing.assert_array_equal(read_images, images)
        np.testing.assert_array_equal(read_labels, labels)
        np.testing.assert_array_equal(chunked.read_indices([2_344, 0, 999, 1_000])[0], images[[2_344, 0, 999, 1_000]])
        assert file_bytes(chunked).keys() == file_bytes(serial).keys()
        if bool(total) in self.chunks_keep_bytes:
            assert file_bytes(chunked) == file_bytes(serial)

    def test_compressed_chunks_read_back_exactly(self, tmp_path, lossless_compression):
        images = random_images(1_300, (8, 8, 3))
        labels = np.arange(1_300) % 5
        store = open_store(self.method, tmp_path, compression=lossless_compression)
        assert store.store_chunks(cut(images, labels, [700, 1, 599])) == 1_300
        reader = open_store(self.method, tmp_path)  # told nothing: the codec is recorded
        read_images, read_labels = reader.read_many(1_300)
        np.testing.assert_array_equal(read_images, images)
        np.testing.assert_array_equal(read_labels, labels)
        np.testing.assert_array_equal(reader.read_indices([1_299, 700, 0])[0], images[[1_299, 700, 0]])

    def test_chunks_encoded_elsewhere_are_written_as_the_store_would_encode_them(self, tmp_path):
        if not store_class(self.method).encodes_each_image:
            pytest.skip(f"the {self.method} method encodes no image on its own (encodes_each_image)")
        images, labels = random_images(1_100, (8, 8, 3)), np.arange(1_100) % 9
        serial = open_store(self.method, tmp_path / "serial", compression="zstd")
        serial.store_many(images, labels)
        image_codec = codecs.get_codec("zstd")
        encoded = ((EncodedImages.encode(part, image_codec), part_labels)
                   for part, part_labels in cut(images, labels, [600, 500]))
        store = open_store(self.method, tmp_path / "encoded", compression="zstd")
        assert store.store_chunks(encoded, total=1_100) == 1_100
        read_images, read_labels = open_store(self.method, tmp_path / "encoded").read_many(1_100)
        np.testing.assert_array_equal(read_images, images)
        np.testing.assert_array_equal(read_labels, labels)
        if self.encoded_chunks_keep_bytes:
            assert file_bytes(store) == file_bytes(serial)

    def test_a_bad_chunk_is_named_and_leaves_no_batch(self, store):
        store.store_many(random_images(10, (8, 8, 3)), np.zeros(10, dtype=np.int64))
        chunks = [(random_images(5, (8, 8, 3)), np.zeros(5, dtype=np.int64)),
                  (random_images(5, (8, 8, 3)), np.zeros(5, dtype=np.int64)),
                  (random_images(5, (8, 8)), np.zeros(5, dtype=np.int64))]
        with pytest.raises(ImageFormatError, match=r"chunk 2 holds images of shape \(8, 8\) uint8; the first"):
            store.store_chunks(iter(chunks))
        with pytest.raises(ImageNotFoundError):
            store.read_many(1)
        assert not store.partial_path.exists()

    def test_a_declared_total_is_checked_against_free_space_before_anything(self, store, monkeypatch):
        store.store_many(random_images(4, (8, 8, 3)), [0, 1, 2, 3])
        needed = store_class(self.method).space_needed(10**6, (8, 8, 3), np.dtype(np.uint8), single=False)
        monkeypatch.setattr(space, "free_bytes", lambda path: needed // 2)

        def chunks():
            yield random_images(4, (8, 8, 3)), [0, 1, 2, 3]

        with pytest.raises(InsufficientSpaceError, match="not enough free space"):
            store.store_chunks(chunks(), total=10**6)
        assert len(store) == 4  # the previous batch is untouched: nothing was written

    def test_without_a_total_space_is_checked_before_each_chunk(self, store, monkeypatch):
        free = iter([10**12] * 6 + [0] * 100)  # plenty for the first chunks, then a full disk
        monkeypatch.setattr(space, "free_bytes", lambda path: next(free))
        chunks = ((random_images(500, (8, 8, 3), seed=k), np.full(500, k)) for k in range(100))
        with pytest.raises(InsufficientSpaceError, match=r"chunk \d+ \(500 images\)"):
            store.store_chunks(chunks)
        assert not store.partial_path.exists() and not store.batch_path.exists()

    def test_memory_stays_bounded_whatever_the_total(self, tmp_path, declare_total):
        """200,000 CIFAR-shaped images (614 MB) in chunks of 2,000 (6 MB): the writing process grows by
        less than 128 MB (plus the method's ``bounded_memory_extra``), measured in a fresh process by its
        kernel high-water mark."""
        root = tmp_path / self.method
        command = [sys.executable, "-m", "helpers.report.chapters.at_scale", "write", self.method, str(root),
                   "200000", "--chunk-size", "2000", "--distinct", "500"]
        if not declare_total:
            command.append("--no-total")
        result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        assert result["data_bytes"] == 200_000 * 3_072
        growth = result["peak_rss"] - result["baseline_rss"]
        allowance = 128 * 2**20 + self.bounded_memory_extra
        assert growth < allowance < result["data_bytes"] / 2, result
        assert len(open_store(self.method, root)) == 200_000

    # -- a batch written in pieces by many processes (the WritesPieces mix-in) ------------------------
    def test_pieces_written_in_any_order_make_store_manys_batch(self, tmp_path):
        if not store_class(self.method).writes_pieces:
            pytest.skip(f"the {self.method} method writes its batch with one writer (no WritesPieces)")
        images = random_images(1_400, shape=(128, 128, 3))  # 69 MB: several pieces of every method with pieces
        labels = np.arange(1_400) % 11
        serial = open_store(self.method, tmp_path / "serial")
        serial.store_many(images, labels)
        store = open_store(self.method, tmp_path / "pieces")
        pieces = store.begin_pieces(len(images), images.shape[1:], images.dtype)
        assert pieces >= 2
        for index in reversed(range(pieces)):
            start, stop = store.piece_bounds(index)
            store.write_piece(index, images[start:stop], labels[start:stop])
        assert store.pieces_done() == set(range(pieces))
        store.commit_pieces()
        np.testing.assert_array_equal(store.read_many(1_400)[0], images)
        assert file_bytes(store) == file_bytes(serial)

    # -- interrupted writes: a kill never leaves a batch or an image that reads back wrong ------------
    def test_kill_during_store_many_never_reads_back_wrong_data(self, store):
        store.store_many(patterned_images(10, seed=9), labels_for(10))  # an older batch, to be replaced
        images, labels = patterned_images(faults.KILL_IMAGES), labels_for(faults.KILL_IMAGES)
        writer = faults.start_writer(type(store), self.method, store.root)
        if faults.kill_when_partial_grows(writer, store.partial_path):
            with pytest.raises(IncompleteStoreError, match=r"clear\(\)"):
                store.read_many(5)
        else:  # the kill came after the rename: the batch is complete and exact
            assert writer.returncode == 0, writer.stderr.read().decode()
            back, back_labels = store.read_many(faults.KILL_IMAGES)
            assert_same(back, images)
            assert_same(back_labels, labels)
        # Either way the older batch is never passed off as the new one: it was removed before writing.
        store.clear()
        assert store.files() == []
        store.store_many(images, labels)
        back, back_labels = store.read_many(faults.KILL_IMAGES)
        assert_same(back, images)
        assert_same(back_labels, labels)

    def test_kill_during_store_single_never_leaves_a_readable_but_wrong_image(self, store):
        old_image, new_image = patterned_images(2, seed=3)
        for crash_at, after in CRASH_POINTS:
            store.clear()
            store.store_single(old_image, 7, label=1)
            exitcode = faults.run_with_crash(store, lambda s: s.store_single(new_image, 7, label=2), crash_at, after)
            assert exitcode in (0, -signal.SIGKILL)
            try:
                image, label = store.read_single(7)
            except StorageReportError as error:
                assert str(error)
                continue
            # Readable: then it must be one whole write, the old one or the new one, never a mix.
            assert (label, digest(image)) in {(1, digest(old_image)), (2, digest(new_image))}, (
                f"crash at rename {crash_at} ({'after' if after else 'before'}) left image and label "
                f"from different writes: label {label}"
            )

    @pytest.mark.parametrize("after", [False, True], ids=["before-rename", "after-rename"])
    def test_kill_at_the_batch_rename(self, store, after):
        images, labels = patterned_images(40), labels_for(40)
        # The batch's own rename is the last os.replace of store_many; count them in a dry run first.
        calls = []
        real_replace = os.replace
        try:
            os.replace = lambda *args, **kwargs: (calls.append(args), real_replace(*args, **kwargs))[1]
            store.store_many(images, labels)
        finally:
            os.replace = real_replace
        store.clear()
        exitcode = faults.run_with_crash(store, lambda s: s.store_many(images, labels), len(calls), after)
        assert exitcode == -signal.SIGKILL
        if after:
            back, back_labels = store.read_many(40)
            assert_same(back, images)
            assert_same(back_labels, labels)
        else:
            with pytest.raises(IncompleteStoreError, match=store.partial_path.name):
                store.read_many(40)

    # -- disk space: estimated on the high side, checked first, and a full disk reported ---------------
    def test_estimates_cover_what_the_store_really_allocates(self, tmp_path):
        for shape in [(32, 32, 3), (64, 48), (16, 16, 4)]:
            images = np.random.default_rng(1).integers(0, 256, size=(300, *shape), dtype=np.uint8)  # noise
            store = open_store(self.method, tmp_path / "x".join(map(str, shape)))
            store.store_many(images, labels_for(300))
            used = allocated_bytes(store.batch_path)
            estimate = estimate_bytes(self.method, 300, shape, np.uint8)
            assert estimate == store.estimated_batch_bytes(images)
            assert used <= estimate, f"{shape}: {used} bytes allocated, estimated {estimate}"
            assert estimate <= 4 * max(used, 1) + 64 * 1024, f"{shape}: estimate far too high"
            for image_id, image in enumerate(images[:20]):
                store.store_single(image, image_id, label=image_id)
            single_used = sum(allocated_bytes(p) for p in store.files()) - used
            assert single_used <= estimate_single_bytes(self.method, 20, shape, np.uint8)

    def test_store_many_refuses_before_touching_the_previous_batch(self, store, monkeypatch):
        old_images, old_labels = patterned_images(20, seed=2), labels_for(20)
        store.store_many(old_images, old_labels)
        before = {path: path.read_bytes() for path in store.files()}
        new_images = patterned_images(2000)
        monkeypatch.setattr(space, "free_bytes", lambda path: 100_000)
        with pytest.raises(InsufficientSpaceError, match="bytes") as caught:
            store.store_many(new_images, labels_for(2000))
        assert str(store.root) in str(caught.value)
        assert {path: path.read_bytes() for path in store.files()} == before
        back, back_labels = store.read_many(20)
        assert_same(back, old_images)
        assert_same(back_labels, old_labels)

    def test_the_previous_batch_counts_as_space_it_will_free(self, store, monkeypatch):
        images = patterned_images(200)
        store.store_many(images, labels_for(200))
        # Just too little free space for a second batch of the same size unless the first one's is counted.
        needed = store.estimated_batch_bytes(images)
        monkeypatch.setattr(space, "free_bytes", lambda path: needed - allocated_bytes(store.batch_path) + 1)
        store.store_many(images[::-1].copy(), labels_for(200))
        assert_same(store.read_many(200)[0], images[::-1])

    @pytest.fixture
    def tiny_disk(self, tmp_path):
        """A 2 MiB tmpfs, or a skip if this machine will not mount one (needs root)."""
        mount_point = tmp_path / "tiny"
        mount_point.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True, text=True
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs to fill: {result.stderr.strip() or result.returncode}")
        try:
            yield mount_point
        finally:
            subprocess.run(["umount", str(mount_point)], check=False)

    def test_a_full_disk_gives_a_clear_error_and_leaves_no_partial_batch(self, tiny_disk, monkeypatch):
        root = tiny_disk / self.method
        store = open_store(self.method, root)
        monkeypatch.setattr(space, "free_bytes", lambda path: 1 << 40)  # skip the preflight: really fill it
        images = patterned_images(300, shape=(64, 64, 3))  # 3.7 MB of pixels for a 2 MiB filesystem
        outcome = faults.run_in_child(lambda: store.store_many(images, labels_for(300)))
        assert outcome[0] == "raised", "a batch larger than the disk was stored"
        _, kind, message, typed = outcome
        assert kind == "InsufficientSpaceError", f"{kind}: {message}"
        assert str(root) in message
        assert not store.partial_path.exists()
        assert not store.batch_path.exists()
        with pytest.raises(ImageNotFoundError):
            store.read_many(1)
        # Nothing half-written is kept: the space is free again for a batch that fits.
        assert shutil.disk_usage(tiny_disk).used < 256 * 1024
        store.store_many(images[:10], labels_for(10))
        assert_same(store.read_many(10)[0], images[:10])
        store.close()

    def test_a_full_disk_during_store_single_is_reported_and_keeps_earlier_images(self, tiny_disk):
        store = open_store(self.method, tiny_disk / self.method)
        images = patterned_images(400, shape=(64, 64, 3))
        stored = tiny_disk / f"{self.method}.count"

        def fill_the_disk():
            for image_id, image in enumerate(images):
                store.store_single(image, image_id, label=image_id)
                stored.write_text(str(image_id + 1))  # a few bytes: what made it, whatever happens next

        outcome = faults.run_in_child(fill_the_disk)
        assert outcome[0] == "raised", "400 images fitted in 2 MiB?"
        assert outcome[1] == "InsufficientSpaceError", f"{outcome[1]}: {outcome[2]}"
        assert str(tiny_disk) in outcome[2]
        count = int(stored.read_text())
        assert count > 0
        for image_id in range(count):
            image, label = store.read_single(image_id)
            assert_same(image, images[image_id])
            assert label == image_id
        store.close()

    # -- readers: they change no file, and several processes read at once ------------------------------
    def test_reading_changes_no_file(self, tmp_path):
        writer = open_store(self.method, tmp_path)
        images = patterned_images(300)
        for image_id in range(3):
            writer.store_single(images[image_id], image_id, label=image_id)
        writer.store_many(images, labels_for(300))
        writer.close()
        allowed = {tmp_path / relative for relative in self.files_readers_write}

        def data_files(store: Store) -> list[Path]:
            return [path for path in store.files() if path not in allowed]

        before = snapshot(data_files(writer))
        time.sleep(0.01)  # a write now would get a later mtime even on coarse-grained clocks
        reader = open_store(self.method, tmp_path)
        for image_id in range(3):
            reader.read_single(image_id)
        reader.read_many(300)
        reader.read_many(7)
        reader.close()
        assert snapshot(data_files(reader)) == before

    @pytest.fixture(scope="class")
    @classmethod
    def filled_store(cls, tmp_path_factory) -> Store:
        """A batch of 300 images and five single ones, shared by the reader tests of the class."""
        store = open_store(cls.method, tmp_path_factory.mktemp("readers") / cls.method)
        images, labels = patterned_images(300, seed=4), labels_for(300)
        store.store_many(images, labels)
        for image_id in range(5):
            store.store_single(images[image_id], image_id, label=int(labels[image_id]))
        return store

    @pytest.mark.parametrize("start_method", ["fork", "spawn"])
    def test_four_processes_read_the_same_store(self, filled_store, start_method):
        expected_images, expected_labels = filled_store.read_many(300)
        # multiprocessing.Pool workers are daemonic, as are PyTorch DataLoader workers.
        with multiprocessing.get_context(start_method).Pool(4) as pool:
            # The Store itself goes to the workers: it pickles as (root, durable), each reopens its handles.
            batches_read = pool.starmap(Store.read_many, [(filled_store, n) for n in READ_SIZES])
            singles = pool.starmap(Store.read_single, [(filled_store, i) for i in range(5)])
        for n, (images, labels) in zip(READ_SIZES, batches_read):
            assert_same(images, expected_images[:n])
            assert_same(labels, expected_labels[:n])
        for image_id, (image, label) in enumerate(singles):
            assert_same(image, expected_images[image_id])
            assert label == expected_labels[image_id]

    def test_a_store_opened_before_fork_works_in_the_children(self, filled_store):
        global SHARED_STORE
        SHARED_STORE = filled_store
        images, labels = SHARED_STORE.read_many(300)  # whatever handles this opens are inherited by the fork
        SHARED_STORE.read_single(0)
        expected = {
            n: (digest(images[:n]) + digest(labels[:n]), digest(images[n % 5]) + str(labels[n % 5]))
            for n in READ_SIZES
        }
        try:
            with multiprocessing.get_context("fork").Pool(4) as pool:
                results = pool.map(read_with_inherited_store, READ_SIZES)
        finally:
            SHARED_STORE = None
        assert results == [expected[n] for n in READ_SIZES]
        # The parent's own handles still work after the children used their copies.
        assert_same(filled_store.read_many(300)[0], images)

    # -- damaged files: an error naming the file, never wrong data ----------------------------------------
    def test_damaged_file_gives_an_error_naming_it(self, tmp_path, damage):
        store = open_store(self.method, tmp_path)
        images = patterned_images(300, seed=6)
        store.store_many(images, labels_for(300))
        for image_id in range(4):
            store.store_single(images[image_id], image_id, label=image_id)
        store.close()
        target = damage.locate(store)
        damage.damage(target)
        faults.expect_named_error(store, damage.operation, damage.argument, target)

    # -- wrong arguments, from hypothesis: always one of the library's errors ---------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def store_for_bad_input(cls, tmp_path_factory) -> Store:
        """A batch and a single image that the refused calls of the class must leave as they were."""
        store = open_store(cls.method, tmp_path_factory.mktemp("bad-input") / cls.method)
        store.store_many(patterned_images(300), labels_for(300))
        store.store_single(good_images[0], 1, label=1)
        return store

    @bad_input_settings
    @given(image=bad_images, image_id=st.integers(0, 10), label=st.integers(-5, 5))
    def test_property_store_single_rejects_bad_images(self, store_for_bad_input, image, image_id, label):
        assert_typed_error(lambda: store_for_bad_input.store_single(image, image_id, label))

    @bad_input_settings
    @given(image_id=bad_ids, label=st.integers(-5, 5))
    def test_property_bad_ids_are_rejected_everywhere(self, store_for_bad_input, image_id, label):
        assert_typed_error(lambda: store_for_bad_input.store_single(good_images[0], image_id, label))
        assert_typed_error(lambda: store_for_bad_input.read_single(image_id))

    @bad_input_settings
    @given(label=bad_labels)
    def test_property_bad_labels_are_rejected(self, store_for_bad_input, label):
        assert_typed_error(lambda: store_for_bad_input.store_single(good_images[0], 2, label))

    @bad_input_settings
    @given(data=st.data())
    def test_property_store_many_rejects_bad_batches(self, store_for_bad_input, data):
        if data.draw(st.booleans(), label="bad images"):
            image = data.draw(bad_images, label="image")
            is_image = isinstance(image, np.ndarray) and image.ndim >= 2
            images = image[np.newaxis].repeat(3, 0) if is_image else image
            labels = data.draw(st.one_of(st.just([0, 1, 2]), bad_batch_labels(3)), label="labels")
        else:
            images, labels = good_images, data.draw(bad_batch_labels(3), label="labels")
        assert_typed_error(lambda: store_for_bad_input.store_many(images, labels))

    @bad_input_settings
    @given(count=bad_counts)
    def test_property_read_many_rejects_bad_counts(self, store_for_bad_input, count):
        assert_typed_error(lambda: store_for_bad_input.read_many(count))

    def test_bad_input_left_the_store_as_it_was(self, store_for_bad_input):
        """Runs after the property tests (class order): none of the refused calls damaged what was there."""
        images, labels = store_for_bad_input.read_many(300)
        assert_same(images, patterned_images(300))
        assert_same(labels, labels_for(300))
        image, label = store_for_bad_input.read_single(1)
        assert_same(image, good_images[0])
        assert label == 1


def assert_typed_error(call) -> None:
    """``call()`` raises one of helpers.core.errors, with a message."""
    try:
        call()
    except StorageReportError as error:
        assert str(error).strip(), f"{type(error).__name__} with an empty message"
    except BaseException as error:
        raise AssertionError(f"{type(error).__name__} is not one of helpers.core.errors: {error}") from error
    else:
        raise AssertionError("bad input was accepted")


def contract_tests_for(method: str, **attributes: object) -> type[StoreContract]:
    """A ``StoreContract`` subclass for ``method`` (registered by then), with any of the contract's class
    attributes set; assign it to a name starting with ``Test`` in a test module for pytest to collect it."""
    name = "Test" + "".join(part.title() for part in method.replace("-", "_").split("_"))
    return type(name, (StoreContract,), {"method": method, **attributes})


__all__ = ["Damage", "StoreContract", "assert_typed_error", "contract_tests_for"]
