"""Each format's files read with that format's own ecosystem give exactly the images and labels we wrote."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.stores import open_store


def random_batch(n: int, shape: tuple[int, ...], dtype, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, np.iinfo(dtype).max + 1, size=(n, *shape), dtype=dtype)
    labels = rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64)
    labels[:3] = [0, -1, 2**63 - 1]
    return images, labels


BATCHES = [((32, 32, 3), np.uint8), ((12, 10), np.uint16)]


@pytest.mark.parametrize("shape,dtype", BATCHES, ids=str)
def test_zarr_batch_opens_with_plain_zarr(tmp_path, shape, dtype):
    import zarr

    images, labels = random_batch(300, shape, dtype)
    store = open_store("zarr", tmp_path / "store")
    store.store_many(images, labels)
    group = zarr.open_group(store.batch_path, mode="r")
    assert group["images"].dtype == dtype and group["images"].shape == images.shape
    np.testing.assert_array_equal(group["images"][...], images)
    np.testing.assert_array_equal(group["labels"][...], labels)
    # Written under a temporary name and renamed: no metadata may remember where it was written.
    for metadata in store.batch_path.rglob("zarr.json"):
        assert str(tmp_path) not in metadata.read_text()


def test_zarr_single_image_opens_with_plain_zarr(tmp_path):
    import zarr

    images, labels = random_batch(3, (9, 7), np.uint16)
    store = open_store("zarr", tmp_path)
    store.store_single(images[0], 42, int(labels[1]))
    group = zarr.open_group(tmp_path / "single" / "42.zarr", mode="r")
    np.testing.assert_array_equal(group["image"][...], images[0])
    assert group.attrs["label"] == labels[1]


@pytest.mark.parametrize("shape,dtype", BATCHES, ids=str)
def test_tar_shards_read_unchanged_with_webdataset(tmp_path, shape, dtype, monkeypatch):
    import webdataset

    from helpers.stores import tar_store

    images, labels = random_batch(300, shape, dtype)
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
