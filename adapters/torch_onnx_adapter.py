"""Pipelines ``torch.nn.LSTM -> torch.onnx.export -> onnxruntime``: the TorchScript exporter
("torch-onnx", ``dynamo=False``) and the ``torch.export``-based exporter with onnxscript's
torchlib ("torch-onnx-dynamo", ``dynamo=True``, the default since torch 2.9).

Source: the ``nn.LSTM`` that ``TorchLSTMAdapter`` builds and loads for the case
(``_prepare``: the "torch" packing, the forget bias folded into ``bias_ih``, zeros in ``bias_hh``
without a second bias, a reverse-only layer run as the backward half of a bidirectional one) and
its forward (``_forward``: ``pack_padded_sequence(enforce_sorted=False)`` /
``pad_packed_sequence`` for lengths).  The exported module is that forward with the tensors as
inputs: ``x`` (B, T, D) batch-first, ``h0`` / ``c0`` (layers * directions, B, H) when the case has
a state (else the module makes zeros, as a user's ``lstm(x)`` does), ``lengths`` (B,) int64 when
it has lengths; outputs ``y``, ``h_n``, ``c_n``.  Batch and time are dynamic axes
(``dynamic_axes`` for TorchScript, ``torch.export.Dim`` for dynamo), so one export serves every
batch and length of a structure (``adapters.onnx_pipelines``: weights placed by tags).  Opsets are
the exporters' defaults.

What each exporter does with an LSTM (torch 2.13.0, onnxscript 0.7.2; docs/converters/torch-onnx.md):

* TorchScript (torch/onnx/_internal/torchscript_exporter/symbolic_opset9.py, ``_generic_rnn``):
  one ONNX ``LSTM`` node per layer, the gate blocks re-ordered i, f, g, o -> i, o, f, g by Slice
  and Concat (folded into the initializers), B = [b_ih, b_hh]; a packed sequence becomes the
  node's ``sequence_lens`` (``prim::PackPadded`` removed by the ONNX peephole pass) with the
  batch sorted by TopK and restored by ScatterElements; ``proj_size`` is refused ("LSTMs with
  projections").
* dynamo (onnxscript/function_libs/torch_lib/ops/core.py, ``aten_lstm``): ``aten::lstm.input``
  becomes one ``LSTM`` node per layer; a packed sequence (``aten::lstm.data``) is refused by
  ``torch.export`` (a data-dependent batch size).
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from .base import Capabilities, Case, Output, Unsupported
from .onnx_pipelines import OnnxPipeline, export_size_plan, first_line
from .pytorch_adapter import TorchLSTMAdapter

_TORCH = TorchLSTMAdapter.capabilities
#: The sample a model is exported with: batch and time >= 2 and different (torch.export
#: specializes dimensions of size 0 or 1, and would take equal sizes for one symbol).
_SAMPLE_BATCH, _SAMPLE_STEPS = 2, 3


def _capabilities() -> Capabilities:
    """torch's capabilities less what ONNX Runtime cannot run and what an exported inference
    model has not; a converter's refusal of a case is reported per example, with its message."""
    return Capabilities(
        dtypes=("float32", "float16"),
        recurrent_activations=_TORCH.recurrent_activations,
        activations=_TORCH.activations,
        features=(_TORCH.features - {"step", "gradients"}) | {"empty_sequences"},
        length_semantics=_TORCH.length_semantics,
        reverse_time_order=_TORCH.reverse_time_order,
        max_layers=_TORCH.max_layers,
        gradient_dtypes=(),
        why_not={**{k: v for k, v in _TORCH.why_not.items() if k != "empty_sequences"},
                 "float64": "the exporters write a double LSTM node; onnxruntime 1.31.1 refuses to run it: "
                            "'LSTM operator does not support double yet'",
                 "bfloat16": "onnxruntime's CPU LSTM kernel has float32 and float16 only",
                 "gradients": "an exported inference model",
                 "step": "the exported model runs whole sequences (steps go through its state inputs)"},
    )


