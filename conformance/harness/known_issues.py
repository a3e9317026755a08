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

import numpy as np

from adapters.reference_adapter import reference_output


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


def _padded(case) -> bool:
    """Some sequence of the batch is shorter than the padded length (a length below T)."""
    return case.lengths is not None and bool((case.lengths < case.steps).any())


def _padded_reverse_with_state(case) -> bool:
    return (case.direction == "reverse" and case.lengths is not None
            and bool((case.lengths < case.steps).any()) and case.initial_state is not None)


def _reference_differs(case, variant) -> bool:
    """Whether the reference computes anything else for ``variant`` (the case with a framework's
    deviation applied) than for ``case``: y or any final state, bit for bit."""
    a, b = reference_output(case), reference_output(variant)
    return not (np.array_equal(a.y, b.y) and all(np.array_equal(u, v) for fa, fb in zip(a.final, b.final)
                                                 for u, v in zip(fa, fb)))


def _clip_reaches_h(case) -> bool:
    """An activation_clip case in which clipping the cell state where it enters h changes an output
    (the reference with the clip of the gate pre-activations only computes something else)."""
    if case.spec.activation_clip is None:
        return False
    gates_only = case.replace(spec=case.spec.replace(activation_clip=None, gate_clip=case.spec.activation_clip))
    return _reference_differs(case, gates_only)


_ORT_CLIP = (
    "ONNX's clip is 'applied to the input of activations' (Operators.md#LSTM), h(C_t) included; ONNX Runtime's "
    "CPU kernel clips only the gate pre-activations: its activation_h_ functions are handed a clipped copy of C_t "
    "and ignore it (uni_directional_lstm.cc GateComputations, rnn_helpers.cc), so wherever |c| exceeds the clip "
    "the outputs are those of a gates-only clip (measured: within 0.007 of the tolerance of it, 40 to 6500 times "
    "the tolerance away from the specified clip).  onnxruntime#27224 (closed as stale), fix onnxruntime#27239 "
    "(open, not merged) (docs/frameworks/onnxruntime.md)")


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


#: The cell clip the TFLite converter gives the fused op of a Keras LSTM (docs/converters/litert.md).
TFLITE_KERAS_CELL_CLIP = 10.0


def _tflite_cell_clip_active(case) -> bool:
    """The reference's cell state reaches |c| > 10 somewhere in the case: a cell clip of 10
    changes the reference's result (computed both ways)."""
    if case.spec.cell_clip is not None:
        return False
    clipped = case.replace(spec=case.spec.replace(cell_clip=TFLITE_KERAS_CELL_CLIP))
    return _reference_differs(case, clipped)


#: OpenVINO's CPU plugin and per-sequence lengths (docs/converters/openvino.md).
_OPENVINO_SEQUENCE_LENGTHS = (
    "with a dynamic input shape the CPU plugin runs LSTMSequence as one oneDNN RNN primitive "
    "(RNNSeq) and ignores sequence_lengths: every sequence runs to the padded length T (its padded "
    "steps' garbage enters the state, Y is not zero there, Ho/Co are the states after step T, and "
    "a reverse direction starts at step T - 1).  src/plugins/intel_cpu/src/nodes/rnn.cpp, "
    "RNN::isSupportedOperation: 'WA: dynamic shapes make impossible to check seq_len due to "
    "shapeOf subgraphs ... if (data_pshape.is_dynamic()) return true;' skips the "
    "is_seq_len_provided check that sends a sequence with lengths to the TensorIterator "
    "decomposition (ConvertSequenceToTensorIterator), which honours them (openvinotoolkit/"
    "openvino pull request #10710, 'Disabled sequences decomposition for dynamic case', 2022); "
    "the same model with static shapes is decomposed and right (tests/test_openvino_facts.py). "
    "No upstream issue found for the wrong results"
)
def _projection_with_padding(case) -> bool:
    return (bool(case.spec.proj_size) and case.lengths is not None
            and bool((case.lengths < case.steps).any()))


def _with_lengths(case) -> bool:
    return case.lengths is not None


