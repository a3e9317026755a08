"""A straightforward float32 NumPy LSTM as a backend: what any correct float32 implementation
computes, written the textbook way (one matmul per step, float32 arithmetic throughout, sigmoid as
1 / (1 + exp(-z))).  The tolerance table must admit it at every size the profiles reach
(tests/test_tolerance_at_size.py)."""

from __future__ import annotations

import numpy as np

from adapters.base import Adapter, Capabilities, Case, Output
from reference.layout import split_gates

F = np.float32


def _sigmoid(z):
    with np.errstate(over="ignore"):
        return F(1) / (F(1) + np.exp(-z))


GATE = {"sigmoid": _sigmoid,
        "hard_sigmoid": lambda z: np.clip(z / F(6) + F(0.5), F(0), F(1)),
        "hard_sigmoid_keras2": lambda z: np.clip(F(0.2) * z + F(0.5), F(0), F(1))}
ACT = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, F(0)), "linear": lambda z: z}


class Float32LSTMAdapter(Adapter):
    name = "float32-numpy"
    framework = "numpy"
    api = "a textbook float32 LSTM (tests/float32_lstm.py)"
    native_gate_order = "ifgo"
    capabilities = Capabilities(
        dtypes=("float32",), recurrent_activations=tuple(GATE), activations=tuple(ACT),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias"}))

    def version(self) -> str:
        return np.__version__

    def run(self, case: Case) -> Output:
        p, spec = case.params, case.spec
        kernel, recurrent = p.kernel.astype(F), p.recurrent_kernel.astype(F)
        bias = np.zeros(kernel.shape[1], F)
        for b in (p.bias, p.recurrent_bias):
            if b is not None:
                bias += b.astype(F)
        gate, act = GATE[spec.recurrent_activation], ACT[spec.activation]
        batch, hidden = case.batch, p.hidden_size
        if case.initial_state is None:
            h, c = np.zeros((batch, hidden), F), np.zeros((batch, hidden), F)
        else:
            h, c = (a.astype(F) for a in case.initial_state[0])
        ys = []
        with np.errstate(over="ignore", invalid="ignore"):
            for t in range(case.steps):
                z = split_gates(case.x[:, t].astype(F) @ kernel + h @ recurrent + bias, spec.gate_order)
                c = gate(z["f"] + F(spec.forget_bias)) * c + gate(z["i"]) * act(z["g"])
                h = gate(z["o"]) * act(c)
                ys.append(h)
        y = np.stack(ys, axis=1) if ys else np.zeros((batch, 0, hidden), F)
        return Output(y.astype(np.float64), [(h.astype(np.float64), c.astype(np.float64))])
