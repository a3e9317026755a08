"""Adapters: one module per framework, each loading reference weights into its native packing.

``load_adapter(name)`` takes a registered backend name or ``module:attribute`` naming an Adapter
subclass, an instance, or a zero-argument factory, so that a third-party adapter can run the
same suite without changes to this project.
"""

from __future__ import annotations

import importlib

from .base import DIRECTIONS, DTYPES, FEATURES, Adapter, BrokenContract, Capabilities, Case, Output, Unsupported

#: Registered backends: name -> "module:attribute".  Module names never shadow the framework.
BACKENDS: dict[str, str] = {
    "reference": "adapters.reference_adapter:ReferenceAdapter",
    "torch": "adapters.pytorch_adapter:TorchLSTMAdapter",
    "torch-time-major": "adapters.pytorch_adapter:TorchTimeMajorAdapter",
    "torch-cuda": "adapters.pytorch_adapter:TorchCudaAdapter",
    "torch-cuda-tf32": "adapters.pytorch_adapter:TorchCudaTF32Adapter",
    "tf-block": "adapters.tf_block_adapter:BlockLSTMAdapter",
    "tf-block-v2": "adapters.tf_block_adapter:BlockLSTMV2Adapter",
    "tf-lstmcell": "adapters.tf_lstmcell_adapter:TFLSTMCellAdapter",
    "keras3-tf": "adapters.keras3_adapter:Keras3TFAdapter",
    "keras3-jax": "adapters.keras3_adapter:Keras3JaxAdapter",
    "keras3-torch": "adapters.keras3_adapter:Keras3TorchAdapter",
    "tf-keras": "adapters.tf_keras_adapter:TFKerasAdapter",
    "onnxruntime": "adapters.onnxruntime_adapter:OnnxRuntimeAdapter",
    "flax-linen": "adapters.flax_adapter:LinenLSTMCellAdapter",
    "flax-linen-optimized": "adapters.flax_adapter:LinenOptimizedLSTMCellAdapter",
    "flax-nnx": "adapters.flax_adapter:NnxLSTMCellAdapter",
    "cntk": "adapters.cntk_adapter:CNTKAdapter",
    "tf1-lstmcell": "adapters.tf1_adapter:TF1LSTMCellAdapter",
    "tf1-lstmcell-static": "adapters.tf1_adapter:TF1LSTMCellStaticAdapter",
    "tf1-block": "adapters.tf1_adapter:TF1BlockAdapter",
    "mxnet-lstm": "adapters.mxnet_adapter:MXNetLSTMAdapter",
    "mxnet-rnn-op": "adapters.mxnet_adapter:MXNetRNNOpAdapter",
    "mxnet-lstmcell": "adapters.mxnet_adapter:MXNetLSTMCellAdapter",
    "chainer-lstm": "adapters.chainer_adapter:ChainerLSTMAdapter",
    "chainer-nstep": "adapters.chainer_adapter:ChainerNStepAdapter",
    "torch-onnx": "adapters.torch_onnx_adapter:TorchOnnxAdapter",
    "torch-onnx-dynamo": "adapters.torch_onnx_adapter:TorchOnnxDynamoAdapter",
    "onnx2torch": "adapters.onnx2torch_adapter:Onnx2TorchAdapter",
    "onnx2tf": "adapters.onnx2tf_adapter:Onnx2TFAdapter",
    "keras3-tf2onnx": "adapters.tf2onnx_adapter:Keras3Tf2OnnxAdapter",
    "tf-keras-tf2onnx": "adapters.tf2onnx_adapter:TFKerasTf2OnnxAdapter",
    "tflite-keras": "adapters.tflite_adapter:TFLiteKerasAdapter",
    "tflite-keras-drq": "adapters.tflite_adapter:TFLiteKerasDRQAdapter",
    "litert-lstm": "adapters.litert_native_adapter:LiteRTLSTMAdapter",
    "litert-lstm-time-major": "adapters.litert_native_adapter:LiteRTLSTMTimeMajorAdapter",
    "litert-bilstm": "adapters.litert_native_adapter:LiteRTBidirectionalLSTMAdapter",
    "openvino-onnx": "adapters.openvino_adapter:OpenVINOOnnxAdapter",
    "openvino-torch": "adapters.openvino_adapter:OpenVINOTorchAdapter",
    "openvino-lstmsequence": "adapters.openvino_adapter:OpenVINOLSTMSequenceAdapter",
    "paddle": "adapters.paddle_adapter:PaddleLSTMAdapter",
    "haiku": "adapters.haiku_adapter:HaikuLSTMAdapter",
    "haiku-static": "adapters.haiku_adapter:HaikuStaticUnrollAdapter",
    "equinox": "adapters.equinox_adapter:EquinoxLSTMCellAdapter",
    "mindspore": "adapters.mindspore_adapter:MindSporeLSTMAdapter",
    "sonnet": "adapters.sonnet_adapter:SonnetLSTMAdapter",
    "sonnet-unrolled": "adapters.sonnet_adapter:SonnetUnrolledLSTMAdapter",
}


#: Other names for registered backends (not tox envs of their own).
ALIASES: dict[str, str] = {
    # The Keras 3 adapter of the backend this process runs (KERAS_BACKEND).
    "keras3": "adapters.keras3_adapter:keras3_adapter",
}


def load_adapter(name: str) -> Adapter:
    """An adapter instance for a registered backend name, an alias, or a ``module:attribute`` path."""
    target = BACKENDS.get(name) or ALIASES.get(name, name)
    if ":" not in target:
        raise ValueError(
            f"backend: expected one of {sorted(BACKENDS) + sorted(ALIASES)} or 'module:attribute', got {name!r}"
        )
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"backend {name!r}: cannot import {module_name!r}: {exc}") from exc
    try:
        obj = getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"backend {name!r}: module {module_name!r} has no attribute {attribute!r}") from None
    adapter = obj() if callable(obj) and not isinstance(obj, Adapter) else obj
    if not isinstance(adapter, Adapter):
        raise ValueError(f"backend {name!r}: expected an adapters.Adapter (subclass, instance or "
                         f"factory), got {type(adapter).__name__}")
    return adapter


__all__ = ["ALIASES", "BACKENDS", "DIRECTIONS", "DTYPES", "FEATURES", "Adapter", "BrokenContract", "Capabilities",
           "Case", "Output", "Unsupported", "load_adapter"]
