"""The images the experiments store: CIFAR-10 from its official files, or a synthetic stand-in.

CIFAR-10 comes in two official layouts, both read here: the python batches (``cifar-10-batches-py``,
pickled dicts) and the binary batches (``cifar-10-batches-bin``, fixed-size rows). Unpickling can run
arbitrary code, so the python batches go through an unpickler that only rebuilds what a genuine batch
holds: a uint8 array, lists, numbers and strings.

When CIFAR-10 is not on disk (``make data`` downloads it; nothing else does), ``synthetic`` draws
CIFAR-shaped images whose PNG size matches real photos, so the storage numbers stay meaningful; its
``source`` starts with "SYNTHETIC" so the report can say so loudly.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import pickle
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm  # plain text: tqdm.auto needs ipywidgets inside notebooks

from helpers.datasets.base import SYNTHETIC_PREFIX, Dataset, is_synthetic_source, make_chunks_in_threads

__all__ = ["Dataset", "is_synthetic_source", "load", "load_cifar10", "load_folder", "download_cifar10", "synthetic",
           "synthetic_scans", "SYNTHETIC_PREFIX"]
from helpers.core.errors import DatasetError
from helpers.core.files import fsync_tree, remove

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
PYTHON_FOLDER = "cifar-10-batches-py"
BINARY_FOLDER = "cifar-10-batches-bin"
TRAIN_BATCHES = tuple(f"data_batch_{number}" for number in range(1, 6))
TEST_BATCH = "test_batch"
PYTHON_META = "batches.meta"
BINARY_META = "batches.meta.txt"
SPLITS = ("train", "test")

IMAGE_SHAPE = (32, 32, 3)
PIXELS_PER_IMAGE = 32 * 32 * 3  # 3072: a red plane, a green plane, a blue plane, 32 x 32 each
BINARY_ROW = 1 + PIXELS_PER_IMAGE  # label byte first
CIFAR10_TRAIN_SIZE = 50_000

DATA_ENV = "IMAGE_REPORT_DATA"
OFFLINE_ENV = "IMAGE_REPORT_OFFLINE"
SOURCES = ("auto", "cifar10", "synthetic", "scans")
CONNECT_TIMEOUT_SECONDS = 10.0
DOWNLOAD_CHUNK_BYTES = 1 << 20


def default_data_root() -> Path:
    """Where CIFAR-10 is looked for and downloaded to: $IMAGE_REPORT_DATA, else the project's data/raw."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(__file__).resolve().parents[2] / "data" / "raw"


def _how_to_get_cifar10(root: Path) -> str:
    return (
        f"To get CIFAR-10 run `make data`, or download {CIFAR10_URL} (from {CIFAR10_PAGE}) by hand and "
        f"extract it into {root}, so that {root / PYTHON_FOLDER / 'data_batch_1'} exists "
        f"(the binary version, {BINARY_FOLDER}, works too)"
    )


# --- reading the official files -------------------------------------------------------------------


def _find_batches_folder(path: Path) -> tuple[Path, str] | None:
    """The batches folder at or directly below ``path`` and its layout ("python" or "binary"), or None."""
    if not path.is_dir():
        return None
    if (path / PYTHON_META).exists() or (path / TRAIN_BATCHES[0]).exists():
        return path, "python"
    if (path / BINARY_META).exists() or (path / f"{TRAIN_BATCHES[0]}.bin").exists():
        return path, "binary"
    if (path / PYTHON_FOLDER).is_dir():
        return path / PYTHON_FOLDER, "python"
    if (path / BINARY_FOLDER).is_dir():
        return path / BINARY_FOLDER, "binary"
    return None


def _batch_names(split: str, layout: str) -> list[str]:
    names = list(TRAIN_BATCHES) if split == "train" else [TEST_BATCH]
    return names if layout == "python" else [f"{name}.bin" for name in names]


def _missing_files(folder: Path, layout: str) -> list[str]:
    meta = PYTHON_META if layout == "python" else BINARY_META
    expected = [meta, *_batch_names("train", layout), *_batch_names("test", layout)]
    return [name for name in expected if not (folder / name).is_file()]


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise DatasetError(
            f"{path} is missing: the CIFAR-10 folder {path.parent} is incomplete "
            f"(delete it and run `make data`, or extract the official archive again)"
        )


# Only the callables that rebuild a genuine batch's contents are reachable from a pickle, and each checks
# its arguments: an ndarray of plain numbers, a numpy dtype of plain numbers, and bytes from a Python 2
# string. Anything else a pickle names (os.system, builtins.eval, ...) is refused before it can be called.
_PLAIN_NUMBER_DTYPES = {"u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8"}


