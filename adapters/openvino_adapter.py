"""OpenVINO on the CPU plugin: two converter pipelines and the native op.

* "openvino-onnx": the ONNX LSTM graph of the "onnxruntime" adapter (``OnnxRuntimeAdapter._model``,
  its weights moved from graph inputs into initializers, as an exported model holds them) ->
  ``openvino.convert_model`` (the ONNX frontend) -> CPU plugin.  It declares what ONNX writes and
  the CPU plugin compiles: the activations relu, sigmoid and tanh in any of f, g, h (every other
  ONNX activation is refused when compiling), ``clip`` (computed as a gate clip: a known issue),
  ``input_forget`` (dropped by the frontend: a known issue), six activations of a bidirectional
  node (the forward three used for both directions: a known issue).  ``layout=1`` is not read by
  the frontend (tests/test_openvino_facts.py) and so not used.
* "openvino-torch": the ``torch.nn.LSTM`` of the "torch" adapter, weights loaded
  (``TorchLSTMAdapter._prepare``; packed sequences for lengths, a bidirectional layer with a zero
  forward half for a reverse-only case) -> ``openvino.convert_model(module, example_input=...)``
  (the PyTorch frontend, TorchScript tracing) -> CPU plugin.
* "openvino-lstmsequence": OpenVINO's own ``LSTMSequence`` (opset 5 and later; built with the
  newest ``openvino.opsetN`` module) -> CPU plugin.

Why the weights are constants everywhere: the CPU plugin runs ``LSTMSequence`` as one oneDNN RNN
primitive (``RNNSeq``) only when W, R and B are constants; with weights fed as inputs it
decomposes the op into a ``TensorIterator`` over the cell (measured with openvino 2026.4.1: see
docs/converters/openvino.md).  A deployed model has constant weights, so every case is converted
and compiled with its own weights (``openvino_runtime.compile_model``; about 0.1 to 0.4 s).

``LSTMSequence`` (openvino/src/core/include/openvino/op/lstm_sequence.hpp and the op spec):
X (B, T, D) batch-major; initial_hidden_state / initial_cell_state (B, num_directions, H);
sequence_lengths (B,) required; W (num_directions, 4H, D), R (num_directions, 4H, H), B
(num_directions, 4H) one bias, gate blocks f, i, c, o (preset "openvino" = "figo", the "openvino"
entry of ``adapters.packings``); attributes ``hidden_size``, ``direction`` (forward, reverse,
bidirectional), ``activations`` (f, g, h: any of sigmoid, tanh, relu; one list for both
directions), ``activations_alpha`` / ``_beta`` (unused by these three), ``clip`` (clamps the
pre-activations of f, i, c and o: the reference's gate_clip; 0 = none).  Outputs Y (B, num_directions, T, H), Ho and Co
(B, num_directions, H).  No peepholes (LSTMSequence-1 had them; opset 5 dropped them), no
projection, no cell clip.
"""

from __future__ import annotations

import io

import numpy as np

from .base import Adapter, Capabilities, Case, Output, Unsupported
from .onnxruntime_adapter import OnnxRuntimeAdapter
from .openvino_runtime import compile_model, produced, run
from .packings import PACKINGS

def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("openvino")
    except metadata.PackageNotFoundError:
        return "unknown"


class OpenVINOAdapter(Adapter):
    """Base of the OpenVINO backends: the runtime is the CPU plugin (``openvino_runtime``)."""

    framework = "openvino"

    def __init__(self):
        import openvino

        self.ov = openvino

    def version(self) -> str:
        return _version()

    def describe(self) -> dict:
        out = super().describe()
        out["pipeline"] = {"runtime": "openvino CPU plugin", "versions": {"openvino": _version()},
                           **getattr(self, "pipeline", {})}
        return out

    def _compile(self, model):
        try:
            return compile_model(model)
        except RuntimeError as exc:
            raise Unsupported(f"{self.name}: the CPU plugin refused the model: {str(exc)[:1500]}") from None


