"""Storage methods behind one interface. Adding a method: one module with a Store subclass, one line below."""

from __future__ import annotations

import importlib
import os

from helpers.errors import UnknownMethodError
from helpers.stores.base import Store

# name -> "module:class"; imported on first use so an unused method's library need not load.
REGISTRY: dict[str, str] = {
    "disk": "helpers.stores.disk:DiskStore",
    "lmdb": "helpers.stores.lmdb_store:LmdbStore",
    "hdf5": "helpers.stores.hdf5_store:Hdf5Store",
    "zarr": "helpers.stores.zarr_store:ZarrStore",
    "tar": "helpers.stores.tar_store:TarStore",
    "npy": "helpers.stores.npy_store:NpyStore",  # the reference floor, measured beside the others
}

#: The method every other one is compared with; not one of the article's three.
FLOOR = "npy"


def names() -> list[str]:
    """The registered storage methods: the article's three first, then the NumPy reference floor."""
    return list(REGISTRY)


def store_class(name: str) -> type[Store]:
    if name not in REGISTRY:
        raise UnknownMethodError(f"unknown storage method {name!r}; known methods: {', '.join(REGISTRY)}")
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def open_store(
    name: str, root: str | os.PathLike[str], *, durable: bool = False, compression: str | None = None
) -> Store:
    """The store ``name`` in the folder ``root`` (created if needed).

    ``compression`` is one of the method's ``compressions`` (None: the method's own default).
    """
    return store_class(name)(root, durable=durable, compression=compression)


__all__ = ["FLOOR", "REGISTRY", "Store", "names", "open_store", "store_class"]
