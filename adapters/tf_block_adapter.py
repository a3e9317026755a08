"""TensorFlow 2 fused LSTM ops: ``tf.raw_ops.BlockLSTM`` ("tf-block") and ``tf.raw_ops.BlockLSTMV2``
("tf-block-v2"), with ``tf.raw_ops.LSTMBlockCell`` as the native single-step API of the first.

Conventions (tensorflow/core/ops/rnn_ops.cc and tensorflow/core/kernels/rnn/lstm_ops.{h,cc},
TensorFlow 2.21 CPU kernels):

* ``x`` is time-major (T, B, D); ``cs_prev`` / ``h_prev`` are the initial cell and hidden state.
* ``w`` is one fused (D + H, 4H) kernel applied to ``concat([x_t, h_{t-1}])`` (rows: input
  weights, then recurrent weights; ``reference.layout.join_fused_kernel``), ``b`` is (4H,).
* Gate order along 4H: BlockLSTM / LSTMBlockCell use ICFO = i, g, f, o (preset "tf_block");
  BlockLSTMV2 uses IFCO = i, f, g, o (preset "tf_block_v2").
* forget_bias: a run-time attribute of BlockLSTM and LSTMBlockCell (default 1.0), added to the
  forget pre-activation before the sigmoid; passed natively, always explicitly.  BlockLSTMV2 has
  no forget_bias attribute (the kernel sets it to 0): this adapter folds the case's forget bias
  into ``b`` (the "tf_block_v2" entry of ``adapters.packings``).
* cell_clip: an attribute of all three ops, applied to the new cell state when it is > 0
  (``if (cell_clip > 0.0f)`` in LSTMBlockCellFpropWithEigen).  Its default is 3.0 for BlockLSTM
  and LSTMBlockCell (a silent clip of every |c| > 3) and 0.0 (no clip) for BlockLSTMV2; this
  adapter always passes it, -1 for "no clip".  Both versions clip the same way.
* Peepholes ``wci``, ``wcf``, ``wco`` (H,) each, used when ``use_peephole``: i and f see
  c_{t-1}, o sees the clipped c_t.  The reference's peephole rows are i, f, o.
* Activations are fixed: sigmoid for the gates, tanh for the candidate and the cell output.
* No projection, no per-sequence lengths: ``seq_len_max`` is one scalar for the whole batch
  (steps past it output zeros and the state is not carried), so it cannot express sequences of
  different lengths in one batch; "lengths" is not declared.  The ops run one direction of one
  layer; a reverse direction, a bidirectional layer or a stack is the caller's own composition
  (TF 1 had ``tf.contrib.rnn.TimeReversedFusedRNN`` for that; TF 2 has nothing), so "reverse",
  "bidirectional" and "layers" are not declared either.
* dtypes: the CPU kernels are registered for half and float only (no double, no bfloat16).
* Gradients: the ops have registered gradients (BlockLSTMGrad / BlockLSTMGradV2,
  tensorflow/python/ops/rnn_grad.py), taken with ``tf.GradientTape``.  The backward kernel
  (LSTMBlockCellBpropWithEigen) ignores ``cell_clip``: it back-propagates through a clipped cell
  state as if the clip were the identity (see conformance/harness/known_issues.py and
  docs/frameworks/tensorflow.md).

Speed: each op call goes through a ``tf.function`` whose input signature leaves every dimension
unknown, cached per (dtype, attributes): one trace serves every shape.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from .base import Adapter, Capabilities, Case, Output
from .packings import PACKINGS, TF_BLOCK_PEEPHOLES


def import_tensorflow():
    """Import TensorFlow with ``TF_USE_LEGACY_KERAS=1`` (so that ``tf.keras`` and
    ``tf.compat.v1.nn.rnn_cell`` are tf_keras, Keras 2) and its C++ logging quiet."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def tensorflow_version(distribution: str) -> str:
    """The installed version of ``distribution``, else of whatever ``tensorflow`` imports."""
    from importlib import metadata

    for name in (distribution, "tensorflow", "tensorflow-cpu"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        return import_tensorflow().__version__
    except ImportError:
        return "unknown"


_NP_DTYPES = {"float32": np.float32, "float16": np.float16, "float64": np.float64}


#: Why the fused ops lack what they lack (see the module docstring).
_WHY_NOT = {
    "lengths": "the op has one batch-wide seq_len_max, no per-sequence lengths",
    **{f: "the op runs one forward layer (TF 2 has no reversing composition of it)"
       for f in ("reverse", "bidirectional", "layers")},
    **{d: "the CPU kernels are registered for half and float only" for d in ("float64", "bfloat16")},
    **{f: "the op has none" for f in ("projection", "proj_clip", "gate_clip")},
    **{a: "the op's activations are fixed (sigmoid, tanh)" for a in ("hard_sigmoid", "hard_sigmoid_keras2",
                                                                   "relu", "linear")},
}


def _op_signature(tf, t) -> list:
    """x (T, B, D), h0, c0 (B, H), w (D + H, 4H), wci, wcf, wco (H,), b (4H,): every dimension
    unknown, so that one trace serves every shape."""
    return [tf.TensorSpec([None, None, None], t), tf.TensorSpec([None, None], t),
            tf.TensorSpec([None, None], t), tf.TensorSpec([None, None], t),
            tf.TensorSpec([None], t), tf.TensorSpec([None], t), tf.TensorSpec([None], t),
            tf.TensorSpec([None], t)]


class _BlockLSTMBase(Adapter):
    framework = "tensorflow-cpu"
    weight_orientation = "fused w (D + H, 4H) applied to [x_t, h_{t-1}]; peepholes wci, wcf, wco (H,)"
    bias_convention = "one bias b (4H,); a second bias is summed into it by the adapter"
    op_name = "?"
    has_forget_bias_attr = True

    def version(self) -> str:
        return tensorflow_version(self.framework)

    # -- conversion -------------------------------------------------------------------------

    def _native(self, case: Case) -> dict:
        """The op's inputs (NumPy, case dtype) for the case's single layer, and its attributes.
        BlockLSTM takes the forget bias as an attribute; for BlockLSTMV2 it is folded into b.
        Without peepholes the op still takes wci, wcf, wco: zeros."""
        spec, params = case.spec, case.params
        dtype = _NP_DTYPES[case.dtype]
        forget_bias = float(spec.forget_bias)
        arrays = self.packing.to_native(params, spec.gate_order,
                                        forget_bias=0.0 if self.has_forget_bias_attr else forget_bias)
        for name in TF_BLOCK_PEEPHOLES.values():
            arrays.setdefault(name, np.zeros(params.hidden_size))
        attrs = {"cell_clip": -1.0 if spec.cell_clip is None else float(spec.cell_clip),
                 "use_peephole": bool(spec.use_peepholes),
                 "forget_bias": forget_bias if self.has_forget_bias_attr else None}
        return {k: np.asarray(v, dtype=dtype) for k, v in arrays.items()}, attrs

    def _state(self, case: Case, dtype):
        hidden = case.params.hidden_size
        if case.initial_state is None:
            zeros = np.zeros((case.batch, hidden), dtype=dtype)
            return zeros, zeros.copy()
        h0, c0 = case.initial_state[0]
        return np.asarray(h0, dtype=dtype), np.asarray(c0, dtype=dtype)

    # -- compiled calls ---------------------------------------------------------------------

    def _op(self, tf, attrs):
        op = getattr(tf.raw_ops, self.op_name)
        kwargs = {"cell_clip": attrs["cell_clip"], "use_peephole": attrs["use_peephole"]}
        if attrs["forget_bias"] is not None:
            kwargs["forget_bias"] = attrs["forget_bias"]
        return lambda **inputs: op(**inputs, **kwargs)

    @lru_cache(maxsize=64)
    def _forward_fn(self, dtype: str, attrs_key: tuple):
        tf = import_tensorflow()
        op = self._op(tf, dict(attrs_key))
        t = tf.as_dtype(dtype)
        @tf.function(input_signature=_op_signature(tf, t))
        def forward(x, h0, c0, w, wci, wcf, wco, b):
            steps = tf.shape(x, out_type=tf.int64)[0]
            out = op(seq_len_max=steps, x=x, cs_prev=c0, h_prev=h0, w=w, wci=wci, wcf=wcf, wco=wco, b=b)
            return out.h, out.cs

        return forward

    @lru_cache(maxsize=64)
    def _gradient_fn(self, dtype: str, attrs_key: tuple):
        tf = import_tensorflow()
        op = self._op(tf, dict(attrs_key))
        t = tf.as_dtype(dtype)
        signature = _op_signature(tf, t) + [tf.TensorSpec([None, None, None], t),  # dy, dh, dc
                                            tf.TensorSpec([None, None], t), tf.TensorSpec([None, None], t)]

        @tf.function(input_signature=signature)
        def gradients(x, h0, c0, w, wci, wcf, wco, b, dy, dh, dc):
            sources = [x, h0, c0, w, wci, wcf, wco, b]
            with tf.GradientTape() as tape:
                tape.watch(sources)
                steps = tf.shape(x, out_type=tf.int64)[0]
                out = op(seq_len_max=steps, x=x, cs_prev=c0, h_prev=h0, w=w, wci=wci, wcf=wcf,
                         wco=wco, b=b)
                loss = (tf.reduce_sum(out.h * dy) + tf.reduce_sum(out.h[-1] * dh)
                        + tf.reduce_sum(out.cs[-1] * dc))
            return tape.gradient(loss, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)

        return gradients

    # -- the contract -----------------------------------------------------------------------

    def run(self, case: Case) -> Output:
        arrays, attrs = self._native(case)
        h0, c0 = self._state(case, _NP_DTYPES[case.dtype])
        x = np.ascontiguousarray(np.asarray(case.x, dtype=_NP_DTYPES[case.dtype]).transpose(1, 0, 2))
        forward = self._forward_fn(case.dtype, tuple(sorted(attrs.items())))
        h, cs = forward(x, h0, c0, arrays["w"], arrays["wci"], arrays["wcf"], arrays["wco"], arrays["b"])
        h, cs = h.numpy(), cs.numpy()
        return Output(np.ascontiguousarray(h.transpose(1, 0, 2)), [(h[-1], cs[-1])])

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        dtype = _NP_DTYPES[case.dtype]
        arrays, attrs = self._native(case)
        h0, c0 = self._state(case, dtype)
        x = np.ascontiguousarray(np.asarray(case.x, dtype=dtype).transpose(1, 0, 2))
        dy_t = np.ascontiguousarray(np.asarray(dy, dtype=dtype).transpose(1, 0, 2))
        fn = self._gradient_fn(case.dtype, tuple(sorted(attrs.items())))
        gx, gh0, gc0, gw, gwci, gwcf, gwco, gb = (g.numpy().astype(np.float64) for g in fn(
            x, h0, c0, arrays["w"], arrays["wci"], arrays["wcf"], arrays["wco"], arrays["b"],
            dy_t, np.asarray(dh, dtype=dtype), np.asarray(dc, dtype=dtype)))
        out = {"x": gx.transpose(1, 0, 2), "h0": gh0, "c0": gc0}
        out.update(self.packing.gradients({"w": gw, "b": gb, "wci": gwci, "wcf": gwcf, "wco": gwco},
                                          case.params, case.spec.gate_order))
        return out


class BlockLSTMAdapter(_BlockLSTMBase):
    """``tf.raw_ops.BlockLSTM``: gate order i, g, f, o; native forget_bias; cell_clip default 3.

    ``run_steps`` uses ``tf.raw_ops.LSTMBlockCell`` (the same kernel, one step) with the
    returned (cs, h) fed back.
    """

    name = "tf-block"
    api = "tf.raw_ops.BlockLSTM (+ tf.raw_ops.LSTMBlockCell for single steps)"
    op_name = "BlockLSTM"
    native_gate_order = "tf_block"
    packing = PACKINGS["tf_block"]
    bias_convention = ("one bias b (4H,) + run-time forget_bias attribute (passed natively); "
                       "a second bias is summed into b by the adapter")
    capabilities = Capabilities(
        dtypes=("float32", "float16"),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "peepholes",
                            "cell_clip", "step", "gradients"}),
        gradient_dtypes=("float32",),
        why_not=_WHY_NOT,
    )

    @lru_cache(maxsize=64)
    def _step_fn(self, dtype: str, attrs_key: tuple):
        tf = import_tensorflow()
        attrs = dict(attrs_key)
        t = tf.as_dtype(dtype)
        signature = [tf.TensorSpec([None, None], t)] * 4 + [tf.TensorSpec([None], t)] * 4

        @tf.function(input_signature=signature)
        def step(x, h, c, w, wci, wcf, wco, b):
            out = tf.raw_ops.LSTMBlockCell(x=x, cs_prev=c, h_prev=h, w=w, wci=wci, wcf=wcf, wco=wco,
                                           b=b, forget_bias=attrs["forget_bias"],
                                           cell_clip=attrs["cell_clip"],
                                           use_peephole=attrs["use_peephole"])
            return out.h, out.cs

        return step

    def run_steps(self, case: Case) -> Output:
        dtype = _NP_DTYPES[case.dtype]
        arrays, attrs = self._native(case)
        h, c = self._state(case, dtype)
        step = self._step_fn(case.dtype, tuple(sorted(attrs.items())))
        x = np.asarray(case.x, dtype=dtype)
        ys = []
        for t in range(case.steps):
            h, c = step(x[:, t], h, c, arrays["w"], arrays["wci"], arrays["wcf"], arrays["wco"],
                        arrays["b"])
            ys.append(h.numpy())
        return Output(np.stack(ys, axis=1), [(h.numpy(), c.numpy())])


class BlockLSTMV2Adapter(_BlockLSTMBase):
    """``tf.raw_ops.BlockLSTMV2``: gate order i, f, g, o; no forget_bias attribute (the
    adapter folds the case's forget bias into b); cell_clip default 0 = none (always passed).

    No single-step op exists for the V2 layout (LSTMBlockCell is ICFO only), so ``run_steps``
    is the default: BlockLSTMV2 on length-1 slices with the state fed back.
    """

    name = "tf-block-v2"
    api = "tf.raw_ops.BlockLSTMV2"
    op_name = "BlockLSTMV2"
    native_gate_order = "tf_block_v2"
    packing = PACKINGS["tf_block_v2"]
    has_forget_bias_attr = False
    bias_convention = ("one bias b (4H,); no forget_bias attribute: a forget bias and a second "
                       "bias are summed into b by the adapter")
    capabilities = Capabilities(
        dtypes=("float32", "float16"),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "peepholes",
                            "cell_clip", "gradients"}),
        gradient_dtypes=("float32",),
        why_not=_WHY_NOT,
    )
