"""The advice of the access-patterns chapter, which the conclusions repeat: computed from the rates measured."""

from __future__ import annotations

from report_fixtures import access_summary, sequential_summary

from helpers.report import read_patterns


def test_recommendations_follow_the_access_pattern():
    text = read_patterns.access_recommendations(access_summary(), sequential_summary(), batch_size=256)
    assert "For shuffled training reads (one epoch in mini-batches of 256, warm cache): **LMDB**" in text
    assert "PNG files 1.8x with 2" in text
    assert "ranks HDF5 > LMDB > PNG files" in text and "the access pattern changes the ranking" in text
    assert "**For shuffled training reads, this run favours LMDB**" in text
    assert "NumPy" not in text.split("\n")[1]  # the floor is a reference, never a recommendation


def test_without_the_sequential_reads_the_ranking_is_not_compared():
    text = read_patterns.access_recommendations(access_summary())
    assert "in mini-batches, warm cache" in text and "ranks" not in text
