"""Hypothesis properties of the reference LSTM and of its layout conversions.

Each property is a plain ``check_*`` function that takes the implementation under test as an
argument and raises AssertionError when the property does not hold.  Each is run twice: on the
real implementation under Hypothesis (it must hold), and on a deliberately broken variant kept
here (it must fail), so that a property which cannot catch anything is itself caught.

Drawn weights are never symmetric across gates (a permutation bug must change the output), and
the ranges include saturated gates and cell states well above 3 in magnitude
(``test_strategy_reaches_saturation_and_large_cells``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, find, given, settings
from hypothesis import strategies as st

from reference import ALL_GATE_ORDERS, LSTMParams, LSTMSpec, lstm_forward, lstm_step
from adapters.packings import PACKINGS
from reference import layout
from reference.gates import gate_block, permute_gates

# ---------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    x: np.ndarray
    params: LSTMParams
    spec: LSTMSpec
    state: tuple[np.ndarray, np.ndarray] | None
    lengths: np.ndarray | None = None
    reverse: bool = False
    time_order: str = "aligned"

    @property
    def kwargs(self):
        return dict(lengths=self.lengths, reverse=self.reverse, time_order=self.time_order)


def _asymmetric(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """``a`` with its four gate blocks pairwise different (nudged in the unlikely case)."""
    blocks = np.split(a, 4, axis=axis)
    for k in range(4):
        while any(np.array_equal(blocks[k], blocks[j]) for j in range(k)):
            blocks[k] = blocks[k] + 1e-3 * (k + 1)
    return np.concatenate(blocks, axis=axis)


def make_case(seed=0, *, batch=2, steps=5, d=3, hidden=3, weight_scale=1.0, x_scale=2.0,
              c_scale=4.0, accumulate=False, lengths=None, reverse=False, time_order="aligned",
              recurrent_bias=True, bias=True, initial_state=True, projection_bias=False,
              **spec_options) -> Case:
    """A case with random arrays from ``seed``.

    ``accumulate`` drives the cell state far from 0: input and forget gates biased open and the
    candidate biased to +-1, so |c| grows by about 1 per step.
    """
    spec = LSTMSpec(**spec_options)
    rng = np.random.default_rng(seed)
    out = spec.proj_size or hidden
    order = spec.gate_order
    kernel = _asymmetric(rng.normal(size=(d, 4 * hidden)) * weight_scale)
    recurrent = _asymmetric(rng.normal(size=(out, 4 * hidden)) * weight_scale / np.sqrt(out))
    b = rng.normal(size=4 * hidden)
    if accumulate:
        blocks = layout.split_gates(b, order)
        blocks["i"] += 6.0
        blocks["f"] += 6.0
        blocks["g"] = np.sign(blocks["g"] + 0.5) * 8.0 + blocks["g"]
        b = layout.join_gates(blocks, order)
    params = LSTMParams(
        kernel=kernel,
        recurrent_kernel=recurrent,
        bias=_asymmetric(b) if bias else None,
        recurrent_bias=_asymmetric(rng.normal(size=4 * hidden) * 0.5) if recurrent_bias else None,
        peephole=rng.normal(size=(3, hidden)) if spec.use_peepholes else None,
        projection=rng.normal(size=(hidden, spec.proj_size)) if spec.proj_size else None,
        layer_norm=_asymmetric(1.0 + 0.5 * rng.normal(size=4 * hidden)) if spec.layer_norm else None,
        projection_bias=rng.normal(size=spec.proj_size) if projection_bias and spec.proj_size else None,
    )
    x = rng.normal(size=(batch, steps, d)) * x_scale
    state = None
    if initial_state:
        state = (rng.normal(size=(batch, out)), rng.normal(size=(batch, hidden)) * c_scale)
    if lengths is not None:
        lengths = np.asarray(lengths, dtype=np.int64)
    return Case(x, params, spec, state, lengths, reverse, time_order)


@st.composite
def spec_options(draw):
    proj = draw(st.sampled_from([None, None, 1, 2]))
    return dict(
        gate_order=draw(st.sampled_from(ALL_GATE_ORDERS)),
        forget_bias=draw(st.sampled_from([0.0, 1.0, -0.5, 2.5])),
        recurrent_activation=draw(st.sampled_from(["sigmoid", "hard_sigmoid", "hard_sigmoid_keras2"])),
        activation=draw(st.sampled_from(["tanh", "linear", "relu"])),
        use_peepholes=draw(st.booleans()),
        cell_clip=draw(st.sampled_from([None, None, 1.0, 3.0, 10.0])),
        gate_clip=draw(st.sampled_from([None, None, 1.5, 5.0])),
        proj_size=proj,
        proj_clip=draw(st.sampled_from([None, 0.5])) if proj else None,
        length_semantics=draw(st.sampled_from(["zeros", "repeat"])),
        coupled_gates=draw(st.sampled_from([None, None, "input_from_forget", "forget_from_input"])),
        layer_norm=draw(st.booleans()),
        # With epsilon 0 a normalisation over two or three units is nearly a sign function where
        # their values meet: finite differences mean nothing there (the fixed cases cover 0).
        layer_norm_epsilon=draw(st.sampled_from([0.05, 0.5])),
        cell_activation=draw(st.sampled_from([None, None, "softsign", "scaled_tanh(alpha=1.5, beta=0.5)"])),
    )


@st.composite
def cases(draw, *, with_lengths=None, directions=True, min_steps=1):
    batch = draw(st.integers(1, 3))
    steps = draw(st.integers(min_steps, 6))
    lengths = None
    if with_lengths is None:
        with_lengths = draw(st.booleans())
    if with_lengths:
        lengths = draw(st.lists(st.integers(0, steps), min_size=batch, max_size=batch))
    reverse = draw(st.booleans()) if directions else False
    return make_case(
        draw(st.integers(0, 2**32 - 1)),
        batch=batch,
        steps=steps,
        d=draw(st.integers(1, 3)),
        hidden=draw(st.integers(2, 3)),
        weight_scale=draw(st.sampled_from([0.3, 1.0, 3.0])),
        x_scale=draw(st.sampled_from([0.5, 2.0, 10.0])),
        c_scale=draw(st.sampled_from([0.5, 5.0])),
        accumulate=draw(st.booleans()),
        lengths=lengths,
        reverse=reverse,
        time_order=draw(st.sampled_from(["aligned", "processed"])) if reverse else "aligned",
        recurrent_bias=draw(st.booleans()),
        initial_state=draw(st.booleans()),
        **draw(spec_options()),
    )


def _run(forward, case: Case, **overrides):
    kwargs = dict(case.kwargs, **overrides)
    x = kwargs.pop("x", case.x)
    params = kwargs.pop("params", case.params)
    spec = kwargs.pop("spec", case.spec)
    state = kwargs.pop("state", case.state)
    return forward(x, params, spec, state, **kwargs)


def _same(a, b, exact=True, msg=""):
    if exact:
        np.testing.assert_array_equal(a, b, err_msg=msg)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, err_msg=msg)


def _valid_mask(lengths, batch, steps):
    if lengths is None:
        return np.ones((batch, steps), bool)
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


# ---------------------------------------------------------------------------------------------
# Properties of the forward pass


def check_split(forward, case: Case, t: int):
    """Running x[:, :t], then x[:, t:] from the returned state, equals running x whole
    (outputs at valid steps, padded outputs under "zeros", and the final state)."""
    batch, steps, _ = case.x.shape
    y, (h, c) = _run(forward, case)
    lengths = case.lengths
    first = None if lengths is None else np.minimum(lengths, t)
    second = None if lengths is None else np.clip(lengths - t, 0, steps - t)
    y1, s1 = _run(forward, case, x=case.x[:, :t], lengths=first)
    y2, (h2, c2) = _run(forward, case, x=case.x[:, t:], state=s1, lengths=second)
    joined = np.concatenate([y1, y2], axis=1)
    mask = _valid_mask(lengths, batch, steps)
    if case.spec.length_semantics == "zeros":
        mask[:] = True
    _same(joined[mask], y[mask], exact=False, msg="outputs")
    _same(h2, h, exact=False, msg="final h")
    _same(c2, c, exact=False, msg="final c")


def check_step_loop(step, forward, case: Case):
    """A loop of single steps, feeding the state back, equals the sequence forward."""
    y, (h, c) = _run(forward, case, lengths=None, reverse=False, time_order="aligned")
    batch, steps, _ = case.x.shape
    out = case.spec.proj_size or case.params.hidden_size
    state = case.state or (np.zeros((batch, out)), np.zeros((batch, case.params.hidden_size)))
    outputs = []
    for t in range(steps):
        state = step(case.x[:, t], state, case.params, case.spec)
        outputs.append(state[0])
    _same(np.stack(outputs, axis=1), y, exact=False, msg="outputs")
    _same(state[0], h, exact=False, msg="final h")
    _same(state[1], c, exact=False, msg="final c")


def check_gate_order_permutation(permute, forward, case: Case):
    """Re-packing every block for any of the 24 gate orders, and saying so in the spec, leaves
    the outputs bit for bit unchanged."""
    y, (h, c) = _run(forward, case)
    for order in ALL_GATE_ORDERS:
        params = permute(case.params, case.spec.gate_order, order)
        y2, (h2, c2) = _run(forward, case, params=params, spec=case.spec.replace(gate_order=order))
        _same(y2, y, msg=f"outputs with gate order {order}")
        _same(h2, h, msg=f"final h with gate order {order}")
        _same(c2, c, msg=f"final c with gate order {order}")


def check_forget_bias_fold(fold, forward, case: Case, k: float):
    """forget_bias=k equals adding k to the forget block of the bias (TF -> Keras/PyTorch)."""
    spec = case.spec
    y, (h, c) = _run(forward, case, spec=spec.replace(forget_bias=k))
    bias = case.params.bias if case.params.bias is not None else np.zeros(4 * case.params.hidden_size)
    arrays = case.params.arrays()
    arrays["bias"] = fold(bias, k, spec.gate_order)
    y2, (h2, c2) = _run(forward, case, params=LSTMParams(**arrays), spec=spec.replace(forget_bias=0.0))
    _same(y2, y, exact=False, msg="outputs")
    _same(h2, h, exact=False)
    _same(c2, c, exact=False)


def check_full_lengths(forward, case: Case):
    """lengths = T for every sequence is the same as no lengths, bit for bit."""
    batch, steps, _ = case.x.shape
    y, (h, c) = _run(forward, case, lengths=None)
    y2, (h2, c2) = _run(forward, case, lengths=np.full(batch, steps))
    _same(y2, y, msg="outputs")
    _same(h2, h)
    _same(c2, c)


def check_reverse_of_reverse(forward, case: Case):
    """Reversing each sequence within its length and running in reverse equals running forward,
    with the outputs flipped back (aligned) or as they come (processed)."""
    batch, steps, _ = case.x.shape
    lengths = np.full(batch, steps) if case.lengths is None else case.lengths
    x_rev = case.x.copy()
    for b, n in enumerate(lengths):
        x_rev[b, :n] = case.x[b, :n][::-1]
    y, (h, c) = _run(forward, case, reverse=False, time_order="aligned")
    for time_order in ("aligned", "processed"):
        yr, (hr, cr) = _run(forward, case, x=x_rev, reverse=True, time_order=time_order)
        if time_order == "processed":
            yr = yr[:, ::-1]  # back to aligned
        for b, n in enumerate(lengths):
            _same(yr[b, :n][::-1], y[b, :n], msg=f"valid outputs of sequence {b} ({time_order})")
            if case.spec.length_semantics == "zeros":
                _same(yr[b, n:], y[b, n:], msg=f"padded outputs of sequence {b}")
        _same(hr, h, msg="final h")
        _same(cr, c, msg="final c")


def check_padding_ignored(forward, case: Case, garbage: np.ndarray):
    """Whatever the data at padded steps (huge, Inf, NaN), the outputs and final state are the
    same bit for bit."""
    batch, steps, _ = case.x.shape
    y, (h, c) = _run(forward, case)
    pad = ~_valid_mask(case.lengths, batch, steps)
    x2 = case.x.copy()
    n, d = int(pad.sum()), case.x.shape[2]
    x2[pad] = garbage[: n * d].reshape(n, d)
    with np.errstate(all="ignore"):
        y2, (h2, c2) = _run(forward, case, x=x2)
    _same(y2, y, msg="outputs")
    _same(h2, h, msg="final h")
    _same(c2, c, msg="final c")


def check_no_overflow(forward, case: Case):
    """No floating-point warning (overflow, invalid, divide) for |x| up to 1e4, and finite outputs.
    Underflow to 0 (exp(-|x|) of a saturated gate) is the correctly rounded result, not an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise", under="ignore"):
            y, (h, c) = _run(forward, case)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(h)) and np.all(np.isfinite(c))


