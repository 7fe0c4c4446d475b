"""The synthetic CIFAR-shaped stand-in (``helpers.datasets.synthetic_cifar``): shaped, deterministic, and
PNG-compressing like CIFAR-10's photos."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from helpers import datasets
from helpers.core.errors import DatasetError
from helpers.datasets import base
from helpers.datasets.synthetic_cifar import synthetic

CIFAR10_MEAN_PNG_BYTES = 2_270


def png_size(image: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.tell()


def test_synthetic_is_cifar_shaped():
    dataset = synthetic(25)
    assert dataset.images.shape == (25, 32, 32, 3) and dataset.images.dtype == np.uint8
    assert dataset.labels.dtype == np.int64 and len(dataset) == 25
    assert len(dataset.class_names) == len(set(dataset.class_names)) == 10
    assert set(dataset.labels.tolist()) == set(range(10))
    assert dataset.is_synthetic and dataset.source.startswith("SYNTHETIC")


def test_synthetic_is_deterministic_and_prefix_stable():
    first, again = synthetic(600, seed=3), synthetic(600, seed=3)
    assert first.images.tobytes() == again.images.tobytes()
    np.testing.assert_array_equal(first.labels, again.labels)
    np.testing.assert_array_equal(synthetic(300, seed=3).images, first.images[:300])
    assert not np.array_equal(synthetic(50, seed=4).images, first.images[:50])


def test_synthetic_images_differ_and_use_the_range():
    images = synthetic(200).images
    assert len({image.tobytes() for image in images}) == 200
    assert images.min() < 30 and images.max() > 225
    assert 60 < images.mean() < 200


def test_synthetic_classes_are_visually_distinct():
    """A nearest-mean-image classifier, as crude as they come, trained on half the images must name the
    other half's classes far better than chance, although backgrounds and positions are random."""
    dataset = synthetic(2000, seed=1)
    # 8 x 8 thumbnails keep the arithmetic small
    pixels = dataset.images.reshape(-1, 8, 4, 8, 4, 3).mean(axis=(2, 4)).reshape(len(dataset), -1)
    train, test = slice(0, 1000), slice(1000, 2000)
    means = np.stack([pixels[train][dataset.labels[train] == label].mean(axis=0) for label in range(10)])
    distances = ((pixels[test][:, None, :] - means[None]) ** 2).sum(axis=2)
    accuracy = (distances.argmin(axis=1) == dataset.labels[test]).mean()
    assert accuracy > 0.3  # chance is 0.1; this crude classifier gets about 0.45


def test_synthetic_compresses_like_cifar10_as_png():
    sizes = [png_size(image) for image in synthetic(2000).images]
    mean = float(np.mean(sizes))
    assert abs(mean - CIFAR10_MEAN_PNG_BYTES) <= 0.10 * CIFAR10_MEAN_PNG_BYTES, mean
    assert np.std(sizes) > 100  # photos vary in detail; so do these


@pytest.mark.parametrize("n", [0, -5, 2.5, True, "10"])
def test_synthetic_refuses_bad_counts(n):
    with pytest.raises(DatasetError, match="positive number of images"):
        synthetic(n)


def test_synthetic_does_not_depend_on_the_number_of_threads(monkeypatch):
    threaded = synthetic(700, seed=5).images
    monkeypatch.setattr(base, "MAX_THREADS", 1)
    np.testing.assert_array_equal(synthetic(700, seed=5).images, threaded)


def test_synthetic_chunks_are_the_synthetic_set_cut_in_pieces():
    whole = datasets.synthetic(700, seed=5)
    chunks = list(datasets.synthetic_chunks(700, chunk_size=97, seed=5))
    assert [len(images) for images, _ in chunks] == [97] * 7 + [21]
    np.testing.assert_array_equal(np.concatenate([images for images, _ in chunks]), whole.images)
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in chunks]), whole.labels)
    images, labels = datasets.synthetic_range(300, 302, seed=5)
    np.testing.assert_array_equal(images, whole.images[300:302])
    with pytest.raises(DatasetError, match="chunk_size must be a positive"):
        next(datasets.synthetic_chunks(10, chunk_size=0))
