"""Chainer 7.8 worker: serves LSTM conformance cases over stdin/stdout (see adapters/worker_protocol.py).

A standalone program for CPython 3.8 (Chainer 7.8.1 with numpy < 2; valid Python 3.6): it uses only
the standard library, numpy and chainer, and imports nothing from the project.  File descriptor 1
is pointed at stderr before chainer is imported.

APIs ("api" in a request):
  lstm     chainer.links.LSTM, the stateful link: one call per time step, its state carried by the
           link (``set_state``, ``reset_state``); ragged batches as Chainer runs them, the rows
           sorted by length and each step given only the rows still running (the link keeps the
           state of the others); stacks chain links.  Single steps: chainer.links.StatelessLSTM
           with the state passed in and out.
  nstep    chainer.links.NStepLSTM / NStepBiLSTM on a list of variable-length sequences.
  f_lstm   a user's LSTM built on chainer.functions.lstm: F.linear for the input and recurrent
           products, then F.lstm (the "flstm" op; adapters/chainer_adapter.py wraps it as a native
           callable for detect and check).
The arrays arrive in Chainer's packing (the host converts with reference.layout / adapters.packings):
for "lstm", upward/W (4H, D), upward/b (4H), lateral/W (4H, H) with the 4H axis **unit-major**, gate
order a, i, f, o (F.lstm reshapes its input to (B, H, 4)); for "nstep", w0 .. w7 (H, D) / (H, H) and
b0 .. b7 (H) per layer and direction, gates i, f, a, o.
"""

import sys

from worker_framing import UnsupportedCase, serve  # the shared framing (a sibling module)


chainer = None
F = None
L = None
np = None
_NETS = {}
DTYPES = ("float32", "float64", "float16")


def hello():
    global chainer, F, L, np
    import numpy
    np = numpy
    import warnings
    warnings.simplefilter("ignore")
    import chainer as chainer_module
    chainer = chainer_module
    import chainer.functions as functions
    import chainer.links as links
    F, L = functions, links
    chainer.config.train = False
    chainer.config.use_ideep = "never"
    return {"framework": "chainer", "version": chainer.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0]}


def _dtype(meta):
    if meta["dtype"] not in DTYPES:
        raise UnsupportedCase("chainer: no %s arrays in numpy (float32, float64, float16 are)" % meta["dtype"])
    return np.dtype(meta["dtype"])


def _key(k, d, name):
    return "L%d.%d.%s" % (k, d, name)


def _check(meta):
    if meta.get("peepholes") or meta.get("proj") or meta.get("cell_clip") is not None \
            or meta.get("proj_clip") is not None:
        raise UnsupportedCase("Chainer's LSTMs have no peepholes, projection or clip")
    if meta["activation"] != "tanh" or meta["recurrent_activation"] != "sigmoid":
        raise UnsupportedCase("chainer.functions.lstm has a fixed tanh and sigmoid")


def _set(param, value, dtype):
    value = np.asarray(value, dtype)
    if param.array is None or param.array.shape != value.shape or param.array.dtype != value.dtype:
        raise ValueError("%s: expected a %s array of shape %s, got %s %s" % (
            param.name, None if param.array is None else param.array.dtype,
            None if param.array is None else param.array.shape, value.dtype, value.shape))
    param.array[...] = value


def _lengths(arrays):
    x = arrays["x"]
    if "lengths" in arrays:
        return [int(n) for n in arrays["lengths"]]
    return [x.shape[1]] * x.shape[0]


def _states(meta, arrays, count, dtype):
    """[(h0, c0)] per layer and direction, or None (zeros)."""
    if "h0_0" not in arrays:
        return None
    return [(np.asarray(arrays["h0_%d" % i], dtype), np.asarray(arrays["c0_%d" % i], dtype)) for i in range(count)]


def _variable(array, grad):
    return chainer.Variable(array, requires_grad=grad)


# ------------------------------------------------------------------------------------------------
# chainer.links.LSTM, one call per step

