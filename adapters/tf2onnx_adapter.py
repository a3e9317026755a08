"""Pipelines through tf2onnx into ONNX Runtime: Keras 3's ``LSTM`` on the tensorflow backend
exported with ``model.export(format="onnx")`` (which calls ``tf2onnx.convert.from_function``,
keras/src/export/onnx.py) -- "keras3-tf2onnx" -- and Keras 2's (tf_keras) exported with
``tf2onnx.convert.from_keras`` -- "tf-keras-tf2onnx".

Source: the layers the source adapter builds for the case (``Keras3TFAdapter._sequence_fn``,
``TFKerasAdapter._layers``: an ``LSTM`` or ``Bidirectional(LSTM)`` per stacked layer, the "keras"
packing with the forget bias and a second bias folded into the one bias) with the case's weights
loaded the way the adapter loads them, wrapped in a functional model whose inputs are ``x``
(B, T, D), ``h0_<k>_<d>`` / ``c0_<k>_<d>`` (B, H) per layer and direction when the case has a
state, and ``mask`` (B, T) bool when it has lengths (the mask each layer is called with); its
outputs are y and every final (h, c).  Batch and time are dynamic (``None`` in the inputs).  The
models are exported once per structure with tagged weights (``adapters.onnx_pipelines``).

What tf2onnx 1.17.0 produces (tf2onnx/rewriter/lstm_tf2_rewriter.py, keras_rnn... ;
docs/converters/tf2onnx.md): the TF while loop of a Keras LSTM is matched by its rewriters and
replaced by one ONNX ``LSTM`` node when the weights are constants and nothing else is in the
loop; with a mask the loop carries the masking ``tf.where`` and stays a ``Loop`` that ORT
interprets step by step.  The conventions of the sources hold: masked steps repeat the previous
output outside ``Bidirectional`` and are zeros inside it; ``go_backwards`` returns processed
order.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace

import numpy as np

from .base import Capabilities, Case, Output, Unsupported
from .keras3_adapter import Keras3TFAdapter
from .onnx_pipelines import OnnxPipeline, export_size_plan, first_line
from .tf_keras_adapter import TFKerasAdapter

_DROPPED = {"step": "the exported model runs whole sequences (steps go through its state inputs)",
            "stateful": "the exported model has no variables: state goes through its inputs and outputs",
            "gradients": "an exported inference model"}


#: The dtypes the pipelines run (measured: tensorflow-cpu 2.21.0, keras 3.15.1, tf_keras 2.21.0,
#: tf2onnx 1.17.0, onnxruntime 1.31.1; docs/converters/tf2onnx.md) and why not the others.
_DTYPES = ("float32", "float16")
_WHY_NOT_DTYPES = {
    "float64": "tf2onnx writes the unmasked LSTM as an ONNX LSTM node in double, which onnxruntime 1.31.1 "
               "refuses to run ('LSTM operator does not support double yet'); only a masked LSTM (a Loop of "
               "MatMul, Sigmoid, Tanh) runs in float64",
    "bfloat16": "tf2onnx 1.17.0's LSTM rewriter cannot map bfloat16 ('unsupported numpy dtype 'bfloat16' for "
                "mapping to onnx') and leaves a Loop that onnxruntime 1.31.1 refuses to load (INVALID_GRAPH: "
                "'Type tensor(bfloat16) ... of operator (Loop) ... is invalid'; with a mask: 'MatMul bound to "
                "different types (tensor(float16) and tensor(bfloat16))')",
}


def _capabilities(source: Capabilities) -> Capabilities:
    """The source's capabilities less what an exported inference model has not (``_DROPPED``),
    in the dtypes the pipeline runs (``_DTYPES``)."""
    return replace(source, dtypes=_DTYPES, features=source.features - set(_DROPPED), gradient_dtypes=(),
                   why_not={**source.why_not, **_DROPPED, **_WHY_NOT_DTYPES})


class _Model:
    """One structure's functional model around the source adapter's layers (its own: the source
    adapter keeps a bounded cache of layers and builds new ones when it evicts them)."""

    def __init__(self, model, layers, variables, input_names):
        self.model, self.layers, self.variables, self.input_names = model, layers, variables, input_names


class _KerasPipeline(OnnxPipeline):
    """What the two Keras pipelines share: the functional model's inputs and outputs, weights
    as the layers' variables, feeds and outputs."""

    converter = "tf2onnx"
    native_gate_order = "ifgo"
    bias_convention = ("one bias; a run-time forget bias and a second bias are folded into it by the "
                       "source adapter")
    weight_orientation = "kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,)"

    def __init__(self):
        super().__init__()
        self._models: dict = {}

    def size_plan(self, plan):
        """Every new layer shape costs a tf2onnx export (1 to 7 s here): at scale only in the
        ``scale`` property, from a few sizes (``onnx_pipelines.export_size_plan``)."""
        return export_size_plan(plan)

    def _structure(self, case: Case) -> tuple:
        s = case.spec
        dims = tuple((dirs[0].input_size, dirs[0].hidden_size) for dirs in case.layers)
        bias = any(p.bias is not None or p.recurrent_bias is not None for d in case.layers for p in d) \
            or bool(s.forget_bias)
        return (case.dtype, dims, s.recurrent_activation, s.activation, bias, case.direction,
                case.initial_state is not None, case.lengths is not None)

    def _inputs(self, keras, case: Case):
        """(inputs by name, state inputs per layer, mask input or None) of the functional model."""
        d = case.params.input_size
        inputs = {"x": keras.Input((None, d), name="x", dtype=case.dtype)}
        states = []
        for k, dirs in enumerate(case.layers):
            flat = []
            if case.initial_state is not None:
                for j in range(case.num_directions):
                    for part in ("h0", "c0"):
                        name = f"{part}_{k}_{j}"
                        inputs[name] = keras.Input((dirs[0].hidden_size,), name=name, dtype=case.dtype)
                        flat.append(inputs[name])
            states.append(flat or None)
        mask = None
        if case.lengths is not None:
            mask = inputs["mask"] = keras.Input((None,), name="mask", dtype="bool")
        return inputs, states, mask

    def _functional(self, keras, case: Case, layers) -> _Model:
        inputs, states, mask = self._inputs(keras, case)
        y, outputs = inputs["x"], []
        for layer, init in zip(layers, states):
            y, *finals = layer(y, initial_state=init, mask=mask)
            outputs += finals
        model = keras.Model(list(inputs.values()), [y] + outputs)
        variables = [v for layer in layers for v in self._variables(layer)]
        return _Model(model, layers, variables, list(inputs))

    def _feeds(self, case: Case, handle: _Model) -> dict[str, np.ndarray]:
        host = np.dtype(case.dtype)  # float32 or float16 (_DTYPES)
        feeds = {"x": case.x.astype(host)}
        if case.initial_state is not None:
            n = case.num_directions
            for k in range(len(case.layers)):
                for j, (h, c) in enumerate(case.initial_state[k * n:(k + 1) * n]):
                    feeds[f"h0_{k}_{j}"], feeds[f"c0_{k}_{j}"] = h.astype(host), c.astype(host)
        if case.lengths is not None:
            feeds["mask"] = np.arange(case.steps)[None, :] < np.asarray(case.lengths)[:, None]
        return {name: feeds[name] for name in handle.input_names}

    def _sample(self, case: Case, handle: _Model) -> list:
        """Inputs of batch 2 and 3 steps: Keras' exporter refuses a model that was never called."""
        host = np.dtype(case.dtype)  # float32 or float16 (_DTYPES)
        out = []
        for tensor in handle.model.inputs:
            shape = [2 if i == 0 else 3 if s is None else s for i, s in enumerate(tensor.shape)]
            out.append(np.ones(shape, dtype=bool) if tensor.dtype == "bool" else np.zeros(shape, host))
        return out

    def _output(self, case: Case, handle: _Model, results) -> Output:
        y, *finals = (np.asarray(r, np.float64) for r in results)
        return Output(y, [(finals[j], finals[j + 1]) for j in range(0, len(finals), 2)])

    def _weights(self, handle: _Model) -> list[np.ndarray]:
        return [np.array(v.numpy()) for v in handle.variables]

    def _assign(self, handle: _Model, arrays) -> None:
        for v, a in zip(handle.variables, arrays):
            v.assign(a)


