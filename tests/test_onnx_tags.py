"""The weight tags of the ONNX pipelines (adapters/onnx_pipelines.py): every weight element of a
structure is exported as a distinct tag, and the exported model's constants are read back as
indices.  A constant the converter wrote itself must never read as a tag: tf2onnx writes the
clip bounds of Keras 2's hard_sigmoid (0.2 x + 0.5 clipped to [0, 1]) as scalar constants in the
Loop body of a masked LSTM, and a 1.0 read as the tag of weight 0 was overwritten with that
weight (a wrong model for every example after the first)."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.onnx_pipelines import make_tags, read_tags, tag_capacity

DTYPES = ("float32", "float16")


@pytest.mark.parametrize("dtype", DTYPES)
def test_tags_read_back_as_their_indices(dtype):
    shapes = [(4, 3), (4, 1), (7,), (2, 2, 2)]
    tags = make_tags(shapes, dtype)
    assert [t.shape for t in tags] == shapes and all(t.dtype == np.dtype(dtype) for t in tags)
    flat = np.concatenate([t.ravel() for t in tags])
    assert len(set(flat.tolist())) == flat.size
    assert (read_tags(flat, flat.size) == np.arange(flat.size)).all()
    # Indices at or past the number of weight elements are not tags of this structure.
    assert (read_tags(flat, 5) == np.where(np.arange(flat.size) < 5, np.arange(flat.size), -1)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_tag_of_a_full_capacity_is_distinct(dtype):
    n = min(tag_capacity(dtype), 1 << 16)
    flat = make_tags([(n,)], dtype)[0]
    assert (read_tags(flat, n) == np.arange(n)).all()
    assert np.all((np.abs(flat.astype(np.float64)) > 1) & (np.abs(flat.astype(np.float64)) < 2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_constants_of_a_graph_are_never_tags(dtype):
    constants = np.array([0.0, 1.0, -1.0, 1.5, -1.5, 1.25, 1.75, 1.125, 0.5, 0.2, 2.0, 6.0, 1 / 6, 3.0,
                          -0.5], dtype=dtype)
    assert (read_tags(constants, tag_capacity(dtype)) == -1).all()


def test_capacity_is_checked_by_name():
    assert tag_capacity("float16") == 1024 and tag_capacity("float32") == 1 << 23
    assert tag_capacity("float64") == 0
    with pytest.raises(ValueError, match="shapes: at most 1024 weight elements can be tagged in float16, got 1025"):
        make_tags([(1025,)], "float16")
