"""Large 16-bit greyscale images: synthetic CT-like slices, real CT slices from ``pydicom-data``, and
their lossless compression ratios.

``synthetic_scans`` (``helpers.datasets.synthetic_scans``) draws 512x512 slices in stored CT values
(Hounsfield units + 1024, 12 bits used): a field-of-view circle outside which the scanner writes a
constant, air with noise inside it, a patient table, and a body (skin and fat, soft tissue with organs of
slightly different density, bone) with noise on top. The noise level is tuned with
``benchmarks/large_images.py`` so that 16-bit PNG compresses them about as well as the real slice
``693_UNCR.dcm`` of the PyPI package ``pydicom-data`` (about 3.5x with Pillow's default level).

The real slices come from the installed ``pydicom-data`` package, found with
``pydicom.data.get_testdata_file(name, download=False)``: nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from helpers.core.errors import DatasetError
from helpers.datasets.base import Dataset, make_chunks_in_threads
from helpers.datasets.pixels import read_dicom

if TYPE_CHECKING:  # pandas is imported where the ratios are tabulated, not for drawing scans
    import pandas as pd

SCAN_PREFIX = "Generated"  # a chosen data set, not a fallback: no warning banner, but the source says it
SCAN_CLASS_NAMES = ["head", "chest", "abdomen"]
HU_OFFSET = 1024  # stored value = Hounsfield units + 1024, as most CT scanners write them
BITS_USED = 12
MAX_VALUE = (1 << BITS_USED) - 1
SCANS_PER_CHUNK = 8  # each chunk from its own seeded generator: scans(k) is a prefix of scans(n)
# Hounsfield units of what a slice shows.
AIR, FAT, SOFT_TISSUE, ORGAN_RANGE, BONE_RANGE, TABLE = -1000, -100, 40, (-30, 80), (400, 1400), 200
#: Standard deviation of the noise in stored units (HU); tuned so that 16-bit PNG compresses like 693_UNCR.
NOISE_SIGMA = 3.0
_NOISE_TABLE_SIZE = 1 << 16

#: Real 512x512 CT slices in pydicom-data: (file, what it is).
REAL_CT_SLICES = (
    ("693_UNCR.dcm", "head CT, uncompressed"),
    ("explicit_VR-UN.dcm", "CT, JPEG 2000 lossless in the file"),
    ("bad_sequence.dcm", "CT, JPEG lossless in the file"),
)
REFERENCE_SLICE = REAL_CT_SLICES[0][0]


# -- synthetic slices ------------------------------------------------------------------------------------
def _noise_table(sigma: float) -> np.ndarray:
    """Gaussian noise quantiles: indexing this with random 16-bit numbers draws normal noise cheaply."""
    from statistics import NormalDist

    normal = NormalDist(0.0, sigma)
    quantiles = (np.arange(_NOISE_TABLE_SIZE) + 0.5) / _NOISE_TABLE_SIZE
    return np.round([normal.inv_cdf(q) for q in quantiles]).astype(np.int16)


_NOISE = None


def _noise() -> np.ndarray:
    global _NOISE
    if _NOISE is None:
        _NOISE = _noise_table(NOISE_SIGMA)
    return _NOISE


def _paint_ellipse(image: np.ndarray, centre: tuple[float, float], axes: tuple[float, float], value: int,
                   angle: float = 0.0) -> None:
    """Set the pixels of ``image`` inside a rotated ellipse to ``value``, working only on its bounding box."""
    size_y, size_x = image.shape
    cy, cx = centre
    ay, ax = axes
    reach = max(ay, ax)
    top, bottom = max(int(cy - reach), 0), min(int(np.ceil(cy + reach)) + 1, size_y)
    left, right = max(int(cx - reach), 0), min(int(np.ceil(cx + reach)) + 1, size_x)
    if top >= bottom or left >= right:
        return
    y = (np.arange(top, bottom, dtype=np.float32) - cy)[:, None]
    x = (np.arange(left, right, dtype=np.float32) - cx)[None, :]
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    u = (x * cos + y * sin) / np.float32(ax)
    v = (y * cos - x * sin) / np.float32(ay)
    inside = u * u + v * v <= 1
    np.copyto(image[top:bottom, left:right], np.int16(value + HU_OFFSET), where=inside)


def _field_of_view(size: int) -> np.ndarray:
    """True inside the scanner's reconstruction circle."""
    centre = (size - 1) / 2
    y, x = np.ogrid[:size, :size]
    return (y - centre) ** 2 + (x - centre) ** 2 <= (size / 2) ** 2


