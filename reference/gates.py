"""Gate letters, the gate orders of every known framework, and block permutations.

This module is the single home of gate-order knowledge in the project.  Four gates are always
named by one letter each:

    i  input gate
    f  forget gate
    g  cell candidate (TF calls it ``j`` or ``ci``, Keras ``c``, ONNX ``c``, CS231n ``g``)
    o  output gate

A *gate order* is a permutation of ``"ifgo"`` naming the four H-wide blocks along the 4H axis of
a kernel, recurrent kernel or bias.  Adapters declare their native order by preset name and call
:func:`permute_gates`; none of them slices gate blocks by hand.
"""

from __future__ import annotations

import itertools

import numpy as np

GATES = "ifgo"

#: Every permutation of the gate letters, in lexicographic order (24 of them).
ALL_GATE_ORDERS: tuple[str, ...] = tuple("".join(p) for p in itertools.permutations(sorted(GATES)))

#: Native gate order of each known framework / API.  Keys are the preset names accepted wherever a
#: gate order is (``LSTMSpec(gate_order="tf")``).  Each entry cites the behaviour it models.
GATE_ORDER_PRESETS: dict[str, str] = {
    # torch.nn.LSTM / LSTMCell: weight_ih_l0 rows are W_ii|W_if|W_ig|W_io (docs of nn.LSTM).
    "torch": "ifgo",
    "pytorch": "ifgo",
    # Keras 2 and 3 LSTMCell: kernel[:, :units] is i, then f, c, o (keras/src/layers/rnn/lstm.py).
    "keras": "ifgo",
    "keras2": "ifgo",
    "keras3": "ifgo",
    "tf_keras": "ifgo",
    # MXNet gluon.rnn.LSTM and Paddle nn.LSTM follow cuDNN: i, f, g, o.
    "mxnet": "ifgo",
    "paddle": "ifgo",
    "cudnn": "ifgo",
    # tf.raw_ops.BlockLSTMV2 takes i, f, ci, o (the V1 op reorders to i, ci, f, o).
    "tf_block_v2": "ifgo",
    # tf.compat.v1.nn.rnn_cell.LSTMCell splits the fused matmul as i, j, f, o
    # (array_ops.split(value=lstm_matrix, num_or_size_splits=4, axis=1)).
    "tf": "igfo",
    "tf1": "igfo",
    # tf.raw_ops.LSTMBlockCell / BlockLSTM and tf.contrib.rnn.LSTMBlockCell: i, ci, f, o.
    "tf_block": "igfo",
    # CNTK layers.LSTM: W, H, b stacked as i, c(andidate), f, o (cntk/layers/blocks.py, _RecurrentBlock).
    "cntk": "igfo",
    # ONNX LSTM operator: W[iofc] (operator spec), letters renamed: c -> g.
    "onnx": "iofg",
    # dm-haiku hk.LSTM: i, g, f, o = jnp.split(gated, 4) (haiku/_src/recurrent.py, LSTM.__call__).
    "haiku": "igfo",
    # dm-sonnet 2 snt.LSTM: i, f, g, o = tf.split(gates, 4, axis=1) (sonnet/src/recurrent.py, _lstm_fn).
    "sonnet": "ifgo",
    # Equinox eqx.nn.LSTMCell: i, f, g, o = jnp.split(lin, 4) (equinox/nn/_rnn.py, LSTMCell.__call__).
    "equinox": "ifgo",
    # CS231n assignment 3 (lstm_step_forward): a[:, :H] is i, then f, o, g.
    "cs231n": "ifog",
    # Chainer F.lstm / L.LSTM: a, i, f, o (a is the candidate), and **unit-major**: the 4H axis is
    # (H, 4), each unit's four gates side by side (chainer/functions/rnn/lstm.py, _extract_gates;
    # reference.layout.PRESET_PACKINGS).  Chainer's NStepLSTM keeps one matrix per gate instead.
    "chainer": "gifo",
    # OpenVINO LSTMCell / LSTMSequence (opset 4 / 5 and later): W, R, B "Expected format: fico"
    # (the op spec and openvino.opset*.lstm_sequence); the reference kernel splits the gates as
    # X_W_fico[0..3] = f, i, c, o (src/core/reference/include/openvino/reference/lstm_cell.hpp).
    "openvino": "figo",
}

