"""CNTK 2.7 worker: serves LSTM conformance cases over stdin/stdout (see adapters/worker_protocol.py).

A standalone program for CPython 3.6 (CNTK 2.7's wheel): it uses only the standard library, numpy
and cntk, and imports nothing from the project.  Run as ``python cntk_worker.py``; the host sends
frames on stdin and reads frames on stdout.  File descriptor 1 is pointed at stderr before cntk
is imported, so the framework's chatter never corrupts the protocol.

The arrays arrive already in CNTK's packing (the host converts with reference.layout):
W (D, 4H), H (P, 4H), b (4H) in gate order i, g, f, o (cntk/layers/blocks.py, _RecurrentBlock:
it_proj, bit_proj, ft_proj, ot_proj are slices 0..3 of proj4), peepholes Ci, Cf, Co (H) and the
projection P (H, P) of LSTM(shape=P, cell_shape=H).
"""

import sys

from worker_framing import UnsupportedCase, serve  # the shared framing (a sibling module)


# ------------------------------------------------------------------------------------------------
# CNTK

C = None
np = None
_GRAPHS = {}


def hello():
    global C, np
    import numpy
    np = numpy
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distribution / GPU notices on import
        import cntk
    C = cntk
    try:
        C.device.try_set_default_device(C.device.cpu())
    except Exception:
        pass
    return {"framework": "cntk", "version": C.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0]}


def _dtype(name):
    if name == "float32":
        return np.float32
    if name == "float64":
        return np.float64
    # float16 graphs build, but on the CPU CNTK 2.7 cannot evaluate them: Value::Create of a
    # float16 batch of sequences is "Feature Not Implemented" and sequence.last / first fail
    # with "an ComputationNodeBasePtr of mismatching precision" (docs/frameworks/cntk.md).
    raise UnsupportedCase("cntk: dtype %r is not computed by CNTK's LSTM on the CPU (float32 and "
                          "float64 are)" % name)


def _activation(name):
    if name == "tanh":
        return C.tanh
    if name == "relu":
        return C.relu
    if name == "linear":
        return lambda v: v
    raise UnsupportedCase("cntk: activation %r" % name)


def _lstm(meta, dtype):
    hidden, out_size = meta["hidden_size"], meta["output_size"]
    projection = meta["proj"]
    with C.layers.default_options(dtype=dtype):
        return C.layers.LSTM(out_size, cell_shape=hidden if projection else None,
                             activation=_activation(meta["activation"]),
                             use_peepholes=bool(meta["peepholes"]),
                             enable_self_stabilization=False)


def _params_by_name(function):
    return dict((p.name, p) for p in function.parameters)


