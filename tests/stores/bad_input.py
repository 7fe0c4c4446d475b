"""Wrong arguments, as hypothesis strategies: what every store must refuse with one of the library's errors."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st
from stores.samples import patterned_images

BAD_DTYPES = [np.float32, np.float64, np.int32, np.int64, np.int8, np.bool_, np.complex64, np.uint32]

bad_images = st.one_of(
    hnp.arrays(st.sampled_from(BAD_DTYPES), hnp.array_shapes(min_dims=2, max_dims=3, max_side=6)),
    hnp.arrays(np.uint8, hnp.array_shapes(min_dims=0, max_dims=1, max_side=6)),
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(5, 8))),
    hnp.arrays(np.uint8, st.tuples(st.just(0), st.integers(0, 4), st.just(3))),  # no rows
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 4), st.just(0), st.just(3))),  # no columns
    hnp.arrays(np.uint16, st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(2, 4))),
    st.builds(lambda: np.array([[object(), None]], dtype=object)),
    st.lists(st.lists(st.integers(0, 255), min_size=1, max_size=3), min_size=1, max_size=3),
    st.none(),
    st.text(max_size=5),
)
bad_ids = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=10**12),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
    st.builds(np.float64, st.floats(0, 100)),
    st.just([1]),
)
bad_labels = st.one_of(
    st.floats(),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
    st.integers(min_value=2**63),
    st.integers(max_value=-(2**63) - 1),
    st.just(np.array([1, 2])),
)
bad_counts = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=301),
    st.floats(),
    st.text(max_size=3),
    st.none(),
    st.booleans(),
)
good_images = patterned_images(3, shape=(4, 4, 3))


def bad_batch_labels(n: int):
    return st.one_of(
        hnp.arrays(st.sampled_from([np.float64, np.bool_, np.uint64, np.complex64]), st.just((n,))),
        hnp.arrays(np.int64, st.integers(0, 6).filter(lambda k: k != n).map(lambda k: (k,))),
        hnp.arrays(np.int64, st.just((n, 1))),
        st.lists(st.one_of(st.text(max_size=2), st.none(), st.floats()), min_size=n, max_size=n),
        st.just([[1], [2, 3], [4]][:n]),
        st.none(),
        st.integers(),
    )