class LinkNet(object):
    """A stack of chainer.links.LSTM (one per layer) for one shape signature."""

    def __init__(self, meta):
        _check(meta)
        if meta["direction"] != "forward":
            raise UnsupportedCase("chainer.links.LSTM steps forward only (NStepBiLSTM has the backward direction)")
        self.dtype = _dtype(meta)
        self.links = []
        size = meta["input_size"]
        with chainer.using_config("dtype", self.dtype):  # parameters are created in this dtype
            for _ in range(meta["layers"]):
                self.links.append(L.LSTM(size, meta["hidden_size"]))
                size = meta["hidden_size"]

    def load(self, arrays):
        for k, link in enumerate(self.links):
            _set(link.upward.W, arrays[_key(k, 0, "upward/W")], self.dtype)
            _set(link.upward.b, arrays[_key(k, 0, "upward/b")], self.dtype)
            _set(link.lateral.W, arrays[_key(k, 0, "lateral/W")], self.dtype)

    def params(self):
        return [(name, p) for link in self.links[:1] for name, p in
                (("upward/W", link.upward.W), ("upward/b", link.upward.b), ("lateral/W", link.lateral.W))]

    def start(self, states, batch, ragged):
        """Set (or reset) every link's state: a given state, zeros for ragged batches (the link
        must know every row from the first step on), else reset (the link starts from zeros)."""
        variables = []
        for k, link in enumerate(self.links):
            if states is not None:
                h, c = (_variable(a, True) for a in states[k])
                link.set_state(c, h)
                variables.append((h, c))
            elif ragged:
                zeros = np.zeros((batch, link.state_size), self.dtype)
                link.set_state(_variable(zeros.copy(), False), _variable(zeros, False))
            else:
                link.reset_state()
        return variables

    def run(self, x, lengths, states, grad=False):
        """Runs the sequence (rows sorted by length, longest first, as Chainer's ragged batches must
        be); returns (y list per step of the running rows' outputs, order, sorted lengths, state
        variables, x variables)."""
        order = sorted(range(len(lengths)), key=lambda b: -lengths[b])
        sorted_lengths = [lengths[b] for b in order]
        ragged = sorted_lengths[-1] < x.shape[1]
        given = None if states is None else [(h[order], c[order]) for h, c in states]
        variables = self.start(given, x.shape[0], ragged)
        xs, ys = [], []
        for t in range(x.shape[1]):
            rows = sum(1 for n in sorted_lengths if n > t)
            if rows == 0:
                break
            step = _variable(np.ascontiguousarray(x[order[:rows], t]), grad)
            xs.append(step)
            for link in self.links:
                step = link(step)
            ys.append(step)
        return ys, order, variables, xs


def _pad_steps(ys, order, batch, steps, width, dtype):
    """The outputs of the running rows per step -> (B, T, width) in the original row order, zeros
    after each sequence's end (outputs there do not exist in Chainer)."""
    out = np.zeros((batch, steps, width), dtype)
    for t, y in enumerate(ys):
        rows = y.shape[0]
        out[np.asarray(order[:rows]), t] = y.array if hasattr(y, "array") else y
    return out


def _unsort(array, order):
    out = np.empty_like(array)
    out[np.asarray(order)] = array
    return out


# ------------------------------------------------------------------------------------------------
# chainer.links.NStepLSTM / NStepBiLSTM

class NStepNet(object):
    def __init__(self, meta):
        _check(meta)
        if meta["direction"] == "reverse":
            raise UnsupportedCase("NStepLSTM runs forward, NStepBiLSTM both directions: no backward-only layer")
        self.dtype = _dtype(meta)
        self.dirs = 2 if meta["direction"] == "bidirectional" else 1
        cls = L.NStepBiLSTM if self.dirs == 2 else L.NStepLSTM
        with chainer.using_config("dtype", self.dtype):
            self.link = cls(meta["layers"], meta["input_size"], meta["hidden_size"], 0.0)
        self.layers = meta["layers"]

    def load(self, arrays):
        for index, weights in enumerate(self.link):
            k, d = divmod(index, self.dirs)
            for j in range(8):
                _set(getattr(weights, "w%d" % j), arrays[_key(k, d, "w%d" % j)], self.dtype)
                _set(getattr(weights, "b%d" % j), arrays[_key(k, d, "b%d" % j)], self.dtype)

    def params(self):
        weights = self.link[0]
        return [(name, getattr(weights, name)) for j in range(8) for name in ("w%d" % j, "b%d" % j)]


_APIS = {"lstm": LinkNet, "nstep": NStepNet}