# --------------------------------------------------------------------------------------------
# ONNX -> openvino.convert_model


#: The activations LSTMSequence computes, in any of f, g and h (the op spec: "any combination of relu,
#: sigmoid, tanh"); the CPU plugin refuses to compile an LSTMSequence with any other (measured with
#: openvino 2026.4.1 on every ONNX function: ConvertLSTMSequenceToTensorIterator "Unknown activation
#: function: affine" (also softsign, softplus, leaky_relu, thresholded_relu, scaled_tanh, elu);
#: LSTMCellDecomposition "Unsupported activation function" for HardSigmoid, whatever its alpha and beta).
OV_RECURRENT_ACTIVATIONS = ("sigmoid", "tanh", "relu")
OV_ACTIVATIONS = ("tanh", "relu", "sigmoid")
_OV_ONLY = ("the CPU plugin compiles LSTMSequence with relu, sigmoid and tanh only ('Unknown activation function' / "
            "'Unsupported activation function' for any other ONNX activation, with or without alpha and beta)")


def _onnx_caps() -> Capabilities:
    src = OnnxRuntimeAdapter.capabilities
    return Capabilities(
        dtypes=("float32",), recurrent_activations=OV_RECURRENT_ACTIVATIONS, activations=OV_ACTIVATIONS,
        features=src.features, length_semantics=src.length_semantics,
        reverse_time_order=src.reverse_time_order, max_layers=src.max_layers, gradient_dtypes=(),
        why_not={**src.why_not,
                 **{a: _OV_ONLY for a in ("hard_sigmoid", "hard_sigmoid_keras2", "linear", "softsign", "softplus")},
                 "float16": "the CPU plugin computes a float16 model in float32 (INFERENCE_PRECISION_HINT "
                            "f32); float16 arithmetic is not what it tests",
                 "float64": "the ONNX LSTM graph of the source adapter is float32 or float16"})


class OpenVINOOnnxAdapter(OpenVINOAdapter):
    """The ONNX LSTM operator -> openvino.convert_model -> CPU plugin."""

    name = "openvino-onnx"
    api = "ONNX LSTM (opset 22) -> openvino.convert_model (ONNX frontend) -> CPU plugin"
    native_gate_order = "onnx"
    bias_convention = OnnxRuntimeAdapter.bias_convention
    weight_orientation = OnnxRuntimeAdapter.weight_orientation
    capabilities = _onnx_caps()
    pipeline = {"source": "onnx (adapters/onnxruntime_adapter.py graph)", "converter": "openvino.convert_model"}

    def run(self, case: Case) -> Output:
        model, inputs = OnnxRuntimeAdapter.exported_model(case)
        try:
            ov_model = self.ov.convert_model(io.BytesIO(model.SerializeToString()))
        except Exception as exc:
            raise Unsupported(f"{self.name}: openvino.convert_model refused the ONNX model: "
                              f"{type(exc).__name__}: {str(exc)[:1500]}") from None
        compiled = self._compile(ov_model)
        out = OnnxRuntimeAdapter.output(case, run(compiled, inputs))
        out.produced = produced(ov_model, compiled)
        return out


# --------------------------------------------------------------------------------------------
# torch -> openvino.convert_model


def _torch_caps() -> Capabilities:
    from .pytorch_adapter import TorchLSTMAdapter

    src = TorchLSTMAdapter.capabilities
    return Capabilities(
        dtypes=("float32",), recurrent_activations=src.recurrent_activations, activations=src.activations,
        features=src.features - {"step", "gradients"}, length_semantics=src.length_semantics,
        reverse_time_order=src.reverse_time_order, max_layers=src.max_layers, gradient_dtypes=(),
        why_not={**src.why_not,
                 **{d: "the pipeline converts float32 modules (the CPU plugin computes in float32 with "
                       "INFERENCE_PRECISION_HINT f32)" for d in ("float64", "float16", "bfloat16")},
                 "gradients": "an inference runtime",
                 "step": "a converted model has no single-step API (steps run the model with T = 1)"})


