"""Each format's files, written by our stores, read back exactly by that format's own ecosystem."""

from __future__ import annotations

import json
import sqlite3

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


def from_bytes(values, shape, dtype) -> np.ndarray:
    """Images rebuilt from a sequence of raw little-endian byte strings, as a user of the format would."""
    return np.stack([np.frombuffer(value, np.dtype(dtype).newbyteorder("<")).reshape(shape) for value in values])


@pytest.mark.parametrize("shape,dtype", BATCHES, ids=str)
def test_parquet_reads_with_pyarrow_and_pandas(tmp_path, shape, dtype):
    import pandas as pd
    import pyarrow.parquet as pq

    images, labels = random_batch(600, shape, dtype, seed=5)
    store = open_store("parquet", tmp_path)
    store.store_many(images, labels)
    store.store_single(images[7], 123, label=5)

    table = pq.read_table(store.batch_path)
    assert table.column_names == ["key", "label", "image"]
    meta = json.loads(table.schema.metadata[b"image-storage-report"])
    assert (tuple(meta["shape"]), meta["dtype"], meta["count"]) == (shape, np.dtype(dtype).name, len(images))
    assert table.column("key").to_pylist() == list(range(len(images)))
    assert table.column("label").to_pylist() == labels.tolist()
    np.testing.assert_array_equal(from_bytes(table.column("image").to_pylist(), shape, dtype), images)
    assert pq.ParquetFile(store.batch_path).num_row_groups > 1 or images[0].nbytes * len(images) < 768 * 1024

    frame = pd.read_parquet(store.batch_path)
    assert frame["label"].tolist() == labels.tolist()
    np.testing.assert_array_equal(from_bytes(frame["image"], shape, dtype), images)

    single = pq.read_table(store.single_path(123, ".parquet")).to_pylist()
    assert [(row["key"], row["label"]) for row in single] == [(123, 5)]
    np.testing.assert_array_equal(from_bytes([single[0]["image"]], shape, dtype)[0], images[7])


@pytest.mark.parametrize("compression", [None, "zstd"])
def test_parquet_reads_with_duckdb(tmp_path, compression):
    import duckdb
    import imagecodecs

    shape, dtype = BATCHES[1]  # 16-bit: the bytes are little-endian whatever reads them
    images, _ = random_batch(600, shape, dtype, seed=5)
    labels = np.arange(600, dtype=np.int64) % 10 - 4  # a label the query can select
    store = open_store("parquet", tmp_path, compression=compression)
    store.store_many(images, labels)
    with duckdb.connect() as connection:
        rows = connection.execute(
            "SELECT key, label, image FROM read_parquet(?) WHERE label = 3 ORDER BY key", [str(store.batch_path)]
        ).fetchall()
    wanted = np.flatnonzero(labels == 3)
    assert [row[0] for row in rows] == wanted.tolist() and all(row[1] == 3 for row in rows)
    values = [row[2] for row in rows]
    if compression is not None:  # each value is a zstd frame of the pixels
        values = [imagecodecs.zstd_decode(value) for value in values]
    np.testing.assert_array_equal(from_bytes(values, shape, dtype), images[wanted])


@pytest.mark.parametrize("shape,dtype", BATCHES, ids=str)
def test_arrow_reads_with_pyarrow_ipc_and_feather(tmp_path, shape, dtype):
    import pyarrow as pa
    import pyarrow.feather as feather

    images, labels = random_batch(600, shape, dtype, seed=5)
    store = open_store("arrow", tmp_path)
    store.store_many(images, labels)

    with pa.memory_map(str(store.batch_path)) as source:
        table = pa.ipc.open_file(source).read_all()
        assert table.column("label").to_pylist() == labels.tolist()
        np.testing.assert_array_equal(from_bytes(table.column("image").to_pylist(), shape, dtype), images)
    feathered = feather.read_table(store.batch_path)
    assert feathered.column("key").to_pylist() == list(range(len(images)))
    np.testing.assert_array_equal(from_bytes(feathered.column("image").to_pylist(), shape, dtype), images)


