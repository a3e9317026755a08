"""Flax: ``flax.linen.LSTMCell`` and ``flax.linen.OptimizedLSTMCell`` run by ``flax.linen.RNN`` /
``flax.linen.Bidirectional``, and ``flax.nnx.LSTMCell`` run by ``flax.nnx.RNN`` /
``flax.nnx.Bidirectional``; single steps call the cell itself; gradients are ``jax.grad``.

Convention (flax/linen/recurrent.py and flax/nnx/nn/recurrent.py, flax 0.12):

* no packed 4H kernel: one Dense layer per gate.  The input side ``ii``, ``if``, ``ig``, ``io``
  has a kernel (D, H) and no bias; the recurrent side ``hi``, ``hf``, ``hg``, ``ho`` has a kernel
  (H, H) *and* the gate's bias (H,).  nnx names the forget input layer ``if_`` (``if`` is a Python
  keyword).  Kernels are row-vector (x @ kernel), like the reference, so no transposes.  The
  names are the "flax" and "flax_nnx" entries of ``adapters.packings`` (which splits the
  reference's 4H blocks per gate letter); the adapter never slices gate blocks itself.
* ``OptimizedLSTMCell`` keeps exactly the same parameter tree (``DenseParams`` named ``ii`` ...
  ``ho``); it only concatenates the four kernels at call time and runs one matmul per side.
* the carry is ``(c, h)`` -- cell state first, the reverse of the reference's ``(h, c)``.
* the gate nonlinearity is the cell's ``gate_fn`` (i, f, o) and the candidate / output one its
  ``activation_fn`` (g and c), the reference's recurrent_activation and activation.
  ``jax.nn.hard_sigmoid`` is relu6(x + 3) / 6, i.e. Keras 3's hard_sigmoid.

What the adapter does on top of Flax, and nothing else:

* a run-time forget bias (TF LSTMCell's ``forget_bias``) and a second bias (PyTorch ``b_hh``)
  are *folded* into the one bias of the recurrent Dense layers
  (``reference.layout.arrange_biases``): Flax has neither;
* per-sequence lengths go to ``RNN(seq_lengths=...)``, which returns the carry of each
  sequence's last valid step and reverses each sequence within its own length, but does NOT zero
  the outputs at padded steps (its docstring says so: the cell simply runs on over the padding).
  The adapter zeroes them (``jnp.where``, what every Flax user has to write), so the outputs
  follow the "zeros" semantics;
* reverse runs use ``RNN(reverse=True, keep_order=True)`` (outputs aligned to input steps, as
  ``Bidirectional`` uses it); stacked layers are a Module that chains ``RNN`` (or
  ``Bidirectional``) layers, Flax having no multi-layer LSTM;
* compiled functions are reused across examples: every array is zero-padded to a bucketed
  shape (batch, input features and units to powers of two >= 4 / 8 / 8, time to 16 or a
  multiple of 128) and every sequence run passes ``seq_lengths`` (the true length of each row),
  so padded time steps come after every valid one.  Padding is exact: padded input features
  meet zero kernel rows, padded units have zero weights, bias and state and stay exactly 0 under
  every supported activation (act(0) = 0 for tanh, relu, linear), and nothing padded feeds a
  real unit.  One ``jax.jit`` of a pure function of (params, x, carries, lengths) per
  configuration; XLA's executables are also kept on disk (``adapters.jax_support.persistent_compilation_cache``).
  ``pad_shapes=False`` (``adapters.flax_adapter:linen_exact_shapes`` and friends) runs the exact
  shapes instead and passes ``seq_lengths`` only for cases that have lengths, exercising RNN's
  plain path (one compilation per shape: slow, for checking the padded run).

Not expressible (reported unsupported): peepholes, cell_clip, gate_clip, projection, proj_clip,
and Keras 2's hard_sigmoid (clip(0.2 x + 0.5, 0, 1): no such function in Flax or jax.nn).
float64 needs ``jax_enable_x64``, which ``adapters.jax_support`` (imported first) switches on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

# First: switches jax_enable_x64 on before any array exists (float64 needs it).
from .jax_support import JNP_DTYPES as _JNP_DTYPES  # isort: skip

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import linen, nnx  # noqa: E402

from reference.spec import LSTMParams, LSTMSpec  # noqa: E402

from .base import Adapter, Capabilities, Case, Output, Unsupported  # noqa: E402
from .packings import PACKINGS, flax_layer_names  # noqa: E402
from .padding import bucket as _bucket  # noqa: E402
from .padding import bucket_steps as _bucket_steps  # noqa: E402
from .padding import pad as _pad  # noqa: E402
from .padding import pad_rows  # noqa: E402

#: The reference's activation names -> the functions Flax / jax.nn provide (gate_fn, activation_fn).
_GATE_FNS = {"sigmoid": linen.sigmoid, "hard_sigmoid": jax.nn.hard_sigmoid}
_ACTIVATION_FNS = {"tanh": linen.tanh, "relu": linen.relu, "linear": jax.nn.identity}

_FEATURES = frozenset({"initial_state", "forget_bias", "recurrent_bias", "lengths", "empty_sequences",
                       "reverse", "bidirectional", "layers", "step", "gradients"})


@dataclass(frozen=True)
class _Config:
    """Everything a compiled function depends on (its cache key)."""

    dtype: str
    gate_fn: str
    activation_fn: str
    layers: int
    direction: str
    batch: int
    steps: int
    inputs: int
    hidden: int
    with_lengths: bool

    @property
    def num_directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1

    def layer_inputs(self, k: int) -> int:
        return self.inputs if k == 0 else self.num_directions * self.hidden


class _FlaxAdapter(Adapter):
    """Shared machinery of the three Flax backends (see the module docstring)."""

    framework = "flax"
    native_gate_order = "ifgo"  # letters of the per-gate Dense layers; no packed order exists
    bias_convention = ("one bias per gate, on the recurrent Dense layers hi/hf/hg/ho; the input "
                       "Dense layers ii/if/ig/io have none")
    weight_orientation = "per gate: input kernel (D, H), recurrent kernel (H, H), bias (H,)"
    capabilities = Capabilities(
        dtypes=("float32", "float64", "float16", "bfloat16"),
        recurrent_activations=tuple(_GATE_FNS),
        activations=tuple(_ACTIVATION_FNS),
        features=_FEATURES,
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
        why_not={**{f: "Flax's LSTM cells have none" for f in ("peepholes", "cell_clip", "gate_clip",
                                                              "projection", "proj_clip")},
                 "hard_sigmoid_keras2": "no gate_fn for Keras 2's 0.2 x + 0.5 in Flax / jax.nn"},
    )
    packing = PACKINGS["flax"]
    #: Names of the per-gate Dense layers on the input side by gate letter.
    input_layers = flax_layer_names("f")[0]

    def __init__(self, *, pad_shapes: bool = True):
        if not isinstance(pad_shapes, bool):
            raise ValueError(f"pad_shapes: expected a bool, got {pad_shapes!r}")
        self.pad_shapes = pad_shapes
        if not pad_shapes:
            self.name = f"{type(self).name}-exact-shapes"
        self._sequence_fns: dict[_Config, object] = {}
        self._step_fns: dict[_Config, object] = {}
        self._gradient_fns: dict[_Config, object] = {}

    # ---------------------------------------------------------------------------------------
    # What each backend provides

    def _sequence_module(self, cfg: _Config):
        """A pure ``f(params, x, carries, lengths) -> (y, finals)`` running the whole stack.
        linen's ``apply`` rejects a converted tree that is not Flax's (a renamed layer, a wrong
        shape); ``nnx.merge`` does not, hence :meth:`_checked`."""
        raise NotImplementedError

    def _step_module(self, cfg: _Config):
        """A pure ``f(cell_params, carry, x_t) -> (carry, y)`` calling the cell once."""
        raise NotImplementedError

    def _layer_path(self, k: int, d: int, cfg: _Config) -> tuple[str, ...]:
        """Keys of the cell parameters of layer ``k``, direction ``d`` in the stack's tree."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------------------
    # Conversions

    def _config(self, case: Case, *, steps: int | None = None) -> _Config:
        spec = case.spec
        batch, d, h = case.batch, case.params.input_size, case.params.hidden_size
        t = case.steps if steps is None else steps
        if self.pad_shapes:
            return _Config(case.dtype, spec.recurrent_activation, spec.activation, len(case.layers),
                           case.direction, _bucket(batch, 4), _bucket_steps(t), _bucket(d, 8),
                           _bucket(h, 8), True)
        return _Config(case.dtype, spec.recurrent_activation, spec.activation, len(case.layers),
                       case.direction, batch, t, d, h, case.lengths is not None)

    def _cell_params(self, params: LSTMParams, spec: LSTMSpec, cfg: _Config,
                     segments: list[tuple[int, int]]) -> dict:
        """One cell's Flax parameter tree from reference params, zero-padded to ``cfg``."""
        dtype = _JNP_DTYPES[cfg.dtype]
        inputs = set(self.input_layers.values())
        tree: dict = {}
        for name, value in self.packing.to_native(params, spec.gate_order, forget_bias=spec.forget_bias).items():
            layer, field = name.split("/")
            if layer in inputs:
                rows = pad_rows(value, segments)
                padded = _pad(rows, (rows.shape[0], cfg.hidden), dtype)
            else:
                padded = _pad(value, (cfg.hidden,) * value.ndim, dtype)
            tree.setdefault(layer, {})[field] = padded
        return tree

    def _native_params(self, case: Case, cfg: _Config) -> dict:
        tree: dict = {}
        h = case.params.hidden_size
        for k, directions in enumerate(case.layers):
            if k == 0:
                segments = [(case.params.input_size, cfg.inputs)]
            else:
                segments = [(h, cfg.hidden)] * cfg.num_directions
            for d, params in enumerate(directions):
                node = tree
                *parents, leaf = self._layer_path(k, d, cfg)
                for key in parents:
                    node = node.setdefault(key, {})
                node[leaf] = self._cell_params(params, case.spec, cfg, segments)
        return tree

    def _carries(self, case: Case, cfg: _Config) -> list:
        """Flax carries (c, h) per layer and direction, padded; zeros when there is no state."""
        dtype = _JNP_DTYPES[cfg.dtype]
        count = len(case.layers) * case.num_directions
        states = case.initial_state
        if states is None:
            zero = np.zeros((cfg.batch, cfg.hidden), dtype=dtype)
            return [(zero, zero)] * count
        if len(states) != count:
            raise ValueError(f"case.initial_state: expected {count} (h0, c0) pairs, got {len(states)}")
        shape = (cfg.batch, cfg.hidden)
        return [(_pad(c, shape, dtype), _pad(h, shape, dtype)) for h, c in states]

    def _inputs(self, case: Case, cfg: _Config):
        dtype = _JNP_DTYPES[cfg.dtype]
        x = _pad(case.x, (cfg.batch, cfg.steps, cfg.inputs), dtype)
        lengths = np.full(cfg.batch, case.steps, dtype=np.int32)
        if case.lengths is not None:
            lengths[:case.batch] = np.asarray(case.lengths, dtype=np.int32)
        return x, lengths

    @staticmethod
    def _unpad_state(c, h, batch: int, hidden: int) -> tuple[np.ndarray, np.ndarray]:
        """A Flax carry (c, h) -> the reference's (h, c), float64, padding removed."""
        return (np.asarray(h, dtype=np.float64)[:batch, :hidden],
                np.asarray(c, dtype=np.float64)[:batch, :hidden])

    # ---------------------------------------------------------------------------------------
    # Compiled functions, one per configuration

    def _sequence_fn(self, cfg: _Config):
        fn = self._sequence_fns.get(cfg)
        if fn is None:
            forward = self._sequence_module(cfg)
            fn = self._sequence_fns[cfg] = (forward, jax.jit(forward))
        return fn

    def _checked(self, params: dict, cfg: _Config, what: str) -> dict:
        """``params``, after checking its tree against the module's own where Flax does not."""
        return params

    def _run_padded(self, case: Case) -> Output:
        cfg = self._config(case)
        _, fn = self._sequence_fn(cfg)
        x, lengths = self._inputs(case, cfg)
        params = self._checked(self._native_params(case, cfg), cfg, "sequence")
        y, finals = fn(params, x, self._carries(case, cfg), lengths if cfg.with_lengths else None)
        return self._output(case, cfg, y, finals)

    def _output(self, case: Case, cfg: _Config, y, finals) -> Output:
        h = case.params.hidden_size
        y = np.asarray(y, dtype=np.float64)[:case.batch, :case.steps]
        # Bidirectional output is [forward units | backward units], each padded to cfg.hidden.
        halves = np.split(y, cfg.num_directions, axis=-1)
        y = np.concatenate([half[..., :h] for half in halves], axis=-1)
        return Output(y, [self._unpad_state(c, hh, case.batch, h) for c, hh in finals])

    # ---------------------------------------------------------------------------------------
    # The adapter calls

    def run(self, case: Case) -> Output:
        return self._run_padded(case)

    def run_steps(self, case: Case) -> Output:
        """The cell called once per step (``cell.apply`` / the nnx cell), the carry fed back.
        Stacks and other directions go through the default (``run`` on one-step slices)."""
        if case.lengths is not None:
            raise Unsupported(f"{self.name}: a cell called step by step takes no lengths")
        if len(case.layers) != 1 or case.direction != "forward":
            return super().run_steps(case)
        cfg = self._config(case, steps=1)
        fn = self._step_fns.get(cfg)
        if fn is None:
            fn = self._step_fns[cfg] = jax.jit(self._step_module(cfg))
        params = self._checked(self._cell_params(case.params, case.spec, cfg,
                                                 [(case.params.input_size, cfg.inputs)]), cfg, "cell")
        dtype = _JNP_DTYPES[cfg.dtype]
        carry = self._carries(case, cfg)[0]
        outputs = []
        for t in range(case.steps):
            x_t = _pad(case.x[:, t], (cfg.batch, cfg.inputs), dtype)
            carry, y = fn(params, carry, x_t)
            outputs.append(np.asarray(y, dtype=np.float64)[:case.batch, :case.params.hidden_size])
        final = self._unpad_state(*carry, case.batch, case.params.hidden_size)
        return Output(np.stack(outputs, axis=1), [final])

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        """``jax.grad`` of sum(y*dy) + sum(h_T*dh) + sum(c_T*dc), a pure function of the Flax
        parameter tree, x and the carry; converted back with the packing's ``gradients``.  The folded bias
        gets one gradient, reported for ``bias`` and ``recurrent_bias`` alike."""
        if len(case.layers) != 1 or case.direction != "forward":
            raise Unsupported(f"{self.name}: gradients are implemented for one forward layer")
        cfg = self._config(case)
        fn = self._gradient_fns.get(cfg)
        if fn is None:
            forward, _ = self._sequence_fn(cfg)

            def loss(params, x, carry, lengths, dy_, dh_, dc_):
                y, finals = forward(params, x, [carry], lengths)
                c, h = finals[0]
                return jnp.sum(y * dy_) + jnp.sum(h * dh_) + jnp.sum(c * dc_)

            fn = self._gradient_fns[cfg] = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
        dtype = _JNP_DTYPES[cfg.dtype]
        x, lengths = self._inputs(case, cfg)
        shape = (cfg.batch, cfg.hidden)
        d_params, d_x, (d_c0, d_h0) = fn(
            self._checked(self._native_params(case, cfg), cfg, "sequence"), x, self._carries(case, cfg)[0],
            lengths if cfg.with_lengths else None,
            _pad(dy, (cfg.batch, cfg.steps, cfg.hidden), dtype), _pad(dh, shape, dtype),
            _pad(dc, shape, dtype))
        b, d, h = case.batch, case.params.input_size, case.params.hidden_size
        cell = d_params
        for key in self._layer_path(0, 0, cfg):
            cell = cell[key]
        inputs = set(self.input_layers.values())
        native = {}  # the gradients of the packing's arrays, padding removed
        for layer, fields in cell.items():
            for field, grad in fields.items():
                grad = np.asarray(grad, dtype=np.float64)
                native[f"{layer}/{field}"] = (grad[:d, :h] if layer in inputs else
                                              grad[:h, :h] if field == "kernel" else grad[:h])
        out = {
            "x": np.asarray(d_x, dtype=np.float64)[:b, :case.steps, :d],
            "h0": np.asarray(d_h0, dtype=np.float64)[:b, :h],
            "c0": np.asarray(d_c0, dtype=np.float64)[:b, :h],
        }
        out.update(self.packing.gradients(native, case.params, case.spec.gate_order))
        return out


