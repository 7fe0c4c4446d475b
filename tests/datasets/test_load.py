"""``helpers.datasets.load``: the choice between local CIFAR-10, the synthetic stand-ins and a folder, and
``n`` taking the first images or repeating them. Nothing here downloads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cifar_fixtures import write_binary_batches, write_python_batches

from helpers import datasets
from helpers.core.errors import DatasetError
from helpers.datasets import cifar10, load, synthetic

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty data folder in place of data/raw, with downloads switched off."""
    root = tmp_path / "raw"
    root.mkdir()
    monkeypatch.setenv("IMAGE_REPORT_DATA", str(root))
    monkeypatch.setenv("IMAGE_REPORT_OFFLINE", "1")
    return root


@pytest.fixture
def downloads_fail(monkeypatch):
    """``download_cifar10`` fails the test, wherever ``load`` might look it up."""

    def download(*args, **kwargs):
        pytest.fail("load() tried to download CIFAR-10")

    monkeypatch.setattr(datasets, "download_cifar10", download)
    monkeypatch.setattr(cifar10, "download_cifar10", download)


def test_data_root_defaults_to_the_projects_data_raw(monkeypatch):
    monkeypatch.delenv("IMAGE_REPORT_DATA", raising=False)
    assert datasets.default_data_root() == PROJECT / "data" / "raw"


def test_auto_falls_back_to_synthetic_and_says_why(data_root, no_network):
    dataset = load("auto", n=20)
    assert dataset.is_synthetic and len(dataset) == 20
    assert str(data_root) in dataset.source and "make data" in dataset.source
    np.testing.assert_array_equal(dataset.images, synthetic(20).images)


def test_auto_never_uses_the_network_even_when_downloads_are_allowed(
    data_root, no_network, downloads_fail, monkeypatch
):
    monkeypatch.setenv("IMAGE_REPORT_OFFLINE", "0")
    dataset = load("auto", n=10)
    assert dataset.is_synthetic and "make data" in dataset.source
    assert not any(data_root.iterdir())  # nothing fetched, nothing half-written


def test_auto_uses_local_cifar10(data_root, no_network):
    _, images, labels = write_binary_batches(data_root)
    dataset = load("auto")
    assert not dataset.is_synthetic and dataset.source.startswith("CIFAR-10 training set")
    np.testing.assert_array_equal(dataset.images, images)
    np.testing.assert_array_equal(dataset.labels, labels)


def test_auto_does_not_hide_damaged_local_data(data_root, no_network):
    folder = write_python_batches(data_root).folder
    (folder / "data_batch_2").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="data_batch_2"):
        load("auto")


@pytest.mark.parametrize("offline", ["0", "1"])
def test_cifar10_source_fails_with_the_advice_and_never_downloads(
    data_root, no_network, downloads_fail, monkeypatch, offline
):
    monkeypatch.setenv("IMAGE_REPORT_OFFLINE", offline)
    with pytest.raises(DatasetError, match="make data") as raised:
        load("cifar10")
    assert str(data_root) in str(raised.value)


def test_cifar10_source_reads_the_data_folder(data_root, no_network):
    _, images, _ = write_python_batches(data_root)
    np.testing.assert_array_equal(load("cifar10", n=5).images, images[:5])


def test_synthetic_source(data_root):
    dataset = load("synthetic", n=30)
    assert dataset.is_synthetic and len(dataset) == 30


def test_a_path_source_loads_that_folder(tmp_path, data_root, no_network):
    _, images, labels = write_python_batches(tmp_path / "elsewhere")
    dataset = load(str(tmp_path / "elsewhere"))
    np.testing.assert_array_equal(dataset.images, images)
    np.testing.assert_array_equal(dataset.labels, labels)


def test_n_takes_the_first_images(tmp_path, data_root):
    _, images, labels = write_python_batches(tmp_path)
    dataset = load(str(tmp_path), n=7)
    np.testing.assert_array_equal(dataset.images, images[:7])
    np.testing.assert_array_equal(dataset.labels, labels[:7])
    assert "first 7" in dataset.source


def test_n_larger_than_the_set_repeats_it_in_order(tmp_path, data_root):
    _, images, labels = write_python_batches(tmp_path)  # 20 images
    dataset = load(str(tmp_path), n=45)
    assert len(dataset) == 45
    np.testing.assert_array_equal(dataset.images[:20], images)
    np.testing.assert_array_equal(dataset.images[20:40], images)
    np.testing.assert_array_equal(dataset.images[40:], images[:5])
    np.testing.assert_array_equal(dataset.labels[20:40], labels)
    assert "repeated to 45 images" in dataset.source


def test_n_equal_to_the_set_is_the_set(tmp_path, data_root):
    _, images, _ = write_python_batches(tmp_path)
    dataset = load(str(tmp_path), n=20)
    np.testing.assert_array_equal(dataset.images, images)
    assert "repeated" not in dataset.source and "first" not in dataset.source


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_bad_n_is_refused(tmp_path, data_root, n):
    write_python_batches(tmp_path)
    with pytest.raises(DatasetError, match="positive number of images"):
        load(str(tmp_path), n=n)


def test_unknown_source_lists_the_choices(data_root):
    with pytest.raises(DatasetError, match="unknown dataset 'imagenet'") as raised:
        load("imagenet")
    for choice in ("'auto'", "'cifar10'", "'synthetic'"):
        assert choice in str(raised.value)


def test_a_path_that_is_not_cifar10_is_refused(tmp_path, data_root):
    (tmp_path / "photos").mkdir()
    with pytest.raises(DatasetError, match="holds no CIFAR-10 batches"):
        load(str(tmp_path / "photos"))


def test_load_reads_a_folder_of_images_and_a_cifar_folder_stays_cifar(mixed, tmp_path):
    root, _ = mixed
    data = datasets.load(str(root), n=3, size=16)
    assert len(data) == 3 and data.images.shape[1:] == (16, 16, 3)  # n reads at most n, never repeats
    assert len(datasets.load(str(root), n=100, size=16)) == 7
    cifar = tmp_path / "cifar"
    write_python_batches(cifar)
    assert "CIFAR-10" in datasets.load(str(cifar)).source
