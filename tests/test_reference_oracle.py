"""The float64 reference against an independent extended-precision oracle (tests/mp_oracle.py,
mpmath at 40 digits), on cases with saturated gates, long sequences, large cell states and every
option of the published specs.

The bound, for every output y[b, t] and final state: relative error at most 1e-12 elementwise
wherever the exact value is at least 1e-3 in magnitude, absolute error at most 1e-15 below that,
and normwise relative error (max error / max |exact| of the vector) at most 1e-12.  A value near
0 that is the sum of terms near 1 (c = f c_prev + i g cancelling) has a relative error no
float64 evaluation avoids (2e-12 at |c| ~ 1e-6 in the saturating regime), hence the threshold.
Measured worst case when written: 1.3e-13 elementwise, 4.4e-16 absolute, 6e-14 normwise.

The activations are also checked one by one over their whole range (a few ulp of relative
error, also in their tails).  The sigmoid as 0.5 (1 + tanh(x / 2)), which the reference used
before, loses every digit of a small sigmoid there: that formulation is kept as the mutant that
proves the test can fail.
"""

from __future__ import annotations

import numpy as np
import pytest

mp = pytest.importorskip("mpmath", reason="the oracle needs mpmath (tox -e reference installs it)")

from conformance.harness.strategies import build_case  # noqa: E402
from mp_oracle import run_layer  # noqa: E402
from reference import LSTMParams, LSTMSpec, lstm_forward  # noqa: E402
import reference.activations as activations  # noqa: E402

REL, ABS, NOT_TINY = 1e-12, 1e-15, 1e-3

#: name -> (spec options, regime, steps, batch, input size, hidden size, lengths, reverse, params)
CASES = {
    "moderate, T=200": ({}, "moderate", 200, 2, 3, 4, None, False, {}),
    "saturating, T=100": ({}, "saturating", 100, 2, 3, 4, None, False, {}),
    "saturating, T=300, H=8": ({"gate_order": "cntk"}, "saturating", 300, 1, 5, 8, None, False, {}),
    "accumulating |c| ~ 100, T=150": ({"forget_bias": 1.0}, "accumulating", 150, 2, 3, 3, None, False, {}),
    "peepholes, cell_clip, gate_clip": ({"use_peepholes": True, "cell_clip": 3.0, "gate_clip": 2.0},
                                        "saturating", 50, 2, 3, 4, None, False, {}),
    "projection with bias, proj_clip": ({"proj_size": 2, "proj_clip": 0.4}, "saturating", 60, 2, 3, 4, None, False,
                                        {"projection_bias": True}),
    "hard sigmoids": ({"recurrent_activation": "hard_sigmoid"}, "saturating", 60, 2, 3, 4, None, False, {}),
    "keras 2, relu": ({"recurrent_activation": "hard_sigmoid_keras2", "activation": "relu"}, "moderate", 60, 2, 3,
                      4, None, False, {}),
    "cifg, peepholes": ({"coupled_gates": "input_from_forget", "use_peepholes": True}, "saturating", 80, 2, 3, 4,
                        None, False, {}),
    "input_forget": ({"coupled_gates": "forget_from_input"}, "accumulating", 80, 2, 3, 4, None, False, {}),
    "layer norm, peepholes, cifg, projection": (
        {"layer_norm": True, "use_peepholes": True, "coupled_gates": "input_from_forget", "proj_size": 3},
        "saturating", 60, 2, 3, 5, None, False, {"layer_norm": True, "projection_bias": True}),
    "layer norm, epsilon": ({"layer_norm": True, "layer_norm_epsilon": 0.01}, "moderate", 40, 2, 3, 4, None, False,
                            {"layer_norm": True}),
    "onnx f, g, h and activation_clip": (
        {"recurrent_activation": "softsign", "activation": "elu(alpha=0.5)", "cell_activation": "softplus",
         "activation_clip": 3.0}, "saturating", 60, 2, 3, 4, None, False, {}),
    "onnx scaled_tanh, leaky_relu, hard_sigmoid(alpha, beta)": (
        {"recurrent_activation": "hard_sigmoid(alpha=0.3, beta=0.4)", "activation": "leaky_relu(alpha=0.1)",
         "cell_activation": "scaled_tanh(alpha=1.5, beta=0.5)"}, "saturating", 60, 2, 3, 4, None, False, {}),
    "onnx affine, thresholded_relu": ({"recurrent_activation": "affine(alpha=0.2, beta=0.5)",
                                       "activation": "thresholded_relu(alpha=0.3)", "cell_activation": "tanh"},
                                      "moderate", 40, 2, 3, 4, None, False, {}),
    "lengths, repeat, reverse": ({"length_semantics": "repeat"}, "accumulating", 60, 3, 3, 4, [60, 20, 0], True, {}),
    "lengths, zeros, saturating": ({}, "saturating", 70, 3, 3, 4, [70, 33, 1], False, {}),
}


