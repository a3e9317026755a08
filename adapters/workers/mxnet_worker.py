"""MXNet 1.9 worker: serves LSTM conformance cases over stdin/stdout (see adapters/worker_protocol.py).

A standalone program for CPython 3.8 (MXNet 1.9.1 with numpy < 1.24; valid Python 3.6): it uses
only the standard library, numpy and mxnet, and imports nothing from the project.  File
descriptor 1 is pointed at stderr before mxnet is imported, so nothing it prints reaches the
protocol.  Every result is read back with ``asnumpy()``, which waits for MXNet's asynchronous
engine, so an error of the framework surfaces in the request that caused it.

APIs ("api" in a request):
  gluon    gluon.rnn.LSTM(layout="NTC"): the fused RNN operator behind a Gluon layer, with
           projection_size, state_clip_min / max, use_sequence_length, bidirectional, num_layers;
           single steps through the layer's own LSTMCells (``LSTM._unfuse()``)
  rnn_op   mx.nd.RNN(mode="lstm") called directly with the flat parameter vector the host built
           ("flat"), time-major (T, B, D) as the operator takes it
  cell     gluon.rnn.LSTMCell unrolled (``unroll(valid_length=...)``), SequentialRNNCell for stacks,
           BidirectionalCell for both directions; activation and recurrent_activation options
The arrays arrive in MXNet's packing (the host converts with reference.layout / adapters.packings):
i2h_weight (4H, D), h2h_weight (4H, P), i2h_bias, h2h_bias (4H), h2r_weight (P, H), gate order i, f,
g, o, one (layer, direction) each as "L<k>.<d>.<name>".  One network is built per shape signature
and cached; weights are loaded with Parameter.set_data.
"""

import sys

from worker_framing import UnsupportedCase, serve  # the shared framing (a sibling module)


mx = None
nd = None
np = None
_NETS = {}
DTYPES = ("float32", "float64")
NAMES = ("i2h_weight", "h2h_weight", "i2h_bias", "h2h_bias")


def hello():
    global mx, nd, np
    import numpy
    np = numpy
    import warnings
    warnings.simplefilter("ignore")
    import mxnet
    mx = mxnet
    nd = mxnet.nd
    try:
        mkldnn = bool(mx.runtime.Features().is_enabled("MKLDNN"))
    except Exception:
        mkldnn = None
    return {"framework": "mxnet", "version": mx.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0], "mkldnn": mkldnn}


def _dtype(meta):
    name = meta["dtype"]
    if name not in DTYPES:
        # float16 builds, then the first matrix product fails: "FP16 gemm on cpu not implemented!"
        # (src/operator/linalg_impl.h); bfloat16 has no numpy dtype in MXNet 1.9's NDArray API.
        raise UnsupportedCase("mxnet %s on the CPU computes the LSTM in %s only, not %s"
                              % (mx.__version__, "/".join(DTYPES), name))
    return name


def _gate(name):
    """A recurrent activation of gluon.rnn.LSTMCell: a name or a callable (rnn_cell.py,
    _get_activation).  MXNet's hard_sigmoid(alpha, beta) gives both hard sigmoids."""
    if name == "sigmoid":
        return "sigmoid"
    if name == "hard_sigmoid":  # Keras 3: clip(x / 6 + 1/2, 0, 1)
        return lambda x, **kwargs: nd.hard_sigmoid(x, alpha=1.0 / 6.0, beta=0.5, **kwargs)
    if name == "hard_sigmoid_keras2":  # Keras 2: clip(0.2 x + 1/2, 0, 1)
        return lambda x, **kwargs: nd.hard_sigmoid(x, alpha=0.2, beta=0.5, **kwargs)
    raise UnsupportedCase("mxnet: recurrent activation %r" % name)


def _activation(name):
    # LSTMCell passes its activation to F.Activation(next_c, act_type=...) for the cell output:
    # a name MXNet's Activation operator knows; it has no identity ("linear").
    if name in ("tanh", "relu"):
        return name
    raise UnsupportedCase("mxnet: gluon.rnn.LSTMCell applies its activation to the cell state with "
                          "F.Activation(act_type=...), which has no %r" % name)