def _mask(y, lengths):
    """Zero the outputs at padded steps (Flax's RNN leaves the cell's outputs there)."""
    if lengths is None:
        return y
    valid = jnp.arange(y.shape[1])[None, :] < lengths[:, None]
    return jnp.where(valid[..., None], y, jnp.zeros((), y.dtype))


# -------------------------------------------------------------------------------------------
# flax.linen


class _LinenStack(linen.Module):
    """Stacked ``linen.RNN`` (or ``linen.Bidirectional``) layers; the cells are named explicitly
    (``layer{k}``, ``layer{k}_forward``, ``layer{k}_backward``) so that their parameters have
    known paths: a cell built inside a compact method keeps its parameters in the scope where it
    was created, whatever RNN / Bidirectional wrap it."""

    cell_type: type
    features: int
    layers: int
    direction: str
    gate_fn: str
    activation_fn: str
    dtype: str

    def _rnn(self, name: str):
        dtype = _JNP_DTYPES[self.dtype]
        cell = self.cell_type(self.features, gate_fn=_GATE_FNS[self.gate_fn],
                              activation_fn=_ACTIVATION_FNS[self.activation_fn], dtype=dtype,
                              param_dtype=dtype, name=name)
        return linen.RNN(cell)

    @linen.compact
    def __call__(self, x, carries, lengths):
        finals = []
        for k in range(self.layers):
            if self.direction == "bidirectional":
                layer = linen.Bidirectional(self._rnn(f"layer{k}_forward"), self._rnn(f"layer{k}_backward"))
                (fw, bw), x = layer(x, initial_carry=(carries[2 * k], carries[2 * k + 1]),
                                    seq_lengths=lengths, return_carry=True)
                finals += [fw, bw]
            else:
                rnn = self._rnn(f"layer{k}")
                carry, x = rnn(x, initial_carry=carries[k], seq_lengths=lengths, return_carry=True,
                               reverse=self.direction == "reverse", keep_order=True)
                finals.append(carry)
        return _mask(x, lengths), finals


