"""LiteRT's fused LSTM kernels built directly: a flatbuffer of ``UNIDIRECTIONAL_SEQUENCE_LSTM`` ops
("litert-lstm", and "litert-lstm-time-major" with ``time_major = True``) or of
``BIDIRECTIONAL_SEQUENCE_LSTM`` ops ("litert-bilstm"), one per layer, written with the
``schema_py_generated`` object API that ai-edge-litert ships and run by the LiteRT runner
(``adapters.litert_runtime``).  No converter: what the kernels themselves compute, with every
option the ops have.

UNIDIRECTIONAL_SEQUENCE_LSTM (tensorflow/lite/kernels/unidirectional_sequence_lstm.cc,
lstm_shared.h, lstm_eval.cc; in LiteRT tflite/kernels/): operand 0 input (B, T, D), or (T, B, D)
with ``time_major``; 1-4 ``input_to_{input,forget,cell,output}_weights`` (H, D); 5-8
``recurrent_to_*_weights`` (H, P); 9-11 peepholes ``cell_to_{input,forget,output}_weights`` (H,)
(i and f see c_{t-1}, o sees c_t); 12-15 ``{input,forget,cell,output}_gate_bias`` (H,); 16
``projection_weights`` (P, H), 17 ``projection_bias`` (P,); 18 and 19 the output state h (B, P)
and the cell state c (B, H) as *variable* tensors (the op reads its initial state there and writes
the final state back); 20-23 ``{input,forget,cell,output}_layer_norm_coefficients`` (H,).
Options: ``cell_clip``, ``proj_clip`` (0 = none), ``fused_activation_function`` (the candidate's
and the cell output's activation: TANH, RELU, or NONE for the reference's "linear"; the gates are
always sigmoid), ``time_major``.  An absent operand is index -1.

* CIFG (the reference's coupled_gates "input_from_forget", i = 1 - f): the input gate's operands
  (1, 5, 9, 12 and 20) are absent; the kernel checks that they are all absent together
  (``cifg_weights_all_or_none``) and computes i = 1 - f (lstm_eval.cc, ``UpdateLstmCellFloat``).
* Layer norm: with the four coefficient tensors (three under CIFG) each gate's x W + h R (+ the
  peephole term) is normalised over the units of its row, multiplied by the coefficients, and then
  the gate bias is added (``CalculateLstmGateFloat``).  The normalisation
  (``PortableMeanStddevNormalization``, tflite/kernels/internal/reference/portable_tensor_utils.cc)
  is two-pass in float32 and divides by sqrt(variance + 1e-8) (``kNormalizationConstant``): the
  backend declares that epsilon (``Capabilities.layer_norm_epsilon``), and a row of equal values
  becomes 0 there as in the reference.
* The projection bias is added to the projection before ``proj_clip`` (``CalculateLstmOutputFloat``).

BIDIRECTIONAL_SEQUENCE_LSTM (tflite/kernels/bidirectional_sequence_lstm.cc): operands 1-17 the
forward direction's (as above), 18-34 the backward direction's, 35-38 the forward h, c and the
backward h, c state tensors, 39-47 an aux input and its weights (unused here); no layer norm.
Options as above plus ``merge_outputs``: one output (B, T, 2P), forward | backward, when set, else
two (B, T, P).  A bidirectional case runs one op per layer with ``merge_outputs``; a forward or a
reverse case runs the same op with the other direction's weights zero and its output not used
(``merge_outputs`` off), so every property exercises this kernel.

The operands are per gate, so there is no gate order: the "litert" entry of ``adapters.packings``
names them.  The initial state is written into the state tensors with ``set_tensor`` after
``allocate_tensors`` (a fresh interpreter per case starts them at zero), the final state read
from them after ``invoke``.  Stacked layers chain the ops.  Neither op has sequence lengths or a
mask (unsupported here).
"""

from __future__ import annotations

import numpy as np

from .base import Adapter, Capabilities, Case, Output
from .litert_runtime import STATE_OPERANDS, LiteRTModel
from .packings import LITERT_GATES, LITERT_PEEPHOLES, PACKINGS

