"""A folder of the reader's own images as a ``Dataset``: ``helpers.datasets.load_folder`` is this module.

Which files are read and how they are labelled follows torchvision's ``ImageFolder``
(``helpers.datasets.image_files`` tells the rules); how each file's pixels keep their bits, DICOM
included, is ``helpers.datasets.pixels``. A folder mixing greyscale and colour is loaded as RGB, the
greyscale images repeated over the three channels. The stores hold no 16-bit colour, and a folder mixing
8- and 16-bit images is refused rather than silently rescaled. Signed DICOM values are shifted into uint16
and ``source`` records the shift, so the original value is the stored one minus 32768.

Each file is opened once: the first file's header sets the result's pixel type and size, the array is
allocated, and every file is checked against them as it is decoded (in chunks, by several processes for a
large folder: ``helpers.datasets.parallel_decode``), which keeps the memory used near the array's own size.
Only when a file does not fit (a colour image after greyscale ones, another size, another bit depth) are
all the headers read, to find the folder's type and size or to say why it has none, and the pixels decoded
again.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm  # plain text: tqdm.auto needs ipywidgets inside notebooks

from helpers.core.errors import DatasetError
from helpers.core.pool import use_pool
from helpers.datasets.base import Dataset
from helpers.datasets.image_files import FolderListing, image_format, list_images
from helpers.datasets.parallel_decode import decode_all, read_all_headers
from helpers.datasets.pixels import GREY16, RGB8, SIGNED_SHIFT, Header, Layout, LayoutMismatch, read_header


def load_folder(
    path: str | os.PathLike[str],
    *,
    size: int | Sequence[int] | None = None,
    limit: int | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Dataset:
    """Every image under ``path`` as a ``Dataset``, labelled by first-level subfolder (see the module doc).

    ``size``: None keeps each image's size (all must be equal, else DatasetError listing the sizes);
    ``(height, width)`` or one number resizes each image keeping its aspect ratio, then crops the centre.
    ``limit``: read only the first ``limit`` images of the stable order. ``workers``: processes decoding
    (default: one per CPU; 1 decodes in this process). ``progress``: a progress bar on stderr.
    """
    size = _checked_size(size)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise DatasetError(f"limit must be a positive number of images or None, got {limit!r}")
    workers = workers if workers is not None else (os.cpu_count() or 1)
    root = Path(path)
    listing = list_images(root)
    files = listing.files[:limit] if limit is not None else listing.files
    # one process unless the folder is large enough for the pool to pay (the pool's own rule)
    workers = workers if use_pool(workers, len(files), 2) else 1
    with tqdm(total=len(files), desc="reading images", unit="file", disable=not progress, leave=False) as bar:
        images, originals, layout = _load_pixels(files, size, workers, bar)
    labels = listing.labels[:len(files)]
    source = _description(root, listing, files, images, layout, originals, limit)
    return Dataset(images=images, labels=labels, class_names=listing.class_names, source=source)


def _checked_size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    values = [size] if isinstance(size, (int, np.integer)) and not isinstance(size, bool) else list(size)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                               for v in values):
        raise DatasetError(f"size must be one positive number of pixels or (height, width), got {size!r}")
    return int(values[0]), int(values[1])


def _pixel_type(headers: list[Header], files: list[Path]) -> str:
    kinds = Counter(header.pixel_type for header in headers)
    if GREY16 in kinds and len(kinds) > 1:
        counts = ", ".join(f"{count:,} {kind}" for kind, count in kinds.most_common())
        first_8bit = next(f for f, h in zip(files, headers) if h.pixel_type != GREY16)
        raise DatasetError(
            f"the folder mixes 16-bit and 8-bit images ({counts}; e.g. {first_8bit}): one dataset has one "
            "pixel type, so convert them to one bit depth or load them as separate folders"
        )
    signed = {header.signed for header in headers if header.pixel_type == GREY16}
    if len(signed) > 1:
        raise DatasetError(
            "the folder mixes signed and unsigned 16-bit DICOM files: their stored values mean different "
            "things (a rescale intercept would be needed), so load them as separate folders"
        )
    return RGB8 if RGB8 in kinds else next(iter(kinds))


def _shape(headers: list[Header], files: list[Path], size: tuple[int, int] | None) -> tuple[int, int]:
    if size is not None:
        return size
    shapes = Counter((header.height, header.width) for header in headers)
    if len(shapes) > 1:
        listed = ", ".join(f"{count:,} of {w}x{h}" for (h, w), count in shapes.most_common(5))
        more = f" and {len(shapes) - 5} more" if len(shapes) > 5 else ""
        raise DatasetError(
            f"the images have {len(shapes)} different sizes (width x height: {listed}{more}); pass size=(height, "
            f"width) or one number to load_folder, or IMAGE_SIZE=... to make report (--image-size), to resize "
            "them keeping their aspect ratio and crop the centre"
        )
    return next(iter(shapes))


def _layout(headers: list[Header], files: list[Path], size: tuple[int, int] | None) -> Layout:
    """The layout these files are loaded in, or DatasetError saying why they have none."""
    return Layout(_pixel_type(headers, files), _shape(headers, files, size), size is not None,
                  any(header.signed for header in headers))


def _load_pixels(files: list[Path], size: tuple[int, int] | None, workers: int,
                 bar: tqdm) -> tuple[np.ndarray, np.ndarray, Layout]:
    """The images, their sizes before any resize, and their layout: guessed from the first file, and
    found from every header only when a file does not fit the guess."""
    names = [str(file) for file in files]
    layout = _layout([read_header(files[0])], files[:1], size)
    bar.set_postfix_str("pixels")
    try:
        return (*decode_all(names, layout, workers, bar), layout)
    except LayoutMismatch:
        pass  # out of the handler first: the traceback would keep the first attempt's array alive
    bar.reset(total=2 * len(files))
    bar.set_postfix_str("headers")
    layout = _layout(read_all_headers(names, workers, bar), files, size)
    bar.set_postfix_str("pixels")
    try:
        return (*decode_all(names, layout, workers, bar), layout)
    except LayoutMismatch as mismatch:
        raise DatasetError(f"{mismatch}: its pixels are not what its header says (or the file changed while "
                           "the folder was being read)") from None


def _description(root: Path, listing: FolderListing, files: list[Path], images: np.ndarray, layout: Layout,
                 originals: np.ndarray, limit: int | None) -> str:
    formats = Counter(image_format(path) for path in files)
    shape = "x".join(str(side) for side in images.shape[1:])
    parts = [
        f"Folder {root}: {len(images):,} images in {len(listing.class_names)} class(es) "
        f"({', '.join(listing.class_names[:8])}{', ...' if len(listing.class_names) > 8 else ''}), "
        f"shape {shape} {images.dtype} ({layout.pixel_type}); files: "
        + ", ".join(f"{count:,} {name}" for name, count in formats.most_common())
    ]
    if layout.resize:
        sizes = len(np.unique(originals, axis=0))
        parts.append(f"resized from {sizes} original size(s) to {layout.shape[0]}x{layout.shape[1]} "
                     "(aspect ratio kept, centre cropped)")
    if layout.signed:
        parts.append(f"signed DICOM values shifted by +{SIGNED_SHIFT} into uint16 "
                     f"(stored value = pixel - {SIGNED_SHIFT})")
    if limit is not None and limit < len(listing.files):
        parts.append(f"the first {len(files):,} of {len(listing.files):,} images (limit)")
    return "; ".join(parts + listing.notes)
