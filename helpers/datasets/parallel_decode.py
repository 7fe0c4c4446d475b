"""Many image files decoded into one array by this process and the shared process pool together.

Headers are read in chunks of files; pixels in chunks of about ``CHUNK_BYTES`` of decoded images. Worker
processes pass their chunks back through a small ring of slots in a file of the memory file system, not
through pipes, which keeps the memory used near the array's own size (``ParallelDecode`` tells why).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from helpers.core.pool import in_pool, preload_in_workers, reuse_freed_memory, worker_pool
from helpers.datasets.pixels import PIXEL_TYPES, Header, Layout, read_header, read_pixels

if TYPE_CHECKING:
    from tqdm import tqdm

preload_in_workers(__name__)  # the pool's workers run this module's chunk functions

#: Files per chunk when reading headers; pixels go in chunks of about CHUNK_BYTES of decoded images.
HEADER_CHUNK_FILES = 256
CHUNK_BYTES = 8 << 20
#: Where worker processes put the chunks they decode: slots in a file of this memory file system, so that
#: the pixels are not pickled through pipes.
SHARED_MEMORY_DIR = "/dev/shm"


# -- work done in chunks, in this process or by the pool's workers ---------------------------------------
def _read_headers(paths: Sequence[str]) -> list[Header]:
    return [read_header(Path(path)) for path in paths]


def _decoded(paths: Sequence[str], layout: Layout) -> Iterator[tuple[np.ndarray, tuple[int, int]]]:
    return (read_pixels(Path(path), layout) for path in paths)


def _read_chunk(paths: Sequence[str], layout: Layout) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The images of ``paths`` as one new array, and their sizes before any resize."""
    dtype, channels = PIXEL_TYPES[layout.pixel_type]
    out = np.empty((len(paths), *layout.shape, channels), dtype=dtype)
    originals = []
    for index, (values, original) in enumerate(_decoded(paths, layout)):
        out[index] = values
        originals.append(original)
    return out, originals


def _read_chunk_to_slot(ring_path: str, offset: int, paths: Sequence[str],
                        layout: Layout) -> list[tuple[int, int]]:
    """Decode ``paths`` into the ring file's slot that starts at byte ``offset``, image after image; their
    sizes before any resize."""
    reuse_freed_memory()  # see ParallelDecode.run
    handle = os.open(ring_path, os.O_WRONLY)
    originals = []
    try:
        for values, original in _decoded(paths, layout):
            # pwrite copies into the file's pages, allocated once for the whole load; writing through a
            # mapping would fault every page in again in each call.
            remaining = memoryview(np.ascontiguousarray(values)).cast("B")
            while remaining:
                written = os.pwrite(handle, remaining, offset)
                remaining, offset = remaining[written:], offset + written
            originals.append(original)
    finally:
        os.close(handle)
    return originals


def _ring_file(nbytes: int) -> tuple[str, int] | None:
    """A file of ``nbytes`` on the memory file system, its pages allocated, open for reading; or None
    when there is no such file system or no room on it (the workers then send their chunks back)."""
    if not os.path.isdir(SHARED_MEMORY_DIR) or shutil.disk_usage(SHARED_MEMORY_DIR).free < 2 * nbytes:
        return None
    handle, name = tempfile.mkstemp(dir=SHARED_MEMORY_DIR, prefix="load-folder-")
    try:
        os.posix_fallocate(handle, 0, nbytes)  # no room is found out now rather than by a worker half-way
    except OSError:
        os.close(handle)
        os.unlink(name)
        return None
    return name, handle


def read_all_headers(names: list[str], workers: int, bar: tqdm) -> list[Header]:
    """Every file's header, in order, read in chunks by the process pool when there are several chunks."""
    calls = [(names[start:start + HEADER_CHUNK_FILES],) for start in range(0, len(names), HEADER_CHUNK_FILES)]
    chunks = (in_pool(_read_headers, calls, workers) if workers > 1 and len(calls) > 1
              else (_read_headers(*call) for call in calls))
    headers: list[Header] = []
    for chunk in chunks:
        headers += chunk
        bar.update(len(chunk))
    return headers


def decode_all(names: list[str], layout: Layout, workers: int, bar: tqdm) -> tuple[np.ndarray, np.ndarray]:
    """Every file decoded into one array of this process, allocated once, by ``workers`` processes (this one
    and ``workers - 1`` of the pool), and each image's ``(height, width)`` before any resize."""
    dtype, channels = PIXEL_TYPES[layout.pixel_type]
    images = np.empty((len(names), *layout.shape, channels), dtype=dtype)
    originals = np.empty((len(names), 2), dtype=np.int64)
    if workers == 1:
        for index, (values, original) in enumerate(_decoded(names, layout)):
            images[index], originals[index] = values, original
            bar.update(1)
    else:
        ParallelDecode(names, layout, workers - 1, images, originals, bar).run()
    return images, originals


