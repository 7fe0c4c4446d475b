"""Store filters: compressions a store applies inside its own container, which encode no image alone.

HDF5 compresses each chunk of a dataset with a filter that any HDF5 reader applies: ``gzip[:level]``
(deflate, level 0 to 9, h5py's default 4) and ``lzf`` (no level), both built into h5py. They are codecs of
the registry so that every name a store's ``compressions`` offers has one meaning and one level range
(``is_lossy("gzip")`` answers; ``"gzip:10"`` is refused with the range), but they are ``standalone =
False``: asked to encode or decode an image by itself, as a value, a tar member or a file, they refuse with
an UnknownCodecError naming the codecs that can. (HDF5's and zarr's ``zstd`` and ``blosc`` filters are the
byte compressors of ``helpers.codecs.compressors`` under the same names and levels.)
"""

from __future__ import annotations

import numpy as np

from helpers.codecs.base import Codec
from helpers.core.errors import UnknownCodecError


def not_standalone(codec: Codec) -> UnknownCodecError:
    """The error for a store filter asked to encode or decode an image on its own."""
    return UnknownCodecError(
        f"{codec.name!r} is a filter a store applies inside its own files (HDF5's); it encodes no image on "
        f"its own: an image codec does that (helpers.codecs.names())"
    )


class StoreFilter(Codec):
    """A compression only a store's container applies (holds any image, loses nothing)."""

    standalone = False

    def encode(self, image: np.ndarray) -> bytes:
        raise not_standalone(self)

    def decode(self, data, shape, dtype, where):
        raise not_standalone(self)

    def decode_many(self, payloads, shape, dtype):
        raise not_standalone(self)

    def _encode(self, pixels):
        raise not_standalone(self)

    def _decode(self, data, shape, dtype):
        raise not_standalone(self)


class GzipFilter(StoreFilter):
    family = "gzip"
    parameter_range = (0, 9, 4)


class LzfFilter(StoreFilter):
    family = "lzf"
