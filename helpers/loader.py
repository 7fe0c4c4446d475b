"""Reading a store the way a training loop does: shuffled mini-batches, every image once per epoch.

- ``ImageDataset(store)``: a map-style dataset (``len``, ``ds[i] -> (image, label)``) for PyTorch's
  ``DataLoader`` or anything else that indexes. It pickles as its store does, without open handles, and
  each process opens its own reader on first use, so ``DataLoader(ImageDataset(store), num_workers=2)``
  works under fork and spawn. This module never imports torch.
- ``batches(store, batch_size, ...)``: ``(images, labels)`` mini-batches in a seeded random order (a new
  order for each ``epoch``), read in this process or by ``workers`` processes. Workers write each batch
  into a slot of one shared-memory block and send back only its image count, so a batch is copied once
  out of the block instead of being pickled through a pipe (pickling made LMDB's 2-worker epoch 0.3x of
  one process). The workers persist across epochs (PyTorch's ``persistent_workers=True``): starting
  them costs 0.5-1 s per worker, more than a whole LMDB or HDF5 epoch of 100,000 small images.
- ``close_workers()`` stops them all (``store.close()`` stops a store's; so does the end of the program).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import pickle
import signal
import struct
import sys
import traceback
from collections import deque
from collections.abc import Iterator
from multiprocessing import shared_memory

import numpy as np

from helpers.core.pool import die_with_parent, preload_in_workers, process_context, reuse_freed_memory
from helpers.stores import Store

preload_in_workers(__name__)  # the loader's workers run worker_main

#: Batches each worker has in flight (read ahead of the consumer), and so shared-memory slots per worker:
#: enough that a worker keeps reading while the parent waits for a core (2 cores, 3 processes).
SLOTS_PER_WORKER = 4
#: Seconds a worker gets to exit after being asked to, before it is terminated.
STOP_TIMEOUT = 5.0
#: Pipe messages, as raw bytes: a task is (batch number, slot) then the int64 positions to read; an answer
#: the image count written (8 bytes), or ANSWER_ERROR then the pickled exception; STOP asks a worker to end.
TASK_HEADER = struct.Struct("<qq")
ANSWER_COUNT = struct.Struct("<q")
ANSWER_ERROR = b"E"
STOP = b"stop"


#: Images per mini-batch unless told otherwise: the report's ``batch_size`` default too.
BATCH_SIZE = 256


class ImageDataset:
    """Map-style dataset over a store's batch: ``len(ds)`` images, ``ds[i]`` is ``(image, label)``.

    ``image`` is a fresh ndarray (height, width[, channels]) and ``label`` an int. Positions follow the
    order ``store_many`` was given. Index errors are ``IndexError``, so the dataset also iterates.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        reader = self.store.batch_reader()  # this process's reader: opened on first use, after a fork too
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"ImageDataset indices must be integers, got {index!r}")
        if not 0 <= index < reader.count:
            raise IndexError(
                f"index {index} is out of range: the batch in {self.store.root} holds {reader.count} images"
            )
        return reader.read_one(int(index))

    def __repr__(self) -> str:
        return f"ImageDataset({self.store!r})"

    def __getstate__(self) -> dict:
        return {"store": self.store}  # the store pickles without its handles

    def __setstate__(self, state: dict) -> None:
        self.store = state["store"]


