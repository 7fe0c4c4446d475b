"""Chapter 09: every conclusion is computed from the results tables of the earlier chapters."""

from __future__ import annotations

import numpy as np
import pandas as pd
from report_fixtures import summary_of

from helpers.report import results
from helpers.report.chapters import conclusions as chapter


def test_recommendations_follow_the_measurements():
    lmdb_wins = chapter.recommendations(summary_of({"disk": 1e-3, "lmdb": 1e-5, "hdf5": 4e-5, "npy": 5e-6}))
    assert "Reading 1,000 images (warm cache): **LMDB** is best" in lmdb_wins
    assert "HDF5 40.00 ms (4.0x)" in lmdb_wins
    assert "this run favours LMDB" in lmdb_wins
    hdf5_wins = chapter.recommendations(summary_of({"disk": 1e-3, "lmdb": 3e-5, "hdf5": 1e-5, "npy": 5e-6}))
    assert "this run favours HDF5" in hdf5_wins and "(3.0x slower to read)" in hdf5_wins


def test_the_conclusions_say_when_to_choose_each_measured_format():
    text = chapter.recommendations(summary_of({"disk": 1e-3, "lmdb": 2e-5, "hdf5": 1e-5, "arrow": 8e-6,
                                               "sqlite": 3e-5, "npy": 5e-6}))
    assert "this run favours Arrow IPC" in text and "then HDF5" in text
    assert "SQLite when images are added" in text and "Parquet when" not in text  # only the methods measured


def test_article_comparison_uses_the_largest_common_cutoff_and_says_so():
    small = summary_of({"disk": 1e-3, "lmdb": 2e-5, "hdf5": 1e-5, "npy": 5e-6})
    table = chapter.article_comparison(small)
    assert list(table.columns) == ["article (100,000 images)", "this run (1,000 images)"]
    assert table.loc["Read time (warm): LMDB / HDF5"].tolist() == ["2.6x", "2.0x"]
    assert "largest cutoff is 1,000 images" in chapter.comparison_note(small)
    full = summary_of({"disk": 1e-3, "lmdb": 5e-5, "hdf5": 1e-5, "npy": 5e-6}, n_values=(10, 100_000))
    assert chapter.article_comparison(full).loc["Read time (warm): LMDB / HDF5"].tolist() == ["2.6x", "5.0x"]
    assert "same number of images" in chapter.comparison_note(full)


def test_the_article_values_are_quoted_in_one_constant():
    assert chapter.ARTICLE_RESULTS["n_images"] == 100_000
    assert chapter.ARTICLE_RESULTS["read_seconds"] == {"disk": 62.5, "lmdb": 3.46, "hdf5": 1.31}
    assert chapter.ARTICLE_RESULTS["store_seconds"] == {"disk": 80.6, "lmdb": 4.34, "hdf5": 0.285}
    assert chapter.ARTICLE_RESULTS["disk_kb"] == {"disk": 200_296, "lmdb": 393_000, "hdf5": 293_000}


def trade_off(method: str, codec: str, size: float, seconds: float, lossy: bool = False) -> dict:
    return {"method": method, "codec": codec, "lossy": lossy, "image_bytes": 3072, "bytes_per_image": size,
            "ratio": 3072 / size, "store_per_image": 1e-5, "read_per_image": 1e-6, "shuffled_per_image": seconds,
            "psnr": 40.0 if lossy else np.inf, "pareto": False}


def test_the_best_codecs_come_from_the_compression_chapters_trade_off_table(tmp_path):
    cifar = [trade_off("lmdb", "none", 4096, 1e-6), trade_off("lmdb", "zstd", 3000, 2e-6),
             trade_off("hdf5", "gzip", 1500, 9e-6), trade_off("tar", "jpeg:90", 800, 1e-6, lossy=True),
             trade_off("npy", "none", 3072, 5e-7)]
    scans = [trade_off("zarr", "blosc", 200_000, 1e-4)]
    table = pd.DataFrame([*(dict(row, dataset="CIFAR") for row in cifar),
                          *(dict(row, dataset="16-bit scans") for row in scans)])
    results.write_table(tmp_path, "compression_trade_off", table)
    text = chapter.compression_conclusions(tmp_path)
    cifar_line, scans_line = text.splitlines()
    assert cifar_line.startswith("- **CIFAR**: smallest, hdf5 with gzip (2.05x, 1.5 KiB per image)")
    assert "fastest to read, lmdb with zstd (2 µs per image in a shuffled epoch)" in cifar_line
    assert "best balance of size and read time, lmdb with zstd" in cifar_line  # 2 x 1 beats 1 x 4.5
    assert scans_line.startswith("- **16-bit scans**: smallest, zarr with blosc")
    best = chapter.best_codecs(table[table["dataset"] == "CIFAR"])
    assert all(row["codec"] != "none" and not row["lossy"] for row in best.values())


def test_the_conclusions_say_so_when_a_chapter_did_not_run(tmp_path):
    assert "did not run" in chapter.compression_conclusions(tmp_path)
    results.write_table(tmp_path, "compression_trade_off",
                        pd.DataFrame([dict(trade_off("lmdb", "none", 4096, 1e-6), dataset="CIFAR")]))
    assert chapter.compression_conclusions(tmp_path) == "The compression chapter measured no lossless codec."
    many = summary_of({"disk": 1e-3, "lmdb": 1e-5, "npy": 5e-6})
    assert "(05) did not run" in chapter.photos_vs_scans_statement(many, None, 3072, 0)
    assert chapter.photos_vs_scans(many, None).empty


def test_small_photos_and_large_scans_are_compared_per_image():
    many = summary_of({"disk": 1e-3, "lmdb": 1e-5, "npy": 5e-6})
    large = summary_of({"disk": 1e-2, "lmdb": 2e-4, "npy": 1e-4}, n_values=(10, 100))
    statement = chapter.photos_vs_scans_statement(many, large, 3072, 524_288)
    assert "Small images (3.0 KiB of raw pixels each, 1,000 stored)" in statement
    assert "(512.0 KiB each, 171 times more, 100 stored)" in statement
    assert "- **LMDB**: a warm read costs 20x more per image" in statement
    assert "Closer to the NumPy floor with large images" in statement and "PNG files" in statement
    table = chapter.photos_vs_scans(many, large)
    assert table.loc["LMDB", "read vs floor, large"] == "2.0x"
