"""One image file's header and pixels, read through Pillow or pydicom, with their bits kept.

* 8-bit greyscale (Pillow modes ``1``, ``L``, ``LA``) stays one channel of uint8; alpha is dropped.
* 8-bit colour (``RGB``, ``RGBA``, ``P``, ``CMYK``, ``YCbCr`` ...) becomes RGB uint8: alpha is dropped and
  a palette expanded, as torchvision's default loader (``convert("RGB")``) does. A greyscale image in a
  colour layout is repeated over the three channels.
* 16-bit greyscale (``I;16`` and its byte orders, and ``I`` holding values 0..65535) stays uint16, one
  channel.
* DICOM (read with pydicom) gives the stored values, no rescale slope, intercept or window applied.
  Signed 16-bit values are shifted by +32768 into uint16 (exact: the sign bit flipped). Compressed transfer
  syntaxes are decoded by the pylibjpeg plugins (JPEG baseline and lossless, JPEG 2000) and pydicom itself
  (RLE).

A multi-frame file (an animated image, a multi-page TIFF, a multi-frame DICOM) gives its first frame,
as Pillow's ``open`` does. Pillow and pydicom are imported where a file is read, so that importing the
datasets does not load them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.core.errors import DatasetError
from helpers.datasets.image_files import image_format

SIGNED_SHIFT = 32768

GREY8, RGB8, GREY16 = "8-bit greyscale", "8-bit RGB", "16-bit greyscale"
PIXEL_TYPES = {GREY8: (np.uint8, 1), RGB8: (np.uint8, 3), GREY16: (np.uint16, 1)}
GREY8_MODES = {"1", "L", "LA", "La"}
RGB8_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}
GREY16_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


@dataclass(frozen=True)
class Header:
    """What a file's header says: its size in pixels, its pixel type and whether its values are signed."""

    height: int
    width: int
    pixel_type: str
    signed: bool = False


@dataclass(frozen=True)
class Layout:
    """What every image of a load becomes: its pixel type and ``(height, width)``, whether images of other
    sizes are resized to it, and whether 16-bit values are signed DICOM ones (shifted into uint16)."""

    pixel_type: str
    shape: tuple[int, int]
    resize: bool
    signed: bool = False

    def fits(self, header: Header) -> bool:
        """Whether an image with this header can be loaded as the layout says, its bits kept."""
        grey_in_colour = self.pixel_type == RGB8 and header.pixel_type == GREY8
        same_type = header.pixel_type == self.pixel_type or grey_in_colour
        same_shape = self.resize or (header.height, header.width) == self.shape
        return same_type and same_shape and header.signed == self.signed


class LayoutMismatch(Exception):
    """A file that does not fit the layout guessed from the first file (not an error of the folder's:
    ``load_folder`` then reads every header and starts again)."""


def _pillow_pixel_type(mode: str, path: Path) -> str:
    if mode in GREY8_MODES:
        return GREY8
    if mode in RGB8_MODES:
        return RGB8
    if mode in GREY16_MODES:
        return GREY16
    raise DatasetError(
        f"{path}: Pillow mode {mode!r} is not an image type this reads (8-bit greyscale or colour, 16-bit "
        "greyscale); convert it first"
    )


def _dicom_header(path: Path) -> Header:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    samples = int(ds.get("SamplesPerPixel", 1))
    bits = int(ds.get("BitsAllocated", 0))
    if "Rows" not in ds or "Columns" not in ds:
        raise DatasetError(f"{path}: a DICOM file without an image (no Rows and Columns)")
    if bits not in (8, 16) or samples not in (1, 3) or (bits == 16 and samples == 3):
        raise DatasetError(
            f"{path}: DICOM with {bits} bits allocated and {samples} sample(s) per pixel; this reads 8-bit "
            "greyscale or colour and 16-bit greyscale"
        )
    pixel_type = GREY16 if bits == 16 else (RGB8 if samples == 3 else GREY8)
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    return Header(int(ds.Rows), int(ds.Columns), pixel_type, signed and bits == 16)


def read_header(path: Path) -> Header:
    """The header of one image file; DatasetError naming the file if it is not a readable image."""
    try:
        if image_format(path) == "DICOM":
            return _dicom_header(path)
        from PIL import Image

        with Image.open(path) as image:
            return Header(image.height, image.width, _pillow_pixel_type(image.mode, path))
    except DatasetError:
        raise
    except Exception as error:  # noqa: BLE001 - a damaged file fails in many ways inside the decoders
        raise DatasetError(f"{path}: cannot read it as an image ({type(error).__name__}: {error})") from None


