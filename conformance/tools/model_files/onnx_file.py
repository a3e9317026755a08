"""ONNX model files: every ``LSTM`` node read with the onnx package; a whole stack written as one
graph that ONNX Runtime runs.

Reading: each LSTM node's W, R, B, P come from initializers (or Constant nodes) and its
attributes say how it runs: ``direction`` (forward, reverse, bidirectional), ``hidden_size``,
``clip`` (a gate clip, as ONNX Runtime computes it), ``activations`` (any of the eleven ONNX
functions with their alpha / beta, adapters/onnx_activations.py; g and h must agree, and both
directions), ``input_forget`` (coupled gates f = 1 - i, which the other frameworks lack:
refused) and ``layout``.  Nodes whose X is the previous node's Y through shape
ops only (Transpose, Reshape, Squeeze, ...: what torch.onnx.export writes between layers) form
one stacked LSTM; any other node starts an LSTM of its own.

Writing: a graph with inputs X (T, B, D) float32 and the optional initial_h and initial_c
(layers x directions, B, H) in PyTorch's h_n order, outputs Y (T, B, directions x H) of the last
layer and Y_h, Y_c (layers x directions, B, H); weights are initializers; opset and IR version
are the ONNX Runtime adapter's (adapters/onnxruntime_adapter.py), which ONNX Runtime 1.31 runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adapters.onnx_activations import attributes as activation_attributes, read_attributes
from adapters.onnxruntime_adapter import IR_VERSION, OPSET

from .. import convert as cv
from .arrays import read_bytes
from .common import ModelFileError, float_array, need

SHAPE_OPS = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten", "Cast"}
_ELEM_FLOAT = {1: np.float32, 10: np.float16, 11: np.float64}


def read(path, options) -> list[cv.Model]:
    path = Path(path)
    data = read_bytes(path, "an .onnx model file")
    onnx = need("onnx", path, "reading an .onnx file")
    from onnx import numpy_helper

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:
        raise ModelFileError(f"{path}: not a valid ONNX model ({type(exc).__name__}: {str(exc)[:200]}); export "
                             f"it again (torch.onnx.export, tf2onnx)") from None
    graph = model.graph
    tensors: dict[str, object] = {t.name: t for t in graph.initializer}
    producers: dict[str, object] = {}
    for node in graph.node:
        for out in node.output:
            producers[out] = node
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    tensors[node.output[0]] = attr.t
    inputs = {i.name for i in graph.input}

    def array(name, key):
        if name not in tensors:
            if name in inputs:
                raise ModelFileError(f"{path}: {key}: {name!r} is a graph input, not stored in the file: export "
                                     f"with the weights as initializers (torch.onnx.export does)")
            raise ModelFileError(f"{path}: {key}: {name!r} is computed by the graph, not stored as an "
                                 f"initializer or Constant")
        try:
            return float_array(numpy_helper.to_array(tensors[name]), path, f"{key} ({name})")
        except ModelFileError:
            raise
        except Exception as exc:
            raise ModelFileError(f"{path}: {key} ({name}): damaged tensor ({type(exc).__name__}: {exc})") from None

    lstm_nodes = [n for n in graph.node if n.op_type == "LSTM"]
    if not lstm_nodes:
        ops = sorted({n.op_type for n in graph.node})
        raise ModelFileError(f"{path}: holds no LSTM node (ops: {', '.join(ops[:12]) or 'none'}); an LSTM "
                             f"exported as a loop or as unrolled ops cannot be read as weights")
    previous = {}
    for node in lstm_nodes:
        source = node.input[0] if node.input else ""
        while source in producers and producers[source].op_type in SHAPE_OPS:
            source = producers[source].input[0] if producers[source].input else ""
        up = producers.get(source)
        if up is not None and up.op_type == "LSTM" and up.output and up.output[0] == source:
            previous[id(node)] = up
    chains: list[list] = []
    for node in lstm_nodes:
        up = previous.get(id(node))
        chain = next((c for c in chains if up is not None and c[-1] is up), None)
        if chain is not None:
            chain.append(node)
        else:
            chains.append([node])
    models = []
    for k, chain in enumerate(chains):
        layers, conventions, spec = [], [], None
        for node in chain:
            layer, node_spec = _layer(node, array, path)
            if spec is not None and node_spec != spec:
                raise ModelFileError(f"{path}: LSTM node {node.name!r}: its attributes {node_spec} differ from "
                                     f"the layer below it ({spec}); such a stack has no equivalent elsewhere")
            spec = node_spec
            layers.append(layer)
        direction, recurrent, activation, clip, layout, input_forget = spec
        name = chain[0].name or f"LSTM{k}"
        if len(chain) > 1:
            name += "".join(f"+{n.name or '?'}" for n in chain[1:])
        conventions.append("ONNX LSTM: gate order i, o, f, c; W (dirs, 4H, D), R (dirs, 4H, H); "
                           "B = [Wb, Rb] (two biases); P ordered i, o, f")
        conventions.append(f"direction {direction}; layout {layout} "
                           f"({'X (B, T, D)' if layout else 'X (T, B, D)'})")
        conventions.append(f"activations f={recurrent}, g=h={activation}")
        if clip is not None:
            conventions.append(f"clip {clip:g}: every gate pre-activation is clipped (as ONNX Runtime computes "
                               f"it; the ONNX spec also clips the cell state where it enters h)")
        refusal = ""
        if input_forget:
            conventions.append("input_forget=1: the input and forget gates are coupled (f = 1 - i in ONNX Runtime)")
            refusal = ("input_forget=1 couples the input and forget gates (f = 1 - i in ONNX Runtime); the "
                       "frameworks convert writes have no such coupling (TFLite's CIFG is i = 1 - f, with no input "
                       "gate weights)")
        models.append(cv.Model(layers, 0.0, [], name=name, framework="onnx", recurrent_activation=recurrent,
                               activation=activation, gate_clip=clip, reverse=direction == "reverse",
                               conventions=conventions, refusal=refusal))
    return models


def _layer(node, array, path):
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    key = f"LSTM node {node.name!r}"
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ModelFileError(f"{path}: {key}: direction {direction!r} is not forward, reverse or bidirectional")
    dirs = 2 if direction == "bidirectional" else 1
    try:
        triples = read_attributes(attrs.get("activations", []), attrs.get("activation_alpha", []),
                                  attrs.get("activation_beta", []), dirs)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {key}: {exc}") from None
    if len(set(triples)) != 1 or triples[0][1] != triples[0][2]:
        raise ModelFileError(f"{path}: {key}: activations {triples}: g and h differ, or the directions differ; "
                             f"a converted model has one activation for both, the same in each direction")
    recurrent, activation = triples[0][0], triples[0][1]
    clip = attrs.get("clip")
    clip = None if clip is None else float(clip)
    inputs = list(node.input) + [""] * 8
    if not inputs[1] or not inputs[2]:
        raise ModelFileError(f"{path}: {key}: expected inputs W and R, not found")
    arrays = {"W": array(inputs[1], f"{key} W"), "R": array(inputs[2], f"{key} R")}
    if inputs[3]:
        arrays["B"] = array(inputs[3], f"{key} B")
    if inputs[7]:
        arrays["P"] = array(inputs[7], f"{key} P")
    hidden = attrs.get("hidden_size")
    w = arrays["W"]
    if w.ndim != 3 or w.shape[0] != dirs or w.shape[1] % 4 or (hidden is not None and w.shape[1] != 4 * hidden):
        raise ModelFileError(f"{path}: {key} W: expected shape ({dirs}, 4 x hidden_size = "
                             f"{'?' if hidden is None else 4 * hidden}, D) for direction {direction}, got {w.shape}")
    h = w.shape[1] // 4
    expected = {"R": (dirs, 4 * h, h), "B": (dirs, 8 * h), "P": (dirs, 3 * h)}
    for name, value in arrays.items():
        if name in expected and value.shape != expected[name]:
            raise ModelFileError(f"{path}: {key} {name}: expected shape {expected[name]} (hidden_size {h}, "
                                 f"{dirs} direction{'s' if dirs > 1 else ''}), got {value.shape}")
    try:
        layer = [cv.PACKINGS["onnx"].from_native({n: v[d] for n, v in arrays.items()}, cv.CANONICAL)
                 for d in range(dirs)]
    except ValueError as exc:
        raise ModelFileError(f"{path}: {key}: {exc}") from None
    return layer, (direction, recurrent, activation, clip, int(attrs.get("layout", 0)),
                   int(attrs.get("input_forget", 0)))


# --------------------------------------------------------------------------------------------
# Writing

def model_proto(model: cv.Model, *, forget_bias: float = 0.0):
    """The whole stack of ``model`` as an ONNX ModelProto (see the module docstring)."""
    need("onnx", "OUT", "writing an .onnx file")
    from onnx import TensorProto, helper, numpy_helper

    cv.refuse_options(model, "onnx")
    p0 = model.layers[0][0]
    dirs, n_layers, hidden = len(model.layers[0]), len(model.layers), p0.hidden_size
    direction = model.direction
    attrs = {"hidden_size": hidden, "direction": direction, "layout": 0,
             **activation_attributes([(model.recurrent_activation, model.activation, model.activation)] * dirs)}
    if model.gate_clip is not None:
        attrs["clip"] = float(model.gate_clip)
    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("X", f32, ["T", "B", p0.input_size]),
              helper.make_tensor_value_info("initial_h", f32, [n_layers * dirs, "B", hidden]),
              helper.make_tensor_value_info("initial_c", f32, [n_layers * dirs, "B", hidden])]
    inits, nodes = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    const("features_shape", np.array([0, 0, -1], np.int64))
    # initial_h / initial_c are optional: graph inputs with an initializer of zeros (L x dirs, 1, H)
    # as their default, broadcast to the batch of X by Expand (a given state passes unchanged).
    for s in ("h", "c"):
        const(f"initial_{s}", np.zeros((n_layers * dirs, 1, hidden), np.float32))
    nodes += [helper.make_node("Shape", ["X"], ["x_shape"]),
              helper.make_node("Gather", ["x_shape", const("batch_axis", np.array([1], np.int64))], ["batch"]),
              helper.make_node("Concat", [const("states", np.array([n_layers * dirs], np.int64)), "batch",
                                          const("hidden", np.array([hidden], np.int64))], ["state_shape"], axis=0)]
    for s in ("h", "c"):
        nodes.append(helper.make_node("Expand", [f"initial_{s}", "state_shape"], [f"initial_{s}_all"]))
    layer_in, y_h, y_c = "X", [], []
    for k, layer in enumerate(model.layers):
        native = [cv._to_native("onnx", p, model.forget_bias - forget_bias) for p in layer]
        if len({frozenset(n) for n in native}) != 1:
            raise ValueError("--to onnx: expected peepholes in both directions or neither")
        arrays = {n: np.stack([d[n] for d in native]).astype(np.float32) for n in native[0]}
        start, stop = const(f"state_start_{k}", np.array([k * dirs], np.int64)), \
            const(f"state_stop_{k}", np.array([(k + 1) * dirs], np.int64))
        axes = const(f"state_axes_{k}", np.array([0], np.int64))
        for s in ("h", "c"):
            nodes.append(helper.make_node("Slice", [f"initial_{s}_all", start, stop, axes], [f"initial_{s}_{k}"]))
        node_inputs = [layer_in, const(f"W_{k}", arrays["W"]), const(f"R_{k}", arrays["R"]),
                       const(f"B_{k}", arrays["B"]), "", f"initial_h_{k}", f"initial_c_{k}"]
        if "P" in arrays:
            node_inputs.append(const(f"P_{k}", arrays["P"]))
        nodes.append(helper.make_node("LSTM", node_inputs, [f"Y_{k}", f"Y_h_{k}", f"Y_c_{k}"],
                                      name=f"lstm_{k}", **attrs))
        # (T, dirs, B, H) -> (T, B, dirs, H) -> (T, B, dirs * H): the next layer's input, or Y.
        nodes.append(helper.make_node("Transpose", [f"Y_{k}"], [f"Yt_{k}"], perm=[0, 2, 1, 3]))
        layer_in = "Y" if k == n_layers - 1 else f"X_{k + 1}"
        nodes.append(helper.make_node("Reshape", [f"Yt_{k}", "features_shape"], [layer_in]))
        y_h.append(f"Y_h_{k}")
        y_c.append(f"Y_c_{k}")
    nodes.append(helper.make_node("Concat", y_h, ["Y_h"], axis=0))
    nodes.append(helper.make_node("Concat", y_c, ["Y_c"], axis=0))
    outputs = [helper.make_tensor_value_info("Y", f32, ["T", "B", dirs * p0.output_size]),
               helper.make_tensor_value_info("Y_h", f32, [n_layers * dirs, "B", hidden]),
               helper.make_tensor_value_info("Y_c", f32, [n_layers * dirs, "B", hidden])]
    graph = helper.make_graph(nodes, model.name or "lstm", inputs, outputs, initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="lstm-conformance convert")
    proto.ir_version = IR_VERSION
    return proto


def write(model: cv.Model, *, forget_bias: float = 0.0) -> tuple[bytes, dict]:
    proto = model_proto(model, forget_bias=forget_bias)
    shapes = {t.name: tuple(t.dims) for t in proto.graph.initializer if t.name[:2] in ("W_", "R_", "B_", "P_")}
    return proto.SerializeToString(), shapes


def run(data: bytes, x, initial_state=None):
    """Run an .onnx file written by :func:`write` in ONNX Runtime: x (B, T, D); initial_state
    None or a list of (h0, c0) in h_n order.  Returns (y (B, T, dirs x H), [(h, c), ...])."""
    ort = need("onnxruntime", "OUT", "running an .onnx file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(np.asarray(x, np.float32).transpose(1, 0, 2))
    if initial_state is not None:
        h0 = np.stack([h for h, _ in initial_state]).astype(np.float32)
        c0 = np.stack([c for _, c in initial_state]).astype(np.float32)
    feeds = {"X": x}
    if initial_state is not None:
        feeds["initial_h"], feeds["initial_c"] = h0, c0
    y, y_h, y_c = session.run(["Y", "Y_h", "Y_c"], feeds)
    return (np.asarray(y, np.float64).transpose(1, 0, 2),
            [(np.asarray(h, np.float64), np.asarray(c, np.float64)) for h, c in zip(y_h, y_c)])