def _net(meta):
    keys = ("api", "dtype", "input_size", "hidden_size", "direction", "layers", "peepholes", "proj",
            "cell_clip", "proj_clip", "activation", "recurrent_activation")
    key = tuple(meta.get(k) for k in keys)
    net = _NETS.get(key)
    if net is None:
        net = _NETS[key] = _APIS[meta["api"]](meta)
    return net


def _forward(meta, net, arrays, grad=False):
    """Runs a case; returns (y (B, T, dirs * H), [(h, c)] per layer and direction as Variables,
    the variables of x, h0, c0 for gradients)."""
    dtype = net.dtype
    x = np.asarray(arrays["x"], dtype)
    batch, steps = x.shape[0], x.shape[1]
    lengths = _lengths(arrays)
    if isinstance(net, LinkNet):
        states = _states(meta, arrays, len(net.links), dtype)
        ys, order, state_vars, xs = net.run(x, lengths, states, grad)
        y = _pad_steps(ys, order, batch, steps, meta["hidden_size"], dtype)
        finals = [(link.h, link.c) for link in net.links]
        finals = [(_unsort(h.array, order), _unsort(c.array, order)) for h, c in finals] if not grad else \
            [(h, c) for h, c in finals]
        return y, finals, (xs, ys, order, state_vars)
    count = net.layers * net.dirs
    states = _states(meta, arrays, count, dtype)
    if states is None:
        h0 = np.zeros((count, batch, meta["hidden_size"]), dtype)
        c0 = h0.copy()
    else:
        h0 = np.stack([h for h, _ in states])
        c0 = np.stack([c for _, c in states])
    if min(lengths) < 1:
        raise UnsupportedCase("chainer %s: NStepLSTM fails on a sequence of length 0 (IndexError: tuple index "
                              "out of range in n_step_lstm_base)" % chainer.__version__)
    hx, cx = _variable(h0, grad), _variable(c0, grad)
    xs = [_variable(np.ascontiguousarray(x[b, :n]), grad) for b, n in enumerate(lengths)]
    hy, cy, ys = net.link(hx, cx, xs)
    y = np.zeros((batch, steps, net.dirs * meta["hidden_size"]), dtype)
    for b, n in enumerate(lengths):
        y[b, :n] = ys[b].array
    finals = [(hy.array[i], cy.array[i]) for i in range(count)]
    return y, finals, (xs, ys, hy, cy, hx, cx)


def op_run(meta, arrays):
    net = _net(meta)
    net.load(arrays)
    y, finals, _ = _forward(meta, net, arrays)
    out = {"y": y}
    for i, (h, c) in enumerate(finals):
        out["h_%d" % i], out["c_%d" % i] = np.asarray(h), np.asarray(c)
    return {}, out


def op_gradients(meta, arrays):
    """Gradients of sum(y * dy) + sum(h_T * dh) + sum(c_T * dc) by Chainer's backward, for one
    layer and direction: x, h0, c0 and every native weight ("param.<name>")."""
    net = _net(meta)
    net.load(arrays)
    for _, p in net.params():
        p.cleargrad()
    dtype = net.dtype
    dy, dh, dc = (np.asarray(arrays[k], dtype) for k in ("dy", "dh", "dc"))
    with chainer.using_config("train", True):
        _, _, parts = _forward(meta, net, arrays, grad=True)
        if isinstance(net, LinkNet):
            xs, ys, order, state_vars = parts
            link = net.links[0]
            order = np.asarray(order)
            loss = F.sum(link.h * dh[order]) + F.sum(link.c * dc[order])
            for t, y in enumerate(ys):
                loss = loss + F.sum(y * dy[order[:y.shape[0]], t])
            loss.backward()
            gx = np.zeros(arrays["x"].shape, dtype)
            for t, v in enumerate(xs):
                gx[order[:v.shape[0]], t] = v.grad
            h0, c0 = state_vars[0]
            out = {"x": gx, "h0": _unsort(h0.grad, order), "c0": _unsort(c0.grad, order)}
        else:
            xs, ys, hy, cy, hx, cx = parts
            loss = F.sum(hy[0] * dh) + F.sum(cy[0] * dc)
            for b, y in enumerate(ys):
                loss = loss + F.sum(y * dy[b, :y.shape[0]])
            loss.backward()
            gx = np.zeros(arrays["x"].shape, dtype)
            for b, v in enumerate(xs):
                gx[b, :v.shape[0]] = v.grad
            out = {"x": gx, "h0": hx.grad[0], "c0": cx.grad[0]}
    for name, p in net.params():
        out["param." + name] = np.asarray(p.grad)
    return {}, out