def _every_case(case) -> bool:
    return True


def _float64_without_state(case) -> bool:
    return case.dtype == "float64" and case.initial_state is None and case.lengths is None


_MINDSPORE_TANH = (
    "MindSpore's CPU Tanh kernel (ops.Tanh, float32) is an approximation that is off by up to 1e-4 "
    "for |x| in [4, 5.5] (tanh(5) comes out as 1.0000098, above 1) and returns exactly 1 beyond; "
    "the seq_length path of nn.LSTM (_DynamicRNNBase.variable_recurrent, a loop of _lstm_cell) and "
    "nn.LSTMCell apply it to g and c, so their outputs differ from the fused LSTM kernel's (used "
    "without seq_length, accurate) by up to ~5e-4 where pre-activations or cell states reach that "
    "range (mindspore-ai/mindspore#348 reports the Tanh deviation; docs/frameworks/mindspore.md)")

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
    *(KnownIssue("onnxruntime", prop, "onnxruntime 1.31.1 (onnx 1.23.2, opset 22)", _ORT_CLIP, when=_clip_reaches_h,
                 when_text="cases in which the cell state entering h exceeds the clip")
      for prop in ("activation_clip", "option_combinations")),
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
    KnownIssue(
        "paddle", "option_combinations", "paddlepaddle 3.3.1 (CPU)",
        "with proj_size, nn.LSTM does not use the fused rnn kernel (five parameters per cell, so "
        "could_use_cudnn is False) but the Python loop _rnn_dynamic_graph (paddle/nn/layer/rnn.py), "
        "which holds the state at padded steps (_maybe_copy) but returns the cell's raw output there: "
        "the output of one step from the held state on the padding input, not zeros (the fused kernel "
        "used without proj_size outputs zeros); valid outputs and final states are right "
        "(docs/frameworks/paddle.md)",
        when=_projection_with_padding, when_text="cases with a projection and padded steps",
    ),
    *[KnownIssue("mindspore", name, "mindspore 2.10.0 (CPU)", _MINDSPORE_TANH, when=_with_lengths,
                 when_text="cases with lengths (the seq_length loop)")
      for name in ("lengths", "zero_length", "reverse", "bidirectional", "stacked", "option_combinations")],
    KnownIssue("mindspore", "step_by_step", "mindspore 2.10.0 (CPU)", _MINDSPORE_TANH, when=_every_case,
               when_text="every case (nn.LSTMCell)"),
    KnownIssue(
        "sonnet-unrolled", "gradients", "dm-sonnet 2.0.2 on tensorflow-cpu 2.21.0",
        "snt.UnrolledLSTM runs tf.raw_ops.BlockLSTMV2 on the CPU (sonnet/src/recurrent.py, "
        "_block_unrolled_lstm, chosen eagerly and by Grappler's implementation selector in a "
        "tf.function), and TensorFlow registers the V1 gradient for that op (see the tf-block-v2 "
        "entry): every gradient of an UnrolledLSTM on the CPU is wrong (dx, dh0, dc0 and the weights, "
        "not just swapped blocks); snt.LSTM with snt.dynamic_unroll is right (docs/frameworks/sonnet.md)",
    ),
    KnownIssue(
        "mindspore", "dtype_float64", "mindspore 2.10.0 (CPU)",
        "nn.LSTM(dtype=float64) without an initial state and without seq_length runs the fused CPU LSTM "
        "kernel and returns a Float64 tensor computed with float32 accuracy (errors ~1e-7, not 1e-15); "
        "with an initial state it refuses float64 (TypeError: x and hx must be float32 or float16), "
        "with seq_length it is float64-accurate (docs/frameworks/mindspore.md)",
        when=_float64_without_state, when_text="float64 cases without an initial state or lengths (the fused kernel)",
    ),
]


