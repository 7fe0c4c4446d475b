"""What the zarr and tar stores promise beyond the shared store tests: their layout and their two readers."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from helpers.core.errors import CorruptStoreError
from helpers.stores import open_store, tar_store, zarr_store


def images_and_labels(n: int, shape=(32, 32, 3), dtype=np.uint8, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, np.iinfo(dtype).max + 1, size=(n, *shape), dtype=dtype)
    labels = rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64)
    labels[:4] = [0, 7, -(2**63), 2**63 - 1]  # one digit to the longest label text
    return images, labels


# -- tar ------------------------------------------------------------------------------------------------


def tarfile_shard(images: np.ndarray, labels: np.ndarray, first: int) -> bytes:
    """The shard ``tarfile`` itself writes for these samples, member by member."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for offset, (image, label) in enumerate(zip(images, labels)):
            key = f"{first + offset:08d}"
            for suffix, data in (("cls", str(label).encode()), ("npy", tar_store.npy_bytes(image))):
                info = tarfile.TarInfo(f"{key}.{suffix}")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("shape,dtype", [((32, 32, 3), np.uint8), ((5, 7), np.uint16)], ids=str)
def test_tar_shards_are_byte_for_byte_what_tarfile_writes(tmp_path, monkeypatch, shape, dtype):
    monkeypatch.setattr(tar_store, "SHARD_BYTES", 200 * 1024)
    images, labels = images_and_labels(150, shape, dtype)
    store = open_store("tar", tmp_path)
    store.store_many(images, labels)
    shards = sorted(store.batch_path.glob("shard-*.tar"))
    layout = tar_store.SampleLayout(150, shape, dtype)
    assert len(shards) == layout.shards > 1
    for number, path in enumerate(shards):
        first = number * layout.per_shard
        stop = first + layout.shard_samples(number)
        assert path.read_bytes() == tarfile_shard(images[first:stop], labels[first:stop], first), path.name


def test_tar_index_holds_each_members_data_offset(tmp_path, monkeypatch):
    monkeypatch.setattr(tar_store, "SHARD_BYTES", 100 * 1024)
    images, labels = images_and_labels(60)
    store = open_store("tar", tmp_path)
    store.store_many(images, labels)
    index = np.load(store.batch_path / tar_store.INDEX_NAME)
    found = []
    for number, path in enumerate(sorted(store.batch_path.glob("shard-*.tar"))):
        with tarfile.open(path) as archive:
            members = archive.getmembers()
        first = len(found)
        assert [m.name for m in members[:2]] == [f"{first:08d}.cls", f"{first:08d}.npy"]
        for cls_member, npy_member in zip(members[::2], members[1::2]):
            found.append((number, cls_member.offset_data, npy_member.offset_data))
    np.testing.assert_array_equal(index, np.array(found))


def test_tar_random_reads_come_from_the_index_offsets(tmp_path, monkeypatch):
    """An index that disagrees with the shards is refused, not followed to other bytes."""
    images, labels = images_and_labels(40)
    store = open_store("tar", tmp_path)
    store.store_many(images, labels)
    index_path = store.batch_path / tar_store.INDEX_NAME
    index = np.load(index_path)
    index[5, 2] += 512
    np.save(index_path, index)
    store.close()
    with pytest.raises(CorruptStoreError, match="index.npy"):
        store.read_indices([5])


# -- zarr -----------------------------------------------------------------------------------------------


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
    images, labels = images_and_labels(700, (12, 10), np.uint16)
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
    images, labels = images_and_labels(300, (8, 8, 3))
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
