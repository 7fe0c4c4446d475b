"""The synthetic stand-in for CIFAR-10: CIFAR-shaped images whose PNG size matches real photos.

When CIFAR-10 is not on disk (``make data`` downloads it; nothing else does), ``synthetic`` draws ten
classes of shapes on natural-looking backgrounds, so that the storage numbers stay meaningful; its
``source`` starts with "SYNTHETIC" so the report can say so loudly. ``synthetic_range`` and
``synthetic_chunks`` give the same images a piece at a time, for conversions larger than memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from helpers.core.errors import DatasetError
from helpers.datasets.base import SYNTHETIC_PREFIX, Dataset, make_chunks_in_threads
from helpers.datasets.cifar10 import IMAGE_SHAPE

SYNTHETIC_CLASS_NAMES = [
    "disc", "ring", "square", "triangle", "diamond", "cross", "stripes", "checks", "dots", "crescent",
]
# One colour per class, so that the classes differ in colour as well as in shape.
_CLASS_COLOURS = np.array(
    [
        [220, 60, 50], [240, 170, 40], [60, 170, 70], [50, 110, 220], [160, 70, 200],
        [235, 235, 225], [30, 30, 40], [200, 120, 90], [60, 200, 200], [240, 100, 170],
    ],
    dtype=np.float32,
)
SIDE = 32
# Images are made in fixed chunks, each from its own seeded generator, so that synthetic(k) is a prefix of
# synthetic(n) for k < n, and the work stays in the CPU cache.
CHUNK_IMAGES = 256
# Tuned with benchmarks/synthetic_png_size.py so that Pillow's default PNG averages CIFAR-10's 2,270 bytes.
_COARSE_SIZES = (2, 4, 8)  # colour and light vary slowly: per-channel grids, refined twice
_DETAIL_SIZE = 16  # brightness detail, shared by the channels
_COARSE_CHROMA = 0.35  # how much the coarse grids differ between channels
_CONTRAST_RANGE = (3.0, 31.0)
_FINE_DETAIL_RANGE = (0.05, 0.5)
_TEXTURE = 10.0
_NOISE_RANGE = (0.3, 2.0)


def _bilinear_taps(size: int, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``side`` output pixels: the two cells of ``size`` it blends and the second one's weight."""
    position = np.clip((np.arange(side) + 0.5) * size / side - 0.5, 0, size - 1)
    low = np.floor(position).astype(np.intp)
    return low, np.minimum(low + 1, size - 1), (position - low).astype(np.float32)


def _upsample(grids: np.ndarray, side: int) -> np.ndarray:
    """(..., s, s) grids to (..., side, side), bilinear. Gathers rather than matrix products: BLAS threads
    cost more than they save on matrices this small, and BLAS rounding may differ between builds."""
    low, high, weight = _bilinear_taps(grids.shape[-1], side)
    rows = grids.take(low, axis=-1)
    rows += (grids.take(high, axis=-1) - rows) * weight
    columns = rows.take(low, axis=-2)
    columns += (rows.take(high, axis=-2) - columns) * weight[:, None]
    return columns


def _unit_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform noise of variance 1: several times faster to draw than normal noise, and as good here."""
    return (rng.random(shape, dtype=np.float32) - np.float32(0.5)) * np.float32(12**0.5)


def _shape_distance(label: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance (positive inside) to class ``label``'s shape, in units of the shape's radius."""
    radius = np.hypot(x, y)
    box = 1.0 - np.maximum(np.abs(x), np.abs(y))
    if label == 0:  # disc
        return 1.0 - radius
    if label == 1:  # ring
        return 0.28 - np.abs(radius - 0.72)
    if label == 2:  # square
        return box - 0.15
    if label == 3:  # triangle
        return 0.5 - np.maximum(np.maximum(y, -0.866 * x - 0.5 * y), 0.866 * x - 0.5 * y)
    if label == 4:  # diamond
        return (1.0 - np.abs(x) - np.abs(y)) * 0.7071
    if label == 5:  # cross
        bar = np.minimum(0.3 - np.abs(x), 1.0 - np.abs(y))
        return np.maximum(bar, np.minimum(0.3 - np.abs(y), 1.0 - np.abs(x)))
    if label == 6:  # stripes
        return np.minimum(box, (0.25 - np.abs((x * 1.5) % 1.0 - 0.5)) / 1.5)
    if label == 7:  # checks
        return np.minimum(box, 0.25 * np.sin(np.pi * 1.5 * x) * np.sin(np.pi * 1.5 * y))
    if label == 8:  # dots
        cell_x = (x * 1.5 + 0.5) % 1.0 - 0.5
        cell_y = (y * 1.5 + 0.5) % 1.0 - 0.5
        return np.minimum(box, (0.32 - np.hypot(cell_x, cell_y)) / 1.5)
    return np.minimum(1.0 - radius, np.hypot(x - 0.5, y) - 0.8)  # crescent