_TFLITE_CELL_CLIP = (
    "the converter fuses a Keras LSTM into UNIDIRECTIONAL_SEQUENCE_LSTM with cell_clip = 10.0: "
    "tensorflow/compiler/mlir/lite/utils/lstm_utils.cc, ConvertKerasLSTMLayer, passes "
    "builder->getF32FloatAttr(10.0) as the op's cell_clip (Keras clips nothing), so the cell "
    "state is clipped to [-10, 10] at every step; h = o * tanh(c) hides it while tanh(10) "
    "rounds to 1 in float32, the cell state and every later step do not (docs/converters/litert.md). "
    "No upstream issue found"
)
_TFLITE_VERSIONS = "tensorflow-cpu 2.21.0, tf_keras 2.21.0, ai-edge-litert 2.3.0"

KNOWN_ISSUES += [
    issue
    for backend in ("tflite-keras", "tflite-keras-drq")
    for issue in (
        # Whole property: the decoder's cell state (seeded with the encoder's, |c| up to ~10) is
        # what crosses 10, and a narrow entry sees only the encoder's case.
        KnownIssue(backend, "state_transfer", _TFLITE_VERSIONS,
                   _TFLITE_CELL_CLIP + "; here the decoder, seeded with the encoder's final state, "
                   "crosses |c| = 10 (the 'accumulating' regime)"),
        KnownIssue(backend, "*", _TFLITE_VERSIONS, _TFLITE_CELL_CLIP, when=_tflite_cell_clip_active,
                   when_text="cases whose cell state exceeds 10 in magnitude"),
    )
]
KNOWN_ISSUES.append(KnownIssue(
    "litert-*", "activation_linear", "ai-edge-litert 2.3.0",
    "UNIDIRECTIONAL_SEQUENCE_LSTM and BIDIRECTIONAL_SEQUENCE_LSTM with fused_activation_function NONE (the "
    "schema's linear) compute h = o * (a stale scratch buffer) instead of o * c: lstm_eval.cc writes "
    "ApplyActivationToVector(cell_state, ..., activation, scratch) and multiplies the output gate "
    "by scratch, and tensorflow/lite/kernels/internal/tensor_utils.h's ApplyActivationToVector "
    "returns on kTfLiteActNone without writing its result.  The TFLite converter "
    "never emits NONE for an LSTM (a Keras 'linear' LSTM stays a WHILE loop), so only models "
    "written by other tools reach it (apache/tvm#19633's review states the intended NONE semantics: "
    "a linear candidate and cell output).  No upstream issue found"))


def _merged_batch_major(case) -> bool:
    """A bidirectional case (BIDIRECTIONAL_SEQUENCE_LSTM with merge_outputs, batch-major) with more than
    one batch row."""
    return case.direction == "bidirectional" and case.batch > 1


KNOWN_ISSUES.append(KnownIssue(
    "litert-bilstm", "*", "ai-edge-litert 2.3.0 (LiteRT v2.2.0 and main at f67457790c, 2026-08-21)",
    "BIDIRECTIONAL_SEQUENCE_LSTM with merge_outputs = true and time_major = false keeps batch row b's output "
    "state h at the wrong place: the batch-major loop of lstm_eval.cc EvalFloat (LiteRT "
    "tflite/kernels/lstm_eval.cc, 'output_state_ptr = GetTensorData<float>(output_state) + b * "
    "output_batch_leading_dim') offsets the (B, P) state tensor by the width of the merged output (2P, "
    "bidirectional_sequence_lstm.cc passes the merged (B, T, 2P) output to both directions) instead of P: row b "
    "reads its initial h from row 2b and writes its final h there, past the end of the tensor for b >= B / 2 "
    "(an out-of-bounds read and write; EvalHybrid has the same line).  Measured: row 0 right; the final h of "
    "every other row wrong (0.2 to 0.96 off), and y too when the initial state is given.  The cell state is "
    "offset right (b * n_cell); time_major = true and merge_outputs = false are right (the kernel's own "
    "tests cover merged outputs only time-major, bidirectional_sequence_lstm_test.cc).  No upstream issue "
    "found (docs/converters/litert.md)",
    when=_merged_batch_major, when_text="bidirectional cases (merged outputs, batch-major) with more than one batch row"))


