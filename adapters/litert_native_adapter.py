"""LiteRT's fused LSTM kernel built directly ("litert-lstm"): a flatbuffer with one
``UNIDIRECTIONAL_SEQUENCE_LSTM`` per layer, written with the ``schema_py_generated`` object API
that ai-edge-litert ships, run by the LiteRT runner (``adapters.litert_runtime``).  No converter:
what the kernel itself computes.

The op (tensorflow/lite/kernels/unidirectional_sequence_lstm.cc, lstm_shared.h, lstm_eval.cc):
operands 0 input (B, T, D) (``time_major = False``); 1-4 ``input_to_{input,forget,cell,output}_
weights`` (H, D); 5-8 ``recurrent_to_*_weights`` (H, P); 9-11 peepholes ``cell_to_{input,forget,
output}_weights`` (H,) (i and f see c_{t-1}, o sees c_t); 12-15 ``{input,forget,cell,output}_gate_
bias`` (H,); 16 ``projection_weights`` (P, H), 17 projection bias; 18 and 19 the output state h
(B, P) and the cell state c (B, H) as *variable* tensors (the op reads its initial state there and
writes the final state back); 20-23 layer-norm coefficients (unused).  Options: ``cell_clip``,
``proj_clip`` (0 = none), ``fused_activation_function`` (the candidate's and the cell output's
activation: TANH, RELU, or NONE for the reference's "linear"); the gates are always sigmoid.  The
operands are per gate, so there is no gate order: the "litert" entry of ``adapters.packings``
names them.  An absent operand is index -1 (no peepholes, no projection, no bias -> zeros).

The initial state is written into the state tensors with ``set_tensor`` after ``allocate_tensors``
(a fresh interpreter per case starts them at zero), the final state read from them after
``invoke``.  Stacked layers chain the ops.  There is no reverse direction or mask in this op
(BIDIRECTIONAL_SEQUENCE_LSTM is another op): unsupported here.
"""

from __future__ import annotations

import numpy as np

from .base import Adapter, Capabilities, Case, Output
from .litert_runtime import STATE_OPERANDS, LiteRTModel
from .packings import LITERT_GATES, LITERT_PEEPHOLES, PACKINGS

#: Reference activation -> the op's fused_activation_function (schema ActivationFunctionType).
_ACTIVATIONS = {"tanh": "TANH", "relu": "RELU", "linear": "NONE"}
#: Operand index of each named array (lstm_shared.h).
_OPERANDS = {
    **{f"input_to_{n}_weights": 1 + k for k, n in enumerate(LITERT_GATES.values())},
    **{f"recurrent_to_{n}_weights": 5 + k for k, n in enumerate(LITERT_GATES.values())},
    **{LITERT_PEEPHOLES[g]: 9 + k for k, g in enumerate("ifo")},
    **{f"{n}_gate_bias": 12 + k for k, n in enumerate(LITERT_GATES.values())},
    "projection_weights": 16,
}
_N_OPERANDS = 24


