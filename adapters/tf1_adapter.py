"""TensorFlow 1.15 LSTMs, run in a CPython 3.7 worker (adapters/workers/tf1_worker.py;
``python -m conformance setup tf1`` creates its environment).

``TF1LSTMCellAdapter`` ("tf1-lstmcell"): ``tf.nn.rnn_cell.LSTMCell`` with ``tf.nn.dynamic_rnn``
(``TF1LSTMCellStaticAdapter``, "tf1-lstmcell-static": the same cell with ``tf.nn.static_rnn``).
Convention (tensorflow/python/ops/rnn_cell_impl.py, LSTMCell, TF 1.15):

* ``kernel`` (D + P, 4H) applied to ``concat([x, h])`` (reference.layout.join_fused_kernel),
  ``bias`` (4H); ``i, j, f, o = split(lstm_matrix, 4, axis=1)``: gate order igfo, preset "tf1".
* ``forget_bias`` is added to the forget pre-activation at run time and defaults to 1.0: the
  adapter always passes the case's value (0.0 when the spec has none).  A second bias is folded
  into ``bias`` (fold_biases).
* ``use_peepholes``: ``w_i_diag``, ``w_f_diag`` (see c_{t-1}), ``w_o_diag`` (sees the clipped
  c_t); ``cell_clip`` clips c_t before the output; ``num_proj`` adds ``projection/kernel`` (H, P)
  and ``proj_clip`` clips the projected output.  ``activation`` replaces tanh for the candidate
  and the cell output; the gates always use the sigmoid.
* State tuples are ``LSTMStateTuple(c, h)``: c first (Keras and PyTorch put h first).
* ``sequence_length``: outputs past a sequence's length are zeros and the state is copied
  through, so the final state is the last valid one (length semantics "zeros").
* Reverse: the backward half of ``bidirectional_dynamic_rnn`` (``reverse_sequence`` of the input
  within each length, the RNN, ``reverse_sequence`` of the output): outputs aligned with the input.
* Bidirectional: ``bidirectional_dynamic_rnn`` (``static_bidirectional_rnn``), outputs concatenated
  fw | bw; stacks: ``MultiRNNCell`` under one dynamic_rnn (bidirectional stacks layer by layer).
* Initial states are fed through placeholders; single steps call the cell directly,
  ``cell(x_t, LSTMStateTuple(c, h))``, with the returned state fed back.
* Stateful ("stateful" feature): the pattern TF1 users build by hand: the state in non-trainable
  variables, the output op runs under a control dependency on ``assign(state, final_state)`` (so
  the next run continues from it) and a reset op assigns zeros.  ``run_stream`` uses exactly that.
* Gradients: ``tf.gradients`` of sum(y*dy) + sum(h_T*dh) + sum(c_T*dc).

``TF1BlockAdapter`` ("tf1-block"): ``tf.contrib.rnn.LSTMBlockFusedCell`` for whole sequences
(time-major; ``TimeReversedFusedRNN`` backwards; stacks chain fused cells) and
``tf.contrib.rnn.LSTMBlockCell`` for single steps and the stateful pattern
(tensorflow/contrib/rnn/python/ops/lstm_ops.py).  Same kernel (D + H, 4H) and bias packing,
gate order i, ci, f, o (preset "tf_block"), run-time forget_bias (default 1.0, always passed), a
cell_clip whose contrib default is "none" (-1; the raw op's default is 3), peepholes w_i_diag,
w_f_diag, w_o_diag; no projection, a fixed tanh, and kernels for float32 and float16 only.

A conformance fact recorded by ``describe()`` (and docs/frameworks/tf1.md): tf.keras 1.15's LSTM
defaults to ``recurrent_activation="hard_sigmoid"`` (0.2 x + 0.5, clipped), standalone Keras 2.3.1
to "sigmoid".
"""

from __future__ import annotations

from .base import Capabilities
from .packings import PACKINGS
from .worker_adapter import WorkerAdapter