class Graph(object):
    """One built network per shape signature; weights are loaded into its Parameters per case."""

    def __init__(self, meta):
        self.dtype = _dtype(meta["dtype"])
        self.layers = meta["layers"]
        self.dirs = 2 if meta["direction"] == "bidirectional" else 1
        self.reverse = meta["direction"] == "reverse"
        self.state = meta["state"]  # None, "constant" or "data"
        self.gradients = bool(meta.get("gradients"))
        dt = self.dtype
        h_size, p_size = meta["hidden_size"], meta["output_size"]
        with C.layers.default_options(dtype=dt):
            self.x = C.sequence.input_variable(meta["input_size"], dtype=dt, name="x",
                                               needs_gradient=self.gradients)
            self.h0, self.c0, self.consts, self.cells, self.finals = [], [], [], [], []
            y = self.x
            for k in range(self.layers):
                ys = []
                for d in range(self.dirs):
                    backwards = self.reverse or d == 1
                    cell = _lstm(meta, dt)
                    if self.state == "data":
                        h0 = C.input_variable(p_size, dtype=dt, name="h0_%d_%d" % (k, d),
                                              needs_gradient=self.gradients)
                        c0 = C.input_variable(h_size, dtype=dt, name="c0_%d_%d" % (k, d),
                                              needs_gradient=self.gradients)
                        self.h0.append(h0)
                        self.c0.append(c0)
                        h, c = C.layers.RecurrenceFrom(cell, go_backwards=backwards,
                                                       return_full_state=True)(h0, c0, y).outputs
                    else:
                        state = 0
                        if self.state == "constant":
                            state = (C.Constant(np.zeros(p_size, dt), dtype=dt),
                                     C.Constant(np.zeros(h_size, dt), dtype=dt))
                            self.consts.append(state)
                        h, c = C.layers.Recurrence(cell, go_backwards=backwards, initial_state=state,
                                                   return_full_state=True)(y).outputs
                    last = C.sequence.first if backwards else C.sequence.last
                    self.finals.append((h, c, last(h), last(c)))
                    ys.append(h)
                    self.cells.append(cell)
                y = ys[0] if len(ys) == 1 else C.splice(ys[0], ys[1])
            self.y = y
            outputs = [y] + [v for f in self.finals for v in f[2:]]
            self.function = C.combine(outputs)
            if self.gradients:
                self.dy = C.sequence.input_variable(p_size, dtype=dt, name="dy")
                self.dh = C.input_variable(p_size, dtype=dt, name="dh")
                self.dc = C.input_variable(h_size, dtype=dt, name="dc")
                h_last, c_last = self.finals[0][2], self.finals[0][3]
                self.loss = (C.sequence.reduce_sum(C.reduce_sum(self.y * self.dy, axis=0))
                             + C.reduce_sum(h_last * self.dh, axis=0)
                             + C.reduce_sum(c_last * self.dc, axis=0))
        # The cells' Parameters, per layer and direction, by CNTK name.
        self.params = []
        for cell in self.cells:
            found = _params_by_name(cell)
            if any(name.endswith("stabilizer") or name in ("alpha", "beta") for name in found):
                raise RuntimeError("self-stabilization parameters present: %s" % sorted(found))
            self.params.append(found)

    def load(self, arrays):
        for index, found in enumerate(self.params):
            k, d = divmod(index, self.dirs)
            for name, parameter in found.items():
                key = "L%d.%d.%s" % (k, d, name)
                if key not in arrays:
                    raise ValueError("arrays: expected %r for CNTK parameter %r" % (key, name))
                value = np.asarray(arrays[key], dtype=self.dtype)
                if value.shape != parameter.shape:
                    raise ValueError("%s: expected shape %s, got %s" % (key, parameter.shape, value.shape))
                parameter.value = value
        for index, (h_const, c_const) in enumerate(self.consts):
            h0, c0 = arrays["h0_%d" % index], arrays["c0_%d" % index]
            h_const.value = np.asarray(h0[0], self.dtype)
            c_const.value = np.asarray(c0[0], self.dtype)

    def feed(self, arrays, lengths):
        x = np.asarray(arrays["x"], self.dtype)
        feed = {self.x: [x[b, :n] for b, n in enumerate(lengths)]}
        for index, (h0, c0) in enumerate(zip(self.h0, self.c0)):
            feed[h0] = np.asarray(arrays["h0_%d" % index], self.dtype)
            feed[c0] = np.asarray(arrays["c0_%d" % index], self.dtype)
        return feed


def _signature(meta):
    keys = ("dtype", "input_size", "hidden_size", "output_size", "proj", "peepholes", "activation",
            "direction", "layers", "state", "gradients")
    return tuple(meta.get(k) for k in keys)


def _graph(meta):
    key = _signature(meta)
    graph = _GRAPHS.get(key)
    if graph is None:
        graph = _GRAPHS[key] = Graph(meta)
    return graph


def _lengths(meta, arrays):
    x = arrays["x"]
    batch, steps = x.shape[0], x.shape[1]
    if "lengths" in arrays:
        lengths = [int(n) for n in arrays["lengths"]]
    else:
        lengths = [steps] * batch
    if any(n < 1 for n in lengths):
        raise UnsupportedCase("cntk: a sequence of length 0 (a CNTK sequence has at least one step)")
    return lengths


def _pad(sequences, steps, dtype):
    """CNTK returns one array per sequence, of its own length: zeros after it (the padding the
    host declares as length semantics "zeros")."""
    sequences = [np.asarray(s) for s in sequences]
    width = sequences[0].shape[-1]
    out = np.zeros((len(sequences), steps, width), dtype)
    for b, seq in enumerate(sequences):
        out[b, :seq.shape[0]] = seq
    return out


