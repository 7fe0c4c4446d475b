"""Raw image bytes with a small explicit header: what one stored value looks like.

Layout (little-endian): magic ``ISR1``, dtype code (1 byte), number of dimensions (1 byte), two bytes
reserved, three uint32 dimensions (unused ones 0), int64 label, then the pixels in C order. Decoding
checks every field, so a damaged or foreign value is reported instead of read as pixels. Nothing here is
pickle: reading a value never runs code.
"""

from __future__ import annotations

import struct

import numpy as np

from helpers.errors import CorruptStoreError

MAGIC = b"ISR1"
HEADER = struct.Struct("<4sBBxx3Iq")
HEADER_SIZE = HEADER.size
DTYPE_CODES = {np.dtype("u1"): 1, np.dtype("<u2"): 2}
CODE_DTYPES = {code: dtype for dtype, code in DTYPE_CODES.items()}


def encode_header(shape: tuple[int, ...], dtype: np.dtype, label: int) -> bytes:
    dims = tuple(shape) + (0,) * (3 - len(shape))
    code = DTYPE_CODES[np.dtype(dtype).newbyteorder("<")]
    return HEADER.pack(MAGIC, code, len(shape), *dims, label)


def decode_header(value: bytes | memoryview, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, label) of one value; CorruptStoreError naming ``where`` if it is not ours."""
    if len(value) < HEADER_SIZE:
        raise CorruptStoreError(f"{where}: value of {len(value)} bytes is shorter than its header")
    magic, code, ndim, d0, d1, d2, label = HEADER.unpack_from(value)
    if magic != MAGIC or code not in CODE_DTYPES or ndim not in (2, 3):
        raise CorruptStoreError(f"{where}: not an image value written by this library (bad header)")
    shape = (d0, d1, d2)[:ndim]
    dtype = CODE_DTYPES[code]
    expected = HEADER_SIZE + int(np.prod(shape)) * dtype.itemsize
    if len(value) != expected:
        raise CorruptStoreError(
            f"{where}: value is {len(value)} bytes, its header promises {expected} (truncated or damaged)"
        )
    return shape, dtype, label


def encode(image: np.ndarray, label: int) -> bytes:
    little = image.astype(image.dtype.newbyteorder("<"), copy=False)
    return encode_header(image.shape, image.dtype, label) + little.tobytes()


def decode(value: bytes | memoryview, where: str) -> tuple[np.ndarray, int]:
    shape, dtype, label = decode_header(value, where)
    pixels = np.frombuffer(value, dtype=dtype, offset=HEADER_SIZE).reshape(shape)
    return pixels.astype(pixels.dtype.newbyteorder("="), copy=True), label
