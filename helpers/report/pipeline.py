"""Run the notebooks with papermill and turn them into one report: ``report.html`` and ``report.pdf``.

``python -m helpers.report --help`` lists the parameters (``helpers.report.parameters`` defines them);
``make report`` calls this module.

1. Each notebook in ``notebooks/`` runs in order with the same parameters (papermill, kernel ``python3``
   of this very interpreter); executed copies, code included, go to ``<output-dir>/notebooks/``. A failing
   notebook stops the run, naming the notebook and the cell; the results written so far are kept.
2. The executed notebooks are merged into one HTML page: a title, the dataset banner, the parameters, a
   table of contents, then every notebook with its code hidden. Everything is inline (figures as data
   URIs, styles in the page): no script, style sheet or font is loaded from the network.
3. Headless Chromium prints that page to ``report.pdf``. Without Chromium the HTML is still written and a
   message says how to get the PDF.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from helpers import stores
from helpers.core.files import write_atomically
from helpers.report import results
from helpers.report.parameters import (
    BY_NAME,
    NOTEBOOKS_DIR,
    PROJECT_ROOT,
    ParameterError,
    add_options,
    parse_names,
    quick_profile,
    resolve,
)
from helpers.report.text import banner_html

if TYPE_CHECKING:
    from traitlets.config import Config

NOTEBOOKS = (
    "00-setup", "01-single-image", "02-many-images", "03-disk-usage", "04-access-patterns", "05-large-images",
    "06-compression", "07-at-scale",
    "09-conclusions",
)
KERNEL = "python3"
TITLE = "Storing lots of images in Python: PNG files, LMDB, HDF5 and today's formats, measured"
#: The article's three methods, which the title and the opening paragraph name in words; every other
#: registered method but the floor is one of "today's formats".
ARTICLE_METHODS = ("disk", "lmdb", "hdf5")

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PDF_TIMEOUT_SECONDS = 180
HOW_TO_GET_CHROMIUM = (
    "No Chromium found, so only the HTML report was written. To get the PDF as well, run `make pdf-deps` "
    "(as root) or `sudo apt-get install chromium fonts-dejavu-core`, then `make report` again."
)

# Everything the default nbconvert "lab" template would fetch from a CDN (require.js, MathJax, mermaid,
# the widget manager) is switched off; the report has no widgets, formulas or diagrams to render.
HTML_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<style type="text/css">""" + """
main { max-width: 1060px; margin: 0 auto; padding: 0 1.5em 3em; }
.jp-OutputArea-output img { max-width: 100%; height: auto; }
.jp-RenderedHTMLCommon table { font-size: 0.85em; }
.report-toc ol { line-height: 1.6; }
.report-notebook-start { border-top: 3px solid #d4d4d4; margin-top: 2em; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  main { max-width: none; padding: 0; }
  .report-notebook-start { break-before: page; border-top: none; margin-top: 0; }
  .jp-OutputArea-output img, .jp-RenderedHTMLCommon table, .report-banner { break-inside: avoid; }
  .jp-RenderedHTMLCommon h2, .jp-RenderedHTMLCommon h3 { break-after: avoid; }
}
</style>{%- endblock extra_css -%}
"""
# What would make the page load something from the network: src/href attributes and CSS imports or
# urls with an http(s) address, and JavaScript module imports.
NETWORK_REFERENCE = re.compile(
    r"""(?:\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//)|(?:@import\s+(?:url\()?\s*["']?(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?(?:https?:)?//)|(?:\bimport\(\s*["'](?:https?:)?//)""",
    re.IGNORECASE,
)


class ReportError(RuntimeError):
    """The report could not be made; the message says which step failed and what was kept."""


# -- parameters -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The notebooks' parameters as options (``helpers.report.parameters``), and the pipeline's own."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.report",
        description="Run the notebooks and write the report (HTML and PDF) with the timing graphs.",
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"small profile: {quick_profile()} (explicit options still win)")
    add_options(parser)
    parser.add_argument("--output-dir", type=Path, default=PROJECT_ROOT / "reports",
                        help="where report.html, report.pdf, notebooks/ and results/ go (default reports/)")
    parser.add_argument("--no-pdf", dest="pdf", action="store_false", help="write the HTML report only")
    parser.add_argument("--notebooks", type=parse_names, default=None,
                        help="run only these notebooks, by name or number prefix, e.g. 00,03,09 "
                             "(later ones read the results earlier runs left in the output folder)")
    return parser


