"""SQLite: the contract, and a real database the standard library's sqlite3 reads."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from stores.contract import Damage, StoreContract
from stores.faults import batch_file, overwrite, truncate_to_half
from stores.samples import INTEROP_BATCHES, from_bytes, images_with_extreme_labels

from helpers.stores import open_store, sqlite_store


class TestSqlite(StoreContract):
    method = "sqlite"
    bounded_memory_totals = (False,)
    damage_cases = [
        Damage("file-cut-in-half", batch_file(""), truncate_to_half, "read_many", 300),
        Damage("cut-random-access", batch_file(""), truncate_to_half, "read_indices", [299, 3]),
        Damage("header-zeroed", batch_file(""), lambda p: overwrite(p, 0, bytes(100)), "read_many", 10),
        Damage("single-cut", lambda s: s.root / "single.sqlite", truncate_to_half, "read_single", 2),
    ]


@pytest.mark.parametrize("shape,dtype", INTEROP_BATCHES, ids=str)
def test_sqlite_reads_with_the_standard_library(tmp_path, shape, dtype):
    images, labels = images_with_extreme_labels(600, shape, dtype, seed=5)
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
    monkeypatch.setattr(sqlite_store, "BYTES_PER_INSERT", block_bytes)
    images, labels = images_with_extreme_labels(45, (12, 10), np.uint16, seed=9)
    store = open_store("sqlite", tmp_path)
    store.store_many(images, labels)
    with sqlite3.connect(f"{store.batch_path.as_uri()}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT id, label, typeof(image), image FROM images ORDER BY id").fetchall()
    connection.close()
    assert [row[0] for row in rows] == list(range(len(images)))
    assert [row[1] for row in rows] == labels.tolist()
    assert {row[2] for row in rows} == {"blob"}
    np.testing.assert_array_equal(from_bytes([row[3] for row in rows], (12, 10), np.uint16), images)
