"""Find which packing convention a native LSTM callable implements.

    python -m conformance detect MODULE:ATTR [--hidden-size H] [--input-size D] [--dtype float32]
                                             [--seed S] [--json]

The callable follows the native-function contract (``adapters.callable_adapter``).  Detection does not
brute-force conventions through the callable: the callable's outputs for given inputs do not
depend on the hypothesis, so it is called only on a handful of *probes* per weight layout (at
most 4 layouts x 5 probes = 20 calls) and every hypothesis is scored against the reference on
those same outputs.

Probes (all weights asymmetric across gate blocks, all values exact in the dtype under test):

one_step    T=1, B=48, a given state with 0.5 <= |c0| <= 4, every pre-activation swept over
            about [-16, 16] (input 0 is a ramp over the batch with weight ~1 into every element).
            c_T = f * c0 + i * g exposes the forget gate directly, so for every hypothesis (gate
            order, recurrent activation) the run-time forget bias is solved in closed form:
            f_hat = (c_T - ract(z_i) tanh(z_g)) / c0 and forget_bias = ract^-1(f_hat) - z_f on
            the elements where 0.02 < f_hat < 0.98 (inside the linear part of a hard sigmoid);
            the estimate is their median, its uncertainty their spread (1.4826 x MAD).  It is
            then rounded to the fewest decimals within 4 x the uncertainty that still verify
            (1.0000002 -> 1).  Forget biases in about [-12, 12] are found.
first_step  T=1 from a zero state: c_T = i * g shows i, g and o without the forget gate.
zero_state  T=4 from a zero state (what a framework that ignores h0/c0 computes).
sequence    T=8 from a given state: h is carried through the recurrent kernel.
long        T=24 with every gate open and the candidate of one sign: |c| grows past 20, well
            beyond TF LSTMBlockCell's default cell_clip of 3.

Packings: every gate order is tried gate-major (the 4H axis is four blocks of H) and unit-major
(the 4H axis is (H, 4), each unit's four gates side by side, as Chainer's F.lstm splits it), so an
interleaved LSTM is identified as such.  With ``--hidden-size 1`` the two packings are the same
array: the verdict is then ambiguous and says so (probe with H >= 2; the default is 2).

Kernel layouts ("D,4H" / "4H,D") and recurrent layouts ("H,4H" / "4H,H") are told apart by the
shapes the callable accepts (D != H and D != 4H by default) and then by values: a layout on which
the callable raises or returns wrong shapes is a "no".  Every hypothesis (layout pair x 24 gate
orders x 2 packings x 3 recurrent activations x 3 cell activations (tanh, relu, linear), each with its
estimated forget bias) is ranked on the one-step
probe; the best ones are scored on every probe.  The score of a hypothesis is the largest
|actual - expected| / (atol + rtol |expected|) over all outputs, with the tolerance of the dtype
under test from ``conformance.tolerances``: a score <= 1 fits.

Verdict: exactly one fit -> exit 0; none -> exit 1 (with the closest hypothesis and the first time
step where it leaves the tolerance, and a hint when h_T and c_T come back exchanged); the callable
cannot be run at all (it raises, or returns what the contract does not allow, on every probe) ->
exit 3; several -> exit 2 (with what the evidence could not separate:
a callable that accepts both layouts and transposes by itself, a forget gate that never mattered
because the callable refused every probe with a state, ...).

Precision: probes pass arrays of ``--dtype`` (default float32), and the tolerance is that dtype's
row of the table, so a float32 implementation is detected; a float64 one passes the float32
tolerance with room to spare (``--dtype float64`` holds it to float64).  The forget bias
estimate is good to about 1e-6 in float32 (1e-12 in float64) before snapping.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from adapters.callable_adapter import (DTYPES, KERNEL_LAYOUTS, RECURRENT_LAYOUTS, Convention, NativeError,
                                      call_native, format_number)
from reference import ALL_GATE_ORDERS, LSTMParams, lstm_forward
from reference.activations import ACTIVATIONS, RECURRENT_ACTIVATIONS
from reference.layout import GATE_PACKINGS, orient, permute_params, split_gates

from ..harness.compare import compare
from ..harness.tolerances import Tolerance, tolerance
from .native import answer, load_callable, presets_with_order

LAYOUT_PAIRS = tuple((k, r) for k in KERNEL_LAYOUTS for r in RECURRENT_LAYOUTS)
#: How many of the best hypotheses on the one-step probe are scored on every probe.
SHORTLIST = 8

EXIT_UNIQUE, EXIT_NONE, EXIT_AMBIGUOUS, EXIT_ERROR = 0, 1, 2, 3


@dataclass
class Probe:
    name: str
    description: str
    x: np.ndarray  # (B, T, D)
    h0: np.ndarray
    c0: np.ndarray
    kernel: np.ndarray  # (D, 4H), canonical layout
    recurrent: np.ndarray  # (H, 4H)
    bias: np.ndarray  # (4H,)

    def shape_text(self) -> str:
        b, t, _ = self.x.shape
        return f"B={b}, T={t}"


@dataclass
class Score:
    ratio: float  # max |a - e| / (atol + rtol |e|); <= 1 fits
    max_abs: float
    first_bad_step: int | None
    problem: str | None
    steps: int


@dataclass
class Hypothesis:
    convention: Convention
    forget_bias_estimate: float | None
    scores: dict[str, Score] = field(default_factory=dict)
    spread: float | None = None  # uncertainty of the forget bias estimate

    @property
    def ratio(self) -> float:
        return max((s.ratio for s in self.scores.values()), default=math.inf)

    @property
    def max_abs(self) -> float:
        return max((s.max_abs for s in self.scores.values()), default=math.inf)

    def worst_probe(self) -> str | None:
        if not self.scores:
            return None
        return max(self.scores, key=lambda k: self.scores[k].ratio)

    def summary(self) -> dict:
        worst = self.worst_probe()
        return {**self.convention.to_dict(), "max_abs_error": _finite_or_none(self.max_abs),
                "score": _finite_or_none(self.ratio),
                "forget_bias_estimate": self.forget_bias_estimate,
                "worst_probe": worst,
                "first_bad_step": None if worst is None else self.scores[worst].first_bad_step}


@dataclass
class Detection:
    status: str  # "unique", "none", "ambiguous", or "error": the callable could not be run at all
    best: Hypothesis | None
    runner_up: Hypothesis | None
    fits: list[Hypothesis]
    reason: str
    dtype: str
    tolerance: Tolerance
    probes: list[Probe]
    refused_probes: dict[str, str]
    rejected_layouts: dict[str, str]
    calls: int
    seconds: float
    input_size: int
    hidden_size: int
    seed: int
    forget_bias_determined: bool = True
    packing_determined: bool = True  # False with H = 1: gate-major and unit-major are the same

    @property
    def exit_code(self) -> int:
        return {"unique": EXIT_UNIQUE, "none": EXIT_NONE, "ambiguous": EXIT_AMBIGUOUS, "error": EXIT_ERROR}[self.status]

    def to_dict(self) -> dict:
        conv = self.best.convention if self.best else None
        return {
            "status": self.status,
            "unique": self.status == "unique",
            "gate_order": conv.gate_order if conv else None,
            "kernel_layout": conv.kernel_layout if conv else None,
            "recurrent_layout": conv.recurrent_layout if conv else None,
            "forget_bias": (conv.forget_bias if conv and self.forget_bias_determined else None),
            "recurrent_activation": conv.recurrent_activation if conv else None,
            "activation": conv.activation if conv else None,
            "max_abs_error": _finite_or_none(self.best.max_abs) if self.best else None,
            "score": _finite_or_none(self.best.ratio) if self.best else None,
            "forget_bias_estimate": self.best.forget_bias_estimate if self.best else None,
            "forget_bias_uncertainty": self.best.spread if self.best else None,
            "forget_bias_determined": self.forget_bias_determined,
            "packing": conv.packing if conv and self.packing_determined else None,
            "packing_determined": self.packing_determined,
            "presets": presets_with_order(conv.gate_order, conv.packing) if conv else [],
            "runner_up": self.runner_up.summary() if self.runner_up else None,
            "fits": [h.summary() for h in self.fits],
            "reason": self.reason,
            "dtype": self.dtype,
            "tolerance": self.tolerance.to_dict(),
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "seed": self.seed,
            "probes": {p.name: p.description for p in self.probes},
            "refused_probes": self.refused_probes,
            "rejected_layouts": self.rejected_layouts,
            "calls": self.calls,
            "seconds": round(self.seconds, 3),
            "check_command_options": self.best.convention.cli_options() if self.best else None,
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _round(array: np.ndarray, dtype: str) -> np.ndarray:
    return np.asarray(array, np.float64).astype(dtype).astype(np.float64)


# ------------------------------------------------------------------------------------------
# Probes

_BLOCK_SCALE = np.array([1.0, 1.3, 0.8, 1.15])  # asymmetric across the four blocks
_BLOCK_OFFSET = np.array([0.3, -0.4, 0.5, -0.2])


def make_probes(input_size: int, hidden_size: int, dtype: str, seed: int) -> list[Probe]:
    """The five probes (see the module docstring), values exact in ``dtype``."""
    d, h = input_size, hidden_size
    rng = np.random.default_rng(seed)
    scale = np.repeat(_BLOCK_SCALE, h)

    def weights(gain_in, gain_rec, bias):
        kernel = rng.normal(size=(d, 4 * h)) * scale * gain_in / np.sqrt(d)
        recurrent = rng.normal(size=(h, 4 * h)) * scale * gain_rec / np.sqrt(h)
        return _round(kernel, dtype), _round(recurrent, dtype), _round(bias, dtype)

    def state(batch, c_scale):
        h0 = rng.uniform(-1.0, 1.0, size=(batch, h))
        c0 = rng.choice([-1.0, 1.0], size=(batch, h)) * rng.uniform(*c_scale, size=(batch, h))
        return _round(h0, dtype), _round(c0, dtype)

    probes = []
    # one_step: input 0 is a ramp over the rows and reaches every element of every block with weight
    # about 1, so each pre-activation sweeps about [-16, 16]: whatever the gate order and a forget
    # bias in about [-12, 12], some rows put the forget gate strictly inside (0, 1).  The other
    # inputs, the recurrent kernel and the bias are random and asymmetric across blocks.
    batch = 48
    k, r, b = weights(0.4, 0.5, rng.uniform(-1.0, 1.0, size=4 * h) + np.repeat(_BLOCK_OFFSET, h))
    k = _round(k + np.vstack([np.ones((1, 4 * h)), np.zeros((d - 1, 4 * h))]), dtype)
    x = rng.normal(scale=0.5, size=(batch, 1, d))
    x[:, 0, 0] = np.linspace(-16.0, 16.0, batch)[rng.permutation(batch)]
    x = _round(x, dtype)
    h0, c0 = state(batch, (0.5, 4.0))
    probes.append(Probe("one_step", f"T=1, B={batch}, given state with 0.5 <= |c0| <= 4, pre-activations "
                                    "swept over [-16, 16]: solves the forget bias", x, h0, c0, k, r, b))
    # first_step: T=1 from zeros, c_T = i * g: i, g and o without the forget gate.
    x = _round(rng.normal(scale=1.5, size=(6, 1, d)), dtype)
    zeros = np.zeros((6, h))
    probes.append(Probe("first_step", "T=1, B=6 from a zero state: i, g, o without the forget gate",
                        x, zeros, zeros.copy(), k, r, b))
    # zero_state and sequence: moderate values.
    k, r, b = weights(1.0, 1.0, rng.normal(scale=0.5, size=4 * h) + np.repeat(_BLOCK_OFFSET, h))
    x = _round(rng.normal(size=(3, 4, d)), dtype)
    zeros = np.zeros((3, h))
    probes.append(Probe("zero_state", "T=4, B=3 from a zero state", x, zeros, zeros.copy(), k, r, b))
    x = _round(rng.normal(size=(3, 8, d)), dtype)
    h0, c0 = state(3, (0.2, 3.0))
    probes.append(Probe("sequence", "T=8, B=3 from a given state", x, h0, c0, k, r, b))
    # long: every block's bias strongly positive (whatever the gate order, i, f, o are open and
    # g is positive), small weights: |c| grows about one per step.
    bias = np.repeat(np.array([3.0, 4.0, 5.0, 3.5]), h) + rng.normal(scale=0.3, size=4 * h)
    k, r, b = weights(0.3, 0.3, bias)
    x = _round(rng.normal(size=(2, 24, d)), dtype)
    h0, c0 = state(2, (2.0, 6.0))
    probes.append(Probe("long", "T=24, B=2, every gate open: |c| grows past 20 (cell clips show)",
                        x, h0, c0, k, r, b))
    return probes


# ------------------------------------------------------------------------------------------
# Scoring

def score(actual, expected, tol: Tolerance) -> Score:
    """How far (y, h_T, c_T) is from the reference's, relative to the tolerance."""
    y, h, c = actual
    ey, eh, ec = expected
    steps = ey.shape[1]
    comparisons = [compare("y", y, ey, tol, time_axis=1), compare("h_T", h, eh, tol, final_step=steps - 1),
                   compare("c_T", c, ec, tol, final_step=steps - 1)]
    problem = next((f"{c.name}: {c.problem}" for c in comparisons if c.problem), None)
    bad_steps = [c.first_bad_step for c in comparisons if c.first_bad_step is not None]
    first_bad = min(bad_steps) if bad_steps else None
    if problem:
        return Score(math.inf, math.inf, first_bad, problem, steps)
    return Score(max(c.ratio for c in comparisons), max(c.max_abs for c in comparisons), first_bad, None, steps)