def _safe_reconstruct(subtype: object, shape: object, typecode: object) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to rebuild an array of type {subtype!r}")
    return np.ndarray((0,), dtype=np.uint8)  # its __setstate__ then fills in shape, dtype and bytes


def _safe_dtype(spec: object, align: object = False, copy: object = True) -> np.dtype:
    name = spec.decode("ascii", "replace") if isinstance(spec, bytes) else spec
    if name not in _PLAIN_NUMBER_DTYPES:
        raise pickle.UnpicklingError(f"refusing numpy dtype {name!r}: a CIFAR-10 batch holds only integers")
    return np.dtype(name, bool(align), bool(copy))


def _safe_frombuffer(buffer: object, dtype: object, shape: object, order: object) -> np.ndarray:
    if not isinstance(dtype, np.dtype) or dtype.str[1:] not in _PLAIN_NUMBER_DTYPES:
        raise pickle.UnpicklingError(f"refusing numpy dtype {dtype!r}: a CIFAR-10 batch holds only integers")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order).copy()


def _latin1_bytes(text: object, encoding: object = "utf-8") -> bytes:
    # Python 3 writes bytes under pickle protocol 2 as _codecs.encode(str, "latin1").
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,  # how Python 2 numpy named it
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,  # how numpy 2 names it
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _safe_dtype,
    ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
    ("_codecs", "encode"): _latin1_bytes,
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it asks for {module}.{name}, which a genuine CIFAR-10 batch never does "
                f"(refused without running it)"
            ) from None


def _unpickle_batch(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            # encoding="bytes": the official batches were written by Python 2, whose str is bytes.
            content = _BatchUnpickler(handle, encoding="bytes").load()
    except OSError as error:
        raise DatasetError(f"{path}: cannot read it ({error})") from None
    except Exception as error:  # noqa: BLE001 - a malformed pickle fails in many ways, all "not a batch"
        raise DatasetError(f"{path} is not a CIFAR-10 python batch: {error}") from None
    if not isinstance(content, dict):
        raise DatasetError(f"{path} is not a CIFAR-10 python batch: it holds a {type(content).__name__}")
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in content.items()}


def _check_labels(labels: np.ndarray, class_count: int, path: Path) -> None:
    outside = (labels < 0) | (labels >= class_count)
    if outside.any():
        row = int(np.argmax(outside))
        raise DatasetError(
            f"{path}: row {row} has label {int(labels[row])}, outside 0..{class_count - 1} "
            f"({class_count} class names in the meta file)"
        )


def _planes_to_images(rows: np.ndarray) -> np.ndarray:
    """Rows of R plane, G plane, B plane (channel first) to images (n, 32, 32, 3)."""
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _read_python_batch(path: Path, class_count: int) -> tuple[np.ndarray, np.ndarray]:
    _require_file(path)
    batch = _unpickle_batch(path)
    if "data" not in batch or "labels" not in batch:
        raise DatasetError(
            f"{path} is not a CIFAR-10 python batch: keys {sorted(map(str, batch))}, expected data and labels"
        )
    data = batch["data"]
    if isinstance(data, (bytes, bytearray)):  # a batch re-saved without numpy
        if len(data) % PIXELS_PER_IMAGE:
            raise DatasetError(
                f"{path}: data is {len(data)} bytes, not a whole number of {PIXELS_PER_IMAGE}-byte rows"
            )
        data = np.frombuffer(data, dtype=np.uint8).reshape(-1, PIXELS_PER_IMAGE)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        found = type(data).__name__
        if isinstance(data, np.ndarray):
            found = f"{data.dtype} array of shape {data.shape}"
        raise DatasetError(f"{path}: data is a {found}; expected uint8 rows of {PIXELS_PER_IMAGE} bytes")
    if data.shape[1] != PIXELS_PER_IMAGE:
        raise DatasetError(
            f"{path}: rows are {data.shape[1]} bytes; a CIFAR-10 image is {PIXELS_PER_IMAGE} bytes "
            f"(32 x 32 pixels x 3 colour planes)"
        )
    try:
        labels = np.asarray(batch["labels"])
    except (TypeError, ValueError, OverflowError):
        labels = np.asarray([], dtype=object)
    if labels.dtype.kind not in "iu":
        raise DatasetError(f"{path}: labels are not a list of integers")
    labels = labels.astype(np.int64)
    if labels.shape != (len(data),):
        raise DatasetError(f"{path}: {len(data)} images but labels of shape {labels.shape}")
    _check_labels(labels, class_count, path)
    return _planes_to_images(data), labels


