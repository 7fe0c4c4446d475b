"""WebDataset: a batch is a folder of tar shards, ``shard-000000.tar``, ..., with an offset index beside them.

Each image is one WebDataset sample of two consecutive members: ``<key>.cls`` (the label as decimal text)
and ``<key>.npy`` (the image as ``np.save`` writes it), keys ``00000000``, ``00000001``, ... in order.
``webdataset.WebDataset(urls).decode()`` reads the shards unchanged: its default decoders turn ``.cls``
into an int and ``.npy`` into the array (``allow_pickle=False``). ``.npy`` rather than PNG keeps 16-bit
images exact and costs no decoding: a random read is a copy out of the page cache, where a PNG would need
~50 us of zlib per CIFAR image. The price is space: a tar member is a 512-byte header plus data padded to
512 bytes, so a 3,072-byte CIFAR image takes 4,096 bytes and its label 1,024, 1.67x the raw pixels.

Shards are plain ustar archives: every header is the one ``tarfile.TarInfo.tobuf`` makes for that member
(mode 0644, owner 0, mtime 0), the end is tarfile's two zero blocks padded to its 10,240-byte record, and
tests check that the files are byte for byte what ``tarfile`` itself writes. The headers are made from
``tobuf`` templates with the key and checksum filled in with array operations, because ``tarfile.addfile``
with ``np.save`` per image took 64 us per member here (12.7 s for 100,000 images; the floor writes them in
0.05-0.2 s, this store in 0.3-0.6 s).

A shard holds at most SHARD_BYTES (64 MiB, 13,107 CIFAR images): big enough that the file count stays
small (8 shards for 100,000 images) and sequential reads are long, small enough that DataLoader workers
get several shards each. Measured writing and reading 100,000 CIFAR images, shards of 4, 16, 64 and
256 MiB write and read within noise of each other; only the file count and the parallelism differ.

``index.npy`` (int64, one row per sample: shard, offset of the ``.cls`` data, offset of the ``.npy``
data) is what WebDataset's ``wids`` keeps for random access. Readers map each shard read-only; a random
image is one copy from the map at its indexed offset. On opening, the index is checked against the shard
sizes and every sample's ``.npy`` header, and every label is parsed from its ``.cls`` member, so a
truncated or missing shard or a damaged index is reported, naming the file. Pixels carry no checksum
(as in a raw ``.npy``). Single images are one-sample shards, ``single/<id>.tar``, read with ``tarfile``.
``durable`` flushes every shard, the index and the folder (the base class's fsync of the batch folder).

With ``compression=`` (any codec of ``helpers.codecs``) a batch's images are members encoded by that codec
instead, written and read by ``helpers.stores.tar_compressed`` (``batch.json`` there names the codec, so a
reader opened with any ``compression=`` reads what was recorded); this raw path is unchanged.
"""

from __future__ import annotations

import io
import mmap
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from helpers.codecs import names as codec_names
from helpers.core import space
from helpers.core.errors import CorruptStoreError, ImageFormatError, ImageNotFoundError
from helpers.core.files import fsync_path, replaced_when_written
from helpers.stores.base import BatchReader, Store
from helpers.stores.checks import check_stored
from helpers.stores.pieces import WritesPieces, writing_name
from helpers.stores.tar_compressed import (
    CompressedTarReader,
    add_samples,
    piece_index_name,
    recorded_compression,
    write_compressed_shards,
    write_description,
)

BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 10,240: tarfile pads an archive's end to whole records
SHARD_BYTES = 64 * 1024 * 1024
LABEL_TEXT = 20  # "-9223372036854775808": the longest int64 as text
CHUNK = 1024  # samples built in memory at a time when writing
INDEX_NAME = "index.npy"
CHECKSUM = slice(148, 156)  # the ustar header's checksum field
UNKNOWN_COUNT = 10**8  # images a batch of unknown size may hold: keys of 8 digits


def shard_name(shard: int) -> str:
    return f"shard-{shard:06d}.tar"