class _Reference:
    """Reference outputs per (probe, convention), cached."""

    def __init__(self):
        self._cache = {}

    def __call__(self, probe: Probe, conv: Convention):
        key = (probe.name, conv.gate_order, conv.forget_bias, conv.recurrent_activation, conv.activation,
               conv.packing)
        if key not in self._cache:
            params = permute_params(LSTMParams(kernel=probe.kernel, recurrent_kernel=probe.recurrent, bias=probe.bias),
                                    conv.gate_order, conv.gate_order, from_packing=conv.packing)
            y, (h, c) = lstm_forward(probe.x, params, conv.spec(), (probe.h0, probe.c0))
            self._cache[key] = (y, h, c)
        return self._cache[key]


def _inverse(activation: str, f: np.ndarray) -> np.ndarray:
    if activation == "sigmoid":
        return np.log(f) - np.log1p(-f)
    if activation == "hard_sigmoid":
        return (f - 0.5) * 6.0
    if activation == "hard_sigmoid_keras2":
        return (f - 0.5) / 0.2
    raise ValueError(f"recurrent_activation: expected one of {sorted(RECURRENT_ACTIVATIONS)}, "
                     f"got {activation!r}")


def estimate_forget_bias(probe: Probe, c_out: np.ndarray, gate_order: str,
                         activation: str, cell_activation: str = "tanh",
                         packing: str = "gate-major") -> tuple[float, float] | None:
    """Closed-form forget bias for one hypothesis from a T=1 probe with a given c0 (see module
    doc): (median, spread) over the usable elements, or None when fewer than 3 are usable."""
    z = probe.x[:, 0] @ probe.kernel + probe.h0 @ probe.recurrent + probe.bias
    gates = split_gates(z, gate_order, packing=packing)
    ract = RECURRENT_ACTIVATIONS[activation][0]
    with np.errstate(all="ignore"):
        ig = ract(gates["i"].copy()) * ACTIVATIONS[cell_activation][0](gates["g"].copy())
        f_hat = (c_out - ig) / probe.c0
        usable = (np.abs(probe.c0) >= 0.5) & np.isfinite(f_hat) & (f_hat > 0.02) & (f_hat < 0.98)
        if usable.sum() < 3:
            return None
        values = _inverse(activation, f_hat[usable]) - gates["f"][usable]
    median = float(np.median(values))
    return median, 1.4826 * float(np.median(np.abs(values - median)))


