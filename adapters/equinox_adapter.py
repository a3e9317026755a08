"""Equinox: ``eqx.nn.LSTMCell`` driven by ``jax.lax.scan`` over time and ``jax.vmap`` over the
batch (the way its docstring shows), one step at a time by calling the cell, gradients with
``jax.grad`` of a function of the cell module.

Convention (equinox/nn/_rnn.py, ``LSTMCell``, equinox 0.13.8)::

    h, c = hidden
    lin = self.weight_ih @ input + self.weight_hh @ h      # column vectors: weight_ih (4H, D), weight_hh (4H, H)
    if self.use_bias: lin = lin + self.bias               # one bias (4H,)
    i, f, g, o = jnp.split(lin, 4)                         # gate order i, f, g, o
    c = sigmoid(f) * c + sigmoid(i) * tanh(g); h = sigmoid(o) * tanh(c)
    return (h, c)

So PyTorch's orientation and gate order with one bias and no run-time forget bias; the cell is
unbatched (``input`` (D,), state (H,) each) and the state is ``(h, c)``.  Weights are converted
with the "equinox" entry of ``adapters.packings``.

What the adapter does on top of Equinox, and nothing else:

* a run-time forget bias and a second bias are folded into ``bias``;
* the loop is the one the docstring shows: ``jax.lax.scan`` over time with the cell's new state
  as the carry, ``jax.vmap`` over the batch; the scan also emits the state of every step, and
  the final state is read at the last true step, so that time can be padded;
* compiled functions are reused: batch, features and units are zero-padded to buckets
  (``adapters.padding``: exact) and time to 16 or a multiple of 128; one ``jax.jit`` per
  configuration, the cell module (a pytree whose leaves are the three arrays) passed as an
  argument, built by ``eqx.tree_at`` from a template made once per configuration.

Not expressible (unsupported): sequence lengths, the reverse direction, bidirectional and
stacked layers (Equinox has a cell only; the loop is the user's), peepholes, clips, projection,
other activations.
"""

from __future__ import annotations

from dataclasses import dataclass

from .jax_support import JNP_DTYPES  # isort: skip  (first: jax_enable_x64)

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from .base import Adapter, Capabilities, Case, Output  # noqa: E402
from .packings import PACKINGS  # noqa: E402
from .padding import bucket, bucket_steps, pad, pad_params, unpad_gradients  # noqa: E402

PACKING = PACKINGS["equinox"]
_NO_API = "Equinox has eqx.nn.LSTMCell only: the loop over time (jax.lax.scan) is the user's"


@dataclass(frozen=True)
class _Config:
    dtype: str
    batch: int
    steps: int
    inputs: int
    hidden: int
    use_bias: bool


def _scan(cell, x, h0, c0):
    """y (B, T, H) and every step's (h, c) for a batch: ``jax.lax.scan`` of the cell over time,
    ``jax.vmap`` over the batch."""
    def one(x_seq, h, c):
        def step(state, x_t):
            state = cell(x_t, state)
            return state, state

        _, (hs, cs) = jax.lax.scan(step, (h, c), x_seq)
        return hs, cs

    return jax.vmap(one)(x, h0, c0)


