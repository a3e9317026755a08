"""The packing math: pure conversions between the reference packing and any other.

The reference packing (LSTMParams): kernel (D, 4H), recurrent_kernel (H or P, 4H), bias (4H,),
optional recurrent_bias (4H,), peephole (3, H) ordered i, f, o, projection (H, P); gate blocks in
the order the LSTMSpec names.

How the 4H axis holds the gates (``GATE_PACKINGS``):

gate-major  four blocks of H, one per gate, in the gate order: element ``k * H + u`` is gate
            ``order[k]`` of unit ``u``.  The reference and almost every framework.
unit-major  H groups of four, one per unit, the gates of a group in the gate order: element
            ``u * 4 + k`` is gate ``order[k]`` of unit ``u`` (the 4H axis is really (H, 4)).
            Chainer's ``F.lstm`` splits its input this way, in the order a, i, f, o
            (chainer/functions/rnn/lstm.py, ``_extract_gates``: ``x.reshape(len(x), H, 4)``).

With H = 1 the two packings are the same array.  Every function here returns new arrays and has an inverse; the
round trips are exact (permutations, transposes, splits and concatenations only, apart from the
bias folds, which are additions).

This module knows no framework's names: ``adapters.packings`` holds one table per framework
(which arrays it stores, under which names) and composes these functions.
"""

from __future__ import annotations

import numpy as np

from .gates import GATES, REFERENCE_PEEPHOLE_ORDER, permute_gates, resolve_gate_order
from .spec import LSTMParams


#: The ways a 4H axis holds the four gates (see the module docstring).
GATE_PACKINGS = ("gate-major", "unit-major")
#: The gate-order presets (reference.gates.GATE_ORDER_PRESETS) whose framework packs unit-major;
#: every other preset is gate-major.
PRESET_PACKINGS = {"chainer": "unit-major"}
#: The arrays of LSTMParams that have a 4H axis (their last).
FOUR_H_ARRAYS = ("kernel", "recurrent_kernel", "bias", "recurrent_bias")


def resolve_packing(packing: str, *, argument: str = "packing") -> str:
    """The canonical packing name ("gate-major" or "unit-major"); "gate_major", "GATE-MAJOR" are
    accepted.  ValueError naming ``argument`` for anything else."""
    key = str(packing).strip().lower().replace("_", "-") if isinstance(packing, str) else None
    if key not in GATE_PACKINGS:
        raise ValueError(f"{argument}: expected one of {list(GATE_PACKINGS)}, got {packing!r}")
    return key


def _gate_axis(array, axis: int, argument: str) -> tuple[np.ndarray, int, int]:
    array = np.asarray(array)
    if array.ndim == 0:
        raise ValueError(f"{argument}: expected an array with a 4H axis, got a scalar")
    if not -array.ndim <= axis < array.ndim:
        raise ValueError(f"{argument}: axis {axis} out of range for an array of shape {array.shape}")
    axis %= array.ndim
    size = array.shape[axis]
    if size == 0 or size % 4:
        raise ValueError(f"{argument}: expected axis {axis} to have size 4H (a positive multiple of 4), "
                         f"got {size} (shape {array.shape})")
    return array, axis, size // 4


def to_unit_major(array, *, axis: int = -1) -> np.ndarray:
    """A gate-major 4H axis (4, H) re-packed unit-major (H, 4); the gate order is kept."""
    array, axis, hidden = _gate_axis(array, axis, "array")
    moved = np.moveaxis(array, axis, -1)
    out = moved.reshape(moved.shape[:-1] + (4, hidden)).swapaxes(-1, -2).reshape(moved.shape)
    return np.ascontiguousarray(np.moveaxis(out, -1, axis))


def to_gate_major(array, *, axis: int = -1) -> np.ndarray:
    """Inverse of :func:`to_unit_major`: a unit-major 4H axis (H, 4) re-packed gate-major (4, H)."""
    array, axis, hidden = _gate_axis(array, axis, "array")
    moved = np.moveaxis(array, axis, -1)
    out = moved.reshape(moved.shape[:-1] + (hidden, 4)).swapaxes(-1, -2).reshape(moved.shape)
    return np.ascontiguousarray(np.moveaxis(out, -1, axis))