# --- the real implementation ----------------------------------------------------------------


@given(cases(with_lengths=False, directions=False, min_steps=2), st.data())
def test_split_continue_equals_whole(case, data):
    t = data.draw(st.integers(1, case.x.shape[1] - 1), label="t")
    check_split(lstm_forward, case, t)


@given(cases(with_lengths=True, directions=False, min_steps=2), st.data())
def test_split_continue_equals_whole_with_lengths(case, data):
    t = data.draw(st.integers(1, case.x.shape[1] - 1), label="t")
    check_split(lstm_forward, case, t)


@given(cases(with_lengths=False, directions=False))
def test_step_loop_equals_forward(case):
    check_step_loop(lstm_step, lstm_forward, case)


@settings(max_examples=10)
@given(cases())
def test_gate_order_permutation_leaves_outputs_unchanged(case):
    check_gate_order_permutation(layout.permute_params, lstm_forward, case)


@given(cases(), st.sampled_from([1.0, -0.75, 3.0]))
def test_forget_bias_equals_folded_bias(case, k):
    check_forget_bias_fold(layout.fold_forget_bias, lstm_forward, case, k)


@given(cases(with_lengths=False))
def test_full_lengths_equal_no_lengths(case):
    check_full_lengths(lstm_forward, case)


@given(cases())
def test_reverse_of_reverse(case):
    check_reverse_of_reverse(lstm_forward, case)