def notebook_parameters(args: argparse.Namespace, notes: list[str] | None = None) -> dict:
    """The papermill parameters, the same for every notebook; every path absolute.

    Cutoffs above the number of images of a folder are dropped; ``notes`` collects what was dropped.
    """
    given = {name: getattr(args, name, None) for name in BY_NAME}
    given["results_dir"] = Path(args.output_dir) / "results"
    try:
        return resolve(given, quick=args.quick, notes=notes)
    except ParameterError as error:
        raise ReportError(str(error)) from None


def chosen_notebooks(selection: Sequence[str] | None) -> list[str]:
    if not selection:
        return list(NOTEBOOKS)
    chosen = []
    for wanted in selection:
        stem = wanted.removesuffix(".ipynb")
        matches = [name for name in NOTEBOOKS if name == stem or name.startswith(stem + "-") or name[:2] == stem]
        if not matches:
            raise ReportError(f"no notebook called {wanted!r}; the notebooks are {', '.join(NOTEBOOKS)}")
        chosen.extend(matches)
    return [name for name in NOTEBOOKS if name in chosen]


# -- running ------------------------------------------------------------------------------------------
def kernel_environment() -> None:
    """Make papermill start this interpreter's kernel, able to import ``helpers``.

    The kernel spec of the environment this interpreter belongs to wins over one a user installed
    elsewhere (JUPYTER_PREFER_ENV_PATH), and its "python" command becomes ``sys.executable``.
    """
    os.environ["JUPYTER_PREFER_ENV_PATH"] = "1"
    path = os.environ.get("PYTHONPATH", "")
    if str(PROJECT_ROOT) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), path) if p)


def kernel_config() -> Config:
    """Kernel-manager settings for papermill: the kernel's sockets encrypted, so it does not warn that it
    "is running over TCP without encryption" once per notebook.

    jupyter_client 8.10 provisions CurveZMQ keys to kernels whose spec declares support
    (``KernelManager.transport_encryption = "auto"``; ipykernel's does). With an older jupyter_client or a
    libzmq without Curve, the kernel talks over IPC sockets instead, which that warning names as the other
    remedy (local files, no TCP port at all).
    """
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    if KernelManager.class_traits().get("transport_encryption") is not None and zmq.has("curve"):
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    return Config({"KernelManager": {"transport": "ipc"}})