def _draw_scan(rng: np.random.Generator, size: int, region: int) -> np.ndarray:
    """One slice's anatomy (int16 stored values, no noise); ``region`` 0 head, 1 chest, 2 abdomen."""
    image = np.full((size, size), AIR + HU_OFFSET, dtype=np.int16)
    s = size / 512
    centre = (size / 2 + rng.uniform(-12, 12) * s, size / 2 + rng.uniform(-12, 12) * s)
    # The patient table: a curved band below the body.
    table_y = centre[0] + (105 if region == 0 else 150) * s + rng.uniform(0, 10) * s
    _paint_ellipse(image, (table_y + 260 * s, size / 2), (270 * s, 235 * s), TABLE)
    _paint_ellipse(image, (table_y + 266 * s, size / 2), (264 * s, 229 * s), AIR)
    if region == 0:  # head: skin, skull, brain, ventricles
        half = (rng.uniform(95, 110) * s, rng.uniform(78, 90) * s)
        _paint_ellipse(image, centre, (half[0] + 6 * s, half[1] + 6 * s), SOFT_TISSUE + 20)
        _paint_ellipse(image, centre, half, int(rng.uniform(*BONE_RANGE)) + 300)
        thickness = rng.uniform(6, 10) * s
        _paint_ellipse(image, centre, (half[0] - thickness, half[1] - thickness), SOFT_TISSUE)
        for side in (-1, 1):
            _paint_ellipse(image, (centre[0] - 5 * s, centre[1] + side * 12 * s), (25 * s, 7 * s), 5,
                           angle=side * rng.uniform(0.1, 0.4))
        return image
    # chest or abdomen: skin and fat, muscle and organs, spine, ribs (chest) or pelvis-like bone
    half = (rng.uniform(95, 125) * s, rng.uniform(150, 190) * s)
    _paint_ellipse(image, centre, half, FAT)
    fat = rng.uniform(8, 20) * s
    _paint_ellipse(image, centre, (half[0] - fat, half[1] - fat), SOFT_TISSUE)
    if region == 1:  # lungs: two large air-filled ellipses
        for side in (-1, 1):
            _paint_ellipse(image, (centre[0] - 10 * s, centre[1] + side * half[1] * 0.45),
                           (half[0] * 0.6, half[1] * 0.33), -850 + int(rng.uniform(-40, 40)))
        _paint_ellipse(image, (centre[0] - 5 * s, centre[1] + 15 * s), (40 * s, 45 * s), SOFT_TISSUE + 10)
    for _ in range(int(rng.integers(3, 6))):  # organs
        organ_centre = (centre[0] + rng.uniform(-0.5, 0.3) * half[0], centre[1] + rng.uniform(-0.6, 0.6) * half[1])
        _paint_ellipse(image, organ_centre, (rng.uniform(15, 45) * s, rng.uniform(20, 60) * s),
                       int(rng.uniform(*ORGAN_RANGE)), angle=rng.uniform(0, np.pi))
    spine = (centre[0] + half[0] - fat - 45 * s, centre[1])
    _paint_ellipse(image, spine, (22 * s, 20 * s), int(rng.uniform(*BONE_RANGE)))
    _paint_ellipse(image, spine, (13 * s, 11 * s), int(rng.uniform(150, 300)))
    if region == 1:
        for index in range(6):  # ribs: small bone ellipses along the body's edge
            angle = np.pi * (0.15 + 0.14 * index)
            for side in (-1, 1):
                rib = (centre[0] + np.cos(angle) * (half[0] - fat - 6 * s),
                       centre[1] + side * np.sin(angle) * (half[1] - fat - 6 * s))
                _paint_ellipse(image, rib, (5 * s, 8 * s), int(rng.uniform(*BONE_RANGE)))
    return image


def _scan_chunk(seed: int, chunk: int, size: int, fov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, chunk, size])
    first = chunk * SCANS_PER_CHUNK
    regions = (first + np.arange(SCANS_PER_CHUNK)) % len(SCAN_CLASS_NAMES)
    scans = np.empty((SCANS_PER_CHUNK, size, size), dtype=np.uint16)
    noise = _noise()
    for index, region in enumerate(regions):
        image = _draw_scan(rng, size, int(region))
        image += noise[rng.integers(0, _NOISE_TABLE_SIZE, (size, size), dtype=np.uint16)]
        np.clip(image, 0, MAX_VALUE, out=image)
        image *= fov  # outside the reconstruction circle the scanner writes a constant (here 0)
        scans[index] = image
    return scans, regions


