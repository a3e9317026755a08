"""Facts about OpenVINO's LSTMSequence on the CPU plugin and its ONNX frontend (layout=1), established
with openvino 2026.4.1 and
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


def _layout1_model(x_shape, *, with_h0: bool = False):
    """openvino.convert_model of an ONNX LSTM with layout=1 (X (batch, seq, input), Y (batch, seq,
    dirs, hidden)) holding the weights of _weights() as initializers."""
    import io

    import openvino
    from onnx import TensorProto, helper, numpy_helper

    from adapters.onnxruntime_adapter import IR_VERSION, OPSET

    w, r, b, _ = _weights()
    params = PACKINGS["openvino"].from_native({"W": w[0], "R": r[0], "B": b[0]}, "ifgo")
    onnx_w = PACKINGS["onnx"].to_native(params, "ifgo")
    inits = [numpy_helper.from_array(onnx_w[k][None].astype(np.float32), k) for k in ("W", "R", "B")]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)]
    names = ["X", "W", "R", "B"]
    if with_h0:
        inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [x_shape[0], 1, H]))
        names += ["", "h0"]
    outputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, None) for k in ("Y", "Y_h", "Y_c")]
    node = helper.make_node("LSTM", names, ["Y", "Y_h", "Y_c"], hidden_size=H, layout=1)
    model = helper.make_model(helper.make_graph([node], "layout1", inputs, outputs, initializer=inits),
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return openvino.convert_model(io.BytesIO(model.SerializeToString())), params


def test_the_onnx_frontend_ignores_layout_1():
    """ONNX layout=1 (batch-major X and Y): src/frontends/onnx/frontend/src/op/lstm.cpp reads no
    'layout' attribute, so X (batch, seq, input) is taken as (seq, batch, input): with dynamic
    shapes and batch = seq the model converts and computes the LSTM along the batch axis; with
    static shapes (batch != seq, an initial_h of layout 1's shape) the conversion fails on a shape
    check, not on the layout."""
    from openvino.frontend import OpConversionFailure

    ov_model, params = _layout1_model(["N", "S", D])
    compiled = compile_model(ov_model)
    x = np.random.default_rng(4).normal(size=(T, T, D)).astype(np.float32)  # batch = seq = T
    y = compiled({"X": x})[compiled.outputs[0]]
    as_layout0, _ = lstm_forward(x.transpose(1, 0, 2).astype(np.float64), params, LSTMSpec())  # X read as (T, B, D)
    as_layout1, _ = lstm_forward(x.astype(np.float64), params, LSTMSpec())
    assert y.shape == (T, 1, T, H)  # layout 0's Y (seq, dirs, batch, hidden)
    np.testing.assert_allclose(y[:, 0].transpose(1, 0, 2), as_layout0, atol=1e-5)
    assert np.abs(y[:, 0] - as_layout1).max() > 0.1  # not layout 1's Y (batch, seq, dirs, hidden)
    with pytest.raises(OpConversionFailure, match="merge"):
        _layout1_model([B, T, D], with_h0=True)