def _read_binary_batch(path: Path, class_count: int) -> tuple[np.ndarray, np.ndarray]:
    _require_file(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % BINARY_ROW:
        raise DatasetError(
            f"{path}: {raw.size} bytes is not a whole number of rows of {BINARY_ROW} bytes "
            f"(1 label byte + {PIXELS_PER_IMAGE} pixel bytes); the file is truncated or not a CIFAR-10 batch"
        )
    rows = raw.reshape(-1, BINARY_ROW)
    labels = rows[:, 0].astype(np.int64)
    _check_labels(labels, class_count, path)
    return _planes_to_images(rows[:, 1:]), labels


def _read_class_names(folder: Path, layout: str) -> list[str]:
    if layout == "python":
        path = folder / PYTHON_META
        _require_file(path)
        names = _unpickle_batch(path).get("label_names")
        if not isinstance(names, list) or not all(isinstance(name, (bytes, str)) for name in names):
            raise DatasetError(f"{path} has no list of label_names")
        names = [name.decode("utf-8") if isinstance(name, bytes) else name for name in names]
    else:
        path = folder / BINARY_META
        _require_file(path)
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"{path} names no classes")
    return names


def load_cifar10(path: Path | str, split: str = "train") -> Dataset:
    """CIFAR-10 from its official python or binary batches, images ``(n, 32, 32, 3)`` uint8 in file order.

    ``path`` is the batches folder itself or a folder holding ``cifar-10-batches-py`` or
    ``cifar-10-batches-bin``. ``split`` is "train" (data_batch_1..5, 50,000 images) or "test" (test_batch).
    """
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"no CIFAR-10 folder at {path}. {_how_to_get_cifar10(path)}")
    found = _find_batches_folder(path)
    if found is None:
        raise DatasetError(
            f"{path} holds no CIFAR-10 batches: expected {PYTHON_FOLDER} or {BINARY_FOLDER} in it, or "
            f"{TRAIN_BATCHES[0]} / {TRAIN_BATCHES[0]}.bin directly. {_how_to_get_cifar10(path)}"
        )
    folder, layout = found
    class_names = _read_class_names(folder, layout)
    read_batch = _read_python_batch if layout == "python" else _read_binary_batch
    parts = [read_batch(folder / name, len(class_names)) for name in _batch_names(split, layout)]
    images = np.concatenate([images for images, _ in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([labels for _, labels in parts])
    kind = "training" if split == "train" else "test"
    source = f"CIFAR-10 {kind} set from {folder} ({len(images):,} images, {layout} batches)"
    return Dataset(images=images, labels=labels, class_names=class_names, source=source)


# --- downloading --------------------------------------------------------------------------------------


def _open_url(url: str, timeout: float):
    """``urlopen`` bounded in total time: its own timeout does not cover a name lookup that hangs."""
    outcome: dict[str, object] = {}

    def attempt() -> None:
        try:
            outcome["response"] = urllib.request.urlopen(url, timeout=timeout)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = error

    opener = threading.Thread(target=attempt, name="cifar10-connect", daemon=True)
    opener.start()
    opener.join(timeout)
    if opener.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} seconds")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["response"]


def _download(url: str, target: Path, timeout: float, progress: bool) -> str:
    """Stream ``url`` into ``target``; the md5 of what was written."""
    digest = hashlib.md5(usedforsecurity=False)
    with _open_url(url, timeout) as response, open(target, "wb") as handle:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with tqdm(total=total, unit="B", unit_scale=True, desc="CIFAR-10", disable=not progress) as bar:
            while chunk := response.read(DOWNLOAD_CHUNK_BYTES):
                handle.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    return digest.hexdigest()


def _extract_safely(archive: Path, into: Path) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts:
                    problem = "leaves the folder"
                elif not (member.isfile() or member.isdir()):
                    problem = "not a plain file"
                else:
                    continue
                raise DatasetError(f"{archive}: refusing archive member {member.name!r} ({problem})")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, members=members, filter="data")
            else:  # Python without extraction filters: the checks above are the guard
                tar.extractall(into, members=members)
    except (tarfile.TarError, EOFError, OSError, ValueError) as error:
        raise DatasetError(f"{archive}: cannot extract the CIFAR-10 archive ({error})") from None


