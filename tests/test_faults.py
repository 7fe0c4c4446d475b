"""Faults and bad input: kills mid-write, full disks, damaged files, several readers, wrong arguments.

The promise under test: whatever happens, a store either reads back exactly what was written or raises
one of the library's own errors (helpers.core.errors) naming the problem. Never wrong data, never a bare crash.
"""

from __future__ import annotations

import faulthandler
import hashlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from helpers.core import space
from helpers import stores
from helpers.core.errors import (
    ImageFormatError,
    ImageNotFoundError,
    IncompleteStoreError,
    InsufficientSpaceError,
    StorageReportError,
    UnknownMethodError,
)
from helpers.stores import FLOOR, Store, names, open_store
from helpers.stores.disk import png_path
from helpers.core.measure import disk_usage


def allocated_bytes(path):
    return disk_usage(path).allocated if Path(path).exists() else 0

METHODS = names()
PROJECT = Path(__file__).resolve().parents[1]


def patterned_images(n: int, shape=(32, 32, 3), seed: int = 0) -> np.ndarray:
    """Distinct images, cheap to make in bulk: a random tile shifted by each image's index."""
    tile = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    offsets = (np.arange(n, dtype=np.uint64) * 7919 % 256).astype(np.uint8)
    return tile[np.newaxis] + offsets.reshape(n, *([1] * len(shape)))


