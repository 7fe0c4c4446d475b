"""Every registered store reads back exactly what it was given, through every operation."""

from __future__ import annotations

import pickle

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from helpers.core.errors import (
    ImageFormatError,
    ImageNotFoundError,
    IncompleteStoreError,
    UnknownCodecError,
    UnknownMethodError,
)
from helpers import codecs
from helpers.report.chapters.compression import holds, lossy
from helpers.stores import FLOOR, names, open_store, store_class
from helpers.stores import values as codec
from helpers.stores.disk import DiskStore

METHODS = names()


def random_images(n: int, shape=(32, 32, 3), dtype=np.uint8, seed: int = 0) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(0, info.max + 1, size=(n, *shape), dtype=dtype)


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


def test_registry_has_the_article_methods_and_the_floor():
    assert METHODS[:3] == ["disk", "lmdb", "hdf5"]
    assert FLOOR in METHODS
    for name in METHODS:
        cls = store_class(name)
        assert cls.name == name
        assert cls.trade_off.endswith(".")


def test_unknown_method_names_the_known_ones(tmp_path):
    with pytest.raises(UnknownMethodError, match="known methods: disk, lmdb, hdf5"):
        open_store("tiff", tmp_path)


SHAPES = [
    ((32, 32, 3), np.uint8),
    ((17, 9), np.uint8),
    ((8, 8, 1), np.uint8),
    ((5, 6, 2), np.uint8),
    ((7, 3, 4), np.uint8),
    ((12, 10), np.uint16),
    ((4, 5, 1), np.uint16),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape,dtype", SHAPES, ids=lambda v: str(v))
def test_single_round_trip(tmp_path, method, shape, dtype):
    store = open_store(method, tmp_path)
    images = random_images(3, shape, dtype)
    for image_id, image in zip([0, 41, 10**9], images):
        store.store_single(image, image_id, label=image_id % 7 - 3)
    for image_id, image in zip([0, 41, 10**9], images):
        back, label = store.read_single(image_id)
        assert_same(back, image)
        assert label == image_id % 7 - 3


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape,dtype", SHAPES, ids=lambda v: str(v))
def test_many_round_trip_and_prefix(tmp_path, method, shape, dtype):
    store = open_store(method, tmp_path)
    images = random_images(20, shape, dtype, seed=1)
    labels = np.arange(20) * 3 - 7
    store.store_many(images, labels)
    back, back_labels = store.read_many(20)
    assert_same(back, images)
    assert_same(back_labels, labels.astype(np.int64))
    first, first_labels = store.read_many(6)
    assert_same(first, images[:6])
    assert_same(first_labels, labels[:6].astype(np.int64))


@pytest.mark.parametrize("method", METHODS)
def test_a_new_batch_replaces_the_old_one(tmp_path, method):
    store = open_store(method, tmp_path)
    store.store_many(random_images(30, seed=2), np.zeros(30, dtype=np.int64))
    smaller = random_images(10, (8, 8), seed=3)
    store.store_many(smaller, np.ones(10, dtype=np.int64))
    back, labels = store.read_many(10)
    assert_same(back, smaller)
    assert (labels == 1).all()
    with pytest.raises(ImageNotFoundError, match="holds 10"):
        store.read_many(11)


@pytest.mark.parametrize("method", METHODS)
def test_files_lists_what_was_written_and_clear_removes_it(tmp_path, method):
    store = open_store(method, tmp_path / method)
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


@pytest.mark.parametrize("method", METHODS)
def test_labels_accept_lists_and_any_integer_dtype(tmp_path, method):
    store = open_store(method, tmp_path)
    images = random_images(3)
    for labels in ([9, 0, 4], np.array([9, 0, 4], dtype=np.uint8), np.array([9, 0, 4], dtype=np.int32)):
        store.store_many(images, labels)
        assert store.read_many(3)[1].tolist() == [9, 0, 4]


@pytest.mark.parametrize("method", METHODS)
def test_non_contiguous_input_is_stored_as_seen(tmp_path, method):
    store = open_store(method, tmp_path)
    big = random_images(10, (16, 16, 3))
    view = big[::2, ::2, 1::1]  # strided on two axes
    store.store_many(view, np.arange(5))
    assert_same(store.read_many(5)[0], np.ascontiguousarray(view))
    store.store_single(big[0, :, ::-1], 1, 0)
    assert_same(store.read_single(1)[0], np.ascontiguousarray(big[0, :, ::-1]))


@pytest.mark.parametrize("method", METHODS)
def test_durable_writes_round_trip(tmp_path, method):
    store = open_store(method, tmp_path, durable=True)
    images = random_images(5, (6, 6))
    store.store_many(images, np.arange(5))
    store.store_single(images[0], 3, 2)
    assert_same(store.read_many(5)[0], images)
    assert_same(store.read_single(3)[0], images[0])


@pytest.mark.parametrize("method", METHODS)
def test_store_pickles_without_handles_and_keeps_working(tmp_path, method):
    store = open_store(method, tmp_path, durable=True)
    images = random_images(4)
    store.store_many(images, np.arange(4))
    clone = pickle.loads(pickle.dumps(store))
    assert clone.root == store.root and clone.durable
    assert_same(clone.read_many(4)[0], images)


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
    assert_same(many.read_many(2_100)[0], images)


def test_codec_header_is_explicit_and_little_endian():
    image = np.arange(6, dtype=np.uint16).reshape(2, 3)
    value = codec.encode(image, label=-2)
    assert value[:4] == b"ISR1"
    assert len(value) == codec.HEADER_SIZE + image.nbytes
    assert value[codec.HEADER_SIZE : codec.HEADER_SIZE + 4] == bytes([0, 0, 1, 0])
    back, label = codec.decode(value, "test")
    assert_same(back, image)
    assert label == -2


# -- property-based round trips --------------------------------------------------------------

image_shapes = st.one_of(
    st.tuples(st.integers(1, 12), st.integers(1, 12)),
    st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 2, 3, 4])),
)