def run_notebooks(
    names: Sequence[str], parameters: dict, executed_dir: Path, *, notebooks_dir: Path = NOTEBOOKS_DIR,
    progress: bool = True,
) -> list[Path]:
    """Execute the notebooks in order; the executed copies. ReportError naming the notebook and cell on failure."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    kernel_environment()
    executed_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for number, name in enumerate(names, 1):
        source = notebooks_dir / f"{name}.ipynb"
        target = executed_dir / f"{name}.ipynb"
        print(f"[{number}/{len(names)}] {name} ...", flush=True)
        started = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(source), str(target), parameters=parameters, kernel_name=KERNEL,
                cwd=str(notebooks_dir), progress_bar=progress, log_output=False,
                # the notebooks' own progress bars (method and image count being measured) go to stderr
                stderr_file=sys.stderr if progress else None,
                config=kernel_config(),  # papermill passes it to nbclient, nbclient to the kernel manager
            )
        except PapermillExecutionError as error:
            raise ReportError(
                f"notebook {source.name} failed in cell {error.cell_index} (execution count "
                f"{error.exec_count}): {error.ename}: {error.evalue}\n"
                f"  the executed notebook, with the error, is {target}\n"
                f"  results written so far are kept in {parameters.get('results_dir', 'the results folder')}"
            ) from None
        print(f"[{number}/{len(names)}] {name} done in {time.perf_counter() - started:.1f} s", flush=True)
        done.append(target)
    return done


# -- merging ------------------------------------------------------------------------------------------
HEADING = re.compile(r"^(#{1,5})\s+(.+?)\s*#*\s*$")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def demote_headings(markdown: str, anchors: list[tuple[int, str, str]], prefix: str) -> str:
    """Headings one level down (the report's title is the only H1), each with an anchor for the contents.

    ``anchors`` collects (level, text, anchor id) of each level-1 and level-2 heading of the notebook.
    """
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else HEADING.match(line)
        if match:
            level, text = len(match.group(1)), match.group(2)
            if level <= 2:
                anchor = f"{prefix}-{slug(text)}"
                anchors.append((level, text, anchor))
                out.append(f'<a id="{anchor}"></a>\n')
            line = "#" * (level + 1) + " " + text
        out.append(line)
    return "\n".join(out)


def report_cells(notebook: nbformat.NotebookNode, prefix: str, anchors: list) -> list:
    """The notebook's cells as the report shows them: no parameter cells, no stderr, headings demoted."""
    cells = []
    for cell in notebook.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {"parameters", "injected-parameters", "report-hide"}:
            continue
        cell = copy.deepcopy(cell)
        if cell.cell_type == "markdown":
            cell.source = demote_headings(cell.source, anchors, prefix)
        elif cell.cell_type == "code":
            # progress bars and warnings go to stderr: useful while running, noise in a report
            cell.outputs = [o for o in cell.get("outputs", []) if not (o.output_type == "stream" and o.name == "stderr")]
            if not cell.outputs:
                continue
        cells.append(cell)
    return cells


def dataset_source(results_dir: Path) -> str | None:
    """Which images the run measured, as 00-setup recorded it; None when it did not run."""
    try:
        return results.read_facts(results_dir).get("dataset_source")
    except (FileNotFoundError, ValueError):
        return None


def parameters_markdown(parameters: dict, names: Sequence[str], notes: Sequence[str] = ()) -> str:
    rows = "\n".join(f"| `{key}` | `{value!r}` |" for key, value in parameters.items())
    return (
        "## Parameters of this run\n\n"
        "Every notebook ran with these values (papermill parameters; `python -m helpers.report --help` "
        "explains them):\n\n| parameter | value |\n|---|---|\n" + rows
        + "".join(f"\n\n**Note:** {note}." for note in notes)
        + f"\n\nNotebooks: {', '.join(names)}. Generated "
        + datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") + "."
    )


def todays_formats() -> list[str]:
    """The labels of the registered methods beyond the article's three and the floor, in registry order."""
    return [stores.store_class(method).label for method in stores.names()
            if method not in ARTICLE_METHODS and method != stores.FLOOR]


def opening_paragraph() -> str:
    """What the report is, under its title; today's formats are the registered ones (``todays_formats``)."""
    return ("The experiments of the article \"Three Ways of Storing and Accessing Lots of Images in Python\" "
            "(PNG files on disk, LMDB, HDF5), repeated on this machine with repeated timings, warm and cold reads, "
            "measured disk usage and a raw NumPy reference floor, next to the formats teams pick today (those in "
            f"the run's `methods`: {', '.join(todays_formats())}).")


def merge(executed: Sequence[Path], parameters: dict, notes: Sequence[str] = ()) -> nbformat.NotebookNode:
    """One notebook holding the title, banner, parameters, contents and every executed notebook."""
    body, anchors, kernel_metadata = [], [], {}
    for path in executed:
        notebook = nbformat.read(path, as_version=4)
        if not kernel_metadata and "kernelspec" in notebook.metadata:
            kernel_metadata = {"kernelspec": notebook.metadata["kernelspec"],
                               "language_info": notebook.metadata.get("language_info", {})}
        prefix = path.stem
        body.append(nbformat.v4.new_markdown_cell(f'<div class="report-notebook-start" id="{prefix}"></div>'))
        body.extend(report_cells(notebook, prefix, anchors))
    contents = ["## Contents", ""]
    number = 0
    for level, text, anchor in anchors:
        if level == 1:
            number += 1
            contents.append(f"{number}. [{text}](#{anchor})")
        else:
            contents.append(f"    - [{text}](#{anchor})")
    source = dataset_source(Path(parameters["results_dir"]))
    banner = banner_html(source) if source else (
        '<div class="report-banner">The dataset was not recorded (00-setup did not run).</div>'
    )
    head = [
        nbformat.v4.new_markdown_cell(f"# {TITLE}\n\n{opening_paragraph()}"),
        nbformat.v4.new_markdown_cell(banner),
        nbformat.v4.new_markdown_cell('<div class="report-toc">\n\n' + "\n".join(contents) + "\n\n</div>"),
        nbformat.v4.new_markdown_cell(parameters_markdown(parameters, [p.stem for p in executed], notes)),
    ]
    merged = nbformat.v4.new_notebook(cells=head + body)
    merged.metadata["title"] = TITLE
    merged.metadata.update(kernel_metadata)
    return merged


# -- exporting -----------------------------------------------------------------------------------------
def network_references(page: str) -> list[str]:
    """Every place in ``page`` that would load something from the network (should be none)."""
    return [page[max(0, m.start() - 40): m.end() + 60] for m in NETWORK_REFERENCE.finditer(page)]


def export_html(notebook: nbformat.NotebookNode, target: Path) -> Path:
    """Write the merged notebook as one self-contained HTML page, code hidden; ReportError if it is not."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"report.html.j2": HTML_TEMPLATE})],
        template_file="report.html.j2",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    page, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": TITLE}})
    found = network_references(page)
    if found:
        raise ReportError(f"the HTML report would load {len(found)} thing(s) from the network, e.g. {found[0]!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, page.encode("utf-8"), durable=False)
    return target


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html_path: Path, pdf_path: Path, chromium: str) -> Path:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium, in a fresh throw-away profile."""
    profile = Path(tempfile.mkdtemp(prefix="report-chromium-"))
    partial = pdf_path.with_name(pdf_path.stem + ".partial.pdf")
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--print-to-pdf={partial}", "--no-pdf-header-footer",
        html_path.resolve().as_uri(),
    ]
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=PDF_TIMEOUT_SECONDS)
        if finished.returncode != 0 or not partial.exists() or partial.stat().st_size == 0:
            raise ReportError(
                f"Chromium could not print {html_path} (exit status {finished.returncode}): "
                f"{finished.stderr.strip()[-800:]}"
            )
        os.replace(partial, pdf_path)
    except subprocess.TimeoutExpired:
        raise ReportError(f"Chromium did not finish printing {html_path} within {PDF_TIMEOUT_SECONDS} s") from None
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(profile, ignore_errors=True)
    return pdf_path


