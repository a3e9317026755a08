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
from typing import Callable

import numpy as np


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
    (fnmatch patterns).  ``reason`` is required: it is printed in every report that uses it.

    ``when`` (a predicate on the case) limits it to the cases it is about; ``scale`` (a function of
    the case, used when at least 1) multiplies the factor for a case whose error grows with a size
    of its own.  Without a case (a tolerance asked for a dtype alone) both are left out: the rule
    applies with its factor."""

    backend: str
    quantity: str
    dtype: str
    factor: float
    reason: str
    when: Callable | None = None
    scale: Callable | None = None

    def factor_for(self, case) -> float | None:
        """The factor for ``case`` (None: the rule does not apply to it)."""
        if case is None:
            return self.factor
        if self.when is not None and not self.when(case):
            return None
        return self.factor * (max(1.0, float(self.scale(case))) if self.scale is not None else 1.0)


#: Dynamic-range quantization leaves a weight tensor of fewer elements than this in float32
#: (tflite/converter/quantization/lite/quantize_weights.h, minimum_elements_for_weights = 1024;
#: toco_legacy kWeightsMinNumElementsDefault).
DRQ_MIN_ELEMENTS = 1024


def drq_quantizes(case) -> bool:
    """Whether a converted model of ``case`` can hold an int8 weight tensor: the largest one a
    converter writes for a layer, the fused kernel of a WHILE loop's FULLY_CONNECTED (4H, D + P),
    reaches DRQ_MIN_ELEMENTS (the fused LSTM op's per-gate (H, D) and (H, P) are smaller, so this
    errs on the side of quantized)."""
    return any(4 * p.hidden_size * (p.input_size + p.output_size) >= DRQ_MIN_ELEMENTS
               for layer in case.layers for p in layer)


def pre_activation_scale(case) -> float:
    """The typical size of a gate pre-activation's sum in ``case``: per layer and direction,
    rms(input) sqrt(D) g(kernel) + sqrt(P) g(recurrent kernel), g the largest RMS of a gate block
    (|h| <= 1 stands for the input of the layers above the first, and the first layer's input is
    taken at its valid steps); the largest over the layers.  About 2.7 in the strategies' moderate
    regime, 32 in the saturating one, 0.8 in the accumulating one."""
    x = np.asarray(case.x, np.float64)
    if case.lengths is not None:
        x = x[np.arange(case.steps)[None, :] < np.asarray(case.lengths)[:, None]]
    rms_x = float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0

    def gate_rms(a) -> float:
        a = np.asarray(a, np.float64)
        return max(float(np.sqrt(np.mean(np.square(block)))) for block in np.split(a, 4, axis=-1))

    return max((rms_x if k == 0 else 1.0) * math.sqrt(p.input_size) * gate_rms(p.kernel)
               + math.sqrt(p.output_size) * gate_rms(p.recurrent_kernel)
               for k, layer in enumerate(case.layers) for p in layer)


#: The measured ratio of the error of dynamic-range quantization to its per-step bound of unit
#: scale, per unit of pre_activation_scale (bench/drq_error.py, docs/converters/litert.md): at most
#: 0.15 over every regime, T from 1 to 65 and D, H from 8 to 129; the loosening takes 1/4.
DRQ_SCALE_PER_UNIT = 0.25


#: Quantities: "forward" (y and final states), "long_sequence" (the same, over up to 100 steps) and
#: "gradients".
LOOSENINGS: list[Loosening] = [
    Loosening("*", "gradients", "*", 10.0,
              "BPTT sums T products of Jacobians; the gradient of a float32/float64 run "
              "accumulates about one more order of magnitude of roundoff than the forward pass"),
    Loosening("*", "long_sequence", "*", 5.0,
              "long sequences (up to 100 steps) accumulate roundoff over proportionally more steps"),
    # 4400 = 0.088 / 2e-5: the bound below at N = 128 as float32's atol (rtol becomes 0.44); past
    # 128 terms the table's own sqrt(N / 128) growth continues the same sqrt(N) law.  The scale:
    # the measured error is at most 0.15 * S of that bound (S = pre_activation_scale: 2.7 moderate,
    # 32 saturating), so S / 4 keeps a margin of 1.7; it grows up to 2.3 times from T = 1 to 16 and
    # not after (flat to T = 65), inside that margin, and past 16 steps the table's steps factor
    # adds its own sqrt(T / 16).  Only where a weight tensor can be quantized: smaller models are
    # the float32 model (their results bit-identical to tflite-keras) and keep the float32 row.
    Loosening("*-drq", "*", "float32", 4400.0,
              "dynamic-range quantization: int8 weights and int8 inputs per batch row, each rounded "
              "to half a step of max|v| / 127 (2**-8 of the range); a pre-activation sums N = D + P "
              "such products, whose independent roundings add up to about sqrt(N) * 2**-7 of its "
              "scale (0.088 at N = 128 for products of unit scale, where the table's growth with N "
              "takes over), passed on at most unchanged by sigmoid and tanh (slopes <= 1); the "
              "roundings are relative to the operands, so the bound grows with the pre-activations' "
              "scale S (tolerances.pre_activation_scale) as S / 4 past S = 4 (measured: at most 0.15 S "
              "of the unit bound for T up to 65, bench/drq_error.py); the cell state carries them "
              "over the steps (up to 2.3 times from T = 1 to 16, within that margin; past 16 steps the "
              "table's steps factor)",
              when=drq_quantizes, scale=lambda case: DRQ_SCALE_PER_UNIT * pre_activation_scale(case)),
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
              reduction: int | None = None, steps: int | None = None, case=None) -> tuple[Tolerance, list[str]]:
    """The tolerance for ``dtype`` after every matching loosening, and the reasons applied;
    ``reduction``: the longest gate pre-activation sum of the case (D + P of its widest layer),
    beyond ``REDUCTION_COVERED`` terms the tolerance grows by ``reduction_factor``; ``steps``: its
    number of steps, beyond ``STEPS_COVERED`` the tolerance grows by ``steps_factor``; ``case``:
    for the loosenings that depend on it (``Loosening.when``, ``Loosening.scale``)."""
    if dtype not in TOLERANCES:
        raise ValueError(f"dtype: expected one of {sorted(TOLERANCES)}, got {dtype!r}")
    tol, reasons = TOLERANCES[dtype], []
    for rule in LOOSENINGS:
        if (fnmatch.fnmatch(backend, rule.backend) and fnmatch.fnmatch(quantity, rule.quantity)
                and fnmatch.fnmatch(dtype, rule.dtype)):
            factor = rule.factor_for(case)
            if factor is None:
                continue
            tol = tol.scaled(factor)
            reasons.append(f"x{factor:.3g}: {rule.reason}")
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
                     steps=case.steps, case=case)