def repack_gates(array, from_order: str, to_order: str, *, from_packing: str = "gate-major",
                 to_packing: str = "gate-major", axis: int = -1) -> np.ndarray:
    """The 4H axis of ``array`` re-packed from (``from_order``, ``from_packing``) to (``to_order``,
    ``to_packing``): a permutation of its elements, so the round trip is exact."""
    from_packing = resolve_packing(from_packing, argument="from_packing")
    to_packing = resolve_packing(to_packing, argument="to_packing")
    array = np.asarray(array)
    if from_packing == "unit-major":
        array = to_gate_major(array, axis=axis)
    array = permute_gates(array, from_order, to_order, axis=axis)
    return to_unit_major(array, axis=axis) if to_packing == "unit-major" else array


def permute_params(params: LSTMParams, from_order: str, to_order: str, *, from_packing: str = "gate-major",
                   to_packing: str = "gate-major") -> LSTMParams:
    """The same weights with every 4H axis re-packed from ``from_order`` to ``to_order`` (and from
    ``from_packing`` to ``to_packing``, see :func:`repack_gates`)."""
    out = params.arrays()
    for name in FOUR_H_ARRAYS:
        if name in out:
            out[name] = repack_gates(out[name], from_order, to_order, from_packing=from_packing,
                                     to_packing=to_packing)
    return LSTMParams(**out)


def fold_forget_bias(bias, forget_bias: float, gate_order: str) -> np.ndarray:
    """Bias with a run-time forget bias added to its forget block (TF LSTMCell -> Keras/PyTorch).

    ``fold_forget_bias(b, -k, order)`` unfolds it again.
    """
    bias = np.array(bias, dtype=np.result_type(np.asarray(bias).dtype, np.float32), copy=True)
    order = resolve_gate_order(gate_order)
    hidden = _four_h(bias, "bias")
    k = order.index("f")
    bias[k * hidden:(k + 1) * hidden] += forget_bias
    return bias


def fold_biases(bias, recurrent_bias) -> np.ndarray | None:
    """One bias from two (PyTorch b_ih + b_hh, ONNX Wb + Rb); None stands for zeros."""
    if bias is None and recurrent_bias is None:
        return None
    if bias is None:
        return np.array(recurrent_bias, copy=True)
    if recurrent_bias is None:
        return np.array(bias, copy=True)
    if np.shape(bias) != np.shape(recurrent_bias):
        raise ValueError(f"recurrent_bias: expected shape {np.shape(bias)} like bias, got {np.shape(recurrent_bias)}")
    return np.asarray(bias) + np.asarray(recurrent_bias)


def arrange_biases(params: LSTMParams, gate_order: str, *, forget_bias: float = 0.0,
                   two_biases: bool = False, bias_optional: bool = False) -> LSTMParams:
    """``params`` (packed in ``gate_order``) with its biases arranged as a framework stores them.

    forget_bias
        Added to the forget block of the (first) bias: the run-time forget bias the weights are
        meant to run with minus the one the framework adds by itself (TF LSTMCell weights ported
        to Keras or PyTorch: 1.0; TF weights loaded into TF: 0.0).
    two_biases
        The framework adds two biases (PyTorch b_ih + b_hh, ONNX Wb + Rb): both are kept, a
        missing one becomes zeros.  Otherwise the second is summed into the first
        (``fold_biases``) and ``recurrent_bias`` is None.  The sum comes first, then the forget
        bias: every framework's loader does it in this order, so that results are reproducible
        to the bit.
    bias_optional
        The framework can run without a bias (Keras ``use_bias=False``): a bias that is absent
        and receives nothing stays None.  Otherwise a missing bias becomes zeros.
    """
    four_h = np.shape(params.kernel)[-1]
    dtype = np.asarray(params.kernel).dtype

    def zeros():
        return np.zeros(four_h, dtype=dtype)

    arrays = params.arrays()
    bias, second = params.bias, params.recurrent_bias
    if not two_biases:
        bias, second = fold_biases(bias, second), None
    if forget_bias:
        bias = fold_forget_bias(zeros() if bias is None else bias, forget_bias, gate_order)
    if bias is None and not bias_optional:
        bias = zeros()
    if two_biases and second is None:
        second = zeros()
    arrays.pop("bias", None)
    arrays.pop("recurrent_bias", None)
    return LSTMParams(**arrays, bias=bias, recurrent_bias=second)


