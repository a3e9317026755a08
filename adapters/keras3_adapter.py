"""Keras 3: ``keras.layers.LSTM``, ``Bidirectional`` and ``LSTMCell`` on the tensorflow, jax and
torch backends (one adapter per backend: "keras3-tf", "keras3-jax", "keras3-torch").

Convention modelled (keras/src/layers/rnn/lstm.py, Keras 3.15):

* ``LSTMCell`` holds ``kernel`` (D, 4H), ``recurrent_kernel`` (H, 4H) and one ``bias`` (4H,), gate
  blocks i, f, c, o (preset "keras3" = "ifgo"); ``z = x @ kernel + h @ recurrent_kernel + bias``
  (the "keras" entry of ``adapters.packings``).
* ``unit_forget_bias=True`` (the default) only *initialises* the forget block of the bias to 1;
  nothing is added at run time.  A reference run-time ``forget_bias`` is therefore folded into the
  bias by this adapter, and a second bias (``recurrent_bias``) is summed into the one bias
  (``reference.layout.arrange_biases``): this is what a user porting TF LSTMCell or PyTorch
  weights to Keras has to do.
* ``recurrent_activation="hard_sigmoid"`` is ``keras.ops.hard_sigmoid`` = relu6(x + 3) / 6 =
  clip(x / 6 + 1/2, 0, 1) on every backend (keras/src/backend/*/nn.py): reference name
  "hard_sigmoid" (not Keras 2's 0.2 x + 0.5, which Keras 3 has no built-in for).
* Masks (``mask=`` (B, T) booleans from per-sequence lengths) carry the state through masked steps;
  the output of a masked step is the previous output (``zero_output_for_mask=False``), zeros before
  the first valid step: reference length_semantics "repeat".  Keras' ``Bidirectional`` forces
  ``zero_output_for_mask=True`` on both of its layers (keras/src/layers/rnn/bidirectional.py):
  bidirectional_length_semantics "zeros".  The JAX backend's scan outputs ``states[0]`` (h_{t-1},
  i.e. h0 before the first valid step) at a masked step (keras/src/backend/jax/rnn.py): a
  documented known issue.
* ``go_backwards=True`` returns the outputs in processed order (not flipped back): reverse time
  order "processed".  ``Bidirectional`` flips the backward outputs back (aligned).
* ``stateful=True`` keeps (h, c) in variables ``layer.states`` (created untracked: they are not
  among ``layer.non_trainable_variables``); Keras 3 removed ``reset_states(states=...)``, so a
  given initial state is assigned to ``layer.states[k]`` and ``layer.reset_state()`` zeroes them
  between documents.
* dtypes: float32, float64 (JAX: a known issue, ``keras.ops.tanh`` computes in float32), float16
  and bfloat16 all run on CPU.  The default ``recurrent_initializer="orthogonal"`` cannot build a
  half-precision layer on CPU (a QR decomposition: TF bfloat16, JAX and torch float16/bfloat16);
  the weights here are loaded, never initialised randomly.
* No peepholes, cell clip, gate clip or projection exist in Keras: those are unsupported.

Speed: every call goes through ``layer.stateless_call`` of a layer built once per structure and
reused with new weight values: under ``jax.jit`` on JAX (an eager JAX call re-compiles its scan,
~160 ms), eagerly on TF for short sequences (a ``tf.function`` trace costs more than it saves
when shapes rarely repeat, see Keras3TFAdapter) and under ``torch.no_grad`` on torch.  On JAX
``jax_enable_x64`` is switched on (float64 layers).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import numpy as np

from .base import FEATURES, Adapter, Capabilities, Case, Output, Unsupported
from .packings import PACKINGS

PACKING = PACKINGS["keras"]

#: Adapter name -> the value ``keras.backend.backend()`` must have.
KERAS_BACKENDS = {"keras3-tf": "tensorflow", "keras3-jax": "jax", "keras3-torch": "torch"}

_HALF = ("float16", "bfloat16")
_FEATURES = frozenset({"initial_state", "forget_bias", "recurrent_bias", "lengths", "empty_sequences",
                       "reverse", "bidirectional", "layers", "step", "stateful", "gradients"})
assert _FEATURES <= set(FEATURES)


def _capabilities(dtypes: tuple[str, ...]) -> Capabilities:
    return Capabilities(
        dtypes=dtypes,
        recurrent_activations=("sigmoid", "hard_sigmoid"),
        activations=("tanh", "relu", "linear"),
        features=_FEATURES,
        length_semantics="repeat",
        bidirectional_length_semantics="zeros",
        reverse_time_order="processed",
        max_layers=3,
        gradient_dtypes=("float32", "float64"),
        why_not={**{f: "keras.layers.LSTM has none" for f in ("peepholes", "cell_clip", "gate_clip",
                                                               "projection", "proj_clip")},
                 "hard_sigmoid_keras2": "Keras 3's hard_sigmoid is x/6 + 1/2; it has no built-in for "
                                        "Keras 2's 0.2 x + 0.5",
                 "length_semantics zeros": "keras.layers.LSTM repeats the previous output at a masked "
                                           "step (zero_output_for_mask=False)",
                 "length_semantics repeat": "keras.layers.Bidirectional forces zero_output_for_mask=True "
                                            "on both of its layers"},
    )


def native_weights(params, spec) -> dict[str, np.ndarray]:
    """Reference params -> Keras LSTMCell variables {"kernel", "recurrent_kernel", "bias"} (no
    "bias" means ``use_bias=False``); the forget bias and a second bias are folded in."""
    return PACKING.to_native(params, spec.gate_order, forget_bias=spec.forget_bias)


def _no_init() -> dict:
    """Initializer arguments for a layer whose weights are always loaded from the case.

    Keras' random initializers (orthogonal, Glorot) and even ``ops.zeros`` compile per shape on
    JAX and dominated the cost of building a layer; this one makes NumPy zeros (no backend op).
    It is registered as serializable because ``Bidirectional`` rebuilds its layers from their
    config.
    """
    import keras

    global _HostZeros
    if _HostZeros is None:
        @keras.saving.register_keras_serializable(package="lstm_conformance")
        class HostZeros(keras.initializers.Initializer):
            def __call__(self, shape, dtype=None):
                host = "float64" if dtype == "float64" else "float32"
                return np.zeros(shape, dtype=host)

        _HostZeros = HostZeros
    return {"kernel_initializer": _HostZeros(), "recurrent_initializer": _HostZeros(),
            "bias_initializer": _HostZeros(), "unit_forget_bias": False}


_HostZeros = None


def _fixed(layer) -> list:
    """The current values of a layer's non-trainable variables (the dropout seed generator's
    state; unused without dropout), for ``stateless_call``."""
    return [v.value for v in layer.non_trainable_variables]


class Keras3Adapter(Adapter):
    """Base of the three Keras 3 adapters; a subclass fixes ``keras_backend``."""

    name = "keras3"
    framework = "keras"
    keras_backend = "?"
    api = "keras.layers.LSTM / Bidirectional / LSTMCell"
    native_gate_order = "keras3"
    bias_convention = ("one bias; a run-time forget bias and a second bias are folded into it "
                       "(unit_forget_bias is only an initializer)")
    weight_orientation = "kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,)"
    capabilities = _capabilities(("float32", "float64"))

    def __init__(self):
        expected = KERAS_BACKENDS.get(self.name)
        if expected is None:
            raise ValueError(f"name: expected one of {sorted(KERAS_BACKENDS)} (a Keras3Adapter "
                             f"subclass), got {self.name!r}")
        env = os.environ.get("KERAS_BACKEND")
        if env is None and "keras" not in sys.modules:
            os.environ["KERAS_BACKEND"] = env = expected  # keras reads it once, at import
        if env is not None and env != expected:
            raise ValueError(f"backend {self.name!r}: expected KERAS_BACKEND={expected!r} (set before "
                             f"keras is imported), got KERAS_BACKEND={env!r}")
        try:
            if expected == "jax":
                import jax

                jax.config.update("jax_enable_x64", True)
            import keras
        except ImportError as exc:
            raise ValueError(f"backend {self.name!r}: cannot import keras with the {expected} backend "
                             f"(pip install keras==3.15.1 and {expected}): {exc}") from exc

        actual = keras.backend.backend()
        if actual != expected:
            raise ValueError(f"backend {self.name!r}: expected Keras running on {expected!r} "
                             f"(KERAS_BACKEND={expected} before keras is imported), got {actual!r} "
                             f"(KERAS_BACKEND={env!r})")
        self.keras = keras
        self._cache: dict = {}

    # ------------------------------------------------------------------ backend specifics

    def _compile(self, fn):
        """A compiled version of a pure function of (nested lists of) tensors."""
        raise NotImplementedError

    def _grad(self, loss):
        """Compiled function: args -> gradients of ``loss(*args)`` w.r.t. its first four args."""
        raise NotImplementedError

    def backend_version(self) -> str:
        from importlib import metadata

        dist = {"tensorflow": "tensorflow-cpu", "jax": "jax", "torch": "torch"}[self.keras_backend]
        for name in (dist, self.keras_backend):
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        return "unknown"

    def describe(self) -> dict:
        out = super().describe()
        out["keras_backend"] = self.keras_backend
        out["keras_backend_version"] = self.backend_version()
        return out

    # ------------------------------------------------------------------ helpers

    def _tensor(self, array, dtype):
        host = "float64" if dtype == "float64" else "float32"
        return self.keras.ops.convert_to_tensor(np.asarray(array, dtype=host), dtype=dtype)

    def _numpy(self, tensor) -> np.ndarray:
        return np.asarray(self.keras.ops.convert_to_numpy(tensor), dtype=np.float64)

    def _out(self, tensor, dtype):
        """Inside a compiled function: half precision results widened (exactly) for NumPy."""
        return self.keras.ops.cast(tensor, "float32") if dtype in _HALF else tensor

    def _lstm(self, case: Case, hidden: int, **kwargs):
        spec = case.spec
        return self.keras.layers.LSTM(
            hidden, activation=spec.activation, recurrent_activation=spec.recurrent_activation,
            use_bias=self._use_bias(case), dtype=case.dtype, **_no_init(), **kwargs)

    def _use_bias(self, case: Case) -> bool:
        p = case.params
        return p.bias is not None or p.recurrent_bias is not None or bool(case.spec.forget_bias)

    def _key(self, case: Case, kind: str, *extra):
        s = case.spec
        dims = tuple((p.input_size, p.hidden_size) for p in (layer[0] for layer in case.layers))
        return (kind, dims, case.dtype, s.activation, s.recurrent_activation, self._use_bias(case),
                case.direction) + extra

    # ------------------------------------------------------------------ whole sequences

    def _sequence_fn(self, case: Case):
        """(layers, variable order per layer, compiled forward) for the case's structure."""
        key = self._key(case, "sequence")
        if key in self._cache:
            return self._cache[key]
        keras, dtype = self.keras, case.dtype
        layers, orders = [], []
        for dirs in case.layers:
            d, h = dirs[0].input_size, dirs[0].hidden_size
            if case.direction == "bidirectional":
                layer = keras.layers.Bidirectional(
                    self._lstm(case, h, return_sequences=True, return_state=True),
                    merge_mode="concat", dtype=dtype)
                layer.build((None, None, d))
                subs = [layer.forward_layer, layer.backward_layer]
            else:
                layer = self._lstm(case, h, return_sequences=True, return_state=True,
                                   go_backwards=case.direction == "reverse")
                layer.build((None, None, d))
                subs = [layer]
            where = {id(v): (j, v.name) for j, sub in enumerate(subs) for v in sub.trainable_variables}
            orders.append([where[id(v)] for v in layer.trainable_variables])
            layers.append(layer)

        def forward(weights, x, mask, states):
            y, finals = x, []
            for k, layer in enumerate(layers):
                init = None if states is None else states[k]
                out, _ = layer.stateless_call(weights[k], _fixed(layer), y, initial_state=init,
                                              mask=mask)
                y = out[0]
                finals.append([self._out(s, dtype) for s in out[1:]])
            return self._out(y, dtype), finals

        entry = (layers, orders, self._compile(forward))
        self._cache[key] = entry
        return entry

    def _weights(self, case: Case, orders):
        out = []
        for dirs, order in zip(case.layers, orders):
            native = [native_weights(p, case.spec) for p in dirs]
            out.append([self._tensor(native[j][name], case.dtype) for j, name in order])
        return out

    def _states(self, case: Case):
        if case.initial_state is None:
            return None
        n = case.num_directions
        grouped = []
        for k in range(len(case.layers)):
            flat = []
            for h, c in case.initial_state[k * n:(k + 1) * n]:
                flat += [self._tensor(h, case.dtype), self._tensor(c, case.dtype)]
            grouped.append(flat)
        return grouped

    def _mask(self, case: Case):
        if case.lengths is None:
            return None
        mask = np.arange(case.steps)[None, :] < np.asarray(case.lengths)[:, None]
        return self.keras.ops.convert_to_tensor(mask, dtype="bool")

    def run(self, case: Case) -> Output:
        _, orders, forward = self._sequence_fn(case)
        y, finals = forward(self._weights(case, orders), self._tensor(case.x, case.dtype),
                            self._mask(case), self._states(case))
        final = []
        for states in finals:
            values = [self._numpy(s) for s in states]
            final += [(values[j], values[j + 1]) for j in range(0, len(values), 2)]
        return Output(self._numpy(y), final)

    # ------------------------------------------------------------------ one step at a time

    def _cell_fn(self, case: Case):
        key = self._key(case, "cell")
        if key in self._cache:
            return self._cache[key]
        keras, dtype, spec = self.keras, case.dtype, case.spec
        cells = []
        for dirs in case.layers:
            cell = keras.layers.LSTMCell(
                dirs[0].hidden_size, activation=spec.activation,
                recurrent_activation=spec.recurrent_activation, use_bias=self._use_bias(case),
                dtype=dtype, **_no_init())
            cell.build((None, dirs[0].input_size))
            cells.append(cell)
        orders = [[(0, v.name) for v in cell.trainable_variables] for cell in cells]

        def step(weights, x_t, states):
            inp, new = x_t, []
            for k, cell in enumerate(cells):
                (inp, state), _ = cell.stateless_call(weights[k], _fixed(cell), inp, states[k])
                new.append(list(state))
            return self._out(inp, dtype), new

        entry = (cells, orders, self._compile(step))
        self._cache[key] = entry
        return entry

    def run_steps(self, case: Case) -> Output:
        """Greedy decoding with ``keras.layers.LSTMCell``: one call per step, the returned
        [h, c] fed into the next call."""
        if case.direction != "forward" or case.lengths is not None:
            raise Unsupported(f"{self.name}: the LSTMCell step loop runs forward without masks")
        _, orders, step = self._cell_fn(case)
        weights = self._weights(case, orders)
        if case.initial_state is None:
            states = [[self._tensor(np.zeros((case.batch, p[0].hidden_size)), case.dtype)] * 2
                      for p in case.layers]
        else:
            states = [[self._tensor(h, case.dtype), self._tensor(c, case.dtype)]
                      for h, c in case.initial_state]
        outputs = []
        for t in range(case.steps):
            y, states = step(weights, self._tensor(case.x[:, t], case.dtype), states)
            outputs.append(self._numpy(y)[:, None])
        final = [(self._numpy(self._widen(h, case.dtype)), self._numpy(self._widen(c, case.dtype)))
                 for h, c in states]
        return Output(np.concatenate(outputs, axis=1), final)

    # ------------------------------------------------------------------ stateful layers

    def _stateful_fn(self, case: Case):
        key = self._key(case, "stateful", case.batch)
        if key in self._cache:
            return self._cache[key]
        p = case.params
        layer = self._lstm(case, p.hidden_size, return_sequences=True, stateful=True)
        layer.build((case.batch, None, p.input_size))
        order = [(0, v.name) for v in layer.trainable_variables]
        dtype = case.dtype

        def call(weights, states, x):
            # layer.states are not among layer.non_trainable_variables (they are created untracked),
            # so the scope maps them explicitly: the layer reads its initial state from them and
            # its assignments of the final state are collected from the scope.
            mapping = (list(zip(layer.trainable_variables, weights)) + list(zip(layer.states, states))
                       + list(zip(layer.non_trainable_variables, _fixed(layer))))
            with self.keras.StatelessScope(state_mapping=mapping) as scope:
                y = layer.call(x)
            return self._out(y, dtype), [scope.get_current_value(v) for v in layer.states]

        entry = (layer, [order], self._compile(call))
        self._cache[key] = entry
        return entry

    def run_stream(self, case: Case, chunks: list[int]):
        """A ``stateful=True`` layer: the state lives in ``layer.states`` across calls (set from
        a given initial state by assigning ``layer.states[k]``), and ``layer.reset_state()``
        zeroes it before the first chunk is run again.  Each call is the layer's own ``call``
        compiled inside a ``keras.StatelessScope`` that maps ``layer.states`` to their current
        values; the final state the layer assigns is then written back to ``layer.states``, as
        Keras' JAX trainer does with its non-trainable variables."""
        if case.direction != "forward" or len(case.layers) != 1 or case.lengths is not None:
            return super().run_stream(case, chunks)
        layer, orders, call = self._stateful_fn(case)
        weights = self._weights(case, orders)[0]
        if case.initial_state is None:
            layer.reset_state()
        else:
            h0, c0 = case.initial_state[0]
            layer.states[0].assign(self._tensor(h0, case.dtype))
            layer.states[1].assign(self._tensor(c0, case.dtype))

        def feed(x):
            y, new = call(weights, [v.value for v in layer.states], self._tensor(x, case.dtype))
            for variable, value in zip(layer.states, new):
                variable.assign(value)
            h, c = (self._numpy(self._widen(v.value, case.dtype)) for v in layer.states)
            return Output(self._numpy(y), [(h, c)])

        outputs, start = [], 0
        for n in chunks:
            outputs.append(feed(case.x[:, start:start + n]))
            start += n
        layer.reset_state()
        return outputs, feed(case.x[:, :chunks[0]])

    def _widen(self, tensor, dtype):
        return self.keras.ops.cast(tensor, "float32") if dtype in _HALF else tensor

    # ------------------------------------------------------------------ gradients

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        """Gradients through the compiled ``stateless_call`` of the layer (jax.grad,
        tf.GradientTape, torch autograd), permuted back to the reference packing; a folded
        forget bias passes the bias gradient through, a folded second bias receives it too."""
        if len(case.layers) != 1 or case.direction != "forward":
            raise Unsupported(f"{self.name}: gradients are implemented for one forward layer")
        key = self._key(case, "gradients", case.lengths is not None)
        if key not in self._cache:
            layers, orders, _ = self._sequence_fn(case)
            layer, keras = layers[0], self.keras

            def loss(weights, x, h0, c0, dy_, dh_, dc_, mask):
                out, _ = layer.stateless_call(weights, _fixed(layer), x, initial_state=[h0, c0],
                                              mask=mask)
                y, h, c = out
                return (keras.ops.sum(y * dy_) + keras.ops.sum(h * dh_)
                        + keras.ops.sum(c * dc_))

            self._cache[key] = (orders[0], self._grad(loss))
        order, grad = self._cache[key]
        dtype = case.dtype
        weights = self._weights(case, [order])[0]
        h0, c0 = case.initial_state[0] if case.initial_state is not None else (
            np.zeros((case.batch, case.params.hidden_size)),) * 2
        args = [weights, self._tensor(case.x, dtype), self._tensor(h0, dtype), self._tensor(c0, dtype),
                self._tensor(dy, dtype), self._tensor(dh, dtype), self._tensor(dc, dtype),
                self._mask(case)]
        d_weights, dx, dh0, dc0 = grad(*args)
        native = {name: self._numpy(g) for (_, name), g in zip(order, d_weights)}
        out = {"x": self._numpy(dx), "h0": self._numpy(dh0), "c0": self._numpy(dc0)}
        out.update(PACKING.gradients(native, case.params, case.spec.gate_order))
        return out