#: Reference activation -> the ops' fused_activation_function (schema ActivationFunctionType).
_ACTIVATIONS = {"tanh": "TANH", "relu": "RELU", "linear": "NONE"}
#: Operand index of each named array of one direction (lstm_shared.h; the forward direction of the
#: bidirectional op has the same indices 1-17, its backward direction these + 17).
_OPERANDS = {
    **{f"input_to_{n}_weights": 1 + k for k, n in enumerate(LITERT_GATES.values())},
    **{f"recurrent_to_{n}_weights": 5 + k for k, n in enumerate(LITERT_GATES.values())},
    **{LITERT_PEEPHOLES[g]: 9 + k for k, g in enumerate("ifo")},
    **{f"{n}_gate_bias": 12 + k for k, n in enumerate(LITERT_GATES.values())},
    "projection_weights": 16,
    "projection_bias": 17,
    **{f"{n}_layer_norm_coefficients": 20 + k for k, n in enumerate(LITERT_GATES.values())},
}
#: The input gate's operands, absent under CIFG.
_INPUT_GATE = ("input_to_input_weights", "recurrent_to_input_weights", "cell_to_input_weights",
               "input_gate_bias", "input_layer_norm_coefficients")
_UNI_OPERANDS = 24
_BI_OPERANDS = 48
#: BIDIRECTIONAL_SEQUENCE_LSTM: the backward direction's weights start here - 1; the states.
_BI_BACKWARD = 17
BI_STATE_OPERANDS = ((35, 36), (37, 38))


def _native(params, spec) -> dict[str, np.ndarray]:
    """The "litert" named arrays of one layer and direction as the op takes them: no input-gate
    operands under CIFG, zero gate biases when the case has none (the op requires them)."""
    native = PACKINGS["litert"].to_native(params, spec.gate_order, forget_bias=spec.forget_bias)
    hidden = params.hidden_size
    for n in LITERT_GATES.values():
        native.setdefault(f"{n}_gate_bias", np.zeros(hidden))
    if spec.coupled_gates == "input_from_forget":
        native = {k: v for k, v in native.items() if k not in _INPUT_GATE}
    return native


class _Builder:
    """A flatbuffer being written: one subgraph, float32 tensors, constant buffers."""

    def __init__(self, op_name: str):
        from ai_edge_litert import schema_py_generated as schema

        self.schema = schema
        self.model = schema.ModelT()
        self.model.version = 3
        self.model.buffers = [schema.BufferT()]  # buffer 0: empty, by convention
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = getattr(schema.BuiltinOperator, op_name)
        code.version = 1
        self.model.operatorCodes = [code]
        self.sub = schema.SubGraphT()
        self.sub.tensors, self.sub.operators = [], []

    def tensor(self, name, shape, data=None, variable=False) -> int:
        schema = self.schema
        t = schema.TensorT()
        t.name, t.shape, t.type, t.isVariable = name, list(shape), schema.TensorType.FLOAT32, variable
        t.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data, np.float32).tobytes(), np.uint8)
            self.model.buffers.append(buffer)
            t.buffer = len(self.model.buffers) - 1
        self.sub.tensors.append(t)
        return len(self.sub.tensors) - 1

    def weights(self, operands: list[int], native: dict, prefix: str, offset: int = 0) -> None:
        for name, value in native.items():
            operands[_OPERANDS[name] + offset] = self.tensor(f"{prefix}/{name}", np.shape(value), value)

    def operator(self, inputs, outputs, options_name: str, options) -> None:
        op = self.schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, inputs, outputs
        op.builtinOptionsType = getattr(self.schema.BuiltinOptions, options_name)
        op.builtinOptions = options
        self.sub.operators.append(op)

    def options(self, cls_name: str, spec):
        options = getattr(self.schema, cls_name)()
        options.fusedActivationFunction = getattr(self.schema.ActivationFunctionType, _ACTIVATIONS[spec.activation])
        options.cellClip = float(spec.cell_clip or 0.0)
        options.projClip = float(spec.proj_clip or 0.0)
        return options

    def finish(self, inputs, outputs) -> bytes:
        from ai_edge_litert.tools import flatbuffer_utils

        self.sub.inputs, self.sub.outputs = inputs, outputs
        self.model.subgraphs = [self.sub]
        return bytes(flatbuffer_utils.convert_object_to_bytearray(self.model))


def build_model(case: Case, *, time_major: bool = False) -> bytes:
    """The flatbuffer of ``case``: one UNIDIRECTIONAL_SEQUENCE_LSTM per layer, its weights as
    constant buffers, the states as variable tensors (see the module docstring)."""
    spec, p0 = case.spec, case.params
    b = _Builder("UNIDIRECTIONAL_SEQUENCE_LSTM")
    outer = (case.steps, case.batch) if time_major else (case.batch, case.steps)
    x = b.tensor("x", (*outer, p0.input_size))
    layer_in = x
    for k, (params,) in enumerate(case.layers):
        operands = [-1] * _UNI_OPERANDS
        operands[0] = layer_in
        b.weights(operands, _native(params, spec), f"l{k}")
        for name, size, index in (("h", params.output_size, STATE_OPERANDS[0]),
                                  ("c", params.hidden_size, STATE_OPERANDS[1])):
            operands[index] = b.tensor(f"l{k}/{name}", (case.batch, size), variable=True)
        y = b.tensor(f"l{k}/y", (*outer, params.output_size))
        options = b.options("UnidirectionalSequenceLSTMOptionsT", spec)
        options.timeMajor = time_major
        b.operator(operands, [y], "UnidirectionalSequenceLSTMOptions", options)
        layer_in = y
    return b.finish([x], [layer_in])