_WHY_NOT = {**{a: "the TF 1 cells' gates always use the sigmoid" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
            "gate_clip": "the TF 1 cells have no gate clip"}
_COMMON_FEATURES = {"initial_state", "forget_bias", "recurrent_bias", "peepholes", "cell_clip",
                    "lengths", "empty_sequences", "reverse", "bidirectional", "layers", "step", "stateful",
                    "gradients"}


class _TF1Adapter(WorkerAdapter):
    framework = "tensorflow"
    worker_env = "tf1"
    # LSTMCell and the contrib fused cells name their variables alike, gate order igfo for both.
    packing = PACKINGS["tf1"]
    bias_convention = ("one bias plus a run-time forget_bias (default 1.0, always passed); a second "
                       "bias is folded into the bias by the adapter")
    weight_orientation = "kernel (D + P, 4H) on concat([x, h]), bias (4H,)"
    api_name = "dynamic_rnn"
    native_step_op = True  # the cell called directly (tf1_worker.py, op "steps")
    native_stream_op = True  # the state in variables, assign and reset ops (op "stream")

    def facts(self) -> dict:
        """The Keras recurrent-activation defaults next to TF 1.15 (see the module docstring)."""
        reply, _ = self.worker().request({"op": "facts"})
        return {k: v for k, v in reply.items() if k != "status"}

    def describe(self) -> dict:
        out = super().describe()
        if "setup_problem" not in out:
            out["facts"] = self.facts()
        return out


class TF1LSTMCellAdapter(_TF1Adapter):
    name = "tf1-lstmcell"
    api = "tf.nn.rnn_cell.LSTMCell + tf.nn.dynamic_rnn"
    api_name = "dynamic_rnn"
    native_gate_order = "tf1"
    capabilities = Capabilities(
        dtypes=("float32", "float64", "float16", "bfloat16"),
        recurrent_activations=("sigmoid",),
        activations=("tanh", "relu", "linear"),
        features=frozenset(_COMMON_FEATURES | {"projection", "proj_clip"}),
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
        gradient_dtypes=("float32", "float64"),
        why_not=_WHY_NOT,
    )


class TF1LSTMCellStaticAdapter(TF1LSTMCellAdapter):
    """The same cell unrolled by ``tf.nn.static_rnn`` / ``static_bidirectional_rnn`` (one graph
    per sequence length).  Streaming passes the state explicitly between static_rnn runs: the
    variable-carrying pattern needs one graph for chunks of every length, which a static unroll
    does not give, so "stateful" is not declared here (tf1-lstmcell exercises it)."""

    name = "tf1-lstmcell-static"
    api = "tf.nn.rnn_cell.LSTMCell + tf.nn.static_rnn"
    api_name = "static_rnn"
    native_stream_op = False
    capabilities = Capabilities(
        dtypes=TF1LSTMCellAdapter.capabilities.dtypes,
        recurrent_activations=("sigmoid",),
        activations=("tanh", "relu", "linear"),
        features=TF1LSTMCellAdapter.capabilities.features - {"stateful"},
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
        gradient_dtypes=("float32", "float64"),
        why_not={**_WHY_NOT, "stateful": "a static unroll has no graph for chunks of every length "
                                          "(tf1-lstmcell exercises the stateful pattern)"},
    )


class TF1BlockAdapter(_TF1Adapter):
    name = "tf1-block"
    api = "tf.contrib.rnn.LSTMBlockFusedCell / LSTMBlockCell"
    api_name = "fused"
    native_gate_order = "tf_block"
    weight_orientation = "kernel (D + H, 4H) on concat([x, h]), bias (4H,)"
    capabilities = Capabilities(
        dtypes=("float32", "float16"),
        recurrent_activations=("sigmoid",),
        activations=("tanh",),
        features=frozenset(_COMMON_FEATURES),
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
        gradient_dtypes=("float32",),
        why_not={**_WHY_NOT,
                 **{f: "the contrib LSTMBlock cells have none" for f in ("projection", "proj_clip")},
                 **{a: "the contrib LSTMBlock cells have a fixed tanh" for a in ("relu", "linear")},
                 **{d: "the LSTMBlock kernels are registered for float32 and float16 only"
                    for d in ("float64", "bfloat16", "gradients float64")}},
    )
