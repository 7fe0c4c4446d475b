"""What compression= writes: the recorded codec, one image per HDF5 chunk, standard image files, damage found."""

from __future__ import annotations

import io
import json
import tarfile

import h5py
import lmdb
import numpy as np
import pytest
import zarr
from PIL import Image

from helpers.codecs import get_codec
from helpers.core.errors import CorruptStoreError
from helpers.stores import values as codec, open_store
from helpers.stores.disk import png_path


def images_and_labels(n: int = 6, shape=(16, 16, 3)) -> tuple[np.ndarray, np.ndarray]:
    return np.random.default_rng(3).integers(0, 256, size=(n, *shape), dtype=np.uint8), np.arange(n) - 2


def test_a_compressed_value_names_its_codec_and_length_and_refuses_damage():
    image = np.tile(np.arange(16, dtype=np.uint8), (16, 1))  # smooth: compresses
    value = codec.encode_value(image, -7, get_codec("zstd:9"))
    assert value[:4] == b"ISC1" and len(value) < codec.HEADER_SIZE + image.nbytes
    back, label = codec.decode_value(value, "here")
    np.testing.assert_array_equal(back, image)
    assert label == -7
    with pytest.raises(CorruptStoreError, match="here: value is .* bytes, its header promises"):
        codec.decode_value(value[:-3], "here")
    damaged = bytearray(value)
    damaged[codec.COMPRESSED_HEADER_SIZE + 5] ^= 0xFF
    with pytest.raises(CorruptStoreError, match="here"):
        codec.decode_value(bytes(damaged), "here")


def test_lmdb_records_the_codec_once_per_batch_and_reports_a_damaged_value(tmp_path):
    images, labels = images_and_labels()
    store = open_store("lmdb", tmp_path, compression="zstd:7")
    store.store_many(images, labels)
    with lmdb.open(str(store.batch_path), readonly=True, lock=False) as env, env.begin() as txn:
        assert b'"compression": "zstd:7"' in txn.get(b"__batch__")
        value = txn.get(b"00000004")
    store.close()
    with lmdb.open(str(store.batch_path), map_size=1 << 24) as env, env.begin(write=True) as txn:
        txn.put(b"00000004", value[:-1])
    with pytest.raises(CorruptStoreError, match="key 00000004: damaged or truncated value"):
        store.read_indices([1, 4])
    with pytest.raises(CorruptStoreError, match="key 00000004"):
        store.read_many(6)


@pytest.mark.parametrize("compression,filter_name", [("gzip:6", "gzip"), ("lzf", "lzf"), ("blosc", "32001"),
                                                     ("zstd", "32015")])
def test_hdf5_compresses_one_image_per_chunk_with_the_named_filter(tmp_path, compression, filter_name):
    images, labels = images_and_labels()
    store = open_store("hdf5", tmp_path, compression=compression)
    store.store_many(images, labels)
    with h5py.File(store.batch_path, "r") as file:
        data = file["images"]
        assert data.chunks == (1, 16, 16, 3)
        assert filter_name in data._filters
        assert file.attrs["compression"] == compression


@pytest.mark.parametrize("compression,level", [("blosc", 5), ("blosc:9", 9), ("blosc:0", 0)])
def test_blosc_means_zstd_after_a_bit_shuffle_in_hdf5_and_zarr_as_in_the_codec(tmp_path, compression, level):
    """One name, one meaning: HDF5's Blosc filter and zarr's BloscCodec are set as the codec ``blosc`` is."""
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


@pytest.mark.parametrize("compression", ["png:9", "webp", "jpeg2000", "jpeg:80"])
def test_disk_files_are_standard_images_with_their_extension(tmp_path, compression):
    images, labels = images_and_labels()
    store = open_store("disk", tmp_path, compression=compression)
    store.store_many(images, labels)
    path = png_path(store.batch_path, 2, get_codec(compression).suffix)
    with Image.open(path) as picture:
        assert picture.size == (16, 16)
        opened = np.asarray(picture.convert("RGB"))
    np.testing.assert_array_equal(opened, store.read_indices([2])[0][0])


def test_disk_png_level_changes_the_size_not_the_pixels(tmp_path):
    smooth = np.tile(np.arange(64, dtype=np.uint8), (4, 64, 1))[..., None].repeat(3, axis=3)
    sizes = {}
    for level in (0, 9):
        store = open_store("disk", tmp_path / str(level), compression=f"png:{level}")
        store.store_many(smooth, np.zeros(4, dtype=np.int64))
        sizes[level] = png_path(store.batch_path, 0).stat().st_size
        np.testing.assert_array_equal(store.read_many(4)[0], smooth)
    assert sizes[9] < sizes[0] / 2


def test_tar_shards_of_compressed_images_open_with_tarfile_and_name_the_codec(tmp_path):

    images, labels = images_and_labels()
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


def test_zarr_compresses_one_image_per_chunk_with_zarrs_own_codec(tmp_path):


    images, labels = images_and_labels(shape=(16, 16))
    store = open_store("zarr", tmp_path, compression="blosc")
    store.store_many(images, labels)
    array = zarr.open_group(store.batch_path, mode="r")["images"]
    assert array.chunks == (1, 16, 16)
    assert [type(codec).__name__ for codec in array.compressors] == ["BloscCodec", "Crc32cCodec"]
    np.testing.assert_array_equal(array[...], images)


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


@pytest.mark.parametrize("method", ["parquet", "arrow"])
def test_table_stores_name_the_codec_in_the_schema_and_report_a_damaged_value(tmp_path, method):
    import pyarrow as pa
    import pyarrow.parquet as pq

    images, labels = images_and_labels()
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
