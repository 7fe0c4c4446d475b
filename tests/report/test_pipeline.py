"""The report pipeline: papermill runs the notebooks, one self-contained HTML page, a PDF when Chromium exists."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from helpers import stores
from helpers.report import pipeline as report
from helpers.report.parameters import PARAMETERS
from helpers.stores import FLOOR, names
from helpers.stores.npy_store import NpyStore

PROJECT = Path(__file__).resolve().parents[2]
TINY = {"cutoffs": [10, 50], "methods": ["disk", "lmdb", "hdf5"], "repeats": 1, "cold_cache": True,
        "image_size": None, "large_dataset": "scans", "large_cutoffs": [4, 8],
        "compressions": ["zstd", "gzip", "jpeg:90"], "compression_images": 50, "scale_images": 500}
FIGURES = [
    "dataset_samples", "single_image", "store_many_linear", "store_many_log", "read_many_linear", "read_many_log",
    "store_and_read", "per_image_cost", "disk_usage_stacked", "bytes_per_image", "scan_gallery", "large_images",
    "large_images_bytes_per_image",
    "access_read_random", "access_read_epoch", "access_read_many", "access_workers",
    "compression_trade_off", "compression_trade_off_scans", "at_scale_memory", "conversion_speed_up",
]
SECTIONS = [
    "The dataset and the machine", "One image at a time", "Many images at once", "Disk usage", "Conclusions",
    "At scale: past RAM and past one process", "Which formats can be written in parallel, and why",
    "Contents", "Parameters of this run", "Recommendations", "Compared with the article", "The cost of durable writes",
    "Large 16-bit images", "Small photos and large scans",
    "Access patterns", "Loader workers", "For shuffled training reads",
    "Compression: what every byte saved costs",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The whole quick pipeline once, on synthetic images, into a temporary folder."""
    root = tmp_path_factory.mktemp("report")
    parameters = {
        "dataset": "synthetic", **TINY, "work_dir": str(root / "work"), "results_dir": str(root / "out" / "results"),
        "figures_dir": str(root / "figures"),
    }
    written = report.make_report(parameters, root / "out", progress=False)
    return {"root": root, "parameters": parameters, **written,
            "page": written["html"].read_text(encoding="utf-8")}


