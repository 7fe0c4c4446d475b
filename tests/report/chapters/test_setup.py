"""Chapter 00: what was loaded, a look at the images, and the record of the run."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import sys

import numpy as np

from helpers import datasets
from helpers.report import environment, results
from helpers.report.chapters import setup as chapter


def test_sample_grid_shows_one_row_per_class(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(30) % 3
    figure = chapter.sample_grid(images, labels, ["a", "b", "c"], tmp_path, per_class=4)
    assert len(figure.axes) == 12
    assert sum(bool(axes.images) for axes in figure.axes) == 12
    assert (tmp_path / "dataset_samples.svg").exists()


def test_the_run_records_its_facts_in_the_results_and_the_machine_in_the_environment(tmp_path):
    data = datasets.synthetic(20)
    results.record_facts(tmp_path / "results", large_image_bytes=1)  # left by an earlier run
    shown = chapter.record_run(data, tmp_path / "work", tmp_path / "results")
    assert results.read_facts(tmp_path / "results") == {"dataset_source": data.source, "image_bytes": 3072}
    info = environment.load(tmp_path / "results")
    assert info["dataset_source"] == data.source and "image_bytes" not in info
    assert shown.loc["Python executable", "value"] == sys.executable
    assert chapter.dataset_overview(data).loc["Images", "value"] == "20"
    assert chapter.class_counts(data)["images"].sum() == 20
