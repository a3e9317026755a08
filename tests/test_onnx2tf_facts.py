"""Facts about the ONNX -> onnx2tf -> LiteRT pipeline (adapters/onnx2tf_adapter.py), established
with onnx2tf 1.28.8, tensorflow 2.21.0, tf_keras 2.21.0 and ai-edge-litert 2.3.0 and recorded in
docs/converters/onnx2tf.md; the known issues of conformance/harness/known_issues.py (the onnx2tf
entries) rest on them.  Run by `tox -e litert`; skipped where onnx2tf is not installed.  A failure
here means an onnx2tf (or TensorFlow) release changed one of them: update the documentation, the
adapter and the known issues."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

pytest.importorskip("onnx2tf")
pytest.importorskip("ai_edge_litert")

from adapters.base import Unsupported  # noqa: E402
from adapters.litert_runtime import LiteRTModel, operator_names  # noqa: E402
from adapters.onnx2tf_adapter import Onnx2TFAdapter  # noqa: E402
from adapters.onnxruntime_adapter import OnnxRuntimeAdapter  # noqa: E402
from adapters.reference_adapter import reference_output  # noqa: E402
from conformance.harness.compare import compare  # noqa: E402
from conformance.harness.strategies import build_case  # noqa: E402
from conformance.harness.tolerances import case_tolerance  # noqa: E402
from reference import LSTMSpec  # noqa: E402
from reference.layout import split_gates, split_peepholes  # noqa: E402


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """The adapter, with its templates in a fresh cache (every conversion happens here)."""
    before = os.environ.get("LSTM_CONFORMANCE_CACHE")
    os.environ["LSTM_CONFORMANCE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield Onnx2TFAdapter()
    if before is None:
        del os.environ["LSTM_CONFORMANCE_CACHE"]
    else:
        os.environ["LSTM_CONFORMANCE_CACHE"] = before


def _case(spec=LSTMSpec(), batch=3, hidden=6, **kw):
    kw.setdefault("initial_state", True)
    return build_case(np.random.default_rng(7), spec, batch, 5, 4, hidden, origin={}, **kw)


def _ratio(out, case) -> float:
    """The worst error of ``out`` against the reference, in tolerances."""
    expected, (tol, _) = reference_output(case), case_tolerance(case)
    ratios = [compare("y", out.y, expected.y, tol).ratio]
    ratios += [compare("state", a, b, tol).ratio for f, e in zip(out.final, expected.final) for a, b in zip(f, e)]
    return max(ratios)


def test_the_float32_flatbuffer_is_the_one_onnx2tf_writes(adapter, tmp_path):
    """The adapter writes the float32 flatbuffer from the model onnx2tf builds, as onnx2tf.convert
    does without disable_model_save: byte for byte the same file."""
    import onnx
    import onnx2tf
    import tf_keras

    # With the shapes inferred, as the adapter hands the model to onnx2tf.
    model = onnx.shape_inference.infer_shapes(adapter._source(_case(direction="bidirectional", layers=2))[0])

    tf_keras.backend.clear_session()
    onnx2tf.convert(onnx_graph=model, output_folder_path=str(tmp_path), non_verbose=True, not_use_onnxsim=True,
                    keep_shape_absolutely_input_names=[i.name for i in model.graph.input])
    (written,) = glob.glob(str(tmp_path / "*_float32.tflite"))
    with open(written, "rb") as f:
        assert adapter._convert(model) == f.read()


def test_a_dynamic_batch_needs_flex_ops_that_litert_lacks(adapter):
    """The ONNX graph with a symbolic batch converts to a WHILE loop over TensorList ops kept as
    select TF ops; ai-edge-litert's interpreter cannot prepare them.  With the batch static (what
    the adapter converts) the loop is all builtins."""
    case = _case()
    model, feeds = OnnxRuntimeAdapter.exported_model(case)
    dynamic = adapter._convert(model)
    assert any(op.startswith("CUSTOM Flex") for ops in operator_names(dynamic) for op in ops)
    with pytest.raises(RuntimeError, match="Flex"):
        LiteRTModel(dynamic, signature=False).run_by_name(feeds)
    static, _, _ = adapter._source(case)
    assert not any(op.startswith("CUSTOM") for ops in operator_names(adapter._convert(static)) for op in ops)


def test_sequence_lens_is_read_and_never_used(adapter):
    """With sequence_lens, every sequence still runs to T: the outputs are those of the same
    model without lengths, and far from the specified ones."""
    padded = _case(lengths=[5, 2, 3])
    out = adapter.run(padded)
    full = adapter.run(padded.replace(lengths=None))
    np.testing.assert_array_equal(out.y, full.y)
    assert _ratio(out, padded) > 100


def _matmul_peepholes(case):
    """onnx2tf's CustomLSTMCell: the peephole terms as tf.matmul(P (1, H), c (B, H)), which is
    defined when B == H and then sums over the batch (P_k c[k, j]), instead of P (.) c."""
    p, spec = case.params, case.spec
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    peep = split_peepholes(p.peephole)
    h, c = case.initial_state[0]
    ys = []
    for t in range(case.steps):
        g = split_gates(case.x[:, t] @ p.kernel + h @ p.recurrent_kernel + p.bias, spec.gate_order)
        i = sig(g["i"] + peep["i"][None] @ c)
        f = sig(g["f"] + peep["f"][None] @ c)
        c = f * c + i * np.tanh(g["g"])
        h = sig(g["o"] + peep["o"][None] @ c) * np.tanh(c)
        ys.append(h)
    return np.stack(ys, axis=1)


def test_peepholes_are_a_matrix_product(adapter):
    """Where the batch equals the hidden size the model converts and computes P @ c; elsewhere the
    conversion fails on the product's shapes."""
    square = _case(LSTMSpec(use_peepholes=True), batch=6, hidden=6)
    out = adapter.run(square)
    np.testing.assert_allclose(out.y, _matmul_peepholes(square), atol=2e-5)
    assert _ratio(out, square) > 100
    with pytest.raises(Unsupported, match="refused"):
        adapter.run(_case(LSTMSpec(use_peepholes=True), batch=3, hidden=6))


