"""WebDataset shards of compressed images: what the tar store writes with ``compression=``.

Each sample is ``<key>.cls`` (the label as decimal text) and ``<key><suffix>``, the image encoded by the
codec of ``helpers.codecs``: ``.png``, ``.jpg``, ``.webp``, ``.jp2``, ``.jls`` files as any image tool
reads them (WebDataset's own decoders read PNG, JPEG and WebP), or a bare zstd frame (``.zst``) or Blosc
chunk (``.blosc``) of the pixels in C order. Members are written with ``tarfile`` (their sizes vary, so
the fixed-stride templates of the raw store do not apply). ``batch.json`` beside the shards records count,
shape, dtype and codec; ``index.npy`` has one row per sample: shard, offset of the ``.cls`` data, offset
and size of the image data. Readers map each shard and decode only the images asked for; a mini-batch of
zstd frames is decoded in one call (``Codec.decode_many``). Single images stay raw ``.npy`` samples.
"""

from __future__ import annotations

import io
import json
import mmap
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from helpers.codecs import Codec, get_codec
from helpers.core.errors import CorruptStoreError
from helpers.stores.base import BatchReader
from helpers.stores.checks import check_image_shape
from helpers.stores.values import EncodedImages, decode_payloads, image_payloads

BATCH_FILE = "batch.json"
LABEL_TEXT = 20


class ShardLayout(Protocol):
    per_shard: int  # samples per shard
    key_digits: int  # width of the zero-padded keys


def write_compressed_shards(
    folder: Path,
    chunks: Iterable[tuple[np.ndarray, np.ndarray]],
    image_codec: Codec,
    index_name: str,
    layout: Callable[[tuple[int, ...], np.dtype], ShardLayout],
) -> None:
    """The batch as shards, written as its chunks arrive, then its index and batch.json. ``layout``
    gives the samples per shard and the keys' width for the images' shape and dtype."""
    rows: list[np.ndarray] = []
    archive: tarfile.TarFile | None = None
    count, shape, dtype = 0, (), np.dtype(np.uint8)
    try:
        for images, labels in chunks:
            if archive is None:
                shape, dtype = images.shape[1:], images.dtype
                plan = layout(shape, dtype)
            offset = 0
            while offset < len(images):
                shard, filled = divmod(count, plan.per_shard)
                if filled == 0:
                    if archive is not None:
                        archive.close()
                    archive = tarfile.open(folder / f"shard-{shard:06d}.tar", "w", format=tarfile.USTAR_FORMAT)
                take = min(len(images) - offset, plan.per_shard - filled)
                rows.append(add_samples(archive, images[offset : offset + take], labels[offset : offset + take],
                                        count, image_codec, plan.key_digits, shard))
                offset += take
                count += take
    finally:
        if archive is not None:
            archive.close()
    np.save(folder / index_name, np.concatenate(rows))
    write_description(folder, count, shape, dtype, image_codec.name)


def add_samples(
    archive: tarfile.TarFile, images: np.ndarray | EncodedImages, labels: np.ndarray, first: int, image_codec: Codec,
    key_digits: int, shard: int,
) -> np.ndarray:
    """Samples ``first``, ``first + 1``, ... appended to the open shard ``shard``; their index rows."""
    suffix = image_codec.suffix
    rows = np.empty((len(images), 4), dtype=np.int64)
    rows[:, 0] = shard
    for position, (payload, label) in enumerate(zip(image_payloads(images, image_codec), labels.tolist())):
        key = f"{first + position:0{key_digits}d}"
        rows[position, 1] = add_member(archive, f"{key}.cls", str(int(label)).encode())
        rows[position, 2:] = add_member(archive, f"{key}{suffix}", payload), len(payload)
    return rows


def write_description(folder: Path, count: int, shape: tuple[int, ...], dtype: np.dtype, compression: str) -> None:
    description = {"count": int(count), "shape": list(shape), "dtype": np.dtype(dtype).name,
                   "compression": compression}
    (folder / BATCH_FILE).write_text(json.dumps(description))


