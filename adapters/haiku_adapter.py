"""dm-haiku: ``hk.LSTM`` unrolled by ``hk.dynamic_unroll`` (backend "haiku") or
``hk.static_unroll`` ("haiku-static"), stacked with ``hk.DeepRNN``, one step at a time by calling
the core, gradients with ``jax.grad`` of the transformed function.

Convention (haiku/_src/recurrent.py, ``LSTM.__call__``, dm-haiku 0.0.17)::

    x_and_h = jnp.concatenate([inputs, prev_state.hidden], axis=-1)
    gated = hk.Linear(4 * hidden_size)(x_and_h)       # parameters <name>/linear: w (D + H, 4H), b (4H,)
    i, g, f, o = jnp.split(gated, 4, axis=-1)         # gate order i, g, f, o (as TF's LSTMCell)
    f = jax.nn.sigmoid(f + 1)                         # "Forget bias, as in sonnet."
    c = f * prev_state.cell + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)               # returns h, LSTMState(hidden=h, cell=c)

So the fused kernel and gate order of TF's LSTMCell, and a **run-time forget bias of 1 that
cannot be changed** (no argument); the class docstring says "we add 1.0 to b_f after
initialization", but the code adds it on every call, to the pre-activation, not to the
parameter ``b``.  A port from Haiku to a framework without a run-time forget bias (PyTorch,
Keras, Flax) must add 1 to b_f; a port into Haiku must subtract it: the TF LSTMCell trap.
Modelled as the native run-time forget bias 1.0 of the "haiku" entry of ``adapters.packings``:
a case's forget bias ``fb`` is run as Haiku's 1 plus ``fb - 1`` folded into b_f.

What the adapter does on top of Haiku, and nothing else:

* one bias: a second bias (PyTorch style) is summed into ``b``;
* ``reverse``: ``hk.dynamic_unroll(reverse=True)`` (``jax.lax.scan(reverse=True)``: outputs
  aligned to input steps); ``hk.static_unroll`` has no reverse;
* stacked layers: ``hk.DeepRNN([hk.LSTM, ...])`` (the state is a tuple per layer);
* compiled functions are reused: batch, features and units are zero-padded to buckets
  (``adapters.padding``; exact: a padded unit's z is 0 and Haiku's +1 only makes its f
  sigmoid(1), which multiplies a cell state that is exactly 0) and time to 16 or a multiple of
  128.  Haiku has no sequence lengths, so padded steps must not reach the result:
  ``dynamic_unroll(return_all_states=True)`` returns the state after every step and the final
  state is read at the last true step; in a reverse run the padding is put *before* the
  sequence, where the reversed scan reaches it last.  ``hk.static_unroll`` returns only the
  last state, so "haiku-static" unrolls the core with its new state as a second output (the
  same states); its time is padded to powers of two, and only its ``scale`` property draws
  examples at scale (a static unroll compiles per step: ``HaikuStaticUnrollAdapter.size_plan``).  One ``jax.jit`` per configuration; the converted parameter tree is checked once per
  configuration against the one ``init`` builds (``jax.eval_shape``).

Not expressible (unsupported, ``Capabilities.why_not``): sequence lengths (no unroll takes
them; ``hk.ResetCore`` resets the state at given steps, it does not mask), bidirectional layers
(no wrapper), peepholes, clips, projection, other activations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .jax_support import JNP_DTYPES  # isort: skip  (first: jax_enable_x64)

import haiku as hk  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from .base import Adapter, Capabilities, Case, Output, Unsupported  # noqa: E402
from .packings import PACKINGS  # noqa: E402
from .padding import bucket, bucket_steps, pad, pad_params, unpad_gradients  # noqa: E402

PACKING = PACKINGS["haiku"]

_WHY_NOT = {
    "lengths": "hk.dynamic_unroll / hk.static_unroll take no sequence lengths (hk.ResetCore resets the "
               "state at given steps; it does not mask)",
    "empty_sequences": "no sequence lengths in Haiku",
    "bidirectional": "Haiku has no bidirectional wrapper",
    **{f: "hk.LSTM has none" for f in ("peepholes", "cell_clip", "gate_clip", "projection", "proj_clip")},
    **{a: "hk.LSTM's gates are jax.nn.sigmoid" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
    **{a: "hk.LSTM's activation is jnp.tanh" for a in ("relu", "linear")},
}


@dataclass(frozen=True)
class _Config:
    """Everything a compiled function depends on (its cache key)."""

    dtype: str
    layers: int
    reverse: bool
    batch: int
    steps: int
    inputs: int
    hidden: int


def _cores(cfg: _Config):
    """The core of a configuration: hk.LSTM (named lstm0) or hk.DeepRNN of lstm0, lstm1, ..."""
    lstms = [hk.LSTM(cfg.hidden, name=f"lstm{k}") for k in range(cfg.layers)]
    return lstms[0] if cfg.layers == 1 else hk.DeepRNN(lstms)


def _emitting_state(core, x_t, state):
    """``core`` with its new state as a second output (``hk.static_unroll`` returns only the
    last state, ``dynamic_unroll(return_all_states=True)`` every one)."""
    y, state = core(x_t, state)
    return (y, state), state


def _state(states: list, cfg: _Config):
    return states[0] if cfg.layers == 1 else tuple(states)


class HaikuLSTMAdapter(Adapter):
    """hk.LSTM with hk.dynamic_unroll (batch-major: ``time_major=False``)."""

    name = "haiku"
    framework = "dm-haiku"
    api = ("hk.LSTM + hk.dynamic_unroll(time_major=False, reverse=..., return_all_states=True), "
           "hk.DeepRNN, the core per step, jax.grad")
    native_gate_order = "haiku"
    bias_convention = ("one bias b (4H,) in hk.Linear + a run-time forget bias of 1 added by hk.LSTM (fixed); "
                       "another forget bias fb is folded into b as fb - 1; a second bias is summed into b")
    weight_orientation = "linear/w (D + H, 4H) applied to concat([x, h]), linear/b (4H,)"
    capabilities = Capabilities(
        dtypes=("float32", "float64", "float16", "bfloat16"),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "reverse", "layers", "step",
                            "gradients"}),
        reverse_time_order="aligned",
        max_layers=3,
        why_not=_WHY_NOT,
    )
    static = False

    def __init__(self):
        self._fns: dict[tuple, object] = {}

    # ------------------------------------------------------------------ configurations

    def _config(self, case: Case, *, steps: int | None = None) -> _Config:
        t = case.steps if steps is None else steps
        return _Config(case.dtype, len(case.layers), case.direction == "reverse", bucket(case.batch, 4),
                       bucket(t, 16) if self.static else bucket_steps(t), bucket(case.params.input_size, 8),
                       bucket(case.params.hidden_size, 8))

    def _sequence(self, cfg: _Config):
        """hk.transform of the unroll: f(x, states) -> (y, per-layer final or all states)."""
        def forward(x, states):
            core = _cores(cfg)
            if self.static:
                (y, all_states), _ = hk.static_unroll(lambda x_t, s: _emitting_state(core, x_t, s), x,
                                                      _state(states, cfg), time_major=False)
                return y, all_states
            return hk.dynamic_unroll(core, x, _state(states, cfg), time_major=False, reverse=cfg.reverse,
                                     return_all_states=True)

        return hk.without_apply_rng(hk.transform(forward))

    def _compiled(self, what: str, cfg: _Config, build):
        key = (what, cfg)
        fn = self._fns.get(key)
        if fn is None:
            fn = self._fns[key] = build()
        return fn

    def _params(self, case: Case, cfg: _Config, transformed, *args) -> dict:
        """The Haiku parameter tree of ``case``, padded to ``cfg``; checked once per
        configuration against the tree ``init`` builds (Haiku's ``apply`` would ignore a
        parameter it does not ask for)."""
        spec, dtype = case.spec, JNP_DTYPES[cfg.dtype]
        tree = {}
        for k, (p,) in enumerate(case.layers):
            padded = pad_params(p, cfg.hidden, [(p.input_size, cfg.inputs if k == 0 else cfg.hidden)])
            native = PACKING.to_native(padded, spec.gate_order, forget_bias=spec.forget_bias - PACKING.runtime_forget_bias)
            tree[f"lstm{k}/linear"] = {name.split("/")[1]: np.asarray(v, dtype=dtype) for name, v in native.items()}
        key = ("tree", transformed, cfg)
        if key not in self._fns:
            expected = jax.eval_shape(transformed.init, jax.random.PRNGKey(0), *args)
            got = jax.tree.map(lambda a: (np.shape(a), np.dtype(a.dtype)), tree)
            expected = jax.tree.map(lambda a: (tuple(a.shape), np.dtype(a.dtype)), expected)
            if got != expected:
                raise RuntimeError(f"{self.name}: the converted parameter tree {got} is not the one dm-haiku "
                                   f"{self.version()} builds: {expected}")
            self._fns[key] = True
        return tree

    def _states(self, case: Case, cfg: _Config) -> list:
        """hk.LSTMState(hidden, cell) per layer, padded; zeros when the case has none."""
        dtype = JNP_DTYPES[cfg.dtype]
        shape = (cfg.batch, cfg.hidden)
        if case.initial_state is None:
            zero = np.zeros(shape, dtype=dtype)
            return [hk.LSTMState(zero, zero)] * len(case.layers)
        return [hk.LSTMState(pad(h, shape, dtype), pad(c, shape, dtype)) for h, c in case.initial_state]

    def _x(self, case: Case, cfg: _Config) -> tuple[np.ndarray, int]:
        """x padded to ``cfg`` and the padded index of the first true step: padding after the
        sequence, or before it in a reverse run (the reversed scan then reaches it last)."""
        x = case.x
        offset = cfg.steps - case.steps if cfg.reverse else 0
        if offset:
            x = np.concatenate([np.zeros((case.batch, offset, case.params.input_size)), x], axis=1)
        return pad(x, (cfg.batch, cfg.steps, cfg.inputs), JNP_DTYPES[cfg.dtype]), offset

    def _finals(self, case: Case, cfg: _Config, states, offset: int) -> list:
        """The final (h, c) per layer, padding removed: the state after the last true step."""
        last = offset if cfg.reverse else offset + case.steps - 1
        states = [states] if cfg.layers == 1 else list(states)
        b, h = case.batch, case.params.hidden_size
        out = []
        for s in states:
            hidden, cell = (np.asarray(a, dtype=np.float64)[:b, last, :h] for a in (s.hidden, s.cell))
            out.append((hidden, cell))
        return out

    # ------------------------------------------------------------------ the contract

    def run(self, case: Case) -> Output:
        cfg = self._config(case)
        transformed = self._compiled("sequence", cfg, lambda: self._sequence(cfg))
        fn = self._compiled("sequence-jit", cfg, lambda: jax.jit(transformed.apply))
        x, offset = self._x(case, cfg)
        states = self._states(case, cfg)
        y, finals = fn(self._params(case, cfg, transformed, x, states), x, states)
        y = np.asarray(y, dtype=np.float64)[:case.batch, offset:offset + case.steps, :case.params.hidden_size]
        return Output(y, self._finals(case, cfg, finals, offset))

    def run_steps(self, case: Case) -> Output:
        """The hk.LSTM core called once per step (``core(x_t, state) -> (h, state)``), the state
        fed back.  Stacks and the reverse direction go through the default (``run`` on one-step
        slices)."""
        if len(case.layers) != 1 or case.direction != "forward":
            return super().run_steps(case)
        cfg = self._config(case, steps=1)
        transformed = self._compiled("step", cfg, lambda: hk.without_apply_rng(hk.transform(
            lambda x_t, state: _cores(cfg)(x_t, state))))
        fn = self._compiled("step-jit", cfg, lambda: jax.jit(transformed.apply))
        dtype = JNP_DTYPES[cfg.dtype]
        state = self._states(case, cfg)[0]
        x_t = pad(case.x[:, 0], (cfg.batch, cfg.inputs), dtype)
        params = self._params(case, cfg, transformed, x_t, state)
        outputs = []
        for t in range(case.steps):
            y, state = fn(params, pad(case.x[:, t], (cfg.batch, cfg.inputs), dtype), state)
            outputs.append(np.asarray(y, dtype=np.float64)[:case.batch, :case.params.hidden_size])
        b, h = case.batch, case.params.hidden_size
        final = (np.asarray(state.hidden, dtype=np.float64)[:b, :h], np.asarray(state.cell, dtype=np.float64)[:b, :h])
        return Output(np.stack(outputs, axis=1), [final])

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        """``jax.grad`` of sum(y*dy) + sum(h_T*dh) + sum(c_T*dc) through the transformed
        function, with respect to the parameter tree, x and the initial state; converted back
        with the packing's ``gradients`` (the folded bias gets one gradient, reported for
        ``bias`` and ``recurrent_bias`` alike)."""
        if len(case.layers) != 1 or case.direction != "forward":
            raise Unsupported(f"{self.name}: gradients are implemented for one forward layer")
        cfg = self._config(case)
        transformed = self._compiled("sequence", cfg, lambda: self._sequence(cfg))
        t = case.steps

        def build():
            def loss(params, x, state, last, dy_, dh_, dc_):
                y, finals = transformed.apply(params, x, [state])
                hT, cT = finals.hidden[:, last], finals.cell[:, last]
                return jnp.sum(y * dy_) + jnp.sum(hT * dh_) + jnp.sum(cT * dc_)

            return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))

        fn = self._compiled("gradients", cfg, build)
        dtype = JNP_DTYPES[cfg.dtype]
        x, _ = self._x(case, cfg)
        state = self._states(case, cfg)[0]
        shape = (cfg.batch, cfg.hidden)
        d_params, d_x, d_state = fn(self._params(case, cfg, transformed, x, [state]), x, state, np.int32(t - 1),
                                    pad(dy, (cfg.batch, cfg.steps, cfg.hidden), dtype), pad(dh, shape, dtype),
                                    pad(dc, shape, dtype))
        p, b, d, h = case.params, case.batch, case.params.input_size, case.params.hidden_size
        native = {f"linear/{k}": np.asarray(v, dtype=np.float64) for k, v in d_params["lstm0/linear"].items()}
        padded = pad_params(p, cfg.hidden, [(d, cfg.inputs)])
        grads = unpad_gradients(PACKING.gradients(native, padded, case.spec.gate_order), h, cfg.hidden,
                                [(d, cfg.inputs)])
        out = {"x": np.asarray(d_x, dtype=np.float64)[:b, :t, :d],
               "h0": np.asarray(d_state.hidden, dtype=np.float64)[:b, :h],
               "c0": np.asarray(d_state.cell, dtype=np.float64)[:b, :h]}
        out.update(grads)
        return out


class HaikuStaticUnrollAdapter(HaikuLSTMAdapter):
    """hk.LSTM with hk.static_unroll (the loop unrolled at trace time; no reverse)."""

    name = "haiku-static"
    api = "hk.LSTM + hk.static_unroll(time_major=False), hk.DeepRNN, the core per step, jax.grad"
    capabilities = Capabilities(
        dtypes=("float32", "float64", "float16", "bfloat16"),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "layers", "step", "gradients"}),
        max_layers=3,
        why_not={**_WHY_NOT, "reverse": "hk.static_unroll has no reverse"},
    )
    static = True

    def size_plan(self, plan):
        """The run's plan with no example at scale in the properties other than ``scale`` (which
        still draws the run's whole plan: up to 129 steps and 257 units under ``ci``).  A static
        unroll compiles one copy of the core per step, and its gradient a second, so every new
        padded length and shape costs seconds of XLA compilation (measured: 336 s for the
        properties with the run's plan, the gradients property alone 110 s).  Time is padded to
        powers of two (16, 32, 64, ...) rather than to multiples of 128.  "haiku" (the same core
        in a scan) takes the run's whole plan."""
        return dataclasses.replace(plan, share=0)
