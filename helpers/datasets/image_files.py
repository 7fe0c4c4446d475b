"""Which files of a folder are images, and which class each belongs to: ``load_folder``'s listing.

Layout and labels follow torchvision's ``ImageFolder``: each first-level subfolder is a class (class names
sorted, label = position), and every image below it, at any depth, belongs to it. A folder without
subfolders is one class named after the folder. Hidden files and folders (a leading dot, such as
``.ipynb_checkpoints``) are skipped, as are files that are not images; files lying directly in a folder
that has class subfolders are left out (ImageFolder ignores them too), and the listing's notes say so.
Nothing here opens an image: a file is an image by its suffix (or, for DICOM without one, its magic bytes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.core.errors import DatasetError

PILLOW_SUFFIXES = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
    ".webp": "WebP",
}
DICOM_SUFFIXES = {".dcm": "DICOM", ".dicom": "DICOM"}
DICOM_MAGIC_OFFSET = 128  # a DICOM file opens with a 128-byte preamble, then "DICM"


class NoImagesError(DatasetError):
    """A folder without a single image file in it or below it."""


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
