"""The notebooks' parameters, each defined once: name, default, quick-profile value, command-line option,
help and check.

Everything else is made from ``PARAMETERS``: the pipeline's command-line options (``add_options``), the
values papermill gives every notebook (``resolve``), and the ``parameters`` cell of every notebook
(``cell_source``; ``python -m helpers.report.parameters --write-notebooks`` rewrites the cells, and a test
holds each committed cell to this rendering). Adding a parameter is one entry below.

``methods`` defaults to None in the notebooks, "every registered method but the floor", resolved by
``chosen_methods`` where the chapters measure: registering a storage method needs no notebook edit.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from helpers import codecs, stores
from helpers.core.errors import DatasetError, UnknownCodecError
from helpers.loader import BATCH_SIZE

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
#: The tag of the notebook cell papermill replaces.
CELL_TAG = "parameters"
#: The named datasets ``helpers.datasets.load`` knows; anything else is a path.
NAMED_DATASETS = ("auto", "cifar10", "synthetic", "scans")


class ParameterError(ValueError):
    """A parameter's value cannot be used; the message names the option and what it takes."""


# -- parsing option text ---------------------------------------------------------------------------------
def parse_ints(text: str) -> list[int]:
    """'10,100 1_000' -> [10, 100, 1000]: positive whole numbers, sorted, each once."""
    values = [part for part in re.split(r"[\s,]+", text.strip()) if part]
    try:
        numbers = [int(value.replace("_", "")) for value in values]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not numbers or any(n < 1 for n in numbers):
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return sorted(set(numbers))


def parse_names(text: str) -> list[str]:
    names = [part for part in re.split(r"[\s,]+", text.strip()) if part]
    if not names:
        raise argparse.ArgumentTypeError("expected at least one name")
    return names


def parse_image_size(text: str) -> int | list[int]:
    """'256' -> 256 (a square), '256x192' or '256,192' -> [256, 192] (height, width)."""
    try:
        sides = [int(part) for part in re.split(r"[x,\s]+", text.strip().lower()) if part]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2) or min(sides) < 1:
        raise argparse.ArgumentTypeError(f"expected a size like 256 or 256x192 (height x width), got {text!r}")
    return sides[0] if len(sides) == 1 else sides


# -- checks: (value, the values resolved before it, notes) -> the value the notebooks get -----------------
def default_methods() -> list[str]:
    """Every registered storage method but the floor (which is always measured beside them), in registry order."""
    return [name for name in stores.names() if name != stores.FLOOR]


def chosen_methods(methods: Sequence[str] | str | None) -> list[str]:
    """The methods a chapter measures: None means ``default_methods()``, a name alone a list of one; each once."""
    if methods is None:
        return default_methods()
    if isinstance(methods, str):
        methods = [methods]
    return list(dict.fromkeys(methods))


def check_methods(methods: Sequence[str] | None, values: dict, notes: list[str] | None) -> list[str]:
    chosen = chosen_methods(methods)
    unknown = [m for m in chosen if m not in stores.names()]
    if unknown:
        raise ParameterError(f"unknown method(s) {unknown}; known: {', '.join(stores.names())}")
    return chosen


def check_compressions(compressions: Sequence[str]) -> None:
    """UnknownCodecError unless some registered method takes each of ``compressions``, at a level in range."""
    for name in compressions:
        family = codecs.family(name)
        takers = [cls for cls in map(stores.store_class, stores.names()) if family in cls.compressions]
        if not takers:
            raise UnknownCodecError(f"no method takes compression {name!r}; see Store.compressions")
        for cls in takers:
            cls.check_compression(name)


def compressions_taken(compressions: Sequence[str], values: dict, notes: list[str] | None) -> list[str]:
    try:
        check_compressions(compressions)
    except UnknownCodecError as error:
        raise ParameterError(f"--compressions: {error}") from None
    return list(compressions)


def at_least_one(option: str) -> Callable[[int, dict, list[str] | None], int]:
    def check(value: int, values: dict, notes: list[str] | None) -> int:
        if value < 1:
            raise ParameterError(f"{option} must be at least 1, got {value}")
        return int(value)

    return check


def named_or_path(option: str, *named: str) -> Callable[[str, dict, list[str] | None], str]:
    """A dataset: one of ``named`` as it is, anything else the absolute path of an existing folder (checked
    here, so a typo stops the run before the first notebook rather than inside it)."""
    def check(value: str, values: dict, notes: list[str] | None) -> str:
        if value in named:
            return value
        path = Path(value).expanduser().resolve()
        if not path.is_dir():
            what = "is a file, not a folder" if path.exists() else "does not exist"
            raise ParameterError(
                f"{option} {value}: {path} {what}; expected {' or '.join(repr(name) for name in named)}, or "
                f"the path of a folder"
            )
        return str(path)

    return check


def absolute_path(value: str | os.PathLike[str], values: dict, notes: list[str] | None) -> str:
    return str(Path(value).resolve())


