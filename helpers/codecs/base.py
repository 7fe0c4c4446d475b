"""What every codec is: a name with an optional level or quality, which images it can hold, encode and decode.

A codec turns one image into bytes and back (``encode``, ``decode``, ``decode_many``). Its class says what
it is once, as class attributes read by the registry, the stores and the report: ``family`` (its name),
``lossy``, ``holds`` (which dtypes and channels), ``parameter_range`` (its level or quality, with the
default), ``suffix`` (the extension of a file holding one encoded image), ``value_code`` (the byte naming it
inside a stored value) and ``standalone`` (False for a filter that works only inside a store's own
container, such as HDF5's gzip; see ``helpers.codecs.filters``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

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
    #: What the parameter is called in messages: a compression "level" or a "quality".
    parameter_kind: ClassVar[str] = "level"
    #: Whether the codec encodes one image on its own (False: a filter inside a store's own container).
    standalone: ClassVar[bool] = True
    #: The extension of a file (or tar member) that holds one image encoded by this codec.
    suffix: ClassVar[str] = ""
    #: The byte naming this codec in a compressed value (``helpers.stores.values``); part of that file
    #: format, so a code is never given to another codec. None for a codec no value holds.
    value_code: ClassVar[int | None] = None

    def __init__(self, parameter: int | None = None) -> None:
        if parameter is not None and self.parameter_range is None:
            raise UnknownCodecError(
                f"codec '{self.family}:{parameter}': {self.family} takes no level or quality; use {self.family!r}"
            )
        if self.parameter_range is not None:
            low, high, default = self.parameter_range
            parameter = default if parameter is None else parameter
            if parameter is not None and not low <= parameter <= high:
                raise UnknownCodecError(
                    f"codec '{self.family}:{parameter}': the {self.family} {self.parameter_kind} must be from "
                    f"{low} to {high}"
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


def psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over the dtype's full range; ``inf`` when identical."""
    if original.shape != decoded.shape:
        raise ImageFormatError(f"cannot compare images of shapes {original.shape} and {decoded.shape}")
    error = np.mean((original.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    if error == 0:
        return math.inf
    peak = float(np.iinfo(original.dtype).max)
    return float(10 * math.log10(peak * peak / error))