class EquinoxLSTMCellAdapter(Adapter):
    name = "equinox"
    framework = "equinox"
    api = "eqx.nn.LSTMCell in jax.lax.scan (time) and jax.vmap (batch), the cell per step, jax.grad"
    native_gate_order = "equinox"
    bias_convention = "one bias (4H,); a run-time forget bias and a second bias are folded into it"
    weight_orientation = "weight_ih (4H, D), weight_hh (4H, H), column vectors (weight_ih @ x)"
    capabilities = Capabilities(
        dtypes=("float32", "float64", "float16", "bfloat16"),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "step", "gradients"}),
        why_not={**{f: _NO_API for f in ("lengths", "empty_sequences", "reverse", "bidirectional", "layers")},
                 **{f: "eqx.nn.LSTMCell has none" for f in ("peepholes", "cell_clip", "gate_clip", "projection",
                                                            "proj_clip")},
                 **{a: "eqx.nn.LSTMCell's gates are jax.nn.sigmoid" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
                 **{a: "eqx.nn.LSTMCell's activation is jax.nn.tanh" for a in ("relu", "linear")}},
    )

    def __init__(self):
        self._templates: dict[_Config, object] = {}
        self._fns: dict[tuple, object] = {}

    def _config(self, case: Case, steps: int | None = None) -> _Config:
        return _Config(case.dtype, bucket(case.batch, 4), bucket_steps(case.steps if steps is None else steps),
                       bucket(case.params.input_size, 8), bucket(case.params.hidden_size, 8),
                       case.params.bias is not None or case.params.recurrent_bias is not None
                       or case.spec.forget_bias != 0.0)

    def _cell(self, case: Case, cfg: _Config):
        """The eqx.nn.LSTMCell of ``case``, padded to ``cfg``: a template made once per
        configuration (Equinox's own constructor) with the case's arrays put in by eqx.tree_at."""
        template = self._templates.get(cfg)
        if template is None:
            template = self._templates[cfg] = eqx.nn.LSTMCell(cfg.inputs, cfg.hidden, use_bias=cfg.use_bias,
                                                              dtype=JNP_DTYPES[cfg.dtype], key=jax.random.PRNGKey(0))
        padded = pad_params(case.params, cfg.hidden, [(case.params.input_size, cfg.inputs)])
        native = PACKING.to_native(padded, case.spec.gate_order, forget_bias=case.spec.forget_bias)
        names = sorted(native)
        leaves = [jnp.asarray(native[n], dtype=JNP_DTYPES[cfg.dtype]) for n in names]
        for n, leaf in zip(names, leaves):
            if leaf.shape != getattr(template, n).shape:
                raise RuntimeError(f"{self.name}: {n} has shape {leaf.shape}, eqx.nn.LSTMCell has "
                                   f"{getattr(template, n).shape}")
        return eqx.tree_at(lambda cell: [getattr(cell, n) for n in names], template, leaves)

    def _state(self, case: Case, cfg: _Config):
        dtype, shape = JNP_DTYPES[cfg.dtype], (cfg.batch, cfg.hidden)
        if case.initial_state is None:
            zero = np.zeros(shape, dtype=dtype)
            return zero, zero
        h0, c0 = case.initial_state[0]
        return pad(h0, shape, dtype), pad(c0, shape, dtype)

    def _x(self, case: Case, cfg: _Config):
        return pad(case.x, (cfg.batch, cfg.steps, cfg.inputs), JNP_DTYPES[cfg.dtype])

    def _compiled(self, what: str, cfg: _Config, build):
        fn = self._fns.get((what, cfg))
        if fn is None:
            fn = self._fns[what, cfg] = build()
        return fn

    def _cut(self, case: Case, array, last=None) -> np.ndarray:
        array = np.asarray(array, dtype=np.float64)
        b, h = case.batch, case.params.hidden_size
        return array[:b, :case.steps, :h] if last is None else array[:b, last, :h]

    # ------------------------------------------------------------------ the contract

    def run(self, case: Case) -> Output:
        cfg = self._config(case)
        fn = self._compiled("sequence", cfg, lambda: jax.jit(_scan))
        hs, cs = fn(self._cell(case, cfg), self._x(case, cfg), *self._state(case, cfg))
        last = case.steps - 1
        return Output(self._cut(case, hs), [(self._cut(case, hs, last), self._cut(case, cs, last))])

    def run_steps(self, case: Case) -> Output:
        """The cell called once per step (vmapped over the batch), (h, c) fed back."""
        cfg = self._config(case, steps=1)
        fn = self._compiled("step", cfg, lambda: jax.jit(lambda cell, x_t, h, c: jax.vmap(cell)(x_t, (h, c))))
        cell, dtype = self._cell(case, cfg), JNP_DTYPES[cfg.dtype]
        h, c = self._state(case, cfg)
        b, hidden = case.batch, case.params.hidden_size
        outputs = []
        for t in range(case.steps):
            h, c = fn(cell, pad(case.x[:, t], (cfg.batch, cfg.inputs), dtype), h, c)
            outputs.append(np.asarray(h, dtype=np.float64)[:b, :hidden])
        final = (outputs[-1], np.asarray(c, dtype=np.float64)[:b, :hidden])
        return Output(np.stack(outputs, axis=1), [final])

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        """``jax.grad`` of sum(y*dy) + sum(h_T*dh) + sum(c_T*dc) with respect to the cell module
        (its three arrays), x and (h0, c0), converted back with the packing's ``gradients``."""
        cfg = self._config(case)

        def build():
            def loss(cell, x, h0, c0, last, dy_, dh_, dc_):
                hs, cs = _scan(cell, x, h0, c0)
                return jnp.sum(hs * dy_) + jnp.sum(hs[:, last] * dh_) + jnp.sum(cs[:, last] * dc_)

            return jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))

        fn = self._compiled("gradients", cfg, build)
        dtype, shape = JNP_DTYPES[cfg.dtype], (cfg.batch, cfg.hidden)
        d_cell, d_x, d_h0, d_c0 = fn(self._cell(case, cfg), self._x(case, cfg), *self._state(case, cfg),
                                     np.int32(case.steps - 1), pad(dy, (cfg.batch, cfg.steps, cfg.hidden), dtype),
                                     pad(dh, shape, dtype), pad(dc, shape, dtype))
        p, b, d, h = case.params, case.batch, case.params.input_size, case.params.hidden_size
        native = {n: np.asarray(getattr(d_cell, n), dtype=np.float64) for n in ("weight_ih", "weight_hh", "bias")
                  if getattr(d_cell, n) is not None}
        segments = [(d, cfg.inputs)]
        out = {"x": np.asarray(d_x, dtype=np.float64)[:b, :case.steps, :d],
               "h0": np.asarray(d_h0, dtype=np.float64)[:b, :h], "c0": np.asarray(d_c0, dtype=np.float64)[:b, :h]}
        out.update(unpad_gradients(PACKING.gradients(native, pad_params(p, cfg.hidden, segments), case.spec.gate_order),
                                   h, cfg.hidden, segments))
        return out
