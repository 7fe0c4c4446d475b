"""Every figure's method names, colours and order come from the registry."""

from __future__ import annotations

from helpers.report import style
from helpers.stores import names, store_class


def test_methods_are_ordered_as_in_the_article_with_the_floor_last():
    assert style.ordered_methods(["npy", "zarr", "hdf5", "disk", "lmdb"]) == ["disk", "lmdb", "hdf5", "zarr", "npy"]
    assert style.ordered_methods(["npy", "feather", "lmdb", "avro"]) == ["lmdb", "avro", "feather", "npy"]


def test_labels_and_colours_are_each_store_classes_own():
    for name in names():
        assert style.method_label(name) == store_class(name).label
        assert style.method_color(name) == store_class(name).colour
    assert style.method_label("feather") == "feather"
    assert style.method_color("feather") == style.method_color("feather") in style.EXTRA_COLORS