def build_bidirectional_model(case: Case, *, time_major: bool = False) -> bytes:
    """The flatbuffer of ``case`` with one BIDIRECTIONAL_SEQUENCE_LSTM per layer (see the module
    docstring): a bidirectional case merges the outputs; a forward or reverse case gives the
    other direction zero weights and passes on its own direction's output.  ``time_major``: x and
    the outputs are (T, B, .) (the backend runs batch-major; tests/test_litert_facts.py both)."""
    spec, p0 = case.spec, case.params
    b = _Builder("BIDIRECTIONAL_SEQUENCE_LSTM")
    outer = (case.steps, case.batch) if time_major else (case.batch, case.steps)
    x = b.tensor("x", (*outer, p0.input_size))
    layer_in, merge = x, case.direction == "bidirectional"
    for k, per_direction in enumerate(case.layers):
        if merge:
            fw, bw = per_direction
        else:
            used = per_direction[0]
            zero = type(used)(**{name: np.zeros_like(v) for name, v in used.arrays().items()})
            fw, bw = (zero, used) if case.direction == "reverse" else (used, zero)
        operands = [-1] * _BI_OPERANDS
        operands[0] = layer_in
        b.weights(operands, _native(fw, spec), f"l{k}/fw")
        b.weights(operands, _native(bw, spec), f"l{k}/bw", offset=_BI_BACKWARD)
        for d, params in enumerate((fw, bw)):
            for name, size, index in (("h", params.output_size, BI_STATE_OPERANDS[d][0]),
                                      ("c", params.hidden_size, BI_STATE_OPERANDS[d][1])):
                operands[index] = b.tensor(f"l{k}/d{d}/{name}", (case.batch, size), variable=True)
        out = fw.output_size
        if merge:
            outputs = [b.tensor(f"l{k}/y", (*outer, 2 * out))]
        else:
            outputs = [b.tensor(f"l{k}/y_{d}", (*outer, out)) for d in ("fw", "bw")]
        options = b.options("BidirectionalSequenceLSTMOptionsT", spec)
        options.mergeOutputs, options.timeMajor = merge, time_major
        b.operator(operands, outputs, "BidirectionalSequenceLSTMOptions", options)
        layer_in = outputs[0] if merge or case.direction == "forward" else outputs[1]
    return b.finish([x], [layer_in])


