"""Image codecs by name, with an optional level or quality: ``"png"``, ``"png:9"``, ``"zstd:3"``, ``"blosc"``,
``"jpeg2000"``, ``"jpegls"``, ``"webp"`` (lossless), and the lossy ``"jpeg:90"`` and ``"webp:90"``.

Each codec turns one image into bytes and back. The stores record which codec wrote their values, so a
reader is never told. Every codec here but zstd comes from ``imagecodecs``: one well-kept wheel that wraps the
reference C libraries (libpng, zstd, c-blosc2, OpenJPEG, CharLS, libwebp, libjpeg-turbo), encodes 16-bit
greyscale where the format allows it, and works on in-memory buffers without temporary files. Why each:

- ``png`` (zlib level, default 6 as Pillow and libpng use): the article's codec, 8- and 16-bit.
- ``zstd`` (level, default 3): a general-purpose byte compressor, fast to decode; knows nothing of images.
  One image through ``zstandard``, which keeps one context per thread (imagecodecs makes a new one per
  call: 10 us per CIFAR image here against 2.5 us); many at once (``decode_many``) as concatenated frames
  in one imagecodecs call, about as fast as zstd can decompress.
- ``blosc`` (level, default 5): Blosc2 with zstd after a bit-shuffle, which groups the bits of neighbouring
  16-bit values, so the rarely used high bits of a 12-bit scan compress to almost nothing.
- ``jpeg2000``: lossless (reversible 5/3 wavelet); what DICOM archives use for 16-bit slices.
- ``jpegls``: lossless JPEG-LS (CharLS), also a DICOM transfer syntax, usually faster than JPEG 2000.
- ``webp`` lossless, ``webp:Q`` lossy with quality Q: 8-bit colour only (greyscale is stored as RGB).
- ``jpeg:Q``: lossy baseline JPEG at quality Q, 8-bit greyscale or RGB; what WebDataset and FFCV users store.

Lossy codecs do not read back exactly; ``psnr`` measures how far they are.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from typing import ClassVar

import imagecodecs
import numpy as np
import zstandard

from helpers.core.errors import CorruptStoreError, ImageFormatError, UnknownCodecError

GREY_AND_COLOUR_8BIT = {np.dtype(np.uint8): (1, 2, 3, 4), np.dtype(np.uint16): (1,)}


class Codec(ABC):
    """One image codec with its parameter (a level or a quality) fixed."""

    family: ClassVar[str]
    lossy: ClassVar[bool] = False
    #: dtype -> numbers of channels this codec can hold ((h, w) counts as one); None: any image.
    holds: ClassVar[dict[np.dtype, tuple[int, ...]] | None] = None
    #: (smallest, largest, default) parameter, or None when the codec takes none.
    parameter_range: ClassVar[tuple[int, int, int | None] | None] = None

    def __init__(self, parameter: int | None = None) -> None:
        if parameter is not None and self.parameter_range is None:
            raise UnknownCodecError(f"codec {self.family!r} takes no level or quality; use {self.family!r}")
        if self.parameter_range is not None:
            low, high, default = self.parameter_range
            parameter = default if parameter is None else parameter
            if parameter is not None and not low <= parameter <= high:
                raise UnknownCodecError(
                    f"codec {self.family}:{parameter}: the level or quality must be from {low} to {high}"
                )
        self.parameter = parameter

    @property
    def name(self) -> str:
        """The codec's full name, parameter included, e.g. ``"zstd:3"``: what a store records."""
        return self.family if self.parameter is None else f"{self.family}:{self.parameter}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def check(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        """ImageFormatError unless images of this shape and dtype can be held by this codec."""
        if self.holds is None:
            return
        dtype = np.dtype(dtype)
        channels = shape[2] if len(shape) == 3 else 1
        allowed = self.holds.get(dtype, ())
        if channels not in allowed:
            what = ", ".join(f"{d.name} with {c} channel(s)" for d, c in self.holds.items())
            raise ImageFormatError(
                f"codec {self.name!r} cannot hold {dtype.name} images with {channels} channel(s) "
                f"(shape {tuple(shape)}); it holds {what}"
            )

    def encode(self, image: np.ndarray) -> bytes:
        """One image as bytes (check() first: an image the codec cannot hold fails here)."""
        pixels = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
        return bytes(self._encode(np.ascontiguousarray(pixels)))

    def decode(self, data: bytes | memoryview, shape: tuple[int, ...], dtype: np.dtype, where: str) -> np.ndarray:
        """The image of ``shape`` and ``dtype`` encoded in ``data``; CorruptStoreError naming ``where``."""
        dtype = np.dtype(dtype)
        try:
            pixels = np.asarray(self._decode(data, shape, dtype))
        except Exception as error:  # each C library has its own exception type for damaged data
            raise CorruptStoreError(f"{where}: cannot decode a {self.name} value ({error})") from None
        if pixels.dtype != dtype or pixels.size != math.prod(shape):
            raise CorruptStoreError(
                f"{where}: the {self.name} value holds {pixels.dtype.name} pixels of shape {pixels.shape}, "
                f"expected {dtype.name} {tuple(shape)}"
            )
        return pixels.reshape(shape)

    def decode_many(
        self, payloads: list[bytes | memoryview], shape: tuple[int, ...], dtype: np.dtype
    ) -> np.ndarray:
        """Many encoded images of one ``shape`` and ``dtype`` as one array (n, *shape); an exception from
        the codec library, or ValueError, if one is damaged (the caller then finds which with ``decode``).

        One ``_decode`` per image here; codecs that can decode a whole list in one call override it.
        """
        images = np.empty((len(payloads), *shape), dtype=dtype)
        for position, payload in enumerate(payloads):
            images[position] = np.asarray(self._decode(payload, shape, dtype)).reshape(shape)
        return images

    @abstractmethod
    def _encode(self, pixels: np.ndarray) -> bytes | bytearray: ...

    @abstractmethod
    def _decode(self, data: bytes | memoryview, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray: ...


class PngCodec(Codec):
    family = "png"
    holds = GREY_AND_COLOUR_8BIT
    parameter_range = (0, 9, 6)

    def _encode(self, pixels):
        return imagecodecs.png_encode(pixels, level=self.parameter)

    def _decode(self, data, shape, dtype):
        return imagecodecs.png_decode(data)


class ZstdCodec(Codec):
    family = "zstd"
    parameter_range = (1, 22, 3)

    def __init__(self, parameter: int | None = None) -> None:
        super().__init__(parameter)
        self._contexts = threading.local()  # zstandard's contexts may not be shared between threads

    def _context(self, kind: str) -> zstandard.ZstdCompressor | zstandard.ZstdDecompressor:
        context = getattr(self._contexts, kind, None)
        if context is None:
            context = zstandard.ZstdCompressor(level=self.parameter) if kind == "compressor" else (
                zstandard.ZstdDecompressor()
            )
            setattr(self._contexts, kind, context)
        return context

    def _encode(self, pixels):
        return self._context("compressor").compress(pixels.data)

    def _decode(self, data, shape, dtype):
        return np.frombuffer(self._context("decompressor").decompress(data), dtype=dtype)

    def decode_many(self, payloads, shape, dtype):
        # zstd decodes concatenated frames into one buffer in a single call (ZSTD_decompress, which
        # imagecodecs calls): no Python step per image, so a mini-batch costs what decompression costs.
        images = np.empty((len(payloads), *shape), dtype=dtype)
        out = memoryview(images.reshape(-1).view(np.uint8))
        decoded = imagecodecs.zstd_decode(b"".join(payloads), out=out)
        if len(decoded) != images.nbytes:
            raise ValueError(f"the frames hold {len(decoded)} bytes, {images.nbytes} expected")
        return images


#: What "blosc" means in every store that takes it (these values, a Blosc chunk per image, and the HDF5
#: filter and zarr's BloscCodec): this compressor after a bit-shuffle, levels (smallest, largest, default).
BLOSC_COMPRESSOR = "zstd"
BLOSC_LEVELS = (0, 9, 5)


class BloscCodec(Codec):
    family = "blosc"
    parameter_range = BLOSC_LEVELS

    def _encode(self, pixels):
        return imagecodecs.blosc2_encode(
            pixels.tobytes(), level=self.parameter, compressor=BLOSC_COMPRESSOR,
            shuffle=imagecodecs.BLOSC2.FILTER.BITSHUFFLE, typesize=pixels.dtype.itemsize, numthreads=1,
        )

    def _decode(self, data, shape, dtype):
        return np.frombuffer(imagecodecs.blosc2_decode(data, numthreads=1), dtype=dtype)


class Jpeg2000Codec(Codec):
    family = "jpeg2000"
    holds = GREY_AND_COLOUR_8BIT

    def _encode(self, pixels):
        return imagecodecs.jpeg2k_encode(pixels, level=0, reversible=True, numthreads=1)

    def _decode(self, data, shape, dtype):
        return imagecodecs.jpeg2k_decode(data, numthreads=1)


class JpeglsCodec(Codec):
    family = "jpegls"
    holds = {np.dtype(np.uint8): (1, 3, 4), np.dtype(np.uint16): (1,)}

    def _encode(self, pixels):
        return imagecodecs.jpegls_encode(pixels, level=0)

    def _decode(self, data, shape, dtype):
        return imagecodecs.jpegls_decode(data)


class WebpCodec(Codec):
    """Lossless without a quality, lossy with one; greyscale goes in as RGB and comes out as one channel."""

    family = "webp"
    holds = {np.dtype(np.uint8): (1, 3, 4)}
    parameter_range = (0, 100, None)

    @property
    def lossy(self) -> bool:  # type: ignore[override]
        return self.parameter is not None

    def _encode(self, pixels):
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        if self.parameter is None:
            return imagecodecs.webp_encode(pixels, lossless=True, level=100, method=4)
        return imagecodecs.webp_encode(pixels, level=self.parameter, lossless=False)

    def _decode(self, data, shape, dtype):
        pixels = imagecodecs.webp_decode(data)
        channels = shape[2] if len(shape) == 3 else 1
        return pixels[:, :, 0] if channels == 1 and pixels.ndim == 3 else pixels


class JpegCodec(Codec):
    family = "jpeg"
    lossy = True
    holds = {np.dtype(np.uint8): (1, 3)}
    parameter_range = (1, 100, 90)

    def _encode(self, pixels):
        return imagecodecs.jpeg8_encode(pixels, level=self.parameter)

    def _decode(self, data, shape, dtype):
        return imagecodecs.jpeg8_decode(data)


CODECS: dict[str, type[Codec]] = {
    codec.family: codec
    for codec in (PngCodec, ZstdCodec, BloscCodec, Jpeg2000Codec, JpeglsCodec, WebpCodec, JpegCodec)
}


def names() -> list[str]:
    """The codec families, each usable as a name alone or with ``:<level or quality>``."""
    return list(CODECS)


def get_codec(name: str | Codec) -> Codec:
    """The codec called ``name`` (``"png"``, ``"zstd:9"``, ``"jpeg:90"``...); UnknownCodecError otherwise."""
    if isinstance(name, Codec):
        return name
    if not isinstance(name, str):
        raise UnknownCodecError(f"a codec is named by a string such as 'zstd:3', got {name!r}")
    family, _, parameter_text = name.strip().lower().partition(":")
    if family not in CODECS:
        raise UnknownCodecError(f"unknown codec {name!r}; known codecs: {', '.join(CODECS)}")
    parameter = None
    if parameter_text:
        try:
            parameter = int(parameter_text)
        except ValueError:
            raise UnknownCodecError(
                f"codec {name!r}: the part after ':' must be a whole number (a level or quality)"
            ) from None
    return CODECS[family](parameter)


def is_lossy(name: str | Codec) -> bool:
    """Whether images come back changed through this codec (``"jpeg:90"``, ``"webp:80"``)."""
    return get_codec(name).lossy


def psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over the dtype's full range; ``inf`` when identical."""
    if original.shape != decoded.shape:
        raise ImageFormatError(f"cannot compare images of shapes {original.shape} and {decoded.shape}")
    error = np.mean((original.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    if error == 0:
        return math.inf
    peak = float(np.iinfo(original.dtype).max)
    return float(10 * math.log10(peak * peak / error))
