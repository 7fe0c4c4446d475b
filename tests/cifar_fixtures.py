"""Tiny CIFAR-10 folders in the two official layouts, written byte for byte as the real files are.

The python batches are written the way the official ones were, by Python 2's cPickle (protocol 2):
dicts whose keys and strings are Python 2 ``str`` (read back as bytes), and ``data`` a numpy uint8 array
pickled through ``numpy.core.multiarray._reconstruct``. Python 3's pickle cannot write Python 2 strings, so
this module emits those few opcodes itself. Each image row is 3072 bytes: the red plane, then green, then
blue, each 32 x 32 in row order. The binary batches are rows of one label byte followed by those 3072.

Usage in a test::

    folder, images, labels = write_python_batches(tmp_path)   # training set, in file order
    test_images, test_labels = fixture_arrays().test           # what split="test" must return
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import tarfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

CLASS_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]
TRAIN_BATCHES = [f"data_batch_{number}" for number in range(1, 6)]
TEST_BATCH = "test_batch"
# Known pixels in the first training image, to check channel order and orientation by value.
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
KNOWN_PIXELS = {(0, 0): RED, (0, 1): GREEN, (1, 0): BLUE, (31, 31): (1, 2, 3)}


class CifarBatches(NamedTuple):
    folder: Path  # the batches folder (cifar-10-batches-py or cifar-10-batches-bin)
    images: np.ndarray  # the training images (5 * images_per_batch, 32, 32, 3) uint8, in file order
    labels: np.ndarray  # their labels, int64


class FixtureArrays(NamedTuple):
    train: tuple[np.ndarray, np.ndarray]  # (images, labels), data_batch_1..5 in order
    test: tuple[np.ndarray, np.ndarray]  # (images, labels) of test_batch
    batches: list[tuple[np.ndarray, np.ndarray]]  # per file: data_batch_1..5 then test_batch


def fixture_arrays(images_per_batch: int = 4, seed: int = 0) -> FixtureArrays:
    """The images and labels the writers put in each batch file (deterministic in the arguments)."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(len(TRAIN_BATCHES) + 1):
        images = rng.integers(0, 256, (images_per_batch, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, len(CLASS_NAMES), images_per_batch).astype(np.int64)
        batches.append((images, labels))
    for (row, column), colour in KNOWN_PIXELS.items():
        batches[0][0][0, row, column] = colour
    train_images = np.concatenate([images for images, _ in batches[:-1]])
    train_labels = np.concatenate([labels for _, labels in batches[:-1]])
    return FixtureArrays(train=(train_images, train_labels), test=batches[-1], batches=batches)


def image_rows(images: np.ndarray) -> np.ndarray:
    """Images (n, 32, 32, 3) as CIFAR rows (n, 3072): all red values, then all green, then all blue."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), -1)


# --- a Python 2 style pickle ---------------------------------------------------------------------------


def _py2_string(data: bytes) -> bytes:
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data  # SHORT_BINSTRING
    return b"T" + struct.pack("<i", len(data)) + data  # BINSTRING


def _py2_int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])  # BININT1
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)  # BININT2
    return b"J" + struct.pack("<i", value)  # BININT


def _py2_uint8_array(array: np.ndarray) -> bytes:
    """What Python 2 numpy pickled for a C-ordered uint8 array."""
    shape = b"".join(_py2_int(size) for size in array.shape) + {1: b"\x85", 2: b"\x86"}[array.ndim]
    dtype = (
        b"cnumpy\ndtype\n" + _py2_string(b"u1") + _py2_int(0) + _py2_int(1) + b"\x87R"
        + b"(" + _py2_int(3) + _py2_string(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + _py2_int(0) + b"tb"
    )
    return (
        b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + _py2_int(0) + b"\x85"
        + _py2_string(b"b") + b"\x87R"
        + b"(" + _py2_int(1) + shape + dtype + b"\x89" + _py2_string(array.tobytes()) + b"tb"
    )


def _py2_value(value: object) -> bytes:
    if isinstance(value, np.ndarray):
        return _py2_uint8_array(value)
    if isinstance(value, bytes):
        return _py2_string(value)
    if isinstance(value, int):
        return _py2_int(value)
    if isinstance(value, list):
        return b"](" + b"".join(_py2_value(item) for item in value) + b"e"  # EMPTY_LIST MARK ... APPENDS
    raise TypeError(f"no Python 2 pickle for {type(value).__name__}")


def py2_pickle(mapping: dict[bytes, object]) -> bytes:
    """A protocol 2 pickle of a dict with str keys, as Python 2's cPickle wrote the official batches."""
    items = b"".join(_py2_value(key) + _py2_value(value) for key, value in mapping.items())
    return b"\x80\x02}(" + items + b"u."


# --- the two layouts -------------------------------------------------------------------------------------


def write_python_batches(root: Path, images_per_batch: int = 4, seed: int = 0) -> CifarBatches:
    """``root/cifar-10-batches-py`` with batches.meta, data_batch_1..5 and test_batch."""
    arrays = fixture_arrays(images_per_batch, seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        b"num_cases_per_batch": images_per_batch,
        b"label_names": [name.encode() for name in CLASS_NAMES],
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(py2_pickle(meta))
    for index, (name, (images, labels)) in enumerate(zip([*TRAIN_BATCHES, TEST_BATCH], arrays.batches)):
        title = f"training batch {index + 1} of 5" if name != TEST_BATCH else "testing batch 1 of 1"
        batch = {
            b"batch_label": title.encode(),
            b"labels": [int(label) for label in labels],
            b"data": image_rows(images),
            b"filenames": [f"image_{index}_{row}.png".encode() for row in range(len(images))],
        }
        (folder / name).write_bytes(py2_pickle(batch))
    (folder / "readme.html").write_text("<p>CIFAR-10 test fixture</p>\n")
    return CifarBatches(folder, *arrays.train)


def write_binary_batches(root: Path, images_per_batch: int = 4, seed: int = 0) -> CifarBatches:
    """``root/cifar-10-batches-bin`` with batches.meta.txt, data_batch_1..5.bin and test_batch.bin."""
    arrays = fixture_arrays(images_per_batch, seed)
    folder = Path(root) / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    # The official file ends with blank lines, and readers must cope with them.
    (folder / "batches.meta.txt").write_text("\n".join(CLASS_NAMES) + "\n\n")
    for name, (images, labels) in zip([*TRAIN_BATCHES, TEST_BATCH], arrays.batches):
        rows = np.concatenate([labels.astype(np.uint8)[:, None], image_rows(images)], axis=1)
        (folder / f"{name}.bin").write_bytes(rows.tobytes())
    (folder / "readme.html").write_text("<p>CIFAR-10 test fixture</p>\n")
    return CifarBatches(folder, *arrays.train)


def write_python_archive(path: Path, images_per_batch: int = 2, seed: int = 0) -> tuple[Path, str]:
    """A cifar-10-python.tar.gz like the official one (top folder cifar-10-batches-py); (path, md5)."""
    path = Path(path)
    staging = path.parent / f".{path.name}.contents"
    batches = write_python_batches(staging, images_per_batch, seed)
    with tarfile.open(path, "w:gz") as archive:
        archive.add(batches.folder, arcname="cifar-10-batches-py")
    shutil.rmtree(staging)
    return path, hashlib.md5(path.read_bytes()).hexdigest()
