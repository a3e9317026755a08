"""Exact zero padding of weights, states and inputs, for adapters that run a larger LSTM than
the case's: to reuse one compiled function across shapes (JAX: XLA compiles one program per
shape) or to get past a framework's refusal of a shape (``proj_size >= hidden_size``).

Padding is done in the reference packing (``LSTMParams``), before the framework's packing is
applied, so it is the same for every framework: padded input features meet zero kernel rows;
a padded unit has zero weights, biases and initial state, so its pre-activations are 0, g =
act(0) = 0 for tanh, relu and linear, its cell state stays exactly 0 (f * 0 + i * 0, whatever a
run-time forget bias makes of f) and so does its output o * act(0) = 0; nothing padded reaches a
real unit (zero rows in the recurrent kernel and the projection).  Gate blocks are split and
joined with ``reference.layout`` (no block is sliced by hand).
"""

from __future__ import annotations

import numpy as np

from reference.layout import join_gates, split_gates
from reference.spec import LSTMParams

_GATED = ("kernel", "recurrent_kernel", "bias", "recurrent_bias")


def bucket(n: int, minimum: int) -> int:
    """The smallest power of two >= n and >= minimum."""
    size = minimum
    while size < n:
        size *= 2
    return size


def bucket_steps(n: int) -> int:
    """Padded number of time steps: 16, then multiples of 128 (the suite's short and long
    sequences each share one compiled function; a padded step costs microseconds of run time, a
    compilation about 0.3 s of CPU)."""
    if n <= 16:
        return 16
    return -(-n // 128) * 128


def pad(array, shape: tuple[int, ...], dtype) -> np.ndarray:
    """``array`` zero-padded at the end of every axis to ``shape``, cast to ``dtype``."""
    array = np.asarray(array)
    if any(s < a for s, a in zip(shape, array.shape)) or len(shape) != array.ndim:
        raise ValueError(f"array: expected a shape no larger than {shape}, got {array.shape}")
    out = np.zeros(shape, dtype=dtype)
    out[tuple(slice(0, n) for n in array.shape)] = array
    return out


def pad_rows(kernel, segments: list[tuple[int, int]]) -> np.ndarray:
    """A (rows, ...) array whose rows come in ``segments`` of (size, padded size) -- the forward
    and backward halves of a bidirectional layer's output -- each segment zero-padded at its end."""
    kernel = np.asarray(kernel)
    sizes = [n for n, _ in segments]
    if sum(sizes) != kernel.shape[0]:
        raise ValueError(f"kernel: expected {sum(sizes)} input rows, got {kernel.shape[0]}")
    parts = np.split(kernel, np.cumsum(sizes)[:-1], axis=0)
    return np.concatenate([pad(part, (padded,) + part.shape[1:], part.dtype)
                           for part, (_, padded) in zip(parts, segments)], axis=0)


def _unpad_rows(array, segments: list[tuple[int, int]]) -> np.ndarray:
    parts = np.split(np.asarray(array), np.cumsum([p for _, p in segments])[:-1], axis=0)
    return np.concatenate([part[:n] for part, (n, _) in zip(parts, segments)], axis=0)


def _gate_columns(array, size: int | None, hidden: int) -> np.ndarray:
    """Each gate block of the last (4H) axis cut or zero-padded to ``hidden`` columns."""
    blocks = split_gates(array, "ifgo")
    width = [(0, 0)] * (np.ndim(array) - 1)
    if size is None:  # widen
        return join_gates({g: np.pad(b, width + [(0, hidden - b.shape[-1])]) for g, b in blocks.items()}, "ifgo")
    return join_gates({g: b[..., :size] for g, b in blocks.items()}, "ifgo")


def pad_params(params: LSTMParams, hidden: int, input_segments: list[tuple[int, int]] | None = None) -> LSTMParams:
    """``params`` (reference packing, any gate order) with ``hidden`` units and, when given, its
    kernel rows padded by ``input_segments`` (see :func:`pad_rows`); the recurrent kernel's rows
    are padded to ``hidden`` unless there is a projection (they are then the P outputs)."""
    arrays = params.arrays()
    for name in _GATED:
        if name in arrays:
            arrays[name] = _gate_columns(arrays[name], None, hidden)
    if input_segments is not None:
        arrays["kernel"] = pad_rows(arrays["kernel"], input_segments)
    if params.projection is None:
        arrays["recurrent_kernel"] = pad_rows(arrays["recurrent_kernel"], [(params.hidden_size, hidden)])
    else:
        arrays["projection"] = pad_rows(params.projection, [(params.hidden_size, hidden)])
    return LSTMParams(**arrays)


def unpad_gradients(grads: dict, hidden: int, padded_hidden: int,
                    input_segments: list[tuple[int, int]] | None = None) -> dict:
    """Inverse of :func:`pad_params` on gradients keyed like ``reference.lstm_backward``
    (``hidden`` is the true number of units)."""
    out = dict(grads)
    for name in _GATED:
        if name in out:
            out[name] = _gate_columns(out[name], hidden, padded_hidden)
    if input_segments is not None:
        out["kernel"] = _unpad_rows(out["kernel"], input_segments)
    if "projection" in out:
        out["projection"] = out["projection"][:hidden]
    else:
        out["recurrent_kernel"] = out["recurrent_kernel"][:hidden]
    return out
