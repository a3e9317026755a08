"""ONNX Runtime: the ONNX ``LSTM`` operator, built in memory with ``onnx.helper`` and run by
``onnxruntime.InferenceSession`` on the CPU execution provider.

Convention (ONNX operator spec, Operators.md#LSTM; ORT onnxruntime/core/providers/cpu/rnn/
deep_cpu_lstm.cc and uni_directional_lstm.cc): gate order i, o, f, c (letters: i, o, f, g);
W (num_directions, 4H, D), R (num_directions, 4H, H), B (num_directions, 8H) = [Wb, Rb] (two
biases, added), P (num_directions, 3H) peepholes ordered i, o, f; X time-major (T, B, D) with
``layout=0`` (ORT has no ``layout=1`` kernel); Y (T, num_directions, B, H), Y_h / Y_c
(num_directions, B, H).  Weights are converted with the "onnx" entry of ``adapters.packings``.

The weights are graph *inputs*, not initializers, so one session per shape signature and
attribute set serves every drawn example.  The batch and time axes are symbolic.

* ``direction`` forward / reverse / bidirectional; reverse outputs are aligned to input steps
  (ONNX: Y[t] is the output computed at input step t) and each sequence is reversed within its
  own ``sequence_lens`` entry.
* ``sequence_lens``: Y is zero past a sequence's length (measured with onnxruntime 1.31.1),
  Y_h / Y_c are the last valid state.
* ``initial_h`` / ``initial_c``: passed only when the case has a state (else ORT's own zeros).
* ``clip`` is held to the ONNX specification: "applied to the input of activations", which
  is the reference's ``activation_clip`` (the gate pre-activations, and the cell state where it
  enters h).  ONNX Runtime clips only the gate pre-activations (onnxruntime#27224; its
  ``activation_h_`` functions are handed the clipped copy of C_t and ignore it): a known issue.
  The reference's ``gate_clip`` is what ORT computes, which no ONNX attribute specifies:
  unsupported here.
* ``activations``: any of the eleven ONNX functions for f, g and h (``adapters.onnx_activations``
  writes them with every alpha and beta), per direction for a bidirectional node.  The default
  (Sigmoid, Tanh, Tanh) is expressed by leaving the attribute out.
* ``input_forget=1``: ONNX Runtime computes f = 1 - i (uni_directional_lstm.cc), the
  reference's coupled_gates "forget_from_input"; the forget gate's weights and peephole are
  passed and ignored.
* a run-time forget bias is *folded* into Wb (the packing's ``forget_bias``): the operator has
  none; a case without ``recurrent_bias`` passes zeros as Rb.
* ``layout=1`` (batch-major X, Y, Y_h, Y_c): ONNX Runtime 1.31.1 refuses it ("Batchwise
  recurrent operations (layout == 1) are not supported") and so it is not used.
* stacked layers are LSTM nodes chained in one graph: the next layer reads the previous Y
  transposed to (T, B, num_directions, H) and reshaped to (T, B, num_directions * H).

Not expressible (reported unsupported): projection and proj_clip (the operator has none),
cell_clip (``clip`` clips gate pre-activations, not the cell), float64 (ORT 1.31.1: "LSTM
operator does not support double yet"), bfloat16, gradients, a native step or stateful API.
"""

from __future__ import annotations

import numpy as np

from reference.spec import LSTMParams, LSTMSpec

from reference.activations import EVERY_ACTIVATION, EVERY_RECURRENT

from .base import Adapter, Capabilities, Case, Output
from .onnx_activations import attributes as activation_attributes, spec_triples
from .packings import PACKINGS

#: ONNX opset of the graph (LSTM-22 is the newest LSTM version) and the IR version ORT accepts.
OPSET = 22
IR_VERSION = 10

_NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16}


def _native_params(params: LSTMParams, spec: LSTMSpec) -> dict[str, np.ndarray]:
    """ONNX W, R, B, (P) of one direction with the run-time forget bias folded into Wb."""
    return PACKINGS["onnx"].to_native(params, spec.gate_order, forget_bias=spec.forget_bias)