def _synthetic_chunk(seed: int, chunk: int) -> np.ndarray:
    """CHUNK_IMAGES images (m, 32, 32, 3) uint8 for one chunk; labels are the global index mod 10.

    The generator is drawn from in one fixed order (background, shape, shape colour, grain): changing it
    would change every image.
    """
    rng = np.random.default_rng([seed, chunk])
    count = CHUNK_IMAGES
    first_label = (chunk * CHUNK_IMAGES) % len(SYNTHETIC_CLASS_NAMES)
    labels = (first_label + np.arange(count)) % len(SYNTHETIC_CLASS_NAMES)
    background, offset, contrast, grain = _background(rng, count)
    coverage = _shape_coverage(rng, count, first_label)

    colour = _CLASS_COLOURS[labels] + rng.uniform(-30, 30, (count, 3)).astype(np.float32)
    colour += np.float32(0.5) - grain[:, :, 0, 0] / 2  # the same rounding and centring as the background
    # The shape's texture is the background turned a quarter, which looks unrelated to it.
    texture = background[:, 1].transpose(0, 2, 1)[:, ::-1] - offset[:, 1]
    texture *= np.float32(_TEXTURE) / contrast[:, 0]
    foreground = colour[:, :, None, None] + texture[:, None]
    foreground -= background
    foreground *= coverage[:, None]
    background += foreground

    # Sensor grain, uniform per pixel and channel, of a strength that differs between images.
    background += rng.integers(0, 256, background.shape, dtype=np.uint8) * (grain / np.float32(256))
    np.clip(background, 0, 255, out=background)
    images = np.empty((count, SIDE, SIDE, 3), dtype=np.uint8)
    np.copyto(images, background.transpose(0, 2, 3, 1), casting="unsafe")
    return images


def _background(rng: np.random.Generator, count: int) -> tuple[np.ndarray, ...]:
    """``count`` backgrounds (count, 3, 32, 32) float32, with the offset, contrast and grain strength each
    was drawn with (the shape and the grain are made to match them).

    A 1/f-like field, each octave adding detail to the coarser ones. Colour and light come from per-channel
    coarse grids (channels share most of them, as a scene's colours do); the finer detail is brightness,
    the same for the three channels. Bilinear upsampling is linear with weights summing to one, so contrast
    and brightness are applied to the small grids, not to every pixel.
    """
    contrast = rng.uniform(*_CONTRAST_RANGE, (count, 1, 1, 1)).astype(np.float32)
    brightness = rng.uniform(40, 200, (count, 3, 1, 1)).astype(np.float32)
    grain = rng.uniform(*_NOISE_RANGE, (count, 1, 1, 1)).astype(np.float32) * np.float32(12**0.5)
    fine = rng.uniform(*_FINE_DETAIL_RANGE, (count, 1, 1, 1)).astype(np.float32)
    coarse = np.zeros((count, 3, 1, 1), dtype=np.float32)
    for size in (*_COARSE_SIZES, _DETAIL_SIZE):
        coarse = _upsample(coarse, size)
        coarse += _unit_noise(rng, (count, 1, size, size))
        if size in _COARSE_SIZES:
            coarse += _COARSE_CHROMA * _unit_noise(rng, (count, 3, size, size))
    coarse *= contrast
    # + 0.5 so that the final cast rounds; - grain / 2 centres the grain added at the end.
    offset = brightness + np.float32(0.5) - grain / 2
    coarse += offset
    background = _upsample(coarse, SIDE)
    background += (fine * contrast) * _unit_noise(rng, (count, 1, SIDE, SIDE))
    return background, offset, contrast, grain


