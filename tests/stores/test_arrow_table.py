"""The table layout Parquet and Arrow share (helpers.stores.arrow_table): with compression=, each value is one
encoded image that pyarrow, pandas and imagecodecs read as they are, and a damaged one is named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from stores.samples import INTEROP_BATCHES, images_with_extreme_labels, small_batch

from helpers.core.errors import CorruptStoreError
from helpers.stores import open_store


@pytest.mark.parametrize("method", ["parquet", "arrow"])
def test_compressed_table_files_read_with_pyarrow_pandas_and_imagecodecs(tmp_path, method):
    import imagecodecs
    import pandas as pd
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    shape, dtype = INTEROP_BATCHES[1]  # 16-bit greyscale: PNG holds it
    images, labels = images_with_extreme_labels(300, shape, dtype, seed=2)
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


@pytest.mark.parametrize("method", ["parquet", "arrow"])
def test_table_stores_name_the_codec_in_the_schema_and_report_a_damaged_value(tmp_path, method):
    import pyarrow as pa
    import pyarrow.parquet as pq

    images, labels = small_batch()
    store = open_store(method, tmp_path, compression="png:3")
    store.store_many(images, labels)
    if method == "parquet":
        schema = pq.read_schema(store.batch_path)
    else:
        with pa.memory_map(str(store.batch_path)) as source:
            schema = pa.ipc.open_file(source).schema
    assert json.loads(schema.metadata[b"image-storage-report"])["compression"] == "png:3"
    assert schema.field("image").type == pa.binary()
    np.testing.assert_array_equal(open_store(method, tmp_path).read_indices([3])[0], images[[3]])  # told nothing
    store.close()
    data = bytearray(store.batch_path.read_bytes())
    signature = b"\x89PNG\r\n\x1a\n"
    starts = [i for i in range(len(data)) if data.startswith(signature, i)]
    assert len(starts) == len(images)  # each value is a whole PNG file, stored as it is
    data[starts[4] + 20] ^= 0xFF  # inside the header chunk of image 4: its CRC no longer matches
    store.batch_path.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match=rf"many.{method} row 4.*cannot decode a png:3 value"):
        store.read_indices([1, 4])
    with pytest.raises(CorruptStoreError, match=rf"many.{method} row 4"):
        store.read_many(6)
    np.testing.assert_array_equal(store.read_indices([5, 0])[0], images[[5, 0]])
