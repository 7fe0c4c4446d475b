"""Byte compressors: codecs that know nothing of images and compress the pixels' bytes in C order.

- ``zstd`` (level, default 3): a general-purpose byte compressor, fast to decode. One image through
  ``zstandard``, which keeps one context per thread (imagecodecs makes a new one per call: 10 us per CIFAR
  image here against 2.5 us); many at once (``decode_many``) as concatenated frames in one imagecodecs call,
  about as fast as zstd can decompress.
- ``blosc`` (level, default 5): Blosc2 with zstd after a bit-shuffle, which groups the bits of neighbouring
  16-bit values, so the rarely used high bits of a 12-bit scan compress to almost nothing.

Both names mean the same in every store: these values, a Blosc chunk per image, and the HDF5 and zarr
filters of the same name (which take their levels from here).
"""

from __future__ import annotations

import threading

import imagecodecs
import numpy as np
import zstandard

from helpers.codecs.base import Codec

#: What "blosc" means in every store that takes it (these values, a Blosc chunk per image, and the HDF5
#: filter and zarr's BloscCodec): this compressor after a bit-shuffle, levels (smallest, largest, default).
BLOSC_COMPRESSOR = "zstd"
BLOSC_LEVELS = (0, 9, 5)


class ZstdCodec(Codec):
    family = "zstd"
    parameter_range = (1, 22, 3)
    suffix = ".zst"
    value_code = 2

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


class BloscCodec(Codec):
    family = "blosc"
    parameter_range = BLOSC_LEVELS
    suffix = ".blosc"
    value_code = 3

    def _encode(self, pixels):
        return imagecodecs.blosc2_encode(
            pixels.tobytes(), level=self.parameter, compressor=BLOSC_COMPRESSOR,
            shuffle=imagecodecs.BLOSC2.FILTER.BITSHUFFLE, typesize=pixels.dtype.itemsize, numthreads=1,
        )

    def _decode(self, data, shape, dtype):
        return np.frombuffer(imagecodecs.blosc2_decode(data, numthreads=1), dtype=dtype)
