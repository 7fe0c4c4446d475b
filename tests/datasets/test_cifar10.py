"""CIFAR-10 from both official layouts, the safe unpickler and the download (``helpers.datasets.cifar10``).
Nothing here touches the network: the files are written by ``cifar_fixtures`` and served from file:// URLs."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import pickletools
import tarfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from cifar_fixtures import (
    BLUE,
    CLASS_NAMES,
    GREEN,
    KNOWN_PIXELS,
    RED,
    TEST_BATCH,
    TRAIN_BATCHES,
    fixture_arrays,
    image_rows,
    write_binary_batches,
    write_python_archive,
    write_python_batches,
)

from helpers.core.errors import DatasetError
from helpers.datasets.cifar10 import CIFAR10_URL, download_cifar10, load_cifar10

WRITERS = {"python": write_python_batches, "binary": write_binary_batches}


def batch_file(folder: Path, layout: str, name: str) -> Path:
    return folder / (name if layout == "python" else f"{name}.bin")


def python_batch(images: np.ndarray, labels: list[int]) -> dict:
    return {b"batch_label": b"crafted", b"labels": labels, b"data": image_rows(images), b"filenames": []}


# --- reading both layouts -----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", WRITERS)
def test_training_set_reads_back_exactly_in_file_order(tmp_path, layout):
    folder, images, labels = WRITERS[layout](tmp_path, images_per_batch=4)
    dataset = load_cifar10(folder)
    assert dataset.images.dtype == np.uint8 and dataset.images.shape == (20, 32, 32, 3)
    assert dataset.labels.dtype == np.int64
    np.testing.assert_array_equal(dataset.images, images)
    np.testing.assert_array_equal(dataset.labels, labels)
    assert dataset.class_names == CLASS_NAMES
    assert len(dataset) == 20 and not dataset.is_synthetic
    assert "training" in dataset.source and str(folder) in dataset.source and "20 images" in dataset.source


@pytest.mark.parametrize("layout", WRITERS)
def test_channels_come_back_in_rgb_order_and_the_right_place(tmp_path, layout):
    dataset = load_cifar10(WRITERS[layout](tmp_path).folder)
    first = dataset.images[0]
    assert first[0, 0].tolist() == list(RED)
    assert first[0, 1].tolist() == list(GREEN)  # row 0, column 1
    assert first[1, 0].tolist() == list(BLUE)  # row 1, column 0
    for (row, column), colour in KNOWN_PIXELS.items():
        assert first[row, column].tolist() == list(colour)


def test_fixture_files_follow_the_official_byte_layout(tmp_path):
    """Known answers from the format description, so that writer and reader cannot share a mistake."""
    folder = write_binary_batches(tmp_path).folder
    row = (folder / "data_batch_1.bin").read_bytes()[:3073]
    first_label = fixture_arrays().batches[0][1][0]
    assert row[0] == first_label
    assert (row[1], row[1 + 1024], row[1 + 2048]) == RED  # pixel (0, 0): red plane, green, blue
    assert (row[1 + 1], row[1 + 1024 + 1], row[1 + 2048 + 1]) == GREEN  # pixel (0, 1)
    assert (row[1 + 32], row[1 + 1024 + 32], row[1 + 2048 + 32]) == BLUE  # pixel (1, 0)

    python_folder = write_python_batches(tmp_path).folder
    raw = (python_folder / "data_batch_1").read_bytes()
    assert raw[:2] == b"\x80\x02"  # protocol 2, as cPickle wrote them
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw  # the array as Python 2 numpy pickled it
    opcodes = {opcode.name for opcode, _, _ in pickletools.genops(raw)}
    assert "SHORT_BINSTRING" in opcodes and "BINUNICODE" not in opcodes  # Python 2 str, not unicode


@pytest.mark.parametrize("layout", WRITERS)
def test_a_parent_folder_finds_the_batches_folder(tmp_path, layout):
    _, images, labels = WRITERS[layout](tmp_path)
    dataset = load_cifar10(tmp_path)
    np.testing.assert_array_equal(dataset.images, images)
    np.testing.assert_array_equal(dataset.labels, labels)


def test_python_batches_are_preferred_when_both_layouts_are_present(tmp_path):
    write_binary_batches(tmp_path, seed=1)
    _, images, _ = write_python_batches(tmp_path, seed=2)
    np.testing.assert_array_equal(load_cifar10(tmp_path).images, images)


@pytest.mark.parametrize("layout", WRITERS)
def test_test_split_is_the_test_batch(tmp_path, layout):
    folder = WRITERS[layout](tmp_path, images_per_batch=3).folder
    dataset = load_cifar10(folder, split="test")
    test_images, test_labels = fixture_arrays(images_per_batch=3).test
    np.testing.assert_array_equal(dataset.images, test_images)
    np.testing.assert_array_equal(dataset.labels, test_labels)
    assert "test set" in dataset.source


def test_unknown_split_is_refused(tmp_path):
    folder = write_python_batches(tmp_path).folder
    with pytest.raises(DatasetError, match="split"):
        load_cifar10(folder, split="validation")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batches_re_saved_by_python3_pickle_still_load(tmp_path, protocol):
    folder = write_python_batches(tmp_path).folder
    images, labels = fixture_arrays().batches[2]
    batch = python_batch(images, [int(label) for label in labels])
    (folder / "data_batch_3").write_bytes(pickle.dumps(batch, protocol=protocol))
    dataset = load_cifar10(folder)
    np.testing.assert_array_equal(dataset.images[8:12], images)
    np.testing.assert_array_equal(dataset.labels[8:12], labels)


# --- what is wrong, said clearly ----------------------------------------------------------------------


def test_missing_folder_says_how_to_get_the_data(tmp_path):
    with pytest.raises(DatasetError, match="make data") as raised:
        load_cifar10(tmp_path / "nowhere")
    assert "cifar-10-batches-py" in str(raised.value)


def test_folder_without_cifar10_is_named(tmp_path):
    (tmp_path / "holiday.jpg").write_bytes(b"not cifar")
    with pytest.raises(DatasetError, match="holds no CIFAR-10 batches"):
        load_cifar10(tmp_path)


@pytest.mark.parametrize("layout", WRITERS)
@pytest.mark.parametrize("name", [TRAIN_BATCHES[2], TEST_BATCH])
def test_missing_batch_file_is_named(tmp_path, layout, name):
    folder = WRITERS[layout](tmp_path).folder
    missing = batch_file(folder, layout, name)
    missing.unlink()
    split = "test" if name == TEST_BATCH else "train"
    with pytest.raises(DatasetError, match="is missing") as raised:
        load_cifar10(folder, split=split)
    assert missing.name in str(raised.value)


@pytest.mark.parametrize("layout, meta", [("python", "batches.meta"), ("binary", "batches.meta.txt")])
def test_missing_meta_file_is_named(tmp_path, layout, meta):
    folder = WRITERS[layout](tmp_path).folder
    (folder / meta).unlink()
    with pytest.raises(DatasetError, match=meta.replace(".", r"\.")):
        load_cifar10(folder)


def test_python_rows_that_are_not_3072_bytes_are_refused(tmp_path):
    folder = write_python_batches(tmp_path).folder
    batch = {b"labels": [0, 1], b"data": np.zeros((2, 3000), dtype=np.uint8)}
    (folder / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DatasetError, match="rows are 3000 bytes") as raised:
        load_cifar10(folder)
    assert "data_batch_2" in str(raised.value)


def test_python_data_that_is_not_uint8_rows_is_refused(tmp_path):
    folder = write_python_batches(tmp_path).folder
    batch = {b"labels": [0, 1], b"data": np.zeros((2, 3072), dtype=np.int64)}
    (folder / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DatasetError, match="int64"):
        load_cifar10(folder)


def test_binary_file_that_is_not_whole_rows_of_3073_bytes_is_refused(tmp_path):
    folder = write_binary_batches(tmp_path).folder
    truncated = folder / "data_batch_4.bin"
    truncated.write_bytes(truncated.read_bytes()[:-1])
    with pytest.raises(DatasetError, match="3073") as raised:
        load_cifar10(folder)
    assert "data_batch_4.bin" in str(raised.value)


@pytest.mark.parametrize(("labels", "message"), [
    ([0, 1, 10, 2], "row 2 has label 10, outside 0..9"),
    ([0, 1.5, 2, 3], "labels are not a list of integers"),
])
def test_python_labels_out_of_range_or_not_integers_are_refused(tmp_path, labels, message):
    folder = write_python_batches(tmp_path).folder
    images, _ = fixture_arrays().batches[0]
    (folder / "data_batch_1").write_bytes(pickle.dumps(python_batch(images, labels), protocol=2))
    with pytest.raises(DatasetError, match=message):
        load_cifar10(folder)


def test_binary_label_out_of_range_is_refused(tmp_path):
    folder = write_binary_batches(tmp_path).folder
    damaged = folder / "test_batch.bin"
    content = bytearray(damaged.read_bytes())
    content[3073] = 200  # the second row's label byte
    damaged.write_bytes(bytes(content))
    with pytest.raises(DatasetError, match="row 1 has label 200"):
        load_cifar10(folder, split="test")


def test_file_that_is_not_a_pickle_is_refused(tmp_path):
    folder = write_python_batches(tmp_path).folder
    (folder / "data_batch_5").write_bytes(b"\x89PNG\r\n\x1a\n not a pickle at all")
    with pytest.raises(DatasetError, match="data_batch_5 is not a CIFAR-10 python batch"):
        load_cifar10(folder)


class _RunsShell:
    """Pickles as a call to os.system: what a booby-trapped batch would contain."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Evaluates:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (eval, (self.code,))