def download_cifar10(
    dest: Path | str,
    *,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
    timeout: float = CONNECT_TIMEOUT_SECONDS,
    progress: bool = True,
) -> Path:
    """Download and extract the official CIFAR-10 python archive into ``dest``; the batches folder.

    Returns at once if ``dest/cifar-10-batches-py`` is already complete. The archive's md5 is checked
    before anything is extracted, and the folder appears under its final name only once complete.
    With $IMAGE_REPORT_OFFLINE=1, or when the network does not answer within ``timeout`` seconds,
    raises DatasetError saying how to place the data by hand.
    """
    dest = Path(dest)
    final = dest / PYTHON_FOLDER
    if final.is_dir():
        missing = _missing_files(final, "python")
        if not missing:
            return final
        raise DatasetError(
            f"{final} exists but is incomplete (missing {', '.join(missing)}); delete it and try again"
        )
    if os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off"):
        raise DatasetError(f"not downloading CIFAR-10: {OFFLINE_ENV} is set. {_how_to_get_cifar10(dest)}")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(f"cannot create {dest} for CIFAR-10 ({error})") from None

    handle, archive_name = tempfile.mkstemp(dir=dest, prefix=".cifar-10-download-", suffix=".tar.gz")
    os.close(handle)
    archive = Path(archive_name)
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=".cifar-10-extract-"))
    try:
        try:
            actual_md5 = _download(url, archive, timeout, progress)
        except (OSError, urllib.error.URLError, ValueError) as error:  # TimeoutError is an OSError
            raise DatasetError(
                f"could not download CIFAR-10 from {url} ({error}). {_how_to_get_cifar10(dest)}"
            ) from None
        if actual_md5 != md5.lower():
            raise DatasetError(
                f"the CIFAR-10 archive from {url} has md5 {actual_md5}, expected {md5}: it is damaged or "
                f"not the official file, and was discarded. {_how_to_get_cifar10(dest)}"
            )
        _extract_safely(archive, staging)
        extracted = staging / PYTHON_FOLDER
        missing = _missing_files(extracted, "python") if extracted.is_dir() else [PYTHON_FOLDER]
        if missing:
            raise DatasetError(f"the archive from {url} lacks {', '.join(missing)}; it is not CIFAR-10")
        fsync_tree(extracted)
        try:
            os.replace(extracted, final)
        except OSError:
            if _missing_files(final, "python"):  # not another process finishing the same download first
                raise
    finally:
        remove(archive)
        remove(staging)
    return final


# --- the synthetic stand-in ---------------------------------------------------------------------------

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
    """CHUNK_IMAGES images (m, 32, 32, 3) uint8 for one chunk; labels are the global index mod 10."""
    rng = np.random.default_rng([seed, chunk])
    count = CHUNK_IMAGES
    first_label = (chunk * CHUNK_IMAGES) % len(SYNTHETIC_CLASS_NAMES)

    # Background: a 1/f-like field, each octave adding detail to the coarser ones. Colour and light come
    # from per-channel coarse grids (channels share most of them, as a scene's colours do); the finer
    # detail is brightness, the same for the three channels. Bilinear upsampling is linear with weights
    # summing to one, so contrast and brightness are applied to the small grids, not to every pixel.
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

    # Foreground: one shape per image, placed, sized and turned at random, with soft (antialiased) edges.
    centre_x, centre_y = (rng.uniform(11, 21, (2, count, 1, 1))).astype(np.float32)
    radius = rng.uniform(7, 12, (count, 1, 1)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi, (count, 1, 1)).astype(np.float32)
    grid_y, grid_x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) + np.float32(0.5)
    offset_x, offset_y = grid_x - centre_x, grid_y - centre_y
    cos, sin = np.cos(angle), np.sin(angle)
    local_x = (cos * offset_x + sin * offset_y) / radius
    local_y = (cos * offset_y - sin * offset_x) / radius
    coverage = np.empty((count, SIDE, SIDE), dtype=np.float32)
    labels = (first_label + np.arange(count)) % len(SYNTHETIC_CLASS_NAMES)
    for label in range(len(SYNTHETIC_CLASS_NAMES)):
        of_class = slice((label - first_label) % len(SYNTHETIC_CLASS_NAMES), None, len(SYNTHETIC_CLASS_NAMES))
        coverage[of_class] = _shape_distance(label, local_x[of_class], local_y[of_class]) * radius[of_class]
    np.clip(coverage + np.float32(0.5), 0, 1, out=coverage)

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


# --- choosing what to load ----------------------------------------------------------------------------


def _resize(dataset: Dataset, n: int | None) -> Dataset:
    """The first ``n`` images, or the set repeated in order until it has ``n``."""
    if n is None:
        return dataset
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DatasetError(f"n must be a positive number of images or None, got {n!r}")
    n, size = int(n), len(dataset)
    if n == size:
        return dataset
    if n < size:
        images, labels = dataset.images[:n].copy(), dataset.labels[:n].copy()
        note = f"; the first {n:,} used"
    else:
        order = np.arange(n) % size
        images, labels = dataset.images[order], dataset.labels[order]
        note = f"; repeated to {n:,} images ({n / size:g} x {size:,}), as the article doubles 50,000 images"
    source = dataset.source + note
    return Dataset(images=images, labels=labels, class_names=dataset.class_names, source=source)


