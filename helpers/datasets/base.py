"""What every dataset is (``Dataset``) and the pieces its makers share; ``helpers.datasets`` re-exports them.

Kept apart from the package's face so that every module that makes datasets (``cifar10``,
``synthetic_cifar``, ``scans``, ``folder``) can use them without importing the others.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from helpers.core.errors import DatasetError

SYNTHETIC_PREFIX = "SYNTHETIC"
MAX_THREADS = 8


@dataclass
class Dataset:
    """Images ``(n, height, width, channels)`` uint8 with their labels, and where they came from."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    source: str

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.images.ndim != 4:
            raise DatasetError(f"images must be (n, height, width, channels), got shape {self.images.shape}")
        if self.labels.shape != (len(self.images),):
            raise DatasetError(
                f"{len(self.images)} images but labels of shape {self.labels.shape}; expected one label each"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def is_synthetic(self) -> bool:
        return is_synthetic_source(self.source)


def is_synthetic_source(source: object) -> bool:
    """Whether a dataset description (``Dataset.source``, as recorded beside the results) is the stand-in."""
    return str(source).startswith(SYNTHETIC_PREFIX)


def make_chunks_in_threads(make_chunk: Callable[[int], None], chunks: int) -> None:
    """``make_chunk(0) ... make_chunk(chunks - 1)``, on one thread per core.

    numpy releases the GIL in its array loops, so threads share the cores; as long as every chunk draws
    from its own generator, the result does not depend on which thread made which chunk.
    """
    workers = min(chunks, os.cpu_count() or 1, MAX_THREADS)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(make_chunk, range(chunks)))
    else:
        for chunk in range(chunks):
            make_chunk(chunk)