def _shifted(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.int16:
        return values.view(np.uint16) ^ np.uint16(SIGNED_SHIFT)  # + 32768, exactly
    return values


def read_dicom(path: Path) -> np.ndarray:
    """The first frame's stored values of a DICOM file, ``(h, w)`` or ``(h, w, 3)``; signed 16-bit + 32768."""
    from pydicom.pixels import pixel_array

    return _shifted(pixel_array(path, index=0))


def _values_header(values: np.ndarray) -> Header | None:
    """The header a DICOM file's decoded values imply, or None for values of no pixel type this reads."""
    if values.ndim == 2 and values.dtype in (np.uint16, np.int16):
        return Header(*values.shape, GREY16, signed=values.dtype == np.int16)
    if values.ndim == 2 and values.dtype == np.uint8:
        return Header(*values.shape, GREY8)
    if values.ndim == 3 and values.shape[2] == 3 and values.dtype == np.uint8:
        return Header(*values.shape[:2], RGB8)
    return None


def _check_fits(path: Path, header: Header, layout: Layout) -> None:
    if not layout.fits(header):
        raise LayoutMismatch(str(path))


def _fit(image, size: tuple[int, int]):
    """Resize keeping the aspect ratio so that the image covers ``size``, then crop the centre."""
    from PIL import Image, ImageOps

    return ImageOps.fit(image, (size[1], size[0]), method=Image.Resampling.BILINEAR)


def _pillow_pixels(path: Path, layout: Layout) -> tuple[np.ndarray, tuple[int, int]]:
    from PIL import Image

    with Image.open(path) as image:
        original = (image.height, image.width)
        _check_fits(path, Header(*original, _pillow_pixel_type(image.mode, path)), layout)
        pixel_type, size = layout.pixel_type, layout.shape if layout.resize else None
        if size is not None and image.format == "JPEG":
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: the fastest path to a smaller image.
            scale = max(size[0] / image.height, size[1] / image.width)
            image.draft(image.mode, (int(np.ceil(image.width * scale)), int(np.ceil(image.height * scale))))
        if image.mode == "I":  # 16-bit greyscale as some decoders give it, in 32-bit integers
            values = np.asarray(image)
            if values.size and (values.min() < 0 or values.max() > 65535):
                raise DatasetError(f"{path}: values outside 0..65535, not a 16-bit image")
            image = Image.fromarray(values.astype(np.uint16))
        elif pixel_type != GREY16:
            wanted = "RGB" if pixel_type == RGB8 else "L"
            if image.mode != wanted:
                image = image.convert(wanted)
        if size is not None:
            image = _fit(image, size)
        return np.asarray(image), original


def _dicom_pixels(path: Path, layout: Layout) -> tuple[np.ndarray, tuple[int, int]]:
    from pydicom.pixels import pixel_array

    values = pixel_array(path, index=0)
    header = _values_header(values)
    if header is None:  # values of no pixel type this reads: its header says why, or the check below
        read_header(path)
    else:
        _check_fits(path, header, layout)
    original = values.shape[:2]
    values = _shifted(values)
    if layout.resize:
        from PIL import Image

        values = np.asarray(_fit(Image.fromarray(values), layout.shape))
    return values, original


def read_pixels(path: Path, layout: Layout) -> tuple[np.ndarray, tuple[int, int]]:
    """One image as ``(h, w, channels)`` of the layout, and its size before any resize. DatasetError naming
    the file if it cannot be decoded; LayoutMismatch if it does not fit the layout."""
    try:
        if image_format(path) == "DICOM":
            values, original = _dicom_pixels(path, layout)
        else:
            values, original = _pillow_pixels(path, layout)
    except (DatasetError, LayoutMismatch):
        raise
    except Exception as error:  # noqa: BLE001 - a damaged file fails in many ways inside the decoders
        raise DatasetError(f"{path}: cannot decode it ({type(error).__name__}: {error})") from None
    dtype, channels = PIXEL_TYPES[layout.pixel_type]
    if values.dtype.kind == "u" and values.dtype.itemsize == np.dtype(dtype).itemsize:
        values = values.astype(dtype, copy=False)  # big-endian 16-bit (I;16B) to this machine's order
    if values.ndim == 2:
        values = values[:, :, None]
    if values.shape[2] == 1 and channels == 3:  # a greyscale image in a colour folder
        values = np.repeat(values, 3, axis=2)
    if values.dtype != dtype or values.shape[2] != channels or values.shape[:2] != layout.shape:
        raise DatasetError(f"{path}: decoded as {values.shape[1]}x{values.shape[0]} {values.dtype} with "
                           f"{values.shape[2]} channel(s), not as its header said ({layout.pixel_type})")
    return values, original
