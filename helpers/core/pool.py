"""The one process pool every parallel path shares: PNG writes and reads, the folder decoder, and the
start method, parent-death signal and allocator setting of the loader's worker processes.

One pool per process (one worker per core), started on first use and reused: starting processes costs more
than most of the work handed to them. The modules whose functions run in it name themselves with
``preload_in_workers`` so that a forkserver imports them once, not in every worker.
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, wait
from multiprocessing import forkserver, resource_tracker

#: Below this many images a pool costs more than it saves.
PARALLEL_THRESHOLD = 256

_preloaded: list[str] = [__name__]


def preload_in_workers(module: str) -> None:
    """Have a forkserver import ``module`` before it forks workers (the functions they run live there)."""
    if module not in _preloaded:
        _preloaded.append(module)


_pool: ProcessPoolExecutor | None = None
_pool_owner = -1


def worker_pool() -> ProcessPoolExecutor:
    """One pool per process, started on first use and reused.

    fork is fast and needs no ``if __name__ == "__main__"`` guard in the caller's script, but forking a
    process that runs other threads (a Jupyter kernel does) can deadlock the child; there, forkserver.
    """
    global _pool, _pool_owner, _helpers_started
    if _pool is None or _pool_owner != os.getpid():
        context = process_context()
        method = context.get_start_method()
        # The forkserver and the resource tracker start with the first worker; note whether they are ours.
        _helpers_started = (
            method == "forkserver" and getattr(forkserver._forkserver, "_forkserver_pid", 0) is None,
            method == "forkserver" and getattr(resource_tracker._resource_tracker, "_pid", 0) is None,
        )
        _pool = ProcessPoolExecutor(
            max_workers=os.cpu_count() or 1, mp_context=context, initializer=start_worker
        )
        _pool_owner = os.getpid()
        # Registered after multiprocessing's own exit handler, so it runs first (atexit is last in, first
        # out): the pool is down before multiprocessing finalizes what is left.
        atexit.register(stop_pool)
        stop_with_kernel()
    return _pool


_helpers_started = (False, False)  # (forkserver, resource tracker) started for the pool by this process
_kernels_watched: set[int] = set()


def stop_pool() -> None:
    """Shut the pool down, waiting for its workers, then the forkserver and resource tracker it started.

    In a Jupyter kernel this must happen before the kernel shuts down: ipykernel first terminates its
    child processes, and the resource tracker ignores SIGTERM, so it outlives the few seconds
    jupyter_client waits; the kernel is then killed before its exit handlers run, and the tracker reports
    the pool's queue semaphores as leaked ("There appear to be 5 leaked semaphore objects"). Stopped here
    in order, everything is released and the kernel has no children left to wait for.
    """
    global _pool
    pool = _pool
    if pool is None or _pool_owner != os.getpid():
        return
    _pool = None
    pool.shutdown(wait=True, cancel_futures=True)
    del pool
    gc.collect()  # the queues' semaphores: their finalizers unlink them and tell the tracker
    forkserver_ours, tracker_ours = _helpers_started
    stop_forkserver = getattr(forkserver._forkserver, "_stop", None)  # private: guarded for other Pythons
    if forkserver_ours and stop_forkserver is not None:
        try:
            stop_forkserver()
        except FileNotFoundError:  # stopped; only its socket file was already removed with its temp folder
            forkserver._forkserver._forkserver_address = None
    stop_tracker = getattr(resource_tracker._resource_tracker, "_stop", None)
    if tracker_ours and stop_tracker is not None:
        stop_tracker()  # only once the forkserver, which holds the tracker's pipe too, is gone


def stop_with_kernel() -> None:
    """In an IPython kernel, stop the pool as soon as the kernel is asked to shut down (``exit_now``)."""
    shell_module = sys.modules.get("IPython")  # never import IPython just to ask
    shell = shell_module.get_ipython() if shell_module is not None else None
    if shell is None or id(shell) in _kernels_watched or not shell.has_trait("exit_now"):
        return
    _kernels_watched.add(id(shell))
    shell.observe(lambda change: stop_pool() if change["new"] else None, names="exit_now")


def start_worker() -> None:
    """Run in each worker as it starts: ignore Ctrl-C, and die with the process that started it.

    SIGINT is for the parent: a terminal's Ctrl-C, or jupyter_client interrupting a kernel as it shuts it
    down, reaches the whole process group, workers included. A worker that took it would die with a
    KeyboardInterrupt traceback each; the parent stops them itself (``in_pool`` cancels what is left).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()


def process_context() -> multiprocessing.context.BaseContext:
    """fork when this process runs one thread, else forkserver (see ``worker_pool``)."""
    method = "fork" if threading.active_count() == 1 else "forkserver"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(list(_preloaded))
    return context


def die_with_parent() -> None:
    """Ask Linux to kill this worker when the process that started it dies (a kill -9 of a notebook).

    Otherwise an orphaned worker would finish its chunk into a batch folder that may by then belong to a
    new store_many, and then wait for work forever. Ctrl-C is for the parent: Jupyter interrupts a kernel's
    whole process group (also when it shuts the kernel down), and a worker would print a traceback for it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to ask for
        return
    if os.getppid() == 1:  # the parent died before the request was made
        os._exit(1)


def use_pool(workers: int, count: int, calls: int) -> bool:
    # multiprocessing.Pool and PyTorch DataLoader workers are daemonic, and may not start processes.
    return (workers > 1 and count >= PARALLEL_THRESHOLD and calls > 1
            and not multiprocessing.current_process().daemon)


def in_pool(function: Callable, calls: Iterable[tuple], workers: int) -> Iterator:
    """``function(*call)`` for each call, run by the pool, results in order.

    At most a few calls per worker are in flight, so the chunks sent and the results waiting to be
    collected stay a few MB however large the batch (reading 100,000 images would otherwise hold every
    decoded chunk twice, as results and in the output array).
    """
    pool = worker_pool()
    window = 3 * workers
    pending: deque = deque()
    try:
        for call in calls:
            pending.append(pool.submit(function, *call))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:  # on an error, let no worker go on writing into a folder the caller is about to remove
        for job in pending:
            job.cancel()
        wait(pending)


def reuse_freed_memory() -> None:
    """Have glibc keep freed blocks of up to 32 MB for reuse instead of returning them to the kernel.

    A fresh process (forkserver's) starts at glibc's 128 kB threshold, so each mini-batch's arrays were
    new memory maps, page-faulted in and unmapped again: HDF5 workers spent 7x the CPU of one process
    (0.27 s against 0.04 s per 100,000 images). A forked worker inherits its parent's raised threshold.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc: its allocator decides
        pass
