"""Chapter 06's experiment and the numbers it shows, on tiny data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from helpers import stores
from helpers.core.errors import UnknownCodecError
from helpers.report import results as results_tables
from helpers.report.chapters import compression
from helpers.report.results import COLUMNS


def test_variants_pair_each_method_with_the_codecs_it_takes_and_skip_its_own_default():
    pairs = compression.variants(["disk", "lmdb", "hdf5"], ["png", "zstd", "gzip", "jpeg:90"])
    assert pairs == [
        ("disk", None), ("disk", "jpeg:90"),  # png is the disk store's own default: its baseline
        ("lmdb", None), ("lmdb", "png"), ("lmdb", "zstd"), ("lmdb", "jpeg:90"),
        ("hdf5", None), ("hdf5", "zstd"), ("hdf5", "gzip"),
        ("npy", None),
    ]
    with pytest.raises(UnknownCodecError, match="no method takes compression 'brotli'"):
        compression.variants(["lmdb"], ["brotli"])
    with pytest.raises(UnknownCodecError, match="from 0 to 9"):
        compression.variants(["hdf5"], ["gzip:12"])


def test_a_codec_is_one_variant_however_it_is_named():
    # "png", "png:6" and "PNG:6" are one codec: the disk store's own default (its baseline), and one variant
    # of LMDB under the first name given; names are kept as the stores record them
    assert compression.variants(["disk", "lmdb"], ["png", "png:6", "PNG:6", "ZSTD", "png:9", "Jpeg:90"],
                                floor=False) == [
        ("disk", None), ("disk", "png:9"), ("disk", "jpeg:90"),
        ("lmdb", None), ("lmdb", "png"), ("lmdb", "zstd"), ("lmdb", "png:9"), ("lmdb", "jpeg:90"),
    ]


def test_a_store_filter_at_its_default_level_is_the_baseline_of_a_method_that_writes_it(monkeypatch):
    # "gzip" means gzip at level 4, so it would measure the baseline again
    monkeypatch.setattr(stores.store_class("hdf5"), "native_compression", "gzip:4")
    assert compression.variants(["hdf5"], ["gzip", "gzip:9", "lzf"], floor=False) == [
        ("hdf5", None), ("hdf5", "gzip:9"), ("hdf5", "lzf")]


def test_pareto_front_keeps_what_nothing_beats_on_both_counts():
    sizes = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    seconds = np.array([5.0, 2.0, 1.0, 3.0, 6.0])
    assert compression.pareto_front(sizes, seconds).tolist() == [True, True, True, False, False]


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """The chapter on 40 tiny CIFAR-like images and 8 tiny 16-bit images, written like the notebook does."""
    root = tmp_path_factory.mktemp("compression")
    rng = np.random.default_rng(0)
    ramp = np.add.outer(np.arange(16), np.arange(16)).astype(np.uint8) * 4
    colour = np.repeat(ramp[None, :, :, None], 40, axis=0).repeat(3, axis=3) + rng.integers(0, 4, (40, 16, 16, 3),
                                                                                            dtype=np.uint8)
    grey = (np.add.outer(np.arange(16), np.arange(16)) * 100 + rng.integers(0, 8, (8, 16, 16))).astype(np.uint16)
    results = root / "results"
    compression.start(results)
    for images, name in ((colour, compression.CIFAR), (grey, compression.SCANS)):
        rows, quality = compression.run_compression(
            images, np.arange(len(images)), ["lmdb", "hdf5"], ["zstd", "blosc", "gzip", "jpeg:90"], repeats=1,
            batch_size=16, work_dir=root / "work", dataset=name, progress=False)
        assert list(rows.columns) == COLUMNS
        compression.save_measurements(results, rows, quality)
    return results


def test_every_variant_is_timed_stored_and_read_shuffled_and_lossy_ones_get_a_psnr(measured):
    chapter, quality = compression.read(measured)
    table = compression.trade_off_table(chapter, quality, compression.CIFAR)
    assert set(zip(table["method"], table["codec"])) == {
        ("lmdb", "none"), ("lmdb", "zstd"), ("lmdb", "blosc"), ("lmdb", "jpeg:90"),
        ("hdf5", "none"), ("hdf5", "zstd"), ("hdf5", "blosc"), ("hdf5", "gzip"), ("npy", "none")}
    assert (table["bytes_per_image"] > 0).all() and (table["shuffled_per_image"] > 0).all()
    jpeg = table[table["codec"] == "jpeg:90"].iloc[0]
    assert jpeg["lossy"] and 25 < jpeg["psnr"] < math.inf
    assert (table.loc[~table["lossy"], "psnr"] == math.inf).all()
    hdf5 = table[table["method"] == "hdf5"].set_index("codec")["ratio"]
    assert hdf5["gzip"] > hdf5["none"]  # gradients compress, even with the index of one chunk per image
    shown = compression.display_table(table)
    assert list(shown["PSNR"]).count("lossless") == len(table) - 1 and shown["Pareto"].eq("yes").any()


def test_codecs_that_cannot_hold_16_bits_are_skipped_and_named(measured):
    chapter, quality = compression.read(measured)
    scans = compression.trade_off_table(chapter, quality, compression.SCANS)
    assert "jpeg:90" not in set(scans["codec"])
    text = compression.findings(scans, compression.SCANS, quality)
    assert "Not measured: jpeg:90 cannot hold uint16 images" in text


def test_findings_are_computed_from_the_table(measured):
    chapter, quality = compression.read(measured)
    table = compression.trade_off_table(chapter, quality, compression.CIFAR)
    text = compression.findings(table, compression.CIFAR, quality)
    smallest = table[~table["lossy"]].sort_values("bytes_per_image").iloc[0]
    assert f"a ratio of {smallest['ratio']:.2f}x" in text
    assert "pages of 4 KiB per image" in text and "Pareto front" in text
    assert compression.findings(pd.DataFrame()) == "No compression was measured on CIFAR."


def trade_off_row(method: str, codec: str, allocated: float, ratio: float, lossy: bool = False) -> dict:
    return {"method": method, "codec": codec, "lossy": lossy, "image_bytes": 3072, "bytes_per_image": allocated,
            "ratio": ratio, "store_per_image": 1e-5, "read_per_image": 1e-6, "shuffled_per_image": 1e-6,
            "psnr": 35.0 if lossy else math.inf, "pareto": False}


def test_a_method_says_why_its_smallest_lossless_codec_took_its_space(monkeypatch):
    table = pd.DataFrame([trade_off_row("lmdb", "none", 8192, 0.98), trade_off_row("lmdb", "zstd", 4915, 1.3),
                          trade_off_row("lmdb", "png", 7900, 1.2), trade_off_row("lmdb", "jpeg:90", 2000, 4.0, True),
                          trade_off_row("hdf5", "none", 3100, 0.99), trade_off_row("hdf5", "gzip", 2500, 1.2)])
    assert compression.compressed_space_notes(table) == [
        "The smallest lossless LMDB value (zstd, about 2.3 KiB of file per image) saves LMDB space: 1.20 pages of "
        "4 KiB per image against 2.00 raw: LMDB gives a value over about half a page whole overflow pages of its own."]
    monkeypatch.setattr(stores.store_class("hdf5"), "compressed_space_note",
                        classmethod(lambda cls, codec, value, allocated, raw: f"HDF5 with {codec}: {allocated:.0f}."))
    notes = compression.compressed_space_notes(table)
    assert notes[1] == "HDF5 with gzip: 2500." and f"- {notes[1]}" in compression.findings(table)


def test_the_trade_off_of_every_dataset_is_left_in_the_results(measured):
    chapter, quality = compression.read(measured)
    saved = results_tables.read_table(measured, compression.TRADE_OFF_TABLE, text=("method", "codec", "dataset"))
    assert list(saved["dataset"].unique()) == [compression.SCANS, compression.CIFAR]  # as the summary orders them
    for dataset in (compression.CIFAR, compression.SCANS):
        computed = compression.trade_off_table(chapter, quality, dataset)
        rows = saved[saved["dataset"] == dataset].drop(columns="dataset").reset_index(drop=True)
        pd.testing.assert_frame_equal(rows, computed[compression.TRADE_OFF_COLUMNS], check_dtype=False)


def test_the_trade_off_figure_is_saved(measured, tmp_path):
    chapter, quality = compression.read(measured)
    compression.compression_trade_off_plot(compression.trade_off_table(chapter, quality), tmp_path)
    assert (tmp_path / "compression_trade_off.png").exists() and (tmp_path / "compression_trade_off.svg").exists()