def build_model(case: Case) -> bytes:
    """The flatbuffer of ``case``: one UNIDIRECTIONAL_SEQUENCE_LSTM per layer, its weights as
    constant buffers, the states as variable tensors (see the module docstring)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    spec = case.spec
    model = schema.ModelT()
    model.version = 3
    model.buffers = [schema.BufferT()]  # buffer 0: empty, by convention
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    code.version = 1
    model.operatorCodes = [code]
    sub = schema.SubGraphT()
    sub.tensors, sub.operators = [], []

    def tensor(name, shape, data=None, variable=False):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.isVariable = name, list(shape), schema.TensorType.FLOAT32, variable
        t.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data, np.float32).tobytes(), np.uint8)
            model.buffers.append(buffer)
            t.buffer = len(model.buffers) - 1
        sub.tensors.append(t)
        return len(sub.tensors) - 1

    p0 = case.params
    x = tensor("x", (case.batch, case.steps, p0.input_size))
    sub.inputs, layer_in = [x], x
    for k, (params,) in enumerate(case.layers):
        native = PACKINGS["litert"].to_native(params, spec.gate_order, forget_bias=spec.forget_bias)
        operands = [-1] * _N_OPERANDS
        operands[0] = layer_in
        for name, value in native.items():
            operands[_OPERANDS[name]] = tensor(f"l{k}/{name}", np.shape(value), value)
        hidden, out = params.hidden_size, params.output_size
        for name, size, index in (("h", out, STATE_OPERANDS[0]), ("c", hidden, STATE_OPERANDS[1])):
            operands[index] = tensor(f"l{k}/{name}", (case.batch, size), variable=True)
        y = tensor(f"l{k}/y", (case.batch, case.steps, out))
        options = schema.UnidirectionalSequenceLSTMOptionsT()
        options.fusedActivationFunction = getattr(schema.ActivationFunctionType, _ACTIVATIONS[spec.activation])
        options.cellClip = float(spec.cell_clip or 0.0)
        options.projClip = float(spec.proj_clip or 0.0)
        options.timeMajor = False
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, operands, [y]
        op.builtinOptionsType = schema.BuiltinOptions.UnidirectionalSequenceLSTMOptions
        op.builtinOptions = options
        sub.operators.append(op)
        layer_in = y
    sub.outputs = [layer_in]
    model.subgraphs = [sub]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


class LiteRTLSTMAdapter(Adapter):
    """LiteRT's UNIDIRECTIONAL_SEQUENCE_LSTM kernel, one op per layer, built without a converter."""

    name = "litert-lstm"
    framework = "ai-edge-litert"
    api = "UNIDIRECTIONAL_SEQUENCE_LSTM built with ai_edge_litert.schema_py_generated, LiteRT interpreter"
    native_gate_order = "ifgo"
    bias_convention = "one bias per gate (a forget bias and a second bias folded into it)"
    weight_orientation = "per gate: input_to_* (H, D), recurrent_to_* (H, P); projection_weights (P, H)"
    capabilities = Capabilities(
        dtypes=("float32",),
        recurrent_activations=("sigmoid",),
        activations=tuple(_ACTIVATIONS),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "peepholes", "cell_clip",
                            "projection", "proj_clip", "layers"}),
        max_layers=3,
        gradient_dtypes=(),
        why_not={"lengths": "UNIDIRECTIONAL_SEQUENCE_LSTM has no sequence lengths or mask",
                 "empty_sequences": "UNIDIRECTIONAL_SEQUENCE_LSTM has no sequence lengths",
                 "reverse": "UNIDIRECTIONAL_SEQUENCE_LSTM runs forward (BIDIRECTIONAL_SEQUENCE_LSTM is "
                            "another op, not built here)",
                 "bidirectional": "BIDIRECTIONAL_SEQUENCE_LSTM is another op, not built here",
                 "gate_clip": "the op clips the cell state and the projection, not the gates",
                 **{a: "the gates are always sigmoid" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
                 **{d: "the float path of the kernel is built (int8 and float16 need quantized operands)"
                    for d in ("float64", "float16", "bfloat16")},
                 "gradients": "an inference runtime"},
    )

    def run(self, case: Case) -> Output:
        runtime = LiteRTModel(build_model(case), signature=False)
        itp = runtime.interpreter
        itp.allocate_tensors()
        ops = itp._get_ops_details()
        if case.initial_state is not None:
            for op, (h0, c0) in zip(ops, case.initial_state):
                for index, value in zip(STATE_OPERANDS, (h0, c0)):
                    itp.set_tensor(int(op["inputs"][index]), np.asarray(value, np.float32))
        itp.set_tensor(itp.get_input_details()[0]["index"], np.asarray(case.x, np.float32))
        itp.invoke()
        y = itp.get_tensor(itp.get_output_details()[0]["index"])
        finals = [tuple(np.asarray(itp.get_tensor(int(op["inputs"][i])), np.float64) for i in STATE_OPERANDS)
                  for op in ops]
        return Output(np.asarray(y, np.float64), finals, produced=runtime.produced)
