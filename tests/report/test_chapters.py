"""Each chapter stands alone: no chapter imports another, and the report-level modules they share import none.

What a later chapter needs of an earlier one it reads from the results tables (``helpers.report.results``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import helpers.report

REPORT = Path(helpers.report.__file__).resolve().parent
CHAPTERS = REPORT / "chapters"
CHAPTER_PACKAGE = "helpers.report.chapters"


def imported_modules(path: Path, package: str) -> set[str]:
    """Every module ``path`` (a module of ``package``) imports anywhere in its code, ``from a import b``
    counted as ``a`` and ``a.b``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: from the module's own package, or one above per extra dot
                parts = package.split(".")
                module = ".".join(parts[: len(parts) - node.level + 1] + ([module] if module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def chapters_imported(path: Path, package: str) -> set[str]:
    return {name for name in imported_modules(path, package)
            if name.startswith(CHAPTER_PACKAGE + ".") and name.count(".") == 3}


CHAPTER_MODULES = sorted(path for path in CHAPTERS.glob("*.py") if path.name != "__init__.py")


def test_there_is_one_chapter_per_notebook():
    from helpers.report.pipeline import NOTEBOOKS

    assert [path.stem for path in CHAPTER_MODULES] == sorted([
        "setup", "single_image", "many_images", "disk_usage", "access_patterns", "large_images", "compression",
        "at_scale", "conclusions"])
    assert len(CHAPTER_MODULES) == len(NOTEBOOKS)


@pytest.mark.parametrize("path", CHAPTER_MODULES, ids=lambda path: path.stem)
def test_no_chapter_imports_another(path):
    assert chapters_imported(path, CHAPTER_PACKAGE) - {f"{CHAPTER_PACKAGE}.{path.stem}"} == set()


@pytest.mark.parametrize("path", sorted(REPORT.glob("*.py")), ids=lambda path: path.stem)
def test_the_report_level_modules_import_no_chapter(path):
    assert chapters_imported(path, "helpers.report") == set()


def test_the_import_finder_sees_imports_inside_functions_and_relative_ones(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from helpers.report.chapters import compression\n")
    assert chapters_imported(module, "helpers.report") == {"helpers.report.chapters.compression"}
    module.write_text("from . import compression\nfrom .at_scale import main\nfrom ..chapters import setup\n")
    assert chapters_imported(module, CHAPTER_PACKAGE) == {
        "helpers.report.chapters.compression", "helpers.report.chapters.at_scale", "helpers.report.chapters.setup"}
