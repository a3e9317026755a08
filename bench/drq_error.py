"""The error of dynamic-range quantization (backend tflite-keras-drq) against the number of steps:
prints, per structure, regime and sequence length T, the largest error of y, of the final h and
of the final c, each as a multiple of the drq tolerance *for one step* (the float32 row x the drq
loosening x the reduction factor, no steps factor).  Run in the litert env:

    .tox/litert/bin/python bench/drq_error.py [--seeds 3] [--steps 1,4,16,64,128]

Dynamic-range quantization computes its int8 weights from the values, so each case is converted
(a second or more); a converted model has a dynamic time axis, so one conversion per seed serves
every T (the weights come from the seed before the inputs: the same seed gives the same weights).
The fused op clips the cell state at 10 (the known issue of the tflite-keras backends): the
reference of a fused structure has that cell clip, so that only the quantization error is measured."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.reference_adapter import reference_output  # noqa: E402
from conformance.harness.known_issues import TFLITE_KERAS_CELL_CLIP  # noqa: E402
from conformance.harness.strategies import build_case  # noqa: E402
from conformance.harness.compare import compare  # noqa: E402
from conformance.harness.tolerances import (LOOSENINGS, TOLERANCES, pre_activation_scale,  # noqa: E402
                                            reduction_factor, reduction_of)
from reference import LSTMSpec  # noqa: E402

#: (label, B, D, H, lengths?) : the fused op (no lengths) and the WHILE loop (lengths, one empty).
STRUCTURES = [("fused D=129 H=8", 2, 129, 8, False), ("WHILE D=129 H=8", 2, 129, 8, True),
              ("fused D=H=64", 4, 64, 64, False), ("WHILE D=H=64", 4, 64, 64, True),
              ("fused D=32 H=128", 2, 32, 128, False)]


def per_step_tolerance(case):
    factor = next(r.factor for r in LOOSENINGS if r.backend == "*-drq")
    tol = TOLERANCES["float32"].scaled(factor * reduction_factor(reduction_of(case)))
    return tol


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", default="1,4,16,64,128")
    parser.add_argument("--regimes", default="saturating,accumulating,moderate")
    args = parser.parse_args()
    from adapters.tflite_adapter import TFLiteKerasDRQAdapter

    adapter = TFLiteKerasDRQAdapter()
    steps = [int(s) for s in args.steps.split(",")]
    print(f"{'structure':18} {'regime':12} {'T':>4} {'y':>6} {'h_T':>6} {'c_T':>6}  (max over seeds, x the one-step "
          f"drq tolerance)  c_T / sqrt(T)")
    for label, b, d, h, with_lengths in STRUCTURES:
        for regime in args.regimes.split(","):
            for t in steps:
                worst = [0.0, 0.0, 0.0, 0.0, 0.0]
                for seed in range(args.seeds):
                    lengths = None
                    if with_lengths:
                        lengths = np.full(b, t, np.int64)
                        lengths[0] = 0
                    spec = LSTMSpec(length_semantics="repeat") if with_lengths else LSTMSpec()
                    case = build_case(np.random.default_rng(seed), spec, b, t, d, h, regime=regime,
                                      initial_state=True, lengths=lengths)
                    out = adapter.run(case)
                    clipped = case if with_lengths else case.replace(spec=spec.replace(cell_clip=TFLITE_KERAS_CELL_CLIP))
                    assert ("WHILE" in out.produced) == with_lengths, out.produced
                    expected = reference_output(clipped)
                    tol = per_step_tolerance(case)
                    (hh, cc), (eh, ec) = out.final[0], expected.final[0]
                    pairs = (("y", out.y, expected.y), ("h", hh, eh), ("c", cc, ec))
                    ratios = tuple(compare(k, a, e, tol).ratio for k, a, e in pairs)
                    for k, r in enumerate(ratios):
                        worst[k] = max(worst[k], r)
                    scale = pre_activation_scale(case)
                    worst[3] = max(worst[3], scale)
                    worst[4] = max(worst[4], max(ratios) / max(1.0, scale))
                print(f"{label:18} {regime:12} {t:>4} {worst[0]:6.3f} {worst[1]:6.3f} {worst[2]:6.3f}  "
                      f"{worst[2] / math.sqrt(t):6.3f}  scale {worst[3]:6.2f}  max/scale {worst[4]:6.3f}", flush=True)


if __name__ == "__main__":
    main()