def _snap_candidates(value: float):
    for decimals in range(0, 13):
        yield round(value, decimals) + 0.0  # + 0.0: no "-0"


# ------------------------------------------------------------------------------------------
# Detection

def detect(fn, *, input_size: int = 3, hidden_size: int = 2, dtype: str = "float32", seed: int = 0,
           progress=None) -> Detection:
    """Detect the convention of native callable ``fn`` (see the module docstring)."""
    start = time.perf_counter()
    _validate_sizes(input_size, hidden_size)
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
    tol, _ = tolerance(dtype, backend="native", quantity="forward")
    probes = make_probes(input_size, hidden_size, dtype, seed)
    reference = _Reference()
    calls = 0

    # 1. Run every probe in every layout pair.
    outputs: dict[tuple[str, str], dict[str, tuple]] = {}
    errors: dict[tuple[str, str], dict[str, str]] = {}
    for layouts in LAYOUT_PAIRS:
        outputs[layouts], errors[layouts] = {}, {}
        for probe in probes:
            kernel = orient(probe.kernel, layouts[0], rows="D")
            recurrent = orient(probe.recurrent, layouts[1], rows="H")
            calls += 1
            try:
                outputs[layouts][probe.name] = call_native(fn, probe.x, probe.h0, probe.c0, kernel,
                                                           recurrent, probe.bias, dtype=dtype)
            except NativeError as exc:
                errors[layouts][probe.name] = str(exc)
    accepted = {layouts: set(outputs[layouts]) for layouts in LAYOUT_PAIRS}
    everything = set().union(*accepted.values())
    best_count = max(len(a) for a in accepted.values())
    viable = [lp for lp in LAYOUT_PAIRS if accepted[lp] and len(accepted[lp]) == best_count]
    rejected = {_layout_name(lp): _first_error({n: e for n, e in errors[lp].items()
                                                 if not viable or n in accepted[viable[0]]} or errors[lp])
                for lp in LAYOUT_PAIRS if lp not in viable}
    refused = {p.name: _first_error({p.name: errors[viable[0]][p.name]}) for p in probes
               if viable and p.name not in accepted[viable[0]]}
    if progress:
        progress(f"ran {calls} calls; layouts accepted: {[_layout_name(lp) for lp in viable] or 'none'}")

    if not viable:
        return Detection("error", None, None, [], _all_refused_reason(errors), dtype, tol, probes, {},
                         rejected, calls, time.perf_counter() - start, input_size, hidden_size, seed)
    used = [p for p in probes if p.name in everything]
    status, best, runner_up, fits, reason, fb_determined, packing_determined = _judge(
        outputs, accepted, viable, used, probes, reference, tol, refused, rejected)
    if status == "none":
        # The commonest contract slip: (y, c_T, h_T) returned (TF's LSTMStateTuple is (c, h)).
        swapped = {lp: {name: (y, c, h) for name, (y, h, c) in out.items()} for lp, out in outputs.items()}
        verdict = _judge(swapped, accepted, viable, used, probes, reference, tol, refused, rejected)
        if verdict[0] == "unique":
            reason = (f"y matches {verdict[1].convention.describe()}, and h_T and c_T match with their places "
                      f"exchanged: the callable returns (y, c_T, h_T) where the contract is (y, h_T, c_T) "
                      f"(TF's LSTMStateTuple is (c, h): return state.h, state.c). Otherwise: " + reason)
    return Detection(status, best, runner_up, fits, reason, dtype, tol, probes, refused, rejected, calls,
                     time.perf_counter() - start, input_size, hidden_size, seed, fb_determined,
                     packing_determined)


