"""The one registry (helpers.codecs.registry): every name a store offers is a codec, parsed once into a
Compression; store filters answer every question but refuse to encode an image alone."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from helpers import codecs
from helpers.core.errors import UnknownCodecError
from helpers.stores import names as methods
from helpers.stores import store_class


def test_every_name_a_store_offers_is_a_codec_of_the_registry():
    offered = {name for method in methods() for name in store_class(method).compressions}
    assert offered <= set(codecs.CODECS)
    assert set(codecs.names()) | set(codecs.filter_names()) == set(codecs.CODECS)
    assert codecs.filter_names() == ["gzip", "lzf"]


@pytest.mark.parametrize("name,lossy", [("gzip", False), ("gzip:9", False), ("lzf", False), ("png", False),
                                        ("webp", False), ("webp:80", True), ("jpeg", True), (None, False)])
def test_is_lossy_answers_for_every_name_a_store_offers(name, lossy):
    assert codecs.is_lossy(name) is lossy


def test_a_name_is_parsed_once_into_a_compression():
    compression = codecs.parse(" ZSTD ")
    described = (compression.spec, compression.family, compression.name, compression.parameter)
    assert described == ("zstd", "zstd", "zstd:3", 3)
    assert not compression.lossy and compression.standalone
    assert compression.codec is codecs.get_codec("zstd") is compression.image_codec
    assert codecs.parse(compression) is compression
    assert pickle.loads(pickle.dumps(compression)) == compression  # as its name: codecs hold thread state
    jpeg = codecs.parse("jpeg:75")
    assert (jpeg.family, jpeg.parameter, jpeg.lossy) == ("jpeg", 75, True)


def test_store_filters_keep_their_levels_and_refuse_to_encode_an_image_alone():
    gzip = codecs.parse("gzip")
    assert (gzip.name, gzip.parameter, gzip.standalone, gzip.lossy) == ("gzip:4", 4, False, False)
    assert codecs.parse("lzf").parameter is None
    with pytest.raises(UnknownCodecError, match="the gzip level must be from 0 to 9"):
        codecs.parse("gzip:10")
    with pytest.raises(UnknownCodecError, match="lzf takes no level"):
        codecs.parse("lzf:1")
    with pytest.raises(UnknownCodecError, match="filter a store applies inside its own files"):
        gzip.image_codec  # noqa: B018 -- the refusal is the point
    with pytest.raises(UnknownCodecError, match="encodes no image on its own"):
        gzip.codec.encode(np.zeros((2, 2), np.uint8))
    with pytest.raises(UnknownCodecError, match="encodes no image on its own"):
        gzip.codec.decode(b"", (2, 2), np.uint8, "here")
    assert codecs.holds("gzip", (4, 4), np.uint16)  # a filter holds any image


def test_questions_the_report_asks_of_a_name():
    assert codecs.family("Jpeg:90") == "jpeg" and codecs.family("lz77") == "lz77"
    assert codecs.same_codec("png", "png:6") and not codecs.same_codec("png", "png:9")
    assert codecs.same_codec(None, None) and not codecs.same_codec("zstd", None)
    assert not codecs.holds("jpeg", (8, 8), np.uint16) and codecs.holds("png", (8, 8), np.uint16)
    assert codecs.holds(None, (8, 8, 2), np.uint8)


def test_a_codec_registered_at_run_time_is_found_by_name(monkeypatch):
    monkeypatch.setattr(codecs.registry, "CODECS", dict(codecs.CODECS))

    class ReversedBytes(codecs.Codec):
        family = "reversed"
        suffix = ".rev"

        def _encode(self, pixels):
            return pixels.tobytes()[::-1]

        def _decode(self, data, shape, dtype):
            return np.frombuffer(bytes(data)[::-1], dtype=dtype)

    codecs.register(ReversedBytes)
    try:
        image = np.arange(12, dtype=np.uint8).reshape(3, 4)
        codec = codecs.get_codec("reversed")
        np.testing.assert_array_equal(codec.decode(codec.encode(image), image.shape, image.dtype, "here"), image)
        assert "reversed" in codecs.registry.names() and not codecs.is_lossy("reversed")
    finally:
        codecs.registry.parse_normalised.cache_clear()
    with pytest.raises(ValueError, match="names another codec"):
        codecs.register(type("Clash", (ReversedBytes,), {"family": "clash", "value_code": 1}))