def pdf_page_count(path: Path) -> int:
    """Pages of a PDF, counted from its page objects (enough for the PDFs Chromium writes)."""
    data = Path(path).read_bytes()
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))


# -- the whole thing -----------------------------------------------------------------------------------
def make_report(
    parameters: dict, output_dir: Path, *, names: Sequence[str] = NOTEBOOKS, pdf: bool = True,
    notebooks_dir: Path = NOTEBOOKS_DIR, progress: bool = True, notes: Sequence[str] = (),
) -> dict[str, Path | None]:
    """Run ``names`` and write the report; the paths written ("html", "pdf", "notebooks")."""
    output_dir = Path(output_dir)
    executed_dir = output_dir / "notebooks"
    executed = run_notebooks(names, parameters, executed_dir, notebooks_dir=notebooks_dir, progress=progress)
    html_path = export_html(merge(executed, parameters, notes), output_dir / "report.html")
    print(f"HTML report: {html_path}", flush=True)
    pdf_path = None
    if pdf:
        chromium = find_chromium()
        if chromium is None:
            print(HOW_TO_GET_CHROMIUM, flush=True)
        else:
            pdf_path = print_pdf(html_path, output_dir / "report.pdf", chromium)
            print(f"PDF report:  {pdf_path} ({pdf_page_count(pdf_path)} pages)", flush=True)
    return {"html": html_path, "pdf": pdf_path, "notebooks": executed_dir}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        notes: list[str] = []
        parameters = notebook_parameters(args, notes)
        names = chosen_notebooks(args.notebooks)
        print("Parameters: " + ", ".join(f"{key}={value!r}" for key, value in parameters.items()), flush=True)
        written = make_report(parameters, args.output_dir.resolve(), names=names, pdf=args.pdf, notes=notes)
    except ReportError as error:
        print(f"report: {error}", file=sys.stderr, flush=True)
        return 1
    print(f"Done in {time.perf_counter() - started:.0f} s. Open {written['html']}"
          + (f" or {written['pdf']}" if written["pdf"] else "") + ".", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
