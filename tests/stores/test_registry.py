"""The registry of methods (helpers.stores): the names in report order, each class by name, and the space a
method's batch may take, asked by name."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from stores.contract import assert_typed_error

from helpers import codecs, stores
from helpers.core.errors import ImageFormatError, UnknownMethodError
from helpers.stores import FLOOR, names, open_store, store_class

METHODS = names()


def test_registry_has_the_article_methods_and_the_floor():
    assert METHODS[:3] == ["disk", "lmdb", "hdf5"]
    assert FLOOR in METHODS
    for name in METHODS:
        assert store_class(name).name == name


def test_unknown_method_names_the_known_ones(tmp_path):
    with pytest.raises(UnknownMethodError, match="known methods: disk, lmdb, hdf5"):
        open_store("tiff", tmp_path)


def test_unknown_store_name_is_a_typed_error(tmp_path):
    assert_typed_error(lambda: open_store("tiff", tmp_path))
    assert_typed_error(lambda: open_store(None, tmp_path))


def test_the_articles_methods_take_compression_and_the_floor_none():
    assert store_class(FLOOR).compressions == ()
    for method in METHODS[:3]:
        assert store_class(method).compressions, method
    assert set(codecs.names()) <= set(store_class("lmdb").compressions)


def test_only_the_methods_made_of_independent_files_write_in_pieces():
    assert [method for method in METHODS if store_class(method).writes_pieces] == ["disk", "zarr", "tar"]
    assert not hasattr(store_class("lmdb"), "begin_pieces")  # no stub methods behind a flag


# -- space a method's batch may take, by name ------------------------------------------------------------
def test_estimate_grows_with_the_batch_and_rejects_nonsense():
    small = stores.estimate_bytes("lmdb", 100, (32, 32, 3), np.uint8)
    large = stores.estimate_bytes("lmdb", 10_000, (32, 32, 3), np.uint8)
    assert large > 50 * small > 0
    assert large >= 10_000 * 4096  # one page per value at least
    assert stores.estimate_bytes("disk", 100, (32, 32, 3), "uint8") >= 100 * 4096  # a block per file at least
    with pytest.raises(UnknownMethodError, match="tiff"):
        stores.estimate_bytes("tiff", 1, (32, 32, 3), np.uint8)
    with pytest.raises(ImageFormatError, match="n_images"):
        stores.estimate_bytes("hdf5", -1, (32, 32, 3), np.uint8)
    with pytest.raises(ImageFormatError, match="float64"):
        stores.estimate_bytes("hdf5", 1, (32, 32, 3), np.float64)


def test_experiment_bytes_counts_the_largest_cutoff_of_each_method_and_the_floor():
    shape = (32, 32, 3)
    total = stores.experiment_bytes(["disk", "lmdb"], [10, 1000, 100], shape, np.uint8, include_single=False)
    expected = sum(stores.estimate_bytes(m, 1000, shape, np.uint8) for m in ["disk", "lmdb", FLOOR])
    assert total == expected
    with_singles = stores.experiment_bytes(["disk", "lmdb"], [10, 1000], shape, np.uint8)
    assert with_singles > total
    with pytest.raises(ImageFormatError, match="cutoffs"):
        stores.experiment_bytes(["disk"], [], shape, np.uint8)


@given(
    method=st.one_of(st.sampled_from(METHODS), st.text(max_size=6)),
    n_images=st.one_of(st.integers(max_value=-1), st.floats(), st.none(), st.text(max_size=3)),
    shape=st.one_of(st.tuples(st.integers(-3, 0), st.integers(1, 5)), st.just((4, 4, 9)), st.just(("a", 4))),
    dtype=st.sampled_from([np.float32, np.int32, np.bool_, object, "not a dtype", np.uint8]),
)
def test_property_space_estimates_reject_bad_requests(method, n_images, shape, dtype):
    assert_typed_error(lambda: stores.estimate_bytes(method, n_images, shape, dtype))


def test_every_method_names_itself_for_the_report_in_its_own_label_and_colour():
    classes = [store_class(name) for name in METHODS]
    labels, colours = [cls.label for cls in classes], [cls.colour.lower() for cls in classes]
    assert len(set(labels)) == len(labels) and len(set(colours)) == len(colours)
    assert all(cls.trade_off.endswith(".") for cls in classes)
    assert all(cls.choose_when or cls.name == FLOOR for cls in classes)
