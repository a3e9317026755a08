"""Real non-conformances of frameworks, documented: reported as expected failures.  Each entry
names the framework version it was established with and why it fails.

Without ``when`` an entry covers the whole property and is strict: the property must fail, so a
framework release that fixes it is noticed.  With ``when`` (a predicate on the drawn case) it is
narrow: examples where ``when`` holds may fail (they are counted, not compared), every other
example must pass, so the rest of the property is still checked.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class KnownIssue:
    backend: str  # fnmatch pattern on the adapter name
    property: str  # fnmatch pattern on the property name
    versions: str  # the framework versions it was established with (documentation)
    reason: str
    when: Callable | None = None  # narrow: the cases (adapters.base.Case) it applies to
    when_text: str = ""  # what ``when`` says, for reports


def _cell_clip(case) -> bool:
    return case.spec.cell_clip is not None


def _projection(case) -> bool:
    return bool(case.spec.proj_size)


def _empty_sequence(case) -> bool:
    return case.lengths is not None and bool((case.lengths == 0).any())


def _empty_sequence_with_state(case) -> bool:
    return _empty_sequence(case) and case.initial_state is not None


def _padded_reverse_with_state(case) -> bool:
    return (case.direction == "reverse" and case.lengths is not None
            and bool((case.lengths < case.steps).any()) and case.initial_state is not None)


def _ignored_by_onednn(case) -> bool:
    """float32 cases with padded sequences or a cell clip: MXNet's oneDNN RNN kernel ignores both."""
    padded = case.lengths is not None and bool((case.lengths < case.steps).any())
    return case.dtype == "float32" and (padded or case.spec.cell_clip is not None)


_MXNET_ONEDNN = (
    "on the CPU, MXNet 1.9.1's RNN operator runs float32 LSTMs through oneDNN (MXNET_USE_MKLDNN_RNN=1, the "
    "default), which silently ignores use_sequence_length / sequence_length (every sequence runs to the end "
    "of the batch: outputs past a length are not zeros and the final state is the one after the padding) "
    "and state_clip_min / state_clip_max (the cell state is not clipped); the native CPU kernel refuses "
    "both ('RNN use_sequence_length option is only available for cuDNN version >= 7.2', 'LSTM state "
    "clipping is only supported for GPU with CuDNN later than 7.2.1', src/operator/rnn-inl.h), which is "
    "what float64 cases get (reported unsupported).  Lengths: apache/mxnet#19323 (closed; the fix, "
    "apache/mxnet#19466, falls back to the refusing native kernel on master and is not in 1.9.1); the "
    "state clip: no issue found (docs/frameworks/mxnet.md)")