class Keras3Tf2OnnxAdapter(_KerasPipeline):
    """Keras 3 (tensorflow backend) -> ``model.export(format="onnx")`` (tf2onnx) -> ORT."""

    name = "keras3-tf2onnx"
    framework = "keras"
    capabilities = _capabilities(Keras3TFAdapter.capabilities)
    api = 'keras.layers.LSTM (Keras 3, tensorflow) -> model.export(format="onnx") (tf2onnx) -> onnxruntime'
    packages = ("keras", "tensorflow-cpu", "tf2onnx", "onnx", "onnxruntime")

    def __init__(self):
        super().__init__()
        self._source = Keras3TFAdapter()
        self.keras = self._source.keras

    @staticmethod
    def _variables(layer) -> list:
        return list(layer.trainable_variables)

    def _load(self, case: Case) -> _Model:
        layers, orders, _ = self._source._sequence_fn(case)
        key = self._structure(case)
        handle = self._models.get(key)
        if handle is None:
            handle = self._models[key] = self._functional(self.keras, case, layers)
        weights = self._source._weights(case, orders)
        self._assign(handle, [np.asarray(w) for per_layer in weights for w in per_layer])
        return handle

    def _export(self, handle: _Model, case: Case):
        import onnx

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.onnx")
            try:
                handle.model(self._sample(case, handle))
                handle.model.export(path, format="onnx", verbose=False)
            except Exception as exc:  # the exporter's refusal, whatever its type
                raise Unsupported(f"keras {self.keras.__version__} model.export(format='onnx') "
                                  f"(tf2onnx) refused: {first_line(exc)}") from None
            return onnx.load(path)