class OpenVINOTorchAdapter(OpenVINOAdapter):
    """torch.nn.LSTM -> openvino.convert_model(module, example_input) -> CPU plugin."""

    name = "openvino-torch"
    api = "torch.nn.LSTM(batch_first=True) -> openvino.convert_model (PyTorch frontend) -> CPU plugin"
    native_gate_order = "torch"
    capabilities = _torch_caps()
    pipeline = {"source": "torch (adapters/pytorch_adapter.py nn.LSTM)", "converter": "openvino.convert_model"}

    def __init__(self):
        super().__init__()
        from .pytorch_adapter import TorchLSTMAdapter

        self.source = TorchLSTMAdapter()
        self.bias_convention = self.source.bias_convention
        self.weight_orientation = self.source.weight_orientation

    def run(self, case: Case) -> Output:
        torch, source = self.source._torch, self.source
        module, x, state, reverse_only = source._prepare(case, zero_state=case.initial_state is not None)

        class Exported(torch.nn.Module):
            """The module as a deployment exports it: (x[, h0, c0]) -> (y, h_n, c_n)."""

            def __init__(self):
                super().__init__()
                self.lstm = module

            def forward(self, x, *state):
                return source._forward(case, self.lstm, x, tuple(state) if state else None)

        example = (x,) + (tuple(state) if state is not None else ())
        try:
            with torch.no_grad():
                ov_model = self.ov.convert_model(Exported().eval(), example_input=example)
        except Exception as exc:
            raise Unsupported(f"{self.name}: openvino.convert_model refused the module: "
                              f"{type(exc).__name__}: {str(exc)[:1500]}") from None
        compiled = self._compile(ov_model)
        results = run(compiled, {k: v.numpy() for k, v in zip(range(len(example)), example)})
        y, h_n, c_n = (torch.from_numpy(np.ascontiguousarray(r)) for r in results)
        out = source._output(case, y, h_n, c_n, reverse_only)
        out.produced = produced(ov_model, compiled)
        return out


# --------------------------------------------------------------------------------------------
# LSTMSequence built with the opset API



def opset():
    """The newest ``openvino.opsetN`` module (``openvino.runtime`` is deprecated since 2025)."""
    import importlib

    for n in range(40, 4, -1):
        try:
            module = importlib.import_module(f"openvino.opset{n}")
        except ImportError:
            continue
        if hasattr(module, "lstm_sequence"):
            return module
    raise ImportError("no openvino.opsetN module with lstm_sequence")