def _forget_rnn_dispatch(torch) -> None:
    """Empty the Python dispatcher's cache of ``aten::lstm`` so that an export sees the kernels
    registered now, as the first export of a process does.

    For dynamic shapes the exporter's capture (``_capture_strategies.py``,
    ``_patch_dynamic_shape_rnn_decompositions``) registers a ``while_loop`` decomposition of
    ``aten::lstm.input`` by writing ``op.py_kernels`` directly (``torch/export/_patches.py``,
    ``_register_rnn_while_loop_decomposition``), which does not clear ``op._dispatch_cache``
    (``OpOverload.py_impl`` would).  The first export's decomposition step caches the
    Python-loop decomposition (``torch._decomp.decompositions.lstm_impl``) for AutogradCPU; every
    later capture in the process dispatches to it, which unrolls the time axis, specializes it
    ("You marked time as dynamic but your code specialized it to be a constant (3)"), and the
    exporter silently re-exports with time fixed to the sample's length.  Measured with torch
    2.13.0 (docs/converters/torch-onnx.md, finding 3).  Without this, a process exports dynamic
    time once and static time after; with it, every export is the one a fresh process makes."""
    for name in ("input", "data"):
        cache = getattr(getattr(torch.ops.aten.lstm, name, None), "_dispatch_cache", None)
        if isinstance(cache, dict):
            cache.clear()


class _Exported:
    """What the pipeline knows of one example: the source module (weights loaded), the prepared
    tensors and whether it is a reverse-only case."""

    def __init__(self, module, x, state, reverse_only):
        self.module, self.x, self.state, self.reverse_only = module, x, state, reverse_only


class TorchOnnxAdapter(OnnxPipeline):
    """torch.nn.LSTM exported by the TorchScript exporter (``dynamo=False``), run by ORT."""

    name = "torch-onnx"
    framework = "torch"
    converter = "torch.onnx.export(dynamo=False) (TorchScript exporter)"
    api = "torch.nn.LSTM -> torch.onnx.export(dynamo=False) -> onnxruntime (CPUExecutionProvider)"
    packages = ("torch", "onnx", "onnxruntime")
    native_gate_order = TorchLSTMAdapter.native_gate_order
    bias_convention = TorchLSTMAdapter.bias_convention
    weight_orientation = TorchLSTMAdapter.weight_orientation
    capabilities = _capabilities()
    dynamo = False

    def __init__(self):
        super().__init__()
        self._source = TorchLSTMAdapter()
        self._torch = self._source._torch

    # ------------------------------------------------------------------ the pipeline's hooks

    def _structure(self, case: Case) -> tuple:
        p = case.params
        return (case.dtype, p.input_size, p.hidden_size, case.spec.proj_size or 0, len(case.layers),
                case.direction, case.initial_state is not None, case.lengths is not None)

    def _load(self, case: Case) -> _Exported:
        return _Exported(*self._source._prepare(case))

    def _weights(self, handle: _Exported) -> list[np.ndarray]:
        return [p.detach().numpy().copy() for p in handle.module.parameters()]

    def _assign(self, handle: _Exported, arrays) -> None:
        with self._torch.no_grad():
            for p, a in zip(handle.module.parameters(), arrays):
                p.copy_(self._torch.from_numpy(np.ascontiguousarray(a)))

    def _inputs(self, case: Case, handle: _Exported) -> dict:
        """The exported model's inputs as tensors (the prepared ones, or the export sample)."""
        inputs = {"x": handle.x}
        if handle.state is not None:
            inputs["h0"], inputs["c0"] = handle.state
        if case.lengths is not None:
            inputs["lengths"] = self._torch.as_tensor(np.asarray(case.lengths, dtype=np.int64))
        return inputs

    def _sample(self, case: Case, handle: _Exported) -> dict:
        torch = self._torch
        inputs = self._inputs(case, handle)
        steps = self.sample_steps or _SAMPLE_STEPS
        sample = {"x": torch.zeros((_SAMPLE_BATCH, steps) + tuple(handle.x.shape[2:]), dtype=handle.x.dtype)}
        for name in ("h0", "c0"):
            if name in inputs:
                shape = list(inputs[name].shape)
                shape[1] = _SAMPLE_BATCH
                sample[name] = torch.zeros(shape, dtype=inputs[name].dtype)
        if "lengths" in inputs:
            sample["lengths"] = torch.full((_SAMPLE_BATCH,), steps, dtype=torch.int64)
        return sample

    def _module(self, case: Case, handle: _Exported, names: list[str]):
        torch = self._torch
        source = self._source

        class Exported(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = handle.module

            def forward(self, x, *rest):
                given = dict(zip(names[1:], rest))
                state = (given["h0"], given["c0"]) if "h0" in given else None
                return source._forward(case, self.lstm, x, state, given.get("lengths"))

        return Exported().eval()

    def _export(self, handle: _Exported, case: Case):
        import onnx

        sample = self._sample(case, handle)
        names = list(sample)
        module = self._module(case, handle, names)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = self._call_exporter(module, sample, names)
        except Exception as exc:  # the exporter's refusal, whatever its type
            raise Unsupported(f"{self.converter}, torch {self._torch.__version__}, refused: "
                              f"{first_line(exc)}") from None
        return model if isinstance(model, onnx.ModelProto) else onnx.load_from_string(model)

    def _call_exporter(self, module, sample: dict, names: list[str]):
        axes = {"x": {0: "batch", 1: "time"}, "h0": {1: "batch"}, "c0": {1: "batch"}, "lengths": {0: "batch"},
                "y": {0: "batch", 1: "time"}, "h_n": {1: "batch"}, "c_n": {1: "batch"}}
        outputs = ["y", "h_n", "c_n"]
        buffer = io.BytesIO()
        self._torch.onnx.export(module, tuple(sample.values()), buffer, dynamo=False, input_names=names,
                                output_names=outputs,
                                dynamic_axes={k: v for k, v in axes.items() if k in names + outputs})
        return buffer.getvalue()

    def _feeds(self, case: Case, handle: _Exported) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self._inputs(case, handle).items()}

    def _output(self, case: Case, handle: _Exported, results) -> Output:
        y, h_n, c_n = results
        return self._source._output(case, y, h_n, c_n[..., :case.params.hidden_size], handle.reverse_only)


