"""TensorFlow 2 ``tf.compat.v1.nn.rnn_cell.LSTMCell`` driven by ``tf.compat.v1.nn.dynamic_rnn``
("tf-lstmcell").

In TensorFlow >= 2.16 ``tf.compat.v1.nn.rnn_cell`` is served by tf_keras (Keras 2): it needs
``pip install --no-deps tf_keras`` and ``TF_USE_LEGACY_KERAS=1`` in the environment before
``tf.keras`` is first touched (without it the attribute is missing).  The class is
``tf_keras.src.layers.rnn.legacy_cells.LSTMCell``; its ``call`` (the convention modelled)::

    lstm_matrix = concat([x_t, m_prev], 1) @ kernel + bias        # kernel (D + P, 4H)
    i, j, f, o = split(lstm_matrix, 4, axis=1)                   # gate order i, g, f, o ("tf")
    c = sigmoid(f + forget_bias [+ w_f_diag * c_prev]) * c_prev
        + sigmoid(i [+ w_i_diag * c_prev]) * activation(j)
    c = clip_by_value(c, -cell_clip, cell_clip)                  # when cell_clip is not None
    m = sigmoid(o [+ w_o_diag * c]) * activation(c)
    m = m @ projection/kernel  (H, P), then clip_by_value(m, -proj_clip, proj_clip)

Variables (names checked after ``build``): ``kernel`` (D + P, 4H), ``bias`` (4H,), with
``use_peepholes`` ``w_f_diag``, ``w_i_diag``, ``w_o_diag`` (H,) (created in the order f, i, o),
with ``num_proj`` ``projection/kernel`` (H, P).  The state is ``LSTMStateTuple(c, h)``: c first.

* forget_bias is native and run-time (default 1.0): always passed the case's value.
* The gate activation is always ``tf.sigmoid`` (no recurrent_activation argument);
  ``activation`` takes "tanh", "relu", "linear".
* One bias; a second bias (PyTorch style) is summed into it by the adapter.
* Lengths: ``dynamic_rnn(sequence_length=...)`` outputs zeros past each length and copies the
  state through, so the final state is the last valid one (semantics "zeros").
* Directions: the reverse direction is the backward half of
  ``tf.compat.v1.nn.bidirectional_dynamic_rnn`` (which reverses each sequence within its length
  with ``reverse_sequence`` and reverses the outputs back: "aligned"); its forward half is
  discarded.  A bidirectional layer is ``bidirectional_dynamic_rnn`` (outputs concatenated
  fw | bw, as users do); a bidirectional stack chains one per layer (as
  ``tf.contrib.rnn.stack_bidirectional_dynamic_rnn`` did).  Unidirectional stacks use
  ``MultiRNNCell``.
* The single-step API is the cell itself: ``m, state = cell(x_t, LSTMStateTuple(c, h))``.
* Gradients: ``tf.GradientTape`` over x, the initial state and the cell's variables.

Speed: cells are built once per shape signature and their variables assigned per case; every
call goes through a ``tf.function`` (batch and time dimensions left unknown) cached with them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .base import Adapter, Capabilities, Case, Output, Unsupported
from .packings import PACKINGS
from .tf_block_adapter import import_tensorflow, tensorflow_version

PACKING = PACKINGS["tf1"]

_NP_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16}
_CACHE_SIZE = 48


def _np_dtype(dtype: str):
    if dtype == "bfloat16":
        import tensorflow as tf

        return tf.bfloat16.as_numpy_dtype
    return _NP_DTYPES[dtype]


class _Lazy:
    """A Python function run eagerly on its first (short) call and through a ``tf.function``
    (traced once, with the given input signature) from its second call on, or at once for long
    inputs: a trace costs ~0.1 s, an eager short call a few ms, and most shape signatures drawn
    by the suite are used once."""

    def __init__(self, tf, fn, signature, *, compile_after: int = 1):
        self._tf, self.python, self._signature = tf, fn, signature
        self._compile_after = compile_after
        self._compiled = None
        self.calls = 0

    def __call__(self, *args, heavy: bool = False):
        self.calls += 1
        if self._compiled is None and (heavy or self.calls > self._compile_after):
            self._compiled = self._tf.function(self.python, input_signature=self._signature)
        if self._compiled is None:
            return self.python(*(self._tf.convert_to_tensor(a) for a in args))
        return self._compiled(*args)


#: Steps x layers x directions above which a first call is compiled rather than run eagerly.
_EAGER_MAX_WORK = 24


@dataclass
class _Entry:
    """Built cells ([layer][direction]) and the compiled calls for one shape signature."""

    cells: list
    forward: object = None
    step: object = None
    gradients: object = None


class TFLSTMCellAdapter(Adapter):
    name = "tf-lstmcell"
    framework = "tensorflow-cpu"
    api = ("tf.compat.v1.nn.rnn_cell.LSTMCell + tf.compat.v1.nn.dynamic_rnn / "
           "bidirectional_dynamic_rnn / MultiRNNCell (tf_keras legacy cells)")
    native_gate_order = "tf"
    bias_convention = ("one bias (4H,) + run-time forget_bias (passed natively); a second bias is "
                       "summed into the bias by the adapter")
    weight_orientation = ("fused kernel (D + P, 4H) applied to [x_t, h_{t-1}]; w_i_diag, w_f_diag, "
                          "w_o_diag (H,); projection/kernel (H, P)")
    capabilities = Capabilities(
        dtypes=("float32", "float64", "float16", "bfloat16"),
        recurrent_activations=("sigmoid",),
        activations=("tanh", "relu", "linear"),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "peepholes",
                            "cell_clip", "projection", "proj_clip", "lengths", "empty_sequences", "reverse",
                            "bidirectional", "layers", "step", "gradients"}),
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
        gradient_dtypes=("float32", "float64"),
        why_not={**{a: "LSTMCell's gates always use tf.sigmoid" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
                 "gate_clip": "LSTMCell has no gate clip"},
    )

    def __init__(self):
        self._entries: OrderedDict = OrderedDict()

    def version(self) -> str:
        return tensorflow_version(self.framework)

    # -- cells and their variables ------------------------------------------------------------

    def _check_case(self, case: Case) -> None:
        """What Capabilities cannot say: a stack of reverse-only layers is not a TF 1 API."""
        if case.direction == "reverse" and len(case.layers) > 1:
            raise Unsupported(f"{self.name}: a stack of reverse-only layers is not a TF 1 API")

    def _key(self, case: Case) -> tuple:
        spec = case.spec
        p = case.params
        return (case.dtype, p.input_size, p.hidden_size, spec.proj_size, spec.forget_bias, spec.cell_clip,
                spec.use_peepholes, spec.proj_clip, spec.activation, len(case.layers), case.direction)

    def _entry(self, case: Case) -> _Entry:
        key = self._key(case)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry
        tf = import_tensorflow()
        spec = case.spec
        dtype = tf.as_dtype(case.dtype)
        hidden, out = case.params.hidden_size, case.params.output_size
        dirs = case.num_directions
        cells = []
        for k in range(len(case.layers)):
            in_size = case.params.input_size if k == 0 else out * dirs
            row = []
            for d in range(dirs):
                cell = tf.compat.v1.nn.rnn_cell.LSTMCell(
                    hidden, use_peepholes=spec.use_peepholes, cell_clip=spec.cell_clip,
                    num_proj=spec.proj_size, proj_clip=spec.proj_clip, forget_bias=spec.forget_bias,
                    activation=spec.activation, dtype=dtype, name=f"lstm_cell_l{k}_d{d}")
                cell.build(tf.TensorShape([None, in_size]))
                row.append(cell)
            cells.append(row)
        if case.direction == "reverse":
            # bidirectional_dynamic_rnn needs a forward cell; its half is discarded.
            cells[0].insert(0, cells[0][0].__class__.from_config(cells[0][0].get_config()))
            cells[0][0].build(tf.TensorShape([None, case.params.input_size]))
        entry = _Entry(cells)
        self._entries[key] = entry
        while len(self._entries) > _CACHE_SIZE:
            self._entries.popitem(last=False)
        return entry

    @staticmethod
    def _variables(cell, spec) -> dict:
        """The cell's variables by their names in the "tf1" packing, the names checked."""
        out = {"kernel": cell._kernel, "bias": cell._bias}
        if spec.use_peepholes:
            out.update(w_i_diag=cell._w_i_diag, w_f_diag=cell._w_f_diag, w_o_diag=cell._w_o_diag)
        if spec.proj_size:
            out["projection/kernel"] = cell._proj_kernel
        for name, var in out.items():
            if not var.name.split(":")[0].endswith(name):
                raise RuntimeError(f"expected the LSTMCell variable named '.../{name}', got {var.name!r} "
                                   f"(tf_keras changed its legacy LSTMCell)")
        return out

    def _native(self, params, spec, dtype) -> dict:
        """Reference params -> the LSTMCell variables' values (NumPy); the forget bias is passed
        to the cell natively, a second bias is summed into the bias."""
        out = PACKING.to_native(params, spec.gate_order)
        return {k: np.asarray(v, dtype=np.float64).astype(dtype) for k, v in out.items()}

    def _load(self, entry: _Entry, case: Case) -> None:
        dtype = _np_dtype(case.dtype)
        cells = entry.cells[0][1:] if case.direction == "reverse" else None
        for k, dirs in enumerate(case.layers):
            targets = cells if cells is not None else entry.cells[k]
            for cell, params in zip(targets, dirs):
                variables = self._variables(cell, case.spec)
                for name, value in self._native(params, case.spec, dtype).items():
                    var = variables[name]
                    if tuple(var.shape) != value.shape:
                        raise RuntimeError(f"{name}: the LSTMCell variable {var.name} has shape "
                                           f"{tuple(var.shape)}, the converted value {value.shape}")
                    var.assign(value)

    # -- compiled calls -----------------------------------------------------------------------

    def _signature(self, tf, case: Case, *, lengths: bool, state: bool):
        dtype = tf.as_dtype(case.dtype)
        p = case.params
        sig = [tf.TensorSpec([None, None, p.input_size], dtype)]
        if lengths:
            sig.append(tf.TensorSpec([None], tf.int32))
        if state:
            for _ in range(len(case.layers) * case.num_directions):
                sig += [tf.TensorSpec([None, p.output_size], dtype), tf.TensorSpec([None, p.hidden_size], dtype)]
        return sig

    def _forward_fn(self, entry: _Entry, case: Case):
        has_lengths, has_state = case.lengths is not None, case.initial_state is not None
        cache = entry.forward if isinstance(entry.forward, dict) else {}
        entry.forward = cache
        fn = cache.get((has_lengths, has_state))
        if fn is not None:
            return fn
        tf = import_tensorflow()
        v1 = tf.compat.v1
        State = v1.nn.rnn_cell.LSTMStateTuple
        dtype = tf.as_dtype(case.dtype)
        n_layers, direction = len(case.layers), case.direction
        cells = entry.cells

        def forward(x, *rest):
            rest = list(rest)
            seq = rest.pop(0) if has_lengths else None
            states = None
            if has_state:
                states = [State(rest[2 * k + 1], rest[2 * k]) for k in range(len(rest) // 2)]
            finals = []
            if direction == "forward":
                if n_layers == 1:
                    cell, init = cells[0][0], None if states is None else states[0]
                else:
                    cell = v1.nn.rnn_cell.MultiRNNCell([row[0] for row in cells])
                    init = None if states is None else tuple(states)
                y, final = v1.nn.dynamic_rnn(cell, x, sequence_length=seq, initial_state=init, dtype=dtype)
                finals = [final] if n_layers == 1 else list(final)
            elif direction == "reverse":
                fw, bw = cells[0]
                (_, y), (_, final) = v1.nn.bidirectional_dynamic_rnn(
                    fw, bw, x, sequence_length=seq, initial_state_bw=None if states is None else states[0],
                    dtype=dtype)
                finals = [final]
            else:
                y = x
                for k in range(n_layers):
                    fw, bw = cells[k]
                    (y_fw, y_bw), (f_fw, f_bw) = v1.nn.bidirectional_dynamic_rnn(
                        fw, bw, y, sequence_length=seq,
                        initial_state_fw=None if states is None else states[2 * k],
                        initial_state_bw=None if states is None else states[2 * k + 1],
                        dtype=dtype, scope=f"bidirectional_rnn_{k}")
                    y = tf.concat([y_fw, y_bw], axis=-1)
                    finals += [f_fw, f_bw]
            flat = []
            for state in finals:
                flat += [state.h, state.c]
            return [y] + flat

        fn = _Lazy(tf, forward, self._signature(tf, case, lengths=has_lengths, state=has_state))
        cache[(has_lengths, has_state)] = fn
        return fn

    # -- the contract -------------------------------------------------------------------------

    def _inputs(self, case: Case) -> list:
        dtype = _np_dtype(case.dtype)
        args = [np.asarray(case.x, dtype=np.float64).astype(dtype)]
        if case.lengths is not None:
            args.append(np.asarray(case.lengths, dtype=np.int32))
        if case.initial_state is not None:
            for h0, c0 in case.initial_state:
                args += [np.asarray(h0, np.float64).astype(dtype), np.asarray(c0, np.float64).astype(dtype)]
        return args

    def run(self, case: Case) -> Output:
        self._check_case(case)
        entry = self._entry(case)
        self._load(entry, case)
        result = [t.numpy() for t in self._forward_fn(entry, case)(*self._inputs(case), heavy=self._heavy(case))]
        y, flat = result[0], result[1:]
        return Output(y, [(flat[2 * k], flat[2 * k + 1]) for k in range(len(flat) // 2)])

    @staticmethod
    def _heavy(case: Case) -> bool:
        return case.steps * len(case.layers) * case.num_directions > _EAGER_MAX_WORK

    def run_steps(self, case: Case) -> Output:
        if len(case.layers) != 1 or case.direction != "forward" or case.lengths is not None:
            return super().run_steps(case)
        tf = import_tensorflow()
        entry = self._entry(case)
        self._load(entry, case)
        if entry.step is None:
            cell = entry.cells[0][0]
            State = tf.compat.v1.nn.rnn_cell.LSTMStateTuple
            dtype = tf.as_dtype(case.dtype)
            p = case.params
            sig = [tf.TensorSpec([None, p.input_size], dtype), tf.TensorSpec([None, p.output_size], dtype),
                   tf.TensorSpec([None, p.hidden_size], dtype)]

            def step(x_t, h, c):
                m, state = cell(x_t, State(c, h))
                return m, state.h, state.c

            entry.step = _Lazy(tf, step, sig, compile_after=3 * _EAGER_MAX_WORK)
        dtype = _np_dtype(case.dtype)
        x = np.asarray(case.x, np.float64).astype(dtype)
        if case.initial_state is None:
            p = case.params
            h = np.zeros((case.batch, p.output_size), dtype)
            c = np.zeros((case.batch, p.hidden_size), dtype)
        else:
            h, c = (np.asarray(a, np.float64).astype(dtype) for a in case.initial_state[0])
        ys = []
        for t in range(case.steps):
            m, h, c = entry.step(x[:, t], h, c)
            ys.append(m.numpy())
        return Output(np.stack(ys, axis=1), [(h.numpy(), c.numpy())])

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        if len(case.layers) != 1 or case.direction != "forward":
            raise Unsupported(f"{self.name}: gradients are checked on one forward layer")
        tf = import_tensorflow()
        entry = self._entry(case)
        self._load(entry, case)
        spec, params = case.spec, case.params
        cell = entry.cells[0][0]
        roles = list(self._variables(cell, spec))
        has_lengths = case.lengths is not None
        cache = entry.gradients if isinstance(entry.gradients, dict) else {}
        entry.gradients = cache
        fn = cache.get(has_lengths)
        if fn is None:
            forward = self._forward_fn(entry, case.replace(initial_state=case.initial_state or
                                                           [(np.zeros((case.batch, params.output_size)),
                                                             np.zeros((case.batch, params.hidden_size)))]))
            variables = [self._variables(cell, spec)[r] for r in roles]
            dtype = tf.as_dtype(case.dtype)
            sig = self._signature(tf, case, lengths=has_lengths, state=True)
            sig += [tf.TensorSpec([None, None, params.output_size], dtype),
                    tf.TensorSpec([None, params.output_size], dtype), tf.TensorSpec([None, params.hidden_size], dtype)]

            def grads(*args):
                inputs, (dy_, dh_, dc_) = list(args[:-3]), args[-3:]
                x, h0, c0 = inputs[0], inputs[-2], inputs[-1]
                with tf.GradientTape() as tape:
                    tape.watch([x, h0, c0])
                    y, h, c = forward.python(*inputs)
                    loss = tf.reduce_sum(y * dy_) + tf.reduce_sum(h * dh_) + tf.reduce_sum(c * dc_)
                return tape.gradient(loss, [x, h0, c0] + variables,
                                     unconnected_gradients=tf.UnconnectedGradients.ZERO)

            fn = _Lazy(tf, grads, sig)
            cache[has_lengths] = fn
        dtype = _np_dtype(case.dtype)
        args = self._inputs(case if case.initial_state is not None else case.replace(initial_state=[
            (np.zeros((case.batch, params.output_size)), np.zeros((case.batch, params.hidden_size)))]))
        args += [np.asarray(a, np.float64).astype(dtype) for a in (dy, dh, dc)]
        gx, gh0, gc0, *gvars = (g.numpy().astype(np.float64) for g in fn(*args, heavy=self._heavy(case)))
        out = {"x": gx, "h0": gh0, "c0": gc0}
        out.update(PACKING.gradients(dict(zip(roles, gvars)), params, spec.gate_order))
        return out