class LinenLSTMCellAdapter(_FlaxAdapter):
    """``flax.linen.LSTMCell`` in ``flax.linen.RNN`` (Bidirectional for two directions)."""

    name = "flax-linen"
    api = ("flax.linen.RNN(flax.linen.LSTMCell, seq_lengths=..., return_carry=True, "
           "reverse/keep_order=True), flax.linen.Bidirectional, LSTMCell.apply per step, jax.grad")
    cell_type = linen.LSTMCell

    def _layer_path(self, k, d, cfg):
        if cfg.direction == "bidirectional":
            return (f"layer{k}_forward",) if d == 0 else (f"layer{k}_backward",)
        return (f"layer{k}",)

    def _sequence_module(self, cfg):
        module = _LinenStack(self.cell_type, cfg.hidden, cfg.layers, cfg.direction, cfg.gate_fn,
                             cfg.activation_fn, cfg.dtype)

        def forward(params, x, carries, lengths):
            return module.apply({"params": params}, x, carries, lengths)

        return forward

    def _step_module(self, cfg):
        dtype = _JNP_DTYPES[cfg.dtype]
        cell = self.cell_type(cfg.hidden, gate_fn=_GATE_FNS[cfg.gate_fn],
                              activation_fn=_ACTIVATION_FNS[cfg.activation_fn], dtype=dtype,
                              param_dtype=dtype)

        def step(params, carry, x_t):
            return cell.apply({"params": params}, carry, x_t)

        return step


