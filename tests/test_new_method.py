"""Adding a storage method is one module and one registry line: a toy method, registered from a temporary
module with no other edit, is covered by the store contract tests, measured by the report's chapters (its
default ``methods``), drawn with its own name, colour and place in every figure, and recommended in the
conclusions' sentences with its own words."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import summary_of

from helpers import stores
from helpers.report import parameters, style
from helpers.report.chapters import conclusions

TESTS = Path(__file__).resolve().parent
PROJECT = TESTS.parent

# The whole of a new method, as a reader would add it: a Store subclass in a module of its own. It reuses the
# floor's files here (a new format would write its own); what it proves is that nothing else names it.
TOY_MODULE = '''
from helpers.stores.npy_store import NpyStore


class ToyStore(NpyStore):
    name = "toy"
    label = "Toy format"
    colour = "#123456"
    trade_off = "A raw array per batch, registered by a test."
    choose_when = "Toy format when a test needs a method of its own"
'''
# ... and its registry line, made by a pytest plugin in the run that collects the contract tests.
REGISTERING_PLUGIN = 'from helpers import stores\n\nstores.REGISTRY["toy"] = "toy_store:ToyStore"\n'


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "toy_store.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(stores.REGISTRY, "toy", "toy_store:ToyStore")
    yield "toy"
    sys.modules.pop("toy_store", None)


def test_the_new_method_is_listed_before_the_floor(toy):
    assert stores.names()[-2:] == [toy, stores.FLOOR]
    assert stores.store_class(toy).name == toy


def test_the_new_method_is_measured_drawn_and_recommended(toy):
    assert parameters.resolve({})["methods"][-1] == toy
    assert style.method_label(toy) == "Toy format" and style.method_color(toy) == "#123456"
    assert style.ordered_methods(["npy", toy, "hdf5", "disk"]) == ["disk", "hdf5", toy, "npy"]
    text = conclusions.recommendations(summary_of({"disk": 1e-3, "hdf5": 1e-5, toy: 5e-6, "npy": 4e-6}))
    assert "this run favours Toy format**, then HDF5" in text
    assert "Choose PNG files when" in text and "Toy format when a test needs a method of its own." in text


def test_the_new_method_passes_the_store_contract(tmp_path):
    (tmp_path / "toy_store.py").write_text(TOY_MODULE)
    (tmp_path / "register_toy.py").write_text(REGISTERING_PLUGIN)
    env = dict(os.environ)
    # the plugin, and the toy's module for the child processes the contract starts (kills, spawn readers)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), str(PROJECT), env.get("PYTHONPATH", "")]))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "register_toy", "-n", "0", "-q", "-p", "no:cacheprovider",
         "-rN", str(TESTS / "stores" / "test_registered_methods.py")],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 50, summary  # the whole contract ran against the toy, not one stray test
