"""What one stored value looks like (helpers.stores.values): an explicit little-endian header, raw pixels
or an encoded image that names its codec and length, and damage reported."""

from __future__ import annotations

import numpy as np
import pytest
from stores.samples import assert_same

from helpers.codecs import get_codec, names
from helpers.core.errors import CorruptStoreError
from helpers.stores import values


def test_raw_header_is_explicit_and_little_endian():
    image = np.arange(6, dtype=np.uint16).reshape(2, 3)
    value = values.encode(image, label=-2)
    assert value[:4] == b"ISR1"
    assert len(value) == values.HEADER_SIZE + image.nbytes
    assert value[values.HEADER_SIZE : values.HEADER_SIZE + 4] == bytes([0, 0, 1, 0])
    back, label = values.decode(value, "test")
    assert_same(back, image)
    assert label == -2


def test_a_compressed_value_names_its_codec_and_length_and_refuses_damage():
    image = np.tile(np.arange(16, dtype=np.uint8), (16, 1))  # smooth: compresses
    value = values.encode_value(image, -7, get_codec("zstd:9"))
    assert value[:4] == b"ISC1" and len(value) < values.HEADER_SIZE + image.nbytes
    back, label = values.decode_value(value, "here")
    np.testing.assert_array_equal(back, image)
    assert label == -7
    with pytest.raises(CorruptStoreError, match="here: value is .* bytes, its header promises"):
        values.decode_value(value[:-3], "here")
    damaged = bytearray(value)
    damaged[values.COMPRESSED_HEADER_SIZE + 5] ^= 0xFF
    with pytest.raises(CorruptStoreError, match="here"):
        values.decode_value(bytes(damaged), "here")


def test_the_codec_bytes_of_the_file_format_never_change():
    """Part of the format of every compressed value written: a codec keeps its byte for good."""
    assert {name: get_codec(name).value_code for name in names()} == {
        "png": 1, "zstd": 2, "blosc": 3, "jpeg2000": 4, "jpegls": 5, "webp": 6, "jpeg": 7,
    }
    for name in names():
        assert values.value_codec(get_codec(name).value_code).family == name
    assert values.value_codec(200) is None