_OPENVINO_ONNX_PEEPHOLES = (
    "openvino.convert_model's ONNX frontend reads the LSTM's peephole input P and drops it: "
    "src/frontends/onnx/frontend/src/op/lstm.cpp builds v5::LSTMSequence from X, initial_h, "
    "initial_c, sequence_lens, W, R and B only (LSTMSequence-5 has no peephole input; the ONNX "
    "importer moved to it in openvinotoolkit/openvino pull request #2511, 2020), so the model "
    "computes the LSTM without peepholes (measured: equal to the reference without P to 7e-8).  "
    "No upstream issue found"
)


_OPENVINO_ONNX_INPUT_FORGET = (
    "openvino.convert_model's ONNX frontend reads the LSTM's input_forget attribute and drops it: "
    "src/frontends/onnx/frontend/src/op/lstm.cpp keeps it in LSTMAttributes::m_input_forget and builds "
    "v5::LSTMSequence without it (LSTMSequence-5 has no coupled gates), so the model computes an uncoupled LSTM "
    "(measured: equal to the reference without the coupling to 7e-8).  No warning.  No upstream issue found"
)
_OPENVINO_ONNX_CLIP = (
    "ONNX's clip is 'applied to the input of activations' (Operators.md#LSTM), h(C_t) included; the ONNX frontend "
    "passes it to LSTMSequence-5 as its clip, which clamps the gate pre-activations only (the op spec; "
    "src/frontends/onnx/frontend/src/op/lstm.cpp), so wherever |c| exceeds the clip the outputs are those of a "
    "gates-only clip (measured: within 2e-7 of the reference's gate_clip, 0.004 to 0.33 away from the specified "
    "clip in the accumulating regime).  ONNX Runtime computes the same (onnxruntime#27224); no OpenVINO issue found"
)
_OPENVINO_ONNX_SIX_ACTIVATIONS = (
    "a bidirectional ONNX LSTM lists six activations, f, g, h of each direction; the ONNX frontend passes all "
    "six to one LSTMSequence-5 (src/frontends/onnx/frontend/src/op/lstm.cpp), whose activations are one list "
    "for the op: BidirectionalLSTMSequenceDecomposition (src/common/transformations/src/transformations/"
    "op_conversions/bidirectional_sequences_decomposition.cpp) gives the forward and the reverse LSTMSequence the "
    "same list, and each cell takes its first three, so the backward direction computes with the forward "
    "direction's activations (measured: equal to the reference with the forward three in both directions to "
    "1.8e-7).  No warning.  No upstream issue found"
)


def _combined(backend: str, prop: str, versions: str, *parts: tuple[str, Callable, str]) -> KnownIssue:
    """One narrow entry for documented issues that meet in one property: ``parts`` are (reason, when,
    when_text) of each; an example is covered when any of them holds."""
    reasons, whens, texts = zip(*parts)
    return KnownIssue(
        backend, prop, versions,
        ("documented issues meet here: " if len(parts) > 1 else "") + "; ".join(reasons),
        when=whens[0] if len(whens) == 1 else (lambda case: any(w(case) for w in whens)),
        when_text=", or ".join(texts))


def _peepholes(case) -> bool:
    return case.spec.use_peepholes


def _input_forget(case) -> bool:
    return case.spec.coupled_gates == "forget_from_input"


