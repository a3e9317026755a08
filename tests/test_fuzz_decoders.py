"""Fuzzing the two places where outside bytes enter: the worker frame decoder and the golden
fixture loader.  Whatever the bytes, the only outcomes are a correct decode or the module's own
clear error (never another exception, never a hang, never an unpickled object)."""

from __future__ import annotations

import io
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.worker_protocol import MAGIC, ProtocolError, encode_frame, read_frame_from
from conformance.golden import store as fixtures
from conformance.golden.store import FixtureError, case_from_arrays, load_npz

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_FILES = settings(FUZZ, max_examples=60)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
arrays = st.dictionaries(
    st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8),
    st.builds(lambda shape, seed, dtype: np.random.default_rng(seed).normal(size=shape).astype(dtype),
              st.lists(st.integers(0, 4), max_size=3).map(tuple), st.integers(0, 2**32 - 1),
              st.sampled_from(["float32", "float64", "int64"])),
    max_size=3)


def _decode(data: bytes):
    try:
        return read_frame_from(io.BytesIO(data))
    except (ProtocolError, EOFError):
        return None


@FUZZ
@given(meta=st.dictionaries(st.text(max_size=8), json_values, max_size=5), payload=arrays)
def test_frames_round_trip(meta, payload):
    decoded_meta, decoded = read_frame_from(io.BytesIO(encode_frame(meta, payload)))
    assert decoded_meta == json.loads(json.dumps(meta))
    assert set(decoded) == set(payload)
    for name, value in payload.items():
        np.testing.assert_array_equal(decoded[name], value)
        assert decoded[name].dtype == value.dtype


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_are_refused_cleanly(data):
    _decode(data)
    _decode(MAGIC + data)


@FUZZ
@given(meta=st.dictionaries(st.text(max_size=5), json_values, max_size=3), payload=arrays,
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.integers(0, 10**6))
def test_corrupted_frames_are_refused_cleanly(meta, payload, edits, cut):
    frame = bytearray(encode_frame(meta, payload))
    for position, value in edits:
        frame[position % len(frame)] = value
    result = _decode(bytes(frame[:len(frame) - cut % len(frame)]))
    if result is not None:
        decoded_meta, decoded = result
        assert isinstance(decoded_meta, dict)
        assert all(isinstance(a, np.ndarray) and not a.dtype.hasobject for a in decoded.values())


@FUZZ_FILES
@given(data=st.binary(max_size=400))
def test_random_npz_files_are_refused_cleanly(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "case.npz"
    path.write_bytes(data)
    try:
        load_npz(path)
    except FixtureError:
        pass


@FUZZ_FILES
@given(payload=arrays, edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                      min_size=1, max_size=4))
def test_corrupted_npz_files_are_refused_cleanly(tmp_path_factory, payload, edits):
    data = bytearray(fixtures.npz_bytes(payload or {"x": np.zeros(2)}))
    for position, value in edits:
        data[position % len(data)] = value
    path = tmp_path_factory.mktemp("fuzz") / "case.npz"
    path.write_bytes(bytes(data))
    try:
        loaded = load_npz(path)
    except FixtureError:
        return
    assert all(a.dtype.kind in "biuf" for a in loaded.values())


@FUZZ
@given(meta=json_values, payload=arrays)
def test_fuzzed_fixture_metadata_is_refused_cleanly(meta, payload):
    try:
        case_from_arrays("fuzz", meta, payload)
    except FixtureError:
        pass
