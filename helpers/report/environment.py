"""What the numbers were measured on: machine, file system, software versions, dataset and code version.

``capture`` gathers it, ``save``/``load`` keep it beside the results as ``environment.json``, and
``as_table`` turns it into the two-column table the report shows.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd
import psutil

from helpers.core import space
from helpers.core.files import write_atomically
from helpers.core.measure import eviction_works, format_bytes

FILE_NAME = "environment.json"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Python distributions whose versions are recorded (distribution name as pip knows it).
LIBRARIES = ("numpy", "Pillow", "lmdb", "h5py", "pandas", "matplotlib", "tqdm", "psutil")

#: How each item is labelled in the report, in order.
LABELS = {
    "timestamp": "Measured at (UTC)",
    "cpu_model": "CPU",
    "cpu_cores_logical": "CPU cores (logical)",
    "cpu_cores_physical": "CPU cores (physical)",
    "cpu_cores_usable": "CPU cores this process may use",
    "memory_total_bytes": "Memory",
    "memory_available_bytes": "Memory available at start",
    "os": "Operating system",
    "kernel": "Kernel",
    "python": "Python",
    "python_executable": "Python executable",
    "filesystem_type": "File system of the work folder",
    "filesystem_mount": "Mounted at",
    "filesystem_device": "Device",
    "filesystem_options": "Mount options",
    "filesystem_journal": "File system journal (ext3/ext4)",
    "work_dir": "Work folder",
    "work_dir_free_bytes": "Free space in the work folder",
    "cold_cache_possible": "Cold reads possible (page cache eviction verified)",
    "dataset_source": "Dataset",
    "git_commit": "Project commit",
    "git_dirty": "Uncommitted changes",
}


def capture(work_dir: str | os.PathLike[str], dataset_source: str | None = None) -> dict:
    """A JSON-ready description of this machine and software, for the work folder ``work_dir``."""
    work_dir = Path(work_dir).resolve()
    try:  # the eviction probe belongs in the work folder itself, on the file system the stores use
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    existing = space.existing_parent(work_dir)
    memory = psutil.virtual_memory()
    mount = mount_of(existing)
    commit, dirty = git_state(PROJECT_ROOT)
    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "cpu_cores_usable": usable_cores(),
        "memory_total_bytes": memory.total,
        "memory_available_bytes": memory.available,
        "os": os_name(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "filesystem_type": mount["type"],
        "filesystem_mount": mount["mount_point"],
        "filesystem_device": mount["device"],
        "filesystem_options": mount["options"],
        "filesystem_journal": has_journal(existing, mount["type"]),
        "work_dir": str(work_dir),
        "work_dir_free_bytes": space.free_bytes(existing),
        "cold_cache_possible": eviction_works(existing) if os.access(existing, os.W_OK) else None,
        "libraries": library_versions(),
        "dataset_source": dataset_source if dataset_source is not None else "not recorded",
        "git_commit": commit,
        "git_dirty": dirty,
    }


def usable_cores() -> int | None:
    """Cores this process may run on (a container or ``taskset`` may allow fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def unescape_mount_field(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash in paths as octal escapes (``\\040``)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mount_of(path: Path, mounts_file: str | os.PathLike[str] = "/proc/mounts") -> dict[str, str]:
    """The mount holding ``path``: the entry of ``mounts_file`` with the longest mount point above it.

    Of several mounts on the same point the last one listed is the one in effect.
    """
    best = {"device": "unknown", "mount_point": "unknown", "type": "unknown", "options": "unknown"}
    best_length = -1
    parts = Path(path).resolve().parts
    try:
        lines = Path(mounts_file).read_text().splitlines()
    except OSError:
        return best
    for line in lines:
        fields = line.split()
        if len(fields) < 4:
            continue
        device, mount_point, fs_type, options = (unescape_mount_field(f) for f in fields[:4])
        mount_parts = Path(mount_point).parts
        if parts[: len(mount_parts)] == mount_parts and len(mount_parts) >= best_length:
            best = {"device": device, "mount_point": mount_point, "type": fs_type, "options": options}
            best_length = len(mount_parts)
    return best


def has_journal(
    path: Path, fs_type: str, sysfs: Path = Path("/sys"), procfs: Path = Path("/proc")
) -> bool | None:
    """Whether the ext3/ext4 file system holding ``path`` keeps a journal; None for other file systems or
    when Linux does not say.

    It matters for the PNG timings: without a journal, ext4 passes over every inode freed in the last
    minute or so when it creates a file, so writing many files just after deleting many is slower there.
    A journaled ext3/ext4 has an entry ``<block device>-8`` in /proc/fs/jbd2.
    """
    if fs_type not in ("ext3", "ext4"):
        return None
    try:
        device = os.stat(path).st_dev
        block_device = Path(os.readlink(sysfs / "dev" / "block" / f"{os.major(device)}:{os.minor(device)}")).name
    except OSError:
        return None
    return (procfs / "fs" / "jbd2" / f"{block_device}-8").is_dir()


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        import lmdb

        versions["LMDB C library"] = ".".join(map(str, lmdb.version()))
    except ImportError:
        versions["LMDB C library"] = "not installed"
    try:
        import h5py

        versions["HDF5 C library"] = h5py.version.hdf5_version
    except ImportError:
        versions["HDF5 C library"] = "not installed"
    return versions


def git_state(folder: Path) -> tuple[str, bool | None]:
    """(commit, whether files differ from it) of the checkout holding ``folder``.

    ("unknown", None) outside a checkout or without git.
    """
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain"))
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return commit, dirty


def save(info: dict, results_dir: str | os.PathLike[str]) -> Path:
    """Write ``info`` to ``results_dir/environment.json`` atomically; the file's path."""
    path = Path(results_dir) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, (json.dumps(info, indent=2, default=str) + "\n").encode(), durable=True)
    return path


def load(results_dir: str | os.PathLike[str]) -> dict:
    path = Path(results_dir) / FILE_NAME
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; run notebooks/00-setup.ipynb first (it records the environment)"
        )
    return json.loads(path.read_text())


def format_value(key: str, value: object) -> str:
    if value is None:
        return "unknown"
    if key.endswith("_bytes") and isinstance(value, (int, float)):
        return format_bytes(int(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def as_table(info: dict) -> pd.DataFrame:
    """The environment as two text columns, ``item`` and ``value``, in the order the report shows them."""
    rows = []
    for key, label in LABELS.items():
        if key in info:
            rows.append((label, format_value(key, info[key])))
    for name, version in info.get("libraries", {}).items():
        rows.append((name, str(version)))
    known = set(LABELS) | {"libraries"}
    rows.extend((key, format_value(key, value)) for key, value in info.items() if key not in known)
    return pd.DataFrame(rows, columns=["item", "value"])