KNOWN_ISSUES += [
    KnownIssue("openvino-onnx", "peepholes", "openvino 2026.4.1", _OPENVINO_ONNX_PEEPHOLES),
    KnownIssue("openvino-onnx", "input_forget", "openvino 2026.4.1", _OPENVINO_ONNX_INPUT_FORGET),
    KnownIssue("openvino-onnx", "backward_activations", "openvino 2026.4.1 (CPU plugin)",
               _OPENVINO_ONNX_SIX_ACTIVATIONS),
    KnownIssue("openvino-onnx", "activation_clip", "openvino 2026.4.1 (CPU plugin)", _OPENVINO_ONNX_CLIP,
               when=_clip_reaches_h, when_text="cases in which the cell state entering h exceeds the clip"),
    _combined("openvino-onnx", "option_combinations", "openvino 2026.4.1 (CPU plugin)",
              (_OPENVINO_ONNX_PEEPHOLES, _peepholes, "cases with peepholes"),
              (_OPENVINO_ONNX_INPUT_FORGET, _input_forget, "cases with input_forget"),
              (_OPENVINO_ONNX_CLIP, _clip_reaches_h, "cases in which the cell state entering h exceeds the clip"),
              (_OPENVINO_SEQUENCE_LENGTHS, _padded, "cases with a sequence shorter than the padded length")),
]
KNOWN_ISSUES += [
    KnownIssue(backend, "*", "openvino 2026.4.1 (CPU plugin)", _OPENVINO_SEQUENCE_LENGTHS, when=_padded,
               when_text="cases with a sequence shorter than the padded length")
    for backend in ("openvino-lstmsequence", "openvino-onnx", "openvino-torch")
]


def _float16_long_reduction(case) -> bool:
    """float16 cases whose gate pre-activations sum more terms (D + P) than the float16 table
    covers (tolerances.REDUCTION_COVERED, 128): where a float16 accumulator's error outgrows it."""
    p = case.params
    return case.dtype == "float16" and p.input_size + p.output_size > 128


_TF_FLOAT16 = (
    "TensorFlow's LSTMs in float16 on the CPU accumulate the gate matrix product in float16 (TF 2.21: "
    "oneDNN takes DT_HALF only with AVX-512 and TF falls back to Eigen's half GEMM; TF 1.15 likewise): "
    "at D = 1, H = 255, B = 63 in the saturating regime c is 0.062 off (0.028 allowed), 0.009 from a "
    "float16-accumulating emulation of the same step and 1.2e-5 from a float32-accumulating one "
    "(torch.nn.LSTM in float16: 0.009).  Whether TF's float16 MatMul accumulates in float16 is asked, "
    "unanswered, in tensorflow/tensorflow#18443 (docs/frameworks/tensorflow.md)")
KNOWN_ISSUES += [
    KnownIssue(pattern, "dtype_float16", versions, _TF_FLOAT16, when=_float16_long_reduction,
               when_text="float16 cases with more than 128 terms (D + P) per gate sum")
    for pattern, versions in (("tf-block*", "tensorflow-cpu 2.21.0"), ("tf1-*", "tensorflow 1.15.5"),
                              ("sonnet-unrolled", "dm-sonnet 2.0.2, tensorflow-cpu 2.21.0 (BlockLSTMV2)"))
]


def _float32_saturating(case) -> bool:
    return case.dtype == "float32" and case.origin.get("regime") == "saturating"


def _float32(case) -> bool:
    return case.dtype == "float32"


_CUDA_VERSIONS = "torch 2.11.0+cu130, cuDNN 9.19.0, NVIDIA H200"
KNOWN_ISSUES += [
    KnownIssue(
        "torch-cuda", "*", _CUDA_VERSIONS,
        "cuDNN's float32 LSTM (IEEE products: torch.backends.cudnn.allow_tf32 = False) is less accurate than "
        "torch's CPU kernels up to 128 units (error / float32 table, saturating regime: 0.695 against 0.058 at "
        "D = H = 16, 0.957 against 0.147 at 128; equal from 256 on), and exceeds the tolerance up to 6 times in "
        "saturating cases, even at D = 1, H = 2, B = 15.  Its sigmoid is within 12.4 float32 ulp and its tanh "
        "within 1.6 (bench/cuda_activations.py), so not the activations alone: the path is cuDNN's persistent "
        "kernel (RNN_blockPersist_fp_LSTM, which the profiler shows at 16 units: CUDNN_RNN_ALGO_PERSIST_STATIC_SMALL_H, "
        "asked for since pytorch/pytorch#73211; at 256 a GEMM and elemWiseRNNcell "
        "run and agree with the CPU), and with cudnn.enabled = False ATen's CUDA LSTM is as accurate as the CPU "
        "(bench/cuda_lstm_paths.py).  No upstream issue found (docs/frameworks/torch.md, 'On a GPU')",
        when=_float32_saturating, when_text="float32 cases in the saturating regime"),
    KnownIssue(
        "torch-cuda-tf32", "*", _CUDA_VERSIONS,
        "PyTorch's documented default torch.backends.cudnn.allow_tf32 = True lets cuDNN round float32 "
        "operands of the LSTM's matrix products to TF32 (10-bit significand; docs notes/cuda.rst, "
        "pytorch/pytorch#40737 extended it to RNNs): y up to 500 to 1000 times the float32 tolerance off "
        "in the saturating regime and 17 to 34 times in the moderate one, at D = H = 16 to 1024; the "
        "same shapes with allow_tf32 = False are within it except as in torch-cuda's entry; D = H = 64, "
        "T = 128 took a kernel without TF32 (identical errors in both modes) (docs/frameworks/torch.md)",
        when=_float32, when_text="float32 cases"),
]


