"""Images, labels and comparisons the store tests share: made here, deterministic, never downloaded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st

from helpers.core.measure import disk_usage


def random_images(n: int, shape=(32, 32, 3), dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """Noise: what no codec can shrink, so every byte of every image is checked."""
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(0, info.max + 1, size=(n, *shape), dtype=dtype)


def smooth_images(n: int, shape, dtype, seed: int = 0) -> np.ndarray:
    """Gradients with a little noise: what lossy codecs are made for (noise alone they cannot keep)."""
    rng = np.random.default_rng(seed)
    height, width = shape[:2]
    ramp = np.add.outer(np.arange(height), np.arange(width)) / (height + width)
    peak = np.iinfo(dtype).max
    images = (ramp[None, :, :] * rng.uniform(0.3, 1.0, size=(n, 1, 1)) * peak).astype(np.float64)
    images = images.reshape(n, height, width, *([1] * (len(shape) - 2)))
    images = np.broadcast_to(images, (n, *shape)) + rng.normal(0, peak / 200, size=(n, *shape))
    return np.clip(images, 0, peak).astype(dtype)


def smooth_image(shape=(32, 32, 3)) -> np.ndarray:
    """An image PNG compresses well, so damage to its compressed bytes decodes to other pixels."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return np.stack([rows * 7, cols * 5, rows + cols], axis=-1).astype(np.uint8)[..., : shape[2]]


def patterned_images(n: int, shape=(32, 32, 3), seed: int = 0) -> np.ndarray:
    """Distinct images, cheap to make in bulk: a random tile shifted by each image's index."""
    tile = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    offsets = (np.arange(n, dtype=np.uint64) * 7919 % 256).astype(np.uint8)
    return tile[np.newaxis] + offsets.reshape(n, *([1] * len(shape)))


def labels_for(n: int) -> np.ndarray:
    return (np.arange(n, dtype=np.int64) * 31) % 10 - 2


def small_batch(n: int = 6, shape=(16, 16, 3)) -> tuple[np.ndarray, np.ndarray]:
    """A few noise images and labels around zero: enough to see what a codec or a filter wrote."""
    return np.random.default_rng(3).integers(0, 256, size=(n, *shape), dtype=np.uint8), np.arange(n) - 2


def images_with_extreme_labels(n: int, shape=(32, 32, 3), dtype=np.uint8, seed: int = 0):
    """Noise images with labels over the whole int64 range, the first ones from one digit to the longest."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, np.iinfo(dtype).max + 1, size=(n, *shape), dtype=dtype)
    labels = rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64)
    extremes = [0, 7, -1, -(2**63), 2**63 - 1][:n]
    labels[: len(extremes)] = extremes
    return images, labels


#: A colour batch and a 16-bit greyscale one: what the interoperability tests write and read back elsewhere.
INTEROP_BATCHES = [((32, 32, 3), np.uint8), ((12, 10), np.uint16)]


def from_bytes(values, shape, dtype) -> np.ndarray:
    """Images rebuilt from a sequence of raw little-endian byte strings, as a user of the format would."""
    return np.stack([np.frombuffer(value, np.dtype(dtype).newbyteorder("<")).reshape(shape) for value in values])


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """The same dtype, shape and values (assert_array_equal alone lets dtypes differ)."""
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def snapshot(paths: list[Path]) -> dict[Path, tuple[int, str]]:
    """Each file's modification time and the hash of its bytes: what a reader must leave as it was."""
    return {path: (path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()) for path in paths}


def cut(images: np.ndarray, labels: np.ndarray, sizes: list[int]):
    """(images, labels) chunks of these sizes, in order."""
    start = 0
    for size in sizes:
        yield images[start : start + size], labels[start : start + size]
        start += size
    assert start == len(images)


def file_bytes(store) -> dict[str, bytes]:
    """Every file of the store's batch by its path inside the batch (a batch of one file by its name)."""
    if store.batch_path.is_file():
        return {store.batch_path.name: store.batch_path.read_bytes()}
    return {str(path.relative_to(store.batch_path)): path.read_bytes() for path in store.batch_path.rglob("*")
            if path.is_file()}


def allocated_bytes(path: Path) -> int:
    """Disk space a file or folder tree takes (blocks actually allocated), 0 if it does not exist."""
    return disk_usage(path).allocated if Path(path).exists() else 0


image_shapes = st.one_of(
    st.tuples(st.integers(1, 12), st.integers(1, 12)),
    st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 2, 3, 4])),
)


@st.composite
def batches(draw):
    """A small batch of any shape and dtype every store takes, labels over the whole int64 range."""
    dtype = draw(st.sampled_from([np.uint8, np.uint16]))
    shape = draw(image_shapes)
    if dtype == np.uint16 and len(shape) == 3:
        shape = shape[:2] + (1,)
    n = draw(st.integers(1, 6))
    images = draw(hnp.arrays(dtype, (n, *shape), elements=st.integers(0, np.iinfo(dtype).max)))
    labels = draw(hnp.arrays(np.int64, n, elements=st.integers(-(2**63), 2**63 - 1)))
    return images, labels
