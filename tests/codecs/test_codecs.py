"""Every codec by name: exact round trips where lossless, a PSNR floor where lossy, clear refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import codecs
from helpers.core.errors import CorruptStoreError, ImageFormatError, UnknownCodecError

LOSSLESS = ["png", "png:9", "png:0", "zstd", "zstd:19", "blosc", "blosc:9", "jpeg2000", "jpegls", "webp"]
LOSSY = ["jpeg", "jpeg:90", "jpeg:50", "webp:90"]


def photo(shape, dtype=np.uint8, seed=0, noise=0.01) -> np.ndarray:
    """A smooth image with some noise: what image codecs are made for (noise alone does not compress)."""
    rng = np.random.default_rng(seed)
    height, width = shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    top = np.iinfo(dtype).max if dtype == np.uint8 else 4095
    base = (np.sin(x / 5.0) + np.cos(y / 7.0) + 2) / 4 * top
    if len(shape) == 3:
        base = np.stack([base * (c + 1) / shape[2] for c in range(shape[2])], axis=2)
    return np.clip(base + rng.normal(0, top * noise, base.shape), 0, top).astype(dtype)


def shapes_for(codec: codecs.Codec):
    for dtype, shape in [(np.uint8, (32, 32, 3)), (np.uint8, (17, 9)), (np.uint8, (8, 8, 1)),
                         (np.uint8, (6, 5, 2)), (np.uint8, (7, 3, 4)), (np.uint16, (64, 48)),
                         (np.uint16, (9, 4, 1))]:
        try:
            codec.check(shape, dtype)
        except ImageFormatError:
            continue
        yield shape, np.dtype(dtype)


@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_codecs_read_back_exactly_what_they_hold(name):
    codec = codecs.get_codec(name)
    assert not codec.lossy and not codecs.is_lossy(name)
    held = list(shapes_for(codec))
    assert ((32, 32, 3), np.dtype(np.uint8)) in held
    for shape, dtype in held:
        image = photo(shape, dtype)
        back = codec.decode(codec.encode(image), shape, dtype, "test")
        assert back.dtype == dtype and back.shape == shape
        np.testing.assert_array_equal(back, image)


@pytest.mark.parametrize("name", ["png", "zstd", "blosc", "jpeg2000", "jpegls"])
def test_16_bit_scans_compress_losslessly(name):
    codec = codecs.get_codec(name)
    scan = photo((128, 128), np.uint16, seed=3, noise=0.001)
    data = codec.encode(scan)
    assert len(data) < scan.nbytes / 1.1  # 12 bits used of 16: even a byte compressor gains a little
    np.testing.assert_array_equal(codec.decode(data, scan.shape, scan.dtype, "scan"), scan)


@pytest.mark.parametrize("name,floor", [("jpeg:90", 30.0), ("jpeg:50", 25.0), ("webp:90", 30.0)])
def test_lossy_codecs_stay_above_a_psnr_floor_and_say_they_are_lossy(name, floor):
    assert codecs.is_lossy(name)
    codec = codecs.get_codec(name)
    image = photo((64, 64, 3))
    back = codec.decode(codec.encode(image), image.shape, image.dtype, "test")
    quality = codecs.psnr(image, back)
    assert floor < quality < math.inf
    assert len(codec.encode(image)) < image.nbytes / 2


def test_higher_quality_means_more_bytes_and_a_higher_psnr():
    image = photo((64, 64, 3), seed=5)
    low, high = codecs.get_codec("jpeg:30"), codecs.get_codec("jpeg:95")
    assert len(low.encode(image)) < len(high.encode(image))
    assert codecs.psnr(image, low.decode(low.encode(image), image.shape, image.dtype, "")) < codecs.psnr(
        image, high.decode(high.encode(image), image.shape, image.dtype, "")
    )


def test_names_and_defaults_are_explicit():
    assert codecs.names() == ["png", "zstd", "blosc", "jpeg2000", "jpegls", "webp", "jpeg"]
    assert codecs.get_codec("png").name == "png:6"
    assert codecs.get_codec("ZSTD").name == "zstd:3"
    assert codecs.get_codec("jpeg").name == "jpeg:90"
    assert codecs.get_codec("webp").name == "webp" and codecs.get_codec("webp:80").name == "webp:80"
    assert codecs.get_codec(codecs.get_codec("blosc")).name == "blosc:5"


@pytest.mark.parametrize("name,message", [
    ("gif", "unknown codec 'gif'; known codecs: png, zstd"),
    ("png:x", "whole number"),
    ("png:10", "from 0 to 9"),
    ("jpeg:0", "from 1 to 100"),
    ("jpeg2000:5", "takes no level"),
    (3, "named by a string"),
])
def test_unknown_codecs_and_parameters_are_refused_by_name(name, message):
    with pytest.raises(UnknownCodecError, match=message):
        codecs.get_codec(name)


@pytest.mark.parametrize("name,shape,dtype,message", [
    ("jpeg:90", (8, 8), np.uint16, "cannot hold uint16"),
    ("webp", (8, 8, 2), np.uint8, "2 channel"),
    ("jpeg2000", (8, 8, 3), np.uint16, "cannot hold uint16"),
])
def test_images_a_codec_cannot_hold_are_refused_before_encoding(name, shape, dtype, message):
    with pytest.raises(ImageFormatError, match=message):
        codecs.get_codec(name).check(shape, dtype)


@pytest.mark.parametrize("name", LOSSLESS + LOSSY)
def test_damaged_or_foreign_values_are_reported_not_decoded(name):
    codec = codecs.get_codec(name)
    image = photo((16, 16, 3))
    data = codec.encode(image)
    with pytest.raises(CorruptStoreError, match="where-it-was"):
        codec.decode(data[: len(data) // 3], image.shape, image.dtype, "where-it-was")
    with pytest.raises(CorruptStoreError, match="where-it-was"):
        codec.decode(data, (20, 16, 3), image.dtype, "where-it-was")


def test_psnr_is_infinite_for_identical_images_and_refuses_other_shapes():
    image = photo((8, 8))
    assert codecs.psnr(image, image) == math.inf
    noisy = image.copy()
    noisy[0, 0] ^= 1
    assert 40 < codecs.psnr(image, noisy) < math.inf
    with pytest.raises(ImageFormatError):
        codecs.psnr(image, image[:4])
