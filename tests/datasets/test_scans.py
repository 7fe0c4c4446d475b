"""Synthetic CT-like scans and pydicom-data's real CT slices (``helpers.datasets.scans``)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import datasets
from helpers.core.errors import DatasetError
from helpers.datasets import scans


def test_synthetic_scans_are_deterministic_12_bit_ct_like_slices():
    first = datasets.synthetic_scans(10, size=128)
    assert first.images.shape == (10, 128, 128, 1) and first.images.dtype == np.uint16
    assert first.images.max() <= 4095 and first.images.max() > 2047  # 12 bits, all of them used (bone)
    assert (first.images[:, 0, 0] == 0).all()  # outside the field of view: the scanner's constant
    assert first.class_names == scans.SCAN_CLASS_NAMES and first.labels.tolist()[:4] == [0, 1, 2, 0]
    again = datasets.synthetic_scans(10, size=128)
    prefix = datasets.synthetic_scans(3, size=128)
    other = datasets.synthetic_scans(10, size=128, seed=1)
    assert np.array_equal(first.images, again.images) and np.array_equal(prefix.images, first.images[:3])
    assert not np.array_equal(first.images, other.images)
    assert not np.array_equal(first.images[0], first.images[3])  # same region, different patient


def test_the_real_ct_slice_comes_from_the_installed_package_without_download():
    path = scans.real_slice_path()
    assert path.is_file() and path.name == "693_UNCR.dcm"
    slices = scans.real_slices(("693_UNCR.dcm",))
    assert slices["693_UNCR.dcm"].shape == (512, 512) and slices["693_UNCR.dcm"].dtype == np.uint16
    with pytest.raises(DatasetError, match="pydicom-data"):
        scans.real_slice_path("no-such-slice.dcm")


def test_real_slices_are_read_with_the_network_cut_off(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("the real CT slices must come from the installed package, never the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert scans.real_slices()["693_UNCR.dcm"].shape == (512, 512)