def _local(root: Path) -> Dataset:
    """CIFAR-10 from the data folder; DatasetError saying how to get it (``make data``) when it is not there.

    Never downloads: only ``make data`` (``download_cifar10``) goes to the network, so a report does not
    wait on it or fetch 170 MB unasked.
    """
    if _find_batches_folder(root) is None:
        raise DatasetError(f"CIFAR-10 is not in {root}. {_how_to_get_cifar10(root)}")
    return load_cifar10(root)


def load(source: str = "auto", n: int | None = None, *, size: int | tuple[int, int] | None = None) -> Dataset:
    """The dataset the experiments use, ``n`` images of it (None: all; more than it has: repeated).

    ``source``: "auto" = CIFAR-10 from the data folder, else synthetic (the ``source`` text says which, and
    how to get the real one: ``make data``); "cifar10" = CIFAR-10 from the data folder, an error saying how
    to get it if it is missing; "synthetic"; "scans" (``synthetic_scans``, 512x512 16-bit, ``size`` their
    side); the path of a CIFAR-10 folder; or the path of a folder of images (``load_folder``: ``n`` reads at
    most n of them, never repeated, and ``size`` resizes them). The data folder is $IMAGE_REPORT_DATA or
    data/raw. Nothing here downloads: ``make data`` does (``download_cifar10``).
    """
    root = default_data_root()
    if source == "synthetic":
        return synthetic(CIFAR10_TRAIN_SIZE if n is None else n)
    if source == "scans":
        return synthetic_scans(SCANS_DEFAULT_COUNT if n is None else n, **({"size": size} if size else {}))
    if source == "cifar10":
        return _resize(_local(root), n)
    if source == "auto":
        if _find_batches_folder(root) is not None:  # present but damaged is an error, not a fallback
            return _resize(load_cifar10(root), n)
        stand_in = synthetic(CIFAR10_TRAIN_SIZE if n is None else n)
        stand_in.source = (
            f"{SYNTHETIC_PREFIX} stand-in: no CIFAR-10 found in {root}; using {len(stand_in):,} generated "
            f"images of {len(SYNTHETIC_CLASS_NAMES)} shape classes with PNG sizes like CIFAR-10's photos. "
            f"{_how_to_get_cifar10(root)}"
        )
        return stand_in
    if isinstance(source, (str, os.PathLike)) and Path(source).exists():
        if is_image_folder(source):
            from helpers.datasets.image_files import NoImagesError

            try:
                return load_folder(source, size=size, limit=n)
            except NoImagesError as error:
                raise DatasetError(f"{source} holds no CIFAR-10 batches and {error}. "
                                   f"{_how_to_get_cifar10(Path(source))}") from None
        return _resize(load_cifar10(source), n)
    raise DatasetError(
        f"unknown dataset {source!r}: use one of {', '.join(repr(name) for name in SOURCES)}, "
        f"the path of a CIFAR-10 folder or the path of a folder of images"
    )


# -- the reader's own images and large 16-bit scans (helpers.datasets.folder, helpers.datasets.scans) ---------------

SCANS_DEFAULT_COUNT = 1000


def is_image_folder(path: Path | str) -> bool:
    """Whether ``load(path)`` reads ``path`` as a folder of images (a folder without CIFAR-10 batches)."""
    return Path(path).is_dir() and _find_batches_folder(Path(path)) is None


def load_folder(
    path: Path | str, *, size: int | tuple[int, int] | None = None, limit: int | None = None,
    workers: int | None = None, progress: bool = True,
) -> Dataset:
    """Every image under ``path`` (PNG, JPEG, TIFF, BMP, WebP, DICOM; 8- or 16-bit), labelled by first-level
    subfolder as torchvision's ImageFolder does; ``helpers.datasets.folder.load_folder`` tells the rules."""
    from helpers.datasets import folder as image_folder

    return image_folder.load_folder(path, size=size, limit=limit, workers=workers, progress=progress)


def synthetic_scans(n: int, size: int = 512, seed: int = 0) -> Dataset:
    """``n`` deterministic CT-like 16-bit greyscale slices (12 bits used) that compress like real CT slices;
    ``helpers.datasets.scans.synthetic_scans`` tells how."""
    from helpers.datasets import scans

    return scans.synthetic_scans(n, size=size, seed=seed)


# --- streaming: images made or read chunk by chunk ----------------------------------------------------


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