def inference_session(model: bytes):
    """An ``onnxruntime.InferenceSession`` of a serialized ModelProto on the CPU execution
    provider with one thread (the framework call overhead dominates at the suite's sizes) and
    warnings silenced: how every backend of this project runs an ONNX model in ORT."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class OnnxRuntimeAdapter(Adapter):
    """The ONNX LSTM operator in onnxruntime's CPU execution provider."""

    name = "onnxruntime"
    framework = "onnxruntime"
    api = f"ONNX LSTM (opset {OPSET}, layout=0) in onnxruntime.InferenceSession (CPUExecutionProvider)"
    native_gate_order = "onnx"
    bias_convention = "two biases B = [Wb, Rb] (zeros for a missing one); forget bias folded into Wb"
    weight_orientation = "W (dirs, 4H, D), R (dirs, 4H, H), P (dirs, 3H) ordered i, o, f"
    capabilities = Capabilities(
        dtypes=tuple(_NUMPY_DTYPES),
        recurrent_activations=EVERY_RECURRENT,
        activations=EVERY_ACTIVATION,
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "peepholes", "activation_clip",
                            "input_forget", "cell_activation", "backward_activations", "lengths",
                            "empty_sequences", "reverse", "bidirectional", "layers"}),
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
        gradient_dtypes=(),
        why_not={"projection": "the ONNX LSTM operator has no projection",
                 "proj_clip": "the ONNX LSTM operator has no projection",
                 "cell_clip": "the ONNX LSTM operator has no cell_clip (its clip attribute clips the inputs of "
                              "the activations)",
                 "gate_clip": "ONNX's clip is specified to clip every activation's input, h(clip(c)) too: that is "
                              "activation_clip (ONNX Runtime computes only this gate part: a known issue)",
                 "cifg": "ONNX's input_forget computes f = 1 - i in ONNX Runtime (input_forget), not i = 1 - f",
                 "layer_norm": "the ONNX LSTM operator has no layer normalisation",
                 "projection_bias": "the ONNX LSTM operator has no projection",
                 "float64": "ORT 1.31.1's LSTM kernel: 'LSTM operator does not support double yet'",
                 "bfloat16": "the CPU LSTM kernel has float32 and float16 only",
                 "length_semantics repeat": "Y is zero past sequence_lens",
                 "gradients": "an inference runtime"},
    )

    def __init__(self):
        import onnxruntime

        self._ort = onnxruntime
        self._sessions: dict[tuple, object] = {}

    # ------------------------------------------------------------------ graph and session

    def _session(self, key: tuple):
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = inference_session(self._model(*key).SerializeToString())
        return session

    @staticmethod
    def _model(dtype, input_size, hidden, layers, direction, has_bias, has_peephole, has_lengths,
               has_state, triples, clip, input_forget):
        from onnx import TensorProto, helper

        elem = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}[dtype]
        dirs = 2 if direction == "bidirectional" else 1
        attrs = {"hidden_size": hidden, "direction": direction, "layout": 0,
                 **activation_attributes(list(triples))}
        if clip is not None:
            attrs["clip"] = clip
        if input_forget:
            attrs["input_forget"] = 1

        def value(name, shape, elem_type=elem):
            return helper.make_tensor_value_info(name, elem_type, shape)

        inputs = [value("X", ["T", "N", input_size])]
        if has_lengths:
            inputs.append(value("sequence_lens", ["N"], TensorProto.INT32))
        nodes, outputs, initializers = [], [], []
        layer_in, width = "X", input_size
        for k in range(layers):
            names = {n: f"{n}_{k}" for n in ("W", "R", "B", "P", "initial_h", "initial_c")}
            inputs += [value(names["W"], [dirs, 4 * hidden, width]),
                       value(names["R"], [dirs, 4 * hidden, hidden])]
            if has_bias:
                inputs.append(value(names["B"], [dirs, 8 * hidden]))
            if has_state:
                inputs += [value(names["initial_h"], [dirs, "N", hidden]),
                           value(names["initial_c"], [dirs, "N", hidden])]
            if has_peephole:
                inputs.append(value(names["P"], [dirs, 3 * hidden]))
            node_inputs = [layer_in, names["W"], names["R"], names["B"] if has_bias else "",
                           "sequence_lens" if has_lengths else "",
                           names["initial_h"] if has_state else "", names["initial_c"] if has_state else "",
                           names["P"] if has_peephole else ""]
            while node_inputs[-1] == "":
                node_inputs.pop()
            y, y_h, y_c = f"Y_{k}", f"Y_h_{k}", f"Y_c_{k}"
            nodes.append(helper.make_node("LSTM", node_inputs, [y, y_h, y_c], name=f"lstm_{k}", **attrs))
            outputs += [value(y_h, [dirs, "N", hidden]), value(y_c, [dirs, "N", hidden])]
            if k + 1 < layers:
                # (T, dirs, N, H) -> (T, N, dirs, H) -> (T, N, dirs * H): the next layer's input.
                nodes.append(helper.make_node("Transpose", [y], [f"Yt_{k}"], perm=[0, 2, 1, 3]))
                if not initializers:
                    initializers.append(helper.make_tensor("features_shape", TensorProto.INT64, [3], [0, 0, -1]))
                nodes.append(helper.make_node("Reshape", [f"Yt_{k}", "features_shape"], [f"X_{k + 1}"]))
                layer_in, width = f"X_{k + 1}", dirs * hidden
            else:
                outputs.insert(0, value(y, ["T", dirs, "N", hidden]))
        graph = helper.make_graph(nodes, "lstm_conformance", inputs, outputs, initializer=initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        return model

    # ------------------------------------------------------------------ the contract

    def run(self, case: Case) -> Output:
        key = self.graph_key(case)
        return self.output(case, self._session(key).run(None, self.feeds(case, key)))

    @staticmethod
    def graph_key(case: Case) -> tuple:
        """The arguments of :meth:`_model` for ``case``: one graph (and session) per key."""
        spec, p0 = case.spec, case.params
        has_bias = any(p.bias is not None or p.recurrent_bias is not None for d in case.layers for p in d) \
            or bool(spec.forget_bias)
        return (case.dtype, p0.input_size, p0.hidden_size, len(case.layers), case.direction, has_bias,
                spec.use_peepholes, case.lengths is not None, case.initial_state is not None,
                tuple(spec_triples(spec, case.num_directions)), spec.activation_clip,
                spec.coupled_gates == "forget_from_input")

    @staticmethod
    def feeds(case: Case, key: tuple) -> dict[str, np.ndarray]:
        """The graph's inputs for ``case``: X, sequence_lens, and W, R, B, P, initial_h,
        initial_c of each layer (directions stacked)."""
        spec, has_bias = case.spec, key[5]
        np_dtype = _NUMPY_DTYPES[case.dtype]
        dirs = case.num_directions
        feeds = {"X": np.ascontiguousarray(case.x.transpose(1, 0, 2), dtype=np_dtype)}
        if case.lengths is not None:
            feeds["sequence_lens"] = np.asarray(case.lengths, dtype=np.int32)
        for k, per_direction in enumerate(case.layers):
            native = [_native_params(p, spec) for p in per_direction]
            names = ("W", "R", "B", "P") if has_bias else ("W", "R", "P")
            for name in names:
                if name in native[0]:
                    feeds[f"{name}_{k}"] = np.ascontiguousarray(np.stack([n[name] for n in native]),
                                                                dtype=np_dtype)
            if case.initial_state is not None:
                states = case.initial_state[k * dirs:(k + 1) * dirs]
                feeds[f"initial_h_{k}"] = np.stack([h for h, _ in states]).astype(np_dtype)
                feeds[f"initial_c_{k}"] = np.stack([c for _, c in states]).astype(np_dtype)
        return feeds

    @classmethod
    def exported_model(cls, case: Case):
        """The graph of ``case`` as an exported model holds it: the weights (W_k, R_k, B_k, P_k)
        moved from graph inputs into initializers (the OpenVINO pipeline converts it; a runtime
        runs its weights as constants).  Returns (ModelProto, the remaining inputs by name)."""
        from onnx import numpy_helper

        key = cls.graph_key(case)
        model = cls._model(*key)
        feeds = cls.feeds(case, key)
        consts = {name: value for name, value in feeds.items() if name.split("_")[0] in ("W", "R", "B", "P")}
        graph = model.graph
        kept = [i for i in graph.input if i.name not in consts]
        del graph.input[:]
        graph.input.extend(kept)
        graph.initializer.extend(numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items())
        return model, {name: value for name, value in feeds.items() if name not in consts}

    @staticmethod
    def output(case: Case, results) -> Output:
        """The Output of the graph's outputs: Y (T, dirs, N, H), then Y_h, Y_c of each layer."""
        dirs = case.num_directions
        y = np.asarray(results[0], dtype=np.float64)  # (T, dirs, N, H)
        steps, _, batch, hidden = y.shape
        y = y.transpose(2, 0, 1, 3).reshape(batch, steps, dirs * hidden)
        finals = []
        for k in range(len(case.layers)):
            y_h, y_c = np.asarray(results[1 + 2 * k]), np.asarray(results[2 + 2 * k])
            finals += [(np.asarray(y_h[d], np.float64), np.asarray(y_c[d], np.float64)) for d in range(dirs)]
        return Output(y, finals)
