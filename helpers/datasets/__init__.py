"""The images the experiments store, as one kind of value (``Dataset``), chosen by one function, ``load``:
CIFAR-10, the synthetic stand-ins, or folders of images and scans.

- ``cifar10``: CIFAR-10 from its official files, and the checked download that ``make data`` runs;
- ``synthetic_cifar``: CIFAR-shaped images that PNG-compress like CIFAR-10's photos, for when CIFAR-10 is
  not on disk;
- ``scans``: 16-bit CT-like slices, and real CT slices from the installed ``pydicom-data``;
- ``folder``: the reader's own images (``load_folder``), with ``image_files`` (which files, which class),
  ``pixels`` (one file's header and pixels, through Pillow or pydicom) and ``parallel_decode`` (many files
  on the shared process pool);
- ``base``: ``Dataset`` and what the modules that make datasets share.

``load`` never downloads: a report must not wait on the network or fetch 170 MB unasked.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from helpers.core.errors import DatasetError
from helpers.datasets.base import SYNTHETIC_PREFIX, Dataset, is_synthetic_source
from helpers.datasets.cifar10 import (
    CIFAR10_TRAIN_SIZE,
    PIXELS_PER_IMAGE,
    default_data_root,
    download_cifar10,
    find_batches_folder,
    how_to_get_cifar10,
    load_cifar10,
)
from helpers.datasets.image_files import NoImagesError
from helpers.datasets.scans import synthetic_scans
from helpers.datasets.synthetic_cifar import (
    SYNTHETIC_CLASS_NAMES,
    synthetic,
    synthetic_chunks,
    synthetic_range,
)

# DESIGN.md's names, then those the other layers, the notebooks and the Makefile use.
__all__ = [
    "Dataset", "load_cifar10", "download_cifar10", "synthetic", "synthetic_scans", "load_folder", "load",
    "is_synthetic_source", "SYNTHETIC_PREFIX", "default_data_root", "is_image_folder", "synthetic_range",
    "synthetic_chunks", "PIXELS_PER_IMAGE",
]

SOURCES = ("auto", "cifar10", "synthetic", "scans")
SCANS_DEFAULT_COUNT = 1000


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
    """CIFAR-10 from the data folder; DatasetError saying how to get it (``make data``) when it is not there."""
    if find_batches_folder(root) is None:
        raise DatasetError(f"CIFAR-10 is not in {root}. {how_to_get_cifar10(root)}")
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
        if find_batches_folder(root) is not None:  # present but damaged is an error, not a fallback
            return _resize(load_cifar10(root), n)
        stand_in = synthetic(CIFAR10_TRAIN_SIZE if n is None else n)
        stand_in.source = (
            f"{SYNTHETIC_PREFIX} stand-in: no CIFAR-10 found in {root}; using {len(stand_in):,} generated "
            f"images of {len(SYNTHETIC_CLASS_NAMES)} shape classes with PNG sizes like CIFAR-10's photos. "
            f"{how_to_get_cifar10(root)}"
        )
        return stand_in
    if isinstance(source, (str, os.PathLike)) and Path(source).exists():
        if is_image_folder(source):
            try:
                return load_folder(source, size=size, limit=n)
            except NoImagesError as error:
                raise DatasetError(f"{source} holds no CIFAR-10 batches and {error}. "
                                   f"{how_to_get_cifar10(Path(source))}") from None
        return _resize(load_cifar10(source), n)
    raise DatasetError(
        f"unknown dataset {source!r}: use one of {', '.join(repr(name) for name in SOURCES)}, "
        f"the path of a CIFAR-10 folder or the path of a folder of images"
    )


def is_image_folder(path: Path | str) -> bool:
    """Whether ``load(path)`` reads ``path`` as a folder of images (a folder without CIFAR-10 batches)."""
    return Path(path).is_dir() and find_batches_folder(Path(path)) is None


def load_folder(
    path: Path | str, *, size: int | tuple[int, int] | None = None, limit: int | None = None,
    workers: int | None = None, progress: bool = True,
) -> Dataset:
    """Every image under ``path`` (PNG, JPEG, TIFF, BMP, WebP, DICOM; 8- or 16-bit), labelled by first-level
    subfolder as torchvision's ImageFolder does; ``helpers.datasets.folder.load_folder`` tells the rules."""
    # Imported on first use: the folder reader brings multiprocessing and the process pool, which
    # ``import helpers.datasets`` alone does not need (about 17 ms more).
    from helpers.datasets import folder

    return folder.load_folder(path, size=size, limit=limit, workers=workers, progress=progress)