class Keras3TFAdapter(Keras3Adapter):
    """Keras 3 with KERAS_BACKEND=tensorflow: eager calls, a ``tf.function`` for long sequences.

    Measured here (keras 3.15.1, tensorflow-cpu 2.21.0, ci profile): tracing a ``tf.function``
    per structure costs more than it saves because the drawn shapes rarely repeat (forward_parity,
    initial_state, stacked, streaming: 3.5 examples/s traced, 16 eager), but an eager step costs
    milliseconds, so sequences of ``GRAPH_MIN_STEPS`` or more run as a ``tf.function``
    (long_sequence: 30 s eager, 9 s so).  Both are what Keras on TF runs (``layer(x)`` eagerly,
    ``model.predict`` as a graph).  Gradients come from ``tf.GradientTape``.
    """

    name = "keras3-tf"
    keras_backend = "tensorflow"
    api = "keras.layers.LSTM / Bidirectional / LSTMCell (Keras 3, tensorflow backend)"
    capabilities = _capabilities(("float32", "float64", "float16", "bfloat16"))

    #: Sequences at least this long run as a ``tf.function`` (one trace per structure, shapes
    #: relaxed after the second): there the eager per-step cost exceeds a trace.
    GRAPH_MIN_STEPS = 16

    def _compile(self, fn):
        import tensorflow as tf

        graph = tf.function(fn, reduce_retracing=True)

        def run(*args):
            x = next((a for a in args if getattr(a, "ndim", 0) == 3), None)
            long = x is not None and x.shape[1] >= self.GRAPH_MIN_STEPS
            return (graph if long else fn)(*args)

        return run

    def _numpy(self, tensor) -> np.ndarray:
        return np.asarray(tensor.numpy(), dtype=np.float64)

    def _grad(self, loss):
        import tensorflow as tf

        def grad(weights, x, h0, c0, dy, dh, dc, mask):
            with tf.GradientTape() as tape:
                tape.watch([weights, x, h0, c0])
                value = loss(weights, x, h0, c0, dy, dh, dc, mask)
            return tape.gradient(value, [weights, x, h0, c0])

        return grad