@pytest.mark.parametrize("where", ["data", "labels", "whole file"])
def test_crafted_pickle_is_refused_without_running_anything(tmp_path, where):
    folder = write_python_batches(tmp_path / "cifar").folder
    marker = tmp_path / "pwned"
    exploit = _RunsShell(f"touch {marker}")
    images, labels = fixture_arrays().batches[0]
    batch = python_batch(images, [int(label) for label in labels])
    if where == "whole file":
        payload = exploit
    else:
        batch[where.encode()] = exploit
        payload = batch
    (folder / "data_batch_1").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DatasetError, match="system") as raised:
        load_cifar10(folder)
    assert "never does" in str(raised.value)
    assert not marker.exists()


def test_crafted_meta_file_is_refused_without_running_anything(tmp_path):
    folder = write_python_batches(tmp_path / "cifar").folder
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w')"
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": _Evaluates(code)}, protocol=4))
    with pytest.raises(DatasetError, match="eval"):
        load_cifar10(folder)
    assert not marker.exists()


def test_object_arrays_are_refused(tmp_path):
    """numpy object arrays unpickle their items through pickle; only plain integer arrays are allowed."""
    folder = write_python_batches(tmp_path).folder
    batch = {b"labels": [0], b"data": np.array([[1] * 3072], dtype=object)}
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DatasetError, match="dtype"):
        load_cifar10(folder)


