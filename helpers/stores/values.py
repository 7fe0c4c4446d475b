"""What one stored value looks like: raw image bytes, or an encoded image, behind a small explicit header.

Raw layout (little-endian): magic ``ISR1``, dtype code (1 byte), number of dimensions (1 byte), two bytes
reserved, three uint32 dimensions (unused ones 0), int64 label, then the pixels in C order. Decoding
checks every field, so a damaged or foreign value is reported instead of read as pixels. Nothing here is
pickle: reading a value never runs code. A compressed value (``ISC1``, below) has the same fields plus the
codec that encoded the pixels and the encoded length; ``decode_value`` reads either. ``EncodedImages`` is a
chunk whose images other processes encoded already, for the stores that keep one encoded value per image.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

import numpy as np

from helpers.codecs import CODECS, Codec, get_codec
from helpers.core.errors import CorruptStoreError, ImageFormatError

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


# -- compressed values ------------------------------------------------------------------------------
# Layout (little-endian): magic ``ISC1``, dtype code (1 byte), number of dimensions (1 byte), codec code
# (1 byte, the codec's ``value_code``), one byte reserved, three uint32 dimensions, int64 label, uint32
# length of the encoded image that follows. The codec is named in every value, so a value decodes without
# its batch; the length catches a truncated value before the codec library sees it.
COMPRESSED_MAGIC = b"ISC1"
COMPRESSED_HEADER = struct.Struct("<4sBBBx3IqI")
COMPRESSED_HEADER_SIZE = COMPRESSED_HEADER.size


def compressed_header(shape: tuple[int, ...], dtype: np.dtype, image_codec: Codec, label: int, length: int) -> bytes:
    dims = tuple(shape) + (0,) * (3 - len(shape))
    code = DTYPE_CODES[np.dtype(dtype).newbyteorder("<")]
    return COMPRESSED_HEADER.pack(COMPRESSED_MAGIC, code, len(shape), image_codec.value_code, *dims, label, length)


def encode_compressed(image: np.ndarray, label: int, image_codec: Codec) -> bytes:
    """One image as a compressed value: the header above, then ``image_codec``'s bytes."""
    return compressed_value(image_codec.encode(image), image.shape, image.dtype, image_codec, label)


def compressed_value(payload: bytes, shape: tuple[int, ...], dtype: np.dtype, image_codec: Codec, label: int) -> bytes:
    """An image encoded already (``payload``) as a compressed value: the header above, then the payload."""
    return compressed_header(shape, dtype, image_codec, label, len(payload)) + payload


class EncodedImages:
    """A chunk of images already encoded by one codec, one payload each, with the shape and dtype they
    decode to. ``helpers.convert``'s workers hand these to a single writer, so that encoding, the costly
    part of a compressed write, runs on every worker while one process writes. Stores whose values are
    encoded one image at a time (``Store.encodes_each_image``) take them in ``store_chunks``."""

    def __init__(self, payloads: Sequence[bytes], codec_name: str, image_shape: tuple[int, ...], dtype: object) -> None:
        self.payloads = list(payloads)
        self.codec_name = codec_name
        self.image_shape, self.dtype = tuple(image_shape), np.dtype(dtype)

    @classmethod
    def encode(cls, images: np.ndarray, image_codec: Codec) -> "EncodedImages":
        return cls(image_payloads(images, image_codec), image_codec.name, images.shape[1:], images.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.payloads), *self.image_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.image_shape)

    def __len__(self) -> int:
        return len(self.payloads)

    @classmethod
    def join(cls, runs: Sequence["EncodedImages"]) -> "EncodedImages":
        """Consecutive runs of one codec, shape and dtype as one."""
        first = runs[0]
        return cls([payload for run in runs for payload in run.payloads], first.codec_name, first.image_shape,
                   first.dtype)

    def __getitem__(self, part: slice) -> "EncodedImages":
        if not isinstance(part, slice):
            raise TypeError("EncodedImages are cut by slices only")
        return EncodedImages(self.payloads[part], self.codec_name, self.image_shape, self.dtype)


def image_payloads(images: "np.ndarray | EncodedImages", image_codec: Codec) -> list[bytes]:
    """Each image's bytes encoded by ``image_codec``; a chunk the workers encoded already is taken as it is."""
    if isinstance(images, EncodedImages):
        if images.codec_name != image_codec.name:
            raise ImageFormatError(
                f"a chunk encoded with {images.codec_name!r} was given to a store that encodes with {image_codec.name!r}"
            )
        return images.payloads
    return [image_codec.encode(image) for image in images]


