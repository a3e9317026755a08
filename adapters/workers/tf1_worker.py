"""TensorFlow 1.15 worker: serves LSTM conformance cases over stdin/stdout (see
adapters/worker_protocol.py).

A standalone program for CPython 3.7 (TF 1.15's newest wheel; 3.6 works too): it uses only the
standard library, numpy and tensorflow (and keras 2.3.1 for the recurrent-activation fact), and
imports nothing from the project.  File descriptor 1 is pointed at stderr before tensorflow is
imported, so the framework's chatter never corrupts the protocol.

APIs ("api" in a request):
  dynamic_rnn    tf.nn.rnn_cell.LSTMCell with tf.nn.dynamic_rnn / bidirectional_dynamic_rnn,
                 MultiRNNCell for stacks
  static_rnn     the same cell with tf.nn.static_rnn / static_bidirectional_rnn (static T)
  fused          tf.contrib.rnn.LSTMBlockFusedCell (time-major), TimeReversedFusedRNN backwards
  block          tf.contrib.rnn.LSTMBlockCell with tf.nn.dynamic_rnn (single steps, stateful)
The arrays arrive in TF's packing (the host converts with reference.layout): kernel (D + P, 4H)
applied to concat([x, h]), bias (4H), gate order i, j, f, o; w_i_diag, w_f_diag, w_o_diag (H);
projection (H, P).  One graph (and session) is built per shape signature and reused: weights are
loaded into its variables through assign ops fed from placeholders.
"""

import json
import os
import sys
import time

from worker_framing import UnsupportedCase, serve  # the shared framing (a sibling module)


# ------------------------------------------------------------------------------------------------
# TensorFlow 1.15

tf = None
np = None
_NETS = {}
_STATS = {"graphs_built": 0, "graphs_imported": 0, "build_seconds": 0.0}


def hello():
    global tf, np
    import numpy
    np = numpy
    import warnings
    warnings.simplefilter("ignore")
    import tensorflow
    tf = tensorflow
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    try:
        from tensorflow.python.util import deprecation
        deprecation._PRINT_DEPRECATION_WARNINGS = False
    except Exception:
        pass
    return {"framework": "tensorflow", "version": tf.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0]}


DTYPES = {"float32": "float32", "float64": "float64", "float16": "float16", "bfloat16": "bfloat16"}
BLOCK_DTYPES = ("float32", "float16")


def _tf_dtype(meta):
    name = meta["dtype"]
    if meta["api"] in ("fused", "block") and name not in BLOCK_DTYPES:
        raise UnsupportedCase("tensorflow %s: the LSTMBlock kernels are registered for %s only, not %s"
                              % (tf.__version__, "/".join(BLOCK_DTYPES), name))
    if name not in DTYPES:
        raise UnsupportedCase("dtype %r" % name)
    return tf.as_dtype(DTYPES[name])


def _np_dtype(meta):
    if meta["dtype"] == "bfloat16":
        return tf.bfloat16.as_numpy_dtype
    return np.dtype(meta["dtype"])


def _activation(name):
    if name == "tanh":
        return None  # the cell's default, math_ops.tanh
    if name == "relu":
        return tf.nn.relu
    if name == "linear":
        return tf.identity
    raise UnsupportedCase("activation %r" % name)


def make_cell(meta, dtype, name, api=None):
    """One cell of the requested API, configured from the case's spec (forget_bias always passed
    explicitly: the TF default is 1.0)."""
    api = api or meta["api"]
    forget_bias = float(meta["forget_bias"])
    if api in ("dynamic_rnn", "static_rnn"):
        return tf.nn.rnn_cell.LSTMCell(
            meta["hidden_size"], use_peepholes=bool(meta["peepholes"]), cell_clip=meta["cell_clip"],
            num_proj=meta["output_size"] if meta["proj"] else None, proj_clip=meta["proj_clip"],
            forget_bias=forget_bias, activation=_activation(meta["activation"]), dtype=dtype, name=name)
    if meta["proj"] or meta["proj_clip"] is not None or meta["activation"] != "tanh":
        raise UnsupportedCase("tf.contrib.rnn LSTMBlock cells have no projection and a fixed tanh")
    from tensorflow.contrib import rnn as contrib_rnn
    cls = contrib_rnn.LSTMBlockFusedCell if api == "fused" else contrib_rnn.LSTMBlockCell
    return cls(meta["hidden_size"], forget_bias=forget_bias, cell_clip=meta["cell_clip"],
               use_peephole=bool(meta["peepholes"]), dtype=dtype, name=name)