def _shape_coverage(rng: np.random.Generator, count: int, first_label: int) -> np.ndarray:
    """How much of each pixel (count, 32, 32), 0 to 1, the image's shape covers: one shape per image, of
    its class, placed, sized and turned at random, with soft (antialiased) edges."""
    centre_x, centre_y = (rng.uniform(11, 21, (2, count, 1, 1))).astype(np.float32)
    radius = rng.uniform(7, 12, (count, 1, 1)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi, (count, 1, 1)).astype(np.float32)
    grid_y, grid_x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) + np.float32(0.5)
    offset_x, offset_y = grid_x - centre_x, grid_y - centre_y
    cos, sin = np.cos(angle), np.sin(angle)
    local_x = (cos * offset_x + sin * offset_y) / radius
    local_y = (cos * offset_y - sin * offset_x) / radius
    coverage = np.empty((count, SIDE, SIDE), dtype=np.float32)
    for label in range(len(SYNTHETIC_CLASS_NAMES)):
        of_class = slice((label - first_label) % len(SYNTHETIC_CLASS_NAMES), None, len(SYNTHETIC_CLASS_NAMES))
        coverage[of_class] = _shape_distance(label, local_x[of_class], local_y[of_class]) * radius[of_class]
    np.clip(coverage + np.float32(0.5), 0, 1, out=coverage)
    return coverage


def synthetic(n: int, seed: int = 0) -> Dataset:
    """``n`` deterministic CIFAR-shaped images of ten shape classes on natural-looking backgrounds.

    PNG compresses them about as well as CIFAR-10's photos (mean near 2,270 bytes with Pillow's defaults),
    so storage measurements on them mean something. Label of image i is i mod 10; the first k images do
    not depend on n.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DatasetError(f"n must be a positive number of images, got {n!r}")
    n = int(n)
    images = np.empty((n, *IMAGE_SHAPE), dtype=np.uint8)

    def make_chunk(chunk: int) -> None:
        start = chunk * CHUNK_IMAGES
        stop = min(start + CHUNK_IMAGES, n)
        images[start:stop] = _synthetic_chunk(seed, chunk)[: stop - start]

    make_chunks_in_threads(make_chunk, -(-n // CHUNK_IMAGES))
    labels = np.arange(n, dtype=np.int64) % len(SYNTHETIC_CLASS_NAMES)
    source = (
        f"{SYNTHETIC_PREFIX} stand-in: {n:,} generated images of {len(SYNTHETIC_CLASS_NAMES)} shape classes "
        f"(seed {seed}), with PNG sizes like CIFAR-10's photos"
    )
    return Dataset(images=images, labels=labels, class_names=list(SYNTHETIC_CLASS_NAMES), source=source)


# --- the same images, a piece at a time ---------------------------------------------------------------


def synthetic_range(start: int, stop: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images ``start`` to ``stop - 1`` of the synthetic set and their labels, made in this thread only.

    The same pixels as ``synthetic(n, seed).images[start:stop]`` for any ``n >= stop``: each of
    ``synthetic``'s fixed chunks comes from its own generator, so only the chunks that overlap the range
    are made. One thread, so that many worker processes can each make their own ranges.
    """
    if isinstance(start, bool) or isinstance(stop, bool) or not 0 <= int(start) < int(stop):
        raise DatasetError(f"expected 0 <= start < stop, got start={start!r}, stop={stop!r}")
    start, stop = int(start), int(stop)
    first_chunk, last_chunk = start // CHUNK_IMAGES, (stop - 1) // CHUNK_IMAGES
    made = np.concatenate([_synthetic_chunk(seed, chunk) for chunk in range(first_chunk, last_chunk + 1)])
    offset = first_chunk * CHUNK_IMAGES
    labels = np.arange(start, stop, dtype=np.int64) % len(SYNTHETIC_CLASS_NAMES)
    return np.ascontiguousarray(made[start - offset : stop - offset]), labels


def synthetic_chunks(
    n: int, chunk_size: int = 10_000, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``synthetic(n, seed)`` as ``(images, labels)`` chunks of ``chunk_size`` images, made as they are
    taken: image i is the same as in ``synthetic``, and only one chunk is in memory at a time."""
    for name, value in (("n", n), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise DatasetError(f"{name} must be a positive number of images, got {value!r}")
    for start in range(0, int(n), int(chunk_size)):
        yield synthetic_range(start, min(start + int(chunk_size), int(n)), seed)