def decode_compressed(value: bytes | memoryview, where: str) -> tuple[np.ndarray, int]:
    """(image, label) of a compressed value; CorruptStoreError naming ``where`` if it is damaged."""
    if len(value) < COMPRESSED_HEADER_SIZE:
        raise CorruptStoreError(f"{where}: value of {len(value)} bytes is shorter than its header")
    magic, code, ndim, codec_code, d0, d1, d2, label, length = COMPRESSED_HEADER.unpack_from(value)
    image_codec = value_codec(codec_code)
    if magic != COMPRESSED_MAGIC or code not in CODE_DTYPES or ndim not in (2, 3) or image_codec is None:
        raise CorruptStoreError(f"{where}: not a compressed image value written by this library (bad header)")
    if len(value) != COMPRESSED_HEADER_SIZE + length:
        raise CorruptStoreError(
            f"{where}: value is {len(value)} bytes, its header promises {COMPRESSED_HEADER_SIZE + length} "
            f"(truncated or damaged)"
        )
    payload = memoryview(value)[COMPRESSED_HEADER_SIZE:]
    image = image_codec.decode(payload, (d0, d1, d2)[:ndim], CODE_DTYPES[code], where)
    return image.astype(image.dtype.newbyteorder("="), copy=False), label


def value_codec(codec_code: int) -> Codec | None:
    """The codec whose ``value_code`` this is, at its default level (decoding does not depend on the level
    that encoded); None if no registered codec has it."""
    for family, codec in CODECS.items():
        if codec.value_code == codec_code:
            return get_codec(family)
    return None


def encode_value(image: np.ndarray, label: int, image_codec: Codec | None) -> bytes:
    """One stored value: raw pixels (``image_codec`` None) or compressed."""
    return encode(image, label) if image_codec is None else encode_compressed(image, label, image_codec)


def decode_value(value: bytes | memoryview, where: str) -> tuple[np.ndarray, int]:
    """(image, label) of any value this module writes, raw or compressed: the magic says which."""
    if bytes(value[:4]) == COMPRESSED_MAGIC:
        return decode_compressed(value, where)
    return decode(value, where)


#: The fields of a compressed header that every value of one batch shares (all but label and length).
SHARED_FIELDS = 20


def decode_batch_values(
    values: list[bytes | memoryview | None], shape: tuple[int, ...], dtype: np.dtype, image_codec: Codec,
    where: Callable[[int], str],
) -> tuple[np.ndarray, np.ndarray]:
    """Compressed values of one batch (one shape, dtype and codec) decoded into new arrays.

    The hot path of a compressed read, with array operations where it can: every header checked at once
    against the fields the batch's values share and against its value's length, then the codec decodes the
    whole list (``Codec.decode_many``). ``where(i)`` names value i in an error; a missing value is None.
    """
    count = len(values)
    shared = np.frombuffer(compressed_header(shape, dtype, image_codec, 0, 0)[:SHARED_FIELDS], np.uint8)
    if any(value is None for value in values):
        missing = next(position for position, value in enumerate(values) if value is None)
        raise CorruptStoreError(f"{where(missing)}: the value is missing")
    headers = b"".join([value[:COMPRESSED_HEADER_SIZE] for value in values])
    if len(headers) != count * COMPRESSED_HEADER_SIZE:
        short = next(position for position, value in enumerate(values) if len(value) < COMPRESSED_HEADER_SIZE)
        raise CorruptStoreError(f"{where(short)}: value of {len(values[short])} bytes is shorter than its header")
    fields = np.frombuffer(headers, dtype=np.uint8).reshape(count, COMPRESSED_HEADER_SIZE)
    lengths = fields[:, 28:32].copy().view("<u4").reshape(-1).astype(np.int64) + COMPRESSED_HEADER_SIZE
    sizes = np.fromiter(map(len, values), dtype=np.int64, count=count)
    bad = (fields[:, :SHARED_FIELDS] != shared).any(axis=1) | (sizes != lengths)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise CorruptStoreError(
            f"{where(position)}: damaged or truncated value ({sizes[position]} bytes, its header promises "
            f"{lengths[position]}), or not of this batch's codec, shape and dtype"
        )
    labels = fields[:, 20:28].copy().view("<i8").reshape(-1).astype(np.int64)
    payloads = [value[COMPRESSED_HEADER_SIZE:] for value in values]
    return decode_payloads(image_codec, payloads, shape, dtype, where), labels


def decode_payloads(
    image_codec: Codec, payloads: Sequence[bytes | memoryview], shape: tuple[int, ...], dtype: np.dtype,
    where: Callable[[int], str],
) -> np.ndarray:
    """Encoded images of one shape and dtype (the codec's bytes alone, no header) decoded into one new array.

    The whole list goes to ``Codec.decode_many`` at once; only when that fails is each decoded alone, so
    that the CorruptStoreError names the damaged one (``where(i)`` names image i).
    """
    if not payloads:
        return np.empty((0, *shape), dtype=dtype)
    try:
        return image_codec.decode_many(list(payloads), shape, dtype)
    except Exception as error:  # each C library has its own exception type for damaged data: find which
        for position, payload in enumerate(payloads):
            image_codec.decode(payload, shape, dtype, where(position))
        raise CorruptStoreError(
            f"{where(0)} and the {len(payloads) - 1} images after it: each decodes alone, not together ({error})"
        ) from None
