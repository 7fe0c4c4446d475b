"""Chapter 00, the dataset and the machine (notebooks/00-setup.ipynb): what was loaded, a look at the images,
and the record of the machine, its file system and the library versions beside the results.

The facts later chapters need of this run (which images, the raw bytes of one image) go to the results
(``helpers.report.results.record_facts``); the machine goes to ``environment.json``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from helpers.core.measure import format_bytes
from helpers.datasets import Dataset
from helpers.report import environment, results
from helpers.report.style import save


def dataset_overview(data: Dataset) -> pd.DataFrame:
    """What was loaded: counts, shapes, types and bytes, as a two-column table."""
    images = data.images
    rows = [
        ("Images", f"{len(images):,}"),
        ("Array shape", str(tuple(images.shape))),
        ("Pixel type", str(images.dtype)),
        ("Bytes per image (raw pixels)", f"{images[0].nbytes:,}"),
        ("All pixels in memory", format_bytes(images.nbytes)),
        ("Classes", ", ".join(data.class_names)),
        ("Synthetic stand-in", "yes" if data.is_synthetic else "no"),
    ]
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")


def class_counts(data: Dataset) -> pd.DataFrame:
    counts = np.bincount(data.labels, minlength=len(data.class_names))
    return pd.DataFrame({"class": data.class_names, "images": counts}).set_index("class")


def sample_grid(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    figures_dir: str | os.PathLike[str],
    *,
    per_class: int = 8,
    name: str = "dataset_samples",
) -> Figure:
    """The first ``per_class`` images of every class, one row per class."""
    labels = np.asarray(labels)
    figure = Figure(figsize=(per_class * 0.8 + 1.6, len(class_names) * 0.8), layout="constrained")
    grid = np.atleast_2d(figure.subplots(len(class_names), per_class, squeeze=False))
    for row, class_name in enumerate(class_names):
        chosen = np.flatnonzero(labels == row)[:per_class]
        for column in range(per_class):
            axes = grid[row, column]
            axes.set_xticks([])
            axes.set_yticks([])
            for spine in axes.spines.values():
                spine.set_visible(False)
            if column < len(chosen):
                axes.imshow(images[chosen[column]], interpolation="nearest")
        grid[row, 0].set_ylabel(class_name, rotation=0, ha="right", va="center", fontsize="small")
    save(figure, figures_dir, name)
    return figure


def record_run(data: Dataset, work_dir: str | os.PathLike[str], results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Start the run's facts with the dataset's (its source, the raw bytes of one image), record the machine
    in ``environment.json``, and return the machine as the table the chapter shows."""
    results.reset(results_dir, results.FACTS)  # a new run: no fact of an earlier one stays
    results.record_facts(results_dir, dataset_source=data.source, image_bytes=int(data.images[0].nbytes))
    info = environment.capture(work_dir, dataset_source=data.source)
    environment.save(info, results_dir)
    return environment.as_table(info).set_index("item")