def cutoffs_within(dataset: str, cutoffs: list[int], option: str, notes: list[str] | None = None) -> list[int]:
    """``cutoffs`` without those above a folder's number of images (a folder's images are never repeated),
    plus that number, so the whole folder is measured. What was dropped is printed and added to ``notes``.
    """
    from helpers.datasets import is_image_folder
    from helpers.datasets.folder import list_images

    if dataset in NAMED_DATASETS or not is_image_folder(dataset):
        return cutoffs
    try:
        count = len(list_images(dataset).files)
    except DatasetError as error:
        raise ParameterError(str(error)) from None
    kept = [n for n in cutoffs if n <= count]
    dropped = [n for n in cutoffs if n > count]
    if dropped:
        if not kept or kept[-1] < count:
            kept.append(count)  # the whole folder is still measured once
        note = (f"{option}: {', '.join(f'{n:,}' for n in dropped)} dropped, more than the {count:,} images in "
                f"{dataset}; measured at {', '.join(f'{n:,}' for n in kept)}")
        print(note, flush=True)
        if notes is not None:
            notes.append(note)
    return kept


def counts_of(dataset_parameter: str, option: str) -> Callable[[list[int], dict, list[str] | None], list[int]]:
    """Cutoffs checked against the dataset resolved before them (``cutoffs_within``)."""
    def check(cutoffs: list[int], values: dict, notes: list[str] | None) -> list[int]:
        return cutoffs_within(values[dataset_parameter], list(cutoffs), option, notes)

    return check


# -- the definitions -------------------------------------------------------------------------------------
#: A parameter whose quick-profile value is its default.
SAME = object()


@dataclass(frozen=True)
class Parameter:
    """One notebook parameter.

    ``default`` is the value in the notebooks' cell, ``quick`` the quick profile's (``SAME``: the default);
    ``help`` may name ``{default}`` and ``{quick}``. ``option`` is the command-line option, ``--<name with
    dashes>`` when left empty, None when the pipeline sets the value itself (``results_dir``, from
    ``--output-dir``); ``parse`` turns the option's text into the value, None making the option a switch
    that turns the default off. ``check`` takes the value, the values resolved before it and the notes,
    and returns the value the notebooks get (ParameterError if it cannot be used). ``path``: the default is
    relative to ``notebooks/``, as in the notebooks' cell. ``comment`` follows the value in the cell.
    """

    name: str
    default: object
    help: str
    quick: object = SAME
    parse: Callable[[str], object] | None = str
    option: str | None = ""
    check: Callable[[object, dict, list[str] | None], object] | None = None
    path: bool = False
    comment: str = ""

    @property
    def flag(self) -> str | None:
        """The command-line option: ``--<name with dashes>`` unless defined otherwise."""
        if self.option is None:
            return None
        return self.option or "--" + self.name.replace("_", "-")

    def profile_default(self, quick: bool) -> object:
        """The value when none is given: a copy, so that no caller changes the definition."""
        return copy.deepcopy(self.default if not quick or self.quick is SAME else self.quick)

    def help_text(self) -> str:
        return self.help.format(default=shown(self, self.default), quick=shown(self, self.quick))


def shown(parameter: Parameter, value: object) -> str:
    """A value as the command line writes it: 10,100,1000; a notebooks-relative path from the project root."""
    if parameter.path and isinstance(value, str):
        return os.path.relpath(NOTEBOOKS_DIR / value, PROJECT_ROOT) + "/"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("dataset", "auto", check=named_or_path("--dataset", *NAMED_DATASETS),
              help='"auto" (CIFAR-10 from data/raw, else synthetic; never downloads: `make data` does), "cifar10" '
                   '(an error if missing), "synthetic", "scans", the path of a CIFAR-10 folder, or a folder of '
                   "your own images (default: {default})"),
    Parameter("cutoffs", [10, 100, 1000, 10000, 100000], quick=[10, 100, 1000], parse=parse_ints,
              check=counts_of("dataset", "--cutoffs"),
              help="numbers of images to store and read, e.g. 10,100,1000 (default {default}, quick {quick})"),
    Parameter("methods", None, parse=parse_names, check=check_methods,
              comment="None: every registered method but the floor",
              help="storage methods, e.g. disk,lmdb,hdf5 (default: every registered method but the floor); the "
                   "NumPy floor is always measured beside them"),
    Parameter("repeats", 3, quick=1, parse=int, check=at_least_one("--repeats"),
              help="timed runs per measurement, at least (default {default}, quick {quick})"),
    Parameter("cold_cache", True, parse=None, option="--no-cold-cache",
              help="measure warm reads only (no page-cache eviction)"),
    Parameter("work_dir", "../data/work", parse=Path, path=True, check=absolute_path,
              help="where the stores are written (default {default}); needs free space"),
    Parameter("results_dir", "../reports/results", option=None, path=True, check=absolute_path,
              help="where the results tables go: <output-dir>/results"),
    Parameter("figures_dir", "../figures", parse=Path, path=True, check=absolute_path,
              help="where the figures are saved as PNG and SVG (default {default})"),
    Parameter("image_size", None, parse=parse_image_size,
              help="resize the images of a folder to this size, keeping the aspect ratio and cropping the "
                   "centre: 256 or 256x192 (height x width); needed when their sizes differ"),
    Parameter("large_dataset", "scans", check=named_or_path("--large-dataset", "scans"),
              help='the large-images chapter\'s images: "scans" (synthetic 512x512 16-bit CT slices) or a '
                   "folder of images (default: {default})"),
    Parameter("large_cutoffs", [10, 100, 1000], quick=[3, 6], parse=parse_ints,
              check=counts_of("large_dataset", "--large-cutoffs"),
              help="numbers of large images to store and read (default {default}, quick {quick})"),
    Parameter("batch_size", BATCH_SIZE, parse=int, check=at_least_one("--batch-size"),
              help="images per mini-batch of the shuffled epochs (default {default})"),
    Parameter("workers", [1, 2], parse=parse_ints,
              help="numbers of loader worker processes to time the shuffled epoch with, e.g. 1,2,4 "
                   "(default {default})"),
    Parameter("compressions", ["zstd", "blosc", "gzip", "lzf", "jpegls", "jpeg:90"],
              quick=["zstd", "blosc", "jpeg:90"],  # a byte compressor, a bit-shuffling one, a lossy codec
              parse=parse_names, check=compressions_taken,
              help="codecs and filters the compression chapter measures with every method that takes them, "
                   "e.g. zstd,blosc,jpeg:90 (default {default}, quick {quick})"),
    Parameter("compression_images", 2000, quick=200, parse=int, check=at_least_one("--compression-images"),
              help="CIFAR images of the compression chapter (default {default}, quick {quick})"),
    # store_chunks of this many images; the chapter caps its conversions
    Parameter("scale_images", 1_000_000, quick=1_000, parse=int, check=at_least_one("--scale-images"),
              help="images the at-scale chapter writes (default {default}, quick {quick})"),
)
BY_NAME = {parameter.name: parameter for parameter in PARAMETERS}


