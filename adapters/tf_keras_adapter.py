"""Keras 2 (the tf_keras distribution, ``TF_USE_LEGACY_KERAS=1``): ``tf_keras.layers.LSTM`` and
``tf_keras.layers.LSTMCell`` ("tf-keras").

Conventions (tf_keras/src/layers/rnn/lstm.py, base_rnn.py, bidirectional.py, backend.py; all
verified by running tf_keras 2.21.0 on TensorFlow 2.21.0):

* Weights ``[kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,)]`` (``set_weights`` order),
  gate order i, f, c(= g), o (preset "keras2"; the "keras" entry of ``adapters.packings``).  One
  bias; no run-time forget bias (``unit_forget_bias`` only initialises the bias to 1): a case's
  forget bias and second bias are folded into the bias by the adapter
  (``reference.layout.arrange_biases``), which is how TF LSTMCell weights are ported to Keras.
* ``recurrent_activation="hard_sigmoid"`` is ``tf_keras.backend.hard_sigmoid``:
  clip(0.2 x + 0.5, 0, 1), i.e. the reference's "hard_sigmoid_keras2" (Keras 3 changed it to
  x / 6 + 1/2).  Activations "tanh", "relu", "linear" by name.
* ``initial_state=[h, c]`` (tensors; a Bidirectional layer takes [h_fw, c_fw, h_bw, c_bw]);
  ``return_state=True`` returns [y, h, c] (Bidirectional: [y, h_fw, c_fw, h_bw, c_bw]).
* Masking (``mask=`` argument, a (B, T) bool tensor): at a masked step the state is carried
  and the output repeats the previous output of the scan (zeros before the first valid step);
  the final state is the last valid one: length semantics "repeat".
* ``go_backwards=True`` returns its outputs in processed order (the last input step first):
  reverse time order "processed"; with a right-padded mask the padded steps come first and are
  zeros.
* ``Bidirectional(merge_mode="concat")`` concatenates [forward, backward] with the backward
  outputs reversed back to input order (aligned).  It forces ``zero_output_for_mask = True`` on
  both wrapped layers (bidirectional.py, ``force_zero_output_for_mask``): masked steps output
  zeros in both halves, not the "repeat" of a plain LSTM (see conformance/harness/known_issues.py).
* Stacks are consecutive layers with ``return_sequences=True``, the same mask passed to each.
* Stateful: ``LSTM(stateful=True)`` built for a fixed batch, state carried across calls;
  ``reset_states(states=[h, c])`` seeds it and ``reset_states()`` zeroes it.
* Single steps: ``tf_keras.layers.LSTMCell``, ``h, [h, c] = cell(x_t, [h, c])``.
* Gradients: ``tf.GradientTape`` over x, the initial state and the layer's weights.

Speed: layers are built once per shape signature and reloaded with ``set_weights``.  Calls are
eager: tracing a ``tf.function`` around tf_keras's LSTM costs ~1 s (its backend-selection
``defun`` builds two implementations), an eager call ~20 to 40 ms, and most shape signatures the
suite draws are used only a few times.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .base import Adapter, Capabilities, Case, Output, Unsupported
from .packings import PACKINGS
from .tf_block_adapter import import_tensorflow

PACKING = PACKINGS["keras"]

#: Reference activation name -> the Keras 2 name of the same function.
_RECURRENT_ACTIVATIONS = {"sigmoid": "sigmoid", "hard_sigmoid_keras2": "hard_sigmoid"}
_ACTIVATIONS = {"tanh": "tanh", "relu": "relu", "linear": "linear"}
_CACHE_SIZE = 64


class TFKerasAdapter(Adapter):
    name = "tf-keras"
    framework = "tf_keras"
    api = "tf_keras.layers.LSTM / Bidirectional / LSTMCell (Keras 2)"
    native_gate_order = "keras2"
    bias_convention = ("one bias (4H,); no run-time forget bias: a forget bias and a second bias "
                       "are folded into it by the adapter")
    weight_orientation = "kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,)"
    capabilities = Capabilities(
        dtypes=("float32", "float64", "float16", "bfloat16"),
        recurrent_activations=tuple(_RECURRENT_ACTIVATIONS),
        activations=tuple(_ACTIVATIONS),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "lengths", "empty_sequences",
                            "reverse", "bidirectional", "layers", "step", "stateful", "gradients"}),
        length_semantics="repeat",
        # Bidirectional forces zero_output_for_mask=True on both wrapped layers
        # (tf_keras/src/layers/rnn/bidirectional.py): masked steps output zeros there.
        bidirectional_length_semantics="zeros",
        reverse_time_order="processed",
        max_layers=3,
        gradient_dtypes=("float32", "float64"),
        why_not={**{f: "Keras 2's LSTM has none" for f in ("peepholes", "cell_clip", "gate_clip",
                                                            "projection", "proj_clip")},
                 "hard_sigmoid": "Keras 2's hard_sigmoid is 0.2 x + 0.5 (the reference's hard_sigmoid_keras2)",
                 "length_semantics zeros": "a masked step repeats the previous output (zero_output_for_mask "
                                           "is False outside Bidirectional)",
                 "length_semantics repeat": "Bidirectional forces zero_output_for_mask=True"},
    )

    def __init__(self):
        self._cache: OrderedDict = OrderedDict()

    # -- layers -------------------------------------------------------------------------------

    def _check_case(self, case: Case) -> None:
        """What Capabilities cannot say: Keras 2 stacks of go_backwards layers are not a layer the
        reference has."""
        if case.direction == "reverse" and len(case.layers) > 1:
            raise Unsupported(f"{self.name}: Keras 2 LSTM cannot express a stack of go_backwards layers "
                              f"(the reference has no such stack)")

    def _cached(self, key, make):
        item = self._cache.get(key)
        if item is None:
            item = make()
            self._cache[key] = item
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return item

    def _options(self, case: Case) -> dict:
        spec = case.spec
        # The initial values are overwritten by set_weights; zeros also avoid the orthogonal
        # initializer's QR decomposition, which has no bfloat16 kernel.
        return {"recurrent_activation": _RECURRENT_ACTIVATIONS[spec.recurrent_activation],
                "activation": _ACTIVATIONS[spec.activation], "dtype": case.dtype,
                "kernel_initializer": "zeros", "recurrent_initializer": "zeros"}

    def _layers(self, case: Case, *, return_state: bool = True) -> list:
        """Built layers, one per stacked layer (LSTM or Bidirectional(LSTM)); ``return_state=False``
        builds them as a sequence model exports them (the TFLite pipeline, adapters/tflite_adapter.py)."""
        p = case.params
        key = ("layers", case.dtype, p.input_size, p.hidden_size, case.spec.recurrent_activation,
               case.spec.activation, len(case.layers), case.direction, return_state)

        def make():
            import_tensorflow()
            import tf_keras

            layers, in_size = [], p.input_size
            for _ in range(len(case.layers)):
                lstm = tf_keras.layers.LSTM(p.hidden_size, return_sequences=True, return_state=return_state,
                                            go_backwards=case.direction == "reverse", **self._options(case))
                layer = (tf_keras.layers.Bidirectional(lstm, merge_mode="concat", dtype=case.dtype)
                         if case.direction == "bidirectional" else lstm)
                layer.build((None, None, in_size))
                layers.append(layer)
                in_size = p.hidden_size * case.num_directions
            return layers

        return self._cached(key, make)

    def _native(self, params, spec, dtype) -> list[np.ndarray]:
        """Reference params -> [kernel, recurrent_kernel, bias] in Keras 2's packing (the layers
        are built with a bias: zeros where the case has none)."""
        p = PACKING.native_params(params, spec.gate_order, forget_bias=spec.forget_bias)
        bias = np.zeros(4 * params.hidden_size) if p.bias is None else p.bias
        return [np.asarray(a, np.float64).astype(dtype) for a in (p.kernel, p.recurrent_kernel, bias)]

    def _np_dtype(self, case: Case):
        tf = import_tensorflow()
        return tf.as_dtype(case.dtype).as_numpy_dtype

    def _load(self, layer, dirs, case: Case) -> None:
        dtype = self._np_dtype(case)
        weights = []
        for params in dirs:
            weights += self._native(params, case.spec, dtype)
        layer.set_weights(weights)

    def _tensor(self, array, case: Case):
        tf = import_tensorflow()
        return tf.constant(np.asarray(array, np.float64).astype(self._np_dtype(case)))

    def _mask(self, case: Case):
        if case.lengths is None:
            return None
        tf = import_tensorflow()
        return tf.constant(np.arange(case.steps)[None, :] < np.asarray(case.lengths)[:, None])

    # -- the contract -------------------------------------------------------------------------

    def run(self, case: Case) -> Output:
        self._check_case(case)
        layers = self._layers(case)
        dirs = case.num_directions
        mask = self._mask(case)
        y = self._tensor(case.x, case)
        finals = []
        for k, (layer, params) in enumerate(zip(layers, case.layers)):
            self._load(layer, params, case)
            init = None
            if case.initial_state is not None:
                init = [self._tensor(a, case) for pair in case.initial_state[k * dirs:(k + 1) * dirs]
                        for a in pair]
            y, *states = layer(y, mask=mask, initial_state=init)
            finals += [(states[2 * j].numpy(), states[2 * j + 1].numpy()) for j in range(dirs)]
        return Output(y.numpy(), finals)

    def run_steps(self, case: Case) -> Output:
        if len(case.layers) != 1 or case.direction != "forward" or case.lengths is not None:
            return super().run_steps(case)
        p = case.params

        def make():
            import_tensorflow()
            import tf_keras

            cell = tf_keras.layers.LSTMCell(p.hidden_size, **self._options(case))
            cell.build((None, p.input_size))
            return cell

        key = ("cell", case.dtype, p.input_size, p.hidden_size, case.spec.recurrent_activation,
               case.spec.activation)
        cell = self._cached(key, make)
        self._load(cell, case.layers[0], case)
        if case.initial_state is None:
            state = [self._tensor(np.zeros((case.batch, p.hidden_size)), case)] * 2
        else:
            state = [self._tensor(a, case) for a in case.initial_state[0]]
        x = self._tensor(case.x, case)
        ys = []
        for t in range(case.steps):
            h, state = cell(x[:, t], state)
            ys.append(h.numpy())
        return Output(np.stack(ys, axis=1), [(state[0].numpy(), state[1].numpy())])

    def run_stream(self, case: Case, chunks: list[int]):
        if len(case.layers) != 1 or case.direction != "forward" or case.lengths is not None:
            return super().run_stream(case, chunks)
        p = case.params

        def make():
            import_tensorflow()
            import tf_keras

            layer = tf_keras.layers.LSTM(p.hidden_size, return_sequences=True, return_state=True,
                                         stateful=True, **self._options(case))
            layer.build((case.batch, None, p.input_size))
            return layer

        key = ("stateful", case.batch, case.dtype, p.input_size, p.hidden_size,
               case.spec.recurrent_activation, case.spec.activation)
        layer = self._cached(key, make)
        self._load(layer, case.layers[0], case)
        dtype = self._np_dtype(case)
        if case.initial_state is None:
            layer.reset_states()
        else:
            layer.reset_states(states=[np.asarray(a, np.float64).astype(dtype) for a in case.initial_state[0]])
        outputs, start = [], 0
        for n in chunks:
            y, _, _ = layer(self._tensor(case.x[:, start:start + n], case))
            outputs.append(Output(y.numpy(), [tuple(s.numpy() for s in layer.states)]))
            start += n
        layer.reset_states()
        y, _, _ = layer(self._tensor(case.x[:, :chunks[0]], case))
        after = Output(y.numpy(), [tuple(s.numpy() for s in layer.states)])
        return outputs, after

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        if len(case.layers) != 1 or case.direction != "forward":
            raise Unsupported(f"{self.name}: gradients are checked on one forward layer")
        tf = import_tensorflow()
        (layer,) = self._layers(case)
        self._load(layer, case.layers[0], case)
        p = case.params
        x = self._tensor(case.x, case)
        if case.initial_state is None:
            h0 = self._tensor(np.zeros((case.batch, p.hidden_size)), case)
            c0 = self._tensor(np.zeros((case.batch, p.hidden_size)), case)
        else:
            h0, c0 = (self._tensor(a, case) for a in case.initial_state[0])
        mask = self._mask(case)
        kernel, recurrent, bias = layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0])
            y, h, c = layer(x, mask=mask, initial_state=[h0, c0])
            loss = (tf.reduce_sum(y * self._tensor(dy, case)) + tf.reduce_sum(h * self._tensor(dh, case))
                    + tf.reduce_sum(c * self._tensor(dc, case)))
        grads = tape.gradient(loss, [x, h0, c0, kernel, recurrent, bias],
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        gx, gh0, gc0, gk, gr, gb = (np.asarray(g.numpy(), np.float64) for g in grads)
        out = {"x": gx, "h0": gh0, "c0": gc0}
        out.update(PACKING.gradients({"kernel": gk, "recurrent_kernel": gr, "bias": gb}, p,
                                     case.spec.gate_order))
        return out