# --- download -----------------------------------------------------------------------------------------


@pytest.fixture
def archive(tmp_path):
    """A small cifar-10-python.tar.gz served from a file:// URL: (url, md5, expected training images)."""
    path, md5 = write_python_archive(tmp_path / "server" / "cifar-10-python.tar.gz", images_per_batch=2)
    return path.as_uri(), md5, fixture_arrays(images_per_batch=2).train


def test_download_verifies_and_extracts_into_place(tmp_path, archive):
    url, md5, (images, labels) = archive
    dest = tmp_path / "raw"
    folder = download_cifar10(dest, url=url, md5=md5, progress=False)
    assert folder == dest / "cifar-10-batches-py"
    assert sorted(path.name for path in dest.iterdir()) == ["cifar-10-batches-py"]  # no leftovers
    dataset = load_cifar10(dest)
    np.testing.assert_array_equal(dataset.images, images)
    np.testing.assert_array_equal(dataset.labels, labels)


def test_download_returns_at_once_when_the_batches_are_there(tmp_path, no_network, monkeypatch):
    monkeypatch.setenv("IMAGE_REPORT_OFFLINE", "1")
    folder = write_python_batches(tmp_path).folder
    assert download_cifar10(tmp_path, url="https://example.invalid/none.tar.gz") == folder


def test_download_refuses_a_damaged_archive_and_leaves_nothing(tmp_path, archive):
    url, _, _ = archive
    dest = tmp_path / "raw"
    with pytest.raises(DatasetError, match="md5") as raised:
        download_cifar10(dest, url=url, md5="0" * 32, progress=False)
    assert "by hand" in str(raised.value)
    assert list(dest.iterdir()) == []


