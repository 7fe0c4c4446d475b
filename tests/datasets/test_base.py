"""``Dataset``, the value every loader returns (``helpers.datasets.base``)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.core.errors import DatasetError
from helpers.datasets.base import Dataset


def test_dataset_checks_that_labels_match_images():
    with pytest.raises(DatasetError, match="one label each"):
        Dataset(np.zeros((3, 32, 32, 3), np.uint8), np.zeros(2), ["a"], "test")
    with pytest.raises(DatasetError, match="height, width, channels"):
        Dataset(np.zeros((3, 32, 32), np.uint8), np.zeros(3), ["a"], "test")


def test_dataset_labels_become_int64():
    dataset = Dataset(np.zeros((2, 4, 4, 3), np.uint8), [1, 0], ["a", "b"], "made by hand")
    assert dataset.labels.dtype == np.int64 and len(dataset) == 2 and not dataset.is_synthetic