def _judge(outputs, accepted, viable, used, probes, reference, tol, refused, rejected):
    """Steps 2 to 4 of :func:`detect` on the callable's outputs: (status, best, runner-up, fits,
    reason, whether the forget bias was determined, whether the packing was: not with H = 1)."""
    # 2. Hypotheses: forget bias estimated per (layout, order, activations), ranked on the first probe.
    hypotheses: list[Hypothesis] = []
    everything = {p.name for p in used}
    # With H = 1 both packings are the same array: one is enough, and the packing is undetermined.
    hidden_size = probes[0].h0.shape[1]
    packings = GATE_PACKINGS if hidden_size > 1 else GATE_PACKINGS[:1]
    for layouts in viable:
        out = outputs[layouts]
        for activation, cell_activation, order, packing in itertools.product(
                RECURRENT_ACTIVATIONS, ACTIVATIONS, ALL_GATE_ORDERS, packings):
            estimate, spread = None, None
            if "one_step" in out:
                found = estimate_forget_bias(probes[0], out["one_step"][2], order, activation, cell_activation,
                                             packing)
                if found is not None:
                    estimate, spread = found
            fb = 0.0 if estimate is None else estimate
            conv = Convention(order, layouts[0], layouts[1], fb, activation, cell_activation, packing)
            hypotheses.append(Hypothesis(conv, estimate, spread=spread))
    for hyp in hypotheses:  # ranked on the first probe its layout pair accepted
        layouts = (hyp.convention.kernel_layout, hyp.convention.recurrent_layout)
        first = next(p for p in used if p.name in accepted[layouts])
        hyp.scores[first.name] = score(outputs[layouts][first.name], reference(first, hyp.convention), tol)
    hypotheses.sort(key=lambda hh: hh.ratio)
    shortlist = [hh for k, hh in enumerate(hypotheses) if k < SHORTLIST or hh.ratio <= 1.0]
    if "one_step" not in everything:
        # No closed form without the one-step probe: search the forget bias of the shortlist.
        for k, hyp in enumerate(shortlist):
            c = hyp.convention
            estimate = _search_forget_bias(outputs[(c.kernel_layout, c.recurrent_layout)], used, c, reference)
            shortlist[k] = _with_forget_bias(hyp, estimate, estimate)
            shortlist[k].spread = 1e-6 * (1.0 + abs(estimate))

    # 3. Score the shortlist on every probe; snap the forget bias of those that fit.
    for hyp in shortlist:
        _score_all(hyp, outputs, used, reference, tol)
    for k, hyp in enumerate(shortlist):
        if hyp.ratio <= 1.0 and hyp.forget_bias_estimate is not None:
            shortlist[k] = _snapped(hyp, outputs, used, reference, tol)
    shortlist.sort(key=_closeness)
    fits = [hh for hh in shortlist if hh.ratio <= 1.0]
    best = shortlist[0]
    runner_up = next((hh for hh in shortlist[1:] if hh not in fits), None)

    # 4. Verdict.
    fb_determined = True
    if fits:
        fb_determined = _forget_bias_matters(best, outputs, used, reference, tol)
    packing_determined = hidden_size > 1
    if len(fits) == 1 and fb_determined and packing_determined:
        return ("unique", best, runner_up, fits, _unique_reason(best, runner_up, refused), fb_determined,
                packing_determined)
    if fits:
        return ("ambiguous", best, runner_up, fits,
                _ambiguous_reason(fits, fb_determined, refused, rejected, packing_determined), fb_determined,
                packing_determined)
    return ("none", best, runner_up, fits, _none_reason(best, probes, outputs, refused, reference, tol),
            fb_determined, packing_determined)