class TFKerasTf2OnnxAdapter(_KerasPipeline):
    """Keras 2 (tf_keras) -> ``tf2onnx.convert.from_keras`` -> ORT."""

    name = "tf-keras-tf2onnx"
    framework = "tf_keras"
    capabilities = _capabilities(TFKerasAdapter.capabilities)
    api = "tf_keras.layers.LSTM (Keras 2) -> tf2onnx.convert.from_keras -> onnxruntime"
    packages = ("tf_keras", "tensorflow-cpu", "tf2onnx", "onnx", "onnxruntime")

    def __init__(self):
        super().__init__()
        self._source = TFKerasAdapter()

    @staticmethod
    def _variables(layer) -> list:
        return list(layer.weights)

    def _load(self, case: Case) -> _Model:
        import tf_keras

        self._source._check_case(case)
        key = self._structure(case)
        handle = self._models.get(key)
        if handle is None:
            handle = self._models[key] = self._functional(tf_keras, case, self._source._layers(case))
        # Into the model's own layers: those the source returns now may be new ones.
        for layer, dirs in zip(handle.layers, case.layers):
            self._source._load(layer, dirs, case)
        return handle

    def _export(self, handle: _Model, case: Case):
        import tf2onnx

        try:
            handle.model(self._sample(case, handle))
            model, _ = tf2onnx.convert.from_keras(handle.model)
        except Exception as exc:  # the converter's refusal, whatever its type
            raise Unsupported(f"tf2onnx {tf2onnx.__version__} convert.from_keras refused: "
                              f"{first_line(exc)}") from None
        return model