def test_a_node_without_initial_states_is_refused(adapter):
    """No initial_h and initial_c: onnx2tf hands tf_keras' RNN initial_state=[] (forward,
    reverse) or indexes initial_h of None (bidirectional)."""
    with pytest.raises(Unsupported, match="initial_state"):
        adapter.run(_case(initial_state=False))
    with pytest.raises(Unsupported, match="NoneType"):
        adapter.run(_case(initial_state=False, direction="bidirectional"))


def test_activation_alpha_and_beta_are_not_used(adapter):
    """HardSigmoid with Keras 3's slope (alpha 1/6) computes ONNX's default HardSigmoid (0.2, 0.5);
    ScaledTanh(1.5, 0.5) computes tanh."""
    keras3 = _case(LSTMSpec(recurrent_activation="hard_sigmoid"))
    out = adapter.run(keras3)
    assert _ratio(out, keras3) > 100
    assert _ratio(out, keras3.replace(spec=keras3.spec.replace(recurrent_activation="hard_sigmoid_keras2"))) < 1
    scaled = _case(LSTMSpec(activation="scaled_tanh(alpha=1.5, beta=0.5)"))
    out = adapter.run(scaled)
    assert _ratio(out, scaled) > 100
    assert _ratio(out, scaled.replace(spec=scaled.spec.replace(activation="scaled_tanh(alpha=1.0, beta=1.0)"))) < 1


def test_the_clip_reaches_the_gates_only(adapter):
    """clip: the gate pre-activations are clipped, the cell state entering h is not (as ONNX
    Runtime computes it, not as ONNX specifies it)."""
    case = _case(LSTMSpec(activation_clip=0.5))
    out = adapter.run(case)
    assert _ratio(out, case) > 100
    assert _ratio(out, case.replace(spec=case.spec.replace(activation_clip=None, gate_clip=0.5))) < 1