def smooth_image(shape=(32, 32, 3)) -> np.ndarray:
    """An image PNG compresses well, so damage to its compressed bytes decodes to other pixels."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return np.stack([rows * 7, cols * 5, rows + cols], axis=-1).astype(np.uint8)[..., : shape[2]]


def labels_for(n: int) -> np.ndarray:
    return (np.arange(n, dtype=np.int64) * 31) % 10 - 2


def assert_exact(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def child_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH", "")]))
    return env


def stop_png_workers() -> None:
    """A forked child leaves through os._exit, which skips the atexit hook that stops the shared process
    pool; its workers would wait for work forever (and keep the test run's output pipe open)."""
    pool_module = sys.modules.get("helpers.core.pool")
    pool = getattr(pool_module, "_pool", None)
    if pool is not None and getattr(pool_module, "_pool_owner", None) == os.getpid():
        pool.shutdown(wait=True)


def run_in_child(action):
    """Run ``action()`` in a forked child, so that a crash (a SIGBUS from a memory map over a full disk
    or a truncated file) fails one test instead of killing the test run.

    Returns ("ok", result) or ("raised", type name, message, whether it is one of helpers.core.errors).
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child():
        faulthandler.disable()  # a crash here is the finding, reported by the parent; no traceback dump
        try:
            sender.send(("ok", action()))
        except BaseException as error:  # reported to the parent, which judges it
            sender.send(("raised", type(error).__name__, str(error), isinstance(error, StorageReportError)))
        stop_png_workers()
        os._exit(0)

    process = context.Process(target=child)
    process.start()
    process.join(120)
    if process.exitcode != 0:
        code = process.exitcode
        cause = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        pytest.fail(f"the process died instead of raising an error ({cause})")
    return receiver.recv()


# -- interrupted writes --------------------------------------------------------------------------------

KILL_IMAGES = 20_000

def start_writer(method: str, root: Path) -> subprocess.Popen:
    """A separate Python that writes a big batch; in its own session so its whole group can be killed."""
    program = textwrap.dedent(
        f"""
        import numpy as np
        from helpers.stores import open_store
        tile = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
        offsets = (np.arange({KILL_IMAGES}, dtype=np.uint64) * 7919 % 256).astype(np.uint8)
        images = tile[np.newaxis] + offsets.reshape({KILL_IMAGES}, 1, 1, 1)
        labels = (np.arange({KILL_IMAGES}, dtype=np.int64) * 31) % 10 - 2
        open_store({method!r}, {str(root)!r}).store_many(images, labels)
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", program], env=child_environment(), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def kill_when_partial_grows(writer: subprocess.Popen, partial: Path, timeout: float = 60.0) -> bool:
    """SIGKILL the writer's process group once ``partial`` holds data; False if it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if writer.poll() is not None:
            return False
        if allocated_bytes(partial) > 64 * 1024:
            # The whole group: the disk store's PNG workers would otherwise outlive the writer.
            os.killpg(writer.pid, signal.SIGKILL)
            writer.wait()
            return True
        time.sleep(0.001)
    os.killpg(writer.pid, signal.SIGKILL)
    writer.wait()
    pytest.fail(f"the writer made no progress on {partial} in {timeout} s")


@pytest.mark.parametrize("method", METHODS)
def test_kill_during_store_many_never_reads_back_wrong_data(tmp_path, method):
    store = open_store(method, tmp_path)
    store.store_many(patterned_images(10, seed=9), labels_for(10))  # an older batch, to be replaced
    images, labels = patterned_images(KILL_IMAGES), labels_for(KILL_IMAGES)

    writer = start_writer(method, tmp_path)
    killed_mid_write = kill_when_partial_grows(writer, store.partial_path)
    if killed_mid_write:
        with pytest.raises(IncompleteStoreError, match=r"clear\(\)"):
            store.read_many(5)
    else:  # the kill came after the rename: the batch is complete and exact
        assert writer.returncode == 0, writer.stderr.read().decode()
        back, back_labels = store.read_many(KILL_IMAGES)
        assert_exact(back, images)
        assert_exact(back_labels, labels)
    # Either way the older batch is never passed off as the new one: it was removed before writing.
    store.clear()
    assert store.files() == []
    store.store_many(images, labels)
    back, back_labels = store.read_many(KILL_IMAGES)
    assert_exact(back, images)
    assert_exact(back_labels, labels)


def crash_at_replace(store: Store, action, crash_at: int, after: bool) -> None:
    """In a forked child: run ``action(store)`` and SIGKILL the process at the n-th os.replace."""
    real_replace = os.replace
    calls = 0

    def replace(source, destination, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == crash_at and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(source, destination, *args, **kwargs)
        if calls == crash_at and after:
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    action(store)
    stop_png_workers()
    os._exit(0)  # the crash point was never reached


def run_with_crash(store: Store, action, crash_at: int, after: bool) -> int:
    process = multiprocessing.get_context("fork").Process(
        target=crash_at_replace, args=(store, action, crash_at, after)
    )
    process.start()
    process.join(60)
    return process.exitcode


# Every place a store_single can die: before and after each rename it makes (the disk store makes two:
# the PNG, then the label CSV; LMDB makes none, its commit is atomic).
CRASH_POINTS = [(n, after) for n in (1, 2, 3) for after in (False, True)]


@pytest.mark.parametrize("method", METHODS)
def test_kill_during_store_single_never_leaves_a_readable_but_wrong_image(tmp_path, method):
    old_image, new_image = patterned_images(2, seed=3)
    store = open_store(method, tmp_path)
    for crash_at, after in CRASH_POINTS:
        store.clear()
        store.store_single(old_image, 7, label=1)
        exitcode = run_with_crash(store, lambda s: s.store_single(new_image, 7, label=2), crash_at, after)
        assert exitcode in (0, -signal.SIGKILL)
        try:
            image, label = store.read_single(7)
        except StorageReportError as error:
            assert str(error)
            continue
        # Readable: then it must be one whole write, the old one or the new one, never a mix.
        assert (label, digest(image)) in {(1, digest(old_image)), (2, digest(new_image))}, (
            f"crash at rename {crash_at} ({'after' if after else 'before'}) left image and label "
            f"from different writes: label {label}"
        )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("after", [False, True], ids=["before-rename", "after-rename"])
def test_kill_at_the_batch_rename(tmp_path, method, after):
    store = open_store(method, tmp_path)
    images, labels = patterned_images(40), labels_for(40)
    # The batch's own rename is the last os.replace of store_many; count them in a dry run first.
    calls = []
    real_replace = os.replace
    try:
        os.replace = lambda *args, **kwargs: (calls.append(args), real_replace(*args, **kwargs))[1]
        store.store_many(images, labels)
    finally:
        os.replace = real_replace
    store.clear()
    exitcode = run_with_crash(store, lambda s: s.store_many(images, labels), len(calls), after)
    assert exitcode == -signal.SIGKILL
    if after:
        back, back_labels = store.read_many(40)
        assert_exact(back, images)
        assert_exact(back_labels, labels)
    else:
        with pytest.raises(IncompleteStoreError, match=store.partial_path.name):
            store.read_many(40)


# -- disk space ----------------------------------------------------------------------------------------


def test_estimates_cover_what_each_store_really_allocates(tmp_path):
    for shape in [(32, 32, 3), (64, 48), (16, 16, 4)]:
        images = np.random.default_rng(1).integers(0, 256, size=(300, *shape), dtype=np.uint8)  # noise
        for method in METHODS:
            store = open_store(method, tmp_path / method / "x".join(map(str, shape)))
            store.store_many(images, labels_for(300))
            used = allocated_bytes(store.batch_path)
            estimate = stores.estimate_bytes(method, 300, shape, np.uint8)
            assert estimate == store.estimated_batch_bytes(images)
            assert used <= estimate, f"{method} {shape}: {used} bytes allocated, estimated {estimate}"
            assert estimate <= 4 * max(used, 1) + 64 * 1024, f"{method} {shape}: estimate far too high"
            for image_id, image in enumerate(images[:20]):
                store.store_single(image, image_id, label=image_id)
            single_used = sum(allocated_bytes(p) for p in store.files()) - used
            assert single_used <= stores.estimate_single_bytes(method, 20, shape, np.uint8)


def test_estimate_grows_with_the_batch_and_rejects_nonsense():
    small = stores.estimate_bytes("lmdb", 100, (32, 32, 3), np.uint8)
    large = stores.estimate_bytes("lmdb", 10_000, (32, 32, 3), np.uint8)
    assert large > 50 * small > 0
    assert large >= 10_000 * 4096  # one page per value at least
    assert stores.estimate_bytes("disk", 100, (32, 32, 3), "uint8") >= 100 * 4096  # a block per file at least
    with pytest.raises(UnknownMethodError, match="tiff"):
        stores.estimate_bytes("tiff", 1, (32, 32, 3), np.uint8)
    with pytest.raises(ImageFormatError, match="n_images"):
        stores.estimate_bytes("hdf5", -1, (32, 32, 3), np.uint8)
    with pytest.raises(ImageFormatError, match="float64"):
        stores.estimate_bytes("hdf5", 1, (32, 32, 3), np.float64)


def test_experiment_bytes_counts_the_largest_cutoff_of_each_method_and_the_floor():
    shape = (32, 32, 3)
    total = stores.experiment_bytes(["disk", "lmdb"], [10, 1000, 100], shape, np.uint8, include_single=False)
    expected = sum(stores.estimate_bytes(m, 1000, shape, np.uint8) for m in ["disk", "lmdb", FLOOR])
    assert total == expected
    with_singles = stores.experiment_bytes(["disk", "lmdb"], [10, 1000], shape, np.uint8)
    assert with_singles > total
    with pytest.raises(ImageFormatError, match="cutoffs"):
        stores.experiment_bytes(["disk"], [], shape, np.uint8)


def test_free_bytes_looks_at_the_nearest_existing_folder(tmp_path):
    assert space.free_bytes(tmp_path / "not" / "yet" / "made") == shutil.disk_usage(tmp_path).free
    assert space.existing_parent(tmp_path / "not" / "yet") == tmp_path


def test_check_free_space_message_gives_both_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(space, "free_bytes", lambda path: 1536)
    space.check_free_space(tmp_path, 1000)
    with pytest.raises(InsufficientSpaceError) as caught:
        space.check_free_space(tmp_path, 3 * 1024**3, what="the experiment")
    message = str(caught.value)
    assert "3.0 GiB (3,221,225,472 bytes)" in message
    assert "1.5 KiB (1,536 bytes)" in message
    assert "the experiment" in message and str(tmp_path) in message
    assert isinstance(caught.value, OSError)


@pytest.mark.parametrize("method", METHODS)
def test_store_many_refuses_before_touching_the_previous_batch(tmp_path, method, monkeypatch):
    store = open_store(method, tmp_path)
    old_images, old_labels = patterned_images(20, seed=2), labels_for(20)
    store.store_many(old_images, old_labels)
    before = {path: path.read_bytes() for path in store.files()}

    new_images = patterned_images(2000)
    monkeypatch.setattr(space, "free_bytes", lambda path: 100_000)
    with pytest.raises(InsufficientSpaceError, match="bytes") as caught:
        store.store_many(new_images, labels_for(2000))
    assert str(tmp_path) in str(caught.value)

    assert {path: path.read_bytes() for path in store.files()} == before
    back, back_labels = store.read_many(20)
    assert_exact(back, old_images)
    assert_exact(back_labels, old_labels)


@pytest.mark.parametrize("method", METHODS)
def test_the_previous_batch_counts_as_space_it_will_free(tmp_path, method, monkeypatch):
    store = open_store(method, tmp_path)
    images = patterned_images(200)
    store.store_many(images, labels_for(200))
    # Just too little free space for a second batch of the same size unless the first one's is counted.
    needed = store.estimated_batch_bytes(images)
    monkeypatch.setattr(space, "free_bytes", lambda path: needed - allocated_bytes(store.batch_path) + 1)
    store.store_many(images[::-1].copy(), labels_for(200))
    assert_exact(store.read_many(200)[0], images[::-1])


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs, or a skip if this machine will not mount one (needs root)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill: {result.stderr.strip() or result.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


@pytest.mark.parametrize("method", METHODS)
def test_a_full_disk_gives_a_clear_error_and_leaves_no_partial_batch(tiny_disk, method, monkeypatch):
    root = tiny_disk / method
    store = open_store(method, root)
    monkeypatch.setattr(space, "free_bytes", lambda path: 1 << 40)  # skip the preflight: really fill it
    images = patterned_images(300, shape=(64, 64, 3))  # 3.7 MB of pixels for a 2 MiB filesystem
    outcome = run_in_child(lambda: store.store_many(images, labels_for(300)))
    assert outcome[0] == "raised", "a batch larger than the disk was stored"
    _, kind, message, typed = outcome
    assert kind == "InsufficientSpaceError", f"{kind}: {message}"
    assert str(root) in message
    assert not store.partial_path.exists()
    assert not store.batch_path.exists()
    with pytest.raises(ImageNotFoundError):
        store.read_many(1)
    # Nothing half-written is kept: the space is free again for a batch that fits.
    assert shutil.disk_usage(tiny_disk).used < 256 * 1024
    store.store_many(images[:10], labels_for(10))
    assert_exact(store.read_many(10)[0], images[:10])
    store.close()


@pytest.mark.parametrize("method", METHODS)
def test_a_full_disk_during_store_single_is_reported_and_keeps_earlier_images(tiny_disk, method):
    store = open_store(method, tiny_disk / method)
    images = patterned_images(400, shape=(64, 64, 3))
    stored = tiny_disk / f"{method}.count"

    def fill_the_disk():
        for image_id, image in enumerate(images):
            store.store_single(image, image_id, label=image_id)
            stored.write_text(str(image_id + 1))  # a few bytes: what made it, whatever happens next

    outcome = run_in_child(fill_the_disk)
    assert outcome[0] == "raised", "400 images fitted in 2 MiB?"
    assert outcome[1] == "InsufficientSpaceError", f"{outcome[1]}: {outcome[2]}"
    assert str(tiny_disk) in outcome[2]
    count = int(stored.read_text())
    assert count > 0
    for image_id in range(count):
        image, label = store.read_single(image_id)
        assert_exact(image, images[image_id])
        assert label == image_id
    store.close()


# -- LMDB needs no hand-set map size -------------------------------------------------------------------


def test_lmdb_grows_its_map_for_large_images(tmp_path):
    shape = (256, 256, 3)
    images = patterned_images(1500, shape=shape)
    labels = labels_for(1500)
    store = open_store("lmdb", tmp_path)
    for image_id in range(50):
        store.store_single(images[image_id], image_id, label=int(labels[image_id]))
    store.store_many(images, labels)
    for image_id in (0, 17, 49):
        image, label = store.read_single(image_id)
        assert_exact(image, images[image_id])
        assert label == labels[image_id]
    back, back_labels = store.read_many(1500)
    assert digest(back) == digest(images)
    assert_exact(back_labels, labels)


# -- readers never change a file -----------------------------------------------------------------------


def snapshot(paths: list[Path]) -> dict[Path, tuple[int, str]]:
    return {path: (path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()) for path in paths}


@pytest.mark.parametrize("method", METHODS)
def test_reading_changes_no_file(tmp_path, method):
    writer = open_store(method, tmp_path)
    images = patterned_images(300)
    for image_id in range(3):
        writer.store_single(images[image_id], image_id, label=image_id)
    writer.store_many(images, labels_for(300))
    writer.close()
    # single.lmdb/lock.mdb is excluded: store_single may write that environment while others read it, so
    # its readers must register in LMDB's lock table (lock.mdb holds no data; data.mdb is still compared).
    # A finished batch never changes, so its readers open it without the lock and its lock.mdb is compared.
    def data_files(store: Store) -> list[Path]:
        reader_lock = tmp_path / "single.lmdb" / "lock.mdb"
        return [path for path in store.files() if path != reader_lock]

    before = snapshot(data_files(writer))
    time.sleep(0.01)  # a write now would get a later mtime even on coarse-grained clocks

    reader = open_store(method, tmp_path)
    for image_id in range(3):
        reader.read_single(image_id)
    reader.read_many(300)
    reader.read_many(7)
    reader.close()
    assert snapshot(data_files(reader)) == before


# -- several readers at once ---------------------------------------------------------------------------

SHARED_STORE: Store | None = None


def read_with_inherited_store(num_images: int) -> tuple[str, str]:
    """Runs in a forked worker: uses the store object the parent opened before forking."""
    images, labels = SHARED_STORE.read_many(num_images)
    single, label = SHARED_STORE.read_single(num_images % 5)
    return digest(images) + digest(labels), digest(single) + str(label)


@pytest.fixture(scope="module")
def filled_stores(tmp_path_factory) -> dict[str, Store]:
    root = tmp_path_factory.mktemp("readers")
    images, labels = patterned_images(300, seed=4), labels_for(300)
    stores = {}
    for method in METHODS:
        store = open_store(method, root / method)
        store.store_many(images, labels)
        for image_id in range(5):
            store.store_single(images[image_id], image_id, label=int(labels[image_id]))
        stores[method] = store
    return stores


# 300 images: above the disk store's threshold for its own pool of PNG workers, inside each reader.
READ_SIZES = [300, 1, 299, 64, 300, 150, 2, 300]
# multiprocessing.Pool workers are daemonic, as are PyTorch DataLoader workers.
READER_METHODS = METHODS


@pytest.mark.parametrize("method", READER_METHODS)
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_four_processes_read_the_same_store(filled_stores, method, start_method):
    store = filled_stores[method]
    expected_images, expected_labels = store.read_many(300)
    with multiprocessing.get_context(start_method).Pool(4) as pool:
        # The Store itself goes to the workers: it pickles as (root, durable), each reopens its handles.
        batches = pool.starmap(Store.read_many, [(store, n) for n in READ_SIZES])
        singles = pool.starmap(Store.read_single, [(store, i) for i in range(5)])
    for n, (images, labels) in zip(READ_SIZES, batches):
        assert_exact(images, expected_images[:n])
        assert_exact(labels, expected_labels[:n])
    for image_id, (image, label) in enumerate(singles):
        assert_exact(image, expected_images[image_id])
        assert label == expected_labels[image_id]


@pytest.mark.parametrize("method", READER_METHODS)
def test_a_store_opened_before_fork_works_in_the_children(filled_stores, method):
    global SHARED_STORE
    SHARED_STORE = filled_stores[method]
    images, labels = SHARED_STORE.read_many(300)  # whatever handles this opens are inherited by the fork
    SHARED_STORE.read_single(0)
    expected = {
        n: (digest(images[:n]) + digest(labels[:n]), digest(images[n % 5]) + str(labels[n % 5]))
        for n in READ_SIZES
    }
    try:
        with multiprocessing.get_context("fork").Pool(4) as pool:
            results = pool.map(read_with_inherited_store, READ_SIZES)
    finally:
        SHARED_STORE = None
    assert results == [expected[n] for n in READ_SIZES]
    # The parent's own handles still work after the children used their copies.
    assert_exact(filled_stores[method].read_many(300)[0], images)


# -- damaged files -------------------------------------------------------------------------------------


def overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def truncate_to_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x5A]))


def read_in_child(store: Store, operation: str, argument: int):
    """("ok", digest of the images, label) or ("raised", type, message, typed?), read in a child process."""

    def read():
        result = getattr(store, operation)(argument)
        return digest(result[0]), str(result[1]) if operation == "read_single" else ""

    outcome = run_in_child(read)
    return ("ok", *outcome[1]) if outcome[0] == "ok" else outcome


def expect_named_error(store: Store, operation: str, argument: int, named: Path) -> None:
    outcome = read_in_child(store, operation, argument)
    assert outcome[0] == "raised", f"damage to {named.name} was read back without an error"
    _, kind, message, typed = outcome
    assert typed, f"{kind}: {message}"
    assert named.name in message, message


def zero_last_bytes(path: Path) -> None:
    """Zero the end of a file: the footer and closing magic of Parquet and Arrow IPC files."""
    overwrite(path, path.stat().st_size - 16, bytes(16))


def garble(path: Path) -> None:
    path.write_bytes(b"{not json" + bytes(range(200, 256)))


def damage_cases():
    """(method, what, damage(store) -> the damaged file, operation, argument)."""

    def many_file(relative: str):
        return lambda store: store.batch_path / relative if relative else store.batch_path

    cases = [
        ("disk", "png-cut-in-half", lambda s: png_path(s.batch_path, 3), truncate_to_half, "read_many", 10),
        ("disk", "png-missing", lambda s: png_path(s.batch_path, 3), Path.unlink, "read_many", 10),
        ("disk", "labels-csv-missing", many_file("labels.csv"), Path.unlink, "read_many", 10),
        ("disk", "labels-csv-cut", many_file("labels.csv"), truncate_to_half, "read_many", 300),
        ("disk", "batch-json-garbage", many_file("batch.json"), garble, "read_many", 1),
        ("disk", "single-png-cut", lambda s: s.root / "single" / "2.png", truncate_to_half, "read_single", 2),
        ("disk", "single-csv-missing", lambda s: s.root / "single" / "2.csv", Path.unlink, "read_single", 2),
        ("lmdb", "data-mdb-cut-in-half", many_file("data.mdb"), truncate_to_half, "read_many", 10),
        ("lmdb", "data-mdb-missing", many_file("data.mdb"), Path.unlink, "read_many", 10),
        ("lmdb", "single-data-mdb-cut", lambda s: s.root / "single.lmdb" / "data.mdb", truncate_to_half,
         "read_single", 2),
        ("hdf5", "file-cut-in-half", many_file(""), truncate_to_half, "read_many", 10),
        ("hdf5", "superblock-zeroed", many_file(""), lambda p: overwrite(p, 0, bytes(64)), "read_many", 10),
        ("hdf5", "single-cut", lambda s: s.root / "single" / "2.h5", truncate_to_half, "read_single", 2),
        ("npy", "images-cut-in-half", many_file("images.npy"), truncate_to_half, "read_many", 10),
        ("npy", "labels-missing", many_file("labels.npy"), Path.unlink, "read_many", 10),
        ("npy", "single-npz-cut", lambda s: s.root / "single" / "2.npz", truncate_to_half, "read_single", 2),
        ("zarr", "shard-cut-in-half", many_file("images/c.0.0.0.0"), truncate_to_half, "read_many", 10),
        ("zarr", "shard-missing", many_file("images/c.0.0.0.0"), Path.unlink, "read_many", 10),
        ("zarr", "shard-byte-flipped", many_file("images/c.0.0.0.0"), lambda p: flip(p, 5000), "read_many", 10),
        ("zarr", "group-zarr-json-missing", many_file("zarr.json"), Path.unlink, "read_many", 10),
        ("zarr", "images-zarr-json-garbage", many_file("images/zarr.json"), garble, "read_many", 10),
        ("zarr", "labels-chunk-cut", many_file("labels/c.0"), truncate_to_half, "read_many", 10),
        ("zarr", "single-chunk-cut", lambda s: s.root / "single" / "2.zarr" / "image" / "c.0.0.0", truncate_to_half,
         "read_single", 2),
        ("zarr", "single-zarr-json-garbage", lambda s: s.root / "single" / "2.zarr" / "zarr.json", garble,
         "read_single", 2),
        ("tar", "shard-cut-in-half", many_file("shard-000000.tar"), truncate_to_half, "read_many", 10),
        ("tar", "shard-missing", many_file("shard-000000.tar"), Path.unlink, "read_many", 10),
        ("tar", "index-missing", many_file("index.npy"), Path.unlink, "read_many", 10),
        ("tar", "index-garbage", many_file("index.npy"), garble, "read_many", 10),
        ("tar", "cls-garbage", many_file("shard-000000.tar"), lambda p: overwrite(p, 512 + 5120, b"x7"),
         "read_many", 10),
        ("tar", "npy-header-garbage", many_file("shard-000000.tar"), lambda p: overwrite(p, 1536 + 5120, b"NUMPY"),
         "read_many", 10),
        ("tar", "single-tar-cut", lambda s: s.root / "single" / "2.tar", truncate_to_half, "read_single", 2),
        ("parquet", "file-cut-in-half", many_file(""), truncate_to_half, "read_many", 10),
        ("parquet", "footer-magic-zeroed", many_file(""), zero_last_bytes, "read_many", 10),
        ("parquet", "cut-random-access", many_file(""), truncate_to_half, "read_indices", [299, 3]),
        ("parquet", "single-cut", lambda s: s.root / "single" / "2.parquet", truncate_to_half, "read_single", 2),
        ("arrow", "file-cut-in-half", many_file(""), truncate_to_half, "read_many", 10),
        ("arrow", "footer-magic-zeroed", many_file(""), zero_last_bytes, "read_indices", [299, 3]),
        ("arrow", "single-cut", lambda s: s.root / "single" / "2.arrow", truncate_to_half, "read_single", 2),
        ("sqlite", "file-cut-in-half", many_file(""), truncate_to_half, "read_many", 300),
        ("sqlite", "cut-random-access", many_file(""), truncate_to_half, "read_indices", [299, 3]),
        ("sqlite", "header-zeroed", many_file(""), lambda p: overwrite(p, 0, bytes(100)), "read_many", 10),
        ("sqlite", "single-cut", lambda s: s.root / "single.sqlite", truncate_to_half, "read_single", 2),
    ]
    return [
        pytest.param(m, locate, damage, op, arg, id=f"{m}-{what}")
        for m, what, locate, damage, op, arg in cases
    ]


@pytest.mark.parametrize("method,locate,damage,operation,argument", damage_cases())
def test_damaged_file_gives_an_error_naming_it(tmp_path, method, locate, damage, operation, argument):
    store = open_store(method, tmp_path)
    images = patterned_images(300, seed=6)
    store.store_many(images, labels_for(300))
    for image_id in range(4):
        store.store_single(images[image_id], image_id, label=image_id)
    store.close()
    target = locate(store)
    damage(target)
    expect_named_error(store, operation, argument, target)


def hdf5_data_region(path: Path) -> tuple[int, int]:
    """(offset, length) of the images dataset's raw pixels inside an HDF5 batch file."""
    import h5py

    with h5py.File(path, "r") as file:
        data = file["images"]
        return data.id.get_offset(), data.id.get_storage_size()


# PNG carries a CRC-32 per chunk, checked on every read. The raw formats (contiguous HDF5 data, .npy, LMDB
# values) carry none for pixels, as the stores' docstrings say: checking one per read would cost more than
# the read itself at page-cache speed, so a flipped pixel byte there is out of this test's reach.
def test_flipped_bytes_in_png_pixels_are_detected(tmp_path):
    store = open_store("disk", tmp_path)
    images = np.repeat(smooth_image()[np.newaxis], 300, axis=0)
    images[:, 0, 0, 0] = np.arange(300) % 256
    store.store_many(images, labels_for(300))
    path = png_path(store.batch_path, 0)  # any byte of the first PNG's compressed pixels
    offsets = np.linspace(41, path.stat().st_size - 17, 9).astype(int).tolist()
    original = path.read_bytes()
    for offset in offsets:
        path.write_bytes(original)
        flip(path, offset)
        outcome = read_in_child(store, "read_many", 300)
        if outcome[0] == "ok":
            assert outcome[1] == digest(images), f"{path.name}: byte {offset} damaged, wrong pixels returned"
        else:
            assert outcome[3], f"{outcome[1]}: {outcome[2]}"
            assert path.name in outcome[2]


def test_hdf5_damage_anywhere_in_the_metadata_is_an_error_or_harmless(tmp_path):
    store = open_store("hdf5", tmp_path)
    images = patterned_images(50, seed=8)
    store.store_many(images, labels_for(50))
    path = store.batch_path
    data_start, data_length = hdf5_data_region(path)
    original = path.read_bytes()
    metadata = [o for o in range(0, len(original)) if not data_start <= o < data_start + data_length]
    errors = 0
    for offset in metadata[:: max(1, len(metadata) // 40)]:
        path.write_bytes(original)
        flip(path, offset)
        outcome = read_in_child(store, "read_many", 50)
        if outcome[0] == "ok":  # an unused byte: the data must still be exact
            assert outcome[1] == digest(images), f"byte {offset} of the metadata damaged, wrong data returned"
        else:
            assert outcome[3], f"byte {offset}: {outcome[1]}: {outcome[2]}"
            errors += 1
    assert errors > 0


# -- wrong arguments, from hypothesis ------------------------------------------------------------------

BAD_DTYPES = [np.float32, np.float64, np.int32, np.int64, np.int8, np.bool_, np.complex64, np.uint32]

bad_images = st.one_of(
    hnp.arrays(st.sampled_from(BAD_DTYPES), hnp.array_shapes(min_dims=2, max_dims=3, max_side=6)),
    hnp.arrays(np.uint8, hnp.array_shapes(min_dims=0, max_dims=1, max_side=6)),
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(5, 8))),
    hnp.arrays(np.uint8, st.tuples(st.just(0), st.integers(0, 4), st.just(3))),  # no rows
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 4), st.just(0), st.just(3))),  # no columns
    hnp.arrays(np.uint16, st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(2, 4))),
    st.builds(lambda: np.array([[object(), None]], dtype=object)),
    st.lists(st.lists(st.integers(0, 255), min_size=1, max_size=3), min_size=1, max_size=3),
    st.none(),
    st.text(max_size=5),
)
bad_ids = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=10**12),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
    st.builds(np.float64, st.floats(0, 100)),
    st.just([1]),
)
bad_labels = st.one_of(
    st.floats(),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
    st.integers(min_value=2**63),
    st.integers(max_value=-(2**63) - 1),
    st.just(np.array([1, 2])),
)
bad_counts = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=301),
    st.floats(),
    st.text(max_size=3),
    st.none(),
    st.booleans(),
)
good_images = patterned_images(3, shape=(4, 4, 3))