#: What MXNet 1.9.1's native CPU kernel of the RNN operator says when it refuses an option
#: (src/operator/rnn-inl.h): reported as unsupported, with the message.
REFUSALS = ("only supported for GPU", "only available for cuDNN", "No training support for LSTM with projection")


def _refused(exc):
    """UnsupportedCase for an MXNetError that is one of REFUSALS, else None."""
    text = (str(exc).strip().splitlines() or [repr(exc)])[-1]
    if any(refusal in text for refusal in REFUSALS):
        return UnsupportedCase("mxnet %s on the CPU refuses this case: %s" % (mx.__version__, text))
    return None


def _forward(net, arrays, x, states):
    try:
        y, h, c = net.forward(arrays, x, states)
        return y, h, c, y.asnumpy(), h.asnumpy(), c.asnumpy()  # asnumpy: errors surface here
    except mx.base.MXNetError as exc:
        raise _refused(exc) or exc


def _key(k, d, name):
    return "L%d.%d.%s" % (k, d, name)


def _stack_states(meta, arrays, count, dt):
    """(h0, c0) as (layers * directions, B, size) arrays: the given state or zeros."""
    batch = arrays["x"].shape[0]
    if "h0_0" in arrays:
        h = np.stack([arrays["h0_%d" % i] for i in range(count)])
        c = np.stack([arrays["c0_%d" % i] for i in range(count)])
    else:
        h = np.zeros((count, batch, meta["output_size"]))
        c = np.zeros((count, batch, meta["hidden_size"]))
    return [nd.array(h, dtype=dt), nd.array(c, dtype=dt)]  # a list: gluon adds sequence_length to it


def _lengths(arrays, dt):
    return nd.array(arrays["lengths"], dtype=dt)


class Net(object):
    """One built network per shape signature; ``params`` maps "L<k>.<d>.<name>" to its Parameter."""

    def __init__(self, meta):
        self.meta = meta
        self.dt = _dtype(meta)
        self.layers = meta["layers"]
        self.dirs = 2 if meta["direction"] == "bidirectional" else 1
        self.params = {}

    def load(self, arrays):
        for key, parameter in self.params.items():
            if key not in arrays:
                raise ValueError("arrays: expected %r for MXNet parameter %r" % (key, parameter.name))
            value = np.asarray(arrays[key])
            if value.shape != parameter.shape:
                raise ValueError("%s: expected shape %s, got %s" % (key, parameter.shape, value.shape))
            parameter.set_data(nd.array(value, dtype=self.dt))

    def weight_gradients(self):
        return dict(("param." + key.split(".", 2)[2], p.grad().asnumpy()) for key, p in self.params.items()
                    if key.startswith("L0.0."))


class GluonNet(Net):
    """gluon.rnn.LSTM, batch-major (layout "NTC")."""

    def __init__(self, meta):
        Net.__init__(self, meta)
        if meta["direction"] == "reverse":
            raise UnsupportedCase("gluon.rnn.LSTM runs forward or bidirectional, it has no backward-only layer")
        kwargs = dict(num_layers=self.layers, layout="NTC", bidirectional=self.dirs == 2,
                      input_size=meta["input_size"], dtype=self.dt, use_sequence_length=bool(meta["lengths"]))
        if meta["proj"]:
            kwargs["projection_size"] = meta["output_size"]
        if meta["cell_clip"] is not None:
            kwargs.update(state_clip_min=-float(meta["cell_clip"]), state_clip_max=float(meta["cell_clip"]))
        self.net = mx.gluon.rnn.LSTM(meta["hidden_size"], **kwargs)
        self.net.initialize()  # every shape is known (input_size given): no deferred initialization
        names = NAMES + (("h2r_weight",) if meta["proj"] else ())
        for k in range(self.layers):
            for d in range(self.dirs):
                for name in names:
                    self.params[_key(k, d, name)] = getattr(self.net, "%s%d_%s" % ("lr"[d], k, name))
        self.cells = None

    def forward(self, arrays, x, states):
        if self.meta["lengths"]:
            y, (h, c) = self.net(x, states, sequence_length=_lengths(arrays, self.dt))
        else:
            y, (h, c) = self.net(x, states)
        return y, h, c

    def step_cells(self):
        """The layer as LSTMCells sharing its parameters: MXNet's own LSTM._unfuse()."""
        if self.cells is None:
            if self.meta["proj"] or self.meta["cell_clip"] is not None:
                raise UnsupportedCase("gluon.rnn.LSTM._unfuse() supports neither a projection nor a state clip")
            self.cells = self.net._unfuse()
        return self.cells