def known_issue(backend: str, property_name: str) -> KnownIssue | None:
    for issue in KNOWN_ISSUES:
        if fnmatch.fnmatch(backend, issue.backend) and fnmatch.fnmatch(property_name, issue.property):
            return issue
    return None


# --------------------------------------------------------------------------------------------
# ONNX -> onnx2tf -> LiteRT (docs/converters/onnx2tf.md, tests/test_onnx2tf_facts.py)

_ONNX2TF_VERSIONS = "onnx2tf 1.28.8 (tensorflow 2.21.0, tf_keras 2.21.0, ai-edge-litert 2.3.0)"
#: The alpha and beta onnx2tf builds each parameterised ONNX activation with, whatever the node's
#: activation_alpha / activation_beta say (onnx2tf/ops/LSTM.py, ONNX_ACTIVATION_MAPPING: the
#: mapping's defaults are passed, the attributes are read and never used; Elu is tf.nn.elu).
ONNX2TF_ACTIVATION_PARAMETERS = {"HardSigmoid": (0.2, 0.5), "LeakyRelu": (0.01, None), "Elu": (1.0, None),
                                 "ThresholdedRelu": (1.0, None), "Affine": (1.0, 0.0), "ScaledTanh": (1.0, 1.0)}

_ONNX2TF_LENGTHS = (
    "onnx2tf reads the LSTM's sequence_lens and never uses it (onnx2tf/ops/LSTM.py: a tf_keras RNN without a "
    "mask): every sequence runs to the padded length T, its padded steps enter the state, Y is not zero past a "
    "length, Y_h / Y_c are the states after step T, and a reverse direction starts at step T - 1 (measured: equal "
    "to the same model without sequence_lens).  Still so in onnx2tf 2.6.7 (its source); no upstream issue found")
_ONNX2TF_CLIP = (
    "ONNX's clip is 'applied to the input of activations' (Operators.md#LSTM), h(C_t) included; onnx2tf's "
    "CustomLSTMCell clips the pre-activations of i, f, g and o and not C_t before h (onnx2tf/ops/LSTM.py), so "
    "wherever |c| exceeds the clip the outputs are those of a gates-only clip (measured: within the tolerance of "
    "the reference's gate_clip).  ONNX Runtime computes the same (onnxruntime#27224); no onnx2tf issue found")
_ONNX2TF_PEEPHOLES = (
    "onnx2tf's CustomLSTMCell adds the peephole terms as tf.matmul(P (1, H), c (B, H)) instead of P (.) c "
    "(onnx2tf/ops/LSTM.py since PINTO0309/onnx2tf#303, still so in 2.6.7): the conversion fails on the product's "
    "shapes (reported unsupported) unless the batch equals the hidden size, and then every unit's peephole term "
    "is a sum over the batch rows (measured: equal to that product to 2e-5).  No upstream issue found")
_ONNX2TF_ACTIVATIONS = (
    "onnx2tf reads activation_alpha / activation_beta and builds every activation with its own constants "
    "(HardSigmoid 0.2 / 0.5, ScaledTanh 1 / 1, Affine 1 / 0, ThresholdedRelu 1, Elu 1; a LeakyRelu with another "
    "alpha than 0.01 fails to convert): Keras 3's hard_sigmoid (alpha 1/6) computes Keras 2's (measured: within "
    "the tolerance of the reference with those constants).  PINTO0309/onnx2tf#300 (closed, 'There is a problem "
    "in how to call RNN activation functions when parameters other than the default ones are specified') and its "
    "fix #301 did not make the attributes reach the layers; still so in 2.6.7")