#: ONNX orders its peephole vector P as [Pi, Po, Pf]; the reference stores peepholes as i, f, o.
REFERENCE_PEEPHOLE_ORDER = "ifo"
ONNX_PEEPHOLE_ORDER = "iof"


def resolve_gate_order(order: str, *, argument: str = "gate_order") -> str:
    """Return the canonical four-letter order for a preset name or a permutation of "ifgo".

    Raises ValueError naming ``argument`` when ``order`` is neither.
    """
    if not isinstance(order, str):
        raise ValueError(f"{argument}: expected a permutation of 'ifgo' or a preset name, got {order!r}")
    key = order.strip().lower()
    if key in GATE_ORDER_PRESETS:
        return GATE_ORDER_PRESETS[key]
    if len(key) == 4 and sorted(key) == sorted(GATES):
        return key
    raise ValueError(
        f"{argument}: expected a permutation of 'ifgo' (each of i, f, g, o exactly once) or one of "
        f"the presets {sorted(GATE_ORDER_PRESETS)}, got {order!r}"
    )


def gate_index(order: str, gate: str) -> int:
    """Block index of ``gate`` (one of i, f, g, o) in ``order``."""
    order = resolve_gate_order(order)
    if gate not in GATES or len(gate) != 1:
        raise ValueError(f"gate: expected one of 'i', 'f', 'g', 'o', got {gate!r}")
    return order.index(gate)


def gate_block(array: np.ndarray, order: str, gate: str, *, axis: int = -1) -> np.ndarray:
    """View of the H-wide block of ``gate`` along ``axis`` (whose size must be 4H)."""
    array = np.asarray(array)
    size = _four_h(array, axis, "array")
    hidden = size // 4
    k = gate_index(order, gate)
    index = [slice(None)] * array.ndim
    index[axis] = slice(k * hidden, (k + 1) * hidden)
    return array[tuple(index)]


def permutation(from_order: str, to_order: str) -> list[int]:
    """Block indices ``p`` such that blocks ``[p[0], p[1], p[2], p[3]]`` of an array packed in
    ``from_order`` are the blocks of the same array packed in ``to_order``."""
    src = resolve_gate_order(from_order, argument="from_order")
    dst = resolve_gate_order(to_order, argument="to_order")
    return [src.index(gate) for gate in dst]


def permute_gates(array: np.ndarray, from_order: str, to_order: str, *, axis: int = -1) -> np.ndarray:
    """Reorder the four gate blocks of ``array`` along ``axis`` from ``from_order`` to ``to_order``.

    Works for kernels (D, 4H), recurrent kernels (H, 4H), biases (4H,), PyTorch's (4H, D) with
    ``axis=0``, and stacked per-direction arrays.  Always returns a new array.
    """
    array = np.asarray(array)
    _four_h(array, axis, "array")
    perm = permutation(from_order, to_order)
    blocks = np.split(array, 4, axis=axis)
    return np.concatenate([blocks[k] for k in perm], axis=axis)


def _four_h(array: np.ndarray, axis: int, argument: str) -> int:
    if array.ndim == 0:
        raise ValueError(f"{argument}: expected an array with a 4H axis, got a scalar")
    try:
        size = array.shape[axis]
    except IndexError:
        raise ValueError(
            f"{argument}: axis {axis} out of range for an array of shape {array.shape}"
        ) from None
    if size == 0 or size % 4:
        raise ValueError(
            f"{argument}: expected axis {axis} to have size 4H (a positive multiple of 4), "
            f"got {size} (shape {array.shape})"
        )
    return size