@given(cases(with_lengths=True), st.sampled_from(["huge", "nan", "inf", "random"]))
def test_padding_never_influences_outputs(case, kind):
    rng = np.random.default_rng(0)
    garbage = {"huge": rng.normal(size=case.x.size) * 1e300, "nan": np.full(case.x.size, np.nan),
               "inf": np.where(rng.random(case.x.size) < 0.5, np.inf, -np.inf),
               "random": rng.normal(size=case.x.size) * 50}[kind]
    check_padding_ignored(lstm_forward, case, garbage)


@given(cases(), st.sampled_from([1e2, 1e3, 1e4]))
def test_no_overflow_for_large_inputs(case, magnitude):
    case.x = np.clip(case.x * magnitude, -1e4, 1e4)
    check_no_overflow(lstm_forward, case)


def test_strategy_reaches_saturation_and_large_cells():
    """The drawn cases include saturated gates and |c| well above 3 (so that a bug that only
    shows there can be found), and gate blocks are never equal to each other."""
    quick = settings(max_examples=500, database=None, deadline=None)

    def max_cell(case):
        _, (_, c) = lstm_forward(case.x, case.params, case.spec, case.state)
        return np.max(np.abs(c))

    def saturated(case):
        from reference.lstm import prepare, scan
        prep = prepare(case.params, case.spec)
        trace = {}
        batch = case.x.shape[0]
        h0, c0 = case.state or (np.zeros((batch, prep.output_size)), np.zeros((batch, prep.hidden_size)))
        scan(case.x, prep, h0, c0, trace=trace)
        gates = trace["gates"][..., :3 * prep.hidden_size]
        return np.mean((gates < 1e-6) | (gates > 1 - 1e-6)) > 0.25

    assert max_cell(find(cases(), lambda c: max_cell(c) > 6.0, settings=quick)) > 6.0
    find(cases(), saturated, settings=quick)

    @given(cases())
    def blocks_differ(case):
        for name in ("kernel", "recurrent_kernel", "bias", "recurrent_bias"):
            a = getattr(case.params, name)
            if a is not None:
                blocks = [gate_block(a, case.spec.gate_order, g) for g in "ifgo"]
                assert all(not np.array_equal(blocks[i], blocks[j]) for i in range(4) for j in range(i))

    blocks_differ()


