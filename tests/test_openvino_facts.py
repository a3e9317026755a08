"""Facts about OpenVINO's LSTMSequence on the CPU plugin, established with openvino 2026.4.1 and
recorded in docs/converters/openvino.md.  Run by `tox -e openvino`; skipped where openvino is not
installed.  A failure here means an OpenVINO release changed one of them: update the
documentation, the adapters (adapters/openvino_adapter.py) and
conformance/harness/known_issues.py (the sequence-lengths entries)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openvino")

from adapters.openvino_adapter import opset  # noqa: E402
from adapters.openvino_runtime import compile_model, produced  # noqa: E402
from adapters.packings import PACKINGS  # noqa: E402
from reference import LSTMSpec, lstm_forward  # noqa: E402

B, T, D, H = 2, 4, 3, 2


def _weights():
    rng = np.random.default_rng(1)
    return (rng.normal(size=(1, 4 * H, D)).astype(np.float32), rng.normal(size=(1, 4 * H, H)).astype(np.float32),
            rng.normal(size=(1, 4 * H)).astype(np.float32), rng.normal(size=(B, T, D)).astype(np.float32))


def _run(static: bool, lengths):
    """LSTMSequence (forward, zero state) with constant weights on x of a static or dynamic shape."""
    ops = opset()
    import openvino

    w, r, b, x = _weights()
    xp = ops.parameter([B, T, D] if static else [-1, -1, D], np.float32, name="x")
    lp = ops.parameter([B] if static else [-1], np.int32, name="lengths")
    zeros = ops.constant(np.zeros((B, 1, H), np.float32))
    if not static:
        batch = ops.gather(ops.shape_of(xp), ops.constant(np.array([0], np.int64)), ops.constant(0))
        zeros = ops.broadcast(ops.constant(np.float32(0)),
                              ops.concat([batch, ops.constant(np.array([1, H], np.int64))], 0))
    node = ops.lstm_sequence(xp, zeros, zeros, lp, ops.constant(w), ops.constant(r), ops.constant(b), H, "forward")
    model = openvino.Model([node.output(0), node.output(1)], [xp, lp])
    compiled = compile_model(model)
    out = compiled({"x": x, "lengths": np.asarray(lengths, np.int32)})
    params = PACKINGS["openvino"].from_native({"W": w[0], "R": r[0], "B": b[0]}, "ifgo")
    y, (h_t, _) = lstm_forward(x.astype(np.float64), params, LSTMSpec(gate_order="ifgo"),
                               lengths=np.asarray(lengths))
    return produced(model, compiled), out[compiled.outputs[0]][:, 0], out[compiled.outputs[1]][:, 0], y, h_t


def test_gate_order_is_f_i_c_o():
    """Full-length sequences: the figo packing (preset "openvino") gives the reference's result."""
    _, y, h, y_ref, h_ref = _run(static=False, lengths=[T, T])
    np.testing.assert_allclose(y, y_ref, atol=1e-5)
    np.testing.assert_allclose(h, h_ref, atol=1e-5)


def test_static_shapes_decompose_and_honour_sequence_lengths():
    ran, y, h, y_ref, h_ref = _run(static=True, lengths=[T, 2])
    assert "TensorIterator" in ran, ran
    np.testing.assert_allclose(y, y_ref, atol=1e-5)
    np.testing.assert_allclose(h, h_ref, atol=1e-5)


def test_dynamic_shapes_run_rnnseq_and_ignore_sequence_lengths():
    """The known issue (conformance/harness/known_issues.py): the short sequence runs on to T."""
    ran, y, h, y_ref, h_ref = _run(static=False, lengths=[T, 2])
    assert "RNNSeq" in ran, ran
    np.testing.assert_allclose(y[0], y_ref[0], atol=1e-5)  # the full-length row is right
    assert np.abs(y[1, 2:]).max() > 1e-3  # padded steps are not zero
    assert np.abs(h[1] - h_ref[1]).max() > 1e-3  # the final state is not the one at step 2
    everything = _run(static=False, lengths=[T, T])
    np.testing.assert_allclose(y[1], everything[1][1], atol=1e-6)  # as if the length were T
