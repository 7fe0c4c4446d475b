"""The notebooks' parameters, defined once: the notebooks' cell, the options, the quick profile and the checks
are all made from the definitions."""

from __future__ import annotations

import argparse
import ast
import shutil

import nbformat
import pytest
from image_fixtures import write_mixed_folder

from helpers import stores
from helpers.report import parameters, pipeline
from helpers.report.parameters import NOTEBOOKS_DIR, ParameterError, resolve

#: The names and notebook defaults ../shared/DESIGN.md documents (methods: every registered one but the floor).
DOCUMENTED_PARAMETERS = {
    "dataset": "auto",
    "cutoffs": [10, 100, 1000, 10000, 100000],
    "methods": None,
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


def assigned_values(source: str) -> dict:
    values = {}
    for statement in ast.parse(source).body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, ast.dump(statement)
        values[statement.targets[0].id] = ast.literal_eval(statement.value)
    return values


def test_the_cell_assigns_every_documented_parameter_its_default():
    assert assigned_values(parameters.cell_source()) == DOCUMENTED_PARAMETERS
    assert 'dataset = "auto"' in parameters.cell_source().splitlines()
    assert "methods = None  # None: every registered method but the floor" in parameters.cell_source()


def test_write_notebooks_rewrites_only_the_parameters_cell(tmp_path):
    shutil.copy(NOTEBOOKS_DIR / "03-disk-usage.ipynb", tmp_path / "a.ipynb")
    assert parameters.write_notebooks(tmp_path) == []  # already as defined
    notebook = nbformat.read(tmp_path / "a.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = "dataset = 'old'"
    nbformat.write(notebook, tmp_path / "a.ipynb")
    assert parameters.write_notebooks(tmp_path) == [tmp_path / "a.ipynb"]
    assert (tmp_path / "a.ipynb").read_bytes() == (NOTEBOOKS_DIR / "03-disk-usage.ipynb").read_bytes()
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "b.ipynb")
    with pytest.raises(ValueError, match="one cell tagged 'parameters'"):
        parameters.write_notebooks(tmp_path)


def test_a_newly_registered_method_is_measured_without_editing_a_notebook(monkeypatch):
    cell = parameters.cell_source()
    monkeypatch.setitem(stores.REGISTRY, "toy", "helpers.stores.npy_store:NpyStore")
    assert parameters.default_methods()[-1] == "toy" and stores.FLOOR not in parameters.default_methods()
    assert parameters.chosen_methods(None) == parameters.default_methods()
    assert resolve({})["methods"][-1] == "toy"
    assert parameters.cell_source() == cell


def test_the_quick_profile_and_what_is_given_win_over_the_defaults():
    quick = resolve({"repeats": 5}, quick=True)
    assert quick["repeats"] == 5 and quick["cutoffs"] == [10, 100, 1000] and quick["large_cutoffs"] == [3, 6]
    assert quick["batch_size"] == 256  # no quick value: the default
    quick["cutoffs"].append(7)
    assert resolve({}, quick=True)["cutoffs"] == [10, 100, 1000]  # the definitions are never changed
    assert "cutoffs 10,100,1000" in parameters.quick_profile() and "repeats 1" in parameters.quick_profile()


@pytest.mark.parametrize(("given", "message"), [
    ({"repeats": 0}, "--repeats must be at least 1, got 0"),
    ({"batch_size": 0}, "--batch-size must be at least 1"),
    ({"compression_images": 0}, "--compression-images must be at least 1"),
    ({"scale_images": -1}, "--scale-images must be at least 1"),
    ({"methods": ["disk", "floppy"]}, r"unknown method\(s\) \['floppy'\]"),
    ({"compressions": ["lz77"]}, "--compressions: no method takes compression 'lz77'"),
])
def test_values_that_cannot_be_used_are_refused_naming_the_option(given, message):
    with pytest.raises(ParameterError, match=message):
        resolve(given)


def test_a_compression_is_read_as_the_stores_read_it():
    # the codec registry's reading of a name, the one open_store uses: its family in any case, a level in range
    assert resolve({"compressions": ["ZSTD", "Jpeg:90", "gzip:9"]})["compressions"] == ["ZSTD", "Jpeg:90", "gzip:9"]
    with pytest.raises(ParameterError, match="from 0 to 9"):
        resolve({"compressions": ["GZIP:12"]})


def test_option_text_is_parsed_into_the_values_the_notebooks_take():
    assert parameters.parse_ints("100, 10 1_000,10") == [10, 100, 1000]
    assert parameters.parse_names("disk, lmdb") == ["disk", "lmdb"]
    assert parameters.parse_image_size("256") == 256 and parameters.parse_image_size("256x192") == [256, 192]
    for parse, text in ((parameters.parse_ints, "ten"), (parameters.parse_ints, "0"),
                        (parameters.parse_names, " , "), (parameters.parse_image_size, "big")):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_every_parameter_with_an_option_is_on_the_command_line():
    parser = argparse.ArgumentParser()
    parameters.add_options(parser)
    given = vars(parser.parse_args(["--cutoffs", "10,20", "--no-cold-cache", "--image-size", "64x48"]))
    assert set(given) == {p.name for p in parameters.PARAMETERS if p.flag}  # all but results_dir
    assert given["cutoffs"] == [10, 20] and given["cold_cache"] is False and given["image_size"] == [64, 48]
    assert given["repeats"] is None  # not given: resolve takes the (quick) default


def test_report_drops_cutoffs_above_a_folders_image_count_and_says_so(tmp_path):
    root = tmp_path / "mixed"
    write_mixed_folder(root)  # seven images in two classes
    notes: list[str] = []
    assert parameters.cutoffs_within(str(root), [2, 5, 100], "--cutoffs", notes) == [2, 5, 7]
    assert notes and "100 dropped" in notes[0] and "7 images" in notes[0]
    assert parameters.cutoffs_within("scans", [10, 1000], "--large-cutoffs", notes) == [10, 1000]
    args = pipeline.build_parser().parse_args(["--dataset", str(root), "--image-size", "64x48", "--quick"])
    values = pipeline.notebook_parameters(args, [])
    assert values["image_size"] == [64, 48] and values["cutoffs"] == [7]
    assert values["large_dataset"] == "scans" and values["large_cutoffs"] == parameters.BY_NAME["large_cutoffs"].quick
    with pytest.raises(argparse.ArgumentTypeError):
        parameters.parse_image_size("big")


@pytest.mark.parametrize("name", ["dataset", "large_dataset"])
def test_a_dataset_folder_that_does_not_exist_stops_the_run_before_any_notebook(tmp_path, name):
    with pytest.raises(ParameterError, match=r"no-such-folder does not exist; expected .*'scans'"):
        resolve({name: str(tmp_path / "no-such-folder")})
    (tmp_path / "a-file.png").write_bytes(b"")
    with pytest.raises(ParameterError, match="is a file, not a folder"):
        resolve({name: str(tmp_path / "a-file.png")})
    assert resolve({name: str(tmp_path)})[name] == str(tmp_path.resolve())