def _validate_sizes(input_size, hidden_size):
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if input_size == hidden_size:
        raise ValueError(f"input_size: expected a value different from hidden_size ({hidden_size}) so that "
                         f"the kernel and the recurrent kernel have different shapes, got {input_size}")


def _layout_name(layouts) -> str:
    return f"kernel ({layouts[0]}), recurrent ({layouts[1]})"


def _first_error(errors: dict[str, str]) -> str:
    for name, text in errors.items():
        return f"{name}: {text}"
    return ""


def _score_all(hyp, outputs, probes, reference, tol):
    layouts = (hyp.convention.kernel_layout, hyp.convention.recurrent_layout)
    for probe in probes:
        if probe.name not in hyp.scores and probe.name in outputs[layouts]:
            expected = reference(probe, hyp.convention)
            hyp.scores[probe.name] = score(outputs[layouts][probe.name], expected, tol)
    return hyp


def _with_forget_bias(hyp: Hypothesis, fb: float, estimate="keep") -> Hypothesis:
    c = hyp.convention
    conv = dataclasses.replace(c, forget_bias=fb)
    return Hypothesis(conv, hyp.forget_bias_estimate if estimate == "keep" else estimate, spread=hyp.spread)


def _closeness(hyp: Hypothesis):
    """Sort key: fits first (by score); otherwise the most probes within tolerance, then the score."""
    within = sum(s.ratio <= 1.0 for s in hyp.scores.values())
    return (hyp.ratio > 1.0, -within, hyp.ratio, hyp.max_abs)