def _reverse(x, lengths, axis):
    """What bidirectional_dynamic_rnn does for its backward half (rnn.py, _reverse)."""
    if lengths is None:
        return tf.reverse(x, axis=[axis])
    return tf.reverse_sequence(x, lengths, seq_axis=axis, batch_axis=1 - axis)


def run_one(api, cell, x, lengths, state, dtype, reverse):
    """One direction over batch-major x: (y batch-major aligned with the inputs, (h_T, c_T))."""
    init = None if state is None else tf.nn.rnn_cell.LSTMStateTuple(state[1], state[0])
    if api == "fused":
        from tensorflow.contrib import rnn as contrib_rnn
        xt = tf.transpose(x, [1, 0, 2])
        runner = contrib_rnn.TimeReversedFusedRNN(cell) if reverse else cell
        fused_init = None if state is None else (state[1], state[0])  # (cell state, output)
        yt, (c, h) = runner(xt, initial_state=fused_init, dtype=dtype, sequence_length=lengths)
        return tf.transpose(yt, [1, 0, 2]), (h, c)
    if reverse:
        x = _reverse(x, lengths, 1)
    if api == "static_rnn":
        ys, final = tf.nn.static_rnn(cell, tf.unstack(x, axis=1), initial_state=init, dtype=dtype,
                                     sequence_length=lengths)
        y = tf.stack(ys, axis=1)
    else:
        y, final = tf.nn.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=init, dtype=dtype)
    if reverse:
        y = _reverse(y, lengths, 1)
    return y, (final.h, final.c)


def run_bidirectional(api, fw, bw, x, lengths, states, dtype):
    init = [None if s is None else tf.nn.rnn_cell.LSTMStateTuple(s[1], s[0]) for s in states]
    if api == "dynamic_rnn" or api == "block":
        (y_fw, y_bw), (s_fw, s_bw) = tf.nn.bidirectional_dynamic_rnn(
            fw, bw, x, sequence_length=lengths, initial_state_fw=init[0], initial_state_bw=init[1],
            dtype=dtype)
        return tf.concat([y_fw, y_bw], -1), [(s_fw.h, s_fw.c), (s_bw.h, s_bw.c)]
    if api == "static_rnn":
        ys, s_fw, s_bw = tf.nn.static_bidirectional_rnn(
            fw, bw, tf.unstack(x, axis=1), initial_state_fw=init[0], initial_state_bw=init[1],
            dtype=dtype, sequence_length=lengths)
        return tf.stack(ys, axis=1), [(s_fw.h, s_fw.c), (s_bw.h, s_bw.c)]
    y_fw, f_fw = run_one(api, fw, x, lengths, states[0], dtype, False)
    y_bw, f_bw = run_one(api, bw, x, lengths, states[1], dtype, True)
    return tf.concat([y_fw, y_bw], -1), [f_fw, f_bw]


def _native_name(variable):
    """The variable's name in the host's "tf1" packing: the last part of its TF name, and
    "projection/kernel" for the projection (adapters/packings.py)."""
    name = variable.op.name
    if name.endswith("projection/kernel"):
        return "projection/kernel"
    return name.rsplit("/", 1)[-1]


def _cache_path(key):
    """Where the graph of signature ``key`` is cached, or None (no cache directory configured).
    The directory is per TF version and per content of this script, so a changed builder never
    meets graphs built by an older one."""
    root = os.environ.get("LSTM_CONFORMANCE_TF1_GRAPH_CACHE")
    if not root:
        return None
    import hashlib
    if "script" not in _CACHE_ID:
        with open(os.path.abspath(__file__), "rb") as f:
            _CACHE_ID["script"] = hashlib.sha1(f.read()).hexdigest()[:12]
    digest = hashlib.sha1(json.dumps(key).encode("utf-8")).hexdigest()
    return os.path.join(root, "tf-%s-%s" % (tf.__version__, _CACHE_ID["script"]), digest)


_CACHE_ID = {}


def _to_names(value):
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return {"s": value}
    if isinstance(value, dict):
        return {"d": dict((k, _to_names(v)) for k, v in value.items())}
    if isinstance(value, (list, tuple)):
        return [_to_names(v) for v in value]
    return {"g": value.name}  # a tensor or an operation


