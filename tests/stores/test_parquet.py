"""Parquet: the contract, and files pyarrow, pandas and DuckDB read as plain columns."""

from __future__ import annotations

import json

import numpy as np
import pytest
from stores.contract import Damage, StoreContract
from stores.faults import batch_file, truncate_to_half, zero_last_bytes
from stores.samples import INTEROP_BATCHES, from_bytes, images_with_extreme_labels

from helpers.stores import open_store


class TestParquet(StoreContract):
    method = "parquet"
    bounded_memory_totals = (False,)
    chunks_keep_bytes = (True,)  # store_many's row groups; without a total the schema has no count
    damage_cases = [
        Damage("file-cut-in-half", batch_file(""), truncate_to_half, "read_many", 10),
        Damage("footer-magic-zeroed", batch_file(""), zero_last_bytes, "read_many", 10),
        Damage("cut-random-access", batch_file(""), truncate_to_half, "read_indices", [299, 3]),
        Damage("single-cut", lambda s: s.root / "single" / "2.parquet", truncate_to_half, "read_single", 2),
    ]


@pytest.mark.parametrize("shape,dtype", INTEROP_BATCHES, ids=str)
def test_parquet_reads_with_pyarrow_and_pandas(tmp_path, shape, dtype):
    import pandas as pd
    import pyarrow.parquet as pq

    images, labels = images_with_extreme_labels(600, shape, dtype, seed=5)
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

    shape, dtype = INTEROP_BATCHES[1]  # 16-bit: the bytes are little-endian whatever reads them
    images, _ = images_with_extreme_labels(600, shape, dtype, seed=5)
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
