"""store_chunks: a batch written from chunks reads back as store_many's, with bounded memory, and fails whole."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import datasets
from helpers.core import space
from helpers.core.errors import DatasetError, ImageFormatError, ImageNotFoundError, InsufficientSpaceError
from helpers.codecs import get_codec
from helpers.stores import names, open_store, store_class
from helpers.stores import arrow_store
from helpers.stores.values import EncodedImages

METHODS = names()


def random_images(n: int, shape=(8, 8, 3), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def cut(images: np.ndarray, labels: np.ndarray, sizes: list[int]):
    """(images, labels) chunks of these sizes, in order."""
    start = 0
    for size in sizes:
        yield images[start : start + size], labels[start : start + size]
        start += size
    assert start == len(images)


def file_bytes(store) -> dict[str, bytes]:
    return {str(path.relative_to(store.batch_path)): path.read_bytes() for path in store.batch_path.rglob("*")
            if path.is_file()}


@pytest.mark.parametrize("total", [None, "declared"])
@pytest.mark.parametrize("method", METHODS)
def test_chunks_read_back_like_store_many(method, total, tmp_path):
    images = random_images(2_345)
    labels = np.arange(2_345) % 7 - 3
    serial = open_store(method, tmp_path / "serial")
    serial.store_many(images, labels)
    chunked = open_store(method, tmp_path / "chunked")
    sizes = [1, 998, 1_200, 46, 100]  # across shard boundaries of the disk store, of unequal sizes
    written = chunked.store_chunks(cut(images, labels, sizes), total=2_345 if total else None)
    assert written == len(chunked) == 2_345
    read_images, read_labels = chunked.read_many(2_345)
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)
    np.testing.assert_array_equal(chunked.read_indices([2_344, 0, 999, 1_000])[0], images[[2_344, 0, 999, 1_000]])
    if method != "hdf5":  # HDF5's layout differs when the total is unknown (chunked); the others are the same
        assert file_bytes(chunked).keys() == file_bytes(serial).keys()
    if method == "disk" or (method == "hdf5" and total):  # LMDB: one transaction per chunk, other page ids
        assert file_bytes(chunked) == file_bytes(serial)


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


def lossless_compressions() -> list[tuple[str, str]]:
    """(method, the first lossless compression it takes) for every method that takes one."""
    cases = []
    for method in METHODS:
        lossless = [name for name in store_class(method).compressions if name not in ("jpeg", "webp:90")]
        if lossless:
            cases.append((method, lossless[0]))
    return cases


@pytest.mark.parametrize("method,compression", lossless_compressions())
def test_compressed_chunks_read_back_exactly(method, compression, tmp_path):
    images = random_images(1_300)
    labels = np.arange(1_300) % 5
    store = open_store(method, tmp_path, compression=compression)
    assert store.store_chunks(cut(images, labels, [700, 1, 599])) == 1_300
    reader = open_store(method, tmp_path)  # told nothing: the codec is recorded
    read_images, read_labels = reader.read_many(1_300)
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)
    np.testing.assert_array_equal(reader.read_indices([1_299, 700, 0])[0], images[[1_299, 700, 0]])


ENCODING_METHODS = [method for method in METHODS if store_class(method).encodes_each_image]


@pytest.mark.parametrize("method", ENCODING_METHODS)
def test_chunks_encoded_elsewhere_are_written_as_the_store_would_encode_them(method, tmp_path):
    images, labels = random_images(1_100), np.arange(1_100) % 9
    serial = open_store(method, tmp_path / "serial", compression="zstd")
    serial.store_many(images, labels)
    image_codec = get_codec("zstd")
    encoded = ((EncodedImages.encode(part, image_codec), part_labels) for part, part_labels in cut(images, labels, [600, 500]))
    store = open_store(method, tmp_path / "encoded", compression="zstd")
    assert store.store_chunks(encoded, total=1_100) == 1_100
    read_images, read_labels = open_store(method, tmp_path / "encoded").read_many(1_100)
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)
    if method == "tar":
        assert file_bytes(store) == file_bytes(serial)


def test_encoded_chunks_are_refused_where_they_cannot_be_written_as_they_are(tmp_path):
    chunk = [(EncodedImages.encode(random_images(3), get_codec("zstd")), [0, 1, 2])]
    with pytest.raises(ImageFormatError, match="chunk 0: images encoded with 'zstd:3'; this store encodes with 'png:6'"):
        open_store(ENCODING_METHODS[0], tmp_path / "png", compression="png").store_chunks(chunk)
    with pytest.raises(ImageFormatError, match="taken only by a store that encodes each image"):
        open_store(ENCODING_METHODS[0], tmp_path / "raw").store_chunks(chunk)
    with pytest.raises(ImageFormatError, match="taken only by a store that encodes each image"):
        open_store("hdf5", tmp_path / "hdf5", compression="zstd").store_chunks(chunk)


@pytest.mark.parametrize("method", METHODS)
def test_a_bad_chunk_is_named_and_leaves_no_batch(method, tmp_path):
    store = open_store(method, tmp_path)
    store.store_many(random_images(10), np.zeros(10, dtype=np.int64))
    chunks = [(random_images(5), np.zeros(5, dtype=np.int64)), (random_images(5), np.zeros(5, dtype=np.int64)),
              (random_images(5, shape=(8, 8)), np.zeros(5, dtype=np.int64))]
    with pytest.raises(ImageFormatError, match=r"chunk 2 holds images of shape \(8, 8\) uint8; the first"):
        store.store_chunks(iter(chunks))
    with pytest.raises(ImageNotFoundError):
        store.read_many(1)
    assert not store.partial_path.exists()


def test_chunk_errors_name_the_problem(tmp_path):
    store = open_store("npy", tmp_path)
    with pytest.raises(ImageFormatError, match="chunks is empty"):
        store.store_chunks([])
    with pytest.raises(ImageFormatError, match="chunk 0: labels has shape"):
        store.store_chunks([(random_images(3), [1, 2])])
    with pytest.raises(ImageFormatError, match="chunk 1 is a list"):
        store.store_chunks([(random_images(3), [1, 2, 3]), [random_images(3)]])
    with pytest.raises(ImageFormatError, match="the chunks held 6 images; total=7 was declared"):
        store.store_chunks([(random_images(3), [1, 2, 3])] * 2, total=7)
    with pytest.raises(ImageFormatError, match="chunk 2 brings the batch to 9 images; total=7"):
        store.store_chunks([(random_images(3), [1, 2, 3])] * 3, total=7)
    with pytest.raises(ImageFormatError, match="total must be a positive"):
        store.store_chunks([(random_images(3), [1, 2, 3])], total=0)
    assert not store.partial_path.exists() and not store.batch_path.exists()


@pytest.mark.parametrize("method", ["lmdb", "hdf5", "npy"])
def test_a_declared_total_is_checked_against_free_space_before_anything(method, tmp_path, monkeypatch):
    store = open_store(method, tmp_path)
    store.store_many(random_images(4), [0, 1, 2, 3])
    needed = store_class(method).space_needed(10**6, (8, 8, 3), np.dtype(np.uint8), single=False)
    monkeypatch.setattr(space, "free_bytes", lambda path: needed // 2)
    taken = []

    def chunks():
        taken.append(1)
        yield random_images(4), [0, 1, 2, 3]

    with pytest.raises(InsufficientSpaceError, match="not enough free space"):
        store.store_chunks(chunks(), total=10**6)
    assert len(store) == 4  # the previous batch is untouched: nothing was written


@pytest.mark.parametrize("method", METHODS)
def test_without_a_total_space_is_checked_before_each_chunk(method, tmp_path, monkeypatch):
    store = open_store(method, tmp_path)
    free = iter([10**12] * 6 + [0] * 100)  # plenty for the first chunks, then a full disk
    monkeypatch.setattr(space, "free_bytes", lambda path: next(free))
    chunks = ((random_images(500, seed=k), np.full(500, k)) for k in range(100))
    with pytest.raises(InsufficientSpaceError, match=r"chunk \d+ \(500 images\)"):
        store.store_chunks(chunks)
    assert not store.partial_path.exists() and not store.batch_path.exists()


BOUNDED_WRITES = [("lmdb", True), ("lmdb", False), ("hdf5", False), ("tar", False), ("zarr", False),
                  ("sqlite", False), ("parquet", False), ("arrow", True)]


@pytest.mark.parametrize("method,declare", BOUNDED_WRITES)
def test_memory_stays_bounded_whatever_the_total(method, declare, tmp_path):
    """200,000 CIFAR-shaped images (614 MB) in chunks of 2,000 (6 MB): the writing process grows by less
    than 128 MB, measured in a fresh process by its kernel high-water mark; Arrow by less than that plus
    two of its record batches (it gathers a whole one, 64 MiB, before writing it)."""
    command = [sys.executable, "-m", "helpers.report.chapters.at_scale", "write", method, str(tmp_path / method), "200000",
               "--chunk-size", "2000", "--distinct", "500"]
    if not declare:
        command.append("--no-total")
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result["data_bytes"] == 200_000 * 3_072
    growth = result["peak_rss"] - result["baseline_rss"]
    allowance = 128 * 2**20 + (2 * arrow_store.BATCH_BYTES if method == "arrow" else 0)
    assert growth < allowance < result["data_bytes"] / 2, result
    assert len(open_store(method, tmp_path / method)) == 200_000


def test_synthetic_chunks_are_the_synthetic_set_cut_in_pieces():
    whole = datasets.synthetic(700, seed=5)
    chunks = list(datasets.synthetic_chunks(700, chunk_size=97, seed=5))
    assert [len(images) for images, _ in chunks] == [97] * 7 + [21]
    np.testing.assert_array_equal(np.concatenate([images for images, _ in chunks]), whole.images)
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in chunks]), whole.labels)
    images, labels = datasets.synthetic_range(300, 302, seed=5)
    np.testing.assert_array_equal(images, whole.images[300:302])
    with pytest.raises(DatasetError, match="chunk_size must be a positive"):
        next(datasets.synthetic_chunks(10, chunk_size=0))


@pytest.mark.parametrize("method", [method for method in METHODS if store_class(method).writes_pieces])
def test_pieces_written_in_any_order_make_store_manys_batch(method, tmp_path):
    images = random_images(1_400, shape=(128, 128, 3))  # 69 MB: several pieces of every method with pieces
    labels = np.arange(1_400) % 11
    serial = open_store(method, tmp_path / "serial")
    serial.store_many(images, labels)
    store = open_store(method, tmp_path / "pieces")
    pieces = store.begin_pieces(len(images), images.shape[1:], images.dtype)
    assert pieces >= 2
    for index in reversed(range(pieces)):
        start, stop = store.piece_bounds(index)
        store.write_piece(index, images[start:stop], labels[start:stop])
    assert store.pieces_done() == set(range(pieces))
    store.commit_pieces()
    np.testing.assert_array_equal(store.read_many(1_400)[0], images)
    assert file_bytes(store) == file_bytes(serial)