def _from_names(graph, value):
    if isinstance(value, list):
        return [_from_names(graph, v) for v in value]
    if isinstance(value, dict):
        if "s" in value:
            return value["s"]
        if "g" in value:
            return graph.as_graph_element(value["g"])
        return dict((k, _from_names(graph, v)) for k, v in value["d"].items())
    return value


class Net(object):
    """A graph and session for one shape signature.  Subclasses build; this class loads weights
    (assign ops fed from placeholders) and keeps the variables by "L<k>.<d>.<native name>".

    ``HANDLES`` names the attributes (tensors, ops, and lists / tuples / dicts of them) that the
    ops use after building; with a graph cache directory the built GraphDef and these handles
    (by name) are saved, and a later worker imports the GraphDef instead of building again
    (``tf.import_graph_def`` is several times cheaper than constructing the ops in Python)."""

    HANDLES = ("feeds", "load_op", "variables")

    def __init__(self, meta, key):
        self.meta = meta
        self.graph = tf.Graph()
        self.cells = []  # layer-major, forward before backward
        self.imported = False
        path = _cache_path(key)
        with self.graph.as_default():
            self.dtype = _tf_dtype(meta)
            if path is not None:
                self.imported = self._import(path)
            if not self.imported:
                self.build(meta)
                variables = {}
                for index, cell in enumerate(self.cells):
                    k, d = divmod(index, self.dirs)
                    for v in cell.variables:
                        variables["L%d.%d.%s" % (k, d, _native_name(v))] = v
                self.feeds, assigns = {}, []
                for key_, v in sorted(variables.items()):
                    ph = tf.compat.v1.placeholder(v.dtype.base_dtype, v.shape, name="load")
                    self.feeds[key_] = ph
                    assigns.append(tf.compat.v1.assign(v, ph))
                self.variables = dict((k, v.op.name) for k, v in variables.items())
                self.load_op = tf.group(*assigns)
                # Every variable is assigned before use (the weights by load(), the state
                # variables of StatefulNet by its set / reset ops): no initializer run is needed.
                if path is not None:
                    self._export(path)
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=2)
        if os.environ.get("LSTM_CONFORMANCE_TF1_GRAPPLER", "1") == "0":
            config.graph_options.rewrite_options.disable_meta_optimizer = True
        self.session = tf.compat.v1.Session(graph=self.graph, config=config)

    def _handles(self):
        names = set(Net.HANDLES) | set(self.HANDLES)
        return dict((name, _to_names(getattr(self, name))) for name in sorted(names))

    def _export(self, path):
        try:
            if not os.path.isdir(os.path.dirname(path)):
                os.makedirs(os.path.dirname(path))
            for suffix, data in ((".pb", self.graph.as_graph_def().SerializeToString()),
                                 (".json", json.dumps(self._handles()).encode("utf-8"))):
                tmp = "%s%s.%d.tmp" % (path, suffix, os.getpid())
                with open(tmp, "wb") as f:
                    f.write(data)
                os.rename(tmp, path + suffix)  # atomic: concurrent workers never see a partial file
        except (IOError, OSError) as exc:
            sys.stderr.write("tf1 worker: could not write the graph cache %s: %s\n" % (path, exc))

    def _import(self, path):
        try:
            with open(path + ".json", "rb") as f:
                handles = json.loads(f.read().decode("utf-8"))
            with open(path + ".pb", "rb") as f:
                graph_def = tf.compat.v1.GraphDef.FromString(f.read())
        except (IOError, OSError, ValueError):
            return False
        try:
            tf.import_graph_def(graph_def, name="")
            for name, value in handles.items():
                setattr(self, name, _from_names(self.graph, value))
        except Exception as exc:
            sys.stderr.write("tf1 worker: ignoring an unusable cached graph %s: %s\n" % (path, exc))
            self.graph = tf.Graph()
            return False
        _STATS["graphs_imported"] += 1
        return True

    def load(self, arrays):
        feed = {}
        for key, ph in self.feeds.items():
            if key not in arrays:
                raise ValueError("arrays: expected %r for TF variable %s" % (key, self.variables[key]))
            value = arrays[key]
            if tuple(value.shape) != tuple(ph.shape.as_list()):
                raise ValueError("%s: expected shape %s, got %s" % (key, ph.shape.as_list(), value.shape))
            feed[ph] = value.astype(_np_dtype(self.meta))
        self.session.run(self.load_op, feed)

    def placeholders(self, meta, batch=None, steps=None):
        p, h = meta["output_size"], meta["hidden_size"]
        self.x = tf.compat.v1.placeholder(self.dtype, [batch, steps, meta["input_size"]], name="x")
        self.lengths = (tf.compat.v1.placeholder(tf.int32, [batch], name="lengths")
                        if meta.get("lengths") else None)
        self.states = None
        if meta.get("state"):
            count = meta["layers"] * self.dirs
            self.states = [(tf.compat.v1.placeholder(self.dtype, [batch, p], name="h0_%d" % i),
                            tf.compat.v1.placeholder(self.dtype, [batch, h], name="c0_%d" % i))
                           for i in range(count)]

    def feed(self, arrays):
        dt = _np_dtype(self.meta)
        feed = {self.x: arrays["x"].astype(dt)}
        if self.lengths is not None:
            feed[self.lengths] = arrays["lengths"].astype(np.int32)
        for index, (h0, c0) in enumerate(self.states or []):
            feed[h0] = arrays["h0_%d" % index].astype(dt)
            feed[c0] = arrays["c0_%d" % index].astype(dt)
        return feed