class Keras3JaxAdapter(Keras3Adapter):
    """Keras 3 with KERAS_BACKEND=jax; calls compiled with ``jax.jit`` (x64 enabled).

    XLA compiles once per shape (about 0.3 s of CPU here); the compiled executables are kept on
    disk (``<cache>/jax``, see ``_persistent_compilation_cache``) so that a second run of the same
    (derandomized) examples skips compilation.

    Gradients are checked in float32 only: float64 is a documented known issue on this backend
    (``keras.ops.tanh`` computes in float32, see conformance/harness/known_issues.py), and a float64
    gradient check would only repeat that finding instead of checking the gradients.
    """

    name = "keras3-jax"
    keras_backend = "jax"
    api = "keras.layers.LSTM / Bidirectional / LSTMCell (Keras 3, jax backend, jax.jit)"
    capabilities = replace(_capabilities(("float32", "float64", "float16", "bfloat16")),
                           gradient_dtypes=("float32",))

    def __init__(self):
        super().__init__()
        _persistent_compilation_cache()

    def _tensor(self, array, dtype):
        """A host array in ``dtype`` (exact: the case's values are representable in it); a
        device-side cast would compile a convert_element_type per shape."""
        import ml_dtypes

        host = {"bfloat16": ml_dtypes.bfloat16}.get(dtype, dtype)
        return np.asarray(array, dtype=np.float64).astype(host)

    def _compile(self, fn):
        import jax

        return jax.jit(fn)

    def _grad(self, loss):
        import jax

        return jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))


