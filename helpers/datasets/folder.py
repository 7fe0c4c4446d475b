"""A folder of the reader's own images as a ``Dataset``: ``helpers.datasets.load_folder`` is this module.

Layout and labels follow torchvision's ``ImageFolder``: each first-level subfolder is a class (class names
sorted, label = position), and every image below it, at any depth, belongs to it. A folder without
subfolders is one class named after the folder. Hidden files and folders (a leading dot, such as
``.ipynb_checkpoints``) are skipped, as are files that are not images; files lying directly in a folder
that has class subfolders are left out (ImageFolder ignores them too) and the ``source`` text says so.

Pixels keep their bits:

* 8-bit greyscale (Pillow modes ``1``, ``L``, ``LA``) stays one channel of uint8; alpha is dropped.
* 8-bit colour (``RGB``, ``RGBA``, ``P``, ``CMYK``, ``YCbCr`` ...) becomes RGB uint8: alpha is dropped and
  a palette expanded, as torchvision's default loader (``convert("RGB")``) does. A folder mixing greyscale
  and colour is loaded as RGB, the greyscale images repeated over the three channels.
* 16-bit greyscale (``I;16`` and its byte orders, and ``I`` holding values 0..65535) stays uint16, one
  channel. The stores hold no 16-bit colour, and a folder mixing 8- and 16-bit images is refused rather
  than silently rescaled.
* DICOM (read with pydicom) gives the stored values, no rescale slope, intercept or window applied.
  Signed 16-bit values are shifted by +32768 into uint16 (exact: the sign bit flipped), and ``source``
  records the shift, so the original value is the stored one minus 32768. Compressed transfer syntaxes are
  decoded by the pylibjpeg plugins (JPEG baseline and lossless, JPEG 2000) and pydicom itself (RLE).

A multi-frame file (an animated image, a multi-page TIFF, a multi-frame DICOM) gives its first frame,
as Pillow's ``open`` does.

Each file is opened once: the first file's header sets the result's pixel type and size, the array is
allocated, and every file is checked against them as it is decoded (in chunks, by several processes for a
large folder; worker processes pass their chunks through a small ring of shared slots), which keeps the
memory used near the array's own size. Only when a file does not fit (a colour image after greyscale ones,
another size, another bit depth) are all the headers read, to find the folder's type and size or to say
why it has none, and the pixels decoded again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm  # plain text: tqdm.auto needs ipywidgets inside notebooks

from helpers.core.errors import DatasetError
from helpers.core.pool import in_pool, preload_in_workers, reuse_freed_memory, use_pool, worker_pool
from helpers.datasets.base import Dataset

preload_in_workers(__name__)  # the pool's workers decode the folder's files

PILLOW_SUFFIXES = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
    ".webp": "WebP",
}
DICOM_SUFFIXES = {".dcm": "DICOM", ".dicom": "DICOM"}
DICOM_MAGIC_OFFSET = 128  # a DICOM file opens with a 128-byte preamble, then "DICM"
SIGNED_SHIFT = 32768

GREY8, RGB8, GREY16 = "8-bit greyscale", "8-bit RGB", "16-bit greyscale"
PIXEL_TYPES = {GREY8: (np.uint8, 1), RGB8: (np.uint8, 3), GREY16: (np.uint16, 1)}
GREY8_MODES = {"1", "L", "LA", "La"}
RGB8_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}
GREY16_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}

#: Files per chunk when reading headers; pixels go in chunks of about CHUNK_BYTES of decoded images.
HEADER_CHUNK_FILES = 256
CHUNK_BYTES = 8 << 20
#: Where worker processes put the chunks they decode: slots in a file of this memory file system, so that
#: the pixels are not pickled through pipes.
SHARED_MEMORY_DIR = "/dev/shm"


class NoImagesError(DatasetError):
    """A folder without a single image file in it or below it."""


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


# -- finding the files ---------------------------------------------------------------------------------
def _visible_sorted(entries: list[str]) -> list[str]:
    return sorted(entry for entry in entries if not entry.startswith("."))


def _is_dicom_without_suffix(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(DICOM_MAGIC_OFFSET)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def image_format(path: Path) -> str | None:
    """The format a file is read as ("PNG", "DICOM", ...), or None when it is not an image this reads."""
    suffix = path.suffix.lower()
    if suffix in PILLOW_SUFFIXES:
        return PILLOW_SUFFIXES[suffix]
    if suffix in DICOM_SUFFIXES:
        return "DICOM"
    if not suffix and _is_dicom_without_suffix(path):  # scanners often write DICOM without a suffix
        return "DICOM"
    return None


def _images_below(folder: Path) -> tuple[list[Path], int]:
    """Every image file below ``folder`` in a stable order (sorted at each level), and how many others."""
    found, others = [], 0
    for current, folders, files in os.walk(folder, followlinks=True):
        folders[:] = _visible_sorted(folders)
        for name in _visible_sorted(files):
            path = Path(current) / name
            if image_format(path) is None:
                others += 1
            else:
                found.append(path)
    return found, others


@dataclass
class FolderListing:
    """The images of a folder in load order, their labels and class names, and what was left out."""

    files: list[Path]
    labels: np.ndarray
    class_names: list[str]
    notes: list[str]


def list_images(path: str | os.PathLike[str]) -> FolderListing:
    """The image files under ``path`` as ``load_folder`` reads them, without opening any image."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder of images" if root.exists() else f"no folder at {root}")
    subfolders = [root / name for name in _visible_sorted(os.listdir(root)) if (root / name).is_dir()]
    notes = []
    if not subfolders:
        files, others = _images_below(root)
        classes = [(root.name or str(root), files)] if files else []
    else:
        classes, others, empty = [], 0, []
        for folder in subfolders:
            files, skipped = _images_below(folder)
            others += skipped
            if files:
                classes.append((folder.name, files))
            else:
                empty.append(folder.name)
        loose = [name for name in _visible_sorted(os.listdir(root)) if (root / name).is_file()]
        loose_images = [name for name in loose if image_format(root / name) is not None]
        others += len(loose) - len(loose_images)
        if loose_images:
            notes.append(f"{len(loose_images)} image(s) directly in the folder, outside any class folder, "
                         "left out (as ImageFolder does)")
        if empty:
            notes.append(f"subfolder(s) without images skipped: {', '.join(empty)}")
    if others:
        notes.append(f"{others} file(s) that are not images ignored")
    if not classes:
        raise NoImagesError(
            f"no images in {root} (looked for {', '.join(sorted({*PILLOW_SUFFIXES, *DICOM_SUFFIXES}))} "
            "files, and DICOM files without a suffix, in the folder and its subfolders)"
        )
    files = [file for _, class_files in classes for file in class_files]
    labels = np.concatenate([np.full(len(class_files), label) for label, (_, class_files) in enumerate(classes)])
    return FolderListing(files, labels.astype(np.int64), [name for name, _ in classes], notes)