_WHY_NOT = {
    "lengths": "the fused LSTM ops have no sequence lengths or mask",
    "empty_sequences": "the fused LSTM ops have no sequence lengths",
    "gate_clip": "the op clips the cell state and the projection, not the gates",
    "activation_clip": "the op clips the cell state and the projection, not the inputs of the activations",
    "input_forget": "the op's coupling is CIFG, i = 1 - f (no input-gate weights), not f = 1 - i",
    "cell_activation": "one fused activation serves the candidate and the cell output",
    "backward_activations": "one fused activation serves both directions",
    **{a: "the gates are always sigmoid" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
    **{d: "the float path of the kernel is built (int8 and float16 need quantized operands)"
       for d in ("float64", "float16", "bfloat16")},
    "gradients": "an inference runtime",
    "layer_norm_epsilon": "the float kernel adds 1e-8 to the variance (kNormalizationConstant)",
}
#: What the float kernel of both ops can express.
_FEATURES = frozenset({"initial_state", "forget_bias", "recurrent_bias", "peepholes", "cell_clip", "projection",
                       "proj_clip", "projection_bias", "cifg", "layers"})
#: LiteRT's float layer norm divides by sqrt(variance + 1e-8f) (see the module docstring).
LITERT_LAYER_NORM_EPSILON = float(np.float32(1e-8))


def _run(model: bytes, case: Case, time_major: bool, slots) -> Output:
    """Run a flatbuffer of fused LSTM ops on ``case``.  ``slots(ops)`` names the state tensors the
    case's initial and final states live in: (op, (h operand, c operand)) in the order of
    ``Case.initial_state``.  The initial state is written there after ``allocate_tensors`` and the
    final state read back after ``invoke`` (see the module docstring)."""
    runtime = LiteRTModel(model, signature=False)
    itp = runtime.interpreter
    itp.allocate_tensors()
    states = slots(itp._get_ops_details())
    if case.initial_state is not None:
        for (op, indices), state in zip(states, case.initial_state):
            for index, value in zip(indices, state):
                itp.set_tensor(int(op["inputs"][index]), np.asarray(value, np.float32))
    x = case.x.transpose(1, 0, 2) if time_major else case.x
    itp.set_tensor(itp.get_input_details()[0]["index"], np.ascontiguousarray(x, np.float32))
    itp.invoke()
    y = np.asarray(itp.get_tensor(itp.get_output_details()[0]["index"]), np.float64)
    finals = [tuple(np.asarray(itp.get_tensor(int(op["inputs"][i])), np.float64) for i in indices)
              for op, indices in states]
    return Output(y.transpose(1, 0, 2) if time_major else y, finals, produced=runtime.produced)


class LiteRTLSTMAdapter(Adapter):
    """LiteRT's UNIDIRECTIONAL_SEQUENCE_LSTM kernel, one op per layer, built without a converter."""

    name = "litert-lstm"
    framework = "ai-edge-litert"
    api = "UNIDIRECTIONAL_SEQUENCE_LSTM built with ai_edge_litert.schema_py_generated, LiteRT interpreter"
    native_gate_order = "ifgo"
    bias_convention = "one bias per gate (a forget bias and a second bias folded into it)"
    weight_orientation = ("per gate: input_to_* (H, D), recurrent_to_* (H, P); projection_weights (P, H); "
                          "layer-norm coefficients (H,) per gate")
    time_major = False
    capabilities = Capabilities(
        dtypes=("float32",),
        recurrent_activations=("sigmoid",),
        activations=tuple(_ACTIVATIONS),
        features=_FEATURES | {"layer_norm"},
        max_layers=3,
        gradient_dtypes=(),
        layer_norm_epsilon=LITERT_LAYER_NORM_EPSILON,
        why_not={**_WHY_NOT,
                 "reverse": "UNIDIRECTIONAL_SEQUENCE_LSTM runs forward (BIDIRECTIONAL_SEQUENCE_LSTM: litert-bilstm)",
                 "bidirectional": "BIDIRECTIONAL_SEQUENCE_LSTM is another op (litert-bilstm)"},
    )

    def run(self, case: Case) -> Output:
        model = build_model(case, time_major=self.time_major)
        return _run(model, case, self.time_major, lambda ops: [(op, STATE_OPERANDS) for op in ops])


class LiteRTLSTMTimeMajorAdapter(LiteRTLSTMAdapter):
    """The same op with ``time_major = True``: lstm_eval.cc's other loop, which steps the whole batch
    at once (the batch-major loop runs each batch row through its own steps, one row at a time)."""

    name = "litert-lstm-time-major"
    api = LiteRTLSTMAdapter.api + " (time_major)"
    time_major = True


class LiteRTBidirectionalLSTMAdapter(Adapter):
    """LiteRT's BIDIRECTIONAL_SEQUENCE_LSTM kernel, one op per layer, built without a converter."""

    name = "litert-bilstm"
    framework = "ai-edge-litert"
    api = "BIDIRECTIONAL_SEQUENCE_LSTM built with ai_edge_litert.schema_py_generated, LiteRT interpreter"
    native_gate_order = "ifgo"
    bias_convention = LiteRTLSTMAdapter.bias_convention
    weight_orientation = "per gate and direction: input_to_* (H, D), recurrent_to_* (H, P); projection_weights (P, H)"
    capabilities = Capabilities(
        dtypes=("float32",),
        recurrent_activations=("sigmoid",),
        activations=tuple(_ACTIVATIONS),
        features=_FEATURES | {"reverse", "bidirectional"},
        reverse_time_order="aligned",
        max_layers=3,
        gradient_dtypes=(),
        why_not={**_WHY_NOT,
                 "layer_norm": "BIDIRECTIONAL_SEQUENCE_LSTM passes no layer-norm coefficients to lstm_eval "
                               "(bidirectional_sequence_lstm.cc: nullptr)"},
    )

    time_major = False

    def run(self, case: Case) -> Output:
        model = build_bidirectional_model(case, time_major=self.time_major)
        # The state tensors of the direction(s) the case uses, layer by layer (h_n order).
        used = (0, 1) if case.direction == "bidirectional" else ((1,) if case.direction == "reverse" else (0,))
        return _run(model, case, self.time_major,
                    lambda ops: [(op, BI_STATE_OPERANDS[d]) for op in ops for d in used])