@pytest.mark.slow
def test_every_notebook_ran_and_is_kept_with_its_code(built):
    for name in report.NOTEBOOKS:
        notebook = nbformat.read(built["notebooks"] / f"{name}.ipynb", as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(cell.execution_count for cell in code), name
        errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
        assert not errors, name
    assert (Path(built["parameters"]["results_dir"]) / "many_images.csv").exists()


@pytest.mark.slow
def test_the_kernel_runs_the_same_python_as_the_caller(built):
    setup = nbformat.read(built["notebooks"] / "00-setup.ipynb", as_version=4)
    outputs = str([cell.get("outputs") for cell in setup.cells if cell.cell_type == "code"])
    assert sys.executable in outputs


@pytest.mark.slow
def test_html_has_every_section_figure_and_the_banner(built):
    page = built["page"]
    for section in SECTIONS:
        assert section in page, section
    assert len(re.findall(r"<img[^>]+src=\"data:image/png;base64,", page)) >= len(FIGURES)
    assert "synthetic images, not CIFAR-10" in page
    assert "cutoffs" in page and "[10, 50]" in page
    for name in FIGURES:
        for suffix in (".png", ".svg"):
            assert (Path(built["parameters"]["figures_dir"]) / f"{name}{suffix}").exists(), name + suffix


@pytest.mark.slow
def test_html_hides_code_and_loads_nothing_from_the_network(built):
    page = built["page"]
    assert not re.search(r"""<(?:script|link|img|iframe)[^>]+(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert report.network_references(page) == []
    assert "chapter.measure(" not in page  # code cells are hidden
    assert "injected-parameters" not in page and "Traceback" not in page


@pytest.mark.slow
def test_pdf_has_pages_when_chromium_is_present(built):
    if report.find_chromium() is None:
        pytest.skip("no Chromium on PATH (make pdf-deps installs it); the HTML report was still written")
    assert built["pdf"] is not None and built["pdf"].read_bytes().startswith(b"%PDF")
    assert report.pdf_page_count(built["pdf"]) >= 5


def test_a_failing_notebook_stops_the_run_naming_notebook_and_cell(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    bad = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise ValueError('no such image')"),
    ])
    bad.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(bad, notebooks / "00-setup.ipynb")
    with pytest.raises(report.ReportError) as caught:
        report.run_notebooks(["00-setup"], {}, tmp_path / "executed", notebooks_dir=notebooks, progress=False)
    message = str(caught.value)
    assert "00-setup.ipynb" in message and "cell 1" in message and "ValueError: no such image" in message
    assert (tmp_path / "executed" / "00-setup.ipynb").exists()  # kept, error included


def test_without_chromium_the_html_is_written_and_the_way_to_the_pdf_is_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report, "find_chromium", lambda: None)
    parameters = {"dataset": "synthetic", **TINY, "work_dir": "w", "results_dir": str(tmp_path / "results"),
                  "figures_dir": "f"}
    written = report.make_report(parameters, tmp_path, names=[], progress=False)
    assert written["pdf"] is None and written["html"].exists()
    assert "make pdf-deps" in capsys.readouterr().out


def test_the_opening_paragraph_names_every_registered_format_beyond_the_article(monkeypatch):
    assert report.todays_formats() == ["Zarr", "WebDataset tar", "Parquet", "Arrow IPC", "SQLite"]
    assert "teams pick today (those in the run's `methods`: Zarr, WebDataset tar, Parquet, Arrow IPC, SQLite)." in (
        report.opening_paragraph())
    toy = types.ModuleType("toy_store")
    toy.ToyStore = type("ToyStore", (NpyStore,), {"name": "toy", "label": "Toy format"})
    monkeypatch.setitem(sys.modules, "toy_store", toy)
    monkeypatch.setitem(stores.REGISTRY, "toy", "toy_store:ToyStore")
    assert report.todays_formats()[-1] == "Toy format" and "SQLite, Toy format)." in report.opening_paragraph()


def test_network_references_are_found():
    assert report.network_references('<script src="https://cdn.example/require.js"></script>')
    assert report.network_references("<link rel=stylesheet href=//fonts.example/x.css>")
    assert report.network_references("<style>@import url('http://x/y.css');</style>")
    assert report.network_references('<img src="data:image/png;base64,AAAA">') == []


def test_quick_profile_and_explicit_options():
    parser = report.build_parser()
    quick = report.notebook_parameters(parser.parse_args(["--quick"]))
    assert quick["cutoffs"] == [10, 100, 1000] and quick["repeats"] == 1 and quick["cold_cache"] is True
    default = report.notebook_parameters(parser.parse_args([]))
    assert default["cutoffs"] == [10, 100, 1000, 10000, 100000] and default["repeats"] == 3
    assert default["methods"] == [name for name in names() if name != FLOOR]  # every method but the floor
    assert default["methods"][:3] == ["disk", "lmdb", "hdf5"] and "sqlite" in default["methods"]
    assert default["scale_images"] == 1_000_000 and quick["scale_images"] == 1_000
    assert default["work_dir"] == str(PROJECT / "data" / "work")
    assert default["results_dir"] == str(PROJECT / "reports" / "results")
    assert default["figures_dir"] == str(PROJECT / "figures")
    assert list(default) == [parameter.name for parameter in PARAMETERS]
    custom = report.notebook_parameters(parser.parse_args(
        ["--quick", "--cutoffs", "50,10", "--repeats", "2", "--no-cold-cache", "--methods", "hdf5"]))
    assert custom["cutoffs"] == [10, 50] and custom["repeats"] == 2 and custom["cold_cache"] is False
    assert all(Path(custom[key]).is_absolute() for key in ("work_dir", "results_dir", "figures_dir"))
    with pytest.raises(report.ReportError, match="unknown method"):
        report.notebook_parameters(parser.parse_args(["--methods", "floppy"]))
    assert quick["compression_images"] == 200 and default["compression_images"] == 2000
    assert default["compressions"] == ["zstd", "blosc", "gzip", "lzf", "jpegls", "jpeg:90"]
    assert report.notebook_parameters(parser.parse_args(["--compressions", "lzf,webp:80"]))["compressions"] == [
        "lzf", "webp:80"]
    with pytest.raises(report.ReportError, match="--compressions: no method takes compression 'lz77'"):
        report.notebook_parameters(parser.parse_args(["--compressions", "zstd,lz77"]))
    with pytest.raises(report.ReportError, match="--compressions: .*from 1 to 22"):
        report.notebook_parameters(parser.parse_args(["--compressions", "zstd:40"]))
    assert report.chosen_notebooks(["09", "00-setup"]) == ["00-setup", "09-conclusions"]
    with pytest.raises(report.ReportError, match="no notebook"):
        report.chosen_notebooks(["99"])


def test_help_lists_every_parameter():
    shown = subprocess.run([sys.executable, "-m", "helpers.report", "--help"], capture_output=True, text=True,
                           cwd=PROJECT, check=True).stdout
    for option in ("--dataset", "--quick", "--cutoffs", "--methods", "--repeats", "--no-cold-cache",
                   "--output-dir", "--figures-dir", "--work-dir", "--no-pdf", "--notebooks", "--image-size",
                   "--large-dataset", "--large-cutoffs", "--batch-size", "--workers",
                   "--compressions", "--compression-images"):
        assert option in shown, option


def test_environment_yml_installs_exactly_what_pyproject_declares():
    tomllib = pytest.importorskip("tomllib")
    yaml = pytest.importorskip("yaml")
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((PROJECT / "environment.yml").read_text())
    assert environment["channels"] == ["conda-forge"]
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in conda and "pip" in conda
    # Libraries come only from pyproject through the editable install, with the dev extra for the tests:
    # a library pinned here as well could drift from pyproject, so none may be.
    assert pip == ["-e .[dev]"]
    assert "dev" in project["optional-dependencies"]
    declared = {re.split(r"[<>=!~\[ ;]", d)[0].lower() for d in project["dependencies"]}
    assert not ({re.split(r"[<>=!~ ]", d)[0].lower() for d in conda} - {"python", "pip"}) & declared
    minimum = tuple(int(p) for p in re.search(r">=\s*(\d+\.\d+)", project["requires-python"]).group(1).split("."))
    assert (3, 11) >= minimum


def test_readme_starts_with_the_two_commands_and_shows_a_figure_the_report_writes():
    readme = (PROJECT / "README.md").read_text()
    first_block = readme.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["make report", "make test"]
    for section in ("## Library", "### Adding a storage method", "data/raw/cifar-10-batches-py", "make data"):
        assert section in readme
    shown = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", readme)
    assert shown and all(Path(path).stem in FIGURES for path in shown)
    ci = (PROJECT / ".ci" / "run").read_text()
    assert "make pdf-deps" in ci and ci.strip().endswith("make test")


@pytest.mark.slow
def test_the_report_cautions_about_the_file_system_when_its_environment_says_so(built):
    from helpers.report import environment

    info = environment.load(built["parameters"]["results_dir"])
    expected = info["filesystem_type"] == "ext4" and info["filesystem_journal"] is False
    assert ("without a journal" in built["page"]) is expected


def test_make_report_refuses_a_variable_it_does_not_take_and_passes_the_ones_it_does():
    def dry_run(*assignments: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "-n", "report", *assignments], cwd=PROJECT, capture_output=True, text=True,
                              timeout=60)

    refused = dry_run("METHODS=lmdb,hdf5", "QUICK=1")
    assert refused.returncode != 0 and "make report does not take METHODS" in refused.stderr
    accepted = dry_run("QUICK=1", "DATASET=synthetic", "REPORT_ARGS=--methods lmdb --repeats 2")
    assert accepted.returncode == 0, accepted.stderr
    assert "-m helpers.report --dataset synthetic" in accepted.stdout and "--quick --methods lmdb --repeats 2" in accepted.stdout