def op_run(meta, arrays):
    graph = _graph(meta)
    graph.load(arrays)
    lengths = _lengths(meta, arrays)
    result = graph.function.eval(graph.feed(arrays, lengths))
    outputs = graph.function.outputs
    out = {"y": _pad(result[outputs[0]], arrays["x"].shape[1], graph.dtype)}
    for index in range(len(graph.finals)):
        out["h_%d" % index] = np.asarray(result[outputs[1 + 2 * index]])
        out["c_%d" % index] = np.asarray(result[outputs[2 + 2 * index]])
    return {}, out


def op_gradients(meta, arrays):
    meta = dict(meta, gradients=True, state="data")
    graph = _graph(meta)
    graph.load(arrays)
    lengths = _lengths(meta, arrays)
    feed = graph.feed(arrays, lengths)
    dy = np.asarray(arrays["dy"], graph.dtype)
    feed[graph.dy] = [dy[b, :n] for b, n in enumerate(lengths)]
    feed[graph.dh] = np.asarray(arrays["dh"], graph.dtype)
    feed[graph.dc] = np.asarray(arrays["dc"], graph.dtype)
    params = graph.params[0]
    wrt = [graph.x, graph.h0[0], graph.c0[0]] + [params[n] for n in sorted(params)]
    grads = graph.loss.grad(feed, wrt=wrt)
    out = {"x": _pad(grads[graph.x], arrays["x"].shape[1], graph.dtype),
           "h0": np.asarray(grads[graph.h0[0]]), "c0": np.asarray(grads[graph.c0[0]])}
    for name in sorted(params):
        out["param." + name] = np.asarray(grads[params[name]])
    return {}, out


class StepGraph(object):
    """The one-step graph: LSTM()(h_prev, c_prev, x_t) on non-sequence inputs, driven by the
    worker with each returned state fed back (a greedy decoding loop)."""

    def __init__(self, meta):
        dt = self.dtype = _dtype(meta["dtype"])
        with C.layers.default_options(dtype=dt):
            self.x = C.input_variable(meta["input_size"], dtype=dt, name="x_t")
            self.h = C.input_variable(meta["output_size"], dtype=dt, name="h_prev")
            self.c = C.input_variable(meta["hidden_size"], dtype=dt, name="c_prev")
            cell = _lstm(meta, dt)
            self.function = cell(self.h, self.c, self.x)
        self.params = _params_by_name(cell)

    def load(self, arrays):
        for name, parameter in self.params.items():
            parameter.value = np.asarray(arrays["L0.0." + name], self.dtype)


def op_steps(meta, arrays):
    key = ("step",) + _signature(meta)
    graph = _GRAPHS.get(key)
    if graph is None:
        graph = _GRAPHS[key] = StepGraph(meta)
    graph.load(arrays)
    x = np.asarray(arrays["x"], graph.dtype)
    h = np.asarray(arrays["h0_0"], graph.dtype)
    c = np.asarray(arrays["c0_0"], graph.dtype)
    h_out, c_out = graph.function.outputs
    ys = []
    for t in range(x.shape[1]):
        result = graph.function.eval({graph.x: x[:, t], graph.h: h, graph.c: c})
        h, c = np.asarray(result[h_out]), np.asarray(result[c_out])
        ys.append(h)
    return {}, {"y": np.stack(ys, axis=1), "h_0": h, "c_0": c}


def op_describe(meta, arrays):
    """What CNTK's LSTM layer holds: parameter names and shapes for a given configuration."""
    dt = _dtype(meta.get("dtype", "float32"))
    x = C.sequence.input_variable(meta["input_size"], dtype=dt)
    with C.layers.default_options(dtype=dt):
        f = C.layers.Recurrence(_lstm(meta, dt))(x)
    return {"parameters": dict((p.name, list(p.shape)) for p in f.parameters)}, {}


HANDLERS = {"run": op_run, "gradients": op_gradients, "steps": op_steps, "describe": op_describe}


if __name__ == "__main__":
    sys.exit(serve(HANDLERS, hello))