@st.composite
def batches(draw):
    dtype = draw(st.sampled_from([np.uint8, np.uint16]))
    shape = draw(image_shapes)
    if dtype == np.uint16 and len(shape) == 3:
        shape = shape[:2] + (1,)
    n = draw(st.integers(1, 6))
    images = draw(hnp.arrays(dtype, (n, *shape), elements=st.integers(0, np.iinfo(dtype).max)))
    labels = draw(hnp.arrays(np.int64, n, elements=st.integers(-(2**63), 2**63 - 1)))
    return images, labels


@pytest.mark.parametrize("method", METHODS)
@given(batch=batches(), image_id=st.integers(0, 10**12 - 1))
def test_property_every_store_reads_back_exactly(tmp_path_factory, method, batch, image_id):
    images, labels = batch
    store = open_store(method, tmp_path_factory.mktemp(method))
    store.store_many(images, labels)
    back, back_labels = store.read_many(len(images))
    assert_same(back, images)
    assert_same(back_labels, labels)
    store.store_single(images[-1], image_id, int(labels[-1]))
    single, label = store.read_single(image_id)
    assert_same(single, images[-1])
    assert label == labels[-1]


@pytest.mark.parametrize("method", METHODS)
def test_obvious_bad_input_is_named(tmp_path, method):
    store = open_store(method, tmp_path)
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


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape,dtype", [((32, 32, 3), np.uint8), ((12, 10), np.uint16), ((4, 5, 1), np.uint8)],
                         ids=str)
def test_read_indices_in_any_order_with_repeats(tmp_path, method, shape, dtype):
    store = open_store(method, tmp_path)
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


@pytest.mark.parametrize("method", METHODS)
def test_read_indices_empty_gives_the_batch_shape(tmp_path, method):
    store = open_store(method, tmp_path)
    store.store_many(random_images(3, (6, 7), np.uint16), [1, 2, 3])
    for empty in ([], np.array([], dtype=np.int64), ()):
        back, labels = store.read_indices(empty)
        assert back.shape == (0, 6, 7) and back.dtype == np.uint16
        assert labels.shape == (0,) and labels.dtype == np.int64


@pytest.mark.parametrize("method", METHODS)
def test_read_indices_refuses_bad_positions_by_name(tmp_path, method):
    store = open_store(method, tmp_path)
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


@pytest.mark.parametrize("method", METHODS)
def test_an_interrupted_batch_has_no_length_and_refuses_random_reads(tmp_path, method):
    store = open_store(method, tmp_path)
    store.partial_path.mkdir()
    with pytest.raises(IncompleteStoreError):
        store.read_indices([0])
    assert len(store) == 0


@pytest.mark.parametrize("method", METHODS)
def test_random_reads_follow_a_new_batch_and_clear(tmp_path, method):
    store = open_store(method, tmp_path)
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


@pytest.mark.parametrize("method", METHODS)
def test_open_store_pickles_and_reads_indices_in_a_forked_child(tmp_path, method):
    import multiprocessing

    store = open_store(method, tmp_path)
    images = random_images(40, seed=8)
    store.store_many(images, np.arange(40))
    store.read_indices([0])  # the parent holds the batch open before the fork and the pickle
    clone = pickle.loads(pickle.dumps(store))
    assert_same(clone.read_indices([39, 1])[0], images[[39, 1]])
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        results = pool.map(_read_positions, [(store, [5, 6]), (store, [39, 0, 39])])
    assert_same(results[0], images[[5, 6]])
    assert_same(results[1], images[[39, 0, 39]])
    assert_same(store.read_indices([7])[0], images[[7]])


def _read_positions(call):
    store, positions = call
    return store.read_indices(positions)[0]