class LinenOptimizedLSTMCellAdapter(LinenLSTMCellAdapter):
    """``flax.linen.OptimizedLSTMCell`` (same parameter tree as LSTMCell; one concatenated
    matmul per side) in ``flax.linen.RNN`` / ``Bidirectional``."""

    name = "flax-linen-optimized"
    api = ("flax.linen.RNN(flax.linen.OptimizedLSTMCell, seq_lengths=..., return_carry=True, "
           "reverse/keep_order=True), flax.linen.Bidirectional, OptimizedLSTMCell.apply per step, jax.grad")
    cell_type = linen.OptimizedLSTMCell


# -------------------------------------------------------------------------------------------
# flax.nnx


class _NnxStack(nnx.Module):
    """Stacked ``nnx.RNN`` (or ``nnx.Bidirectional``) layers as attributes ``layer0``, ``layer1``..."""

    def __init__(self, cfg: _Config):
        self.depth = cfg.layers
        self.direction = cfg.direction
        for k in range(cfg.layers):
            if cfg.direction == "bidirectional":
                layer = nnx.Bidirectional(_nnx_rnn(cfg, k), _nnx_rnn(cfg, k), rngs=False)
            else:
                layer = _nnx_rnn(cfg, k)
            setattr(self, f"layer{k}", layer)

    def __call__(self, x, carries, lengths):
        finals = []
        for k in range(self.depth):
            layer = getattr(self, f"layer{k}")
            if self.direction == "bidirectional":
                (fw, bw), x = layer(x, initial_carry=(carries[2 * k], carries[2 * k + 1]),
                                    seq_lengths=lengths, return_carry=True)
                finals += [fw, bw]
            else:
                carry, x = layer(x, initial_carry=carries[k], seq_lengths=lengths, return_carry=True,
                                 reverse=self.direction == "reverse", keep_order=True)
                finals.append(carry)
        return _mask(x, lengths), finals


