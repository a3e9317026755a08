"""Pipeline ``ONNX LSTM -> onnx2torch.convert -> torch`` ("onnx2torch").

Source: the ONNX graph the "onnxruntime" adapter builds for the case (``OnnxRuntimeAdapter``:
``graph_key``, ``_model``, ``feeds``, ``output``; the LSTM operator of opset 22 with the weights,
states and ``sequence_lens`` as graph inputs).  Converter: ``onnx2torch.convert(model)``, which
maps each ONNX node to a torch module through its converter registry
(onnx2torch/node_converters/registry.py, ``get_converter``).  Target: the resulting
``torch.fx.GraphModule`` called with the same inputs, under ``torch.inference_mode``.

onnx2torch 1.5.15 has no converter for ``LSTM`` (nor GRU, RNN, Loop, Scan): ``convert`` raises
``NotImplementedError: Converter is not implemented (OperationDescription(domain='',
operation_type='LSTM', version=22))``, which this adapter reports as Unsupported with that
message, for every example (read from its registry: no ``add_converter(operation_type='LSTM')``) (docs/converters/onnx2torch.md; upstream ENOT-AutoDL/onnx2torch#136,
open, and the open pull request #256 that adds LSTM).  Should a release convert the operator,
the same properties hold it to the reference.

Here onnx2torch cannot even be imported: it imports torchvision (its NMS and RoiAlign
converters), and torchvision's Linux wheels on PyPI (0.28.0 for torch 2.13) are CUDA builds whose
``_C.so`` needs ``libc10_cuda.so``; with the CPU build of torch the import fails with
"RuntimeError: operator torchvision::nms does not exist".  That is reported as the reason.
"""

from __future__ import annotations

import numpy as np

from .base import Adapter, Case, Output, Unsupported
from .onnx_pipelines import first_line
from .onnxruntime_adapter import OnnxRuntimeAdapter


class Onnx2TorchAdapter(Adapter):
    name = "onnx2torch"
    framework = "onnx2torch"
    api = "ONNX LSTM (opset 22, as the onnxruntime adapter builds it) -> onnx2torch.convert -> torch"
    native_gate_order = OnnxRuntimeAdapter.native_gate_order
    bias_convention = OnnxRuntimeAdapter.bias_convention
    weight_orientation = OnnxRuntimeAdapter.weight_orientation
    capabilities = OnnxRuntimeAdapter.capabilities

    def __init__(self):
        import torch

        torch.set_num_threads(1)
        self._torch = torch
        self._source = OnnxRuntimeAdapter()  # its graph builder, feeds and outputs
        self._modules: dict[tuple, object] = {}

    def describe(self) -> dict:
        from importlib import metadata

        out = super().describe()
        out["pipeline"] = {"converter": "onnx2torch.convert",
                           "versions": {n: metadata.version(n) for n in ("onnx2torch", "onnx", "torch")}}
        return out

    def _module(self, key: tuple):
        module = self._modules.get(key)
        if module is None:
            try:
                import onnx2torch
            except Exception as exc:  # torchvision's import raises RuntimeError, not ImportError
                module = (f"onnx2torch cannot be imported: {first_line(exc)} (it imports torchvision, whose "
                          f"PyPI wheels for Linux are CUDA builds: torchvision/_C.so needs libc10_cuda.so, "
                          f"which the CPU build of torch does not have)")
            else:
                try:
                    module = onnx2torch.convert(self._source._model(*key))
                except NotImplementedError as exc:
                    module = f"onnx2torch {onnx2torch.__version__} refused: {first_line(exc)}"
            self._modules[key] = module
        if isinstance(module, str):
            raise Unsupported(module)
        return module

    def run(self, case: Case) -> Output:
        key = self._source.graph_key(case)
        module = self._module(key)
        feeds = self._source.feeds(case, key)
        names = [i.name for i in self._source._model(*key).graph.input]
        with self._torch.inference_mode():
            results = module(*(self._torch.from_numpy(feeds[n]) for n in names))
        if not isinstance(results, (tuple, list)):
            results = [results]
        out = self._source.output(case, [np.asarray(r.numpy()) for r in results])
        out.produced = "torch.fx.GraphModule from onnx2torch"
        return out
