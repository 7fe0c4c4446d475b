"""HDF5: the contract, and what only this method promises (its filters, one image per compressed chunk,
checksummed metadata)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from stores.contract import Damage, StoreContract
from stores.faults import batch_file, flip, overwrite, read_in_child, truncate_to_half
from stores.samples import digest, labels_for, patterned_images, small_batch

from helpers.core.errors import CorruptStoreError
from helpers.stores import open_store


class TestHdf5(StoreContract):
    method = "hdf5"
    bounded_memory_totals = (False,)
    # Without a declared total the batch is chunked and resizable (HDF5 cannot grow a contiguous dataset):
    # the same file, other internals; with one it is laid out as store_many lays it out.
    chunks_keep_bytes = (True,)
    damage_cases = [
        Damage("file-cut-in-half", batch_file(""), truncate_to_half, "read_many", 10),
        Damage("superblock-zeroed", batch_file(""), lambda p: overwrite(p, 0, bytes(64)), "read_many", 10),
        Damage("single-cut", lambda s: s.root / "single" / "2.h5", truncate_to_half, "read_single", 2),
    ]


@pytest.mark.parametrize("compression,filter_name", [("gzip:6", "gzip"), ("lzf", "lzf"), ("blosc", "32001"),
                                                     ("zstd", "32015")])
def test_hdf5_compresses_one_image_per_chunk_with_the_named_filter(tmp_path, compression, filter_name):
    images, labels = small_batch()
    store = open_store("hdf5", tmp_path, compression=compression)
    store.store_many(images, labels)
    with h5py.File(store.batch_path, "r") as file:
        data = file["images"]
        assert data.chunks == (1, 16, 16, 3)
        assert filter_name in data._filters
        assert file.attrs["compression"] == compression


def test_hdf5_gzip_takes_the_level_of_the_codec_registry(tmp_path):
    """gzip is a store filter of helpers.codecs: no level means the registry's default, 4 (h5py's own)."""
    images, labels = small_batch()
    for compression, level in (("gzip", 4), ("gzip:9", 9)):
        store = open_store("hdf5", tmp_path / compression.replace(":", "-"), compression=compression)
        store.store_many(images, labels)
        with h5py.File(store.batch_path, "r") as file:
            assert file["images"].compression_opts == level
        np.testing.assert_array_equal(store.read_indices([5, 0])[0], images[[5, 0]])


def test_hdf5_blosc_random_reads_decode_chunks_directly_and_report_a_damaged_one(tmp_path):
    smooth = np.tile(np.arange(64, dtype=np.uint16) * 50, (6, 64, 1))
    store = open_store("hdf5", tmp_path, compression="blosc")
    store.store_many(smooth, np.arange(6))
    assert type(store.batch_reader()).__name__ == "BloscChunkReader"
    np.testing.assert_array_equal(store.read_indices([4, 1])[0], smooth[[4, 1]])
    with h5py.File(store.batch_path, "r") as file:
        offset = file["images"].id.get_chunk_info(3).byte_offset
    store.close()
    with open(store.batch_path, "r+b") as handle:  # the chunk's decoded size, in its Blosc header
        handle.seek(offset + 4)
        handle.write(b"\xff\xff\x00\x00")
    with pytest.raises(CorruptStoreError, match="many.h5: cannot read image 3"):
        store.read_indices([3])


def hdf5_data_region(path: Path) -> tuple[int, int]:
    """(offset, length) of the images dataset's raw pixels inside an HDF5 batch file."""
    with h5py.File(path, "r") as file:
        data = file["images"]
        return data.id.get_offset(), data.id.get_storage_size()


def test_hdf5_damage_anywhere_in_the_metadata_is_an_error_or_harmless(tmp_path):
    store = open_store("hdf5", tmp_path)
    images = patterned_images(50, seed=8)
    store.store_many(images, labels_for(50))
    path = store.batch_path
    data_start, data_length = hdf5_data_region(path)
    original = path.read_bytes()
    metadata = [o for o in range(0, len(original)) if not data_start <= o < data_start + data_length]
    errors = 0
    for offset in metadata[:: max(1, len(metadata) // 40)]:
        path.write_bytes(original)
        flip(path, offset)
        outcome = read_in_child(store, "read_many", 50)
        if outcome[0] == "ok":  # an unused byte: the data must still be exact
            assert outcome[1] == digest(images), f"byte {offset} of the metadata damaged, wrong data returned"
        else:
            assert outcome[3], f"byte {offset}: {outcome[1]}: {outcome[2]}"
            errors += 1
    assert errors > 0