def orient(array, layout: str, *, rows: str) -> np.ndarray:
    """A (rows, 4H) array in the reference orientation as a framework stores it: unchanged for
    layout "<rows>,4H", transposed for "4H,<rows>" (PyTorch and ONNX: (4H, D)).  Its own
    inverse.  ``rows`` is "D" for a kernel, "H" for a recurrent kernel."""
    if layout == f"{rows},4H":
        return np.ascontiguousarray(array)
    if layout == f"4H,{rows}":
        return np.ascontiguousarray(np.asarray(array).T)
    raise ValueError(f"layout: expected '{rows},4H' or '4H,{rows}', got {layout!r}")


def split_peepholes(peephole) -> dict[str, np.ndarray]:
    """The reference's (3, H) peephole array by gate letter (its rows are ordered i, f, o)."""
    return {g: np.asarray(peephole)[REFERENCE_PEEPHOLE_ORDER.index(g)].copy() for g in REFERENCE_PEEPHOLE_ORDER}


def join_peepholes(by_gate: dict) -> np.ndarray:
    """Inverse of :func:`split_peepholes`: a (3, H) array with rows ordered i, f, o."""
    missing = [g for g in REFERENCE_PEEPHOLE_ORDER if by_gate.get(g) is None]
    if missing:
        raise ValueError(f"peepholes: expected the gates {list(REFERENCE_PEEPHOLE_ORDER)}, missing {missing}")
    return np.stack([np.asarray(by_gate[g]) for g in REFERENCE_PEEPHOLE_ORDER])


def split_fused_kernel(fused, input_size: int):
    """TF LSTMCell's kernel (D + H, 4H), applied to concat([x, h]), -> (kernel (D, 4H), recurrent (H, 4H))."""
    fused = np.asarray(fused)
    if fused.ndim != 2 or not 0 <= input_size <= fused.shape[0]:
        raise ValueError(f"fused: expected shape (D + H, 4H) with D = input_size = {input_size}, got {fused.shape}")
    return fused[:input_size].copy(), fused[input_size:].copy()


def join_fused_kernel(kernel, recurrent_kernel) -> np.ndarray:
    """(D, 4H) and (H, 4H) -> TF LSTMCell's fused (D + H, 4H) kernel."""
    kernel, recurrent_kernel = np.asarray(kernel), np.asarray(recurrent_kernel)
    if kernel.ndim != 2 or recurrent_kernel.ndim != 2 or kernel.shape[1] != recurrent_kernel.shape[1]:
        raise ValueError(f"recurrent_kernel: expected shape (H, {np.shape(kernel)[-1]}) matching kernel "
                         f"{kernel.shape}, got {recurrent_kernel.shape}")
    return np.concatenate([kernel, recurrent_kernel], axis=0)


def split_gates(array, gate_order: str, *, axis: int = -1, packing: str = "gate-major") -> dict[str, np.ndarray]:
    """The four gate blocks of ``array`` by letter (Flax keeps one Dense layer per gate); a
    unit-major ``array`` is re-packed gate-major first."""
    order = resolve_gate_order(gate_order)
    if resolve_packing(packing) == "unit-major":
        array = to_gate_major(array, axis=axis)
    blocks = np.split(np.asarray(array), 4, axis=axis)
    return {gate: blocks[order.index(gate)].copy() for gate in GATES}


def join_gates(blocks: dict, gate_order: str, *, axis: int = -1, packing: str = "gate-major") -> np.ndarray:
    """Inverse of :func:`split_gates`."""
    order = resolve_gate_order(gate_order)
    missing = set(GATES) - set(blocks)
    if missing:
        raise ValueError(f"blocks: expected the gates {list(GATES)}, missing {sorted(missing)}")
    joined = np.concatenate([np.asarray(blocks[g]) for g in order], axis=axis)
    return to_unit_major(joined, axis=axis) if resolve_packing(packing) == "unit-major" else joined


def _four_h(array, argument):
    size = np.shape(array)[-1] if np.ndim(array) else 0
    if np.ndim(array) != 1 or size == 0 or size % 4:
        raise ValueError(f"{argument}: expected shape (4H,), got {np.shape(array)}")
    return size // 4