class ParallelDecode:
    """This process and ``helpers`` pool workers decode the files into ``images`` together.

    Why this process decodes too, and why the workers do not write into ``images``: the array is private
    memory, which Linux backs with huge pages (one page fault per 2 MiB); an array the workers could write
    into would be a shared file mapping, built from 4 KiB pages that are allocated, faulted in and freed one
    by one. Filling 375 MiB (2,000 RGB images of 256x256) took 0.31 s of kernel time through a mapping of
    the memory file system and 0.17 s through ``pwrite``, against 0.03 s into private huge pages (when
    the kernel has them at hand), while decoding the images takes about 0.8 s. So the workers decode
    chunks into a few slots of a file on the memory file system (its pages allocated once for the load),
    this process copies each finished slot into the array (one ``preadv``), and between copies it decodes
    images itself, straight into the array: only the workers' share is copied at all, and no more than
    ``helpers + 1`` processes decode at once. Work is handed out from the front of the list as it is
    claimed, so whoever is faster does more; the workers' chunks shrink towards the end so that they do
    not finish long after this process.
    """

    def __init__(self, names: list[str], layout: Layout, helpers: int, images: np.ndarray,
                 originals: np.ndarray, bar: tqdm) -> None:
        self.names, self.layout, self.helpers = names, layout, helpers
        self.images, self.originals, self.bar = images, originals, bar
        self.image_bytes = images[0].nbytes
        self.chunk = max(1, min(CHUNK_BYTES // self.image_bytes, -(-len(names) // (4 * (helpers + 1)))))
        self.claimed = 0  # images before this index are decoded or being decoded
        self.running: list[tuple[Future, int, int, int]] = []  # (future, first image, count, slot)
        # Two slots per worker: its next chunk can be sent before the last one is copied out.
        self.free_slots = list(range(2 * helpers))
        self.ring = _ring_file(2 * helpers * self.chunk * self.image_bytes)

    def run(self) -> None:
        # Each image passes through two buffers of its size (Pillow's, then NumPy's), freed right away. With
        # the pool's threads and futures allocating between them, glibc gave them back to the kernel after
        # every image and faulted them in again for the next: 110,000 page faults and 0.3 s of kernel time
        # in this process for 2,000 images of 256x256 (600 faults when one process loads alone), and 45,000
        # in a worker. Keeping freed blocks of up to 32 MB for reuse (as the loader's workers do) ends that.
        reuse_freed_memory()
        pool = worker_pool()
        try:
            while self.claimed < len(self.names):
                self._collect(pool, block=False)
                if self.claimed < len(self.names):  # one image here, then look at the workers again
                    index = self.claimed
                    self.claimed += 1
                    path = Path(self.names[index])
                    self.images[index], self.originals[index] = read_pixels(path, self.layout)
                    self.bar.update(1)
            while self.running:
                self._collect(pool, block=True)
        finally:  # on an error, let no worker go on writing into a slot of a file about to be removed
            for future, *_ in self.running:
                future.cancel()
            wait([future for future, *_ in self.running])
            if self.ring is not None:
                os.close(self.ring[1])
                os.unlink(self.ring[0])

    def _collect(self, pool, *, block: bool) -> None:
        """Copy the workers' finished chunks into the array and send them new ones."""
        if block:
            wait([future for future, *_ in self.running], return_when=FIRST_COMPLETED)
        finished, running = [], []
        for job in self.running:  # each future asked once: one may finish while we look
            (finished if job[0].done() else running).append(job)
        self.running = running
        self._send(pool)  # first, so that a worker is not idle while this process copies
        for future, first, count, slot in finished:
            # a worker's error (a file it could not decode, or that does not fit the layout) is raised here
            result = future.result()
            target = self.images[first:first + count]
            if self.ring is None:
                target[...], self.originals[first:first + count] = result
            else:
                self.originals[first:first + count] = result
                view = memoryview(target).cast("B")
                if os.preadv(self.ring[1], [view], self._offset(slot)) != len(view):
                    raise OSError(f"{self.ring[0]}: a short read of a slot a worker had written")
            self.free_slots.append(slot)
            self.bar.update(count)
        self._send(pool)

    def _send(self, pool) -> None:
        while len(self.running) < self.helpers and self.free_slots and self.claimed < len(self.names):
            left = len(self.names) - self.claimed
            count = max(1, min(self.chunk, left // (2 * (self.helpers + 1))))
            first, slot = self.claimed, self.free_slots.pop()
            self.claimed += count
            paths = self.names[first:first + count]
            if self.ring is None:
                future = pool.submit(_read_chunk, paths, self.layout)
            else:
                future = pool.submit(_read_chunk_to_slot, self.ring[0], self._offset(slot), paths,
                                     self.layout)
            self.running.append((future, first, count, slot))

    def _offset(self, slot: int) -> int:
        return slot * self.chunk * self.image_bytes