@pytest.mark.parametrize("method", ["parquet", "arrow"])
def test_compressed_table_files_read_with_pyarrow_pandas_and_imagecodecs(tmp_path, method):
    import imagecodecs
    import pandas as pd
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    shape, dtype = BATCHES[1]  # 16-bit greyscale: PNG holds it
    images, labels = random_batch(300, shape, dtype, seed=2)
    store = open_store(method, tmp_path, compression="png")
    store.store_many(images, labels)

    table = pq.read_table(store.batch_path) if method == "parquet" else feather.read_table(store.batch_path)
    assert table.column_names == ["key", "label", "image"]
    assert table.schema.field("image").type == pa.binary()
    meta = json.loads(table.schema.metadata[b"image-storage-report"])
    assert (meta["compression"], tuple(meta["shape"]), meta["count"]) == ("png:6", shape, len(images))
    assert table.column("label").to_pylist() == labels.tolist()
    decoded = np.stack([imagecodecs.png_decode(value) for value in table.column("image").to_pylist()])
    assert decoded.dtype == dtype
    np.testing.assert_array_equal(decoded, images)

    frame = pd.read_parquet(store.batch_path) if method == "parquet" else pd.read_feather(store.batch_path)
    assert frame["label"].tolist() == labels.tolist()
    np.testing.assert_array_equal(np.stack([imagecodecs.png_decode(value) for value in frame["image"]]), images)


@pytest.mark.parametrize("shape,dtype", BATCHES, ids=str)
def test_sqlite_reads_with_the_standard_library(tmp_path, shape, dtype):
    images, labels = random_batch(600, shape, dtype, seed=5)
    store = open_store("sqlite", tmp_path)
    store.store_many(images, labels)
    store.store_single(images[3], 77, label=-1)

    with sqlite3.connect(f"{store.batch_path.as_uri()}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT id, label, image FROM images ORDER BY id").fetchall()
        meta = {key: json.loads(value) for key, value in connection.execute("SELECT key, value FROM metadata")}
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()
    assert [row[0] for row in rows] == list(range(len(images)))
    assert [row[1] for row in rows] == labels.tolist()
    np.testing.assert_array_equal(from_bytes([row[2] for row in rows], shape, dtype), images)
    assert (tuple(meta["shape"]), meta["dtype"], meta["count"]) == (shape, np.dtype(dtype).name, len(images))

    single = sqlite3.connect(f"{(tmp_path / 'single.sqlite').as_uri()}?mode=ro", uri=True)
    label, blob = single.execute("SELECT label, image FROM images WHERE id = 77").fetchone()
    single.close()
    assert label == -1
    np.testing.assert_array_equal(from_bytes([blob], shape, dtype)[0], images[3])


@pytest.mark.parametrize("block_bytes", [1, 7 * 240 + 100], ids=["a row per insert", "7 rows per insert"])
def test_sqlite_batch_cut_into_rows_inside_sqlite(tmp_path, monkeypatch, block_bytes):
    """The raw batch is bound a block at a time and cut into rows by SQL: every row a BLOB of one image,
    in order, whatever the block size and however the last block falls."""
    from helpers.stores import sqlite_store

    monkeypatch.setattr(sqlite_store, "BYTES_PER_INSERT", block_bytes)
    images, labels = random_batch(45, (12, 10), np.uint16, seed=9)
    store = open_store("sqlite", tmp_path)
    store.store_many(images, labels)
    with sqlite3.connect(f"{store.batch_path.as_uri()}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT id, label, typeof(image), image FROM images ORDER BY id").fetchall()
    connection.close()
    assert [row[0] for row in rows] == list(range(len(images)))
    assert [row[1] for row in rows] == labels.tolist()
    assert {row[2] for row in rows} == {"blob"}
    np.testing.assert_array_equal(from_bytes([row[3] for row in rows], (12, 10), np.uint16), images)