def _snapped(hyp, outputs, probes, reference, tol) -> Hypothesis:
    """The hypothesis with its forget bias rounded to the fewest decimals that lie within the
    estimate's uncertainty and still verify."""
    value = hyp.convention.forget_bias
    within = max(4.0 * (hyp.spread or 0.0), 1e-12 * (1.0 + abs(value)))
    for candidate in _snap_candidates(value):
        if abs(candidate - value) > within:
            continue
        trial = _score_all(_with_forget_bias(hyp, candidate), outputs, probes, reference, tol)
        if trial.ratio <= 1.0:
            return trial
    return hyp


def _forget_bias_matters(hyp, outputs, probes, reference, tol) -> bool:
    """False when moving the forget bias by 0.5 still fits every accepted probe."""
    for delta in (0.5, -0.5):
        trial = _score_all(_with_forget_bias(hyp, hyp.convention.forget_bias + delta), outputs, probes,
                           reference, tol)
        if trial.ratio > 1.0:
            return True
    return False


def _search_forget_bias(out, probes, convention: Convention, reference) -> float:
    """Forget bias by 1-D search (when the one-step probe was refused): a grid, then golden section."""
    available = [p for p in probes if p.name in out]

    def cost(fb):
        conv = dataclasses.replace(convention, forget_bias=fb)
        total = 0.0
        for p in available:
            for a, e in zip(out[p.name], reference(p, conv)):
                with np.errstate(all="ignore"):
                    total += float(np.nansum((a - e) ** 2))
        return total

    grid = np.linspace(-8.0, 8.0, 17)
    costs = [cost(float(g)) for g in grid]
    k = int(np.argmin(costs))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    golden = (math.sqrt(5) - 1) / 2
    a, b = lo + (1 - golden) * (hi - lo), lo + golden * (hi - lo)
    ca, cb = cost(a), cost(b)
    for _ in range(30):
        if ca < cb:
            hi, b, cb = b, a, ca
            a = lo + (1 - golden) * (hi - lo)
            ca = cost(a)
        else:
            lo, a, ca = a, b, cb
            b = lo + golden * (hi - lo)
            cb = cost(b)
    return float((lo + hi) / 2)


# ------------------------------------------------------------------------------------------
# Explanations

def _unique_reason(best: Hypothesis, runner_up: Hypothesis | None, refused) -> str:
    text = (f"one convention fits every probe: max abs error {best.max_abs:.3g} "
            f"({best.ratio:.2g} of the tolerance)")
    if runner_up is not None:
        rc = runner_up.convention
        diff = _differences(best.convention, rc)
        text += (f"; the runner-up ({diff}) is off by {runner_up.max_abs:.3g} "
                 f"({runner_up.ratio:.3g} x the tolerance) on probe {runner_up.worst_probe()!r}")
    if refused:
        text += f"; the callable refused the probes {sorted(refused)}"
    return text


def _differences(a: Convention, b: Convention) -> str:
    parts = []
    for key in ("gate_order", "packing", "kernel_layout", "recurrent_layout", "forget_bias",
                "recurrent_activation", "activation"):
        va, vb = getattr(a, key), getattr(b, key)
        if va != vb:
            parts.append(f"{key.replace('_', ' ')} {f'{vb:.4g}' if isinstance(vb, float) else vb}")
    return ", ".join(parts) or "the same convention"


