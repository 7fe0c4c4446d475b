"""The one registry of codecs by name, and the one place a ``compression=`` name is parsed.

A name is a codec family with an optional level or quality after a colon: ``"png"``, ``"zstd:9"``,
``"jpeg:90"``, ``"gzip"``. ``parse`` turns it into a ``Compression`` once; stores keep that value and never
split the string again. Adding a codec: one module with a ``Codec`` subclass, and one line in ``CODECS``
(or ``register`` at run time).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from helpers.codecs.base import Codec
from helpers.codecs.compressors import BloscCodec, ZstdCodec
from helpers.codecs.filters import GzipFilter, LzfFilter, not_standalone
from helpers.codecs.images import Jpeg2000Codec, JpegCodec, JpeglsCodec, PngCodec, WebpCodec
from helpers.core.errors import ImageFormatError, UnknownCodecError

#: family -> codec class, in the order the report lists them: the codecs that encode one image alone first.
CODECS: dict[str, type[Codec]] = {
    codec.family: codec
    for codec in (
        PngCodec, ZstdCodec, BloscCodec, Jpeg2000Codec, JpeglsCodec, WebpCodec, JpegCodec,
        GzipFilter, LzfFilter,
    )
}


def register(codec: type[Codec]) -> type[Codec]:
    """Add a codec class under its ``family`` (usable as a class decorator); returns the class."""
    if codec.value_code is not None and any(
        other.value_code == codec.value_code for other in CODECS.values() if other.family != codec.family
    ):
        raise ValueError(f"value code {codec.value_code} of {codec.family!r} names another codec already")
    CODECS[codec.family] = codec
    parse_normalised.cache_clear()
    return codec


def names() -> list[str]:
    """The codecs that encode one image on their own, each usable alone or with ``:<level or quality>``."""
    return [family for family, codec in CODECS.items() if codec.standalone]


def filter_names() -> list[str]:
    """The codecs only a store applies inside its own files (``Codec.standalone`` False): HDF5's gzip, lzf."""
    return [family for family, codec in CODECS.items() if not codec.standalone]


def split_name(name: str) -> tuple[str, str]:
    """(family, the parameter's text) of a codec name, trimmed and lower-cased: the one place the name's
    syntax is known; no checks."""
    codec_family, _, parameter_text = name.strip().lower().partition(":")
    return codec_family, parameter_text


def family(name: str) -> str:
    """The family a codec name starts with (``"zstd"`` for ``"ZSTD:9"``), known or not; no checks."""
    return split_name(name)[0]


@dataclass(frozen=True)
class Compression:
    """A ``compression=`` name parsed once: what a store keeps beside the string it records.

    ``spec`` is the name as given, trimmed and lower-cased (``"zstd"``): a store's ``compression``.
    ``codec`` is the codec it names, its parameter filled in (``name`` ``"zstd:3"``). It pickles as its
    ``spec``, so that it crosses to worker processes whatever its codec holds.
    """

    spec: str
    codec: Codec

    @property
    def family(self) -> str:
        return self.codec.family

    @property
    def name(self) -> str:
        """The codec's full name, parameter included (``"zstd:3"``, ``"png:6"``, ``"webp"``)."""
        return self.codec.name

    @property
    def parameter(self) -> int | None:
        """The level or quality, the codec's default filled in; None when the codec takes none."""
        return self.codec.parameter

    @property
    def lossy(self) -> bool:
        return self.codec.lossy

    @property
    def standalone(self) -> bool:
        """Whether the codec encodes an image on its own (False: a store filter such as HDF5's gzip)."""
        return self.codec.standalone

    @property
    def image_codec(self) -> Codec:
        """The codec, for encoding images one by one; UnknownCodecError for a store filter."""
        if not self.codec.standalone:
            raise not_standalone(self.codec)
        return self.codec

    def __reduce__(self) -> tuple:
        return parse, (self.spec,)


def parse(name: str | Compression) -> Compression:
    """``name`` parsed (``"png"``, ``"zstd:9"``, ``"jpeg:90"``, ``"gzip"``...); UnknownCodecError naming what
    is wrong: an unknown family, a parameter that is not a number or out of the codec's range."""
    if isinstance(name, Compression):
        return name
    if not isinstance(name, str):
        raise UnknownCodecError(f"a codec is named by a string such as 'zstd:3', got {name!r}")
    return parse_normalised(name.strip().lower())


@functools.lru_cache(maxsize=256)
def parse_normalised(name: str) -> Compression:
    """``parse`` of a name already trimmed and lower-cased; cached, so each name is parsed once a process
    and its codec made once (zstd's keeps its contexts)."""
    codec_family, parameter_text = split_name(name)
    if codec_family not in CODECS:
        raise UnknownCodecError(f"unknown codec {name!r}; known codecs: {', '.join(CODECS)}")
    parameter = None
    if parameter_text:
        try:
            parameter = int(parameter_text)
        except ValueError:
            raise UnknownCodecError(
                f"codec {name!r}: the part after ':' must be a whole number (a level or quality)"
            ) from None
    return Compression(name, CODECS[codec_family](parameter))


def get_codec(name: str | Codec | Compression) -> Codec:
    """The codec called ``name`` (``"png"``, ``"zstd:9"``, ``"jpeg:90"``...); UnknownCodecError otherwise."""
    return name if isinstance(name, Codec) else parse(name).codec


def is_lossy(name: str | Codec | Compression | None) -> bool:
    """Whether images come back changed through this codec (``"jpeg:90"``, ``"webp:80"``); None (no
    compression) and store filters (``"gzip"``) are lossless."""
    return name is not None and get_codec(name).lossy


def same_codec(name: str | None, other: str | None) -> bool:
    """Whether two names mean one codec at one parameter (``"png"`` and ``"png:6"``); None only matches None."""
    if name is None or other is None:
        return name is other
    return parse(name).name == parse(other).name


def holds(name: str | Compression | None, shape: tuple[int, ...], dtype: object) -> bool:
    """Whether the codec can hold images of this shape and dtype (JPEG cannot hold 16 bits; no compression
    and the store filters hold anything)."""
    if name is None:
        return True
    try:
        get_codec(name).check(shape, np.dtype(dtype))
    except ImageFormatError:
        return False
    return True