class TorchOnnxDynamoAdapter(TorchOnnxAdapter):
    """torch.nn.LSTM exported by ``torch.onnx.export(dynamo=True)`` (torch.export, then
    onnxscript's torchlib and its optimizer), run by ORT."""

    name = "torch-onnx-dynamo"
    converter = "torch.onnx.export(dynamo=True) (torch.export + onnxscript)"
    api = "torch.nn.LSTM -> torch.onnx.export(dynamo=True) -> onnxruntime (CPUExecutionProvider)"
    packages = ("torch", "onnxscript", "onnx", "onnxruntime")

    def size_plan(self, plan):
        """Every new layer shape costs a dynamo export (1.3 to 7 s here): at scale only in the
        ``scale`` property, from a few sizes (``onnx_pipelines.export_size_plan``)."""
        return export_size_plan(plan)

    def _call_exporter(self, module, sample: dict, names: list[str]):
        import contextlib
        import logging

        torch = self._torch
        batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
        specs = {"x": {0: batch, 1: time}, "h0": {1: batch}, "c0": {1: batch}, "lengths": {0: batch}}
        rest = tuple(specs[n] for n in names[1:])
        shapes = (specs["x"], rest) if rest else (specs["x"],)
        # The exporter prints its progress to stdout and logs through "torch.onnx".
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        _forget_rnn_dispatch(torch)
        with contextlib.redirect_stdout(io.StringIO()):
            program = torch.onnx.export(module, tuple(sample.values()), dynamo=True, verbose=False,
                                        input_names=names, output_names=["y", "h_n", "c_n"],
                                        dynamic_shapes=shapes)
        return program.model_proto
