"""Bad input to the reference raises ValueError naming the argument, the expected and the actual
value; NaN and Inf in the data behave as the module docstring of reference/lstm.py says."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from reference import (
    LSTMParams,
    LSTMSpec,
    lstm_backward,
    lstm_bidirectional,
    lstm_forward,
    lstm_stack,
    lstm_step,
    permute_gates,
)

rng = np.random.default_rng(0)
D, H, P_ = 3, 2, 1
PARAMS = LSTMParams(rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H))
X = rng.normal(size=(2, 4, D))
STATE = (np.zeros((2, H)), np.zeros((2, H)))


def params(**changes):
    arrays = PARAMS.arrays()
    arrays.update(changes)
    return LSTMParams(**arrays)


def raises(call, argument, expected, actual):
    """``call`` raises ValueError whose message names ``argument`` and contains ``expected`` and
    ``actual`` (literal substrings)."""
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(argument + ":"), f"argument {argument!r} not first in: {message}"
    assert "expected" in message, message
    for part in (expected, actual):
        assert part in message, f"{part!r} not in: {message}"


CASES = {
    # x
    "x without time axis": (lambda: lstm_forward(X[0], PARAMS), "x", "(B, T, 3)", "(4, 3)"),
    "x with the wrong D": (lambda: lstm_forward(X[..., :2], PARAMS), "x", "(B, T, 3)", "(2, 4, 2)"),
    "x of strings": (lambda: lstm_forward(np.full((1, 1, D), "a"), PARAMS), "x", "float", "<U1"),
    "x_t of lstm_step": (lambda: lstm_step(X, STATE, PARAMS), "x_t", "(B, 3)", "(2, 4, 3)"),
    # params vs spec: D, H, P
    "kernel not 4H": (lambda: lstm_forward(X, params(kernel=np.ones((D, 7)))), "params.kernel",
                      "(D, 4H)", "(3, 7)"),
    "kernel 1-D": (lambda: lstm_forward(X, params(kernel=np.ones(8))), "params.kernel", "(D, 4H)", "(8,)"),
    "recurrent kernel with another H": (lambda: lstm_forward(X, params(recurrent_kernel=np.ones((3, 8)))),
                                        "params.recurrent_kernel", "(2, 8)", "(3, 8)"),
    "recurrent kernel not (P, 4H)": (
        lambda: lstm_forward(X, params(projection=np.ones((H, P_))), LSTMSpec(proj_size=P_)),
        "params.recurrent_kernel", "(1, 8)", "(2, 8)"),
    "bias": (lambda: lstm_forward(X, params(bias=np.ones(7))), "params.bias", "(8,)", "(7,)"),
    "recurrent bias": (lambda: lstm_forward(X, params(recurrent_bias=np.ones((2, 4)))),
                       "params.recurrent_bias", "(8,)", "(2, 4)"),
    "peephole missing": (lambda: lstm_forward(X, PARAMS, LSTMSpec(use_peepholes=True)),
                         "params.peephole", "(3, 2)", "None"),
    "peephole unexpected": (lambda: lstm_forward(X, params(peephole=np.ones((3, H)))),
                            "params.peephole", "None", "(3, 2)"),
    "peephole shape": (lambda: lstm_forward(X, params(peephole=np.ones((H, 3))), LSTMSpec(use_peepholes=True)),
                       "params.peephole", "(3, 2)", "(2, 3)"),
    "projection missing": (
        lambda: lstm_forward(X, params(recurrent_kernel=np.ones((P_, 8))), LSTMSpec(proj_size=P_)),
        "params.projection", "(2, 1)", "None"),
    "projection unexpected": (lambda: lstm_forward(X, params(projection=np.ones((H, P_)))),
                              "params.projection", "None", "(2, 1)"),
    "projection shape": (
        lambda: lstm_forward(X, params(recurrent_kernel=np.ones((P_, 8)), projection=np.ones((P_, H))),
                             LSTMSpec(proj_size=P_)),
        "params.projection", "(2, 1)", "(1, 2)"),
    "params of strings": (lambda: lstm_forward(X, params(kernel=np.full((D, 8), "w"))), "params.kernel",
                          "float", "<U1"),
    "params not LSTMParams": (lambda: lstm_forward(X, {"kernel": 1}), "params", "LSTMParams", "dict"),
    "spec not LSTMSpec": (lambda: lstm_forward(X, PARAMS, "ifgo"), "spec", "LSTMSpec", "str"),
    # state
    "h0 shape": (lambda: lstm_forward(X, PARAMS, None, (np.zeros((2, 3)), np.zeros((2, H)))),
                 "initial_state[0] (h)", "(2, 2)", "(2, 3)"),
    "c0 shape": (lambda: lstm_forward(X, PARAMS, None, (np.zeros((2, H)), np.zeros((1, H)))),
                 "initial_state[1] (c)", "(2, 2)", "(1, 2)"),
    "state of three": (lambda: lstm_forward(X, PARAMS, None, (1, 2, 3)), "initial_state", "pair", "tuple"),
    "h0 with projection": (
        lambda: lstm_forward(X, params(recurrent_kernel=np.ones((P_, 8)), projection=np.ones((H, P_))),
                             LSTMSpec(proj_size=P_), (np.zeros((2, H)), np.zeros((2, H)))),
        "initial_state[0] (h)", "(2, 1)", "(2, 2)"),
    "lstm_step state None": (lambda: lstm_step(X[:, 0], None, PARAMS), "state", "(h, c)", "None"),
    # gate orders
    "gate order with a repeat": (lambda: LSTMSpec(gate_order="iffo"), "gate_order", "permutation", "'iffo'"),
    "gate order of other letters": (lambda: LSTMSpec(gate_order="abcd"), "gate_order", "permutation", "'abcd'"),
    "gate order too short": (lambda: LSTMSpec(gate_order="ifg"), "gate_order", "permutation", "'ifg'"),
    "gate order not a string": (lambda: LSTMSpec(gate_order=123), "gate_order", "permutation", "123"),
    "permute_gates to a non-order": (lambda: permute_gates(np.ones(8), "ifgo", "ifgg"), "to_order",
                                     "permutation", "'ifgg'"),
    "permute_gates non-4H axis": (lambda: permute_gates(np.ones(7), "ifgo", "tf"), "array", "4H", "7"),
    # activations
    "unknown recurrent activation": (lambda: LSTMSpec(recurrent_activation="swish"),
                                     "recurrent_activation", "'sigmoid'", "'swish'"),
    "activation parameter it does not take": (lambda: LSTMSpec(activation="elu(beta=2)"), "activation",
                                              "['alpha']", "'beta'"),
    "activation parameter not a number": (lambda: LSTMSpec(activation="leaky_relu(alpha=x)"), "activation",
                                          "alpha expected a number", "'x'"),
    "coupled gates": (lambda: LSTMSpec(coupled_gates="cifg"), "coupled_gates", "input_from_forget", "'cifg'"),
    "gate_clip and activation_clip": (lambda: LSTMSpec(gate_clip=1.0, activation_clip=2.0), "activation_clip",
                                      "None when gate_clip is set", "2.0"),
    "backward activations not three": (lambda: LSTMSpec(backward_activations=("sigmoid", "tanh")),
                                       "backward_activations", "three names", "('sigmoid', 'tanh')"),
    "layer norm coefficients missing": (lambda: lstm_forward(np.ones((1, 1, 2)), LSTMParams(
        kernel=np.ones((2, 8)), recurrent_kernel=np.ones((2, 8))), LSTMSpec(layer_norm=True)),
        "params.layer_norm", "(8,)", "None"),
    "projection bias without projection": (lambda: lstm_forward(np.ones((1, 1, 2)), LSTMParams(
        kernel=np.ones((2, 8)), recurrent_kernel=np.ones((2, 8)), projection_bias=np.ones(2)), LSTMSpec()),
        "params.projection_bias", "None because spec.proj_size is None", "(2,)"),
    "unknown activation": (lambda: LSTMSpec(activation="gelu"), "activation", "'tanh'", "'gelu'"),
    # non-finite and out-of-range options
    "forget_bias NaN": (lambda: LSTMSpec(forget_bias=float("nan")), "forget_bias", "finite", "nan"),
    "forget_bias Inf": (lambda: LSTMSpec(forget_bias=float("-inf")), "forget_bias", "finite", "-inf"),
    "forget_bias text": (lambda: LSTMSpec(forget_bias="one"), "forget_bias", "finite", "'one'"),
    "cell_clip Inf": (lambda: LSTMSpec(cell_clip=float("inf")), "cell_clip", "finite", "inf"),
    "cell_clip negative": (lambda: LSTMSpec(cell_clip=-1.0), "cell_clip", "positive", "-1.0"),
    "gate_clip zero": (lambda: LSTMSpec(gate_clip=0.0), "gate_clip", "positive", "0.0"),
    "gate_clip NaN": (lambda: LSTMSpec(gate_clip=float("nan")), "gate_clip", "finite", "nan"),
    "proj_clip NaN": (lambda: LSTMSpec(proj_size=2, proj_clip=float("nan")), "proj_clip", "finite", "nan"),
    "proj_clip without projection": (lambda: LSTMSpec(proj_clip=1.0), "proj_clip", "None", "1.0"),
    "proj_size negative": (lambda: LSTMSpec(proj_size=-1), "proj_size", "non-negative int", "-1"),
    "proj_size fractional": (lambda: LSTMSpec(proj_size=1.5), "proj_size", "non-negative int", "1.5"),
    "proj_size bool": (lambda: LSTMSpec(proj_size=True), "proj_size", "non-negative int", "True"),
    "use_peepholes text": (lambda: LSTMSpec(use_peepholes="yes"), "use_peepholes", "bool", "'yes'"),
    "length_semantics": (lambda: LSTMSpec(length_semantics="mask"), "length_semantics", "'zeros'", "'mask'"),
    "time_order": (lambda: lstm_forward(X, PARAMS, time_order="backward"), "time_order", "'aligned'",
                   "'backward'"),
    # lengths
    "lengths shape": (lambda: lstm_forward(X, PARAMS, lengths=[1, 2, 3]), "lengths", "(2,)", "(3,)"),
    "lengths negative": (lambda: lstm_forward(X, PARAMS, lengths=[-1, 2]), "lengths", "[0, 4]", "min -1"),
    "lengths above T": (lambda: lstm_forward(X, PARAMS, lengths=[5, 2]), "lengths", "[0, 4]", "max 5"),
    "lengths fractional": (lambda: lstm_forward(X, PARAMS, lengths=[1.5, 2]), "lengths", "integers", "1.5"),
    "lengths NaN": (lambda: lstm_forward(X, PARAMS, lengths=[np.nan, 2]), "lengths", "integers", "nan"),
    "lengths text": (lambda: lstm_forward(X, PARAMS, lengths=["a", "b"]), "lengths", "integers", "<U1"),
    # backward cotangents
    "dy shape": (lambda: lstm_backward(X, PARAMS, None, dy=np.zeros((2, 4, 3))), "dy", "(2, 4, 2)",
                 "(2, 4, 3)"),
    "dh_T shape": (lambda: lstm_backward(X, PARAMS, None, dy=np.zeros((2, 4, H)), dh_T=np.zeros((2, 3))),
                   "dh_T", "(2, 2)", "(2, 3)"),
    "dc_T shape": (lambda: lstm_backward(X, PARAMS, None, dy=np.zeros((2, 4, H)), dc_T=np.zeros((3, H))),
                   "dc_T", "(2, 2)", "(3, 2)"),
    "backward lengths": (lambda: lstm_backward(X, PARAMS, None, dy=np.zeros((2, 4, H)), lengths=[9, 1]),
                         "lengths", "[0, 4]", "max 9"),
    "backward time_order": (lambda: lstm_backward(X, PARAMS, None, dy=np.zeros((2, 4, H)), time_order="x"),
                            "time_order", "'processed'", "'x'"),
    # composition
    "stack of a mix": (lambda: lstm_stack(X, [PARAMS, (PARAMS, PARAMS)]), "layers", "all layers", "a mix"),
    "stack of nothing": (lambda: lstm_stack(X, []), "layers", "non-empty", "[]"),
    "stack state count": (lambda: lstm_stack(X, [PARAMS], None, [None, None]), "initial_states", "1 (h0, c0)",
                          "got 2"),
    "bidirectional state count": (lambda: lstm_bidirectional(X, PARAMS, PARAMS, None, [None]),
                                  "initial_state", "2 (h0, c0)", "got 1"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_raises_value_error_naming_the_argument(name):
    call, argument, expected, actual = CASES[name]
    raises(call, argument, expected, actual)


# ---------------------------------------------------------------------------------------------
# NaN and Inf propagation, as documented in reference/lstm.py.

def _quiet(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(all="warn"):
            out = call()
    return out, [str(w.message) for w in caught]


@pytest.mark.parametrize("spec", [LSTMSpec(), LSTMSpec(recurrent_activation="hard_sigmoid", activation="relu"),
                                  LSTMSpec(activation="linear", gate_clip=1.0, cell_clip=2.0)],
                         ids=["sigmoid-tanh", "hard-relu", "linear-clips"])
def test_nan_in_x_makes_that_row_nan_from_that_step_and_leaves_other_rows_alone(spec):
    x = rng.normal(size=(3, 5, D))
    y, (h, c) = lstm_forward(x, PARAMS, spec)
    x_bad = x.copy()
    x_bad[1, 2, 0] = np.nan
    (y2, (h2, c2)), messages = _quiet(lambda: lstm_forward(x_bad, PARAMS, spec))
    assert messages == []  # NaN propagates quietly
    assert np.all(np.isnan(y2[1, 2:])) and np.all(np.isnan(h2[1])) and np.all(np.isnan(c2[1]))
    np.testing.assert_array_equal(y2[1, :2], y[1, :2])
    for row in (0, 2):
        np.testing.assert_array_equal(y2[row], y[row])
        np.testing.assert_array_equal(c2[row], c[row])


def test_inf_in_x_saturates_the_gates_with_tanh():
    x = rng.normal(size=(2, 4, D))
    x[0, 1, 0] = np.inf
    x[1, 2, 2] = -np.inf
    assert np.all(PARAMS.kernel != 0)
    (y, (h, c)), messages = _quiet(lambda: lstm_forward(x, PARAMS))
    assert messages == []
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(c))
    # At the infinite step the gates are exactly 0 or 1 and g is exactly +-1, so
    # c_t = f * c_{t-1} + i * g is one of c_{t-1} + g, c_{t-1}, g or 0.
    _, (_, c_before) = lstm_forward(x[:, :1], PARAMS)
    _, (_, c_at) = lstm_forward(x[:, :2], PARAMS)
    candidates = [c_before[0] + 1, c_before[0] - 1, c_before[0], np.ones(H), -np.ones(H), np.zeros(H)]
    for unit in range(H):
        assert any(c_at[0, unit] == cand[unit] for cand in candidates)


def test_inf_with_gate_clip_stays_finite_even_with_linear_activation():
    x = rng.normal(size=(1, 3, D))
    x[0, 1, 1] = np.inf
    (y, (h, c)), messages = _quiet(lambda: lstm_forward(x, PARAMS, LSTMSpec(activation="linear", gate_clip=2.0)))
    assert np.all(np.isfinite(y)) and messages == []
    (y2, _), _ = _quiet(lambda: lstm_forward(x, PARAMS, LSTMSpec(activation="linear")))
    assert not np.all(np.isfinite(y2[0, 1:]))  # without the clip, g = +-inf reaches c and h


def test_inf_times_zero_weight_gives_nan_in_that_unit_then_the_whole_row():
    kernel = PARAMS.kernel.copy()
    kernel[0, 1] = 0.0  # i gate (ifgo), unit 1, fed by input 0
    p = params(kernel=kernel)
    x = rng.normal(size=(2, 4, D))
    x[0, 1, 0] = np.inf
    (y, (h, c)), messages = _quiet(lambda: lstm_forward(x, p))
    assert any("invalid value" in m for m in messages)
    assert np.isfinite(y[0, 1, 0]) and np.isnan(y[0, 1, 1])  # only unit 1 at that step
    assert np.all(np.isnan(y[0, 2:]))  # every unit from the next step on
    assert np.all(np.isfinite(y[1]))  # the other row is untouched


def test_plus_and_minus_inf_in_one_preactivation_give_nan():
    x = rng.normal(size=(1, 3, D))
    x[0, 1, 0], x[0, 1, 1] = np.inf, -np.inf
    (y, _), messages = _quiet(lambda: lstm_forward(x, PARAMS))
    assert any("invalid value" in m for m in messages)
    assert np.all(np.isnan(y[0, 2:])) and np.all(np.isfinite(y[0, 0]))


@pytest.mark.parametrize("semantics", ["zeros", "repeat"])
@pytest.mark.parametrize("reverse", [False, True])
def test_nan_and_inf_at_padded_steps_never_reach_outputs(semantics, reverse):
    x = rng.normal(size=(2, 5, D))
    spec = LSTMSpec(length_semantics=semantics)
    y, (h, c) = lstm_forward(x, PARAMS, spec, lengths=[2, 5], reverse=reverse)
    x[0, 2] = np.nan
    x[0, 3] = np.inf
    x[0, 4, 0], x[0, 4, 1] = np.inf, -np.inf
    (y2, (h2, c2)), _ = _quiet(lambda: lstm_forward(x, PARAMS, spec, lengths=[2, 5], reverse=reverse))
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(h2, h)
    np.testing.assert_array_equal(c2, c)
