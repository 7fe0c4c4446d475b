"""Storage methods behind one interface. Adding a method: one module with a Store subclass, one line below."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable

import numpy as np

from helpers.core.errors import ImageFormatError, UnknownMethodError
from helpers.stores.base import Store
from helpers.stores.checks import check_image_shape

# name -> "module:class"; imported on first use so an unused method's library need not load.
REGISTRY: dict[str, str] = {
    "disk": "helpers.stores.disk:DiskStore",
    "lmdb": "helpers.stores.lmdb_store:LmdbStore",
    "hdf5": "helpers.stores.hdf5_store:Hdf5Store",
    "zarr": "helpers.stores.zarr_store:ZarrStore",
    "tar": "helpers.stores.tar_store:TarStore",
    "parquet": "helpers.stores.parquet_store:ParquetStore",
    "arrow": "helpers.stores.arrow_store:ArrowStore",
    "sqlite": "helpers.stores.sqlite_store:SqliteStore",
    "npy": "helpers.stores.npy_store:NpyStore",  # the reference floor, measured beside the others
}

#: The method every other one is compared with; not one of the article's three.
FLOOR = "npy"


def names() -> list[str]:
    """The registered storage methods in report order: the article's three (disk, lmdb, hdf5) first, then the
    formats in use today (zarr, tar, parquet, arrow, sqlite) and any registered after them, then the NumPy
    reference floor (npy), always last."""
    return [name for name in REGISTRY if name != FLOOR] + ([FLOOR] if FLOOR in REGISTRY else [])


def store_class(name: str) -> type[Store]:
    if name not in REGISTRY:
        raise UnknownMethodError(f"unknown storage method {name!r}; known methods: {', '.join(names())}")
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def open_store(
    name: str, root: str | os.PathLike[str], *, durable: bool = False, compression: str | None = None
) -> Store:
    """The store ``name`` in the folder ``root`` (created if needed).

    ``compression`` is one of the method's ``compressions`` (None: the method's own default).
    """
    return store_class(name)(root, durable=durable, compression=compression)


# -- estimates by method name (helpers.core.space checks the disk; it does not know the stores) ------------
def _check_request(
    method: str, n_images: int, image_shape: tuple[int, ...], dtype: object
) -> tuple[type[Store], np.dtype]:
    store = store_class(method)  # UnknownMethodError names the known ones
    if isinstance(n_images, (bool, np.bool_)) or not isinstance(n_images, (int, np.integer)) or n_images < 0:
        raise ImageFormatError(f"n_images must be a non-negative integer, got {n_images!r}")
    try:
        dtype = np.dtype(dtype)
    except TypeError as error:
        raise ImageFormatError(f"dtype {dtype!r} is not a numpy dtype ({error})") from None
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in image_shape):
        raise ImageFormatError(f"image_shape must be integers, got {image_shape!r}")
    check_image_shape(tuple(int(d) for d in image_shape), dtype)
    return store, dtype


def estimate_bytes(method: str, n_images: int, image_shape: tuple[int, ...], dtype: object) -> int:
    """Disk space a batch of ``n_images`` written by ``method`` may take, rounded up to whole blocks."""
    store, dtype = _check_request(method, n_images, image_shape, dtype)
    return int(store.space_needed(int(n_images), tuple(int(d) for d in image_shape), dtype, single=False))


def estimate_single_bytes(method: str, n_images: int, image_shape: tuple[int, ...], dtype: object) -> int:
    """Disk space ``n_images`` images stored one at a time (store_single) by ``method`` may take."""
    store, dtype = _check_request(method, n_images, image_shape, dtype)
    return int(store.space_needed(int(n_images), tuple(int(d) for d in image_shape), dtype, single=True))


def _experiment_methods(methods: Iterable[str], cutoffs: Iterable[int]) -> tuple[list[str], int]:
    cutoffs = list(cutoffs)
    if not cutoffs:
        raise ImageFormatError("cutoffs is empty; expected at least one number of images")
    return list(dict.fromkeys([*methods, FLOOR])), max(cutoffs)


def experiment_bytes(
    methods: Iterable[str],
    cutoffs: Iterable[int],
    image_shape: tuple[int, ...],
    dtype: object,
    *,
    include_single: bool = True,
) -> int:
    """Disk space a whole experiment may need at its peak.

    Each store keeps one batch at a time, so only the largest cutoff counts; the reference floor is
    measured beside the chosen methods. ``include_single`` adds that many images stored one by one.
    """
    chosen, largest = _experiment_methods(methods, cutoffs)
    total = 0
    for method in chosen:
        total += estimate_bytes(method, largest, image_shape, dtype)
        if include_single:
            total += estimate_single_bytes(method, largest, image_shape, dtype)
    return total


def experiment_files(methods: Iterable[str], cutoffs: Iterable[int], *, include_single: bool = True) -> int:
    """Files (inodes) a whole experiment may create at its peak, counted as ``experiment_bytes`` counts."""
    chosen, largest = _experiment_methods(methods, cutoffs)
    total = 0
    for method in chosen:
        store = store_class(method)
        total += store.files_needed(largest, single=False)
        if include_single:
            total += store.files_needed(largest, single=True)
    return total


__all__ = [
    "FLOOR", "REGISTRY", "Store", "estimate_bytes", "estimate_single_bytes", "experiment_bytes",
    "experiment_files", "names", "open_store", "store_class",
]