def synthetic_scans(n: int, size: int = 512, seed: int = 0) -> Dataset:
    """``n`` deterministic CT-like slices, ``(n, size, size, 1)`` uint16 with values 0..4095 (12 bits).

    Labels cycle through head, chest and abdomen. 16-bit PNG compresses them about as well as a real CT
    slice (``benchmarks/large_images.py`` compares them with ``693_UNCR.dcm`` side by side). The first k
    scans do not depend on n.
    """
    for name, value, least in (("n", n, 1), ("size", size, 16)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise DatasetError(f"{name} must be a whole number of at least {least}, got {value!r}")
    n, size = int(n), int(size)
    images = np.empty((n, size, size, 1), dtype=np.uint16)
    labels = np.empty(n, dtype=np.int64)
    fov = _field_of_view(size).astype(np.int16)
    _noise()  # built once, before the threads share it

    def make_chunk(chunk: int) -> None:
        start = chunk * SCANS_PER_CHUNK
        stop = min(start + SCANS_PER_CHUNK, n)
        scans, regions = _scan_chunk(seed, chunk, size, fov)
        images[start:stop, :, :, 0] = scans[: stop - start]
        labels[start:stop] = regions[: stop - start]

    make_chunks_in_threads(make_chunk, -(-n // SCANS_PER_CHUNK))
    source = (
        f"{SCAN_PREFIX} CT-like scans: {n:,} generated {size}x{size} 16-bit greyscale slices, {BITS_USED} bits "
        f"used (seed {seed}), whose 16-bit PNG compresses like the real CT slice {REFERENCE_SLICE}"
    )
    return Dataset(images=images, labels=labels, class_names=list(SCAN_CLASS_NAMES), source=source)


# -- real slices -------------------------------------------------------------------------------------------
def real_slice_path(name: str = REFERENCE_SLICE) -> Path:
    """A file of the installed ``pydicom-data`` package; DatasetError if it is not installed. No download."""
    try:
        from pydicom.data import get_testdata_file

        found = get_testdata_file(name, download=False)
    except ImportError:
        found = None
    except Exception as error:  # noqa: BLE001 - pydicom's data manager reports a missing file in many ways
        raise DatasetError(f"cannot find {name} in pydicom-data ({error}); run `make setup`") from None
    if not found:
        raise DatasetError(
            f"{name} is not installed: it comes with the PyPI package pydicom-data, a dependency of this "
            "project (run `make setup`, or `pip install pydicom-data`); nothing is downloaded at run time"
        )
    return Path(found)


def real_slices(names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Real CT slices from pydicom-data, ``(h, w)`` uint16 stored values (signed ones + 32768), by file name."""
    names = names or tuple(name for name, _ in REAL_CT_SLICES)
    return {name: read_dicom(real_slice_path(name)) for name in names}


# -- compression ---------------------------------------------------------------------------------------------
def compression_ratios(images: dict[str, np.ndarray]) -> pd.DataFrame:
    """Raw bytes, PNG and lossless JPEG 2000 sizes and ratios (raw / compressed) of each named image: PNG as
    the disk store writes it (Pillow's defaults, 16-bit greyscale kept), JPEG 2000 as ``helpers.codecs``."""
    # Imported here, where ratios are measured: drawing scans needs neither pandas nor the encoders.
    import pandas as pd

    from helpers.codecs import get_codec

    # Not the codecs' "png": that is libpng through imagecodecs, whose files differ from Pillow's (a few
    # per cent larger on these images), and this ratio is meant to be the one the disk store's files have.
    from helpers.stores.image_files import encode_png

    jpeg2000 = get_codec("jpeg2000")

    rows = []
    for name, image in images.items():
        png, j2k = len(encode_png(image)), len(jpeg2000.encode(image))
        rows.append({"image": name, "shape": "x".join(map(str, np.squeeze(image).shape)),
                     "raw_bytes": image.nbytes, "png_bytes": png, "png_ratio": image.nbytes / png,
                     "jpeg2000_bytes": j2k, "jpeg2000_ratio": image.nbytes / j2k})
    return pd.DataFrame(rows)