def header(name: str, size: int) -> np.ndarray:
    """The ustar header ``tarfile`` writes for a regular file (mode 0644, owner 0, mtime 0)."""
    info = tarfile.TarInfo(name)
    info.size = size
    return np.frombuffer(info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"), dtype=np.uint8)


def padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def npy_header(image_shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The bytes ``np.save`` writes before the pixels of one image."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                 "shape": tuple(image_shape)}
    )
    return buffer.getvalue()


class SampleLayout:
    """Where everything of one sample sits: the cls header and data, the npy header and data, the stride."""

    def __init__(self, count: int, image_shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.count = count
        self.key_digits = max(8, len(str(max(count - 1, 0))))
        self.image_shape, self.dtype = tuple(image_shape), np.dtype(dtype)
        self.npy_header = npy_header(image_shape, dtype)
        self.pixel_bytes = int(np.prod(image_shape)) * self.dtype.itemsize
        self.npy_bytes = len(self.npy_header) + self.pixel_bytes
        self.cls_data = BLOCK  # header of the .cls member, then its data
        self.npy_data = 3 * BLOCK  # + the .cls data block + the .npy header
        self.stride = self.npy_data + padded(self.npy_bytes)
        self.per_shard = max(1, SHARD_BYTES // self.stride)

    @property
    def shards(self) -> int:
        return -(-self.count // self.per_shard)

    def shard_samples(self, shard: int) -> int:
        return min(self.per_shard, self.count - shard * self.per_shard)

    def shard_bytes(self, shard: int) -> int:
        """A shard's size: its samples, two zero blocks, padding to a whole record (what tarfile writes)."""
        return -(-(self.shard_samples(shard) * self.stride + 2 * BLOCK) // RECORD) * RECORD

    def index(self) -> np.ndarray:
        """One row per sample: shard, offset of its .cls data, offset of its .npy data."""
        positions = np.arange(self.count, dtype=np.int64)
        shard, local = np.divmod(positions, self.per_shard)
        start = local * self.stride
        return np.stack([shard, start + self.cls_data, start + self.npy_data], axis=1)


class SampleWriter:
    """Builds the bytes of consecutive samples with array operations, from ``tarfile`` header templates.

    Headers of one batch differ only in the key's digits, the .cls size and so the checksum: each checksum
    is its template's byte sum (key digits left out) plus the sum of the key's digits.
    """

    def __init__(self, layout: SampleLayout) -> None:
        self.layout = layout
        digits = layout.key_digits
        key = "0" * digits
        self.cls_headers = np.stack([header(f"{key}.cls", length) for length in range(LABEL_TEXT + 1)])
        self.cls_sums = template_sums(self.cls_headers, digits)
        npy_template = header(f"{key}.npy", layout.npy_bytes)[np.newaxis]
        self.npy_sum = template_sums(npy_template, digits)[0]
        self.buffer = np.zeros((CHUNK, layout.stride), dtype=np.uint8)
        self.buffer[:, layout.npy_data - BLOCK : layout.npy_data] = npy_template
        header_bytes = np.frombuffer(layout.npy_header, dtype=np.uint8)
        self.buffer[:, layout.npy_data : layout.npy_data + len(header_bytes)] = header_bytes
        self.powers = 10 ** np.arange(digits - 1, -1, -1, dtype=np.int64)

    def samples(self, images: np.ndarray, labels: np.ndarray, start: int) -> memoryview:
        """The tar bytes of samples ``start``, ``start + 1``, ... for these images and labels."""
        layout, count = self.layout, len(images)
        records = self.buffer[:count]
        texts = labels.astype(f"S{LABEL_TEXT}")
        lengths = np.char.str_len(texts)
        cls_header = records[:, :BLOCK]
        cls_header[:] = self.cls_headers[lengths]
        records[:, BLOCK : 2 * BLOCK] = 0
        records[:, BLOCK : BLOCK + LABEL_TEXT] = texts.view(np.uint8).reshape(count, LABEL_TEXT)
        npy_header = records[:, layout.npy_data - BLOCK : layout.npy_data]
        keys = (np.arange(start, start + count, dtype=np.int64)[:, None] // self.powers) % 10 + ord("0")
        key_sums = keys.sum(axis=1)
        for block, sums in ((cls_header, self.cls_sums[lengths]), (npy_header, self.npy_sum)):
            block[:, : layout.key_digits] = keys
            block[:, CHECKSUM.start : CHECKSUM.start + 6] = octal_digits(sums + key_sums, 6)
        pixels = records[:, layout.npy_data + len(layout.npy_header) : layout.npy_data + layout.npy_bytes]
        pixels[:] = images.reshape(count, -1).view(np.uint8)
        return memoryview(records).cast("B")


def template_sums(headers: np.ndarray, key_digits: int) -> np.ndarray:
    """Each template header's checksum base as ustar defines it: the byte sum with the checksum field
    counted as eight spaces, here without the key's digits (added per sample)."""
    counted = headers.astype(np.int64)
    counted[:, CHECKSUM] = ord(" ")
    counted[:, :key_digits] = 0
    return counted.sum(axis=1)


def octal_digits(values: np.ndarray, width: int) -> np.ndarray:
    """``values`` as ``width`` ASCII octal digits each (what "%06o" writes for width 6)."""
    shifts = np.arange(3 * (width - 1), -1, -3, dtype=np.int64)
    return ((np.asarray(values, dtype=np.int64)[..., np.newaxis] >> shifts) % 8 + ord("0")).astype(np.uint8)


def write_shards(
    folder: Path, chunks: Iterator[tuple[np.ndarray, np.ndarray]], total: int | None
) -> SampleLayout:
    """The shards of a batch arriving in chunks of any size, each shard file written as its samples come.

    The keys' width depends on the number of images: without ``total`` it is taken as 8 digits (up to
    100,000,000 images), and a batch that turns out larger is refused rather than written with keys that
    do not sort.
    """
    layout = writer = file = None
    count = 0
    try:
        for images, labels in chunks:
            if layout is None:
                layout = SampleLayout(total or UNKNOWN_COUNT, images.shape[1:], images.dtype)
                writer = SampleWriter(layout)
            little = images.astype(images.dtype.newbyteorder("<"), copy=False)
            offset = 0
            while offset < len(images):
                if count % layout.per_shard == 0:
                    if file is not None:
                        close_shard(file, layout, layout.per_shard)
                    file = open(folder / shard_name(count // layout.per_shard), "wb")
                take = min(len(images) - offset, layout.per_shard - count % layout.per_shard, CHUNK)
                file.write(writer.samples(little[offset : offset + take], labels[offset : offset + take], count))
                offset += take
                count += take
        final = SampleLayout(count, layout.image_shape, layout.dtype)
        if final.key_digits != layout.key_digits:
            raise ImageFormatError(f"{count:,} images need keys of {final.key_digits} digits; give total= "
                                   f"to store_chunks for more than {UNKNOWN_COUNT:,} images")
        close_shard(file, final, final.shard_samples(final.shards - 1))
        file = None
        return final
    finally:
        if file is not None:
            file.close()


def write_raw_shard(
    file_path: Path, layout: SampleLayout, images: np.ndarray, labels: np.ndarray, first: int
) -> None:
    """One whole shard of raw samples ``first``, ``first + 1``, ... in the file ``file_path``."""
    writer = SampleWriter(layout)
    little = images.astype(images.dtype.newbyteorder("<"), copy=False)
    file = open(file_path, "wb")
    with file:
        for start in range(0, len(images), CHUNK):
            stop = min(start + CHUNK, len(images))
            file.write(writer.samples(little[start:stop], labels[start:stop], first + start))
        close_shard(file, layout, len(images))


def close_shard(file, layout: SampleLayout, samples: int) -> None:
    """End a shard of ``samples`` samples as tarfile does (two zero blocks, padding to a whole record)."""
    file.write(bytes(-(-(samples * layout.stride + 2 * BLOCK) // RECORD) * RECORD - samples * layout.stride))
    file.close()


class TarStore(WritesPieces, Store):
    name = "tar"
    label = "WebDataset tar"
    colour = "#8c564b"
    choose_when = (
        "WebDataset tar shards when a training job streams the set sequentially from many shards"
    )
    trade_off = (
        "WebDataset tar shards store each image as an .npy member and its label as a .cls member: a 512-byte "
        "header and padding to 512 bytes per member, read by offset from an index beside the shards."
    )
    batch_name = "many.wds"
    compressions = tuple(codec_names())
    encodes_each_image = True

    @classmethod
    def space_needed(cls, n_images: int, image_shape: tuple[int, ...], dtype: np.dtype, single: bool) -> int:
        layout = SampleLayout(max(n_images, 1), image_shape, dtype)
        if single:  # a one-sample tar each
            return n_images * (space.round_to_blocks(layout.shard_bytes(0)) + space.DIRECTORY_ENTRY)
        shards = sum(space.round_to_blocks(layout.shard_bytes(shard)) + space.DIRECTORY_ENTRY
                     for shard in range(layout.shards))
        index = space.round_to_blocks(128 + 3 * 8 * n_images) + space.DIRECTORY_ENTRY
        return shards + index + space.BLOCK

    def _store_single(self, image: np.ndarray, image_id: int, label: int) -> None:
        with replaced_when_written(self.single_path(image_id, ".tar"), self.durable) as partial:
            with tarfile.open(partial, "w", format=tarfile.USTAR_FORMAT) as archive:
                for name, data in ((f"{image_id}.cls", str(label).encode()), (f"{image_id}.npy", npy_bytes(image))):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))

    def _read_single(self, image_id: int) -> tuple[np.ndarray, int]:
        path = self.single_path(image_id, ".tar")
        if not path.exists():
            raise ImageNotFoundError(f"no image with id {image_id} in {self.root} (no {path.name})")
        size = path.stat().st_size
        if size % RECORD:  # tarfile writes whole 10,240-byte records: this one lost its end
            raise CorruptStoreError(f"{path}: {size} bytes, not whole tar records (truncated)")
        try:
            with tarfile.open(path, "r:") as archive:
                label_text = member_bytes(archive, f"{image_id}.cls", path)
                image_bytes = member_bytes(archive, f"{image_id}.npy", path)
            image = np.load(io.BytesIO(image_bytes), allow_pickle=False)
            label = int(label_text.decode("ascii"))
        except (tarfile.TarError, OSError, ValueError, EOFError, UnicodeDecodeError) as error:
            raise CorruptStoreError(f"{path}: not a readable one-sample shard ({error})") from None
        check_stored(image.shape, image.dtype, path)
        return image, label

    def _write_chunks(
        self, path: Path, chunks: Iterator[tuple[np.ndarray, np.ndarray]], total: int | None
    ) -> None:
        path.mkdir()
        if self.compression is not None:
            write_compressed_shards(path, chunks, self.image_codec, INDEX_NAME, lambda shape, dtype: (
                SampleLayout(total or UNKNOWN_COUNT, shape, dtype)))
            return
        layout = write_shards(path, chunks, total)
        np.save(path / INDEX_NAME, layout.index())

    # A piece is one shard, written under a temporary name and renamed when complete; the commit writes the
    # index, which for raw samples follows from the number of images alone, and for compressed ones is
    # gathered from each piece's own rows.
    writes_pieces = True

    def images_per_piece(self, image_shape: tuple[int, ...], dtype: np.dtype) -> int:
        return SampleLayout(1, image_shape, dtype).per_shard

    def _write_piece(
        self, partial: Path, index: int, images: np.ndarray, labels: np.ndarray, count: int
    ) -> None:
        final = partial / shard_name(index)
        if self._piece_done(partial, index):  # written by an earlier attempt at this task: the same images
            return
        layout = SampleLayout(count, images.shape[1:], images.dtype)
        temporary = partial / writing_name(shard_name(index))
        rows_temporary = partial / writing_name(piece_index_name(index))
        first = index * layout.per_shard
        try:
            if self.compression is None:
                write_raw_shard(temporary, layout, images, labels, first)
            else:  # the rows first: a shard in place always has them
                with tarfile.open(temporary, "w", format=tarfile.USTAR_FORMAT) as archive:
                    rows = add_samples(archive, images, labels, first, self.image_codec, layout.key_digits, index)
                with open(rows_temporary, "wb") as out:
                    np.save(out, rows)
                if self.durable:
                    fsync_path(rows_temporary)
                os.replace(rows_temporary, partial / piece_index_name(index))
            if self.durable:
                fsync_path(temporary)
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
            rows_temporary.unlink(missing_ok=True)

    def _piece_done(self, partial: Path, index: int) -> bool:
        """The shard in place (and, compressed, with its index rows: a commit cut short may have taken them)."""
        return (partial / shard_name(index)).exists() and (
            self.compression is None or (partial / piece_index_name(index)).exists()
        )

    def _commit_pieces(self, partial: Path, count: int, image_shape: tuple[int, ...], dtype: np.dtype) -> None:
        layout = SampleLayout(count, image_shape, dtype)
        if self.compression is None:
            np.save(partial / INDEX_NAME, layout.index())
            return
        rows_files = [partial / piece_index_name(shard) for shard in range(layout.shards)]
        np.save(partial / INDEX_NAME, np.concatenate([np.load(file, allow_pickle=False) for file in rows_files]))
        write_description(partial, count, image_shape, dtype, self.image_codec.name)
        for file in rows_files:
            file.unlink()

    def _open_reader(self, path: Path) -> BatchReader:
        return TarReader(path) if recorded_compression(path) is None else CompressedTarReader(path, INDEX_NAME)


def npy_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, image, allow_pickle=False)
    return buffer.getvalue()


def member_bytes(archive: tarfile.TarFile, name: str, path: Path) -> bytes:
    try:
        member = archive.getmember(name)
    except KeyError:
        raise CorruptStoreError(f"{path}: the member {name} is missing") from None
    handle = archive.extractfile(member)
    if handle is None:
        raise CorruptStoreError(f"{path}: the member {name} is not a regular file")
    data = handle.read()
    if len(data) != member.size:
        raise CorruptStoreError(f"{path}: the member {name} is cut short")
    return data


class TarReader(BatchReader):
    """Every shard mapped read-only and seen as a strided array of images, checked against the index."""

    def __init__(self, path: Path) -> None:
        index = load_index(path / INDEX_NAME)
        self.maps: list[mmap.mmap] = []
        try:
            self.open_shards(path, index)
        except BaseException:
            self.close()
            raise

    def open_shards(self, path: Path, index: np.ndarray) -> None:
        first_shard = path / shard_name(0)
        image_shape, dtype = read_first_header(first_shard)
        layout = SampleLayout(len(index), image_shape, dtype)
        if not np.array_equal(index, layout.index()):
            raise CorruptStoreError(f"{path / INDEX_NAME}: the offsets do not match the shards' layout (damaged)")
        super().__init__(path, layout.count, image_shape, dtype)
        self.layout = layout
        # Views only: headers and labels are checked for the samples a read touches (the pages it reads
        # anyway), so opening a batch reads no image and a cold read stays a cold read.
        self.views: list[np.ndarray] = []
        self.headers: list[np.ndarray] = []
        self.label_texts: list[np.ndarray] = []
        self.files: list[Path] = []
        self.expected_header = np.frombuffer(layout.npy_header, dtype=np.uint8)
        self.header_bytes = bytes(layout.npy_header)
        for shard in range(layout.shards):
            file = path / shard_name(shard)
            data = self.map_shard(file, layout.shard_bytes(shard))
            samples = data[: layout.shard_samples(shard) * layout.stride].reshape(-1, layout.stride)
            npy = samples[:, layout.npy_data : layout.npy_data + layout.npy_bytes]
            self.headers.append(npy[:, : len(self.expected_header)])
            self.views.append(npy[:, len(self.expected_header) :].view(self.dtype.newbyteorder("<")).reshape(-1, *image_shape))
            self.label_texts.append(samples[:, layout.cls_data : layout.cls_data + LABEL_TEXT])
            self.files.append(file)

    def checked_labels(self, shard: int, rows: np.ndarray | slice) -> np.ndarray:
        """The labels of these samples of a shard, once their .npy headers are checked to be this batch's."""
        file = self.files[shard]
        if not (self.headers[shard][rows] == self.expected_header).all():
            raise CorruptStoreError(f"{file}: an .npy member does not hold an image of this batch (damaged)")
        return parse_labels(self.label_texts[shard][rows], file)

    def map_shard(self, file: Path, size: int) -> np.ndarray:
        try:
            with open(file, "rb") as handle:
                found = os.fstat(handle.fileno()).st_size
                if found != size:
                    raise CorruptStoreError(f"{file}: {found} bytes, the index needs {size} (truncated or damaged)")
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise CorruptStoreError(f"{file}: shard file is missing from the store") from None
        self.maps.append(mapped)
        return np.frombuffer(mapped, dtype=np.uint8)

    def read_one(self, index: int) -> tuple[np.ndarray, int]:
        # The hot path of random access: byte comparisons and one copy, no array machinery.
        shard, local = divmod(index, self.layout.per_shard)
        text = self.label_texts[shard][local].tobytes()
        if self.headers[shard][local].tobytes() != self.header_bytes:
            raise CorruptStoreError(f"{self.files[shard]}: sample {local} is not an image of this batch (damaged)")
        try:
            label = int(text.rstrip(b"\0"))
        except ValueError:
            raise CorruptStoreError(f"{self.files[shard]}: a .cls member does not hold an integer label") from None
        return self.views[shard][local].copy(), label

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.empty((len(indices), *self.shape), dtype=self.dtype)
        labels = np.empty(len(indices), dtype=np.int64)
        shards, local = np.divmod(indices, self.layout.per_shard)
        if len(self.views) == 1:
            labels[:] = self.checked_labels(0, local)
            images[:] = self.views[0][local]
        else:
            for shard in np.unique(shards).tolist():
                chosen = shards == shard
                labels[chosen] = self.checked_labels(shard, local[chosen])
                images[chosen] = self.views[shard][local[chosen]]
        return images, labels

    def read_first(self, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``num_images`` images and labels, streamed shard after shard in file order."""
        images = np.empty((num_images, *self.shape), dtype=self.dtype)
        labels = np.empty(num_images, dtype=np.int64)
        for shard, view in enumerate(self.views):
            start = shard * self.layout.per_shard
            if start >= num_images:
                break
            stop = min(num_images, start + len(view))
            labels[start:stop] = self.checked_labels(shard, slice(0, stop - start))
            images[start:stop] = view[: stop - start]
        return images, labels

    def close(self) -> None:
        self.views, self.headers, self.label_texts = [], [], []
        for mapped in self.maps:
            try:
                mapped.close()
            except BufferError:  # an array handed out still points into it; the map goes with that array
                pass
        self.maps = []
        self.closed = True


def load_index(path: Path) -> np.ndarray:
    try:
        index = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CorruptStoreError(f"{path}: the offset index is missing from the store") from None
    except (OSError, ValueError, EOFError) as error:
        raise CorruptStoreError(f"{path}: not a readable offset index ({error})") from None
    if index.ndim != 2 or index.shape[1] != 3 or index.dtype != np.int64 or len(index) == 0:
        raise CorruptStoreError(f"{path}: not an offset index this library writes ({index.shape} {index.dtype})")
    return index


def read_first_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Image shape and dtype from the first sample's .npy member, read with tarfile and NumPy."""
    try:
        with tarfile.open(path, "r:") as archive:
            members = [archive.next(), archive.next()]
            if members[1] is None or not members[1].name.endswith(".npy"):
                raise CorruptStoreError(f"{path}: the first sample has no .npy member")
            handle = archive.extractfile(members[1])
            version = np.lib.format.read_magic(handle)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise CorruptStoreError(f"{path}: .npy format version {version} is not one NumPy writes")
            shape, fortran, dtype = read_header(handle)
    except FileNotFoundError:
        raise CorruptStoreError(f"{path}: shard file is missing from the store") from None
    except (tarfile.TarError, OSError, ValueError, EOFError, AttributeError) as error:
        raise CorruptStoreError(f"{path}: not a readable WebDataset shard ({error})") from None
    if fortran:
        raise CorruptStoreError(f"{path}: holds a Fortran-ordered image this library did not write")
    check_stored(shape, dtype, path)
    return tuple(shape), np.dtype(dtype).newbyteorder("=")


def parse_labels(texts: np.ndarray, file: Path) -> np.ndarray:
    """The labels of a shard from the first bytes of each .cls member's data (decimal text, NUL padded)."""
    try:
        return np.ascontiguousarray(texts).view(f"S{LABEL_TEXT}").reshape(-1).astype(np.int64)
    except (ValueError, OverflowError) as error:
        raise CorruptStoreError(f"{file}: a .cls member does not hold an integer label ({error})") from None
