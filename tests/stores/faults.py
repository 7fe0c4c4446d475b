"""What the fault tests do to a store: kill its writer, damage its files, read it from another process.

A crash (a SIGBUS from a memory map over a full disk or a truncated file) must fail one test, not the test
run, so reads of damaged files and writes to a full disk run in a forked child (``run_in_child``).
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from stores.samples import allocated_bytes, digest

from helpers.core.errors import StorageReportError
from helpers.stores import Store

PROJECT = Path(__file__).resolve().parents[2]
#: Images the killed writer is given: enough that the kill lands while it writes.
KILL_IMAGES = 20_000


def child_environment() -> dict[str, str]:
    """This environment, with the project and tests/ on the path as pytest has them (a method registered
    by a test module is imported there by its module path, and that module imports the test helpers)."""
    env = dict(os.environ)
    paths = [str(PROJECT), str(PROJECT / "tests"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    return env


def stop_png_workers() -> None:
    """A forked child leaves through os._exit, which skips the atexit hook that stops the shared process
    pool; its workers would wait for work forever (and keep the test run's output pipe open)."""
    pool_module = sys.modules.get("helpers.core.pool")
    pool = getattr(pool_module, "_pool", None)
    if pool is not None and getattr(pool_module, "_pool_owner", None) == os.getpid():
        pool.shutdown(wait=True)


def run_in_child(action):
    """Run ``action()`` in a forked child, so that a crash fails one test instead of the test run.

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
def start_writer(store_class: type[Store], method: str, root: Path) -> subprocess.Popen:
    """A separate Python that writes a big batch; in its own session so its whole group can be killed.
    A method registered only for the tests is registered there too, by its class's import path."""
    entry = f"{store_class.__module__}:{store_class.__qualname__}"
    program = textwrap.dedent(
        f"""
        import numpy as np
        from helpers import stores
        stores.REGISTRY.setdefault({method!r}, {entry!r})
        tile = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
        offsets = (np.arange({KILL_IMAGES}, dtype=np.uint64) * 7919 % 256).astype(np.uint8)
        images = tile[np.newaxis] + offsets.reshape({KILL_IMAGES}, 1, 1, 1)
        labels = (np.arange({KILL_IMAGES}, dtype=np.int64) * 31) % 10 - 2
        stores.open_store({method!r}, {str(root)!r}).store_many(images, labels)
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


def zero_last_bytes(path: Path) -> None:
    """Zero the end of a file: the footer and closing magic of Parquet and Arrow IPC files."""
    overwrite(path, path.stat().st_size - 16, bytes(16))


def garble(path: Path) -> None:
    path.write_bytes(b"{not json" + bytes(range(200, 256)))


def batch_file(relative: str):
    """Where a damage case finds its file: ``relative`` inside the store's batch (the batch itself if "")."""
    return lambda store: store.batch_path / relative if relative else store.batch_path


def read_in_child(store: Store, operation: str, argument):
    """("ok", digest of the images, label) or ("raised", type, message, typed?), read in a child process."""

    def read():
        result = getattr(store, operation)(argument)
        return digest(result[0]), str(result[1]) if operation == "read_single" else ""

    outcome = run_in_child(read)
    return ("ok", *outcome[1]) if outcome[0] == "ok" else outcome


def expect_named_error(store: Store, operation: str, argument, named: Path) -> None:
    outcome = read_in_child(store, operation, argument)
    assert outcome[0] == "raised", f"damage to {named.name} was read back without an error"
    _, kind, message, typed = outcome
    assert typed, f"{kind}: {message}"
    assert named.name in message, message
