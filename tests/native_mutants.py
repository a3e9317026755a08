"""Hand-written native LSTM callables for the tests of detect and check: one conforming
implementation and deliberately broken variants of it (kept mutation tests: each must be caught).

The conforming one, ``good``, is a TF1-LSTMCell-like float64 NumPy LSTM: gate order igfo, kernel
(D, 4H), recurrent kernel (H, 4H), run-time forget bias 1.0, sigmoid.  It is written
independently of ``reference.lstm`` (only the gate split comes from ``reference.layout``).
Claim it with ``--gate-order igfo --forget-bias 1``.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from reference.layout import split_gates

GOOD_OPTIONS = ["--gate-order", "igfo", "--forget-bias", "1"]


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _hard_sigmoid_keras2(x):
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def _hard_sigmoid(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


RECURRENT_ACTIVATIONS = {"sigmoid": _sigmoid, "hard_sigmoid": _hard_sigmoid,
                         "hard_sigmoid_keras2": _hard_sigmoid_keras2}


def implementation(convention, dtype=np.float32):
    """A hand-written NumPy LSTM (in ``dtype`` arithmetic) for any Convention."""

    def lstm(x, h0, c0, kernel, recurrent_kernel, bias):
        kernel, recurrent_kernel = np.asarray(kernel), np.asarray(recurrent_kernel)
        if convention.kernel_layout == "4H,D":
            kernel = kernel.T
        if convention.recurrent_layout == "4H,H":
            recurrent_kernel = recurrent_kernel.T
        return _lstm(x, h0, c0, kernel, recurrent_kernel, bias, order=convention.gate_order,
                     forget_bias=dtype(convention.forget_bias),
                     ract=RECURRENT_ACTIVATIONS[convention.recurrent_activation], dtype=dtype)

    return lstm


def _lstm(x, h0, c0, kernel, recurrent_kernel, bias, *, order="igfo", forget_bias=1.0, carry_h=True,
          carry_c=True, cell_clip=None, clip_carried_only=None, reshape_kernel=False, ract=_sigmoid,
          nan_at=None, raise_after=None, dtype=np.float64, swap_units_from=None, swap_rows_from=None,
          reset_at=None):
    x, h, c = (np.asarray(a, dtype) for a in (x, h0, c0))
    kernel, recurrent_kernel, bias = (np.asarray(a, dtype) for a in (kernel, recurrent_kernel, bias))
    if reshape_kernel:  # written for a (4H, D) kernel, "transposed" with reshape: a classic bug
        kernel = kernel.reshape(kernel.shape[1], kernel.shape[0])
    if raise_after is not None and x.shape[1] > raise_after:
        raise RuntimeError(f"sequences longer than {raise_after} steps are not supported")
    ys = []
    for t in range(x.shape[1]):
        if reset_at is not None and t == reset_at:  # a chunked loop that loses the state at a chunk boundary
            h, c = np.zeros_like(h), np.zeros_like(c)
        h_in = h if carry_h or t == 0 else np.asarray(h0, dtype)
        c_in = c if carry_c or t == 0 else np.asarray(c0, dtype)
        z = x[:, t] @ kernel + h_in @ recurrent_kernel + bias
        gates = split_gates(z, order)
        if swap_units_from is not None:  # a SIMD tail past the first units reads f and g crossed
            f, g = gates["f"].copy(), gates["g"].copy()
            gates["f"][:, swap_units_from:], gates["g"][:, swap_units_from:] = g[:, swap_units_from:], f[:, swap_units_from:]
        if swap_rows_from is not None:  # a second thread's rows read f and g crossed
            f, g = gates["f"].copy(), gates["g"].copy()
            gates["f"][swap_rows_from:], gates["g"][swap_rows_from:] = g[swap_rows_from:], f[swap_rows_from:]
        c = ract(gates["f"] + forget_bias) * c_in + ract(gates["i"]) * np.tanh(gates["g"])
        if cell_clip is not None:
            c = np.clip(c, -cell_clip, cell_clip)
        h = ract(gates["o"]) * np.tanh(c)
        if clip_carried_only is not None:
            c = np.clip(c, -clip_carried_only, clip_carried_only)
        if nan_at is not None and t == nan_at:
            h = h * np.nan
        ys.append(h)
    return np.stack(ys, axis=1), h, c


good = partial(_lstm)
good_float32 = partial(_lstm, dtype=np.float32)

#: name -> (callable, what is wrong).  Each is right for some inputs and wrong for others.
MUTANTS = {
    "swapped_gates": (partial(_lstm, order="ifgo"), "f and g blocks swapped"),
    "forget_bias_dropped": (partial(_lstm, forget_bias=0.0), "the run-time forget bias is not added"),
    "state_not_carried": (partial(_lstm, carry_h=False, carry_c=False),
                          "every step restarts from (h0, c0): right at step 1, wrong after"),
    "h_not_carried": (partial(_lstm, carry_h=False), "h0 feeds the recurrent kernel at every step"),
    "cell_clip_3": (partial(_lstm, cell_clip=3.0), "the cell state clipped at 3 (LSTMBlockCell's default)"),
    "clip_at_wrong_place": (partial(_lstm, clip_carried_only=3.0),
                            "the carried cell state clipped at 3 after h is computed"),
    "hard_sigmoid_keras2": (partial(_lstm, ract=_hard_sigmoid_keras2), "Keras 2's hard sigmoid for i, f, o"),
    "nan_at_step_2": (partial(_lstm, nan_at=2), "NaN from time step 2"),
    "raises_on_long": (partial(_lstm, raise_after=16), "raises on sequences longer than 16 steps"),
    # Right on small shapes, wrong past a size boundary.
    "units_past_16": (partial(_lstm, swap_units_from=16), "f and g crossed for units 16 and above"),
    "rows_past_16": (partial(_lstm, swap_rows_from=16), "f and g crossed for batch rows 16 and above"),
    "state_lost_at_step_32": (partial(_lstm, reset_at=32), "the state reset to zero at step 32"),
}

#: A conforming implementation written for a (4H, D) kernel and its broken twin.
def good_4h_d(x, h0, c0, kernel, recurrent_kernel, bias):
    return _lstm(x, h0, c0, np.asarray(kernel).T, recurrent_kernel, bias)


wrong_layout = partial(_lstm, reshape_kernel=True)


def transposing(x, h0, c0, kernel, recurrent_kernel, bias):
    """Accepts both layouts: transposes whatever does not match x and h0 (ambiguous for detect)."""
    kernel, recurrent_kernel = np.asarray(kernel), np.asarray(recurrent_kernel)
    if kernel.shape[0] != x.shape[2]:
        kernel = kernel.T
    if recurrent_kernel.shape[0] != np.shape(h0)[1]:
        recurrent_kernel = recurrent_kernel.T
    return _lstm(x, h0, c0, kernel, recurrent_kernel, bias)


def cell_only(x, h0, c0, kernel, recurrent_kernel, bias):
    """One step from a zero state only: its forget gate never shows (ambiguous forget bias)."""
    if np.shape(x)[1] != 1 or np.any(h0) or np.any(c0):
        raise ValueError("only a single step from a zero state is supported")
    return _lstm(x, h0, c0, kernel, recurrent_kernel, bias)


def not_an_lstm(x, h0, c0, kernel, recurrent_kernel, bias):
    """A tanh RNN on the first block: no convention fits."""
    hidden = np.shape(h0)[1]
    h = np.asarray(h0, np.float64)
    ys = []
    for t in range(np.shape(x)[1]):
        h = np.tanh(x[:, t] @ kernel[:, :hidden] + h @ recurrent_kernel[:, :hidden] + bias[:hidden])
        ys.append(h)
    return np.stack(ys, axis=1), h, h


def wrong_shapes(x, h0, c0, kernel, recurrent_kernel, bias):
    y, h, c = _lstm(x, h0, c0, kernel, recurrent_kernel, bias)
    return y.transpose(1, 0, 2), h, c


def two_results(x, h0, c0, kernel, recurrent_kernel, bias):
    y, h, c = _lstm(x, h0, c0, kernel, recurrent_kernel, bias)
    return y, (h, c)


def hangs_on_long(x, h0, c0, kernel, recurrent_kernel, bias):
    """Right, but never returns for sequences longer than 16 steps (a loop that does not end)."""
    import time

    if np.shape(x)[1] > 16:
        while True:
            time.sleep(0.05)
    return _lstm(x, h0, c0, kernel, recurrent_kernel, bias)


def keras2_lstm(x, h0, c0, kernel, recurrent_kernel, bias):
    """Keras 2's LSTM: gate order ifgo, Keras 2's hard_sigmoid (0.2 x + 0.5), no forget bias."""
    return _lstm(x, h0, c0, kernel, recurrent_kernel, bias, order="ifgo", forget_bias=0.0,
                 ract=_hard_sigmoid_keras2)
