"""One name, one meaning: a codec name means the same codec, levels and range in every store that takes it."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import zarr

from helpers.codecs import get_codec
from helpers.core.errors import UnknownCodecError
from helpers.stores import open_store


@pytest.mark.parametrize("compression,level", [("blosc", 5), ("blosc:9", 9), ("blosc:0", 0)])
def test_blosc_means_zstd_after_a_bit_shuffle_in_hdf5_and_zarr_as_in_the_codec(tmp_path, compression, level):
    """HDF5's Blosc filter and zarr's BloscCodec are set as the codec ``blosc`` is."""
    import hdf5plugin

    assert get_codec(compression).parameter == level
    scans = (np.random.default_rng(4).integers(0, 4096, size=(3, 16, 16))).astype(np.uint16)
    hdf5 = open_store("hdf5", tmp_path / "hdf5", compression=compression)
    hdf5.store_many(scans, np.arange(3))
    with h5py.File(hdf5.batch_path, "r") as file:
        filter_id, _, values, _ = file["images"].id.get_create_plist().get_filter(0)
    written = hdf5plugin.from_filter_options(filter_id, values)
    assert (written.cname, written.clevel, written.shuffle) == ("zstd", level, hdf5plugin.Blosc.BITSHUFFLE)
    np.testing.assert_array_equal(hdf5.read_indices([2, 0])[0], scans[[2, 0]])

    zarr_store = open_store("zarr", tmp_path / "zarr", compression=compression)
    zarr_store.store_many(scans, np.arange(3))
    blosc = zarr.open_group(zarr_store.batch_path, mode="r")["images"].compressors[0]
    assert (blosc.cname.value, blosc.clevel, blosc.shuffle.value) == ("zstd", level, "bitshuffle")


def test_compression_levels_out_of_range_are_refused_with_the_range(tmp_path):
    with pytest.raises(UnknownCodecError, match="from 1 to 22"):
        open_store("lmdb", tmp_path, compression="zstd:99")
    with pytest.raises(UnknownCodecError, match="gzip level must be from 0 to 9"):
        open_store("hdf5", tmp_path, compression="gzip:10")
    with pytest.raises(UnknownCodecError, match="lzf takes no level"):
        open_store("hdf5", tmp_path, compression="lzf:3")
    with pytest.raises(UnknownCodecError, match="accepts: png, webp, jpeg2000, jpeg"):
        open_store("disk", tmp_path, compression="zstd")
