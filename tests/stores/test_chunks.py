"""store_chunks' checks that do not depend on the method (helpers.stores.chunks and checks)."""

from __future__ import annotations

import numpy as np
import pytest
from stores.samples import cut, random_images

from helpers.codecs import get_codec
from helpers.core.errors import ImageFormatError
from helpers.stores import names, open_store, store_class
from helpers.stores.chunks import AlignedBlocks
from helpers.stores.values import EncodedImages

ENCODING_METHODS = [method for method in names() if store_class(method).encodes_each_image]


def test_encoded_chunks_are_refused_where_they_cannot_be_written_as_they_are(tmp_path):
    chunk = [(EncodedImages.encode(random_images(3, (8, 8, 3)), get_codec("zstd")), [0, 1, 2])]
    with pytest.raises(ImageFormatError, match="chunk 0: images encoded with 'zstd:3'; this store encodes with 'png:6'"):
        open_store(ENCODING_METHODS[0], tmp_path / "png", compression="png").store_chunks(chunk)
    with pytest.raises(ImageFormatError, match="taken only by a store that encodes each image"):
        open_store(ENCODING_METHODS[0], tmp_path / "raw").store_chunks(chunk)
    with pytest.raises(ImageFormatError, match="taken only by a store that encodes each image"):
        open_store("hdf5", tmp_path / "hdf5", compression="zstd").store_chunks(chunk)


def test_chunk_errors_name_the_problem(tmp_path):
    store = open_store("npy", tmp_path)
    images = random_images(3, (8, 8, 3))
    with pytest.raises(ImageFormatError, match="chunks is empty"):
        store.store_chunks([])
    with pytest.raises(ImageFormatError, match="chunk 0: labels has shape"):
        store.store_chunks([(images, [1, 2])])
    with pytest.raises(ImageFormatError, match="chunk 1 is a list"):
        store.store_chunks([(images, [1, 2, 3]), [images]])
    with pytest.raises(ImageFormatError, match="the chunks held 6 images; total=7 was declared"):
        store.store_chunks([(images, [1, 2, 3])] * 2, total=7)
    with pytest.raises(ImageFormatError, match="chunk 2 brings the batch to 9 images; total=7"):
        store.store_chunks([(images, [1, 2, 3])] * 3, total=7)
    with pytest.raises(ImageFormatError, match="total must be a positive"):
        store.store_chunks([(images, [1, 2, 3])], total=0)
    assert not store.partial_path.exists() and not store.batch_path.exists()


def test_aligned_blocks_regroup_chunks_of_any_size_into_whole_blocks():
    images, labels = random_images(25, (2, 2)), np.arange(25)
    seen = []
    blocks = AlignedBlocks(cut(images, labels, [3, 11, 1, 10]), 8, lambda start, part: seen.append(start))
    found = list(blocks)
    assert [(start, len(block)) for start, block, _ in found] == [(0, 8), (8, 8), (16, 8), (24, 1)]
    for start, block, block_labels in found:
        np.testing.assert_array_equal(block, images[start : start + len(block)])
        np.testing.assert_array_equal(block_labels, labels[start : start + len(block)])
    assert seen == [0, 3, 14, 15] and blocks.count == 25 and blocks.shape == (2, 2)


# helpers.datasets' chunked synthetic set is what the store_chunks tests at scale write; its test lives here
# beside them until the datasets tests take it.