def bad_batch_labels(n: int):
    return st.one_of(
        hnp.arrays(st.sampled_from([np.float64, np.bool_, np.uint64, np.complex64]), st.just((n,))),
        hnp.arrays(np.int64, st.integers(0, 6).filter(lambda k: k != n).map(lambda k: (k,))),
        hnp.arrays(np.int64, st.just((n, 1))),
        st.lists(st.one_of(st.text(max_size=2), st.none(), st.floats()), min_size=n, max_size=n),
        st.just([[1], [2, 3], [4]][:n]),
        st.none(),
        st.integers(),
    )


@pytest.fixture(scope="module")
def stores_for_bad_input(tmp_path_factory) -> dict[str, Store]:
    root = tmp_path_factory.mktemp("bad-input")
    stores = {}
    for method in METHODS:
        store = open_store(method, root / method)
        store.store_many(patterned_images(300), labels_for(300))
        store.store_single(good_images[0], 1, label=1)
        stores[method] = store
    return stores


def assert_typed_error(call) -> None:
    try:
        call()
    except StorageReportError as error:
        assert str(error).strip(), f"{type(error).__name__} with an empty message"
    except BaseException as error:
        raise AssertionError(f"{type(error).__name__} is not one of helpers.core.errors: {error}") from error
    else:
        raise AssertionError("bad input was accepted")


