"""MXNet 1.9.1, run in a CPython 3.8 worker (adapters/workers/mxnet_worker.py; ``python -m
conformance setup mxnet`` creates its environment).

``MXNetLSTMAdapter`` ("mxnet-lstm"): ``gluon.rnn.LSTM(layout="NTC")``.  Convention
(python/mxnet/gluon/rnn/rnn_layer.py, _RNNLayer; src/operator/rnn-inl.h, rnn_impl.h):

* Parameters per layer k and direction (``l`` forward, ``r`` backward): ``l0_i2h_weight`` (4H, D),
  ``l0_h2h_weight`` (4H, P), ``l0_i2h_bias``, ``l0_h2h_bias`` (4H): applied as x W^T + b_i2h +
  h W_h^T + b_h2h (two biases, as PyTorch and cuDNN), gate order i, f, g, o (the "mxnet" entry of
  ``adapters.packings``); with ``projection_size`` also ``l0_h2r_weight`` (P, H).  No run-time
  forget bias: it is folded into ``i2h_bias``.
* The layer concatenates every array into the one flat parameter vector of the fused ``RNN``
  operator (``_forward_kernel``): all weights (per layer, per direction: i2h, h2h, h2r), then all
  biases; ``adapters.packings.mxnet_flat_params`` builds it, and "mxnet-rnn-op" feeds the operator
  that vector directly.
* ``state_clip_min`` / ``state_clip_max`` clip the cell state (a cell clip); the gates are fixed
  sigmoid and tanh.  States are (num_layers * num_directions, B, H) arrays, h first.
* ``use_sequence_length=True`` takes per-sequence lengths (a known issue on the CPU: see
  ``conformance/harness/known_issues.py``).
* No backward-only layer: "reverse" is bidirectional's second half only.
* Single steps: ``LSTM._unfuse()``, MXNet's own conversion of the layer into LSTMCells that
  share its parameters, driven with each returned state fed back (one round trip).
* Gradients: ``autograd.record()`` and ``backward()`` of sum(y*dy) + sum(h_T*dh) + sum(c_T*dc).
* float16 fails on the CPU ("FP16 gemm on cpu not implemented!").

``MXNetRNNOpAdapter`` ("mxnet-rnn-op"): ``mx.nd.RNN(mode="lstm")`` on the flat vector built on the
host; its gradient with respect to the vector is taken apart on the host.

``MXNetLSTMCellAdapter`` ("mxnet-lstmcell"): ``gluon.rnn.LSTMCell`` (FullyConnected i2h and h2h,
``SliceChannel`` into i, f, g, o) unrolled with ``valid_length`` (outputs past a length masked to
zeros, the final state taken at each length), ``SequentialRNNCell`` for stacks,
``BidirectionalCell`` for both directions and its reversal (``SequenceReverse`` within each
length) for a backward-only run; ``activation`` ("tanh", "relu": a name for F.Activation) and
``recurrent_activation`` ("sigmoid", or MXNet's ``hard_sigmoid(alpha, beta)`` for both hard
sigmoids).
"""

from __future__ import annotations

import numpy as np

from .base import Capabilities, Case
from .packings import PACKINGS, mxnet_flat_params, mxnet_unflat_params
from .worker_adapter import WorkerAdapter

_FUSED_WHY_NOT = {
    **{a: "the fused RNN operator's gates are always the sigmoid" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
    **{a: "the fused RNN operator has a fixed tanh" for a in ("relu", "linear")},
    "float16": "MXNet 1.9.1 on the CPU: 'FP16 gemm on cpu not implemented!' (src/operator/linalg_impl.h)",
    "bfloat16": "no bfloat16 LSTM in MXNet 1.9.1's NDArray API",
    "peepholes": "MXNet's LSTMs have no peepholes", "gate_clip": "MXNet clips the cell state only",
    "proj_clip": "MXNet's projection has no clip",
    "reverse": "the fused RNN operator runs forward or bidirectional: no backward-only layer",
    "stateful": "Gluon layers keep no state between calls (states are passed and returned)",
}


class _MXNetAdapter(WorkerAdapter):
    framework = "mxnet"
    worker_env = "mxnet"
    packing = PACKINGS["mxnet"]
    native_gate_order = "mxnet"
    bias_convention = "two biases i2h_bias + h2h_bias; a forget bias is folded into i2h_bias"
    api_name = "gluon"

    def describe(self) -> dict:
        out = super().describe()
        if "worker" in out:  # set up: which CPU kernel family the build has
            out["worker"]["mkldnn"] = self.worker().start().get("mkldnn")
        return out


class MXNetLSTMAdapter(_MXNetAdapter):
    name = "mxnet-lstm"
    api = "mxnet.gluon.rnn.LSTM (fused RNN operator), LSTM._unfuse() cells for single steps"
    weight_orientation = "l<k>_i2h_weight (4H, D), l<k>_h2h_weight (4H, P), biases (4H,), l<k>_h2r_weight (P, H)"
    capabilities = Capabilities(
        dtypes=("float32", "float64"),
        recurrent_activations=("sigmoid",),
        activations=("tanh",),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "projection", "cell_clip",
                            "lengths", "empty_sequences", "bidirectional", "layers", "step", "gradients"}),
        length_semantics="zeros",
        max_layers=3,
        why_not=_FUSED_WHY_NOT,
    )

    native_step_op = True

    def native_for(self, case: Case) -> bool:
        """LSTM._unfuse() supports neither a projection nor a state clip: the layer itself runs one
        step at a time then."""
        return super().native_for(case) and not case.spec.proj_size and case.spec.cell_clip is None