class SequenceNet(Net):
    """The whole sequence: stacks, directions, lengths and initial states as the request says."""

    HANDLES = ("dirs", "x", "lengths", "states", "y", "fetch", "finals", "dy", "dh", "dc", "grads",
               "wrt_names")
    dy = dh = dc = grads = wrt_names = None

    def build(self, meta):
        api = meta["api"]
        self.dirs = 2 if meta["direction"] == "bidirectional" else 1
        reverse = meta["direction"] == "reverse"
        self.placeholders(meta, steps=meta["steps"] if api == "static_rnn" else None)
        layers = meta["layers"]
        states = self.states or [None] * (layers * self.dirs)
        y = self.x
        self.finals = []
        if layers > 1 and self.dirs == 1 and not reverse and api != "fused":
            # The TF1 idiom for a stack: MultiRNNCell, one dynamic_rnn / static_rnn over it.
            self.cells = [make_cell(meta, self.dtype, "lstm_cell_%d" % k) for k in range(layers)]
            multi = tf.nn.rnn_cell.MultiRNNCell(self.cells)
            init = None if self.states is None else tuple(
                tf.nn.rnn_cell.LSTMStateTuple(c, h) for h, c in self.states)
            if api == "static_rnn":
                ys, finals = tf.nn.static_rnn(multi, tf.unstack(y, axis=1), initial_state=init,
                                              dtype=self.dtype, sequence_length=self.lengths)
                y = tf.stack(ys, axis=1)
            else:
                y, finals = tf.nn.dynamic_rnn(multi, y, sequence_length=self.lengths, initial_state=init,
                                              dtype=self.dtype)
            self.finals = [(s.h, s.c) for s in finals]
        else:
            for k in range(layers):
                with tf.compat.v1.variable_scope("layer_%d" % k):
                    if self.dirs == 2:
                        fw = make_cell(meta, self.dtype, "fw")
                        bw = make_cell(meta, self.dtype, "bw")
                        self.cells += [fw, bw]
                        y, finals = run_bidirectional(api, fw, bw, y, self.lengths,
                                                      states[2 * k:2 * k + 2], self.dtype)
                        self.finals += finals
                    else:
                        cell = make_cell(meta, self.dtype, "lstm_cell")
                        self.cells.append(cell)
                        y, final = run_one(api, cell, y, self.lengths, states[k], self.dtype, reverse)
                        self.finals.append(final)
        self.y = y
        self.fetch = [self.y] + [t for f in self.finals for t in f]
        if meta.get("gradients"):
            p, h = meta["output_size"], meta["hidden_size"]
            self.dy = tf.compat.v1.placeholder(self.dtype, [None, None, p], name="dy")
            self.dh = tf.compat.v1.placeholder(self.dtype, [None, p], name="dh")
            self.dc = tf.compat.v1.placeholder(self.dtype, [None, h], name="dc")
            h_t, c_t = self.finals[0]
            loss = (tf.reduce_sum(self.y * self.dy) + tf.reduce_sum(h_t * self.dh)
                    + tf.reduce_sum(c_t * self.dc))
            self.wrt_names = ["x", "h0", "c0"]
            wrt = [self.x, self.states[0][0], self.states[0][1]]
            for v in self.cells[0].variables:
                self.wrt_names.append("param." + _native_name(v))
                wrt.append(v)
            self.grads = tf.gradients(loss, wrt)