def _onnx2tf_activation(name: str) -> str:
    """The reference activation onnx2tf computes for ``name`` (its own alpha and beta)."""
    from adapters.onnx_activations import from_onnx, to_onnx

    onnx_name, alpha, beta = to_onnx(name)
    if onnx_name not in ONNX2TF_ACTIVATION_PARAMETERS:
        return name
    own_alpha, own_beta = ONNX2TF_ACTIVATION_PARAMETERS[onnx_name]
    return from_onnx(onnx_name, own_alpha if alpha is not None else None, own_beta if beta is not None else None)


def _onnx2tf_activations_differ(case) -> bool:
    """The reference computes something else with every activation as onnx2tf builds it."""
    spec = case.spec
    changes = {"recurrent_activation": _onnx2tf_activation(spec.recurrent_activation),
               "activation": _onnx2tf_activation(spec.activation)}
    if spec.cell_activation is not None:
        changes["cell_activation"] = _onnx2tf_activation(spec.cell_activation)
    if spec.backward_activations is not None:
        changes["backward_activations"] = tuple(_onnx2tf_activation(a) if a is not None else None
                                                for a in spec.backward_activations)
    variant = spec.replace(**changes)
    return variant != spec and _reference_differs(case, case.replace(spec=variant))


#: The onnx2tf issues by name: (reason, when, when_text).
_ONNX2TF = {
    "lengths": (_ONNX2TF_LENGTHS, _padded, "cases with a sequence shorter than the padded length"),
    "clip": (_ONNX2TF_CLIP, _clip_reaches_h, "cases in which the cell state entering h exceeds the clip"),
    "peepholes": (_ONNX2TF_PEEPHOLES, _peepholes, "cases with peepholes"),
    "activations": (_ONNX2TF_ACTIVATIONS, _onnx2tf_activations_differ,
                    "cases whose activation parameters differ from onnx2tf's constants"),
}


def _onnx2tf_issue(prop: str, *which: str) -> KnownIssue:
    """The onnx2tf entry of ``prop`` for the documented issues ``which`` (names of ``_ONNX2TF``)."""
    return _combined("onnx2tf", prop, _ONNX2TF_VERSIONS, *(_ONNX2TF[w] for w in which))


KNOWN_ISSUES += [
    _onnx2tf_issue("activation_clip", "clip", "lengths"),
    _onnx2tf_issue("peepholes", "peepholes", "lengths"),
    _onnx2tf_issue("option_combinations", "clip", "peepholes", "activations", "lengths"),
    *(_onnx2tf_issue(prop, "activations", "lengths")
      for prop in ("onnx_activations", "backward_activations", "hard_sigmoid", "hard_sigmoid_keras2")),
    _onnx2tf_issue("*", "lengths"),
]


#: Mutations a documented issue makes invisible on a backend: (backend pattern, property, mutation)
#: -> why.  The broken variant computes what the real backend computes there, so no property can
#: catch it; the mutation test reports it unsupported with this reason, and fails once it is
#: caught (the issue was fixed: remove the entry).
MASKED_MUTATIONS = {
    ("onnx2tf", "hard_sigmoid_keras2", "hard_sigmoid_variant_swapped"):
        "onnx2tf builds HardSigmoid with alpha 0.2, beta 0.5 whatever activation_alpha says (its activations known "
        "issue), so Keras 3's hard_sigmoid handed in by the mutant computes Keras 2's, as the real backend does",
}


def masked_mutation(backend: str, property_name: str, mutation: str) -> str | None:
    for (pattern, prop, name), why in MASKED_MUTATIONS.items():
        if fnmatch.fnmatch(backend, pattern) and prop == property_name and name == mutation:
            return why
    return None
