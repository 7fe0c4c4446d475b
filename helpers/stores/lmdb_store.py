"""LMDB: one key per image (``%08d``), each value a small header plus the raw pixels (see codec).

Single images live in the environment ``single.lmdb``; a batch in ``many.lmdb``, written in one write
transaction with keys in append order and a ``__batch__`` record (count, shape, dtype) that sorts after
every image key. The map size is computed from the data and doubled on ``MapFullError``, so callers never
choose it. ``durable`` maps to LMDB's own ``sync``: each commit is flushed to stable storage, as LMDB does
by default; without it the operating system writes the pages back when it likes, as Pillow and h5py do.
Readers open environments read-only.
"""

from __future__ import annotations

import json
from pathlib import Path

import lmdb
import numpy as np

from helpers.errors import CorruptStoreError, ImageNotFoundError
from helpers.stores import codec
from helpers.stores.base import Store, check_count, check_image_shape

BATCH_KEY = b"__batch__"
PAGE = 4096
MIN_MAP_SIZE = 1 << 20


def image_key(image_id: int) -> bytes:
    return b"%08d" % image_id


def map_size_for(value_sizes: int, count: int) -> int:
    """Bytes of map that ``count`` values totalling ``value_sizes`` bytes need, with room to spare.

    A value larger than about half a page goes to overflow pages of its own, so round each up to pages.
    """
    per_value = value_sizes / max(count, 1)
    pages_each = -(-(int(per_value) + 64) // PAGE)
    estimate = count * pages_each * PAGE + count * 64
    return max(MIN_MAP_SIZE, int(estimate * 1.25) + 16 * PAGE)


def open_environment(path: Path, *, write: bool, map_size: int = MIN_MAP_SIZE, sync: bool = True) -> lmdb.Environment:
    if not write:
        if not (path / "data.mdb").exists():
            raise CorruptStoreError(f"{path / 'data.mdb'}: file is missing from the store")
        try:
            return lmdb.open(str(path), readonly=True, lock=False, readahead=True, max_dbs=0)
        except lmdb.Error as error:
            raise CorruptStoreError(f"{path}: not a readable LMDB environment ({error})") from None
    return lmdb.open(str(path), map_size=map_size, sync=sync, metasync=sync, max_dbs=0)


def put_with_growth(env: lmdb.Environment, items: list[tuple[bytes, bytes]] | object, fill) -> None:
    """Run ``fill(txn)`` in one write transaction, doubling the map until it fits."""
    while True:
        try:
            with env.begin(write=True) as txn:
                fill(txn)
            return
        except lmdb.MapFullError:
            env.set_mapsize(env.info()["map_size"] * 2)


class LmdbStore(Store):
    name = "lmdb"
    trade_off = (
        "LMDB copies raw bytes into a memory-mapped B-tree: no compression, values rounded up to 4 KiB "
        "pages, and a flush to disk on every commit unless told not to."
    )
    batch_name = "many.lmdb"

    @property
    def single_path(self) -> Path:
        return self.root / "single.lmdb"

    def _store_single(self, image: np.ndarray, image_id: int, label: int) -> None:
        value = codec.encode(image, label)
        self.single_path.mkdir(exist_ok=True)
        with open_environment(self.single_path, write=True, map_size=map_size_for(len(value), 1), sync=self.durable) as env:
            if env.info()["map_size"] < map_size_for(len(value), 1):
                env.set_mapsize(map_size_for(len(value), 1))
            put_with_growth(env, None, lambda txn: txn.put(image_key(image_id), value))

    def _read_single(self, image_id: int) -> tuple[np.ndarray, int]:
        if not self.single_path.exists():
            raise ImageNotFoundError(f"no image with id {image_id} in {self.root} (no single images stored)")
        with open_environment(self.single_path, write=False) as env, env.begin() as txn:
            value = txn.get(image_key(image_id))
        if value is None:
            raise ImageNotFoundError(f"no image with id {image_id} in {self.single_path}")
        return codec.decode(value, f"{self.single_path} key {image_key(image_id).decode()}")

    def _write_batch(self, path: Path, images: np.ndarray, labels: np.ndarray) -> None:
        path.mkdir()
        count = len(images)
        header_template = codec.encode_header(images.shape[1:], images.dtype, 0)
        pixel_bytes = images[0].nbytes
        batch = json.dumps({"count": count, "shape": list(images.shape[1:]), "dtype": images.dtype.name})

        def fill(txn: lmdb.Transaction) -> None:
            cursor = txn.cursor()
            records = (
                (image_key(i), header_template[:-8] + int(label).to_bytes(8, "little", signed=True) + image.tobytes())
                for i, (image, label) in enumerate(zip(images, labels))
            )
            cursor.putmulti(records, append=True)
            txn.put(BATCH_KEY, batch.encode())

        map_size = map_size_for(count * (pixel_bytes + codec.HEADER_SIZE), count)
        with open_environment(path, write=True, map_size=map_size, sync=self.durable) as env:
            put_with_growth(env, None, fill)

    def _read_batch(self, path: Path, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        with open_environment(path, write=False) as env, env.begin(buffers=True) as txn:
            raw = txn.get(BATCH_KEY)
            if raw is None:
                raise CorruptStoreError(f"{path}: the batch record is missing (incomplete or foreign environment)")
            try:
                batch = json.loads(bytes(raw))
                count, shape, dtype = int(batch["count"]), tuple(batch["shape"]), np.dtype(batch["dtype"])
                check_image_shape(shape, dtype)
            except (ValueError, KeyError, TypeError) as error:
                raise CorruptStoreError(f"{path}: unreadable batch record ({error})") from None
            num_images = check_count(num_images, count, path)
            return read_values(txn, path, num_images, shape, dtype)


def read_values(txn: lmdb.Transaction, path: Path, num_images: int, shape: tuple[int, ...], dtype: np.dtype):
    """Walk the cursor from the first key, copying pixels straight into one preallocated array."""
    images = np.empty((num_images, *shape), dtype=dtype)
    headers = np.empty((num_images, codec.HEADER_SIZE), dtype=np.uint8)
    pixels_out = memoryview(images.reshape(num_images, -1).view(np.uint8)).cast("B")
    headers_out = memoryview(headers).cast("B")
    size = images[0].nbytes if num_images else 0
    record = codec.HEADER_SIZE + size
    cursor = txn.cursor()
    cursor.first()
    read = 0
    for key, value in cursor.iternext(keys=True, values=True):
        if read == num_images:
            break
        if bytes(key) != image_key(read) or len(value) != record:
            raise CorruptStoreError(
                f"{path}: record {read} is key {bytes(key)!r} of {len(value)} bytes, "
                f"expected key {image_key(read)!r} of {record} bytes"
            )
        headers_out[read * codec.HEADER_SIZE : (read + 1) * codec.HEADER_SIZE] = value[: codec.HEADER_SIZE]
        pixels_out[read * size : (read + 1) * size] = value[codec.HEADER_SIZE :]
        read += 1
    if read != num_images:
        raise CorruptStoreError(f"{path}: found {read} images, the batch record promises {num_images}")
    expected = np.frombuffer(codec.encode_header(shape, dtype, 0)[:-8], dtype=np.uint8)
    if not (headers[:, :-8] == expected).all():
        bad = int(np.flatnonzero((headers[:, :-8] != expected).any(axis=1))[0])
        raise CorruptStoreError(f"{path}: key {image_key(bad).decode()} has a header that does not match the batch")
    labels = headers[:, -8:].copy().view("<i8").reshape(num_images).astype(np.int64)
    return images, labels