def _case(name):
    options, regime, steps, batch, d, h, lengths, reverse, extra = CASES[name]
    spec = LSTMSpec(gate_order=options.pop("gate_order", "ifgo") if "gate_order" in options else "ifgo",
                    **{k: v for k, v in options.items() if k != "gate_order"})
    rng = np.random.default_rng(sum(map(ord, name)))
    case = build_case(rng, spec, batch, steps, d, h, regime=regime, dtype="float64", initial_state=True,
                      origin={})
    arrays = case.params.arrays()
    if extra.get("layer_norm"):
        arrays["layer_norm"] = 1.0 + 0.3 * rng.normal(size=4 * h)
    if extra.get("projection_bias"):
        arrays["projection_bias"] = rng.normal(size=spec.proj_size)
    params = LSTMParams(**arrays)
    h0, c0 = case.initial_state[0]
    return case.x, params, spec, (h0, c0), None if lengths is None else np.array(lengths), reverse


def _errors(actual, exact) -> tuple[float, float]:
    """(max relative error where |exact| >= NOT_TINY, max absolute error elsewhere)."""
    rel = tiny = 0.0
    for a, e in zip(actual, exact):
        diff = abs(mp.mpf(float(a)) - e)
        if abs(e) >= NOT_TINY:
            rel = max(rel, float(diff / abs(e)))
        else:
            tiny = max(tiny, float(diff))
    return rel, tiny


def worst_error(name):
    """(elementwise relative error where |exact| >= NOT_TINY, absolute error elsewhere, normwise
    relative error of every output and state vector)."""
    x, params, spec, state, lengths, reverse = _case(name)
    with mp.workdps(40):
        y, (h, c) = lstm_forward(x, params, spec, state, lengths=lengths, reverse=reverse)
        ys, hs, cs = run_layer(x, params, spec, state[0], state[1], lengths=lengths, reverse=reverse)
        vectors = [(y[b, t], ys[b][t]) for b in range(len(ys)) for t in range(len(ys[b]))]
        vectors += [(h[b], hs[b]) for b in range(len(hs))] + [(c[b], cs[b]) for b in range(len(cs))]
        rel = tiny = norm = 0.0
        for actual, exact in vectors:
            r, t = _errors(actual, exact)
            rel, tiny = max(rel, r), max(tiny, t)
            scale = max(abs(e) for e in exact)
            if scale:
                norm = max(norm, float(max(abs(mp.mpf(float(a)) - e) for a, e in zip(actual, exact)) / scale))
        return rel, tiny, norm


@pytest.mark.parametrize("name", list(CASES))
def test_reference_is_accurate_to_1e_12(name):
    rel, tiny, norm = worst_error(name)
    assert rel <= REL, f"{name}: relative error {rel:.3g} where |exact| >= {NOT_TINY:g}"
    assert tiny <= ABS, f"{name}: absolute error {tiny:.3g} where |exact| < {NOT_TINY:g}"
    assert norm <= REL, f"{name}: normwise relative error {norm:.3g} of an output or state vector"


# --- the activations, one by one, over their whole range --------------------------------------

GRID = np.concatenate([-np.logspace(-300, np.log10(700), 400), [0.0], np.logspace(-300, np.log10(700), 400)])
ULP_BOUND = 8 * np.finfo(np.float64).eps  # a few ulp

EXACT = {
    "sigmoid": lambda x: 1 / (1 + mp.exp(-x)),
    "tanh": mp.tanh,
    "softsign": lambda x: x / (1 + abs(x)),
    "softplus": lambda x: mp.log1p(mp.exp(x)),
    "elu(alpha=0.5)": lambda x: x if x >= 0 else mp.mpf("0.5") * mp.expm1(x),
    "scaled_tanh(alpha=1.5, beta=0.5)": lambda x: mp.mpf("1.5") * mp.tanh(mp.mpf("0.5") * x),
}