def _stateless(meta):
    key = ("stateless", meta["dtype"], meta["input_size"], meta["hidden_size"])
    link = _NETS.get(key)
    if link is None:
        with chainer.using_config("dtype", _dtype(meta)):
            link = _NETS[key] = L.StatelessLSTM(meta["input_size"], meta["hidden_size"])
    return link


def op_steps(meta, arrays):
    """One forward layer, one step at a time through chainer.links.StatelessLSTM with the state
    passed in and the returned (c, h) fed back (a greedy decoding loop), in one request."""
    _check(meta)
    if meta["layers"] != 1 or meta["direction"] != "forward" or meta["lengths"]:
        raise UnsupportedCase("single steps run one forward layer without lengths")
    dtype = _dtype(meta)
    link = _stateless(meta)
    _set(link.upward.W, arrays[_key(0, 0, "upward/W")], dtype)
    _set(link.upward.b, arrays[_key(0, 0, "upward/b")], dtype)
    _set(link.lateral.W, arrays[_key(0, 0, "lateral/W")], dtype)
    x = np.asarray(arrays["x"], dtype)
    h, c = np.asarray(arrays["h0_0"], dtype), np.asarray(arrays["c0_0"], dtype)
    ys = []
    for t in range(x.shape[1]):
        c, h = link(c, h, x[:, t])
        ys.append(h.array)
    return {}, {"y": np.stack(ys, axis=1), "h_0": h.array, "c_0": c.array}


def op_stream(meta, arrays):
    """The stateful link fed chunk by chunk (its state carried by the link between calls), then
    reset_state() and the first chunk again."""
    meta = dict(meta, lengths=False)
    net = _net(meta)
    if not isinstance(net, LinkNet) or len(net.links) != 1:
        raise UnsupportedCase("streaming runs one chainer.links.LSTM")
    net.load(arrays)
    link = net.links[0]
    dtype = net.dtype
    x = np.asarray(arrays["x"], dtype)
    if "h0_0" in arrays:
        link.set_state(_variable(np.asarray(arrays["c0_0"], dtype), False),
                       _variable(np.asarray(arrays["h0_0"], dtype), False))
    else:
        link.reset_state()
    out, start = {}, 0
    chunks = [int(n) for n in meta["chunks"]]
    for k, n in enumerate(chunks):
        out["y_%d" % k] = np.stack([link(x[:, t]).array for t in range(start, start + n)], axis=1)
        out["h_%d" % k], out["c_%d" % k] = link.h.array, link.c.array
        start += n
    link.reset_state()
    out["y_reset"] = np.stack([link(x[:, t]).array for t in range(chunks[0])], axis=1)
    out["h_reset"], out["c_reset"] = link.h.array, link.c.array
    return {}, out


def op_flstm(meta, arrays):
    """A native callable on chainer.functions.lstm (the contract of detect and check): per step
    lstm_in = F.linear(x_t, kernel, bias) + F.linear(h, recurrent_kernel) with the kernels as the
    callable receives them (Chainer's Linear orientation (4H, D), (4H, H)), then
    c, h = F.lstm(c, lstm_in).  Any failure is reported as it is (the callable raised)."""
    dtype = np.dtype(meta.get("dtype", "float32"))
    x = np.asarray(arrays["x"], dtype)
    h, c = np.asarray(arrays["h0"], dtype), np.asarray(arrays["c0"], dtype)
    kernel, recurrent, bias = (np.asarray(arrays[k], dtype) for k in ("kernel", "recurrent_kernel", "bias"))
    ys = []
    for t in range(x.shape[1]):
        lstm_in = F.linear(x[:, t], kernel, bias) + F.linear(h, recurrent)
        c, h = F.lstm(c, lstm_in)
        c, h = c.array, h.array
        ys.append(h)
    return {}, {"y": np.stack(ys, axis=1), "h": h, "c": c}


HANDLERS = {"run": op_run, "gradients": op_gradients, "steps": op_steps, "stream": op_stream,
            "flstm": op_flstm}


if __name__ == "__main__":
    sys.exit(serve(HANDLERS, hello))
