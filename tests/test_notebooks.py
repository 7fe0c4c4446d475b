"""The committed notebooks: no outputs, the same documented parameters, short code cells."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from helpers.report.pipeline import NOTEBOOKS, NOTEBOOKS_DIR

DOCUMENTED_PARAMETERS = {
    "dataset": "auto",
    "cutoffs": [10, 100, 1000, 10000, 100000],
    "methods": ["disk", "lmdb", "hdf5", "zarr", "tar", "parquet", "arrow", "sqlite"],
    "repeats": 3,
    "cold_cache": True,
    "work_dir": "../data/work",
    "results_dir": "../reports/results",
    "figures_dir": "../figures",
    "image_size": None,
    "large_dataset": "scans",
    "large_cutoffs": [10, 100, 1000],
    "batch_size": 256,
    "workers": [1, 2],
    "compressions": ["zstd", "blosc", "gzip", "lzf", "jpegls", "jpeg:90"],
    "compression_images": 2000,
    "scale_images": 1000000,
}
MAX_CODE_LINES = 8


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)


def parameter_cells(notebook: nbformat.NotebookNode) -> list:
    return [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]


def assigned_values(source: str) -> dict:
    values = {}
    for statement in ast.parse(source).body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, ast.dump(statement)
        values[statement.targets[0].id] = ast.literal_eval(statement.value)
    return values


def test_every_notebook_of_the_report_is_there_and_nothing_else():
    assert sorted(path.stem for path in Path(NOTEBOOKS_DIR).glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_valid_and_committed_without_outputs(name):
    notebook = read(name)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a code cell has outputs; clear them before committing"
            assert cell.execution_count is None
    assert notebook.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_has_one_parameters_cell_with_the_documented_defaults(name):
    cells = parameter_cells(read(name))
    assert len(cells) == 1, f"{name}: expected exactly one cell tagged 'parameters'"
    assert assigned_values(cells[0].source) == DOCUMENTED_PARAMETERS


def test_parameters_cells_are_identical_in_every_notebook():
    sources = {parameter_cells(read(name))[0].source for name in NOTEBOOKS}
    assert len(sources) == 1


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_code_cells_are_short_and_the_story_is_in_markdown(name):
    notebook = read(name)
    # the parameters cell holds one assignment per documented parameter, however many there are
    code = [cell for cell in notebook.cells
            if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", [])]
    prose = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    for cell in code:
        assert len(cell.source.splitlines()) <= MAX_CODE_LINES, f"{name}: move this logic into helpers:\n{cell.source}"
    assert sum(len(cell.source) for cell in prose) > 800, f"{name}: the narrative is missing"
    assert prose[0].source.startswith("# "), f"{name}: the first cell should be the notebook's title"


def test_later_notebooks_read_the_results_earlier_ones_write():
    writes = {name: read(name) for name in NOTEBOOKS}
    assert "append_rows(results_dir, \"many_images\"" in "".join(c.source for c in writes["02-many-images"].cells)
    for reader in ("03-disk-usage", "09-conclusions"):
        assert "read_results(results_dir, \"many_images\")" in "".join(c.source for c in writes[reader].cells)


def test_every_notebook_that_loads_the_dataset_passes_the_image_size():
    """A folder of images of many sizes loads only with ``image_size``: each chapter must pass it on."""
    for name in NOTEBOOKS:
        for cell in nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4).cells:
            for call in re.findall(r"datasets\.load\(.*", cell.source):
                assert "size=image_size" in call, f"{name}: {call}"