class OpenVINOLSTMSequenceAdapter(OpenVINOAdapter):
    """``LSTMSequence`` built with ``openvino.opsetN.lstm_sequence``, weights as constants."""

    name = "openvino-lstmsequence"
    api = "openvino.opsetN.lstm_sequence (LSTMSequence-5) on the CPU plugin"
    native_gate_order = "openvino"
    bias_convention = "one bias B = Wb + Rb (a second bias and a forget bias summed into it)"
    weight_orientation = "W (dirs, 4H, D), R (dirs, 4H, H), B (dirs, 4H); gate blocks f, i, c, o"
    capabilities = Capabilities(
        dtypes=("float32",),
        recurrent_activations=OV_RECURRENT_ACTIVATIONS,
        activations=OV_ACTIVATIONS,
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "gate_clip", "cell_activation",
                            "lengths", "empty_sequences", "reverse", "bidirectional", "layers"}),
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
        gradient_dtypes=(),
        why_not={"peepholes": "LSTMSequence-5 has no peephole input (LSTMSequence-1 had one)",
                 "cell_clip": "clip clamps the gate pre-activations, not the cell state",
                 "projection": "LSTMSequence has no projection", "proj_clip": "LSTMSequence has no projection",
                 **{a: "activations are any of sigmoid, tanh and relu: " + _OV_ONLY
                    for a in ("hard_sigmoid", "hard_sigmoid_keras2", "linear", "softsign", "softplus")},
                 "activation_clip": "clip clamps the gate pre-activations (the reference's gate_clip), not the cell "
                                    "state where it enters h",
                 "input_forget": "LSTMSequence-5 has no coupled gates (LSTMSequence-1's input_forget was dropped)",
                 "cifg": "LSTMSequence-5 has no coupled gates",
                 "layer_norm": "LSTMSequence has no layer normalisation",
                 "projection_bias": "LSTMSequence has no projection",
                 "backward_activations": "one activations list serves both directions of a bidirectional "
                                         "LSTMSequence (BidirectionalLSTMSequenceDecomposition gives both the same)",
                 **{d: "the float32 kernels are tested (INFERENCE_PRECISION_HINT f32)"
                    for d in ("float64", "float16", "bfloat16")},
                 "gradients": "an inference runtime",
                 "length_semantics repeat": "Y is zero past sequence_lengths"},
    )

    def run(self, case: Case) -> Output:
        ops, ov = opset(), self.ov
        spec, p0 = case.spec, case.params
        dirs, hidden = case.num_directions, p0.hidden_size
        x = ops.parameter([-1, -1, p0.input_size], np.float32, name="x")
        lengths = ops.parameter([-1], np.int32, name="lengths")
        params, feeds = [x, lengths], {"x": case.x.astype(np.float32)}
        feeds["lengths"] = (np.asarray(case.lengths, np.int32) if case.lengths is not None
                            else np.full(case.batch, case.steps, np.int32))
        layer_in, results = x, []
        for k, per_direction in enumerate(case.layers):
            native = [PACKINGS["openvino"].to_native(p, spec.gate_order, forget_bias=spec.forget_bias)
                      for p in per_direction]
            w, r, b = (ops.constant(np.stack([n[name] for n in native]).astype(np.float32))
                       for name in ("W", "R", "B"))
            if case.initial_state is not None:
                h0 = ops.parameter([-1, dirs, hidden], np.float32, name=f"h0_{k}")
                c0 = ops.parameter([-1, dirs, hidden], np.float32, name=f"c0_{k}")
                states = case.initial_state[k * dirs:(k + 1) * dirs]
                feeds[f"h0_{k}"] = np.stack([h for h, _ in states], axis=1).astype(np.float32)
                feeds[f"c0_{k}"] = np.stack([c for _, c in states], axis=1).astype(np.float32)
                params += [h0, c0]
            else:  # zeros of shape (B, dirs, H), the batch taken from x
                batch = ops.gather(ops.shape_of(x), ops.constant(np.array([0], np.int64)), ops.constant(0))
                shape = ops.concat([batch, ops.constant(np.array([dirs, hidden], np.int64))], 0)
                h0 = c0 = ops.broadcast(ops.constant(np.float32(0)), shape)
            node = ops.lstm_sequence(layer_in, h0, c0, lengths, w, r, b, hidden, case.direction,
                                     activations=[spec.recurrent_activation, spec.activation, spec.h_activation],
                                     clip=float(spec.gate_clip or 0.0))
            # Y (B, dirs, T, H) -> (B, T, dirs * H): the next layer's input and the output y.
            y = ops.transpose(node.output(0), ops.constant(np.array([0, 2, 1, 3], np.int64)))
            layer_in = ops.reshape(y, ops.constant(np.array([0, 0, dirs * hidden], np.int64)), True)
            results += [node.output(1), node.output(2)]
        model = ov.Model([layer_in.output(0)] + results, params, "lstm_sequence")
        compiled = self._compile(model)
        out = run(compiled, feeds)
        finals = []
        for k in range(len(case.layers)):
            h_n, c_n = out[1 + 2 * k], out[2 + 2 * k]
            finals += [(np.asarray(h_n[:, d], np.float64), np.asarray(c_n[:, d], np.float64)) for d in range(dirs)]
        return Output(np.asarray(out[0], np.float64), finals, produced=produced(model, compiled))