def _signature(meta, *extra):
    keys = ("api", "dtype", "input_size", "hidden_size", "output_size", "proj", "peepholes",
            "activation", "forget_bias", "cell_clip", "proj_clip", "direction", "layers", "state",
            "lengths", "gradients")
    return tuple(meta.get(k) for k in keys) + extra


def _net(cls, meta, *extra):
    key = (cls.__name__,) + _signature(meta, *extra)
    net = _NETS.get(key)
    if net is None:
        started = time.time()
        net = _NETS[key] = cls(meta, key)
        _STATS["graphs_built"] += 1
        _STATS["build_seconds"] += time.time() - started
    return net


def _check_recurrent_activation(meta):
    if meta.get("recurrent_activation", "sigmoid") != "sigmoid":
        raise UnsupportedCase("TF1 LSTM cells compute their gates with the logistic sigmoid only")


def op_run(meta, arrays):
    _check_recurrent_activation(meta)
    steps = int(arrays["x"].shape[1])
    meta = dict(meta, steps=steps)
    net = _net(SequenceNet, meta, steps if meta["api"] == "static_rnn" else None)
    net.load(arrays)
    values = net.session.run(net.fetch, net.feed(arrays))
    out = {"y": values[0]}
    for index in range(len(net.finals)):
        out["h_%d" % index] = values[1 + 2 * index]
        out["c_%d" % index] = values[2 + 2 * index]
    return {}, _widen(out)


def op_gradients(meta, arrays):
    _check_recurrent_activation(meta)
    steps = int(arrays["x"].shape[1])
    meta = dict(meta, steps=steps, gradients=True, state="data")
    net = _net(SequenceNet, meta, steps if meta["api"] == "static_rnn" else None)
    net.load(arrays)
    dt = _np_dtype(meta)
    feed = net.feed(arrays)
    feed.update({net.dy: arrays["dy"].astype(dt), net.dh: arrays["dh"].astype(dt),
                 net.dc: arrays["dc"].astype(dt)})
    values = net.session.run(net.grads, feed)
    return {}, _widen(dict(zip(net.wrt_names, values)))


def _widen(arrays):
    """bfloat16 cannot travel in an .npz readable without pickle: send float32 (exact)."""
    out = {}
    for k, v in arrays.items():
        v = np.asarray(v)
        out[k] = v.astype(np.float32) if v.dtype.kind == "V" or str(v.dtype) == "bfloat16" else v
    return out


class StepNet(Net):
    """The single-step API: cell(x_t, LSTMStateTuple(c, h)) on placeholders; the worker feeds each
    returned state into the next call (a greedy decoding loop)."""

    HANDLES = ("x_t", "h", "c", "fetch")

    def build(self, meta):
        self.dirs = 1
        p, h = meta["output_size"], meta["hidden_size"]
        api = "block" if meta["api"] in ("fused", "block") else "dynamic_rnn"
        self.x_t = tf.compat.v1.placeholder(self.dtype, [None, meta["input_size"]], name="x_t")
        self.h = tf.compat.v1.placeholder(self.dtype, [None, p], name="h")
        self.c = tf.compat.v1.placeholder(self.dtype, [None, h], name="c")
        cell = make_cell(meta, self.dtype, "lstm_cell", api=api)
        self.cells = [cell]
        out, state = cell(self.x_t, tf.nn.rnn_cell.LSTMStateTuple(self.c, self.h))
        self.fetch = [out, state.h, state.c]


def op_steps(meta, arrays):
    _check_recurrent_activation(meta)
    net = _net(StepNet, meta)
    net.load(arrays)
    dt = _np_dtype(meta)
    x = arrays["x"].astype(dt)
    h, c = arrays["h0_0"].astype(dt), arrays["c0_0"].astype(dt)
    ys = []
    for t in range(x.shape[1]):
        y, h, c = net.session.run(net.fetch, {net.x_t: x[:, t], net.h: h, net.c: c})
        ys.append(y)
    return {}, _widen({"y": np.stack(ys, axis=1), "h_0": h, "c_0": c})


