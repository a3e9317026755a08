"""Fuzzing the model-file readers as tests/test_fuzz_decoders.py fuzzes the fixture loader:
random bytes, and real files with bytes overwritten and the end cut off.  Whatever the bytes, the
only outcomes are LSTMs read or one ModelFileError (never another exception, never a hang,
never an unpickled object).  Each format runs where its package is installed (the reference env
has safetensors, h5py and msgpack; tox -e ports has onnx and torch too)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.tools import convert as cv
from conformance.tools.model_files import ModelFileError, read_models, write_models
from reference import LSTMParams

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])
edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6)

#: format -> (suffix, framework written, package needed)
FORMATS = {"npz": (".npz", "tf1", "numpy"), "safetensors": (".safetensors", "torch", "safetensors"),
           "weights.h5": (".weights.h5", "keras", "h5py"), "msgpack": (".msgpack", "flax", "msgpack"),
           "onnx": (".onnx", "onnx", "onnx")}


def _model():
    rng = np.random.default_rng(0)
    layer = [LSTMParams(kernel=rng.normal(size=(2, 8)).astype(np.float32),
                        recurrent_kernel=rng.normal(size=(2, 8)).astype(np.float32),
                        bias=rng.normal(size=8).astype(np.float32)) for _ in range(2)]
    return cv.Model([layer, [LSTMParams(kernel=p.kernel[:2].repeat(2, 0), recurrent_kernel=p.recurrent_kernel,
                                        bias=p.bias) for p in layer]], framework="keras")


@pytest.fixture(scope="module", params=list(FORMATS))
def original(request, tmp_path_factory):
    suffix, framework, package = FORMATS[request.param]
    pytest.importorskip(package, reason=f"the {request.param} reader needs {package} (tox -e ports)")
    path = tmp_path_factory.mktemp("orig") / f"model{suffix}"
    write_models(path, [_model()], framework)
    assert _read(path), "the unfuzzed file must read"
    return suffix, path.read_bytes()


def _read(path):
    try:
        _, models = read_models(path, framework="tf1" if path.suffix == ".npz" else None)
    except ModelFileError as exc:
        assert "\n" not in str(exc).strip(), "one line"
        assert str(path) in str(exc) or str(exc).startswith("--"), f"names the file: {exc}"
        return None
    for model in models:
        assert all(np.asarray(a).dtype.kind == "f" for a in model.arrays())
    return models


@FUZZ
@given(edits=edits, cut=st.integers(0, 10**6))
def test_corrupted_files_are_refused_cleanly(original, tmp_path_factory, edits, cut):
    suffix, data = original
    data = bytearray(data)
    for position, value in edits:
        data[position % len(data)] = value
    path = tmp_path_factory.mktemp("fuzz") / f"model{suffix}"
    path.write_bytes(bytes(data[:len(data) - cut % (len(data) // 2 + 1)]))
    _read(path)


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".npz", ".safetensors", ".weights.h5", ".h5",
                                                             ".keras", ".msgpack", ".onnx", ".pt"]))
def test_random_bytes_are_refused_cleanly(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"model{suffix}"
    path.write_bytes(data)
    _read(path)


@FUZZ
@given(header=st.dictionaries(st.text(max_size=12), st.dictionaries(
    st.sampled_from(["dtype", "shape", "data_offsets"]),
    st.one_of(st.sampled_from(["F32", "F64", "BF16", "I64", "U8", "X"]), st.lists(st.integers(-2, 40), max_size=3))),
    max_size=3), payload=st.binary(max_size=200))
def test_fuzzed_safetensors_headers_are_refused_cleanly(tmp_path_factory, header, payload):
    """Well-formed JSON headers that lie about dtypes, shapes and offsets."""
    pytest.importorskip("safetensors", reason="tox -e ports / reference install safetensors")
    import json

    text = json.dumps(header).encode()
    path = tmp_path_factory.mktemp("fuzz") / "model.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + payload)
    _read(path)