# --- deliberately broken variants: each property must catch its mutant -----------------------


def forward_dropping_c(x, params, spec, state=None, **kw):
    """Returns a final cell state of zeros: a split that does not carry c."""
    y, (h, c) = lstm_forward(x, params, spec, state, **kw)
    return y, (h, np.zeros_like(c))


def step_without_forget_bias(x_t, state, params, spec):
    return lstm_step(x_t, state, params, spec.replace(forget_bias=0.0))


def permute_swapping_two_blocks(params, from_order, to_order):
    """Packs as to_order says, except that the first two blocks of the kernel are swapped."""
    p = layout.permute_params(params, from_order, to_order)
    arrays = p.arrays()
    arrays["kernel"] = permute_gates(p.kernel, "ifgo", "figo")
    return LSTMParams(**arrays)


def fold_into_input_gate(bias, k, order):
    bias = np.array(bias, dtype=np.float64)
    gate_block(bias, order, "i")[...] += k
    return bias


def forward_lengths_off_by_one(x, params, spec, state=None, *, lengths=None, **kw):
    if lengths is not None:
        lengths = np.maximum(np.asarray(lengths) - 1, 0)
    return lstm_forward(x, params, spec, state, lengths=lengths, **kw)


def forward_reversing_padded_sequence(x, params, spec, state=None, *, lengths=None, reverse=False,
                                      time_order="aligned"):
    """Reverse by flipping the whole padded sequence, not each sequence within its length."""
    if not reverse:
        return lstm_forward(x, params, spec, state, lengths=lengths)
    y, final = lstm_forward(x[:, ::-1], params, spec, state, lengths=lengths)
    return (y[:, ::-1] if time_order == "aligned" else y), final