class RNNOpNet(Net):
    """mx.nd.RNN(mode="lstm") on the flat parameter vector, time-major."""

    def __init__(self, meta):
        Net.__init__(self, meta)
        if meta["direction"] == "reverse":
            raise UnsupportedCase("the RNN operator runs forward or bidirectional, it has no backward-only mode")
        self.flat = None

    def load(self, arrays):
        self.flat = nd.array(arrays["flat"], dtype=self.dt)

    def forward(self, arrays, x, states):
        meta = self.meta
        kwargs = dict(state_size=meta["hidden_size"], num_layers=self.layers, bidirectional=self.dirs == 2,
                      mode="lstm", state_outputs=True)
        if meta["proj"]:
            kwargs["projection_size"] = meta["output_size"]
        if meta["cell_clip"] is not None:
            kwargs.update(lstm_state_clip_min=-float(meta["cell_clip"]), lstm_state_clip_max=float(meta["cell_clip"]))
        inputs = [nd.swapaxes(x, 0, 1), self.flat, states[0], states[1]]
        if meta["lengths"]:
            inputs.append(_lengths(arrays, self.dt))
            kwargs["use_sequence_length"] = True
        y, h, c = nd.RNN(*inputs, **kwargs)
        return nd.swapaxes(y, 0, 1), h, c

    def weight_gradients(self):
        return {"param.flat": self.flat.grad.asnumpy()}


class CellNet(Net):
    """gluon.rnn.LSTMCell per layer and direction, unrolled over the batch-major sequence."""

    def __init__(self, meta):
        Net.__init__(self, meta)
        self.reverse = meta["direction"] == "reverse"
        self.stack = mx.gluon.rnn.SequentialRNNCell()
        size = meta["input_size"]
        for k in range(self.layers):
            cells = []
            for d in range(self.dirs):
                cell = mx.gluon.rnn.LSTMCell(meta["hidden_size"], input_size=size,
                                             activation=_activation(meta["activation"]),
                                             recurrent_activation=_gate(meta["recurrent_activation"]),
                                             prefix="l%d_%s_" % (k, "lr"[d]))
                cells.append(cell)
                for name in NAMES:
                    self.params[_key(k, d, name)] = getattr(cell, name)
            self.stack.add(cells[0] if self.dirs == 1 else mx.gluon.rnn.BidirectionalCell(cells[0], cells[1]))
            size = meta["hidden_size"] * self.dirs
        self.stack.initialize()
        self.stack.cast(self.dt)
        self.cells = [self.stack[0]] if self.dirs == 1 else None

    def forward(self, arrays, x, states):
        steps = x.shape[1]
        flat_states = []
        for i in range(states[0].shape[0]):
            flat_states += [states[0][i], states[1][i]]
        valid = _lengths(arrays, self.dt) if self.meta["lengths"] else None
        if self.reverse:  # what BidirectionalCell does for its backward cell (rnn_cell.py, _reverse_sequences)
            x = self._reverse(x, valid)
        y, out_states = self.stack.unroll(steps, x, begin_state=flat_states, layout="NTC", merge_outputs=True,
                                          valid_length=valid)
        if self.reverse:
            y = self._reverse(y, valid)
        h = nd.stack(*out_states[0::2])
        c = nd.stack(*out_states[1::2])
        return y, h, c

    @staticmethod
    def _reverse(x, valid):
        tnc = nd.swapaxes(x, 0, 1)
        if valid is None:
            out = nd.SequenceReverse(tnc)
        else:
            out = nd.SequenceReverse(tnc, sequence_length=valid, use_sequence_length=True)
        return nd.swapaxes(out, 0, 1)

    def step_cells(self):
        if self.cells is None:
            raise UnsupportedCase("single steps run one forward layer")
        return self.cells[0]


APIS = {"gluon": GluonNet, "rnn_op": RNNOpNet, "cell": CellNet}


