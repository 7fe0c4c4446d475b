"""The ability to have a batch written in pieces by many processes at once (``helpers.convert``).

Only methods whose batch is made of independent files carry it (PNG shard folders, tar shards, Zarr
shards): ``class DiskStore(WritesPieces, Store)``. The others answer ``writes_pieces`` False (the base
class's) and have none of these methods; their batch is one file that only one writer can build (LMDB,
HDF5 without MPI, NumPy).

The protocol: ``begin_pieces`` lays out a plan in the partial batch (how many images, their shape, how many
a piece holds); any number of processes then call ``write_piece`` for pieces of the plan in any order, each
piece written under a temporary name (``writing_name``) and renamed when complete, so a process killed
half-way leaves no piece that counts as written; ``commit_pieces`` joins them into the batch and renames it
into place, as ``store_many`` does. A rerun with the same plan keeps the pieces already written.

A method implements the hooks: ``images_per_piece``, ``_write_piece``, ``_piece_done``, ``_commit_pieces``
and, if it needs one, ``_begin_pieces``.
"""

from __future__ import annotations

import json
import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from helpers.core.errors import ImageFormatError, IncompleteStoreError
from helpers.core.files import remove, write_atomically
from helpers.stores.checks import check_batch, check_image_shape
from helpers.stores.chunks import planned_batch

PIECES_PLAN = ".pieces.json"  # inside a partial batch written in pieces: what the pieces add up to
PIECE_WRITING = ".writing-"  # in the name of a piece a process is still writing


def writing_name(name: str) -> str:
    """The temporary name this process and thread write the piece ``name`` under, before renaming it."""
    return f"{name}{PIECE_WRITING}{os.getpid()}.{threading.get_ident()}"


def piece_count(plan: dict) -> int:
    """The number of pieces a plan of ``begin_pieces`` cuts its batch into."""
    return -(-plan["count"] // plan["piece_images"])


class WritesPieces(ABC):
    """A Store whose batch separate processes may write at once, in pieces (put it before ``Store``)."""

    writes_pieces: ClassVar[bool] = True

    @abstractmethod
    def images_per_piece(self, image_shape: tuple[int, ...], dtype: np.dtype) -> int:
        """Images in each piece (the last may hold fewer) of a batch of images of this shape and dtype."""

    @abstractmethod
    def _write_piece(self, partial: Path, index: int, images: np.ndarray, labels: np.ndarray, count: int) -> None:
        """Write piece ``index`` of a batch of ``count`` images atomically (a temporary name, then a rename)."""

    @abstractmethod
    def _piece_done(self, partial: Path, index: int) -> bool:
        """Whether piece ``index`` is written (all of it, as it appears only once complete)."""

    @abstractmethod
    def _commit_pieces(self, partial: Path, count: int, image_shape: tuple[int, ...], dtype: np.dtype) -> None:
        """Turn the complete pieces in ``partial`` into the method's batch (indexes, labels, metadata)."""

    def _begin_pieces(self, partial: Path) -> None:
        """Prepare the empty partial folder for pieces (e.g. file system hints)."""

    @property
    def pieces_plan_path(self) -> Path:
        return self.partial_path / PIECES_PLAN

    def begin_pieces(self, total: int, image_shape: tuple[int, ...], dtype: object) -> int:
        """Prepare the partial batch for ``total`` images written as pieces by any number of processes.

        Pieces already written by an interrupted run with the same plan are kept (a rerun finishes the
        batch); anything else, and the previous batch, is removed. Returns the number of pieces.
        """
        dtype = np.dtype(dtype)
        check_image_shape(tuple(image_shape), dtype)
        per_piece = self.images_per_piece(tuple(image_shape), dtype)
        plan = {"method": self.name, "compression": self.compression, "count": int(total),
                "shape": list(image_shape), "dtype": dtype.name, "piece_images": per_piece}
        self.close()
        partial = self.partial_path
        if self._read_plan() != plan:
            self._check_space_for(planned_batch(total, image_shape, dtype))
            remove(partial)
            partial.mkdir()
            self._begin_pieces(partial)
            write_atomically(self.pieces_plan_path, json.dumps(plan).encode(), durable=self.durable)
        self._remove_batch()
        self._discard_unfinished_pieces(partial)
        return piece_count(plan)

    def piece_bounds(self, index: int) -> tuple[int, int]:
        """(first image, one past the last) of piece ``index`` of the batch being written in pieces."""
        plan = self._plan()
        start = index * plan["piece_images"]
        return start, min(start + plan["piece_images"], plan["count"])

    def pieces_done(self) -> set[int]:
        """Indices of the pieces already written (each appears only once complete)."""
        partial = self.partial_path
        return {index for index in range(piece_count(self._plan())) if self._piece_done(partial, index)}

    def write_piece(self, index: int, images: np.ndarray, labels: np.ndarray | list[int]) -> None:
        """Write piece ``index`` (images ``index * piece_images`` onwards), atomically: a process killed
        half-way leaves no piece that counts as written. Safe to call from several processes at once."""
        plan = self._plan()
        images, labels = check_batch(images, labels)
        pieces = piece_count(plan)
        if not 0 <= index < pieces:
            raise ImageFormatError(f"piece {index} is out of range: the batch has pieces 0 to {pieces - 1}")
        expected = min(plan["piece_images"], plan["count"] - index * plan["piece_images"])
        if len(images) != expected or list(images.shape[1:]) != plan["shape"] or images.dtype.name != plan["dtype"]:
            raise ImageFormatError(
                f"piece {index} holds {len(images)} images of shape {images.shape[1:]} {images.dtype}; "
                f"the plan expects {expected} of shape {tuple(plan['shape'])} {plan['dtype']}"
            )
        self._write_piece(self.partial_path, index, images, labels, plan["count"])

    def commit_pieces(self) -> None:
        """Join the written pieces into the store's batch, visible from now on; IncompleteStoreError naming
        the first missing piece if any is."""
        plan = self._plan()
        pieces = piece_count(plan)
        missing = sorted(set(range(pieces)) - self.pieces_done())
        if missing:
            raise IncompleteStoreError(
                f"{len(missing)} of {pieces} pieces of the batch in {self.root} are not written "
                f"(first: piece {missing[0]}); write them and commit again"
            )
        self._discard_unfinished_pieces(self.partial_path)  # left by workers killed while writing a piece
        self._commit_pieces(self.partial_path, plan["count"], tuple(plan["shape"]), np.dtype(plan["dtype"]))
        self.pieces_plan_path.unlink()
        self._publish(self.partial_path)

    def _read_plan(self) -> dict | None:
        try:
            return json.loads(self.pieces_plan_path.read_text())
        except (OSError, ValueError):
            return None

    def _plan(self) -> dict:
        plan = self._read_plan()
        if plan is None:
            raise IncompleteStoreError(f"no batch is being written in pieces in {self.root}; call begin_pieces")
        return plan

    def _discard_unfinished_pieces(self, partial: Path) -> None:
        """Remove what processes killed while writing a piece left behind (pieces are never half there):
        everything named by ``writing_name``."""
        for entry in partial.iterdir():
            if PIECE_WRITING in entry.name:
                remove(entry)