@pytest.mark.parametrize("method", METHODS)
@given(batch=batches(), data=st.data())
def test_property_read_indices_agrees_with_read_many(tmp_path_factory, method, batch, data):
    images, labels = batch
    store = open_store(method, tmp_path_factory.mktemp(method))
    store.store_many(images, labels)
    positions = data.draw(st.lists(st.integers(0, len(images) - 1), max_size=12))
    everything, all_labels = store.read_many(len(images))
    back, back_labels = store.read_indices(positions)
    assert_same(back, everything[positions] if positions else everything[:0])
    assert_same(back_labels, all_labels[positions] if positions else all_labels[:0])
    assert len(store) == len(images)


@pytest.mark.parametrize("method", METHODS)
def test_two_stores_of_one_folder_see_each_others_batches(tmp_path, method):
    reader, writer = open_store(method, tmp_path), open_store(method, tmp_path)
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


@pytest.mark.parametrize("method", METHODS)
def test_compression_the_method_does_not_take_is_refused_with_what_it_accepts(tmp_path, method):
    cls = store_class(method)
    assert isinstance(cls.compressions, tuple)
    with pytest.raises(UnknownCodecError, match=rf"the {method} method does not take compression 'lz77'"):
        open_store(method, tmp_path, compression="lz77")
    assert open_store(method, tmp_path, compression=None).compression is None
    for accepted in cls.compressions:
        store = open_store(method, tmp_path, compression=accepted)
        assert pickle.loads(pickle.dumps(store)).compression == store.compression


def compression_cases() -> list[tuple[str, str]]:
    """(method, compression) for every compression each method accepts, lossy ones at a quality."""
    cases = []
    for method in METHODS:
        for family in store_class(method).compressions:
            cases.append((method, family))
            if family in ("jpeg", "webp"):
                cases.append((method, f"{family}:90"))
    return cases


COMPRESSION_CASES = compression_cases()


def smooth_images(n: int, shape, dtype, seed: int = 0) -> np.ndarray:
    """Gradients with a little noise: what lossy codecs are made for (noise alone they cannot keep)."""
    rng = np.random.default_rng(seed)
    height, width = shape[:2]
    ramp = np.add.outer(np.arange(height), np.arange(width)) / (height + width)
    peak = np.iinfo(dtype).max
    images = (ramp[None, :, :] * rng.uniform(0.3, 1.0, size=(n, 1, 1)) * peak).astype(np.float64)
    images = images.reshape(n, height, width, *([1] * (len(shape) - 2)))
    images = np.broadcast_to(images, (n, *shape)) + rng.normal(0, peak / 200, size=(n, *shape))
    return np.clip(images, 0, peak).astype(dtype)


def test_the_articles_methods_take_compression_and_the_floor_none():
    assert store_class(FLOOR).compressions == ()
    for method in METHODS[:3]:
        assert store_class(method).compressions, method
    assert set(codecs.names()) <= set(store_class("lmdb").compressions)


@pytest.mark.parametrize("method,compression", COMPRESSION_CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("shape,dtype", SHAPES, ids=lambda v: str(v))
def test_compressed_round_trip(tmp_path, method, compression, shape, dtype):
    store = open_store(method, tmp_path, compression=compression)
    if not holds(compression, shape, dtype):
        with pytest.raises(ImageFormatError, match="cannot hold"):
            store.store_many(random_images(3, shape, dtype), np.arange(3))
        assert store.files() == []  # refused before anything was written
        return
    images = smooth_images(12, shape, dtype, seed=4) if lossy(compression) else random_images(12, shape, dtype)
    labels = np.arange(12) * 5 - 9
    store.store_many(images, labels)
    store.store_single(images[2], 77, label=-4)
    reader = open_store(method, tmp_path)  # told nothing: the codec is recorded in the store
    every, every_labels = reader.read_many(12)
    some, some_labels = reader.read_indices([7, 0, 7])
    single, single_label = reader.read_single(77)
    assert_same(every_labels, labels)
    assert_same(some_labels, labels[[7, 0, 7]])
    assert single_label == -4
    if lossy(compression):
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


@pytest.mark.parametrize("method", [*METHODS[:3], "parquet", "arrow"])
def test_a_store_opened_with_another_codec_reads_what_was_recorded(tmp_path, method):
    first, second = store_class(method).compressions[:2]
    images = random_images(5, (16, 16, 3))
    open_store(method, tmp_path, compression=first).store_many(images, np.arange(5))
    other = open_store(method, tmp_path, compression=second)
    assert_same(other.read_many(5)[0], images)
    assert_same(other.read_indices([4])[0], images[[4]])


def test_compression_levels_out_of_range_are_refused_with_the_range(tmp_path):
    with pytest.raises(UnknownCodecError, match="from 1 to 22"):
        open_store("lmdb", tmp_path, compression="zstd:99")
    with pytest.raises(UnknownCodecError, match="gzip level must be from 0 to 9"):
        open_store("hdf5", tmp_path, compression="gzip:10")
    with pytest.raises(UnknownCodecError, match="lzf takes no level"):
        open_store("hdf5", tmp_path, compression="lzf:3")
    with pytest.raises(UnknownCodecError, match="accepts: png, webp, jpeg2000, jpeg"):
        open_store("disk", tmp_path, compression="zstd")
