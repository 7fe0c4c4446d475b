"""load_folder, load(path) on a folder, synthetic_scans and the report's folder options, on files made here."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from helpers import datasets
from helpers.datasets import folder, parallel_decode, scans
from helpers.report import pipeline as report
from helpers.core.errors import DatasetError
from helpers.datasets.pixels import SIGNED_SHIFT
from helpers.core import pool

from cifar_fixtures import write_python_batches  # noqa: E402 - the tests folder is on sys.path
from image_fixtures import gradient, write_dicom, write_mixed_folder


@pytest.fixture
def mixed(tmp_path):
    root = tmp_path / "mixed"
    return root, write_mixed_folder(root)


@pytest.fixture
def deep_folder(tmp_path):
    """16-bit greyscale in every container that holds it: TIFF, PNG, DICOM plain, RLE and JPEG 2000."""
    root = tmp_path / "scans"
    root.mkdir()
    pixels = gradient(40, 48, 1, dtype=np.uint16, seed=3) >> 4  # 12 bits used, as CT
    Image.fromarray(pixels).save(root / "a.tif")
    Image.fromarray(pixels).save(root / "b.png")
    write_dicom(root / "c.dcm", pixels)
    write_dicom(root / "d.dcm", pixels, compress="rle")
    write_dicom(root / "e.dcm", pixels, compress="jpeg2000")
    Image.frombytes("I;16B", (48, 40), pixels.astype(">u2").tobytes()).save(root / "f.tif")  # big-endian
    return root, pixels


def test_mixed_sizes_without_size_is_an_error_counting_them(mixed):
    root, _ = mixed
    with pytest.raises(DatasetError, match=r"7 different sizes.*pass size="):
        datasets.load_folder(root, progress=False)


def test_mixed_formats_are_resized_labelled_by_first_level_folder_in_a_stable_order(mixed):
    root, written = mixed
    data = datasets.load_folder(root, size=(24, 32), progress=False)
    assert data.images.shape == (7, 24, 32, 3) and data.images.dtype == np.uint8
    assert data.class_names == ["cats", "dogs"]
    assert data.labels.tolist() == [0, 0, 0, 0, 1, 1, 1]  # deep/d.webp belongs to cats
    # the order is the files' sorted order: the first image is a.png, resized and cropped like Pillow's fit
    expected = Image.open(written["cats"][0]).convert("RGB")
    from PIL import ImageOps

    fitted = np.asarray(ImageOps.fit(expected, (32, 24), method=Image.Resampling.BILINEAR))
    assert np.array_equal(data.images[0], fitted)
    assert "Folder" in data.source and "7 images" in data.source and "1 file(s) that are not images" in data.source
    again = datasets.load_folder(root, size=(24, 32), progress=False)
    assert np.array_equal(again.images, data.images)


def test_one_number_is_a_square_and_the_centre_is_kept(tmp_path):
    image = np.zeros((40, 80), dtype=np.uint8)
    image[:, 40:] = 255  # left half black, right half white
    Image.fromarray(image).save(tmp_path / "wide.png")
    data = datasets.load_folder(tmp_path, size=20, progress=False)
    assert data.images.shape == (1, 20, 20, 1)
    row = data.images[0, 10, :, 0]
    assert (row[:9] == 0).all() and (row[11:] == 255).all()  # the middle of the 40x20 resize, not one side


def test_16_bit_values_are_kept_exactly_in_every_container(deep_folder):
    root, pixels = deep_folder
    data = datasets.load_folder(root, progress=False)
    assert data.images.dtype == np.uint16 and data.images.shape == (6, 40, 48, 1)
    for index in range(6):
        assert np.array_equal(data.images[index, :, :, 0], pixels), index
    assert data.class_names == ["scans"] and "3 DICOM" in data.source


def test_signed_dicom_is_shifted_losslessly_and_the_shift_is_recorded(tmp_path):
    values = (gradient(32, 32, 1, dtype=np.uint16, seed=1) >> 4).astype(np.int16) - 1024
    write_dicom(tmp_path / "plain.dcm", values)
    write_dicom(tmp_path / "j2k.dcm", values, compress="jpeg2000")
    data = datasets.load_folder(tmp_path, progress=False)
    for index in range(2):
        assert np.array_equal(data.images[index, :, :, 0].astype(np.int32) - SIGNED_SHIFT, values)
    assert f"+{SIGNED_SHIFT}" in data.source


def test_a_corrupt_file_is_named(deep_folder):
    root, _ = deep_folder
    broken = root / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(DatasetError, match="broken.png"):
        datasets.load_folder(root, progress=False)


def test_limit_reads_only_the_first_images(deep_folder):
    root, pixels = deep_folder
    (root / "z.png").write_bytes(b"not a png at all")  # last in order: never opened with limit=2
    data = datasets.load_folder(root, limit=2, progress=False)
    assert len(data) == 2 and np.array_equal(data.images[1, :, :, 0], pixels)
    assert "first 2 of 7" in data.source


def test_an_empty_folder_and_a_missing_one_are_errors(tmp_path):
    (tmp_path / "empty" / "class").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images in"):
        datasets.load_folder(tmp_path / "empty", progress=False)
    with pytest.raises(DatasetError, match="no folder"):
        datasets.load_folder(tmp_path / "missing", progress=False)


def test_mixing_8_and_16_bit_is_refused(deep_folder):
    root, _ = deep_folder
    Image.fromarray(gradient(40, 48)).save(root / "colour.png")
    with pytest.raises(DatasetError, match="mixes 16-bit and 8-bit"):
        datasets.load_folder(root, progress=False)


def test_grey_in_a_colour_folder_is_repeated_over_three_channels(tmp_path):
    grey = gradient(16, 16, 1, seed=5)
    Image.fromarray(grey).save(tmp_path / "a.png")
    Image.fromarray(gradient(16, 16, 3)).save(tmp_path / "b.png")
    data = datasets.load_folder(tmp_path, progress=False)
    assert data.images.shape == (2, 16, 16, 3)
    assert all(np.array_equal(data.images[0, :, :, c], grey) for c in range(3))


def test_each_file_is_opened_once_when_the_first_sets_the_layout(tmp_path, monkeypatch):
    for index in range(5):
        Image.fromarray(gradient(20, 30 + 10 * index, 3, seed=index)).save(tmp_path / f"{index}.png")
    headers_read = []
    read_header = folder.read_header

    def counting_read_header(path):
        headers_read.append(path)
        return read_header(path)

    # both places that read headers in this process: the first file's, and every file's after a mismatch
    monkeypatch.setattr(folder, "read_header", counting_read_header)
    monkeypatch.setattr(parallel_decode, "read_header", counting_read_header)
    data = datasets.load_folder(tmp_path, size=(16, 16), progress=False)
    assert data.images.shape == (5, 16, 16, 3) and len(headers_read) == 1
    assert "resized from 5 original size(s) to 16x16" in data.source
    Image.fromarray(gradient(20, 30, 1)).save(tmp_path / "9-grey.png")  # greyscale after colour: repeated
    assert datasets.load_folder(tmp_path, size=(16, 16), progress=False).images.shape == (6, 16, 16, 3)
    assert len(headers_read) == 2


def test_mixing_signed_and_unsigned_dicom_is_refused(tmp_path):
    values = gradient(16, 16, 1, dtype=np.uint16, seed=2) >> 4
    write_dicom(tmp_path / "a.dcm", values)
    write_dicom(tmp_path / "b.dcm", values.astype(np.int16) - 100)
    with pytest.raises(DatasetError, match="mixes signed and unsigned"):
        datasets.load_folder(tmp_path, progress=False)


@pytest.mark.parametrize("memory_file_system", [True, False], ids=["slots", "chunks-sent-back"])
def test_the_process_pool_gives_what_one_process_gives(tmp_path, monkeypatch, memory_file_system):
    monkeypatch.setattr(pool, "PARALLEL_THRESHOLD", 8)
    shm = tmp_path / "shm"
    if memory_file_system:
        shm.mkdir()
    monkeypatch.setattr(parallel_decode, "SHARED_MEMORY_DIR", str(shm))
    sent = []
    send = parallel_decode.ParallelDecode._send

    def counting_send(self, pool):
        send(self, pool)
        sent.extend(first for _, first, _, _ in self.running if first not in sent)

    monkeypatch.setattr(parallel_decode.ParallelDecode, "_send", counting_send)
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(40):
        Image.fromarray(gradient(12, 10, 3, seed=index)).save(folder / f"{index:02d}.png")
    serial = datasets.load_folder(folder, workers=1, progress=False)
    parallel = datasets.load_folder(folder, workers=2, progress=False)
    assert sent, "no chunk went to a worker process"
    assert np.array_equal(serial.images, parallel.images)
    assert np.array_equal(serial.images[5], gradient(12, 10, 3, seed=5))
    assert not memory_file_system or not any(shm.iterdir())  # the slots' file is gone
    # a file that does not fit the first one's layout, found by whichever process decodes it: all the
    # headers are read and the pixels decoded again, as one process does
    Image.fromarray(gradient(12, 10, 1, seed=99)).save(folder / "00.png")
    Image.fromarray(gradient(10, 12, 3, seed=98)).save(folder / "39.png")
    for workers in (1, 2):
        with pytest.raises(DatasetError, match="2 different sizes"):
            datasets.load_folder(folder, workers=workers, progress=False)
    serial = datasets.load_folder(folder, workers=1, size=(12, 10), progress=False)
    parallel = datasets.load_folder(folder, workers=2, size=(12, 10), progress=False)
    assert serial.images.shape == (40, 12, 10, 3) and np.array_equal(serial.images, parallel.images)
    grey = gradient(12, 10, 1, seed=99)
    assert all(np.array_equal(serial.images[0, :, :, c], grey) for c in range(3))
    assert not memory_file_system or not any(shm.iterdir())


def test_a_file_that_fails_half_way_through_decoding_is_named_with_the_pool(tmp_path, monkeypatch):
    monkeypatch.setattr(pool, "PARALLEL_THRESHOLD", 8)
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(parallel_decode, "SHARED_MEMORY_DIR", str(shm))
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(40):
        path = folder / f"{index:02d}.png"
        Image.fromarray(gradient(32, 32, 3, seed=index)).save(path)
        if index >= 20:  # a valid header, pixels cut short: only decoding finds it
            path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"images/\d\d\.png: cannot decode it"):
        datasets.load_folder(folder, workers=2, progress=False)
    assert not any(shm.iterdir())


def test_load_reads_a_folder_of_images_and_a_cifar_folder_stays_cifar(mixed, tmp_path):
    root, _ = mixed
    data = datasets.load(str(root), n=3, size=16)
    assert len(data) == 3 and data.images.shape[1:] == (16, 16, 3)  # n reads at most n, never repeats
    assert len(datasets.load(str(root), n=100, size=16)) == 7
    cifar = tmp_path / "cifar"
    write_python_batches(cifar)
    assert "CIFAR-10" in datasets.load(str(cifar)).source


def test_synthetic_scans_are_deterministic_12_bit_ct_like_slices():
    first = datasets.synthetic_scans(10, size=128)
    assert first.images.shape == (10, 128, 128, 1) and first.images.dtype == np.uint16
    assert first.images.max() <= 4095 and first.images.max() > 2047  # 12 bits, all of them used (bone)
    assert (first.images[:, 0, 0] == 0).all()  # outside the field of view: the scanner's constant
    assert first.class_names == scans.SCAN_CLASS_NAMES and first.labels.tolist()[:4] == [0, 1, 2, 0]
    again = datasets.synthetic_scans(10, size=128)
    prefix = datasets.synthetic_scans(3, size=128)
    other = datasets.synthetic_scans(10, size=128, seed=1)
    assert np.array_equal(first.images, again.images) and np.array_equal(prefix.images, first.images[:3])
    assert not np.array_equal(first.images, other.images)
    assert not np.array_equal(first.images[0], first.images[3])  # same region, different patient


def test_the_real_ct_slice_comes_from_the_installed_package_without_download():
    path = scans.real_slice_path()
    assert path.is_file() and path.name == "693_UNCR.dcm"
    slices = scans.real_slices(("693_UNCR.dcm",))
    assert slices["693_UNCR.dcm"].shape == (512, 512) and slices["693_UNCR.dcm"].dtype == np.uint16
    with pytest.raises(DatasetError, match="pydicom-data"):
        scans.real_slice_path("no-such-slice.dcm")


def test_report_drops_cutoffs_above_a_folders_image_count_and_says_so(mixed):
    root, _ = mixed
    notes: list[str] = []
    assert report.cutoffs_within(str(root), [2, 5, 100], "--cutoffs", notes) == [2, 5, 7]
    assert notes and "100 dropped" in notes[0] and "7 images" in notes[0]
    assert report.cutoffs_within("scans", [10, 1000], "--large-cutoffs", notes) == [10, 1000]
    args = report.build_parser().parse_args(["--dataset", str(root), "--image-size", "64x48", "--quick"])
    parameters = report.notebook_parameters(args, [])
    assert parameters["image_size"] == [64, 48] and parameters["cutoffs"] == [7]
    assert parameters["large_dataset"] == "scans" and parameters["large_cutoffs"] == report.QUICK_LARGE_CUTOFFS
    with pytest.raises(argparse.ArgumentTypeError):
        report.parse_image_size("big")


def test_real_slices_are_read_with_the_network_cut_off(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("the real CT slices must come from the installed package, never the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert scans.real_slices()["693_UNCR.dcm"].shape == (512, 512)