def _signature(meta):
    keys = ("api", "dtype", "input_size", "hidden_size", "output_size", "proj", "peepholes", "activation",
            "recurrent_activation", "cell_clip", "direction", "layers", "lengths")
    return tuple(meta.get(k) for k in keys)


def _net(meta):
    if meta.get("peepholes"):
        raise UnsupportedCase("MXNet's LSTMs have no peepholes")
    if meta.get("proj_clip") is not None:
        raise UnsupportedCase("MXNet's projection has no clip")
    if meta["api"] != "cell" and (meta["activation"] != "tanh" or meta["recurrent_activation"] != "sigmoid"):
        raise UnsupportedCase("the fused RNN operator has a fixed tanh and sigmoid")
    if meta["api"] == "cell" and (meta["proj"] or meta["cell_clip"] is not None):
        raise UnsupportedCase("gluon.rnn.LSTMCell has neither a projection nor a state clip")
    key = _signature(meta)
    net = _NETS.get(key)
    if net is None:
        net = _NETS[key] = APIS[meta["api"]](meta)
    return net


def op_run(meta, arrays):
    net = _net(meta)
    net.load(arrays)
    x = nd.array(arrays["x"], dtype=net.dt)
    states = _stack_states(meta, arrays, net.layers * net.dirs, net.dt)
    _, _, _, y, h, c = _forward(net, arrays, x, states)
    out = {"y": y}
    for i in range(h.shape[0]):
        out["h_%d" % i], out["c_%d" % i] = h[i], c[i]
    return {}, out


def op_gradients(meta, arrays):
    """Gradients of sum(y * dy) + sum(h_T * dh) + sum(c_T * dc) by autograd, for one layer and
    direction: x, h0, c0 and every native weight ("param.<name>")."""
    net = _net(meta)
    net.load(arrays)
    dt = net.dt
    x = nd.array(arrays["x"], dtype=dt)
    h0, c0 = _stack_states(meta, arrays, 1, dt)
    variables = [x, h0, c0]
    if isinstance(net, RNNOpNet):
        variables.append(net.flat)
    for v in variables:
        v.attach_grad()
    with mx.autograd.record():
        y, h, c = _forward(net, arrays, x, [h0, c0])[:3]
        loss = ((y * nd.array(arrays["dy"], dtype=dt)).sum() + (h[0] * nd.array(arrays["dh"], dtype=dt)).sum()
                + (c[0] * nd.array(arrays["dc"], dtype=dt)).sum())
    try:
        loss.backward()
        mx.nd.waitall()
    except mx.base.MXNetError as exc:
        raise _refused(exc) or exc
    out = {"x": x.grad.asnumpy(), "h0": h0.grad.asnumpy()[0], "c0": c0.grad.asnumpy()[0]}
    out.update(net.weight_gradients())
    return {}, out


def op_steps(meta, arrays):
    """One forward layer driven one step at a time through LSTMCell with each returned state fed
    back (a greedy decoding loop), in one request."""
    net = _net(meta)
    if net.layers != 1 or net.dirs != 1 or meta["direction"] != "forward" or meta["lengths"]:
        raise UnsupportedCase("single steps run one forward layer without lengths")
    net.load(arrays)
    cell = net.step_cells()
    dt = net.dt
    x = nd.array(arrays["x"], dtype=dt)
    state = [nd.array(arrays["h0_0"], dtype=dt), nd.array(arrays["c0_0"], dtype=dt)]
    ys = []
    for t in range(x.shape[1]):
        y, state = cell(x[:, t], state)
        ys.append(y.asnumpy())
    return {}, {"y": np.stack(ys, axis=1), "h_0": state[0].asnumpy(), "c_0": state[1].asnumpy()}


def op_describe(meta, arrays):
    """What the network of a configuration holds: MXNet's parameter names and shapes."""
    net = _net(dict(meta, lengths=False))
    if isinstance(net, RNNOpNet):
        return {"parameters": {}}, {}
    return {"parameters": dict((key, [p.name, list(p.shape)]) for key, p in net.params.items())}, {}


HANDLERS = {"run": op_run, "gradients": op_gradients, "steps": op_steps, "describe": op_describe}


if __name__ == "__main__":
    sys.exit(serve(HANDLERS, hello))