def forward_without_masking(x, params, spec, state=None, *, lengths=None, **kw):
    """Zeroes padded outputs but lets padded steps update the state."""
    y, final = lstm_forward(x, params, spec, state, **kw)
    if lengths is not None:
        y = y.copy()
        y[~_valid_mask(lengths, *x.shape[:2])] = 0.0
    return y, final


def naive_forward(x, params, spec, state=None, **kw):
    """A textbook forward (ifgo, sigmoid/tanh only) with 1 / (1 + exp(-z)): overflows."""
    hidden = params.hidden_size
    batch, steps, _ = x.shape
    h, c = state if state is not None else (np.zeros((batch, hidden)), np.zeros((batch, hidden)))
    w = permute_gates(params.kernel, spec.gate_order, "ifgo")
    u = permute_gates(params.recurrent_kernel, spec.gate_order, "ifgo")
    b = permute_gates(params.bias, spec.gate_order, "ifgo")
    ys = []
    for t in range(steps):
        z = x[:, t] @ w + h @ u + b
        i, f, g, o = np.split(z, 4, axis=1)
        i, f, o = (1.0 / (1.0 + np.exp(-v)) for v in (i, f + spec.forget_bias, o))
        c = f * c + i * np.tanh(g)
        h = o * np.tanh(c)
        ys.append(h)
    return np.stack(ys, axis=1), (h, c)


MUTANT_CASE = dict(seed=11, batch=3, steps=6, d=3, hidden=3, forget_bias=1.0, gate_order="tf",
                   use_peepholes=True, cell_clip=3.0, accumulate=True)


def test_split_catches_a_state_that_drops_c():
    case = make_case(**MUTANT_CASE)
    check_split(lstm_forward, case, 3)
    with pytest.raises(AssertionError):
        check_split(forward_dropping_c, case, 3)


def test_step_loop_catches_a_step_that_drops_the_forget_bias():
    case = make_case(**MUTANT_CASE)
    check_step_loop(lstm_step, lstm_forward, case)
    with pytest.raises(AssertionError):
        check_step_loop(step_without_forget_bias, lstm_forward, case)


def test_permutation_catches_a_helper_that_swaps_two_blocks():
    case = make_case(**MUTANT_CASE)
    check_gate_order_permutation(layout.permute_params, lstm_forward, case)
    with pytest.raises(AssertionError):
        check_gate_order_permutation(permute_swapping_two_blocks, lstm_forward, case)


def test_forget_bias_fold_catches_folding_into_the_wrong_block():
    case = make_case(**MUTANT_CASE)
    check_forget_bias_fold(layout.fold_forget_bias, lstm_forward, case, 1.0)
    with pytest.raises(AssertionError):
        check_forget_bias_fold(fold_into_input_gate, lstm_forward, case, 1.0)


def test_full_lengths_catches_an_off_by_one():
    case = make_case(**MUTANT_CASE)
    check_full_lengths(lstm_forward, case)
    with pytest.raises(AssertionError):
        check_full_lengths(forward_lengths_off_by_one, case)


def test_reverse_of_reverse_catches_reversing_the_padded_sequence():
    case = make_case(**MUTANT_CASE, lengths=[6, 2, 4])
    check_reverse_of_reverse(lstm_forward, case)
    with pytest.raises(AssertionError):
        check_reverse_of_reverse(forward_reversing_padded_sequence, case)


def test_padding_catches_unmasked_state_updates():
    case = make_case(**MUTANT_CASE, lengths=[6, 2, 4])
    garbage = np.random.default_rng(1).normal(size=case.x.size) * 5
    check_padding_ignored(lstm_forward, case, garbage)
    with pytest.raises(AssertionError):
        check_padding_ignored(forward_without_masking, case, garbage)