def _nnx_cell(cfg: _Config, in_features: int):
    dtype = _JNP_DTYPES[cfg.dtype]
    zeros = nnx.initializers.zeros_init()  # the weights come from the case
    return nnx.LSTMCell(in_features, cfg.hidden, gate_fn=_GATE_FNS[cfg.gate_fn],
                        activation_fn=_ACTIVATION_FNS[cfg.activation_fn], dtype=dtype,
                        param_dtype=dtype, kernel_init=zeros, recurrent_kernel_init=zeros,
                        bias_init=zeros, rngs=nnx.Rngs(0))


def _nnx_rnn(cfg: _Config, k: int):
    return nnx.RNN(_nnx_cell(cfg, cfg.layer_inputs(k)), rngs=False)


class NnxLSTMCellAdapter(_FlaxAdapter):
    """``flax.nnx.LSTMCell`` in ``flax.nnx.RNN`` (``nnx.Bidirectional`` for two directions);
    the module is split once per configuration (``nnx.split``) and merged with new weights inside
    the jitted function (``nnx.merge``)."""

    name = "flax-nnx"
    api = ("flax.nnx.RNN(flax.nnx.LSTMCell, seq_lengths=..., return_carry=True, "
           "reverse/keep_order=True), flax.nnx.Bidirectional, nnx.LSTMCell per step, jax.grad")
    packing = PACKINGS["flax_nnx"]
    input_layers = flax_layer_names("f_")[0]

    def _layer_path(self, k, d, cfg):
        if cfg.direction == "bidirectional":
            return (f"layer{k}", "forward_rnn" if d == 0 else "backward_rnn", "cell")
        return (f"layer{k}", "cell")

    def __init__(self, *, pad_shapes: bool = True):
        super().__init__(pad_shapes=pad_shapes)
        self._trees: dict[tuple[str, _Config], tuple] = {}

    def _split(self, build, cfg: _Config, what: str):
        # nnx.eval_shape: the module is built abstractly (no initializer runs; they are eager
        # JAX calls, the orthogonal one costs a QR per layer); the weights come from the case.
        graphdef, state = nnx.split(nnx.eval_shape(build))
        pure = nnx.to_pure_dict(state)
        self._trees[what, cfg] = (jax.tree_util.tree_structure(pure),
                                  [np.shape(a) for a in jax.tree_util.tree_leaves(pure)])
        return graphdef

    def _checked(self, params, cfg, what):
        """``nnx.merge(graphdef, pure_dict)`` assigns the leaves of a pure dict by position (in
        sorted key order) without looking at the names: a misnamed layer silently receives its
        neighbour's weights.  So the converted tree is checked against the module's own."""
        structure, shapes = self._trees[what, cfg]
        if (jax.tree_util.tree_structure(params) != structure
                or [np.shape(a) for a in jax.tree_util.tree_leaves(params)] != shapes):
            raise RuntimeError(f"{self.name}: the converted {what} parameter tree "
                               f"{jax.tree_util.tree_map(np.shape, params)} is not the one flax "
                               f"{self.version()} builds ({structure}, leaf shapes {shapes})")
        return params

    def _sequence_module(self, cfg):
        graphdef = self._split(lambda: _NnxStack(cfg), cfg, "sequence")

        def forward(params, x, carries, lengths):
            return nnx.merge(graphdef, params)(x, carries, lengths)

        return forward

    def _step_module(self, cfg):
        graphdef = self._split(lambda: _nnx_cell(cfg, cfg.inputs), cfg, "cell")

        def step(params, carry, x_t):
            return nnx.merge(graphdef, params)(carry, x_t)

        return step


# Factories for ``--backend adapters.flax_adapter:linen_exact_shapes`` (exact shapes, no padding).
linen_exact_shapes = functools.partial(LinenLSTMCellAdapter, pad_shapes=False)
linen_optimized_exact_shapes = functools.partial(LinenOptimizedLSTMCellAdapter, pad_shapes=False)
nnx_exact_shapes = functools.partial(NnxLSTMCellAdapter, pad_shapes=False)