# -- what the definitions make ---------------------------------------------------------------------------
def add_options(parser: argparse.ArgumentParser) -> None:
    """One option per parameter that has one; an option left out is None, so ``resolve`` knows it was not given."""
    for parameter in PARAMETERS:
        if parameter.flag is None:
            continue
        if parameter.parse is None:
            parser.add_argument(parameter.flag, dest=parameter.name, action="store_const", const=False,
                                default=None, help=parameter.help_text())
        else:
            parser.add_argument(parameter.flag, dest=parameter.name, type=parameter.parse, default=None,
                                help=parameter.help_text())


def quick_profile() -> str:
    """What the quick profile changes, in words: 'cutoffs 10,100,1000, repeats 1, ...'."""
    return ", ".join(f"{p.name} {shown(p, p.quick)}" for p in PARAMETERS if p.quick is not SAME)


def resolve(given: dict[str, object], *, quick: bool = False, notes: list[str] | None = None) -> dict:
    """Every parameter's value, in definition order: the given one, else the (quick) default, checked.

    Paths become absolute (a default one relative to ``notebooks/``, as in the notebooks). ParameterError
    names the first value that cannot be used; ``notes`` collects what was changed and why.
    """
    values: dict[str, object] = {}
    for parameter in PARAMETERS:
        value = given.get(parameter.name)
        if value is None:
            value = parameter.profile_default(quick)
            if parameter.path:
                value = NOTEBOOKS_DIR / value
        if parameter.check is not None:
            value = parameter.check(value, values, notes)
        values[parameter.name] = value
    return values


def literal(value: object) -> str:
    """A value as Python source, strings in double quotes as the notebooks write them."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(literal, value)) + "]"
    return repr(value)


def cell_source() -> str:
    """The source of every notebook's ``parameters`` cell: each parameter's name and notebook default."""
    lines = []
    for parameter in PARAMETERS:
        line = f"{parameter.name} = {literal(parameter.default)}"
        lines.append(line + (f"  # {parameter.comment}" if parameter.comment else ""))
    return "\n".join(lines)


def write_notebooks(notebooks_dir: str | os.PathLike[str] = NOTEBOOKS_DIR) -> list[Path]:
    """Rewrite the ``parameters`` cell of every notebook in ``notebooks_dir`` as ``cell_source()``; the
    notebooks changed. ValueError for a notebook without exactly one such cell."""
    import nbformat

    changed = []
    for path in sorted(Path(notebooks_dir).glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        cells = [cell for cell in notebook.cells if CELL_TAG in cell.metadata.get("tags", [])]
        if len(cells) != 1:
            raise ValueError(f"{path}: expected one cell tagged {CELL_TAG!r}, found {len(cells)}")
        if cells[0].source != cell_source():
            cells[0].source = cell_source()
            nbformat.write(notebook, path)
            changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.report.parameters", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-notebooks", action="store_true",
                        help="rewrite the parameters cell of every notebook in notebooks/ from the definitions")
    args = parser.parse_args(argv)
    if not args.write_notebooks:
        print(cell_source())
        return 0
    for path in write_notebooks():
        print(f"rewrote the parameters cell of {path.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
