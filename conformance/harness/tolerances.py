"""The one tolerance table, keyed by dtype, and the one place that loosens it.

A value passes when |actual - expected| <= atol + rtol * |expected| elementwise (numpy.isclose
semantics), NaN positions equal.  The expected value is computed in float64 from inputs and
weights already rounded to the dtype under test, so the table bounds the framework's arithmetic
only, not the rounding of the data.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float

    def scaled(self, factor: float) -> "Tolerance":
        return Tolerance(self.rtol * factor, self.atol * factor)

    def to_dict(self) -> dict:
        return {"rtol": self.rtol, "atol": self.atol}


#: Forward values (outputs and final states).  float32: a unit roundoff of 6e-8 accumulated over
#: up to ~100 steps of O(H) dot products with |c| up to ~100.  float16 / bfloat16: unit roundoff
#: 5e-4 and 4e-3, the same accumulation.
TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-9, atol=1e-10),
    "float32": Tolerance(rtol=1e-4, atol=2e-5),
    "float16": Tolerance(rtol=2e-2, atol=2e-2),
    "bfloat16": Tolerance(rtol=8e-2, atol=8e-2),
}


@dataclass(frozen=True)
class Loosening:
    """Multiply the table's tolerance by ``factor`` where backend, quantity and dtype match
    (fnmatch patterns).  ``reason`` is required: it is printed in every report that uses it."""

    backend: str
    quantity: str
    dtype: str
    factor: float
    reason: str


#: Quantities: "forward" (y and final states), "long_sequence" (the same, over up to 100 steps) and
#: "gradients".
LOOSENINGS: list[Loosening] = [
    Loosening("*", "gradients", "*", 10.0,
              "BPTT sums T products of Jacobians; the gradient of a float32/float64 run "
              "accumulates about one more order of magnitude of roundoff than the forward pass"),
    Loosening("*", "long_sequence", "*", 5.0,
              "long sequences (up to 100 steps) accumulate roundoff over proportionally more steps"),
    # 4400 = 0.088 / 2e-5: the bound below at N = 128 as float32's atol (rtol becomes 0.44); past
    # 128 terms the table's own sqrt(N / 128) growth continues the same sqrt(N) law.
    Loosening("*-drq", "*", "float32", 4400.0,
              "dynamic-range quantization: int8 weights and int8 inputs per batch row, each rounded "
              "to half a step of max|v| / 127 (2**-8 of the range); a pre-activation sums N = D + P "
              "such products, whose independent roundings add up to about sqrt(N) * 2**-7 of its "
              "scale (0.088 at N = 128, where the table's growth with N takes over), passed on at "
              "most unchanged by sigmoid and tanh (slopes <= 1)"),
]


#: The table holds for dot products of up to this many terms (D + P: the input and the recurrent
#: part of one gate pre-activation).
REDUCTION_COVERED = 128


def reduction_factor(reduction: int) -> float:
    """How much a tolerance grows for gate pre-activations summed over ``reduction`` = D + P terms:
    sqrt(reduction / 128), at least 1.

    Roundoff in a dot product of n terms grows about as sqrt(n) (blocked and pairwise summation,
    errors of either sign), and the tolerance scales with it.  The constant is measured: the
    error of torch, ONNX Runtime, TF (BlockLSTM, LSTMCell), tf_keras, Flax and Keras 3 on JAX in
    float32, as a multiple of the unscaled table, is at most 0.06 at D = H = 16 and grows to
    0.45 at 256, 1.17 at 1024 (tf_keras; torch 1.32 at T = 512): divided by this factor, at most
    0.56 (torch, B = 256, D = H = 512) in the saturating regime, the worst.  The number of steps
    needs no factor of its own: the forget gate contracts the state's error (torch, D = H = 64:
    0.30 at T = 512 against 0.20 at T = 128).  Measured by bench/error_at_size.py
    (docs/benchmarks.md)."""
    if reduction < 1:
        raise ValueError(f"reduction: expected a positive number of terms, got {reduction!r}")
    return max(1.0, math.sqrt(reduction / REDUCTION_COVERED))


#: The number of steps each quantity's tolerance holds for as it stands ("long_sequence" has its
#: loosening for up to 100).
STEPS_COVERED = {"forward": 16, "gradients": 16, "long_sequence": 100}


def steps_factor(steps: int, quantity: str = "forward") -> float:
    """How much a tolerance grows past the steps it covers: sqrt(T / covered), at least 1.

    Roundoff reaches later steps through the state, and a naive float32 LSTM's error relative to
    the table grows about as sqrt(T) in the saturating regime (measured: 0.07 at T = 8, 0.12 at
    16, 0.21 at 64, 0.29 at 129, 0.33 at 512; bench/error_at_size.py); ONNX Runtime, whose MLAS
    sigmoid and tanh are within 2 and 4 float32 ulp, is several times that at D = 127, H = 2,
    T = 63 (1.25 of the unscaled table), its error carried from outputs near 1 into a recurrent
    pre-activation and out again in an output near 0.2."""
    covered = STEPS_COVERED.get(quantity, STEPS_COVERED["forward"])
    return max(1.0, math.sqrt(steps / covered))


def tolerance(dtype: str, *, backend: str = "*", quantity: str = "forward",
              reduction: int | None = None, steps: int | None = None) -> tuple[Tolerance, list[str]]:
    """The tolerance for ``dtype`` after every matching loosening, and the reasons applied;
    ``reduction``: the longest gate pre-activation sum of the case (D + P of its widest layer),
    beyond ``REDUCTION_COVERED`` terms the tolerance grows by ``reduction_factor``; ``steps``: its
    number of steps, beyond ``STEPS_COVERED`` the tolerance grows by ``steps_factor``."""
    if dtype not in TOLERANCES:
        raise ValueError(f"dtype: expected one of {sorted(TOLERANCES)}, got {dtype!r}")
    tol, reasons = TOLERANCES[dtype], []
    for rule in LOOSENINGS:
        if (fnmatch.fnmatch(backend, rule.backend) and fnmatch.fnmatch(quantity, rule.quantity)
                and fnmatch.fnmatch(dtype, rule.dtype)):
            tol = tol.scaled(rule.factor)
            reasons.append(f"x{rule.factor:g}: {rule.reason}")
    if reduction is not None and reduction > REDUCTION_COVERED:
        factor = reduction_factor(reduction)
        tol = tol.scaled(factor)
        reasons.append(f"x{factor:.3g}: gate pre-activations sum {reduction} terms (D + P); roundoff grows as "
                       f"sqrt(terms / {REDUCTION_COVERED}) (tolerances.reduction_factor)")
    if steps is not None and steps_factor(steps, quantity) > 1.0:
        factor = steps_factor(steps, quantity)
        tol = tol.scaled(factor)
        reasons.append(f"x{factor:.3g}: {steps} steps; roundoff carried by the state grows as sqrt(steps / "
                       f"{STEPS_COVERED.get(quantity, STEPS_COVERED['forward'])}) (tolerances.steps_factor)")
    return tol, reasons


def reduction_of(case) -> int:
    """D + P of the case's widest layer: the longest dot product of one gate pre-activation."""
    return max(p.input_size + p.output_size for layer in case.layers for p in layer)


def case_tolerance(case, *, backend: str = "*", quantity: str = "forward") -> tuple[Tolerance, list[str]]:
    """:func:`tolerance` for ``case``: its dtype, grown for its longest pre-activation sum and its
    number of steps."""
    return tolerance(case.dtype, backend=backend, quantity=quantity, reduction=reduction_of(case),
                     steps=case.steps)
