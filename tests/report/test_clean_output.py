"""A report that succeeds prints progress and results, never a traceback or a warning.

A notebook that writes and reads a PNG batch through the worker pool (the part that printed a dozen
``KeyboardInterrupt`` tracebacks when the kernel was shut down) runs through ``helpers.report`` in a child
process, as ``make report`` runs it; everything that process prints is checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

PROJECT = Path(__file__).resolve().parents[2]

POOL_CELLS = [
    "import numpy as np\n"
    "from helpers.report.measuring import progress_bar\n"
    "from helpers.stores.disk import DiskStore",
    "images = np.random.default_rng(0).integers(0, 256, (2000, 32, 32, 3), dtype=np.uint8)\n"
    "store = DiskStore(work_dir, workers=2)\n"
    "for step in progress_bar([('disk', 2000)], True):\n"
    "    store.store_many(images, np.arange(2000) % 10)\n"
    "back, _ = store.read_many(2000)\n"
    "assert (back == images).all()\n"
    "print('round trip through the pool: ok')",
    "import atexit\n"
    "atexit.register(lambda: open(work_dir + '/exit.txt', 'w').write('exit handlers ran'))",
]


def write_notebook(folder: Path) -> None:
    parameters = new_code_cell('work_dir = "unset"', metadata={"tags": ["parameters"]})
    notebook = new_notebook(cells=[parameters, *map(new_code_cell, POOL_CELLS)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "pool.ipynb")


def test_a_notebook_using_the_pool_runs_without_traceback_or_warning(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks)
    script = (
        "import sys\nfrom pathlib import Path\nfrom helpers.report.pipeline import run_notebooks\n"
        "run_notebooks(['pool'], {'work_dir': sys.argv[1]}, Path(sys.argv[2]), notebooks_dir=Path(sys.argv[3]))\n"
    )
    # With PYTEST_CURRENT_TEST set, ipykernel leaves its file descriptors alone, so whatever the kernel and
    # its child processes write to them (the resource tracker's warnings among it) reaches this console too.
    env = {**os.environ, "PYTEST_CURRENT_TEST": os.environ.get("PYTEST_CURRENT_TEST", "clean output")}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "work"), str(tmp_path / "executed"), str(notebooks)],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=240,
    )
    console = result.stdout + result.stderr
    assert result.returncode == 0, console
    assert "[1/1] pool done" in console
    executed = nbformat.read(tmp_path / "executed" / "pool.ipynb", as_version=4)
    printed = "".join(output.get("text", "") for cell in executed.cells for output in cell.get("outputs", []))
    assert "round trip through the pool: ok" in printed
    for word in ("Traceback", "Warning", "WARNING", "leaked"):
        assert word not in console, f"{word!r} printed:\n{console}"
    # The kernel exited by itself (its exit handlers ran) instead of being killed after the shutdown wait.
    assert "exit handlers ran" in (tmp_path / "work" / "exit.txt").read_text()