def epoch_order(count: int, *, shuffle: bool = True, seed: int = 0, epoch: int = 0) -> np.ndarray:
    """The positions an epoch visits: a permutation of ``range(count)`` drawn from ``(seed, epoch)``, or
    ``range(count)`` itself when not shuffling. The same arguments give the same order on any machine."""
    for name, value in (("seed", seed), ("epoch", epoch)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if not shuffle:
        return np.arange(count, dtype=np.int64)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(count).astype(np.int64)


def batch_bounds(count: int, batch_size: int, drop_last: bool) -> list[tuple[int, int]]:
    """(start, stop) of each mini-batch of an epoch of ``count`` images."""
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    stops = range(batch_size, count + (0 if drop_last else batch_size), batch_size)
    return [(stop - batch_size, min(stop, count)) for stop in stops]


def batches(
    store: Store,
    batch_size: int = BATCH_SIZE,
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    workers: int = 0,
    drop_last: bool = False,
    persistent: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of ``store``'s batch as ``(images, labels)`` mini-batches of ``batch_size`` images.

    Every image comes exactly once (the last mini-batch is smaller unless ``drop_last``, which leaves out
    the remainder). With ``shuffle`` the order is a permutation drawn from ``(seed, epoch)``: the same
    for the same pair, a different one for each epoch (pass ``epoch=0, 1, 2, ...``). ``workers=0`` reads
    in this process (so does a daemonic process, which may not start others); ``workers=n`` has n
    processes read batches ahead into shared memory. With ``persistent`` (the default, as PyTorch's
    ``persistent_workers=True``) those processes are started on first use and serve every later epoch of
    the same ``(store, workers, batch_size)``; they stop when the store is closed (``store.close()``,
    ``clear()``, ``store_many``), at ``close_workers()`` and at exit. Without it they stop at the epoch's
    end. Leaving the loop early is fine either way; an error in a worker is re-raised here (and its
    processes stopped). Each yielded array is the caller's own.
    """
    if isinstance(workers, (bool, np.bool_)) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
    reader = store.batch_reader()
    order = epoch_order(reader.count, shuffle=shuffle, seed=seed, epoch=epoch)
    bounds = batch_bounds(reader.count, batch_size, drop_last)
    # A daemonic process (a DataLoader or multiprocessing.Pool worker) may not start processes.
    if workers == 0 or not bounds or multiprocessing.current_process().daemon:
        for start, stop in bounds:
            yield reader.read_indices(order[start:stop])
        return
    if not persistent:
        pool = WorkerPool(store, int(batch_size), int(workers))
        try:
            yield from pool.epoch(order, bounds)
        finally:
            pool.close()
        return
    yield from worker_pool(store, int(batch_size), int(workers)).epoch(order, bounds)


class WorkerError(RuntimeError):
    """A loader worker failed in a way that could not be sent back as its own exception."""


#: The persistent pools of this process, by (id(store), workers, batch_size).
_pools: dict[tuple[int, int, int], "WorkerPool"] = {}


def worker_pool(store: Store, batch_size: int, workers: int) -> "WorkerPool":
    """The running persistent pool for ``(store, workers, batch_size)``, started if there is none (or
    the store's batch was reopened since, as after ``store_many``: its workers would read the old one)."""
    key = (id(store), workers, batch_size)
    pool = _pools.get(key)
    if pool is not None and not pool.serves(store):
        pool.close()
        pool = None
    if pool is None:
        pool = WorkerPool(store, batch_size, workers)
        _pools[key] = pool
        hooks = store.__dict__.setdefault("_close_hooks", [])  # Store.close calls them
        if close_store_workers not in hooks:
            hooks.append(close_store_workers)
    return pool


def close_store_workers(store: Store) -> None:
    """Stop the persistent workers reading ``store`` (``Store.close`` calls this)."""
    for key, pool in list(_pools.items()):
        if key[0] == id(store):
            pool.close()


def worker_pids(store: Store) -> list[int]:
    """The process ids of the persistent workers reading ``store`` now (all batch sizes)."""
    return [pid for key, pool in _pools.items() if key[0] == id(store) for pid in pool.pids]


def close_workers() -> None:
    """Stop every persistent loader worker of this process and free their shared memory."""
    for pool in list(_pools.values()):
        pool.close()


atexit.register(close_workers)


class WorkerPool:
    """``workers`` processes reading mini-batches of a store into a ring of shared-memory slots.

    In an epoch, mini-batch k goes to worker k % workers and slot k % slots (slots = SLOTS_PER_WORKER
    per worker), so each worker answers its tasks in order on its own pipe and a slot is reused only
    once its batch has been copied out. Only batch numbers and index lists travel through pipes. The
    processes start on the first epoch and serve the next ones until ``close()``.
    """

    def __init__(self, store: Store, batch_size: int, workers: int) -> None:
        reader = store.batch_reader()
        self.store, self.reader, self.batch_size, self.workers = store, reader, batch_size, workers
        self.slots = SLOTS_PER_WORKER * workers
        self.layout = SlotLayout(batch_size, reader.shape, reader.dtype)
        self.owner = os.getpid()
        self.processes: list = []
        self.tasks: list = []
        self.results: list = []
        self.memory: shared_memory.SharedMemory | None = None
        self.views: tuple[np.ndarray, np.ndarray] | None = None
        self.pending: deque[int] = deque()  # workers with a batch in flight, in the order sent
        self.current = 0  # the epoch being served: an earlier, unfinished one may not go on
        self.closed = False

    def serves(self, store: Store) -> bool:
        """Whether this pool's workers read the batch ``store`` holds open now."""
        return not self.closed and self.store is store and store.batch_reader() is self.reader

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def start(self) -> None:
        self.memory = shared_memory.SharedMemory(create=True, size=self.layout.slot_bytes * self.slots)
        context = process_context()
        for _ in range(self.workers):
            task_reader, task_writer = context.Pipe(duplex=False)
            result_reader, result_writer = context.Pipe(duplex=False)
            process = context.Process(
                target=worker_main, daemon=True,
                args=(self.store, self.memory.name, self.layout, task_reader, result_writer),
            )
            process.start()
            task_reader.close()
            result_writer.close()
            self.processes.append(process)
            self.tasks.append(task_writer)
            self.results.append(result_reader)
        self.views = self.layout.views(self.memory.buf, self.slots)

    def epoch(self, order: np.ndarray, bounds: list[tuple[int, int]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The mini-batches ``order[start:stop]`` for each of ``bounds``, read by the workers."""
        if self.closed:
            raise RuntimeError("this loader's workers were closed")
        if self.pending:  # an earlier epoch was left without being closed: collect what it asked for
            self.drain()
        self.current += 1
        me = self.current
        finished = False
        try:
            if not self.processes:
                self.start()
            for number in range(min(self.slots, len(bounds))):
                self._send(order, bounds, number)
            for number in range(len(bounds)):
                if self.current != me or self.closed:
                    finished = True  # the workers are another epoch's now (or stopped): leave them be
                    raise RuntimeError("a newer epoch of the same loader workers started; this one ended")
                count = self._receive(number)
                slot = number % self.slots
                # No view of the block kept across the yield: close() could not free it then.
                images, labels = self.views
                batch = images[slot, :count].copy(), labels[slot, :count].copy()
                del images, labels
                if number + self.slots < len(bounds):
                    self._send(order, bounds, number + self.slots)
                yield batch
            finished = True
        except GeneratorExit:  # the loop was left early: the workers finish what they were asked, kept
            if self.current == me and not self.closed:
                try:
                    self.drain()
                    finished = True
                except BaseException:
                    self.close()
                    raise
            else:
                finished = True
            raise
        finally:
            if not finished:  # an error or Ctrl-C: stop the workers; the next epoch starts new ones
                self.close()

    def drain(self) -> None:
        """Wait for the batches in flight (their slots are then free) and drop them."""
        while self.pending:
            self._receive(-1)

    def _send(self, order: np.ndarray, bounds: list[tuple[int, int]], number: int) -> None:
        start, stop = bounds[number]
        worker = number % self.workers
        # Raw bytes, not a pickle: a header and the positions (pickling cost ~20% of an HDF5 epoch).
        task = TASK_HEADER.pack(number, number % self.slots) + order[start:stop].tobytes()
        try:
            self.tasks[worker].send_bytes(task)
        except (BrokenPipeError, ConnectionResetError):
            raise WorkerError(f"loader worker {worker} exited unexpectedly") from None
        self.pending.append(worker)

    def _receive(self, number: int) -> int:
        """The image count of the oldest batch in flight once its worker has written it; its error,
        raised, if not."""
        worker = self.pending.popleft()
        pipe, process = self.results[worker], self.processes[worker]
        # No wait() on the process's sentinel: a worker's end closes its only write end of this pipe (the
        # parent closed its copy), so recv raises EOFError then; one poll per batch costs ~10% of an epoch.
        try:
            answer = pipe.recv_bytes()
        except EOFError:
            process.join(STOP_TIMEOUT)
            raise WorkerError(
                f"loader worker {process.name} exited with code {process.exitcode} before sending "
                f"mini-batch {number}"
            ) from None
        if answer[:1] == ANSWER_ERROR:
            raise pickle.loads(answer[1:])
        return ANSWER_COUNT.unpack(answer)[0]

    def close(self) -> None:
        """Stop the workers and free the shared memory (only the process that started them does)."""
        if self.closed or os.getpid() != self.owner:
            return
        self.closed = True
        for key, pool in list(_pools.items()):
            if pool is self:
                del _pools[key]
        self.views = None  # the block cannot be closed while arrays over it exist
        self.pending.clear()
        stop_workers(self.processes, self.tasks, self.results)
        self.processes, self.tasks, self.results = [], [], []
        if self.memory is not None:
            try:
                self.memory.close()
            except BufferError:  # a caller kept a view: the block is freed when it goes
                pass
            self.memory.unlink()
            self.memory = None


class SlotLayout:
    """Where one mini-batch's images and labels sit in a slot: images first, then int64 labels."""

    def __init__(self, batch_size: int, image_shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.batch_size, self.image_shape, self.dtype = batch_size, tuple(image_shape), np.dtype(dtype)
        self.image_bytes = batch_size * int(np.prod(image_shape)) * self.dtype.itemsize
        self.image_bytes += -self.image_bytes % 8  # labels aligned for int64
        self.slot_bytes = self.image_bytes + 8 * batch_size

    def views(self, buffer: memoryview, slots: int) -> tuple[np.ndarray, np.ndarray]:
        """(images (slots, batch_size, *shape), labels (slots, batch_size)) over ``buffer``."""
        raw = np.frombuffer(buffer, np.uint8, slots * self.slot_bytes).reshape(slots, self.slot_bytes)
        images = raw[:, : self.image_bytes].view(self.dtype)[:, : self.batch_size * int(np.prod(self.image_shape))]
        labels = raw[:, self.image_bytes :].view(np.int64)
        return images.reshape(slots, self.batch_size, *self.image_shape), labels


def worker_main(store: Store, memory_name: str, layout: SlotLayout, tasks, results) -> None:
    """A worker's loop: read each mini-batch asked for into its slot, answer with its image count."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    die_with_parent()
    reuse_freed_memory()
    memory = attach(memory_name)
    try:
        serve(store, layout.views(memory.buf, len(memory.buf) // layout.slot_bytes), tasks, results)
    finally:
        try:
            memory.close()
        except BufferError:  # an array over the block outlived the loop; the process is ending anyway
            pass


def serve(store: Store, views: tuple[np.ndarray, np.ndarray], tasks, results) -> None:
    slot_images, slot_labels = views
    while True:
        try:
            task = tasks.recv_bytes()
        except EOFError:  # the parent is gone
            return
        if task == STOP:
            return
        number, slot = TASK_HEADER.unpack_from(task)
        indices = np.frombuffer(task, np.int64, offset=TASK_HEADER.size)
        try:
            images, labels = store.read_indices(indices)
            slot_images[slot, : len(indices)] = images
            slot_labels[slot, : len(indices)] = labels
            answer = ANSWER_COUNT.pack(len(indices))
        except Exception as error:  # sent back and raised in the parent, with this traceback attached
            answer = ANSWER_ERROR + pickle.dumps(sendable(error, number))
        try:
            results.send_bytes(answer)
        except (BrokenPipeError, ConnectionResetError):
            return


def attach(name: str) -> shared_memory.SharedMemory:
    """The parent's shared memory block. The parent created, owns and unlinks it; a worker shares the
    parent's resource tracker, where attaching (before Python 3.13) registers the name a second time,
    which changes nothing."""
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)
    return shared_memory.SharedMemory(name=name)


def sendable(error: Exception, number: int) -> BaseException:
    """``error`` with the worker's traceback as a note, or a WorkerError with its message if it cannot be
    pickled."""
    where = f"in loader worker {os.getpid()} reading mini-batch {number}:\n" + "".join(
        traceback.format_exception(type(error), error, error.__traceback__)
    )
    error = error.with_traceback(None)  # its frames hold arrays over the shared block; the text says it
    if hasattr(error, "add_note"):
        error.add_note(where)
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return WorkerError(f"{type(error).__name__}: {error}\n{where}")
    return error


def stop_workers(processes: list, tasks: list, results: list) -> None:
    """Ask each worker to exit, wait a little, then terminate those that have not."""
    for pipe in tasks:
        try:
            pipe.send_bytes(STOP)
        except OSError:
            pass
    for process in processes:
        process.join(STOP_TIMEOUT)
        if process.is_alive():
            process.terminate()
            process.join()
    for pipe in tasks + results:
        pipe.close()


def read_epoch(
    store: Store, batch_size: int = BATCH_SIZE, *, seed: int = 0, workers: int = 0, limit: int | None = None
) -> int:
    """Read one shuffled epoch as a training loop would (``batches``), or its first ``limit`` mini-batches, and
    drop it; the images read.

    What the report's chapters time as "a shuffled epoch": the same path a training job takes.
    """
    read = 0
    for number, (images, _) in enumerate(batches(store, batch_size, seed=seed, workers=workers), 1):
        read += len(images)
        if number == limit:
            break
    return read