KNOWN_ISSUES: list[KnownIssue] = [
    KnownIssue(
        "tf-block", "gradients", "tensorflow-cpu 2.21.0",
        "the backward kernel of BlockLSTM (LSTMBlockCellBpropWithEigen, used by BlockLSTMGrad) "
        "ignores cell_clip: it back-propagates through a clipped cell state as if the clip were "
        "the identity (a straight-through clip), so dx, dh0, dc0 and the weight gradients differ "
        "wherever |c| reached the clip; without cell_clip they match the reference",
        when=_cell_clip, when_text="cases with a cell_clip",
    ),
    KnownIssue(
        "tf-block-v2", "gradients", "tensorflow-cpu 2.21.0",
        "tensorflow/python/ops/rnn_grad.py registers the V1 gradient (gen_rnn_ops.block_lstm_grad, "
        "gate layout i, g, f, o) for BlockLSTMV2 (layout i, f, g, o), so the gradients of the f and "
        "g blocks are swapped and every gradient taken with GradientTape is wrong even without "
        "cell_clip (tf.raw_ops.BlockLSTMGradV2 called directly is right); the V2 backward kernel "
        "also ignores cell_clip",
    ),
    KnownIssue(
        "tf1-block", "gradients", "tensorflow 1.15.5",
        "the gradient kernels of tf.contrib.rnn.LSTMBlockFusedCell / LSTMBlockCell (BlockLSTMGrad, "
        "LSTMBlockCellGrad take no cell_clip attribute) pass the gradient through the clip as if "
        "the cell state were not clipped: where |c_t| > cell_clip they return non-zero gradients "
        "for c_{t-1}, the inputs and the weights that the clipped forward pass does not have "
        "(finite differences give 0); without an active clip they match the reference "
        "(docs/frameworks/tf1.md)",
        when=_cell_clip, when_text="cases with a cell_clip",
    ),
    KnownIssue(
        "keras3-jax", "reverse", "keras 3.15.1 with jax 0.10.2",
        "with a mask, the JAX backend's rnn (keras/src/backend/jax/rnn.py, lax.scan step) outputs "
        "states[0], i.e. h_{t-1}, at a masked step; in a go_backwards run the padded steps come "
        "first, so the outputs before the first valid step are h0 instead of zeros (the tensorflow "
        "and torch backends start from a zero previous output); identical when h0 is zero "
        "(docs/frameworks/keras3.md)",
        when=_padded_reverse_with_state, when_text="reverse cases with padded steps and a given h0",
    ),
    KnownIssue(
        "keras3-jax", "option_combinations", "keras 3.15.1 with jax 0.10.2",
        "the reverse-with-lengths cases hit the masking difference of the 'reverse' entry: the JAX "
        "backend outputs h0, not zeros, before the first valid step of a go_backwards run",
        when=_padded_reverse_with_state, when_text="reverse cases with padded steps and a given h0",
    ),
    KnownIssue(
        "keras3-jax", "dtype_float64", "keras 3.15.1 with jax 0.10.2 (jax_enable_x64 on)",
        "keras.ops.tanh computes float64 inputs in float32 on the JAX backend: it casts to "
        "dtypes.result_type(x.dtype, float), and keras/src/backend/common/dtypes.py maps float64 "
        "to float32 on every backend but tensorflow (BIT64_TO_BIT32_DTYPE, 'aligned with JAX's "
        "default'), even with x64 enabled; a float64 LSTM with activation='tanh' is float32-accurate "
        "(relative errors ~1e-7).  The torch backend's tanh does not cast",
    ),
    KnownIssue(
        "onnxruntime", "zero_length", "onnxruntime 1.31.1 (onnx 1.23.2, opset 22)",
        "a sequence of length 0 (sequence_lens[b] = 0) gets Y_h = Y_c = 0 instead of its "
        "initial_h / initial_c: the CPU LSTM kernel writes the final state only from steps it "
        "ran (docs/frameworks/onnxruntime.md); with a zero initial state the two agree",
        when=_empty_sequence_with_state, when_text="batches with an empty sequence and a given initial state",
    ),
    KnownIssue(
        "torch-onnx", "zero_length", "torch 2.13.0 (TorchScript exporter), onnxruntime 1.31.1",
        "the exported graph passes the lengths to the ONNX LSTM node's sequence_lens, and ORT's CPU "
        "LSTM kernel gives a sequence of length 0 Y_h = Y_c = 0 instead of its initial state (the "
        "'onnxruntime' zero_length entry); torch itself refuses a length of 0 (pack_padded_sequence), "
        "the exported model does not check it (docs/converters/torch-onnx.md)",
        when=_empty_sequence_with_state, when_text="batches with an empty sequence and a given initial state",
    ),
    KnownIssue(
        "torch-onnx-dynamo", "projection", "torch 2.13.0, onnxscript 0.7.2, onnxruntime 1.31.1",
        "onnxscript's torchlib lowering of aten::lstm.input (onnxscript/function_libs/torch_lib/ops/"
        "core.py, aten_lstm) has no projection: it reads the hidden size from initial_h (which has "
        "proj_size features), slices the gate blocks of weight_ih / weight_hh at proj_size, ignores "
        "weight_hr (4 parameters per direction) and writes an LSTM node whose hidden_size is proj_size; "
        "nn.LSTM's c0 has hidden_size > proj_size features, so ORT refuses every such model ('Input "
        "initial_c must have shape {dirs, B, P}. Actual: {dirs, B, H}'); no upstream issue found, looks "
        "new (docs/converters/torch-onnx.md)",
    ),
    KnownIssue(
        "torch-onnx-dynamo", "option_combinations", "torch 2.13.0, onnxscript 0.7.2, onnxruntime 1.31.1",
        "combinations with a projection hit the 'projection' entry: aten_lstm in onnxscript's torchlib "
        "drops weight_hr and takes proj_size for the hidden size; ORT refuses the model",
        when=_projection, when_text="cases with a projection",
    ),
    KnownIssue(
        "flax-*", "zero_length", "flax 0.12.8, jax 0.10.2",
        "RNN(seq_lengths=...) takes the final carry at index seq_lengths - 1 of the scanned carries: "
        "for a length of 0 that is index -1, the carry after the whole padded sequence, not the "
        "initial carry (flax/linen/recurrent.py, flax/nnx/nn/recurrent.py; docs/frameworks/flax.md)",
        when=_empty_sequence, when_text="batches with an empty sequence",
    ),
    KnownIssue(
        "keras3-jax", "zero_length", "keras 3.15.1 with jax 0.10.2",
        "at a masked step the JAX backend's rnn outputs states[0], i.e. h_{t-1} (see the 'reverse' "
        "entry): an empty sequence outputs h0 at every step instead of zeros (the tensorflow and "
        "torch backends output zeros); its final state is right",
        when=_empty_sequence_with_state, when_text="batches with an empty sequence and a given initial state",
    ),
    *(KnownIssue(backend, "*", "mxnet 1.9.1 (oneDNN RNN kernel, CPU)", _MXNET_ONEDNN, when=_ignored_by_onednn,
                 when_text="float32 cases with padded sequences or a cell clip")
      for backend in ("mxnet-lstm", "mxnet-rnn-op")),
    KnownIssue(
        "mxnet-lstmcell", "zero_length", "mxnet 1.9.1",
        "RecurrentCell.unroll(valid_length=...) takes each sequence's final state with SequenceLast over the "
        "states after steps 0 .. T-1 (python/mxnet/gluon/rnn/rnn_cell.py, unroll); the initial state is not "
        "among them, and a length of 0 reads index -1: an empty sequence's final state is not its initial "
        "state but what lies before the buffer (zeros, or garbage such as 6e24); SequenceLast's "
        "documentation asks for positive lengths (apache/mxnet#14019, 'SequenceLast undefined behavior', "
        "closed); outputs are masked right (docs/frameworks/mxnet.md)",
        when=_empty_sequence, when_text="batches with an empty sequence",
    ),
]


def known_issue(backend: str, property_name: str) -> KnownIssue | None:
    for issue in KNOWN_ISSUES:
        if fnmatch.fnmatch(backend, issue.backend) and fnmatch.fnmatch(property_name, issue.property):
            return issue
    return None