def test_download_of_a_missing_file_says_how_to_place_the_data(tmp_path):
    dest = tmp_path / "raw"
    with pytest.raises(DatasetError, match="could not download") as raised:
        download_cifar10(dest, url=(tmp_path / "absent.tar.gz").as_uri(), progress=False)
    message = str(raised.value)
    assert "by hand" in message and "make data" in message and str(dest) in message
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize(
    "failure", [urllib.error.URLError("[Errno 101] Network is unreachable"), TimeoutError("timed out")]
)
def test_download_offline_fails_with_instructions(tmp_path, monkeypatch, failure):
    def unreachable(url, timeout=None):
        assert timeout is not None and timeout <= 10  # a dead network must not hang the report
        raise failure

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    dest = tmp_path / "raw"
    with pytest.raises(DatasetError, match="could not download CIFAR-10") as raised:
        download_cifar10(dest, progress=False)
    assert CIFAR10_URL in str(raised.value) and "by hand" in str(raised.value)
    assert list(dest.iterdir()) == []


def test_download_gives_up_on_a_connection_that_never_answers(tmp_path, monkeypatch):
    release = threading.Event()

    def hangs(url, timeout=None):  # as a name lookup can, whatever the socket timeout
        release.wait(30)
        raise urllib.error.URLError("released")

    monkeypatch.setattr(urllib.request, "urlopen", hangs)
    try:
        with pytest.raises(DatasetError, match="no answer within 0.2 seconds"):
            download_cifar10(tmp_path / "raw", timeout=0.2, progress=False)
    finally:
        release.set()


def test_offline_switch_stops_the_download_before_the_network(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("IMAGE_REPORT_OFFLINE", "1")
    with pytest.raises(DatasetError, match="IMAGE_REPORT_OFFLINE") as raised:
        download_cifar10(tmp_path / "raw")
    assert "by hand" in str(raised.value)


def test_offline_switch_set_to_zero_allows_the_download(tmp_path, monkeypatch, archive):
    monkeypatch.setenv("IMAGE_REPORT_OFFLINE", "0")
    url, md5, _ = archive
    assert download_cifar10(tmp_path / "raw", url=url, md5=md5, progress=False).is_dir()


def _tarball(path: Path, members: dict[str, bytes], symlink: tuple[str, str] | None = None) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        if symlink:
            info = tarfile.TarInfo(symlink[0])
            info.type, info.linkname = tarfile.SYMTYPE, symlink[1]
            tar.addfile(info)
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("member", ["../escaped", "{absolute}", "cifar-10-batches-py/../../escaped"])
def test_archive_members_outside_the_folder_are_refused(tmp_path, member):
    member = member.format(absolute=tmp_path / "absolute-escape")
    source = tmp_path / "evil.tar.gz"
    md5 = _tarball(source, {member: b"gotcha"})
    dest = tmp_path / "deep" / "raw"
    with pytest.raises(DatasetError, match="refusing archive member"):
        download_cifar10(dest, url=source.as_uri(), md5=md5, progress=False)
    assert not (tmp_path / "deep" / "escaped").exists() and not (tmp_path / "escaped").exists()
    assert not (tmp_path / "absolute-escape").exists()
    assert list(dest.iterdir()) == []


def test_archive_links_are_refused(tmp_path):
    source = tmp_path / "links.tar.gz"
    md5 = _tarball(source, {}, symlink=("cifar-10-batches-py", "/etc"))
    with pytest.raises(DatasetError, match="not a plain file"):
        download_cifar10(tmp_path / "raw", url=source.as_uri(), md5=md5, progress=False)


def test_archive_without_the_batches_is_refused(tmp_path):
    source = tmp_path / "other.tar.gz"
    md5 = _tarball(source, {"something-else/readme.txt": b"hello"})
    dest = tmp_path / "raw"
    with pytest.raises(DatasetError, match="lacks cifar-10-batches-py"):
        download_cifar10(dest, url=source.as_uri(), md5=md5, progress=False)
    assert list(dest.iterdir()) == []


def test_incomplete_existing_folder_is_reported_not_overwritten(tmp_path, no_network):
    folder = write_python_batches(tmp_path).folder
    (folder / "data_batch_5").unlink()
    with pytest.raises(DatasetError, match="incomplete.*data_batch_5"):
        download_cifar10(tmp_path)
    assert (folder / "data_batch_1").exists()


def test_download_shows_progress(tmp_path, archive, capsys):
    url, md5, _ = archive
    download_cifar10(tmp_path / "raw", url=url, md5=md5)
    assert "CIFAR-10" in capsys.readouterr().err