def piece_index_name(shard: int) -> str:
    """Where a shard written as a piece keeps its index rows until the commit gathers them."""
    return f"shard-{shard:06d}.rows.npy"


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> int:
    """Append a regular file; the offset of its data (after its one 512-byte ustar header)."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    offset = archive.offset + tarfile.BLOCKSIZE
    archive.addfile(info, io.BytesIO(data))
    return offset


def recorded_compression(path: Path) -> str | None:
    """The codec batch.json names, or None for a raw batch (which has no batch.json)."""
    file = path / BATCH_FILE
    if not file.exists():
        return None
    try:
        return str(json.loads(file.read_text())["compression"])
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptStoreError(f"{file}: not a batch description ({error})") from None


class CompressedTarReader(BatchReader):
    """Every shard mapped read-only; an image is its member's bytes, sliced at the indexed offset, decoded."""

    def __init__(self, path: Path, index_name: str) -> None:
        self.maps: list[mmap.mmap] = []
        try:
            batch = json.loads((path / BATCH_FILE).read_text())
            shape, dtype = tuple(batch["shape"]), np.dtype(batch["dtype"])
            check_image_shape(shape, dtype)
            self.image_codec = get_codec(batch["compression"])
            index = np.load(path / index_name, allow_pickle=False)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CorruptStoreError(f"{path}: not a compressed tar batch this library wrote ({error})") from None
        if index.ndim != 2 or index.shape != (int(batch["count"]), 4):
            raise CorruptStoreError(f"{path / index_name}: not the offset index of {batch['count']} samples")
        super().__init__(path, len(index), shape, dtype)
        self.index = index
        try:
            self.shards = [self.map_shard(path / f"shard-{shard:06d}.tar") for shard in range(int(index[-1, 0]) + 1)]
            ends = index[:, 2] + index[:, 3]
            for shard, data in enumerate(self.shards):
                if (ends[index[:, 0] == shard] > len(data)).any():
                    raise CorruptStoreError(f"{path / f'shard-{shard:06d}.tar'}: shorter than its index says (truncated)")
            texts = np.stack([np.frombuffer(self.shards[s], np.uint8, LABEL_TEXT, o) for s, o in index[:, :2]])
            self.labels = texts.view(f"S{LABEL_TEXT}").reshape(-1).astype(np.int64)
        except (ValueError, OverflowError) as error:
            self.close()
            raise CorruptStoreError(f"{path}: a .cls member does not hold an integer label ({error})") from None
        except BaseException:
            self.close()
            raise

    def map_shard(self, file: Path) -> memoryview:
        try:
            with open(file, "rb") as handle:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise CorruptStoreError(f"{file}: shard file is missing from the store") from None
        except ValueError:  # an empty file cannot be mapped
            raise CorruptStoreError(f"{file}: shard file is empty (truncated)") from None
        self.maps.append(mapped)
        return memoryview(mapped)

    def payload(self, index: int) -> memoryview:
        shard, _, offset, size = self.index[index].tolist()
        return self.shards[shard][offset : offset + size]

    def where(self, index: int) -> str:
        return f"{self.path / f'shard-{int(self.index[index, 0]):06d}.tar'} sample {index}"

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        image = self.image_codec.decode(self.payload(index), self.shape, self.dtype, self.where(index))
        return image, int(self.labels[index])

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        positions = indices.tolist()
        payloads = [self.payload(index) for index in positions]
        images = decode_payloads(self.image_codec, payloads, self.shape, self.dtype,
                                 lambda position: self.where(positions[position]))
        return images, self.labels[indices]

    def close(self) -> None:
        self.shards = []
        for mapped in self.maps:
            try:
                mapped.close()
            except BufferError:  # a view handed out still points into it
                pass
        self.maps = []
        self.closed = True

