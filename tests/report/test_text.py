"""How the report writes its numbers, and the box that says which images were measured."""

from __future__ import annotations

from report_fixtures import summary_of

from helpers.report import text


def test_the_banner_warns_loudly_only_for_synthetic_images():
    assert "Warning: synthetic images" in text.banner_html("SYNTHETIC stand-in: no CIFAR-10 found")
    real = text.banner_html("CIFAR-10 training set from data/raw <50,000 images>")
    assert "Warning" not in real and "&lt;50,000 images&gt;" in real


def test_ratios_and_costs_are_written_with_as_many_digits_as_they_deserve():
    assert [text.times(r) for r in (0.5, 2.63, 18.4, 283.0, float("nan"))] == ["0.50x", "2.6x", "18x", "283x", "n/a"]
    assert [text.per_image(s) for s in (1.454e-6, 5.83e-5, 1.2e-3)] == ["1.45 µs", "58.3 µs", "1.20 ms"]


def test_rankings_leave_out_the_floor_and_put_the_best_first():
    summary = summary_of({"disk": 1e-3, "lmdb": 1e-5, "hdf5": 4e-5, "npy": 5e-6})
    ranking = text.ranked(summary, 1000, "read_many", "warm")
    assert [method for method, _ in ranking] == ["lmdb", "hdf5", "disk"]
    sentence = text.winner_sentence(ranking, "Reading")
    assert sentence.startswith("Reading: **LMDB** is best at 10.00 ms; HDF5 40.00 ms (4.0x)")
    assert text.largest_cutoff(summary) == 1000 and text.pick(summary, "lmdb", "read_many", 10, "cold") is not None