# -- reading one file ------------------------------------------------------------------------------------
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


# -- work done in chunks, in this process or by the pool -------------------------------------------------
def _read_headers(paths: Sequence[str]) -> list[Header]:
    return [read_header(Path(path)) for path in paths]


def _decoded(paths: Sequence[str], layout: Layout) -> Iterator[tuple[np.ndarray, tuple[int, int]]]:
    return (read_pixels(Path(path), layout) for path in paths)


def _read_chunk(paths: Sequence[str], layout: Layout) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The images of ``paths`` as one new array, and their sizes before any resize."""
    dtype, channels = PIXEL_TYPES[layout.pixel_type]
    out = np.empty((len(paths), *layout.shape, channels), dtype=dtype)
    originals = []
    for index, (values, original) in enumerate(_decoded(paths, layout)):
        out[index] = values
        originals.append(original)
    return out, originals


def _read_chunk_to_slot(ring_path: str, offset: int, paths: Sequence[str],
                        layout: Layout) -> list[tuple[int, int]]:
    """Decode ``paths`` into the ring file's slot that starts at byte ``offset``, image after image; their
    sizes before any resize."""
    reuse_freed_memory()  # see _ParallelDecode.run
    handle = os.open(ring_path, os.O_WRONLY)
    originals = []
    try:
        for values, original in _decoded(paths, layout):
            # pwrite copies into the file's pages, allocated once for the whole load; writing through a
            # mapping would fault every page in again in each call.
            remaining = memoryview(np.ascontiguousarray(values)).cast("B")
            while remaining:
                written = os.pwrite(handle, remaining, offset)
                remaining, offset = remaining[written:], offset + written
            originals.append(original)
    finally:
        os.close(handle)
    return originals


def _ring_file(nbytes: int) -> tuple[str, int] | None:
    """A file of ``nbytes`` on the memory file system, its pages allocated, open for reading; or None
    when there is no such file system or no room on it (the workers then send their chunks back)."""
    if not os.path.isdir(SHARED_MEMORY_DIR) or shutil.disk_usage(SHARED_MEMORY_DIR).free < 2 * nbytes:
        return None
    handle, name = tempfile.mkstemp(dir=SHARED_MEMORY_DIR, prefix="load-folder-")
    try:
        os.posix_fallocate(handle, 0, nbytes)  # no room is found out now rather than by a worker half-way
    except OSError:
        os.close(handle)
        os.unlink(name)
        return None
    return name, handle


def _read_all_headers(names: list[str], workers: int, bar: tqdm) -> list[Header]:
    """Every file's header, in order, read in chunks by the process pool when there are several chunks."""

    calls = [(names[start:start + HEADER_CHUNK_FILES],) for start in range(0, len(names), HEADER_CHUNK_FILES)]
    chunks = (in_pool(_read_headers, calls, workers) if workers > 1 and len(calls) > 1
              else (_read_headers(*call) for call in calls))
    headers: list[Header] = []
    for chunk in chunks:
        headers += chunk
        bar.update(len(chunk))
    return headers