def _ambiguous_reason(fits, fb_determined, refused, rejected, packing_determined=True) -> str:
    reasons = []
    if not packing_determined:
        reasons.append("with hidden size 1 a gate-major and a unit-major packing are the same array (each gate "
                       "is one element of the 4H axis either way), so the packing cannot be told apart: run "
                       "detect again with --hidden-size 2 or more")
    if not fb_determined:
        reasons.append("the forget bias never changed an output by more than the tolerance: the forget "
                       "gate only matters when c_{t-1} != 0, and the callable refused every probe with a "
                       f"given cell state or more than one step (refused: {sorted(refused) or 'none'})")
    fields = {}
    for key in ("gate_order", "packing", "kernel_layout", "recurrent_layout", "recurrent_activation", "activation",
                "forget_bias"):
        values = sorted({str(getattr(h.convention, key)) for h in fits})
        if len(values) > 1:
            fields[key] = values
    if "kernel_layout" in fields or "recurrent_layout" in fields:
        which = [k for k in ("kernel_layout", "recurrent_layout") if k in fields]
        reasons.append(f"the callable accepts both {' and '.join(w.replace('_', ' ') + 's' for w in which)} "
                       f"and computes the same outputs from either: it adapts to the shape it is given "
                       f"(e.g. transposes a kernel whose shape does not match x), so its native layout "
                       f"cannot be told from its behaviour")
    other = {k: v for k, v in fields.items() if k not in ("kernel_layout", "recurrent_layout")}
    if other:
        reasons.append("on every probe the callable accepted (refused: "
                       f"{sorted(refused) or 'none'}), these conventions give outputs within the "
                       f"tolerance of each other: {other}; the callable is symmetric in what tells them "
                       "apart")
    def describe(h):
        text = h.convention.describe()
        if not fb_determined:
            text = text.replace(f"forget bias {h.convention.forget_bias:.6g}", "any forget bias")
        if not packing_determined:
            text = text.replace(f"gate order {h.convention.gate_order}",
                                f"gate order {h.convention.gate_order} (gate-major or unit-major)")
        return text + f" (max abs error {h.max_abs:.3g})"

    listing = "; ".join(describe(h) for h in fits)
    head = (f"{len(fits)} conventions fit" if len(fits) > 1 else "a convention fits up to its "
            + ("forget bias" if not fb_determined else "packing"))
    return f"{head}: {listing}. Why the evidence cannot separate them: " + " ".join(reasons)


def _none_reason(best: Hypothesis, probes, outputs, refused, reference, tol) -> str:
    scores = best.scores
    worst = best.worst_probe()
    ws = scores[worst]
    parts = [f"no convention fits. Closest: {best.convention.describe()}, max abs error "
             f"{best.max_abs:.3g} ({best.ratio:.3g} x the tolerance) on probe {worst!r}"]
    if ws.problem:
        parts.append(f"there: {ws.problem}")
    if ws.first_bad_step is not None:
        parts.append(f"it first leaves the tolerance at time step t={ws.first_bad_step} of {ws.steps}")
    fit = sorted(n for n, sc in scores.items() if sc.ratio <= 1.0)
    failed = {n: sc.first_bad_step for n, sc in scores.items() if sc.ratio > 1.0}
    if fit:
        parts.append(f"it fits the probes {fit} and fails {sorted(failed)} (first bad step: {failed})")
    clip = _clip_hint(best, probes, outputs, failed, reference) if fit else None
    if clip:
        parts.append(clip)
    if not clip and any(n in fit for n in ("one_step", "first_step")) and failed and all(
            (s is not None and s >= 1) for s in failed.values()):
        parts.append("it is right at the first time step and wrong after: the state is probably not carried "
                     "from step to step (h into the recurrent kernel, c into the forget gate)")
    looser = _looser_fit(best, probes, outputs, reference, tol) if not clip else None
    if looser:
        parts.append(f"it fits every probe within the {looser} tolerance: does the callable compute in "
                     f"{looser}? (then pass --dtype {looser})")
    elif not fit and not clip:
        parts.append("even the one-step probes are off: not an LSTM of the supported conventions (24 gate "
                     "orders x 2 packings x 4 layouts x 3 recurrent activations x 3 activations x any forget "
                     "bias)")
    if refused:
        parts.append(f"refused probes: {sorted(refused)}")
    return "; ".join(parts)


def _looser_fit(best: Hypothesis, probes, outputs, reference, tol) -> str | None:
    """The lower precision (float32, float16) whose tolerance the closest hypothesis meets, if any."""
    layouts = (best.convention.kernel_layout, best.convention.recurrent_layout)
    for dtype in ("float32", "float16"):
        looser, _ = tolerance(dtype, backend="native", quantity="forward")
        if looser.rtol <= tol.rtol and looser.atol <= tol.atol:
            continue
        ratios = [score(outputs[layouts][p.name], reference(p, best.convention), looser).ratio
                  for p in probes if p.name in outputs[layouts]]
        if ratios and max(ratios) <= 1.0:
            return dtype
    return None


def _clip_hint(best: Hypothesis, probes, outputs, failed, reference) -> str | None:
    """When the callable's |c_T| stops at one value X (several elements exactly at +-X) while the
    reference's goes beyond X on the failing probes: a clip of the cell state.  Only asked when
    the hypothesis fits some probe (an LSTM that is right while |c| stays small)."""
    if not failed:
        return None
    layouts = (best.convention.kernel_layout, best.convention.recurrent_layout)
    actual = np.concatenate([np.abs(outputs[layouts][p.name][2]).ravel() for p in probes
                             if p.name in outputs[layouts]])
    if not actual.size or not np.isfinite(actual).all():
        return None
    limit = float(actual.max())
    at_limit = int(np.sum(actual >= limit * (1 - 1e-6)))
    expected = max(float(np.max(np.abs(reference(p, best.convention)[2])))
                   for p in probes if p.name in failed)
    if at_limit >= 2 and expected > limit * (1 + 1e-3):
        return (f"the callable's |c_T| stops at {limit:.6g} ({at_limit} elements exactly there) where the "
                f"reference's reaches {expected:.3g}: is the cell state clipped at {limit:.6g}? (TF "
                f"LSTMBlockCell's cell_clip defaults to 3)")
    return None


