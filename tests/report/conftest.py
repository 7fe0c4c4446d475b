import numpy as np
import pytest

from helpers import measure


@pytest.fixture(autouse=True)
def quick_timing(monkeypatch):
    """Every measurement runs exactly ``repeats`` times: the tests check what is measured, not how fast."""
    monkeypatch.setattr(measure, "MIN_TOTAL_SECONDS", 0.0)


@pytest.fixture
def batch() -> tuple[np.ndarray, np.ndarray]:
    """Twelve small random colour images and their labels."""
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(12, 6, 5, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=12)
    return images, labels
