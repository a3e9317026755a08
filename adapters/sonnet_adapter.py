"""dm-sonnet 2 on TensorFlow 2: ``snt.LSTM`` unrolled by ``snt.dynamic_unroll`` (with
``sequence_length``), stacked with ``snt.DeepRNN``, one step at a time by calling the core
(backend "sonnet"); ``snt.UnrolledLSTM`` (backend "sonnet-unrolled"); gradients with
``tf.GradientTape``.

Convention (sonnet/src/recurrent.py, dm-sonnet 2.0.2)::

    gates = inputs @ w_i + prev_state.hidden @ w_h + b     # w_i (D, 4H), w_h (P, 4H), b (4H,)
    i, f, g, o = tf.split(gates, 4, axis=1)               # gate order i, f, g, o (_lstm_fn)
    next_cell = sigmoid(f) * cell + sigmoid(i) * tanh(g)
    next_hidden = sigmoid(o) * tanh(next_cell) [@ projection (H, P)]

``forget_bias`` (default 1.0) is added to the forget block of ``b`` **once, when the variables
are created** (``LSTM._initialize``: ``b_f += self._forget_bias``): Sonnet 2 has *no run-time
forget bias*, unlike Sonnet 1's ``snt.LSTM`` and TF's ``LSTMCell`` (and unlike dm-haiku's
``hk.LSTM``, which adds 1 at run time and orders its gates i, g, f, o).  So a Sonnet 2
checkpoint's ``b`` already holds the forget bias.  Weights are set with the "sonnet" entry of
``adapters.packings`` (``assign`` on the core's variables after they exist).

* ``snt.dynamic_unroll(core, x (T, B, D), state, sequence_length)``: past a sequence's length
  the previous *output* and state are kept (``_rnn_step``: ``tf.where(t >= sequence_length,
  prev, new)``, the first previous output being zeros): semantics "repeat", like Keras masking.
  It has no reverse; stacks are ``snt.DeepRNN([snt.LSTM, ...])``.
* ``snt.UnrolledLSTM`` (no projection, no lengths, one layer) runs, on the CPU,
  ``tf.raw_ops.BlockLSTMV2`` (``_block_unrolled_lstm``, chosen eagerly and by Grappler's
  implementation selector inside ``tf.function``); BlockLSTMV2 has float32 / half kernels only,
  and the gradient TensorFlow registers for it is the V1 op's (gate layout i, g, f, o): its
  gradients are wrong (a known issue, as for tf-block-v2).

What the adapter does on top of Sonnet: a run-time forget bias and a second bias are folded
into ``b``; cores are built once per shape signature and their variables assigned per case;
calls go through ``tf.function`` with unknown batch and time dimensions (one trace per
signature; the ``tf_lstmcell`` adapter's approach).

Not expressible (unsupported): peepholes, clips, other activations, reverse and bidirectional
layers (no API), and with UnrolledLSTM lengths, stacks and projection.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .base import Adapter, Capabilities, Case, Output, Unsupported
from .packings import PACKINGS
from .tf_block_adapter import import_tensorflow

PACKING = PACKINGS["sonnet"]
_CACHE_SIZE = 32
_WHY_NOT = {
    "reverse": "snt.dynamic_unroll / static_unroll have no reverse", "bidirectional": "Sonnet 2 has no bidirectional wrapper",
    **{f: "snt.LSTM has none" for f in ("peepholes", "cell_clip", "gate_clip", "proj_clip")},
    **{a: "snt.LSTM's gates are tf.sigmoid" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
    **{a: "snt.LSTM's activation is tf.tanh" for a in ("relu", "linear")},
    "length_semantics zeros": "snt.dynamic_unroll repeats the previous output past a sequence's length",
}


class SonnetLSTMAdapter(Adapter):
    """snt.LSTM (projection_size) with snt.dynamic_unroll (sequence_length), snt.DeepRNN."""

    name = "sonnet"
    framework = "dm-sonnet"
    api = ("snt.LSTM(projection_size=...) + snt.dynamic_unroll(sequence_length=...), snt.DeepRNN, the core per step, "
           "tf.GradientTape (in tf.function)")
    native_gate_order = "sonnet"
    bias_convention = ("one bias b (4H,); forget_bias is added to b once when the variables are created (none at run "
                       "time); a run-time forget bias and a second bias are folded into b")
    weight_orientation = "w_i (D, 4H), w_h (P, 4H), projection (H, P)"
    capabilities = Capabilities(
        dtypes=("float32", "float64", "float16", "bfloat16"),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "projection", "lengths",
                            "empty_sequences", "layers", "step", "gradients"}),
        length_semantics="repeat",
        max_layers=3,
        why_not=_WHY_NOT,
    )

    def __init__(self):
        self._tf = import_tensorflow()
        import sonnet as snt

        self._snt = snt
        self._entries: OrderedDict = OrderedDict()

    # ------------------------------------------------------------------ cores and calls

    def _tdtype(self, dtype: str):
        return getattr(self._tf, dtype)

    def _cores(self, case: Case) -> list:
        p, dtype = case.params, self._tdtype(case.dtype)
        return [self._snt.LSTM(p.hidden_size, projection_size=case.spec.proj_size or None, forget_bias=0.0,
                               dtype=dtype, name=f"lstm{k}") for k in range(len(case.layers))]

    def _entry(self, case: Case) -> dict:
        """Cores, their variables created, and the traced calls for one shape signature."""
        p = case.params
        key = (p.input_size, p.hidden_size, case.spec.proj_size, len(case.layers), case.dtype)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry
        tf, snt = self._tf, self._snt
        cores = self._cores(case)
        core = cores[0] if len(cores) == 1 else snt.DeepRNN(cores)
        dtype, out, h = self._tdtype(case.dtype), p.output_size, p.hidden_size
        state_spec = [snt.LSTMState(tf.TensorSpec([None, out], dtype), tf.TensorSpec([None, h], dtype))
                      for _ in cores]
        x_spec = tf.TensorSpec([None, None, p.input_size], dtype)

        def nest(states):
            return states[0] if len(states) == 1 else tuple(states)

        def unroll(x, states, lengths=None):
            y, final = snt.dynamic_unroll(core, tf.transpose(x, [1, 0, 2]), nest(states), sequence_length=lengths)
            return tf.transpose(y, [1, 0, 2]), [final] if len(cores) == 1 else list(final)

        entry = {
            "cores": cores,
            "unroll": tf.function(unroll, input_signature=[x_spec, state_spec]),
            "unroll_lengths": tf.function(unroll, input_signature=[x_spec, state_spec,
                                                                   tf.TensorSpec([None], tf.int32)]),
            "step": tf.function(lambda x_t, state: cores[0](x_t, state),
                                input_signature=[tf.TensorSpec([None, p.input_size], dtype), state_spec[0]]),
        }
        zero_states = [snt.LSTMState(tf.zeros([1, out], dtype), tf.zeros([1, h], dtype)) for _ in cores]
        unroll(tf.zeros([1, 1, p.input_size], dtype), zero_states)  # creates the variables (once)
        self._entries[key] = entry
        if len(self._entries) > _CACHE_SIZE:
            self._entries.popitem(last=False)
        return entry

    def _assign(self, case: Case, cores: list) -> None:
        """The case's weights into each core's variables (by the packing's names)."""
        for core, (params,) in zip(cores, case.layers):
            native = PACKING.to_native(params, case.spec.gate_order, forget_bias=case.spec.forget_bias)
            variables = self._variables(core)
            if sorted(variables) != sorted(native):
                raise RuntimeError(f"{self.name}: converted weights {sorted(native)}, the core has {sorted(variables)}")
            for name, value in native.items():
                variables[name].assign(self._tensor(value, case.dtype))

    def _tensor(self, array, dtype: str):
        tf = self._tf
        staging = np.float64 if dtype == "float64" else np.float32
        return tf.cast(tf.constant(np.asarray(array, dtype=staging)), self._tdtype(dtype))

    def _states(self, case: Case) -> list:
        p, snt = case.params, self._snt
        states = case.initial_state or [(np.zeros((case.batch, p.output_size)), np.zeros((case.batch, p.hidden_size)))
                                        ] * len(case.layers)
        return [snt.LSTMState(self._tensor(h, case.dtype), self._tensor(c, case.dtype)) for h, c in states]

    @staticmethod
    def _numpy(tensor) -> np.ndarray:
        import tensorflow as tf

        return tf.cast(tensor, tf.float64).numpy()

    # ------------------------------------------------------------------ the contract

    def run(self, case: Case) -> Output:
        entry = self._entry(case)
        self._assign(case, entry["cores"])
        args = [self._tensor(case.x, case.dtype), self._states(case)]
        if case.lengths is None:
            y, finals = entry["unroll"](*args)
        else:
            y, finals = entry["unroll_lengths"](*args, self._tf.constant(np.asarray(case.lengths, np.int32)))
        return Output(self._numpy(y), [(self._numpy(s.hidden), self._numpy(s.cell)) for s in finals])

    def run_steps(self, case: Case) -> Output:
        """The snt.LSTM core called once per step (``core(x_t, state) -> (h, state)``), the state
        fed back; stacks go through the default (``run`` on one-step slices)."""
        if case.lengths is not None:
            raise Unsupported(f"{self.name}: a core called step by step takes no lengths")
        if len(case.layers) != 1:
            return super().run_steps(case)
        entry = self._entry(case)
        self._assign(case, entry["cores"])
        x, state = self._tensor(case.x, case.dtype), self._states(case)[0]
        outputs = []
        for t in range(case.steps):
            y, state = entry["step"](x[:, t], state)
            outputs.append(self._numpy(y))
        return Output(np.stack(outputs, axis=1), [(self._numpy(state.hidden), self._numpy(state.cell))])

    def _variables(self, core) -> dict:
        out = {"w_i": core.input_to_hidden, "w_h": core.hidden_to_hidden, "b": core.b}
        if getattr(core, "projection", None) is not None:
            out["projection"] = core.projection
        return out

    def _unroll_for_gradients(self, case: Case, x, state):
        """(y, final state) of one layer, for ``gradients``."""
        y, finals = self._entry(case)["unroll"].python_function(x, [state])
        return y, finals[0]

    def _gradient_fn(self, case: Case, variables: list):
        """f(x, h0, c0, dy, dh, dc) -> the gradients of the loss w.r.t. x, h0, c0, variables;
        traced once per shape signature."""
        entry = self._entry(case)
        if "gradients" not in entry:
            entry["gradients"] = self._tf.function(self._gradients_of(case, variables))
        return entry["gradients"]

    def _gradients_of(self, case: Case, variables: list):
        tf = self._tf

        def grads(x, h0, c0, dy, dh, dc):
            with tf.GradientTape() as tape:
                tape.watch([x, h0, c0])
                y, final = self._unroll_for_gradients(case, x, self._snt.LSTMState(h0, c0))
                loss = tf.reduce_sum(y * dy) + tf.reduce_sum(final.hidden * dh) + tf.reduce_sum(final.cell * dc)
            return tape.gradient(loss, [x, h0, c0] + variables)

        return grads

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        """``tf.GradientTape`` of sum(y*dy) + sum(h_T*dh) + sum(c_T*dc) with respect to x, the
        initial state and the core's variables, converted back with the packing's
        ``gradients`` (the folded bias gets one gradient, reported for ``bias`` and
        ``recurrent_bias`` alike)."""
        if len(case.layers) != 1:
            raise Unsupported(f"{self.name}: gradients are implemented for one layer")
        core = self._entry(case)["cores"][0]
        self._assign(case, [core])
        variables = self._variables(core)
        names = list(variables)
        state = self._states(case)[0]
        fn = self._gradient_fn(case, [variables[n] for n in names])
        gx, gh0, gc0, *gw = fn(self._tensor(case.x, case.dtype), state.hidden, state.cell,
                               *(self._tensor(a, case.dtype) for a in (dy, dh, dc)))
        out = {"x": self._numpy(gx), "h0": self._numpy(gh0), "c0": self._numpy(gc0)}
        out.update(PACKING.gradients({n: self._numpy(g) for n, g in zip(names, gw)}, case.params,
                                     case.spec.gate_order))
        return out


class SonnetUnrolledLSTMAdapter(SonnetLSTMAdapter):
    """snt.UnrolledLSTM: one layer over a whole time-major sequence (tf.raw_ops.BlockLSTMV2 on
    the CPU), called eagerly."""

    name = "sonnet-unrolled"
    api = "snt.UnrolledLSTM (tf.raw_ops.BlockLSTMV2 on the CPU), tf.GradientTape"
    weight_orientation = "w_i (D, 4H), w_h (H, 4H)"
    capabilities = Capabilities(
        dtypes=("float32", "float16"),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "gradients"}),
        gradient_dtypes=("float32",),
        why_not={**_WHY_NOT, "lengths": "snt.UnrolledLSTM takes no sequence lengths",
                 "empty_sequences": "snt.UnrolledLSTM takes no sequence lengths",
                 "layers": "snt.UnrolledLSTM is one layer", "projection": "snt.UnrolledLSTM has no projection",
                 **{d: f"the CPU specialization of snt.UnrolledLSTM is tf.raw_ops.BlockLSTMV2, which has no {d} "
                       f"kernel (InvalidArgumentError: allowed values half, float)" for d in ("float64", "bfloat16")}},
    )

    def _entry(self, case: Case) -> dict:
        p = case.params
        key = (p.input_size, p.hidden_size, case.dtype)
        entry = self._entries.get(key)
        if entry is None:
            tf, dtype = self._tf, self._tdtype(case.dtype)
            core = self._snt.UnrolledLSTM(p.hidden_size, forget_bias=0.0, dtype=dtype)
            zero = tf.zeros([1, p.hidden_size], dtype)
            core(tf.zeros([1, 1, p.input_size], dtype), self._snt.LSTMState(zero, zero))  # creates the variables
            entry = self._entries[key] = {"cores": [core]}
        return entry

    def _unroll_for_gradients(self, case: Case, x, state):
        core = self._entry(case)["cores"][0]
        y, final = core(self._tf.transpose(x, [1, 0, 2]), state)
        return self._tf.transpose(y, [1, 0, 2]), final

    def run(self, case: Case) -> Output:
        core = self._entry(case)["cores"][0]
        self._assign(case, [core])
        y, final = self._unroll_for_gradients(case, self._tensor(case.x, case.dtype), self._states(case)[0])
        return Output(self._numpy(y), [(self._numpy(final.hidden), self._numpy(final.cell))])

    def _gradient_fn(self, case: Case, variables: list):
        """Eager, as the CPU specialization is chosen eagerly (inside a tf.function Grappler's
        implementation selector picks the same BlockLSTMV2 function)."""
        return self._gradients_of(case, variables)

    def run_steps(self, case: Case) -> Output:
        """UnrolledLSTM has no single-step API: one-step sequences with the state fed back."""
        return Adapter.run_steps(self, case)