def activation_error(name, fn=None) -> float:
    """Max relative error of an activation over GRID (where the exact value is a normal float)."""
    fn = fn or activations.parse(name).apply
    actual = fn(GRID.copy())
    worst = 0.0
    with mp.workdps(40):
        for x, a in zip(GRID, actual):
            e = EXACT[name](mp.mpf(float(x)))
            if abs(e) > 1e-300:
                worst = max(worst, float(abs(mp.mpf(float(a)) - e) / abs(e)))
    return worst


@pytest.mark.parametrize("name", list(EXACT))
def test_activations_are_accurate_to_a_few_ulp_everywhere(name):
    err = activation_error(name)
    assert err <= ULP_BOUND, f"{name}: relative error {err:.3g} (bound {ULP_BOUND:.3g})"


def _sigmoid_via_tanh(x, out=None):
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def test_the_bound_fails_a_sigmoid_that_cancels():
    """The mutant: 0.5 (1 + tanh(x / 2)), the reference's earlier sigmoid, loses every digit of
    a small sigmoid (x << 0) to cancellation."""
    assert activation_error("sigmoid", _sigmoid_via_tanh) > 1e-3


def test_the_oracle_is_independent_of_a_broken_reference(monkeypatch):
    """A reference that swaps f and g is far from the oracle: the oracle does not share its code."""
    import reference.lstm as lstm_module

    original = lstm_module._work_columns

    def swapped(order, hidden):
        return original(order.translate(str.maketrans({"f": "g", "g": "f"})), hidden)

    monkeypatch.setattr(lstm_module, "_work_columns", swapped)
    rel, _, norm = worst_error("moderate, T=200")
    assert rel > 1e-3 and norm > 1e-3


# --- the backward pass against derivatives of the oracle -------------------------------------

GRADIENT_SPECS = {
    "layer norm, peepholes, cifg": dict(layer_norm=True, use_peepholes=True, coupled_gates="input_from_forget"),
    "layer norm, epsilon, linear, projection with bias": dict(layer_norm=True, layer_norm_epsilon=0.05,
                                                              activation="linear", proj_size=2),
    "input_forget, peepholes": dict(coupled_gates="forget_from_input", use_peepholes=True, forget_bias=1.0),
    "onnx f, g, h": dict(recurrent_activation="softsign", activation="scaled_tanh(alpha=1.5, beta=0.5)",
                         cell_activation="softplus"),
}


def _oracle_derivative(x, params, spec, state, name, index, dy, step=2.0 ** -20):
    """d(sum(y * dy)) / d params.name[index] from the 40-digit oracle: central differences with
    Richardson extrapolation (error O(step^4), about 1e-24 here)."""
    def loss(delta):
        arrays = params.arrays()
        a = np.array(arrays[name], dtype=np.float64)
        a[index] += delta
        arrays[name] = a
        ys, _, _ = run_layer(x, LSTMParams(**arrays), spec, state[0], state[1])
        return sum(e * mp.mpf(float(w)) for row, wr in zip(ys, dy) for v, wv in zip(row, wr) for e, w in zip(v, wv))

    coarse = (loss(step) - loss(-step)) / (2 * step)
    fine = (loss(step / 2) - loss(-step / 2)) / step
    return (4 * fine - coarse) / 3


@pytest.mark.parametrize("name", list(GRADIENT_SPECS))
def test_backward_pass_matches_the_oracle(name):
    """lstm_backward's weight gradients against derivatives of the oracle, to 1e-10 relative (float64
    finite differences of the reference itself, tests/test_backward.py, lose digits where layer norm
    normalises a few nearly equal values)."""
    from reference import lstm_backward
    from test_reference_properties import make_case

    case = make_case(seed=3, hidden=3, d=2, steps=3, batch=2, projection_bias=True, **GRADIENT_SPECS[name])
    rng = np.random.default_rng(7)
    out = case.spec.proj_size or case.params.hidden_size
    dy = rng.normal(size=(case.x.shape[0], case.x.shape[1], out))
    grads = lstm_backward(case.x, case.params, case.spec, case.state, dy=dy)
    worst = 0.0
    with mp.workdps(50):
        for field in case.params.arrays():
            for index in np.ndindex(np.shape(getattr(case.params, field))):
                exact = _oracle_derivative(case.x, case.params, case.spec, case.state, field, index, dy)
                err = abs(mp.mpf(float(grads[field][index])) - exact) / max(abs(exact), mp.mpf("1e-8"))
                worst = max(worst, float(err))
    assert worst <= 1e-10, f"{name}: relative error {worst:.3g} of a weight gradient"
