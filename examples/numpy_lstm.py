"""Hand-written NumPy LSTMs that follow the native-function contract, for `detect` and `check`.

    python -m conformance detect examples/numpy_lstm.py:cs231n_lstm
    python -m conformance check examples/numpy_lstm.py:tf_lstm --gate-order igfo --forget-bias 1

Each is what a user might have written by hand, packed the way one framework packs its weights:

cs231n_lstm   CS231n assignment 3 (lstm_step_forward): a = x Wx + h Wh + b, split as i, f, o, g;
              Wx (D, 4H), Wh (H, 4H); float64.
tf_lstm       TF1 tf.nn.rnn_cell.LSTMCell: blocks i, j, f, o (j is the candidate), forget_bias=1.0
              added to the forget pre-activation at run time; computed in float32 as TF does.
torch_lstm    torch.nn.LSTM: weight_ih (4H, D) and weight_hh (4H, H) applied as x W^T, blocks i, f,
              g, o; float32.
chainer_lstm  Chainer's L.LSTM / F.lstm, a stand-in written from chainer 7.8.1's source: upward/W
              (4H, D) with upward/b, lateral/W (4H, H) without a bias, and the 4H axis is
              **unit-major** in the order a, i, f, o (a is the candidate): F.lstm reshapes its
              input to (B, H, 4).  float32, as Chainer computes.
              python -m conformance detect examples/numpy_lstm.py:chainer_lstm
              -> gate order gifo, packing unit-major, kernel (4H,D), recurrent (4H,H)
"""

from __future__ import annotations

import numpy as np


def _sigmoid(x):
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf for x < -88 (float32): 1 / inf = 0
        return 1.0 / (1.0 + np.exp(-x))


def cs231n_lstm(x, h0, c0, Wx, Wh, b):
    """CS231n's lstm_forward, batch-major, returning the final state too."""
    _, steps, _ = x.shape
    hidden = h0.shape[1]
    h, c = h0, c0
    ys = []
    for t in range(steps):
        a = x[:, t] @ Wx + h @ Wh + b
        i = _sigmoid(a[:, :hidden])
        f = _sigmoid(a[:, hidden:2 * hidden])
        o = _sigmoid(a[:, 2 * hidden:3 * hidden])
        g = np.tanh(a[:, 3 * hidden:])
        c = f * c + i * g
        h = o * np.tanh(c)
        ys.append(h)
    return np.stack(ys, axis=1), h, c


def tf_lstm(x, h0, c0, kernel, recurrent_kernel, bias, forget_bias=1.0):
    """TF1 LSTMCell semantics (i, j, f, o and a run-time forget bias), float32."""
    x, h, c = (np.asarray(a, np.float32) for a in (x, h0, c0))
    kernel, recurrent_kernel, bias = (np.asarray(a, np.float32) for a in (kernel, recurrent_kernel, bias))
    ys = []
    for t in range(x.shape[1]):
        lstm_matrix = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i, j, f, o = np.split(lstm_matrix, 4, axis=1)
        c = _sigmoid(f + np.float32(forget_bias)) * c + _sigmoid(i) * np.tanh(j)
        h = _sigmoid(o) * np.tanh(c)
        ys.append(h)
    return np.stack(ys, axis=1), h, c


def torch_lstm(x, h0, c0, weight_ih, weight_hh, bias):
    """torch.nn.LSTM semantics (i, f, g, o; weights (4H, D) and (4H, H)), float32."""
    x, h, c = (np.asarray(a, np.float32) for a in (x, h0, c0))
    weight_ih, weight_hh, bias = (np.asarray(a, np.float32) for a in (weight_ih, weight_hh, bias))
    ys = []
    for t in range(x.shape[1]):
        gates = x[:, t] @ weight_ih.T + h @ weight_hh.T + bias
        i, f, g, o = np.split(gates, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        ys.append(h)
    return np.stack(ys, axis=1), h, c


def chainer_lstm(x, h0, c0, upward_W, lateral_W, upward_b):
    """Chainer 7.8.1 ``links.LSTM`` stepped over time, in NumPy (a stand-in of the real one: the
    chainer tox env checks that both agree).  From its source:

    * chainer/links/rnn/lstm.py, ``LSTM.forward``: ``lstm_in = self.upward(x)``, then
      ``lstm_in += self.lateral(self.h)`` (``Linear``: x W^T + b; ``lateral`` has no bias), then
      ``self.c, y = lstm.lstm(self.c, lstm_in)``;
    * chainer/functions/rnn/lstm.py, ``_extract_gates``: ``r = x.reshape((len(x), x.shape[1] // 4,
      4) + x.shape[2:])`` and ``[r[:, :, i] for i in range(4)]``, unpacked as ``a, i, f, o``;
      ``LSTM.forward``: ``a = tanh(a)``, ``i, f, o = _sigmoid(...)`` with ``_sigmoid(x) =
      tanh(x / 2) / 2 + 1/2``, ``c_next = a * i + f * c_prev``, ``h = o * tanh(c_next)``.
    """
    x, h, c = (np.asarray(a, np.float32) for a in (x, h0, c0))
    upward_W, lateral_W, upward_b = (np.asarray(a, np.float32) for a in (upward_W, lateral_W, upward_b))
    half = np.float32(0.5)
    ys = []
    for t in range(x.shape[1]):
        lstm_in = x[:, t] @ upward_W.T + upward_b + h @ lateral_W.T
        r = lstm_in.reshape(len(lstm_in), lstm_in.shape[1] // 4, 4)
        a, i, f, o = (r[:, :, k] for k in range(4))
        a = np.tanh(a)
        i, f, o = (np.tanh(v * half) * half + half for v in (i, f, o))
        c = a * i + f * c
        h = o * np.tanh(c)
        ys.append(h)
    return np.stack(ys, axis=1), h, c
