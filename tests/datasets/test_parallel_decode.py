"""Decoding a folder with the shared process pool (``helpers.datasets.parallel_decode``) gives what one
process gives, through the ring of shared slots or with chunks sent back, and leaves no slot file behind."""

from __future__ import annotations

import numpy as np
import pytest
from image_fixtures import gradient
from PIL import Image

from helpers import datasets
from helpers.core import pool
from helpers.core.errors import DatasetError
from helpers.datasets import parallel_decode


@pytest.mark.parametrize("memory_file_system", [True, False], ids=["slots", "chunks-sent-back"])
def test_the_process_pool_gives_what_one_process_gives(tmp_path, monkeypatch, memory_file_system):
    monkeypatch.setattr(pool, "PARALLEL_THRESHOLD", 8)
    shm = tmp_path / "shm"
    if memory_file_system:
        shm.mkdir()
    monkeypatch.setattr(parallel_decode, "SHARED_MEMORY_DIR", str(shm))
    sent = []
    send = parallel_decode.ParallelDecode._send

    def counting_send(self, pool):
        send(self, pool)
        sent.extend(first for _, first, _, _ in self.running if first not in sent)

    monkeypatch.setattr(parallel_decode.ParallelDecode, "_send", counting_send)
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(40):
        Image.fromarray(gradient(12, 10, 3, seed=index)).save(folder / f"{index:02d}.png")
    serial = datasets.load_folder(folder, workers=1, progress=False)
    parallel = datasets.load_folder(folder, workers=2, progress=False)
    assert sent, "no chunk went to a worker process"
    assert np.array_equal(serial.images, parallel.images)
    assert np.array_equal(serial.images[5], gradient(12, 10, 3, seed=5))
    assert not memory_file_system or not any(shm.iterdir())  # the slots' file is gone
    # a file that does not fit the first one's layout, found by whichever process decodes it: all the
    # headers are read and the pixels decoded again, as one process does
    Image.fromarray(gradient(12, 10, 1, seed=99)).save(folder / "00.png")
    Image.fromarray(gradient(10, 12, 3, seed=98)).save(folder / "39.png")
    for workers in (1, 2):
        with pytest.raises(DatasetError, match="2 different sizes"):
            datasets.load_folder(folder, workers=workers, progress=False)
    serial = datasets.load_folder(folder, workers=1, size=(12, 10), progress=False)
    parallel = datasets.load_folder(folder, workers=2, size=(12, 10), progress=False)
    assert serial.images.shape == (40, 12, 10, 3) and np.array_equal(serial.images, parallel.images)
    grey = gradient(12, 10, 1, seed=99)
    assert all(np.array_equal(serial.images[0, :, :, c], grey) for c in range(3))
    assert not memory_file_system or not any(shm.iterdir())


def test_a_file_that_fails_half_way_through_decoding_is_named_with_the_pool(tmp_path, monkeypatch):
    monkeypatch.setattr(pool, "PARALLEL_THRESHOLD", 8)
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(parallel_decode, "SHARED_MEMORY_DIR", str(shm))
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(40):
        path = folder / f"{index:02d}.png"
        Image.fromarray(gradient(32, 32, 3, seed=index)).save(path)
        if index >= 20:  # a valid header, pixels cut short: only decoding finds it
            path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"images/\d\d\.png: cannot decode it"):
        datasets.load_folder(folder, workers=2, progress=False)
    assert not any(shm.iterdir())
