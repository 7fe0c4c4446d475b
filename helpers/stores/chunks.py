"""A batch arriving in chunks: checked one chunk at a time, and regrouped into the runs a writer's files hold.

``store_chunks`` takes any iterable of ``(images, labels)`` chunks; ``ChunkStream`` checks each as the writer
takes it (one shape and dtype, the declared total), ``AlignedBlocks`` regroups them into blocks of a fixed
number of images (a PNG shard folder, a Zarr shard, a Parquet row group), so that the files are the same
however the batch was cut. Memory stays bounded by a couple of chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from helpers.core.errors import ImageFormatError
from helpers.stores.checks import check_batch
from helpers.stores.values import EncodedImages


def planned_batch(count: int, image_shape: tuple[int, ...], dtype: object) -> np.ndarray:
    """A batch of ``count`` images of this shape and dtype as a broadcast view, no memory: what a space
    check needs of a batch not yet in hand is its length, shape and dtype."""
    return np.broadcast_to(np.zeros((1, *image_shape), dtype), (int(count), *image_shape))


class AlignedBlocks:
    """``(first index, images, labels)`` blocks of ``block_images`` images (the last may be short),
    regrouped from a batch arriving as chunks of any size, so that a writer whose files hold fixed runs of
    images (PNG shard folders, Zarr shards, Parquet row groups) writes each run once, whole.

    A chunk's whole blocks are passed on as views; a block split between chunks is gathered first. Images
    may be arrays or ``values.EncodedImages``. ``on_labels(first index, labels)``, if given, sees each
    chunk's labels as it arrives. ``count``, ``shape`` and ``dtype`` describe what went through.
    """

    def __init__(
        self, chunks: Iterable[tuple[np.ndarray, np.ndarray]], block_images: int,
        on_labels: Callable[[int, np.ndarray], None] | None = None,
    ) -> None:
        self.chunks, self.block_images, self.on_labels = chunks, block_images, on_labels
        self.count, self.shape, self.dtype = 0, (), np.dtype(np.uint8)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        start, gathered, gathered_count = 0, [], 0  # the block being gathered: first index, parts, images
        for images, labels in self.chunks:
            if self.on_labels is not None:
                self.on_labels(self.count, labels)
            self.count += len(images)
            self.shape, self.dtype = images.shape[1:], images.dtype
            offset = 0
            while offset < len(images):
                block_end = (start // self.block_images + 1) * self.block_images
                take = min(len(images) - offset, block_end - start - gathered_count)
                gathered.append((images[offset : offset + take], labels[offset : offset + take]))
                gathered_count += take
                offset += take
                if start + gathered_count == block_end:
                    block, gathered, gathered_count = joined(gathered), [], 0  # the parts go before the block is used
                    yield (start, *block)
                    start, block = block_end, None
        if gathered:
            yield (start, *joined(gathered))


def joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of consecutive parts as one run (the part itself when there is one)."""
    if len(parts) == 1:
        return parts[0]
    labels = np.concatenate([labels for _, labels in parts])
    if isinstance(parts[0][0], EncodedImages):
        return EncodedImages.join([images for images, _ in parts]), labels
    return np.concatenate([images for images, _ in parts]), labels


class ChunkStream:
    """The chunks given to ``store_chunks``, checked one by one as the writer takes them.

    The first chunk is taken at once (its shape and dtype are the batch's); each later one must match it.
    ``before_each(images, index)`` runs before a chunk is handed on (the space check when no total was
    declared). ``count`` is the number of images handed on so far; a declared ``total`` must be met exactly.
    """

    def __init__(
        self, chunks: Iterable[tuple[np.ndarray, object]], total: int | None, encoded_with: str | None = None
    ) -> None:
        self.total = total
        self.encoded_with = encoded_with
        self.count = 0
        self.before_each: Callable[[np.ndarray, int], None] | None = None
        self._source = iter(chunks)
        self._index = 0
        try:
            first = next(self._source)
        except StopIteration:
            raise ImageFormatError("chunks is empty; store_chunks needs at least one chunk of images") from None
        self._pending: tuple[np.ndarray, np.ndarray] | None = self._check(first)
        #: The batch's image shape and dtype, from the first chunk (which is not kept once handed on).
        self.image_shape, self.dtype = self._pending[0].shape[1:], self._pending[0].dtype

    def _check(self, chunk: object) -> tuple[np.ndarray, np.ndarray]:
        what = f"chunk {self._index}"
        if not isinstance(chunk, tuple) or len(chunk) != 2:
            raise ImageFormatError(f"{what} is a {type(chunk).__name__}; each chunk must be an (images, labels) pair")
        try:
            images, labels = check_batch(*chunk, encoded_with=self.encoded_with)
        except ImageFormatError as error:
            raise ImageFormatError(f"{what}: {error}") from None
        if self._index and (images.shape[1:] != self.image_shape or images.dtype != self.dtype):
            raise ImageFormatError(
                f"{what} holds images of shape {images.shape[1:]} {images.dtype}; the first chunk's are "
                f"{self.image_shape} {self.dtype}, and one batch holds one shape and dtype"
            )
        if self.total is not None and self.count + len(images) > self.total:
            raise ImageFormatError(
                f"{what} brings the batch to {self.count + len(images)} images; total={self.total} was declared"
            )
        return images, labels

    def peek(self) -> tuple[np.ndarray, np.ndarray]:
        """The first chunk, before it is handed on."""
        assert self._pending is not None and not self._index
        return self._pending

    def __iter__(self) -> "ChunkStream":
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pending is not None:
            chunk, self._pending = self._pending, None
        else:
            try:
                raw = next(self._source)
            except StopIteration:
                if self.total is not None and self.count != self.total:
                    raise ImageFormatError(
                        f"the chunks held {self.count} images; total={self.total} was declared"
                    ) from None
                raise
            chunk = self._check(raw)
        if self.before_each is not None:
            self.before_each(chunk[0], self._index)
        self._index += 1
        self.count += len(chunk[0])
        return chunk