def test_no_overflow_catches_a_naive_sigmoid():
    case = make_case(seed=5, x_scale=1e4)
    case.x = np.clip(case.x, -1e4, 1e4)
    check_no_overflow(lstm_forward, case)
    with pytest.raises((FloatingPointError, RuntimeWarning)):
        check_no_overflow(naive_forward, case)


# ---------------------------------------------------------------------------------------------
# Layout round trips (exact)


@st.composite
def layout_params(draw, *, dyadic=False):
    """Params in a drawn gate order.  ``dyadic``: values k / 64 with |k| < 2**12, so that sums
    with dyadic numbers are exact in float64 (the bias folds are additions)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d, hidden = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    proj = draw(st.sampled_from([None, 1, 2]))
    out = proj or hidden
    dtype = draw(st.sampled_from([np.float64, np.float32]))

    def arr(*shape):
        a = rng.integers(-2**12, 2**12, size=shape) / 64.0 if dyadic else rng.normal(size=shape)
        return a.astype(dtype)

    params = LSTMParams(
        kernel=_asymmetric(arr(d, 4 * hidden)),
        recurrent_kernel=_asymmetric(arr(out, 4 * hidden)),
        bias=_asymmetric(arr(4 * hidden)) if draw(st.booleans()) else None,
        recurrent_bias=_asymmetric(arr(4 * hidden)) if draw(st.booleans()) else None,
        peephole=arr(3, hidden) if draw(st.booleans()) else None,
        projection=arr(hidden, proj) if proj else None,
    )
    return params, draw(st.sampled_from(ALL_GATE_ORDERS))


def _params_equal(a: LSTMParams, b: LSTMParams, *, none_is_zero=(), msg=""):
    for name in ("kernel", "recurrent_kernel", "bias", "recurrent_bias", "peephole", "projection"):
        u, v = getattr(a, name), getattr(b, name)
        if name in none_is_zero:
            u = np.zeros(4 * a.hidden_size, np.asarray(a.kernel).dtype) if u is None else u
            v = np.zeros(4 * b.hidden_size, np.asarray(b.kernel).dtype) if v is None else v
        if u is None or v is None:
            assert u is None and v is None, f"{msg}{name}: {u!r} vs {v!r}"
            continue
        np.testing.assert_array_equal(u, v, err_msg=f"{msg}{name}")
        assert np.asarray(u).dtype == np.asarray(v).dtype, f"{msg}{name}: dtype changed"


def check_permute_roundtrip(permute, params: LSTMParams, order: str, other: str):
    """Permuting there and back is exact, and gate g's block moves from its place in ``order``
    to its place in ``other``."""
    there = permute(params, order, other)
    _params_equal(permute(there, other, order), params, msg="round trip: ")
    for name in ("kernel", "recurrent_kernel", "bias", "recurrent_bias"):
        a = getattr(params, name)
        if a is not None:
            for g in "ifgo":
                np.testing.assert_array_equal(gate_block(getattr(there, name), other, g),
                                              gate_block(a, order, g), err_msg=f"{name} block {g}")


def check_fused_kernel_roundtrip(split, join, params: LSTMParams):
    """TF's fused (D + H, 4H) kernel: split(join(W, U)) == (W, U), and the fused kernel applied
    to concat([x, h]) is x @ W + h @ U."""
    fused = join(params.kernel, params.recurrent_kernel)
    w, u = split(fused, params.input_size)
    np.testing.assert_array_equal(w, params.kernel)
    np.testing.assert_array_equal(u, params.recurrent_kernel)
    np.testing.assert_array_equal(join(w, u), fused)
    rng = np.random.default_rng(0)
    x, h = rng.normal(size=(2, params.input_size)), rng.normal(size=(2, u.shape[0]))
    np.testing.assert_allclose(np.concatenate([x, h], axis=1) @ fused,
                               x @ params.kernel + h @ params.recurrent_kernel, rtol=1e-5, atol=1e-5)


def check_torch_roundtrip(to_torch, from_torch, params: LSTMParams, order: str):
    """to_torch/from_torch are inverse (missing biases become zeros), and torch's layout is
    (4H, D) rows in i, f, g, o order."""
    params = LSTMParams(**{k: v for k, v in params.arrays().items() if k != "peephole"})
    native = to_torch(params, order)
    _params_equal(from_torch(native, order), params, none_is_zero=("bias", "recurrent_bias"))
    hidden = params.hidden_size
    for k, g in enumerate("ifgo"):
        rows = slice(k * hidden, (k + 1) * hidden)
        np.testing.assert_array_equal(native["weight_ih"][rows], gate_block(params.kernel, order, g).T)
        np.testing.assert_array_equal(native["weight_hh"][rows],
                                      gate_block(params.recurrent_kernel, order, g).T)
    if params.projection is not None:
        np.testing.assert_array_equal(native["weight_hr"], params.projection.T)


def check_onnx_roundtrip(to_onnx, from_onnx, params: LSTMParams, order: str):
    """to_onnx/from_onnx are inverse, W rows are in i, o, f, c(=g) order, B = [Wb, Rb], and the
    peepholes P are ordered i, o, f (the reference stores i, f, o)."""
    params = LSTMParams(**{k: v for k, v in params.arrays().items() if k != "projection"})
    native = to_onnx(params, order)
    _params_equal(from_onnx(native, order), params, none_is_zero=("bias", "recurrent_bias"))
    hidden = params.hidden_size
    for k, g in enumerate("iofg"):
        rows = slice(k * hidden, (k + 1) * hidden)
        np.testing.assert_array_equal(native["W"][rows], gate_block(params.kernel, order, g).T)
        if params.recurrent_bias is not None:
            np.testing.assert_array_equal(native["B"][4 * hidden:][rows],
                                          gate_block(params.recurrent_bias, order, g))
    if params.peephole is not None:
        for k, g in enumerate("iof"):
            np.testing.assert_array_equal(native["P"][k * hidden:(k + 1) * hidden],
                                          params.peephole["ifo".index(g)], err_msg=f"P block {g}")


def check_split_join_gates(split_gates, join_gates, array: np.ndarray, order: str):
    blocks = split_gates(array, order)
    for g in "ifgo":
        np.testing.assert_array_equal(blocks[g], gate_block(array, order, g), err_msg=f"block {g}")
    np.testing.assert_array_equal(join_gates(blocks, order), array)


def check_forget_bias_fold_roundtrip(fold, bias: np.ndarray, k: float, order: str):
    """Folding k into the forget block and -k back out is exact (for exactly representable
    sums); only the forget block changes."""
    folded = fold(bias, k, order)
    for g in "ifgo":
        expected = gate_block(bias, order, g) + (k if g == "f" else 0.0)
        np.testing.assert_array_equal(gate_block(folded, order, g), expected, err_msg=f"block {g}")
    np.testing.assert_array_equal(fold(folded, -k, order), bias)


def check_fold_biases(fold_biases, forward, case: Case):
    """One folded bias (PyTorch b_ih + b_hh -> one bias) gives bit-identical outputs, and a
    missing bias stands for zeros."""
    p = case.params
    folded = fold_biases(p.bias, p.recurrent_bias)
    if p.bias is not None and p.recurrent_bias is not None:
        np.testing.assert_array_equal(folded, p.bias + p.recurrent_bias)
    elif p.bias is not None or p.recurrent_bias is not None:
        np.testing.assert_array_equal(folded, p.bias if p.bias is not None else p.recurrent_bias)
    else:
        assert folded is None
    arrays = p.arrays()
    arrays.pop("recurrent_bias", None)
    arrays["bias"] = folded
    y, (h, c) = _run(forward, case)
    y2, (h2, c2) = _run(forward, case, params=LSTMParams(**arrays))
    _same(y2, y)
    _same(h2, h)
    _same(c2, c)


@given(layout_params(), st.sampled_from(ALL_GATE_ORDERS))
def test_permute_params_roundtrip(pair, other):
    check_permute_roundtrip(layout.permute_params, *pair, other)


@given(layout_params())
def test_fused_kernel_roundtrip(pair):
    assume(pair[0].projection is None)
    check_fused_kernel_roundtrip(layout.split_fused_kernel, layout.join_fused_kernel, pair[0])


def to_torch(params, order):
    return PACKINGS["torch"].to_native(params, order)


def from_torch(arrays, order):
    return PACKINGS["torch"].from_native(arrays, order)


def to_onnx(params, order):
    return PACKINGS["onnx"].to_native(params, order)


def from_onnx(arrays, order):
    return PACKINGS["onnx"].from_native(arrays, order)


@given(layout_params())
def test_torch_roundtrip(pair):
    check_torch_roundtrip(to_torch, from_torch, *pair)


@given(layout_params())
def test_onnx_roundtrip(pair):
    check_onnx_roundtrip(to_onnx, from_onnx, *pair)


@given(layout_params(), st.sampled_from(["kernel", "recurrent_kernel"]))
def test_split_join_gates(pair, name):
    params, order = pair
    check_split_join_gates(layout.split_gates, layout.join_gates, getattr(params, name), order)
    check_split_join_gates(layout.split_gates, layout.join_gates, getattr(params, name).T.copy().T, order)


@given(layout_params(dyadic=True), st.sampled_from([1.0, -0.5, 3.0, 0.25]))
def test_forget_bias_fold_roundtrip(pair, k):
    params, order = pair
    assume(params.bias is not None)
    check_forget_bias_fold_roundtrip(layout.fold_forget_bias, params.bias, k, order)


@given(cases())
def test_fold_biases(case):
    check_fold_biases(layout.fold_biases, lstm_forward, case)


# --- broken layout helpers ------------------------------------------------------------------


def to_onnx_peepholes_in_reference_order(params, order):
    out = to_onnx(params, order)
    if params.peephole is not None:
        out["P"] = np.concatenate(list(params.peephole))  # i, f, o: not ONNX's i, o, f
    return out


def to_torch_without_permuting(params, order):
    out = to_torch(params, order)
    out["weight_ih"] = np.ascontiguousarray(np.asarray(params.kernel).T)
    return out


def split_gates_ignoring_order(array, order, axis=-1):
    return layout.split_gates(array, "ifgo", axis=axis)


def split_fused_kernel_off_by_one(fused, input_size):
    return layout.split_fused_kernel(fused, input_size + 1)


def fold_biases_dropping_recurrent(bias, recurrent_bias):
    return None if bias is None else np.array(bias)


LAYOUT_CASE = dict(seed=3, d=2, hidden=2)


def _layout_params():
    rng = np.random.default_rng(7)
    return LSTMParams(kernel=_asymmetric(rng.normal(size=(3, 8))),
                      recurrent_kernel=_asymmetric(rng.normal(size=(2, 8))),
                      bias=_asymmetric(rng.normal(size=8)), recurrent_bias=_asymmetric(rng.normal(size=8)),
                      peephole=rng.normal(size=(3, 2)))


def test_permute_roundtrip_catches_a_block_swap():
    params = _layout_params()
    check_permute_roundtrip(layout.permute_params, params, "tf", "onnx")
    with pytest.raises(AssertionError):
        check_permute_roundtrip(permute_swapping_two_blocks, params, "tf", "onnx")


def test_fused_kernel_roundtrip_catches_a_wrong_split():
    params = _layout_params()
    check_fused_kernel_roundtrip(layout.split_fused_kernel, layout.join_fused_kernel, params)
    with pytest.raises(AssertionError):
        check_fused_kernel_roundtrip(split_fused_kernel_off_by_one, layout.join_fused_kernel, params)


def test_torch_roundtrip_catches_a_missing_permutation():
    params = _layout_params()
    check_torch_roundtrip(to_torch, from_torch, params, "tf")
    with pytest.raises(AssertionError):
        check_torch_roundtrip(to_torch_without_permuting, from_torch, params, "tf")


def test_onnx_roundtrip_catches_peepholes_in_the_wrong_order():
    params = _layout_params()
    check_onnx_roundtrip(to_onnx, from_onnx, params, "ifgo")
    with pytest.raises(AssertionError):
        check_onnx_roundtrip(to_onnx_peepholes_in_reference_order, from_onnx, params, "ifgo")


def test_split_gates_catches_ignoring_the_order():
    params = _layout_params()
    check_split_join_gates(layout.split_gates, layout.join_gates, params.kernel, "cntk")
    with pytest.raises(AssertionError):
        check_split_join_gates(split_gates_ignoring_order, layout.join_gates, params.kernel, "cntk")


def test_forget_bias_fold_roundtrip_catches_the_wrong_block():
    bias = np.arange(8, dtype=float) / 4
    check_forget_bias_fold_roundtrip(layout.fold_forget_bias, bias, 1.0, "tf")
    with pytest.raises(AssertionError):
        check_forget_bias_fold_roundtrip(fold_into_input_gate, bias, 1.0, "tf")


def test_fold_biases_catches_dropping_the_recurrent_bias():
    case = make_case(**MUTANT_CASE)
    check_fold_biases(layout.fold_biases, lstm_forward, case)
    with pytest.raises(AssertionError):
        check_fold_biases(fold_biases_dropping_recurrent, lstm_forward, case)
