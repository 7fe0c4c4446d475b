"""One image as a standard image file (PNG, WebP, JPEG 2000, JPEG): its bytes, and its pixels read back checked.

The disk store keeps one such file per image. PNG goes through Pillow, as in the article (its default zlib
level, 6, unless ``png:N`` names another), and is read back with every chunk's CRC-32 checked (Pillow checks
them for the header chunks only, so damaged image data could otherwise decode to other pixels without a
word). The other formats are encoded and decoded by their ``helpers.codecs`` codec; they carry no checksum
of their own, so a single image's label file keeps the CRC-32 of its whole file.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.codecs import Compression
from helpers.core.errors import CorruptStoreError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_png(image: np.ndarray, level: int | None = None) -> bytes:
    buffer = io.BytesIO()
    pixels = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    options = {} if level is None else {"compress_level": level}
    Image.fromarray(pixels).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def png_bound(image_shape: tuple[int, ...], dtype: np.dtype) -> int:
    """The largest PNG Pillow can write for this image: noise does not compress and PNG adds to it.

    One filter byte per row, zlib's stored-block overhead (deflateBound: about n/4096 + n/16384 + 13),
    IDAT chunk headers every 64 KiB, and the signature, IHDR and IEND chunks.
    """
    height, width = image_shape[:2]
    filtered = int(np.prod(image_shape)) * dtype.itemsize + height
    zlib_bound = filtered + (filtered >> 12) + (filtered >> 14) + 13
    chunks = 12 * (zlib_bound // 65536 + 1)
    return zlib_bound + chunks + 8 + 25 + 12 + 256  # 256: room for an ancillary chunk Pillow may add


def file_suffix(compression: Compression | None) -> str:
    """The usual extension of an image file in this format (None: PNG)."""
    return ".png" if compression is None else compression.codec.suffix


def is_png(compression: Compression | None) -> bool:
    return compression is None or compression.family == "png"


def encode_file(image: np.ndarray, compression: Compression | None) -> bytes:
    """One image as the bytes of a file in the format ``compression`` names (None: Pillow's PNG)."""
    if compression is None:
        return encode_png(image)
    if is_png(compression):
        return encode_png(image, compression.parameter)
    return compression.image_codec.encode(image)


def read_file(path: Path, crc: int | None = None) -> bytes:
    """The bytes of one image file, checked against ``crc`` (the CRC-32 of the whole file) when known."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorruptStoreError(f"{path}: file is missing from the store") from None
    if crc is not None and zlib.crc32(data) != crc:
        raise CorruptStoreError(
            f"{path}: does not match the CRC-32 in its label file (damaged, or an interrupted store_single); "
            f"store the image again"
        )
    return data


def decode_file(
    path: Path, shape: tuple[int, ...], dtype: np.dtype, compression: Compression | None, crc: int | None = None
) -> np.ndarray:
    """The pixels of one image file, checked against the shape and dtype it was stored with (and ``crc``,
    the CRC-32 of the whole file, when the caller knows it)."""
    data = read_file(path, crc)
    if not is_png(compression):
        return compression.image_codec.decode(data, shape, dtype, str(path))
    check_png_chunks(data, path)
    try:
        with Image.open(io.BytesIO(data)) as picture:
            pixels = np.asarray(picture)
    except (OSError, ValueError, SyntaxError) as error:  # Pillow's ways of saying "damaged"
        raise CorruptStoreError(f"{path}: not a readable PNG ({error})") from None
    if pixels.dtype != dtype:  # 16-bit greyscale may come back as int32 mode "I"
        pixels = pixels.astype(dtype)
    if pixels.size != int(np.prod(shape)):
        raise CorruptStoreError(f"{path}: holds an image of shape {pixels.shape}, expected {tuple(shape)}")
    return pixels.reshape(shape)


def check_png_chunks(data: bytes, path: Path) -> None:
    """CorruptStoreError unless every chunk's CRC matches: Pillow checks them for the header chunks only,
    so damaged image data could otherwise decode to other pixels without a word."""
    if not data.startswith(PNG_SIGNATURE):
        raise CorruptStoreError(f"{path}: not a PNG file (bad signature)")
    view = memoryview(data)
    position = len(PNG_SIGNATURE)
    while position + 12 <= len(data):
        length = int.from_bytes(view[position : position + 4], "big")
        end = position + 8 + length
        if end + 4 > len(data):
            raise CorruptStoreError(f"{path}: PNG chunk at byte {position} runs past the end (truncated)")
        if zlib.crc32(view[position + 4 : end]) != int.from_bytes(view[end : end + 4], "big"):
            raise CorruptStoreError(f"{path}: PNG chunk at byte {position} fails its CRC (damaged)")
        if bytes(view[position + 4 : position + 8]) == b"IEND":
            return
        position = end + 4
    raise CorruptStoreError(f"{path}: PNG has no IEND chunk (truncated)")
