"""Codecs by name, one registry: every name a store's ``compressions`` offers means one codec here.

Names are a family with an optional level or quality: ``"png"``, ``"png:9"``, ``"zstd:3"``, ``"blosc"``,
``"jpeg2000"``, ``"jpegls"``, ``"webp"`` (lossless), the lossy ``"jpeg:90"`` and ``"webp:90"``, and HDF5's own
filters ``"gzip[:level]"`` and ``"lzf"``. ``parse`` turns a name into a ``Compression`` once (family, the
parameter with its default, lossy or not, the codec); ``get_codec`` gives the codec itself, which turns one
image into bytes and back. The stores record which codec wrote their values, so a reader is never told.

- ``base``: what a codec is (``Codec``), and ``psnr`` for what a lossy one costs;
- ``images``: image formats through ``imagecodecs`` (PNG, JPEG 2000, JPEG-LS, WebP, JPEG);
- ``compressors``: byte compressors of the pixels (zstd, Blosc), also the HDF5 and zarr filters of those names;
- ``filters``: compressions only a store applies inside its own files (HDF5's gzip and lzf), which refuse
  to encode an image alone (``Codec.standalone`` False);
- ``registry``: ``CODECS``, ``register``, ``parse`` and the questions asked of a name (``is_lossy``,
  ``same_codec``, ``holds``, ``family``).

Lossy codecs do not read back exactly; ``psnr`` measures how far they are.
"""

from helpers.codecs.base import Codec, psnr
from helpers.codecs.compressors import BLOSC_COMPRESSOR, BLOSC_LEVELS
from helpers.codecs.registry import (
    CODECS,
    Compression,
    family,
    filter_names,
    get_codec,
    holds,
    is_lossy,
    names,
    parse,
    register,
    same_codec,
)

__all__ = [
    "BLOSC_COMPRESSOR", "BLOSC_LEVELS", "CODECS", "Codec", "Compression", "family", "filter_names", "get_codec",
    "holds", "is_lossy", "names", "parse", "psnr", "register", "same_codec",
]