class MXNetRNNOpAdapter(_MXNetAdapter):
    """The fused operator called with the flat parameter vector that this adapter builds
    (``adapters.packings.mxnet_flat_params``): what gluon.rnn.LSTM hides, and what a model
    exported from the symbolic API stores as one ``parameters`` array."""

    name = "mxnet-rnn-op"
    api = "mxnet.nd.RNN(mode='lstm') with the flat parameter vector"
    api_name = "rnn_op"
    weight_orientation = ("one flat vector: every weight (i2h (4H, D), h2h (4H, P), h2r (P, H) per layer and "
                          "direction), then every bias (i2h, h2h)")
    capabilities = Capabilities(
        dtypes=("float32", "float64"),
        recurrent_activations=("sigmoid",),
        activations=("tanh",),
        features=MXNetLSTMAdapter.capabilities.features - {"step"},
        length_semantics="zeros",
        max_layers=3,
        why_not=_FUSED_WHY_NOT,
    )

    def case_arrays(self, case: Case) -> dict[str, np.ndarray]:
        arrays = super().case_arrays(case)
        layers = [[{} for _ in dirs] for dirs in case.layers]
        for key in [k for k in arrays if k.startswith("L")]:  # "L<layer>.<direction>.<native name>"
            layer, direction, name = key[1:].split(".", 2)
            layers[int(layer)][int(direction)][name] = arrays.pop(key)
        arrays["flat"] = mxnet_flat_params(layers)
        return arrays

    def native_weight_gradients(self, case: Case, out: dict) -> dict:
        p = case.params
        layers = mxnet_unflat_params(out["param.flat"], input_size=p.input_size, hidden_size=p.hidden_size,
                                     num_layers=1, num_directions=1,
                                     projection_size=p.output_size if case.spec.proj_size else None)
        return layers[0][0]


class MXNetLSTMCellAdapter(_MXNetAdapter):
    name = "mxnet-lstmcell"
    api = "mxnet.gluon.rnn.LSTMCell unrolled (SequentialRNNCell, BidirectionalCell), called per step"
    api_name = "cell"
    native_step_op = True
    weight_orientation = "i2h_weight (4H, D), h2h_weight (4H, H), i2h_bias, h2h_bias (4H,) per cell"
    capabilities = Capabilities(
        dtypes=("float32", "float64"),
        recurrent_activations=("sigmoid", "hard_sigmoid", "hard_sigmoid_keras2"),
        activations=("tanh", "relu"),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "lengths", "empty_sequences",
                            "reverse", "bidirectional", "layers", "step", "gradients"}),
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
        why_not={"linear": "LSTMCell applies its activation to the cell state with F.Activation(act_type=...), "
                           "which has no identity",
                 "float16": _FUSED_WHY_NOT["float16"], "bfloat16": _FUSED_WHY_NOT["bfloat16"],
                 "peepholes": "gluon.rnn.LSTMCell has no peepholes",
                 "cell_clip": "gluon.rnn.LSTMCell has no state clip", "gate_clip": "gluon.rnn.LSTMCell has no clip",
                 "projection": "gluon.rnn.LSTMCell has no projection (contrib LSTMPCell is another cell)",
                 "proj_clip": "gluon.rnn.LSTMCell has no projection",
                 "stateful": "Gluon cells keep no state between calls (states are passed and returned)"},
    )
