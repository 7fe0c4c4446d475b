"""The contract for every registered method that has no test module of its own (``test_<method>.py`` beside
this file): a method added with one module and one registry line is tested without any other edit. Each
method that has a module subclasses ``StoreContract`` there, beside its own tests."""

from __future__ import annotations

from pathlib import Path

from stores.contract import contract_tests_for

from helpers.stores import names

HERE = Path(__file__).parent

for _method in names():
    if not (HERE / f"test_{_method}.py").exists():
        _contract = contract_tests_for(_method)
        globals()[_contract.__name__] = _contract
