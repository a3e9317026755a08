"""The OpenVINO runner shared by every backend that ends in an ``openvino.Model``: the ONNX and
torch pipelines (``openvino.convert_model``) and the LSTMSequence built with the opset API
(``adapters/openvino_adapter.py``).

* **compiles** a model for the CPU plugin with one inference thread and
  ``INFERENCE_PRECISION_HINT = f32``: on a CPU with AVX512-BF16 or AMX the plugin's default is
  bf16 (openvino/src/plugins/intel_cpu/src/config.cpp: ``inferencePrecision`` defaults to bf16
  where ``hasHardwareSupport(bf16)``), which would make a float32 verdict depend on the machine;
  the hint pins the float32 kernels everywhere (docs/converters/openvino.md).
* **says what ran** (:func:`produced`): the recurrent ops of the model the converter produced
  (``LSTMSequence``, ``TensorIterator`` with its body, ``Loop``, or unrolled ``LSTMCell``s) and
  the CPU plugin's node for it (the ``layerType`` of the compiled model's runtime graph: ``RNNSeq``
  is the oneDNN RNN primitive; a ``TensorIterator`` runs the cell body step by step).
"""

from __future__ import annotations

import collections

import numpy as np

#: Compile options (see the module docstring).
CONFIG = {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32"}

#: Operations that carry a recurrence, for ``produced``.
RECURRENT = ("LSTMSequence", "LSTMCell", "TensorIterator", "Loop", "GRUSequence", "RNNSequence")

_core = None


def core():
    """One ``openvino.Core`` per process.  OpenVINO's model cache (``CACHE_DIR``) is not used:
    with it, a model loaded from the cache computed with errors of about 0.06 on cases the fresh
    compilation gets right to 1e-8 (measured with openvino 2026.4.1 on a CPU with AVX512-BF16:
    the error of bf16 arithmetic, as if the f32 precision hint were lost on import; not
    investigated further, docs/converters/openvino.md)."""
    global _core
    if _core is None:
        import openvino

        _core = openvino.Core()
    return _core


def compile_model(model):
    """``model`` compiled for the CPU plugin with :data:`CONFIG`."""
    return core().compile_model(model, "CPU", CONFIG)


def produced(model, compiled) -> str:
    """"LSTMSequence x2 -> CPU RNNSeq x2", "TensorIterator (body: LSTMCell) -> CPU TensorIterator", ..."""
    ops = collections.Counter(op.get_type_name() for op in model.get_ordered_ops())
    recurrent = [name for name in RECURRENT if ops[name]]
    if recurrent:
        source = ", ".join(f"{name} x{ops[name]}" if ops[name] > 1 else name for name in recurrent)
        if "TensorIterator" in recurrent or "Loop" in recurrent:
            body = collections.Counter()
            for op in model.get_ordered_ops():
                if op.get_type_name() in ("TensorIterator", "Loop"):
                    body.update(o.get_type_name() for o in op.get_function().get_ordered_ops())
            source += " (body: " + ", ".join(sorted(n for n in body if n in RECURRENT or n == "MatMul")) + ")"
    else:
        source = f"unrolled: {sum(ops.values())} ops"
    layers = collections.Counter(op.get_rt_info()["layerType"].astype(str)
                                 for op in compiled.get_runtime_model().get_ordered_ops())
    runtime = [name for name in ("RNNSeq", "RNNCell", "TensorIterator", "Loop") if layers[name]]
    ran = ", ".join(f"{name} x{layers[name]}" if layers[name] > 1 else name for name in runtime) or "no RNN node"
    return f"{source} -> CPU {ran}"


def run(compiled, inputs: dict) -> list[np.ndarray]:
    """The compiled model's outputs, in order, for named inputs."""
    request = compiled.create_infer_request()
    result = request.infer(inputs)
    return [np.array(result[out]) for out in compiled.outputs]
