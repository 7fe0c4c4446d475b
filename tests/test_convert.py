"""helpers.convert on a real Dask cluster reached through its TCP address, as a user's client would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import cloudpickle
import numpy as np
import pytest

from helpers.codecs import get_codec
from helpers.convert import Source, SyntheticSource, convert, open_source, read_task
from helpers.core.errors import DatasetError, ImageNotFoundError, IncompleteStoreError
from helpers.stores import names, open_store
from helpers.stores.values import EncodedImages

distributed = pytest.importorskip("distributed")

# Workers unpickle the test's own sources by value: this module is not importable on their side.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

N_IMAGES = 2_100  # three pieces of the disk store (1,000 images each), the last one short
DISTINCT = 300


@pytest.fixture(scope="module")
def scheduler_address():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def expected():
    return SyntheticSource(N_IMAGES, distinct=DISTINCT).read(0, N_IMAGES)


def file_bytes(store) -> dict[str, bytes]:
    return {str(p.relative_to(store.batch_path)): p.read_bytes() for p in store.batch_path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("method", names())
def test_conversion_reads_back_exactly_like_a_serial_store_many(method, scheduler_address, expected, tmp_path):
    assert scheduler_address.startswith("tcp://")
    store = convert(f"synthetic:{DISTINCT}", method, tmp_path / "converted", n=N_IMAGES, chunk_size=700,
                    client=scheduler_address, progress=False)
    serial = open_store(method, tmp_path / "serial")
    serial.store_many(*expected)
    images, labels = store.read_many(N_IMAGES)
    np.testing.assert_array_equal(images, expected[0])
    np.testing.assert_array_equal(labels, expected[1])
    if method not in ("lmdb", "sqlite"):  # the same files as serially (LMDB and SQLite place pages their own way)
        assert file_bytes(store) == file_bytes(serial)


@pytest.mark.parametrize("method,compression", [("disk", "png:1"), ("tar", "png"), ("lmdb", "png")])
def test_compressed_pieces_read_back_like_a_serial_store(method, compression, scheduler_address, expected, tmp_path):
    store = convert(f"synthetic:{DISTINCT}", method, tmp_path / "converted", n=N_IMAGES, chunk_size=700,
                    client=scheduler_address, compression=compression, progress=False)
    serial = open_store(method, tmp_path / "serial", compression=compression)
    serial.store_many(*expected)
    reader = open_store(method, tmp_path / "converted")  # the codec recorded, as serially
    images, labels = reader.read_many(N_IMAGES)
    np.testing.assert_array_equal(images, expected[0])
    np.testing.assert_array_equal(labels, expected[1])
    np.testing.assert_array_equal(reader.read_indices([N_IMAGES - 1, 3])[0], expected[0][[N_IMAGES - 1, 3]])
    if method != "lmdb":  # LMDB: one transaction per chunk, other page ids
        assert file_bytes(store) == file_bytes(serial)


def test_workers_encode_the_chunks_of_a_store_that_encodes_each_image():
    source = SyntheticSource(10, distinct=10)
    images, labels = read_task(source, 2, 7, "png")
    assert isinstance(images, EncodedImages) and images.shape == (5, 32, 32, 3) and len(labels) == 5
    np.testing.assert_array_equal(get_codec("png").decode(images.payloads[0], (32, 32, 3), np.uint8, "test"), source.read(2, 3)[0][0])
    assert isinstance(read_task(source, 2, 7)[0], np.ndarray)


class FailingSource(Source):
    """The synthetic images, except that reading the piece that holds image ``fail_at`` raises."""

    def __init__(self, fail_at: int) -> None:
        self.inner = SyntheticSource(N_IMAGES, distinct=DISTINCT)
        self.count, self.description, self.fail_at = N_IMAGES, "failing", fail_at

    def read(self, start: int, stop: int):
        if start <= self.fail_at < stop:
            raise OSError(f"source unreadable at image {self.fail_at}")
        return self.inner.read(start, stop)


@pytest.mark.parametrize("method", ["disk", "lmdb"])
def test_a_failed_task_leaves_no_batch_that_reads_as_complete_and_a_rerun_finishes(
    method, scheduler_address, expected, tmp_path
):
    with pytest.raises(OSError, match="source unreadable at image 1500"):
        convert(FailingSource(1_500), method, tmp_path, client=scheduler_address, chunk_size=700, progress=False)
    store = open_store(method, tmp_path)
    # disk keeps its finished pieces in the partial batch, which reads as incomplete; lmdb keeps nothing
    with pytest.raises(IncompleteStoreError if method == "disk" else ImageNotFoundError):
        store.read_many(1)
    if method == "disk":
        assert store.pieces_done() <= {0, 2} and 1 not in store.pieces_done()
        left = store.pieces_done()
        stamps = {index: (store.partial_path / f"{index:04d}").stat().st_ino for index in left}
    convert(SyntheticSource(N_IMAGES, distinct=DISTINCT), method, tmp_path, client=scheduler_address,
            chunk_size=700, progress=False)
    images, labels = open_store(method, tmp_path).read_many(N_IMAGES)
    np.testing.assert_array_equal(images, expected[0])
    np.testing.assert_array_equal(labels, expected[1])
    if method == "disk":  # the pieces written before the failure were kept, not written again
        assert all((store.batch_path / f"{index:04d}").stat().st_ino == stamps[index] for index in left)


class SlowSource(Source):
    """The synthetic images, a little slowly, so that a worker can be killed while the conversion runs."""

    def __init__(self) -> None:
        self.inner = SyntheticSource(4_000, distinct=DISTINCT)
        self.count, self.description = 4_000, "slow"

    def read(self, start: int, stop: int):
        time.sleep(0.4)
        return self.inner.read(start, stop)


@pytest.mark.parametrize("method", ["disk", "lmdb"])
def test_a_worker_killed_mid_conversion_is_replaced_and_the_store_is_exact(method, scheduler_address, tmp_path):
    source = SlowSource()
    killed = []
    with distributed.Client(scheduler_address) as client:
        pids = list(client.run(os.getpid).values())

        def kill_one_worker_once_running() -> None:
            time.sleep(0.6)  # some tasks have started: each takes at least 0.4 s
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

        killer = threading.Thread(target=kill_one_worker_once_running)
        killer.start()
        store = convert(source, method, tmp_path, client=client, chunk_size=1_000, progress=False)
        killer.join()
        assert killed and pids[0] not in client.run(os.getpid).values()
    images, labels = store.read_many(source.count)
    expected_images, expected_labels = source.inner.read(0, source.count)
    np.testing.assert_array_equal(images, expected_images)
    np.testing.assert_array_equal(labels, expected_labels)


def test_the_command_line_converts_on_an_existing_cluster(scheduler_address, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "helpers.convert", f"synthetic:{DISTINCT}", str(tmp_path), "--method", "disk",
         "-n", "1200", "--scheduler", scheduler_address],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote 1,200 images to the disk store in {tmp_path}" in done.stdout
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr and "WARNING" not in done.stderr
    assert "1.20k/1.20k" in done.stderr  # the progress bar got to the end
    assert len(open_store("disk", tmp_path)) == 1200


def test_help_documents_the_command_line():
    done = subprocess.run([sys.executable, "-m", "helpers.convert", "--help"], capture_output=True, text=True,
                          check=True)
    for option in ("--method", "--compression", "--workers", "--scheduler", "synthetic"):
        assert option in done.stdout


def test_sources_name_what_is_wrong(tmp_path):
    with pytest.raises(DatasetError, match="needs a number of images"):
        open_source("synthetic")
    with pytest.raises(DatasetError, match="unknown source 'nowhere'"):
        open_source("nowhere", 10)
    with pytest.raises(DatasetError, match="holds no batch"):
        open_source(f"lmdb:{tmp_path}")
    with pytest.raises(DatasetError, match="chunk_size must be a positive"):
        convert("synthetic", "lmdb", tmp_path, n=10, chunk_size=0)
