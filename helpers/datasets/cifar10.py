"""CIFAR-10 from its official files, and the one download of them that ``make data`` runs.

CIFAR-10 comes in two official layouts, both read here: the python batches (``cifar-10-batches-py``,
pickled dicts) and the binary batches (``cifar-10-batches-bin``, fixed-size rows). Unpickling can run
arbitrary code, so the python batches go through an unpickler that only rebuilds what a genuine batch
holds: a uint8 array, lists, numbers and strings.

The download checks the archive's md5 before extracting anything, refuses members that would land outside
the folder, and renames the batches folder into place only once it is complete.
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
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm  # plain text: tqdm.auto needs ipywidgets inside notebooks

from helpers.core.errors import DatasetError
from helpers.core.files import fsync_tree, remove
from helpers.datasets.base import Dataset

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
CONNECT_TIMEOUT_SECONDS = 10.0
DOWNLOAD_CHUNK_BYTES = 1 << 20


def default_data_root() -> Path:
    """Where CIFAR-10 is looked for and downloaded to: $IMAGE_REPORT_DATA, else the project's data/raw."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(__file__).resolve().parents[2] / "data" / "raw"


def how_to_get_cifar10(root: Path) -> str:
    return (
        f"To get CIFAR-10 run `make data`, or download {CIFAR10_URL} (from {CIFAR10_PAGE}) by hand and "
        f"extract it into {root}, so that {root / PYTHON_FOLDER / 'data_batch_1'} exists "
        f"(the binary version, {BINARY_FOLDER}, works too)"
    )


# --- reading the official files -------------------------------------------------------------------


def find_batches_folder(path: Path) -> tuple[Path, str] | None:
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
        raise DatasetError(f"no CIFAR-10 folder at {path}. {how_to_get_cifar10(path)}")
    found = find_batches_folder(path)
    if found is None:
        raise DatasetError(
            f"{path} holds no CIFAR-10 batches: expected {PYTHON_FOLDER} or {BINARY_FOLDER} in it, or "
            f"{TRAIN_BATCHES[0]} / {TRAIN_BATCHES[0]}.bin directly. {how_to_get_cifar10(path)}"
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
    # Imported here: with http.client, email and ssl it is a sixth of ``import helpers.datasets``, and only
    # ``make data`` downloads.
    import urllib.request

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
        raise DatasetError(f"not downloading CIFAR-10: {OFFLINE_ENV} is set. {how_to_get_cifar10(dest)}")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(f"cannot create {dest} for CIFAR-10 ({error})") from None

    handle, archive_name = tempfile.mkstemp(dir=dest, prefix=".cifar-10-download-", suffix=".tar.gz")
    os.close(handle)
    archive = Path(archive_name)
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=".cifar-10-extract-"))
    try:
        _download_checked(url, md5, archive, timeout, progress, dest)
        _install(archive, staging, final, url)
    finally:
        remove(archive)
        remove(staging)
    return final


def _download_checked(url: str, md5: str, archive: Path, timeout: float, progress: bool, dest: Path) -> None:
    """``url`` into ``archive``, its md5 checked; DatasetError saying how to place the data in ``dest`` by
    hand when the download fails or gives another file."""
    try:
        actual_md5 = _download(url, archive, timeout, progress)
    except (OSError, urllib.error.URLError, ValueError) as error:  # TimeoutError is an OSError
        raise DatasetError(
            f"could not download CIFAR-10 from {url} ({error}). {how_to_get_cifar10(dest)}"
        ) from None
    if actual_md5 != md5.lower():
        raise DatasetError(
            f"the CIFAR-10 archive from {url} has md5 {actual_md5}, expected {md5}: it is damaged or "
            f"not the official file, and was discarded. {how_to_get_cifar10(dest)}"
        )


def _install(archive: Path, staging: Path, final: Path, url: str) -> None:
    """Extract ``archive`` into ``staging`` and rename its batches folder to ``final``, complete and synced,
    so that ``final`` never exists half-written."""
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
