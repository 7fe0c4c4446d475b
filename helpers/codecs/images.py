"""Image codecs: each encodes one image as a file in its own image format, through ``imagecodecs``.

``imagecodecs`` is one well-kept wheel that wraps the reference C libraries (libpng, OpenJPEG, CharLS,
libwebp, libjpeg-turbo), encodes 16-bit greyscale where the format allows it, and works on in-memory
buffers without temporary files. Why each:

- ``png`` (zlib level, default 6 as Pillow and libpng use): the article's codec, 8- and 16-bit.
- ``jpeg2000``: lossless (reversible 5/3 wavelet); what DICOM archives use for 16-bit slices.
- ``jpegls``: lossless JPEG-LS (CharLS), also a DICOM transfer syntax, usually faster than JPEG 2000.
- ``webp`` lossless, ``webp:Q`` lossy with quality Q: 8-bit colour only (greyscale is stored as RGB).
- ``jpeg:Q``: lossy baseline JPEG at quality Q, 8-bit greyscale or RGB; what WebDataset and FFCV users store.
"""

from __future__ import annotations

import imagecodecs
import numpy as np

from helpers.codecs.base import GREY_AND_COLOUR_8BIT, Codec


class PngCodec(Codec):
    family = "png"
    holds = GREY_AND_COLOUR_8BIT
    parameter_range = (0, 9, 6)
    suffix = ".png"
    value_code = 1

    def _encode(self, pixels):
        return imagecodecs.png_encode(pixels, level=self.parameter)

    def _decode(self, data, shape, dtype):
        return imagecodecs.png_decode(data)


class Jpeg2000Codec(Codec):
    family = "jpeg2000"
    holds = GREY_AND_COLOUR_8BIT
    suffix = ".jp2"
    value_code = 4

    def _encode(self, pixels):
        return imagecodecs.jpeg2k_encode(pixels, level=0, reversible=True, numthreads=1)

    def _decode(self, data, shape, dtype):
        return imagecodecs.jpeg2k_decode(data, numthreads=1)


class JpeglsCodec(Codec):
    family = "jpegls"
    holds = {np.dtype(np.uint8): (1, 3, 4), np.dtype(np.uint16): (1,)}
    suffix = ".jls"
    value_code = 5

    def _encode(self, pixels):
        return imagecodecs.jpegls_encode(pixels, level=0)

    def _decode(self, data, shape, dtype):
        return imagecodecs.jpegls_decode(data)


class WebpCodec(Codec):
    """Lossless without a quality, lossy with one; greyscale goes in as RGB and comes out as one channel."""

    family = "webp"
    holds = {np.dtype(np.uint8): (1, 3, 4)}
    parameter_range = (0, 100, None)
    parameter_kind = "quality"
    suffix = ".webp"
    value_code = 6

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
    parameter_kind = "quality"
    suffix = ".jpg"
    value_code = 7

    def _encode(self, pixels):
        return imagecodecs.jpeg8_encode(pixels, level=self.parameter)

    def _decode(self, data, shape, dtype):
        return imagecodecs.jpeg8_decode(data)
