"""Arrow IPC: the contract, and files pyarrow's IPC and Feather readers read as plain columns."""

from __future__ import annotations

import numpy as np
import pytest
from stores.contract import Damage, StoreContract
from stores.faults import batch_file, truncate_to_half, zero_last_bytes
from stores.samples import INTEROP_BATCHES, from_bytes, images_with_extreme_labels

from helpers.stores import arrow_store, open_store


class TestArrow(StoreContract):
    method = "arrow"
    bounded_memory_totals = (True,)
    bounded_memory_extra = 2 * arrow_store.BATCH_BYTES  # it gathers a whole record batch before writing it
    chunks_keep_bytes = (True,)  # store_many's record batches; without a total the schema has no count
    damage_cases = [
        Damage("file-cut-in-half", batch_file(""), truncate_to_half, "read_many", 10),
        Damage("footer-magic-zeroed", batch_file(""), zero_last_bytes, "read_indices", [299, 3]),
        Damage("single-cut", lambda s: s.root / "single" / "2.arrow", truncate_to_half, "read_single", 2),
    ]


@pytest.mark.parametrize("shape,dtype", INTEROP_BATCHES, ids=str)
def test_arrow_reads_with_pyarrow_ipc_and_feather(tmp_path, shape, dtype):
    import pyarrow as pa
    import pyarrow.feather as feather

    images, labels = images_with_extreme_labels(600, shape, dtype, seed=5)
    store = open_store("arrow", tmp_path)
    store.store_many(images, labels)

    with pa.memory_map(str(store.batch_path)) as source:
        table = pa.ipc.open_file(source).read_all()
        assert table.column("label").to_pylist() == labels.tolist()
        np.testing.assert_array_equal(from_bytes(table.column("image").to_pylist(), shape, dtype), images)
    feathered = feather.read_table(store.batch_path)
    assert feathered.column("key").to_pylist() == list(range(len(images)))
    np.testing.assert_array_equal(from_bytes(feathered.column("image").to_pylist(), shape, dtype), images)
