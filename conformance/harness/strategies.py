"""Hypothesis strategies for conformance cases.

Shapes come from small bounded ranges (so compiled functions are reused across examples) and, in
a share of examples (the ``SizePlan`` of the run: its Hypothesis profile, or ``check --max-size``),
from sizes at and around the boundaries where frameworks switch code paths: SIMD widths of 8, 16
and 32 lanes, GEMM blocking, thread partitions over the batch, chunked time loops.  Such a size
is drawn from a sorted list, so that a failure shrinks to the smallest boundary that still
fails.  Values come from a NumPy generator seeded by a drawn integer, in one of three regimes:

* "moderate": pre-activations of order 1;
* "saturating": pre-activations of order 10, gates at 0 or 1;
* "accumulating": forget and input gates open and the candidate of one sign, so that |c| grows
  by about one per step and is well above 3 (TF LSTMBlockCell's default cell_clip) after a few.

Weights are never symmetric across gates: each gate block gets its own scale and bias offset, so
any permutation of gate blocks changes the output.  Every array is rounded to the dtype under test.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from adapters.base import Case
from reference import ALL_GATE_ORDERS, LSTMParams, LSTMSpec
from reference.activations import bounded
from reference.gates import permute_gates

from .sizes import BOUNDARY_BATCHES, BOUNDARY_SIZES, BOUNDARY_STEPS, SMALL, SizePlan

REGIMES = ("moderate", "saturating", "accumulating")

_ACTIVE = contextvars.ContextVar("lstm_conformance_size_plan", default=SMALL)


@contextlib.contextmanager
def size_plan(plan: SizePlan):
    """Draw cases with ``plan`` inside this block (the engine sets the run's plan)."""
    token = _ACTIVE.set(plan)
    try:
        yield plan
    finally:
        _ACTIVE.reset(token)


def active_size_plan() -> SizePlan:
    return _ACTIVE.get()


# Distinct per-gate multipliers and bias offsets, in "ifgo" order (asymmetry across gates).
_GATE_SCALE = np.array([1.0, 1.3, 0.8, 1.15])
_GATE_OFFSET = np.array([0.25, -0.35, 0.45, -0.15])


def round_to(array, dtype: str) -> np.ndarray:
    """float64 array of the values of ``array`` rounded to ``dtype`` (round to nearest even)."""
    a = np.asarray(array, dtype=np.float64)
    if dtype == "float64":
        return a.copy()
    if dtype in ("float32", "float16"):
        return a.astype(dtype).astype(np.float64)
    if dtype == "bfloat16":
        bits = a.astype(np.float32).view(np.uint32).astype(np.uint64)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
        out = rounded.astype(np.uint32).view(np.float32).astype(np.float64)
        return np.where(np.isnan(a), np.nan, out)
    raise ValueError(f"dtype: expected float64, float32, float16 or bfloat16, got {dtype!r}")


def make_params(rng: np.random.Generator, spec: LSTMSpec, input_size: int, hidden_size: int,
                regime: str, dtype: str, *, recurrent_bias: bool = False,
                projection_bias: bool = False) -> LSTMParams:
    """Asymmetric random weights in ``spec.gate_order``, rounded to ``dtype``; layer-norm
    coefficients when the spec has layer norm (of order 1, of order 4 when saturating: the
    normalised pre-activations are of order 1 whatever the weights), a projection bias when
    asked."""
    h, d = hidden_size, input_size
    p = spec.proj_size or h
    gain = {"moderate": 1.0, "saturating": 6.0, "accumulating": 1.0}[regime]
    scale = np.repeat(_GATE_SCALE, h)
    kernel = rng.normal(size=(d, 4 * h)) * scale * gain / np.sqrt(d)
    recurrent = rng.normal(size=(p, 4 * h)) * scale * gain / np.sqrt(p)
    if unbounded_dynamics(spec):
        recurrent *= UNBOUNDED_RECURRENT_GAIN
    bias = rng.normal(scale=0.5, size=4 * h) + np.repeat(_GATE_OFFSET, h)
    if regime == "accumulating":
        # i and f open, o moderate, g pushed to one sign per unit: c_t grows about linearly.
        kernel *= 0.3
        recurrent *= 0.3
        bias[0:h] += 4.0
        bias[h:2 * h] += 5.0
        bias[2 * h:3 * h] += rng.choice([-3.0, 3.0], size=h)
    arrays = {
        "kernel": permute_gates(kernel, "ifgo", spec.gate_order),
        "recurrent_kernel": permute_gates(recurrent, "ifgo", spec.gate_order),
        "bias": permute_gates(bias, "ifgo", spec.gate_order),
    }
    if recurrent_bias:
        arrays["recurrent_bias"] = permute_gates(rng.normal(scale=0.5, size=4 * h) - np.repeat(_GATE_OFFSET, h),
                                                 "ifgo", spec.gate_order)
    if spec.use_peepholes:
        arrays["peephole"] = rng.normal(scale=0.5, size=(3, h)) + np.array([[0.3], [-0.2], [0.1]])
    if spec.proj_size:
        arrays["projection"] = rng.normal(size=(h, spec.proj_size)) / np.sqrt(h)
        if projection_bias:
            arrays["projection_bias"] = rng.normal(scale=0.5, size=spec.proj_size)
    if spec.layer_norm:
        scale = 4.0 if regime == "saturating" else 1.0
        arrays["layer_norm"] = permute_gates(np.repeat(_GATE_SCALE, h) * scale * (1.0 + 0.3 * rng.normal(size=4 * h)),
                                             "ifgo", spec.gate_order)
    return LSTMParams(**{k: round_to(v, dtype) for k, v in arrays.items()})


#: With an unbounded g or h (relu, linear, elu, ...) h grows with c and feeds back through the
#: recurrent kernel: at the usual gains the state explodes within tens of steps, and a naive float32
#: LSTM is then millions of times the tolerance away from the exact result (measured: relu,
#: accumulating regime, T = 129: 2e6; linear, saturating, T = 64: inf).  Such cases test nothing,
#: so their recurrent kernel is scaled down, the saturating regime (large inputs into an unbounded
#: candidate) is not drawn, and at scale their sequences stop at UNBOUNDED_MAX_STEPS (naive float32
#: then within 0.03 of the tolerance at T = 33, every regime drawn).
UNBOUNDED_RECURRENT_GAIN = 0.1
UNBOUNDED_MAX_STEPS = 33


def unbounded_dynamics(spec: LSTMSpec) -> bool:
    """Whether the candidate or the cell output activation is unbounded (see above)."""
    return not (bounded(spec.activation) and bounded(spec.h_activation))


def make_inputs(rng: np.random.Generator, batch: int, steps: int, input_size: int, regime: str,
                dtype: str) -> np.ndarray:
    scale = {"moderate": 1.0, "saturating": 3.0, "accumulating": 1.0}[regime]
    return round_to(rng.normal(scale=scale, size=(batch, steps, input_size)), dtype)


def make_state(rng: np.random.Generator, batch: int, output_size: int, hidden_size: int,
               dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """An initial state with |c0| up to about 10 (well beyond 3)."""
    h0 = rng.uniform(-1.0, 1.0, size=(batch, output_size))
    c0 = rng.normal(scale=4.0, size=(batch, hidden_size))
    return round_to(h0, dtype), round_to(c0, dtype)


def make_stack(rng: np.random.Generator, spec: LSTMSpec, input_size: int, hidden_size: int, *,
               layers: int, directions: int, regime: str, dtype: str,
               recurrent_bias: bool = False, projection_bias: bool = False) -> list[list[LSTMParams]]:
    """[layer][direction] weights; layer k > 0 reads the P * directions features of layer k - 1.

    In the saturating regime only the first layer saturates; the layers above it get moderate
    weights.  A saturating layer fed by another's h (|h| < 1 instead of inputs of scale 3) is
    no longer driven by its input: its gain-6 recurrence is chaotic, and its outputs move by
    more than any float32 tolerance when its input moves by one unit roundoff (the float64
    reference itself, x perturbed by 2**-24: 1400 x the tolerance at D = H = 512, T = 64, three
    layers; 7 x at H = 16, T = 32).  No framework could be held to such a case."""
    out_size = spec.proj_size or hidden_size
    return [[make_params(rng, spec, input_size if k == 0 else out_size * directions, hidden_size,
                         "moderate" if k and regime == "saturating" else regime, dtype,
                         recurrent_bias=recurrent_bias, projection_bias=projection_bias)
             for _ in range(directions)]
            for k in range(layers)]


def fill_padding(rng: np.random.Generator, x: np.ndarray, lengths, dtype: str) -> None:
    """Garbage (values of order 50) in the padded steps of ``x``, in place: it must never reach
    an output."""
    steps, d = x.shape[1], x.shape[2]
    for row, n in enumerate(lengths):
        x[row, n:] = round_to(rng.normal(scale=50.0, size=(steps - n, d)), dtype)


@st.composite
def chunked(draw, case_strategy):
    """A drawn case and a split of its steps into consecutive chunks (for streaming)."""
    case = draw(case_strategy)
    chunks, left = [], case.steps
    while left:
        n = draw(st.integers(1, left))
        chunks.append(n)
        left -= n
    return case, chunks


@st.composite
def cases(draw, *, dtype: str = "float32", spec: dict | None = None, batch=(1, 4), steps=(1, 8),
          input_size=(1, 5), hidden_size=(1, 5), initial_state: bool = False, lengths: str | None = None,
          direction: str = "forward", layers: int | tuple[int, int] = 1, recurrent_bias: bool = False,
          regimes=REGIMES, gate_orders=ALL_GATE_ORDERS, zero_length: bool = False,
          scale: bool | None = None, projection_bias: bool = False) -> Case:
    """A Case.  ``spec`` holds fixed LSTMSpec options (drawn values may be given as strategies);
    the gate order is drawn from ``gate_orders``.  ``lengths`` is None or a length_semantics;
    lengths are drawn in [1, T], or with ``zero_length`` in [0, T] with at least one 0 (an empty
    sequence in the batch).  ``scale``: True draws the sizes at scale, False never, None in the
    share of examples the active SizePlan says (a fixed size, lo == hi, stays fixed)."""
    options = {}
    for key, value in (spec or {}).items():
        options[key] = draw(value) if isinstance(value, st.SearchStrategy) else value
    options.setdefault("gate_order", draw(st.sampled_from(gate_orders)))
    if lengths is not None:
        options["length_semantics"] = lengths
    the_spec = LSTMSpec(**options)
    plan = active_size_plan()
    if unbounded_dynamics(the_spec):
        regimes = tuple(r for r in regimes if r != "saturating") or ("moderate",)
        plan = replace(plan, max_steps=min(plan.max_steps, UNBOUNDED_MAX_STEPS))
    if scale is None:
        # The last value means "at scale": Hypothesis shrinks towards 0, the small shapes.
        scale = plan.share > 0 and draw(st.integers(0, plan.share - 1)) == plan.share - 1
    if scale:
        b, t, d, h, n_layers = draw(_sizes_at_scale(plan, the_spec, batch, steps, input_size, hidden_size,
                                                     layers, 2 if direction == "bidirectional" else 1))
    else:
        b = draw(st.integers(*batch))
        t = draw(st.integers(*steps))
        d = draw(st.integers(*input_size))
        h = draw(st.integers(*hidden_size))
        n_layers = layers if isinstance(layers, int) else draw(st.integers(*layers))
    regime = draw(st.sampled_from(regimes))
    seed = draw(st.integers(0, 2**32 - 1))
    lens = None
    if lengths is not None:
        lens = np.asarray(draw(st.lists(st.integers(0 if zero_length else 1, t), min_size=b, max_size=b)),
                          dtype=np.int64)
        if zero_length:
            lens[draw(st.integers(0, b - 1))] = 0
    return build_case(np.random.default_rng(seed), the_spec, b, t, d, h, layers=n_layers, direction=direction,
                      regime=regime, dtype=dtype, recurrent_bias=recurrent_bias, initial_state=initial_state,
                      lengths=lens, origin={"seed": seed, "regime": regime, **({"at_scale": True} if scale else {})},
                      projection_bias=projection_bias)


def build_case(rng: np.random.Generator, spec: LSTMSpec, batch: int, steps: int, input_size: int,
               hidden_size: int, *, layers: int = 1, direction: str = "forward", regime: str = "moderate",
               dtype: str = "float32", recurrent_bias: bool = False, initial_state: bool = False,
               lengths=None, origin: dict | None = None, projection_bias: bool = False) -> Case:
    """The Case of given shapes with values from ``rng`` (weights, inputs, states, then garbage in
    the padding, in that order): what ``cases`` draws, and what fixtures/generate.py writes."""
    dirs = 2 if direction == "bidirectional" else 1
    stack = make_stack(rng, spec, input_size, hidden_size, layers=layers, directions=dirs, regime=regime,
                       dtype=dtype, recurrent_bias=recurrent_bias, projection_bias=projection_bias)
    x = make_inputs(rng, batch, steps, input_size, regime, dtype)
    state = None
    if initial_state:
        out_size = spec.proj_size or hidden_size
        state = [make_state(rng, batch, out_size, hidden_size, dtype) for _ in range(layers * dirs)]
    if lengths is not None:
        lengths = np.asarray(lengths, dtype=np.int64)
        fill_padding(rng, x, lengths, dtype)
    return Case(spec=spec, layers=stack, x=x, initial_state=state, lengths=lengths, direction=direction,
                dtype=dtype, origin=dict(origin or {}))


@st.composite
def _sizes_at_scale(draw, plan: SizePlan, spec: LSTMSpec, batch, steps, input_size, hidden_size, layers,
                    directions: int):
    """(B, T, D, H, layers) from the boundary lists within ``plan``: the layer's sizes first (the
    boundaries of unit-index bugs), then the batch and the steps that keep the example's work
    within ``plan.max_work``.  Each is a sorted ``sampled_from``: it shrinks to smaller sizes."""
    units = plan.unit_sizes or BOUNDARY_SIZES
    d = draw(st.sampled_from(plan.sizes(units, *input_size, plan.max_size)))
    h = draw(st.sampled_from(plan.sizes(units, *hidden_size, plan.max_size)))
    n_layers = layers if isinstance(layers, int) else draw(st.integers(*layers))
    p = spec.proj_size or h
    per_row_step = sum(directions * 4 * h * ((d if k == 0 else directions * p) + p) for k in range(n_layers))
    budget = plan.max_work / per_row_step if plan.max_work else float("inf")
    batches = plan.sizes(BOUNDARY_BATCHES, *batch, plan.max_batch)
    step_choices = plan.sizes(BOUNDARY_STEPS, *steps, plan.max_steps)
    # Whichever is drawn first may take the budget: a long sequence or a wide batch.
    if draw(st.booleans()):
        t = draw(_largest_often([v for v in step_choices if v * batches[0] <= budget] or step_choices[:1]))
        b = draw(_largest_often([v for v in batches if v * t <= budget] or batches[:1]))
    else:
        b = draw(_largest_often([v for v in batches if v * step_choices[0] <= budget] or batches[:1]))
        t = draw(_largest_often([v for v in step_choices if b * v <= budget] or step_choices[:1]))
    return b, t, d, h, n_layers


def _largest_often(choices: list[int]) -> st.SearchStrategy[int]:
    """One of ``choices`` (ascending), the largest in about one draw of four: where a plan caps
    the steps or the budget caps the batch just past a boundary (33 steps for unbounded
    activations), the one value that crosses it must not be left to a uniform draw.  The largest
    is repeated at the end of a sorted ``sampled_from``, so a failing draw still shrinks to the
    smallest value that fails."""
    repeats = max(0, (len(choices) - 4) // 3)
    return st.sampled_from(list(choices) + [choices[-1]] * repeats)
