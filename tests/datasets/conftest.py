"""Fixtures the dataset tests share: a network that must not be used, and a mixed folder of images."""

from __future__ import annotations

import urllib.request

import pytest
from image_fixtures import write_mixed_folder


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a URL fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"the network was used: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def mixed(tmp_path):
    root = tmp_path / "mixed"
    return root, write_mixed_folder(root)