def _decode_all(names: list[str], layout: Layout, workers: int, bar: tqdm) -> tuple[np.ndarray, np.ndarray]:
    """Every file decoded into one array of this process, allocated once, by ``workers`` processes (this one
    and ``workers - 1`` of the pool), and each image's ``(height, width)`` before any resize."""
    dtype, channels = PIXEL_TYPES[layout.pixel_type]
    images = np.empty((len(names), *layout.shape, channels), dtype=dtype)
    originals = np.empty((len(names), 2), dtype=np.int64)
    if workers == 1:
        for index, (values, original) in enumerate(_decoded(names, layout)):
            images[index], originals[index] = values, original
            bar.update(1)
    else:
        _ParallelDecode(names, layout, workers - 1, images, originals, bar).run()
    return images, originals


class _ParallelDecode:
    """This process and ``helpers`` pool workers decode the files into ``images`` together.

    Why this process decodes too, and why the workers do not write into ``images``: the array is private
    memory, which Linux backs with huge pages (one page fault per 2 MiB); an array the workers could write
    into would be a shared file mapping, built from 4 KiB pages that are allocated, faulted in and freed one
    by one. Filling 375 MiB (2,000 RGB images of 256x256) took 0.31 s of kernel time through a mapping of
    the memory file system and 0.17 s through ``pwrite``, against 0.03 s into private huge pages (when
    the kernel has them at hand), while decoding the images takes about 0.8 s. So the workers decode
    chunks into a few slots of a file on the memory file system (its pages allocated once for the load),
    this process copies each finished slot into the array (one ``preadv``), and between copies it decodes
    images itself, straight into the array: only the workers' share is copied at all, and no more than
    ``helpers + 1`` processes decode at once. Work is handed out from the front of the list as it is
    claimed, so whoever is faster does more; the workers' chunks shrink towards the end so that they do
    not finish long after this process.
    """

    def __init__(self, names: list[str], layout: Layout, helpers: int, images: np.ndarray,
                 originals: np.ndarray, bar: tqdm) -> None:
        self.names, self.layout, self.helpers = names, layout, helpers
        self.images, self.originals, self.bar = images, originals, bar
        self.image_bytes = images[0].nbytes
        self.chunk = max(1, min(CHUNK_BYTES // self.image_bytes, -(-len(names) // (4 * (helpers + 1)))))
        self.claimed = 0  # images before this index are decoded or being decoded
        self.running: list[tuple[Future, int, int, int]] = []  # (future, first image, count, slot)
        # Two slots per worker: its next chunk can be sent before the last one is copied out.
        self.free_slots = list(range(2 * helpers))
        self.ring = _ring_file(2 * helpers * self.chunk * self.image_bytes)

    def run(self) -> None:
        # Each image passes through two buffers of its size (Pillow's, then NumPy's), freed right away. With
        # the pool's threads and futures allocating between them, glibc gave them back to the kernel after
        # every image and faulted them in again for the next: 110,000 page faults and 0.3 s of kernel time
        # in this process for 2,000 images of 256x256 (600 faults when one process loads alone), and 45,000
        # in a worker. Keeping freed blocks of up to 32 MB for reuse (as the loader's workers do) ends that.
        reuse_freed_memory()
        pool = worker_pool()
        try:
            while self.claimed < len(self.names):
                self._collect(pool, block=False)
                if self.claimed < len(self.names):  # one image here, then look at the workers again
                    index = self.claimed
                    self.claimed += 1
                    path = Path(self.names[index])
                    self.images[index], self.originals[index] = read_pixels(path, self.layout)
                    self.bar.update(1)
            while self.running:
                self._collect(pool, block=True)
        finally:  # on an error, let no worker go on writing into a slot of a file about to be removed
            for future, *_ in self.running:
                future.cancel()
            wait([future for future, *_ in self.running])
            if self.ring is not None:
                os.close(self.ring[1])
                os.unlink(self.ring[0])

    def _collect(self, pool, *, block: bool) -> None:
        """Copy the workers' finished chunks into the array and send them new ones."""
        if block:
            wait([future for future, *_ in self.running], return_when=FIRST_COMPLETED)
        finished, running = [], []
        for job in self.running:  # each future asked once: one may finish while we look
            (finished if job[0].done() else running).append(job)
        self.running = running
        self._send(pool)  # first, so that a worker is not idle while this process copies
        for future, first, count, slot in finished:
            # a worker's error (a file it could not decode, or that does not fit the layout) is raised here
            result = future.result()
            target = self.images[first:first + count]
            if self.ring is None:
                target[...], self.originals[first:first + count] = result
            else:
                self.originals[first:first + count] = result
                view = memoryview(target).cast("B")
                if os.preadv(self.ring[1], [view], self._offset(slot)) != len(view):
                    raise OSError(f"{self.ring[0]}: a short read of a slot a worker had written")
            self.free_slots.append(slot)
            self.bar.update(count)
        self._send(pool)

    def _send(self, pool) -> None:
        while len(self.running) < self.helpers and self.free_slots and self.claimed < len(self.names):
            left = len(self.names) - self.claimed
            count = max(1, min(self.chunk, left // (2 * (self.helpers + 1))))
            first, slot = self.claimed, self.free_slots.pop()
            self.claimed += count
            paths = self.names[first:first + count]
            if self.ring is None:
                future = pool.submit(_read_chunk, paths, self.layout)
            else:
                future = pool.submit(_read_chunk_to_slot, self.ring[0], self._offset(slot), paths,
                                     self.layout)
            self.running.append((future, first, count, slot))

    def _offset(self, slot: int) -> int:
        return slot * self.chunk * self.image_bytes


# -- the whole folder ------------------------------------------------------------------------------------
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
        return (*_decode_all(names, layout, workers, bar), layout)
    except LayoutMismatch:
        pass  # out of the handler first: the traceback would keep the first attempt's array alive
    bar.reset(total=2 * len(files))
    bar.set_postfix_str("headers")
    layout = _layout(_read_all_headers(names, workers, bar), files, size)
    bar.set_postfix_str("pixels")
    try:
        return (*_decode_all(names, layout, workers, bar), layout)
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


def load_folder(
    path: str | os.PathLike[str],
    *,
    size: int | Sequence[int] | None = None,
    limit: int | None = None,
    workers: int | None = None,
    progress: bool = True,
):
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


    # one process unless the folder is large enough for the pool to pay (helpers.stores.disk's rule)
    workers = workers if use_pool(workers, len(files), 2) else 1
    with tqdm(total=len(files), desc="reading images", unit="file", disable=not progress, leave=False) as bar:
        images, originals, layout = _load_pixels(files, size, workers, bar)
    labels = listing.labels[:len(files)]
    source = _description(root, listing, files, images, layout, originals, limit)
    return Dataset(images=images, labels=labels, class_names=listing.class_names, source=source)
