"""A storage method registered with one line appears in the report with no other edit: in the methods the
chapters measure, in every figure's names, colours and order, and in the sentences."""

from __future__ import annotations

import sys

import pytest
from report_fixtures import summary_of

from helpers import stores
from helpers.report import parameters, style
from helpers.report.chapters import conclusions

TOY_MODULE = '''
from helpers.stores.npy_store import NpyStore


class ToyStore(NpyStore):
    name = "toy"
    label = "Toy format"
    colour = "#123456"
    choose_when = "Toy format when a test needs a method of its own"
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "toy_store.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(stores.REGISTRY, "toy", "toy_store:ToyStore")
    yield "toy"
    sys.modules.pop("toy_store", None)


def test_the_new_method_is_measured_drawn_and_recommended(toy):
    assert parameters.resolve({})["methods"][-1] == toy
    assert style.method_label(toy) == "Toy format" and style.method_color(toy) == "#123456"
    assert style.ordered_methods(["npy", toy, "hdf5", "disk"]) == ["disk", "hdf5", toy, "npy"]
    text = conclusions.recommendations(summary_of({"disk": 1e-3, "hdf5": 1e-5, toy: 5e-6, "npy": 4e-6}))
    assert "this run favours Toy format**, then HDF5" in text
    assert "Choose PNG files when" in text and "Toy format when a test needs a method of its own." in text
