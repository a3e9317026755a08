"""Keras 2 ``LSTM`` -> the TFLite converter -> the LiteRT interpreter ("tflite-keras"), and the
same with dynamic-range quantization ("tflite-keras-drq").

The pipeline:

1. **Source**: the layers of the "tf-keras" adapter (``TFKerasAdapter._layers``: ``LSTM`` or
   ``Bidirectional(LSTM)`` per stacked layer, weights through the "keras" packing), built as a
   sequence model exports them: ``return_sequences=True``, the initial state an input of the
   exported function when the case has one, the masks from per-sequence lengths an input when it
   has lengths.
2. **Converter**: ``tf.lite.TFLiteConverter.from_concrete_functions([f], trackable)`` on a
   ``tf.function`` with a fixed batch and a dynamic time axis, through the SavedModel path (the
   path ``from_keras_model`` takes: it keeps tf_keras's ``api_implements="lstm_<uuid>"`` function,
   which the converter's PrepareCompositeFunctionsPass replaces by the fused
   ``UNIDIRECTIONAL_SEQUENCE_LSTM``; tensorflow/compiler/mlir/lite/transforms/
   prepare_composite_functions_tf.cc, ``CheckFusableKerasLstm``, and utils/lstm_utils.cc,
   ``ConvertKerasLSTMLayer``).  The converter fuses only when the layer's last two outputs (the
   final states) are unused, there is no mask, and the batch is fixed; tf_keras itself takes the
   ``api_implements`` path only for tanh / sigmoid with a bias (``_could_use_gpu_kernel``).
   Otherwise it lowers the layer's ``tf.while_loop`` to a ``WHILE`` op.
3. **Runtime**: ``adapters.litert_runtime`` (ai-edge-litert's interpreter).

Final states.  A fused op keeps (h, c) in variable state tensors and writes the final state into
them: the adapter reads them after ``invoke`` (``LiteRTModel.fused_states``) and exports y only,
so that the converter fuses.  Where the converter keeps a ``WHILE`` loop anyway (masks, other
activations), the final states are outputs of the exported function (``return_state=True``).
Which of the two a structure gets is decided by converting: y only first, and [y, h, c] when no
fused op came out (remembered per structure).  ``Output.produced`` says which ran.

Speed: converting takes about a second (tracing, saving a SavedModel, MLIR).  The float32
pipeline converts once per shape signature (batch, input and hidden size, structure: the time
axis is dynamic) with probe weights and swaps each case's weights into the flatbuffer at the
offsets the probes revealed (``litert_runtime.WeightTemplate``: byte-identical to converting
those weights, verified with a second probe).  Templates are kept on disk under
``<cache>/litert`` (``$LSTM_CONFORMANCE_CACHE`` or ``~/.cache/lstm-conformance``), keyed by the
versions and the signature.  Dynamic-range quantization computes int8 weights and scales from
the values, so the "drq" backend converts every case (its converted flatbuffers are kept on disk
too, keyed by the case's weights).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict

import numpy as np

from .base import Adapter, Capabilities, Case, Output, Unsupported, installed_versions
from .litert_runtime import LiteRTModel, NotRelocatable, WeightTemplate, produced
from .tf_block_adapter import import_tensorflow
from .tf_keras_adapter import TFKerasAdapter

#: Traced functions kept (each holds its layers and graph): the process grew to 8.6 GB with every
#: signature of a run with the scale sizes kept.
_FUNCTIONS_KEPT = 16

_FEATURES = frozenset({"initial_state", "forget_bias", "recurrent_bias", "lengths", "empty_sequences",
                       "reverse", "bidirectional", "layers"})


def _capabilities() -> Capabilities:
    src = TFKerasAdapter.capabilities
    return Capabilities(
        dtypes=("float32",),
        recurrent_activations=src.recurrent_activations,
        activations=src.activations,
        features=_FEATURES,
        length_semantics=src.length_semantics,
        bidirectional_length_semantics=src.bidirectional_length_semantics,
        reverse_time_order=src.reverse_time_order,
        max_layers=src.max_layers,
        gradient_dtypes=(),
        why_not={**src.why_not,
                 **{d: "the pipeline exports float32 models (TFLite's LSTM kernels compute in float32, "
                       "or int8 with dynamic-range quantization)" for d in ("float64", "float16", "bfloat16")},
                 "gradients": "an inference runtime",
                 "step": "a converted model has no single-step API (steps run the model with T = 1 and "
                         "the state fed back)",
                 "stateful": "tf_keras stateful layers are not converted (the converter supports stateless "
                             "Keras LSTMs; the state is fed as inputs)"},
    )


def _versions() -> dict:
    return installed_versions(("tensorflow-cpu", "tensorflow", "tf_keras", "ai-edge-litert"))


class TFLiteKerasAdapter(Adapter):
    """Keras 2 LSTM -> tf.lite.TFLiteConverter -> LiteRT interpreter (float32)."""

    name = "tflite-keras"
    framework = "ai-edge-litert"
    api = ("tf_keras.layers.LSTM / Bidirectional -> tf.lite.TFLiteConverter (SavedModel path) -> "
           "ai_edge_litert Interpreter")
    native_gate_order = "keras2"
    bias_convention = "Keras 2's one bias (a forget bias and a second bias folded into it by the source)"
    weight_orientation = ("source: kernel (D, 4H), recurrent_kernel (H, 4H); fused op: one (H, D) and "
                          "(H, H) matrix per gate")
    capabilities = _capabilities()
    #: tf.lite.Optimize options of the converter (none: float32).
    optimizations: tuple = ()

    def __init__(self):
        self.tf = import_tensorflow()
        self.source = TFKerasAdapter()
        self._functions: OrderedDict = OrderedDict()  # least recently used first
        self._templates: dict = {}
        self._exports: dict = {}  # structure -> "sequence" (y only) or "states" ([y, h, c])
        self._verified: set = set()  # structures whose weight placement a second probe verified

    def version(self) -> str:
        return _versions().get("ai-edge-litert", "unknown")

    def describe(self) -> dict:
        out = super().describe()
        out["pipeline"] = {"source": "tf-keras", "converter": "tf.lite.TFLiteConverter",
                           "runtime": "ai-edge-litert", "versions": _versions(),
                           "optimizations": [str(o) for o in self.optimizations]}
        return out

    # ------------------------------------------------------------------ the exported function

    def _structure(self, case: Case) -> tuple:
        spec = case.spec
        return (case.dtype, len(case.layers), case.direction, spec.recurrent_activation, spec.activation,
                case.initial_state is not None, case.lengths is not None)

    def _function(self, case: Case, export: str):
        """(concrete function, layers, input names) for the case's signature; the batch is fixed,
        the time axis dynamic."""
        p = case.params
        key = (self._structure(case), export, case.batch, p.input_size, p.hidden_size)
        if key in self._functions:
            self._functions.move_to_end(key)
            return self._functions[key]
        tf = self.tf
        layers = self.source._layers(case, return_state=export == "states")
        n_states = len(case.layers) * case.num_directions if case.initial_state is not None else 0
        specs = [tf.TensorSpec([case.batch, None, p.input_size], tf.float32, name="x")]
        names = ["x"]
        for k in range(n_states):
            specs += [tf.TensorSpec([case.batch, p.hidden_size], tf.float32, name=f"h0_{k}"),
                      tf.TensorSpec([case.batch, p.hidden_size], tf.float32, name=f"c0_{k}")]
            names += [f"h0_{k}", f"c0_{k}"]
        if case.lengths is not None:
            specs.append(tf.TensorSpec([case.batch, None], tf.bool, name="mask"))
            names.append("mask")
        dirs = case.num_directions

        def forward(*args):
            y, outputs = args[0], {}
            mask = args[-1] if case.lengths is not None else None
            for k, layer in enumerate(layers):
                init = None
                if n_states:
                    init = list(args[1 + 2 * k * dirs:1 + 2 * (k + 1) * dirs])
                result = layer(y, mask=mask, initial_state=init)
                if export == "states":
                    y, *states = result
                    for j in range(dirs):
                        outputs[f"h_{k * dirs + j}"] = states[2 * j]
                        outputs[f"c_{k * dirs + j}"] = states[2 * j + 1]
                else:
                    y = result
            outputs["y"] = y
            return outputs

        fn = tf.function(forward, input_signature=specs)
        holder = tf.Module()
        holder.weights = [w for layer in layers for w in layer.weights]
        entry = (fn.get_concrete_function(), holder, layers, names)
        self._functions[key] = entry
        while len(self._functions) > _FUNCTIONS_KEPT:
            self._functions.popitem(last=False)
        return entry

    def _convert(self, case: Case, export: str, weights: list[np.ndarray]) -> bytes:
        """The converter run on the source model holding ``weights`` (the flat list of every
        layer's [kernel, recurrent_kernel, bias], directions in Keras' order)."""
        tf = self.tf
        function, holder, layers, _ = self._function(case, export)
        at = 0
        for layer in layers:
            n = len(layer.get_weights())
            layer.set_weights([np.asarray(w, np.float32) for w in weights[at:at + n]])
            at += n
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function], holder)
        if self.optimizations:
            converter.optimizations = list(self.optimizations)
        try:
            return converter.convert()
        except Exception as exc:  # the converter's own refusal: reported, never a pass
            raise Unsupported(f"{self.name}: tf.lite.TFLiteConverter refused the model: "
                              f"{type(exc).__name__}: {str(exc)[:1500]}") from None

    def _weights(self, case: Case) -> list[np.ndarray]:
        out = []
        for dirs in case.layers:
            for params in dirs:
                out += self.source._native(params, case.spec, np.float32)
        return out

    # ------------------------------------------------------------------ models

    def _export(self, case: Case) -> str:
        """"sequence" when the converter fuses this structure (y only exported), else "states"."""
        structure = self._structure(case)
        if structure not in self._exports:
            model = self._model_for(case, "sequence")
            self._exports[structure] = "sequence" if "SEQUENCE_LSTM" in produced(model) else "states"
        return self._exports[structure]

    def _model_for(self, case: Case, export: str) -> bytes:
        weights = self._weights(case)
        if self.optimizations:
            return self._cached_conversion(case, export, weights)
        p = case.params
        key = (self._structure(case), export, case.batch, p.input_size, p.hidden_size)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = self._template(case, export, key, weights)
        if isinstance(template, str):  # not relocatable: convert every case
            return self._convert(case, export, weights)
        return template.patch(weights)

    def _digest(self, *parts) -> str:
        text = json.dumps([self.name, _versions(), [str(o) for o in self.optimizations], *map(repr, parts)])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _template(self, case, export, key, weights):
        from .worker_env import cache_dir

        path = cache_dir() / "litert" / f"template-{self._digest(key)}.npz"
        if path.is_file():
            return WeightTemplate.load(path)
        verify = key[0] not in self._verified
        try:
            template = WeightTemplate(lambda w: self._convert(case, export, w), [np.shape(w) for w in weights],
                                      verify=verify)
        except NotRelocatable as exc:
            return f"converted per case: {exc}"
        self._verified.add(key[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        template.save(path)
        return template

    def _cached_conversion(self, case, export, weights) -> bytes:
        from .worker_env import cache_dir

        p = case.params
        digest = hashlib.sha256(b"".join(np.asarray(w, np.float32).tobytes() for w in weights)).hexdigest()
        key = (self._structure(case), export, case.batch, p.input_size, p.hidden_size, digest)
        path = cache_dir() / "litert" / f"model-{self._digest(key)}.tflite"
        if path.is_file():
            return path.read_bytes()
        model = self._convert(case, export, weights)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tmp").write_bytes(model)
        path.with_suffix(".tmp").replace(path)
        return model

    # ------------------------------------------------------------------ the contract

    def run(self, case: Case) -> Output:
        export = self._export(case)
        runtime = LiteRTModel(self._model_for(case, export))
        feeds = {"x": case.x}
        if case.initial_state is not None:
            for k, (h, c) in enumerate(case.initial_state):
                feeds[f"h0_{k}"], feeds[f"c0_{k}"] = h, c
        if case.lengths is not None:
            feeds["mask"] = np.arange(case.steps)[None, :] < np.asarray(case.lengths)[:, None]
        out = runtime(**feeds)
        y = np.asarray(out["y"], np.float64)
        n = len(case.layers) * case.num_directions
        if export == "states":
            finals = [(out[f"h_{k}"], out[f"c_{k}"]) for k in range(n)]
        else:
            finals = runtime.fused_states()
            if len(finals) != n:
                raise Unsupported(f"{self.name}: the converted model has {len(finals)} fused LSTM ops "
                                  f"for {n} layers and directions ({runtime.produced})")
        return Output(y, [(np.asarray(h, np.float64), np.asarray(c, np.float64)) for h, c in finals],
                      produced=runtime.produced)


class TFLiteKerasDRQAdapter(TFLiteKerasAdapter):
    """The same pipeline with ``converter.optimizations = [tf.lite.Optimize.DEFAULT]`` and no
    representative dataset: dynamic-range quantization (int8 weights, activations quantized per
    batch row at run time by the hybrid kernels, the cell state in float)."""

    name = "tflite-keras-drq"
    api = TFLiteKerasAdapter.api + " (dynamic-range quantization)"

    def __init__(self):
        super().__init__()
        self.optimizations = (self.tf.lite.Optimize.DEFAULT,)