def _persistent_compilation_cache() -> None:
    """Keep XLA's compiled executables on disk under ``<cache>/jax`` (the cache directory being
    ``$LSTM_CONFORMANCE_CACHE`` or ``~/.cache/lstm-conformance``), so that a second run skips XLA
    compilation; the executables are those a plain compilation produces.  A cache directory the
    user configured for JAX is kept."""
    import jax

    from .worker_env import cache_dir

    if jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


class Keras3TorchAdapter(Keras3Adapter):
    """Keras 3 with KERAS_BACKEND=torch; eager torch ops under ``torch.no_grad``, autograd for
    gradients."""

    name = "keras3-torch"
    keras_backend = "torch"
    api = "keras.layers.LSTM / Bidirectional / LSTMCell (Keras 3, torch backend)"
    capabilities = _capabilities(("float32", "float64", "float16", "bfloat16"))

    def _compile(self, fn):
        import torch

        def run(*args):
            with torch.no_grad():
                return fn(*args)

        return run

    def _numpy(self, tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy().astype(np.float64)

    def _grad(self, loss):
        import torch

        def grad(weights, x, h0, c0, dy, dh, dc, mask):
            leaves = [w.detach().clone().requires_grad_(True) for w in weights]
            x, h0, c0 = (t.detach().clone().requires_grad_(True) for t in (x, h0, c0))
            value = loss(leaves, x, h0, c0, dy, dh, dc, mask)
            grads = torch.autograd.grad(value, leaves + [x, h0, c0])
            n = len(leaves)
            return list(grads[:n]), grads[n], grads[n + 1], grads[n + 2]

        return grad


_BY_KERAS_BACKEND = {cls.keras_backend: cls for cls in (Keras3TFAdapter, Keras3JaxAdapter,
                                                        Keras3TorchAdapter)}


def keras3_adapter() -> Keras3Adapter:
    """The adapter for the Keras backend this process runs (KERAS_BACKEND, default tensorflow):
    registered as "keras3"; its name says the backend ("keras3-jax", ...)."""
    backend = os.environ.get("KERAS_BACKEND")
    if backend is None:
        import keras

        backend = keras.backend.backend()
    if backend not in _BY_KERAS_BACKEND:
        raise ValueError(f"KERAS_BACKEND: expected one of {sorted(_BY_KERAS_BACKEND)}, got {backend!r}")
    return _BY_KERAS_BACKEND[backend]()