def _all_refused_reason(errors) -> str:
    lines = ["the callable could not be run: it raised or returned results the contract does not allow "
             "(x, h0, c0, kernel, recurrent_kernel, bias) -> (y, h_T, c_T) for every probe in every layout:"]
    for layouts, errs in errors.items():
        lines.append(f"  {_layout_name(layouts)}: {_first_error(errs)}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# Command line

def add_arguments(parser) -> None:
    parser.add_argument("callable", metavar="MODULE:ATTR",
                        help="the LSTM callable (x, h0, c0, kernel, recurrent_kernel, bias) -> "
                             "(y, h_T, c_T); module:attribute or path/to/file.py:attribute")
    parser.add_argument("--hidden-size", type=int, default=2, metavar="H",
                        help="hidden size to probe with (default 2)")
    parser.add_argument("--input-size", type=int, default=3, metavar="D",
                        help="input size to probe with (default 3; must differ from H)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES,
                        help="dtype of the arrays passed and of the tolerance (default float32)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the probes (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the verdict")


def run(args) -> int:
    try:
        fn = load_callable(args.callable)
        result = detect(fn, input_size=args.input_size, hidden_size=args.hidden_size, dtype=args.dtype,
                        seed=args.seed)
    except ValueError as exc:
        print(f"error: {exc}")
        return EXIT_ERROR
    return answer(args, result, render(result, args.callable))


def render(result: Detection, target: str) -> str:
    lines = [f"detect {target}: input size {result.input_size}, hidden size {result.hidden_size}, "
             f"{result.dtype} (rtol {result.tolerance.rtol:g}, atol {result.tolerance.atol:g}), "
             f"seed {result.seed}"]
    lines.append("  probes: " + "; ".join(f"{p.name} ({p.shape_text()})" for p in result.probes))
    if result.rejected_layouts and result.best is not None:
        lines.append("  layouts rejected (the callable raised or returned wrong shapes): " + "; ".join(
            f"{name}: {_short(_error_kind(why), 90)}" for name, why in result.rejected_layouts.items()))
    for name, why in result.refused_probes.items():
        lines.append(f"  probe refused: {_short(why)}")
    verdict = {"unique": "unique match", "none": "NO MATCH", "ambiguous": "AMBIGUOUS",
               "error": "COULD NOT RUN THE CALLABLE"}[result.status]
    lines.append(f"verdict: {verdict}")
    best = result.best
    if best is not None and result.status not in ("none", "error"):
        conv = best.convention
        presets = presets_with_order(conv.gate_order, conv.packing) if result.packing_determined else [
            name for packing in GATE_PACKINGS for name in presets_with_order(conv.gate_order, packing)]
        fb = format_number(conv.forget_bias) if result.forget_bias_determined else "undetermined"
        estimate = ("" if best.forget_bias_estimate is None or not result.forget_bias_determined
                    else f"   (estimated {best.forget_bias_estimate:.9g}"
                    + ("" if best.spread is None else f" +- {best.spread:.1g}") + ", verified)")
        also = f"   (as {', '.join(presets)})" if presets else ""
        packing = (conv.packing + ("   (gate blocks of H)" if conv.packing == "gate-major" else
                                   "   (each unit's four gates side by side)")
                   if result.packing_determined else "undetermined (hidden size 1: gate-major = unit-major)")
        lines += [f"  gate order            {conv.gate_order}{also}",
                  f"  packing               {packing}",
                  f"  kernel layout         {conv.kernel_layout}",
                  f"  recurrent layout      {conv.recurrent_layout}",
                  f"  forget bias           {fb}{estimate}",
                  f"  recurrent activation  {conv.recurrent_activation}",
                  f"  activation            {conv.activation}"]
    lines.append("  evidence: " + result.reason)
    if result.status == "unique":
        lines.append(f"  check it: python -m conformance check {target} {best.convention.cli_options()}"
                     + ("" if result.dtype == "float32" else f" --dtype {result.dtype}"))
    lines.append(f"  {result.calls} calls of the callable, {result.seconds:.2f} s")
    return "\n".join(lines)


def _error_kind(text: str) -> str:
    """"one_step: the callable raised ValueError: ... (at f.py:3 in g)" -> "ValueError at f.py:3 in g"."""
    text = str(text).split(": ", 1)[-1]
    if text.startswith("the callable raised "):
        kind = text[len("the callable raised "):].split(":", 1)[0]
        where = text[text.rfind(" (at "):].strip(" ()") if " (at " in text else ""
        return f"raised {kind}" + (f" {where}" if where else "")
    return text


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
