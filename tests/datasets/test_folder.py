"""``load_folder`` (``helpers.datasets.folder``, with ``image_files`` and ``pixels`` below it) on folders
of every format written here."""

from __future__ import annotations

import numpy as np
import pytest
from image_fixtures import gradient, write_dicom
from PIL import Image

from helpers import datasets
from helpers.core.errors import DatasetError
from helpers.datasets import folder, parallel_decode
from helpers.datasets.pixels import SIGNED_SHIFT


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