property_settings = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@property_settings
@given(
    method=st.sampled_from(METHODS), image=bad_images, image_id=st.integers(0, 10), label=st.integers(-5, 5)
)
def test_property_store_single_rejects_bad_images(stores_for_bad_input, method, image, image_id, label):
    assert_typed_error(lambda: stores_for_bad_input[method].store_single(image, image_id, label))


@property_settings
@given(method=st.sampled_from(METHODS), image_id=bad_ids, label=st.integers(-5, 5))
def test_property_bad_ids_are_rejected_everywhere(stores_for_bad_input, method, image_id, label):
    store = stores_for_bad_input[method]
    assert_typed_error(lambda: store.store_single(good_images[0], image_id, label))
    assert_typed_error(lambda: store.read_single(image_id))


@property_settings
@given(method=st.sampled_from(METHODS), label=bad_labels)
def test_property_bad_labels_are_rejected(stores_for_bad_input, method, label):
    assert_typed_error(lambda: stores_for_bad_input[method].store_single(good_images[0], 2, label))


@property_settings
@given(method=st.sampled_from(METHODS), data=st.data())
def test_property_store_many_rejects_bad_batches(stores_for_bad_input, method, data):
    store = stores_for_bad_input[method]
    if data.draw(st.booleans(), label="bad images"):
        image = data.draw(bad_images, label="image")
        is_image = isinstance(image, np.ndarray) and image.ndim >= 2
        images = image[np.newaxis].repeat(3, 0) if is_image else image
        labels = data.draw(st.one_of(st.just([0, 1, 2]), bad_batch_labels(3)), label="labels")
    else:
        images, labels = good_images, data.draw(bad_batch_labels(3), label="labels")
    assert_typed_error(lambda: store.store_many(images, labels))


