"""Pipeline ``ONNX LSTM -> onnx2tf -> LiteRT`` ("onnx2tf").

1. **Source**: the ONNX graph the "onnxruntime" adapter exports for the case
   (``OnnxRuntimeAdapter.exported_model``: the ``LSTM`` operator of opset 22, one node per layer,
   the weights W, R, B, P as initializers, X, ``sequence_lens`` and the initial states as graph
   inputs), with the batch axis made static (below).
2. **Converter**: ``onnx2tf.convert(onnx_graph=..., disable_model_save=True)`` (PINTO0309/onnx2tf),
   which rebuilds each node as tf_keras layers (onnx2tf/ops/LSTM.py: a ``tf_keras.layers.RNN``
   over its own ``CustomLSTMCell``, per direction) and returns the model; the float32 flatbuffer
   is written from it as ``convert`` writes ``<name>_float32.tflite`` (:meth:`Onnx2TFAdapter._convert`).
   Options: ``keep_shape_absolutely_input_names`` for every input (else onnx2tf reads a 3-D input
   as NCW and transposes it to NWC), ``not_use_onnxsim`` (onnxsim is not installed; the shapes it
   would infer are inferred with ``onnx.shape_inference``).
3. **Runtime**: ``adapters.litert_runtime.LiteRTModel.run_by_name`` (ai-edge-litert's interpreter;
   the float32 flatbuffer has no SignatureDef, so inputs are fed by tensor name and outputs read
   in the graph's order).

**The batch is static, the time axis dynamic.**  With a dynamic batch, the loop's TensorList has
an unknown element shape, and the converter keeps ``TensorListReserve`` / ``TensorListSetItem`` as
Flex (select TF) ops, which ai-edge-litert's interpreter does not have ("Node number 2
(FlexTensorListReserve) failed to prepare"; measured with onnx2tf 1.28.8, tensorflow 2.21.0,
ai-edge-litert 2.3.0).  With the batch fixed in the ONNX graph, the loop is lowered to a builtin
``WHILE`` whose time axis stays dynamic: one conversion serves every length.

**Weights are swapped into a template.**  A conversion takes 0.3 to 1 s and every example has
new weights, so the pipeline converts once per structure and batch with probe weights
(``litert_runtime.WeightTemplate``, verified with a second probe for the first template of each
structure in a process) and writes each example's weights where the probes landed; the templates
are kept on disk under ``<cache>/onnx2tf``.  onnx2tf adds the two ONNX biases Wb + Rb (the
converter folds the sum), so the template's bias is their float32 sum and the ONNX model given to
the converter holds it as Wb with Rb = 0: the same sum, computed once before conversion instead
of during it.

What the converter produced (``Output.produced``) is read from the flatbuffer: a ``WHILE`` loop per
layer and direction (and any graph input the converted model dropped).  The findings (lengths
ignored, peepholes as a matrix product, activation parameters not used, a gates-only clip, nodes
without initial states refused) are in docs/converters/onnx2tf.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json

import numpy as np

from .base import Adapter, Capabilities, Case, Output, Unsupported, installed_versions
from .litert_runtime import LiteRTModel, NotRelocatable, WeightTemplate
from .onnx_pipelines import export_size_plan, first_line
from .onnxruntime_adapter import OnnxRuntimeAdapter

#: Distributions of the pipeline: recorded, and keys of the template cache.
PACKAGES = ("onnx2tf", "onnx", "onnx_graphsurgeon", "tensorflow-cpu", "tensorflow", "tf_keras", "ai-edge-litert")
#: The initializers that hold weights (the rest, "features_shape", is the graph's own constant).
_WEIGHTS = ("W", "R", "B", "P")


def _versions() -> dict[str, str]:
    return installed_versions(PACKAGES)


def _capabilities() -> Capabilities:
    src = OnnxRuntimeAdapter.capabilities
    return Capabilities(
        dtypes=("float32",), recurrent_activations=src.recurrent_activations, activations=src.activations,
        features=src.features, length_semantics=src.length_semantics,
        reverse_time_order=src.reverse_time_order, max_layers=src.max_layers, gradient_dtypes=(),
        why_not={**src.why_not,
                 "float16": "the pipeline converts the float32 ONNX graph (onnx2tf's float16 flatbuffer stores "
                            "float16 weights and computes in float32: not float16 arithmetic)",
                 "gradients": "an inference runtime",
                 "step": "a converted model has no single-step API (steps run the model with T = 1 and the "
                         "state fed back)"})


def _is_weight(name: str) -> bool:
    return name.split("_")[0] in _WEIGHTS


class Onnx2TFAdapter(Adapter):
    """ONNX LSTM -> onnx2tf.convert -> the LiteRT interpreter (float32)."""

    name = "onnx2tf"
    framework = "onnx2tf"
    api = ("ONNX LSTM (opset 22, weights as initializers, as the onnxruntime adapter exports it) -> "
           "onnx2tf.convert (static batch, dynamic time) -> ai_edge_litert Interpreter")
    native_gate_order = OnnxRuntimeAdapter.native_gate_order
    bias_convention = OnnxRuntimeAdapter.bias_convention
    weight_orientation = OnnxRuntimeAdapter.weight_orientation
    capabilities = _capabilities()

    def __init__(self):
        import onnx2tf  # imports tensorflow and tf_keras

        self._onnx2tf = onnx2tf
        self._templates: dict[tuple, WeightTemplate | str] = {}
        self._verified: set[tuple] = set()  # structures whose placement a second probe verified

    def describe(self) -> dict:
        out = super().describe()
        out["pipeline"] = {"source": "onnx (adapters/onnxruntime_adapter.py graph, weights as initializers)",
                           "converter": "onnx2tf.convert", "runtime": "ai-edge-litert", "versions": _versions()}
        return out

    def identity(self) -> str:
        versions = ", ".join(f"{k} {v}" for k, v in _versions().items())
        return f"{self.api} ({versions})"

    def size_plan(self, plan):
        """One conversion per layer shape and batch: the exporters' narrowed plan
        (``onnx_pipelines.export_size_plan``)."""
        return export_size_plan(plan)

    # ------------------------------------------------------------------ the source graph

    @staticmethod
    def _source(case: Case):
        """(ONNX model with a static batch, its non-weight feeds, the weights in graph order: each
        layer's W, R, Wb + Rb (dirs, 4H) and P)."""
        from onnx import numpy_helper

        model, feeds = OnnxRuntimeAdapter.exported_model(case)
        for value in list(model.graph.input) + list(model.graph.output):
            for dim in value.type.tensor_type.shape.dim:
                if dim.dim_param == "N":
                    dim.dim_value = case.batch
        weights = []
        for init in model.graph.initializer:
            if _is_weight(init.name):
                array = numpy_helper.to_array(init).astype(np.float32)
                if init.name.startswith("B_"):
                    half = array.shape[-1] // 2
                    array = array[..., :half] + array[..., half:]
                weights.append(array)
        return model, feeds, weights

    @staticmethod
    def _with_weights(model, weights: list[np.ndarray]):
        """A copy of ``model`` whose weight initializers hold ``weights`` (in graph order; a
        layer's B as [Wb + Rb, 0])."""
        from onnx import numpy_helper

        out = type(model)()
        out.CopyFrom(model)
        inits = [init for init in out.graph.initializer if _is_weight(init.name)]
        for init, array in zip(inits, weights, strict=True):
            array = np.asarray(array, np.float32)
            if init.name.startswith("B_"):
                array = np.concatenate([array, np.zeros_like(array)], axis=-1)
            init.CopyFrom(numpy_helper.from_array(array, init.name))
        return out

    # ------------------------------------------------------------------ the converter

    def _convert(self, model) -> bytes:
        """onnx2tf's float32 flatbuffer of ``model``; Unsupported with its message when it refuses.

        ``onnx2tf.convert(disable_model_save=True)`` returns the tf_keras model it built, and the
        flatbuffer is written here exactly as ``convert`` writes ``<name>_float32.tflite``
        (onnx2tf/onnx2tf.py, 1.28.8: ``tf.function(lambda *inputs: model(inputs))`` over the
        model's inputs, ``TFLiteConverter.from_concrete_functions``, builtins and select TF ops,
        ``unfold_batchmatmul`` off), without its SavedModel and float16 outputs: a fifth of the
        time, byte-identical (tests/test_onnx2tf_facts.py)."""
        import onnx
        import tensorflow as tf
        import tf_keras

        # onnx2tf reads the shapes of intermediate values (its Reshape needs them); an exporter
        # writes them, and onnxsim infers them when onnx2tf finds it installed.
        model = onnx.shape_inference.infer_shapes(model)
        names = [i.name for i in model.graph.input]
        version = _versions().get("onnx2tf", "?")
        log = io.StringIO()
        # Layer and tensor names carry tf_keras' process-wide counters into the flatbuffer: reset,
        # two conversions of one model are byte-identical (WeightTemplate compares them).
        tf_keras.backend.clear_session()
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                keras_model = self._onnx2tf.convert(onnx_graph=model, non_verbose=True, not_use_onnxsim=True,
                                                    disable_model_save=True,
                                                    keep_shape_absolutely_input_names=names)
        except SystemExit as exc:  # onnx2tf calls sys.exit(1) after logging some errors
            lines = [ln for ln in log.getvalue().splitlines() if "ERROR" in ln or "Error" in ln]
            raise Unsupported(f"onnx2tf {version} refused the model (exit {exc.code}): "
                              f"{first_line(RuntimeError(lines[-1] if lines else log.getvalue()[-600:]))}") from None
        except Exception as exc:
            raise Unsupported(f"onnx2tf {version} refused the model: {first_line(exc)}") from None
        function = tf.function(func=lambda *inputs: keras_model(inputs),
                               input_signature=[tf.TensorSpec(t.shape, t.dtype, t.name) for t in keras_model.inputs])
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        converter.unfold_batchmatmul = False
        try:
            return converter.convert()
        except Exception as exc:
            raise Unsupported(f"onnx2tf {version}: tf.lite.TFLiteConverter refused its model: "
                              f"{first_line(exc)}") from None

    def _digest(self, key: tuple) -> str:
        text = json.dumps([self.name, _versions(), repr(key)])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _template(self, case: Case, model, weights) -> WeightTemplate | str:
        """The structure's template (or, as text, why it converts every example instead); raises
        Unsupported when the converter refuses the structure."""
        from .worker_env import cache_dir

        structure = OnnxRuntimeAdapter.graph_key(case)
        key = (structure, case.batch)
        if key in self._templates:
            return self._templates[key]
        folder = cache_dir() / "onnx2tf"
        path, refused = folder / f"template-{self._digest(key)}.npz", folder / f"refused-{self._digest(key)}.txt"
        if refused.is_file():
            raise Unsupported(refused.read_text())
        if path.is_file():
            template = WeightTemplate.load(path)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                template = WeightTemplate(lambda w: self._convert(self._with_weights(model, w)),
                                          [np.shape(w) for w in weights], verify=structure not in self._verified)
            except NotRelocatable as exc:
                template = f"converted per example: {exc}"
            except Unsupported as exc:
                refused.write_text(str(exc))
                raise
            if not isinstance(template, str):
                self._verified.add(structure)
                template.save(path)
        self._templates[key] = template
        return template

    # ------------------------------------------------------------------ the contract

    def run(self, case: Case) -> Output:
        model, feeds, weights = self._source(case)
        template = self._template(case, model, weights)
        if isinstance(template, str):
            flatbuffer, how = self._convert(self._with_weights(model, weights)), f" ({template})"
        else:
            flatbuffer, how = template.patch(weights), ""
        runtime = LiteRTModel(flatbuffer, signature=False)
        results, dropped = runtime.run_by_name(feeds)
        out = OnnxRuntimeAdapter.output(case, results)
        out.produced = runtime.produced + how + (
            f"; inputs the converted model does not have: {', '.join(dropped)}" if dropped else "")
        return out
