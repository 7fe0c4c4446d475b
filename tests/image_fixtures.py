"""Folders of image files for the load_folder tests, written here (PNG, JPEG, TIFF, BMP, WebP, DICOM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def gradient(height: int, width: int, channels: int = 3, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """A smooth image with some noise: compresses like a photo, differs from image to image."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    y, x = np.mgrid[0:height, 0:width]
    base = (x / max(width - 1, 1) * 0.6 + y / max(height - 1, 1) * 0.3) * top
    planes = [base * (0.5 + 0.5 * c / max(channels, 1)) for c in range(channels)]
    image = np.stack(planes, axis=-1) + rng.normal(0, top * 0.02, (height, width, channels))
    image = np.clip(image, 0, top).astype(dtype)
    return image[:, :, 0] if channels == 1 else image


def write_dicom(path: Path, pixels: np.ndarray, *, compress: str | None = None) -> Path:
    """A minimal CT-like DICOM file of ``pixels`` (uint16, int16 or uint8; greyscale); ``compress``:
    None (explicit VR little endian), "rle" or "jpeg2000" (lossless)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        CTImageStorage,
        ExplicitVRLittleEndian,
        JPEG2000Lossless,
        RLELossless,
        generate_uid,
    )

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.set_pixel_data(pixels, "MONOCHROME2", 8 * pixels.dtype.itemsize)
    if compress == "rle":
        ds.compress(RLELossless)
    elif compress == "jpeg2000":
        ds.compress(JPEG2000Lossless)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_mixed_folder(root: Path, *, seed: int = 0) -> dict[str, list[Path]]:
    """Two classes of 8-bit images in every Pillow format, mixed sizes and modes, one nested subfolder,
    a text file and a hidden folder to be ignored. Returns the files per class, in load order."""
    written: dict[str, list[Path]] = {"cats": [], "dogs": []}
    specs = [
        ("cats", "a.png", (40, 60), "RGB"), ("cats", "b.jpg", (64, 48), "RGB"), ("cats", "c.bmp", (32, 32), "L"),
        ("cats", "deep/d.webp", (50, 50), "RGB"), ("dogs", "e.tif", (48, 64), "RGB"),
        ("dogs", "f.png", (30, 40), "RGBA"), ("dogs", "g.png", (36, 36), "P"),
    ]
    for index, (label, name, (height, width), mode) in enumerate(specs):
        path = root / label / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(gradient(height, width, 3, seed=seed + index))
        if mode == "L":
            image = image.convert("L")
        elif mode == "RGBA":
            image = image.convert("RGBA")
        elif mode == "P":
            image = image.convert("P")
        image.save(path, **({"lossless": True} if name.endswith(".webp") else {}))
    for label, names in (("cats", ["a.png", "b.jpg", "c.bmp", "deep/d.webp"]), ("dogs", ["e.tif", "f.png", "g.png"])):
        written[label] = [root / label / name for name in names]
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / "dogs" / ".hidden").mkdir()
    Image.fromarray(gradient(8, 8)).save(root / "dogs" / ".hidden" / "skip.png")
    return written
