"""WebDataset tar: the contract, and what only this method promises (shards byte for byte what tarfile
writes, an index of offsets, shards WebDataset reads unchanged)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from stores.contract import Damage, StoreContract
from stores.faults import batch_file, garble, overwrite, truncate_to_half
from stores.samples import INTEROP_BATCHES, images_with_extreme_labels, small_batch

from helpers.core.errors import CorruptStoreError
from helpers.stores import open_store, tar_store


class TestTar(StoreContract):
    method = "tar"
    bounded_memory_totals = (False,)
    encoded_chunks_keep_bytes = True
    damage_cases = [
        Damage("shard-cut-in-half", batch_file("shard-000000.tar"), truncate_to_half, "read_many", 10),
        Damage("shard-missing", batch_file("shard-000000.tar"), Path.unlink, "read_many", 10),
        Damage("index-missing", batch_file("index.npy"), Path.unlink, "read_many", 10),
        Damage("index-garbage", batch_file("index.npy"), garble, "read_many", 10),
        Damage("cls-garbage", batch_file("shard-000000.tar"), lambda p: overwrite(p, 512 + 5120, b"x7"),
               "read_many", 10),
        Damage("npy-header-garbage", batch_file("shard-000000.tar"), lambda p: overwrite(p, 1536 + 5120, b"NUMPY"),
               "read_many", 10),
        Damage("single-tar-cut", lambda s: s.root / "single" / "2.tar", truncate_to_half, "read_single", 2),
    ]


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
    images, labels = images_with_extreme_labels(150, shape, dtype)
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
    images, labels = images_with_extreme_labels(60)
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


def test_tar_random_reads_come_from_the_index_offsets(tmp_path):
    """An index that disagrees with the shards is refused, not followed to other bytes."""
    images, labels = images_with_extreme_labels(40)
    store = open_store("tar", tmp_path)
    store.store_many(images, labels)
    index_path = store.batch_path / tar_store.INDEX_NAME
    index = np.load(index_path)
    index[5, 2] += 512
    np.save(index_path, index)
    store.close()
    with pytest.raises(CorruptStoreError, match="index.npy"):
        store.read_indices([5])


def test_tar_shards_of_compressed_images_open_with_tarfile_and_name_the_codec(tmp_path):
    images, labels = small_batch()
    store = open_store("tar", tmp_path, compression="png")
    store.store_many(images, labels)
    assert json.loads((store.batch_path / "batch.json").read_text())["compression"] == "png:6"
    with tarfile.open(store.batch_path / "shard-000000.tar") as archive:
        names = archive.getnames()[:4]
        member = archive.extractfile("00000002.png").read()
    assert names == ["00000000.cls", "00000000.png", "00000001.cls", "00000001.png"]
    with Image.open(io.BytesIO(member)) as picture:
        np.testing.assert_array_equal(np.asarray(picture), images[2])
    with open(store.batch_path / "shard-000000.tar", "r+b") as handle:
        handle.truncate(1500)
    store.close()
    with pytest.raises(CorruptStoreError, match="shard-000000.tar: shorter than its index says"):
        store.read_indices([5])


@pytest.mark.parametrize("shape,dtype", INTEROP_BATCHES, ids=str)
def test_tar_shards_read_unchanged_with_webdataset(tmp_path, shape, dtype, monkeypatch):
    import webdataset

    images, labels = images_with_extreme_labels(300, shape, dtype)
    # Small shards, so that the samples run across several files.
    monkeypatch.setattr(tar_store, "SHARD_BYTES", 64 * 1024)
    store = open_store("tar", tmp_path)
    store.store_many(images, labels)
    urls = sorted(str(path) for path in store.batch_path.glob("shard-*.tar"))
    assert len(urls) > 2
    samples = list(webdataset.WebDataset(urls, shardshuffle=False, empty_check=False).decode())
    assert [sample["__key__"] for sample in samples] == [f"{i:08d}" for i in range(300)]
    back = np.stack([sample["npy"] for sample in samples])
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, images)
    assert [sample["cls"] for sample in samples] == labels.tolist()