class StatefulNet(Net):
    """The stateful pattern users build by hand in TF1: the state lives in non-trainable
    variables; running the output also runs an op that assigns the final state to them (carried
    to the next run), and a reset op assigns zeros."""

    HANDLES = ("x", "y", "reset", "h_in", "c_in", "set_state", "h_read", "c_read")

    def build(self, meta):
        self.dirs = 1
        batch = meta["batch"]
        p, h = meta["output_size"], meta["hidden_size"]
        self.placeholders(dict(meta, state=None, lengths=False), batch=batch)
        self.h_var = tf.compat.v1.Variable(tf.zeros([batch, p], self.dtype), trainable=False, name="h_state")
        self.c_var = tf.compat.v1.Variable(tf.zeros([batch, h], self.dtype), trainable=False, name="c_state")
        api = "block" if meta["api"] in ("fused", "block") else "dynamic_rnn"
        cell = make_cell(meta, self.dtype, "lstm_cell", api=api)
        self.cells = [cell]
        y, final = run_one(api, cell, self.x, None, (self.h_var, self.c_var), self.dtype, False)
        carry = tf.group(tf.compat.v1.assign(self.h_var, final[0]), tf.compat.v1.assign(self.c_var, final[1]))
        with tf.control_dependencies([carry]):
            self.y = tf.identity(y)
        self.reset = tf.group(tf.compat.v1.assign(self.h_var, tf.zeros_like(self.h_var)),
                              tf.compat.v1.assign(self.c_var, tf.zeros_like(self.c_var)))
        self.h_in = tf.compat.v1.placeholder(self.dtype, [batch, p], name="h_in")
        self.c_in = tf.compat.v1.placeholder(self.dtype, [batch, h], name="c_in")
        self.set_state = tf.group(tf.compat.v1.assign(self.h_var, self.h_in),
                                  tf.compat.v1.assign(self.c_var, self.c_in))
        self.h_read, self.c_read = self.h_var.value(), self.c_var.value()


def op_stream(meta, arrays):
    """Chunks with the state carried in variables, then the reset op and the first chunk again."""
    _check_recurrent_activation(meta)
    batch = int(arrays["x"].shape[0])
    meta = dict(meta, batch=batch)
    net = _net(StatefulNet, meta, batch)
    net.load(arrays)
    dt = _np_dtype(meta)
    if "h0_0" in arrays:
        net.session.run(net.set_state, {net.h_in: arrays["h0_0"].astype(dt), net.c_in: arrays["c0_0"].astype(dt)})
    else:
        net.session.run(net.reset)
    x = arrays["x"].astype(dt)
    out, start = {}, 0
    chunks = [int(n) for n in meta["chunks"]]
    for k, n in enumerate(chunks):
        out["y_%d" % k] = net.session.run(net.y, {net.x: x[:, start:start + n]})
        out["h_%d" % k], out["c_%d" % k] = net.session.run([net.h_read, net.c_read])
        start += n
    net.session.run(net.reset)
    out["y_reset"] = net.session.run(net.y, {net.x: x[:, :chunks[0]]})
    out["h_reset"], out["c_reset"] = net.session.run([net.h_read, net.c_read])
    return {}, _widen(out)


def op_facts(meta, arrays):
    """Conformance facts about the Keras LSTMs next to TF 1.15: the default recurrent activation
    of tf.keras 1.15's LSTM and of standalone Keras 2.3.1, and what 'hard_sigmoid' computes."""
    facts = {"tensorflow": tf.__version__,
             "tf_keras_lstm_recurrent_activation": tf.keras.layers.LSTM(1).recurrent_activation.__name__,
             "tf_keras_lstmcell_recurrent_activation": tf.keras.layers.LSTMCell(1).recurrent_activation.__name__}
    probe = np.array([-3.0, -2.5, -1.0, 0.0, 1.0, 2.5, 3.0])
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        facts["tf_keras_hard_sigmoid"] = session.run(tf.keras.activations.hard_sigmoid(tf.constant(probe))).tolist()
    facts["probe"] = probe.tolist()
    try:
        import keras
        facts["keras"] = keras.__version__
        facts["keras_lstm_recurrent_activation"] = keras.layers.LSTM(1).recurrent_activation.__name__
    except Exception as exc:
        facts["keras"] = None
        facts["keras_error"] = "%s: %s" % (type(exc).__name__, exc)
    return facts, {}


def op_stats(meta, arrays):
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return dict(_STATS, graphs=len(_NETS), cpu_seconds=usage.ru_utime + usage.ru_stime), {}


HANDLERS = {"run": op_run, "gradients": op_gradients, "steps": op_steps, "stream": op_stream,
            "facts": op_facts, "stats": op_stats}


if __name__ == "__main__":
    sys.exit(serve(HANDLERS, hello))