@property_settings
@given(method=st.sampled_from(METHODS), count=bad_counts)
def test_property_read_many_rejects_bad_counts(stores_for_bad_input, method, count):
    assert_typed_error(lambda: stores_for_bad_input[method].read_many(count))


@property_settings
@given(
    method=st.one_of(st.sampled_from(METHODS), st.text(max_size=6)),
    n_images=st.one_of(st.integers(max_value=-1), st.floats(), st.none(), st.text(max_size=3)),
    shape=st.one_of(st.tuples(st.integers(-3, 0), st.integers(1, 5)), st.just((4, 4, 9)), st.just(("a", 4))),
    dtype=st.sampled_from([np.float32, np.int32, np.bool_, object, "not a dtype", np.uint8]),
)
def test_property_space_estimates_reject_bad_requests(method, n_images, shape, dtype):
    assert_typed_error(lambda: stores.estimate_bytes(method, n_images, shape, dtype))


def test_bad_input_left_every_store_as_it_was(stores_for_bad_input):
    """Runs after the property tests (file order): none of the refused calls damaged what was there."""
    for store in stores_for_bad_input.values():
        images, labels = store.read_many(300)
        assert_exact(images, patterned_images(300))
        assert_exact(labels, labels_for(300))
        image, label = store.read_single(1)
        assert_exact(image, good_images[0])
        assert label == 1


def test_unknown_store_name_is_a_typed_error(tmp_path):
    assert_typed_error(lambda: open_store("tiff", tmp_path))
    assert_typed_error(lambda: open_store(None, tmp_path))


