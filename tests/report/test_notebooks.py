"""The committed notebooks: no outputs, the parameters cell made from the definitions, short code cells."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from helpers.report import parameters
from helpers.report.pipeline import NOTEBOOKS, NOTEBOOKS_DIR

MAX_CODE_LINES = 8


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)


def parameter_cells(notebook: nbformat.NotebookNode) -> list:
    return [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]


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
def test_notebook_has_one_parameters_cell_made_from_the_definitions(name):
    cells = parameter_cells(read(name))
    assert len(cells) == 1, f"{name}: expected exactly one cell tagged 'parameters'"
    assert cells[0].source == parameters.cell_source(), (
        f"{name}: run `python -m helpers.report.parameters --write-notebooks` after changing a parameter")


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
    from helpers.report.chapters import many_images

    notebooks = {name: read(name) for name in NOTEBOOKS}
    assert many_images.EXPERIMENT == "many_images"
    assert "chapter.measure(" in "".join(c.source for c in notebooks["02-many-images"].cells)
    for reader in ("03-disk-usage", "04-access-patterns", "09-conclusions"):
        assert 'results.read_summary(results_dir, "many_images")' in "".join(c.source for c in notebooks[reader].cells)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_notebook_imports_its_own_chapter_and_no_other(name):
    imported = [line for cell in read(name).cells if cell.cell_type == "code"
                for line in cell.source.splitlines() if "helpers.report.chapters" in line]
    assert len(imported) == 1 and imported[0].endswith(" as chapter"), imported


def test_every_notebook_that_loads_the_dataset_passes_the_image_size():
    """A folder of images of many sizes loads only with ``image_size``: each chapter must pass it on."""
    for name in NOTEBOOKS:
        for cell in nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4).cells:
            for call in re.findall(r"datasets\.load\(.*", cell.source):
                assert "size=image_size" in call, f"{name}: {call}"
