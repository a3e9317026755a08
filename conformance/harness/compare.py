"""Elementwise comparison of a framework's arrays with the reference's, and its report.

Errors are reported as max abs error, max relative error (over the elements whose expected
magnitude exceeds atol: below it a relative error says nothing), the error relative to the tolerance
(``Comparison.ratio``, <= 1 passes), the index where the excess over the tolerance is largest,
and the first time step where any element exceeds the tolerance.

NaN and Inf, the same everywhere in the project: a NaN where the expected value has a NaN, or an
infinity equal to the expected one, is exact (error 0); a NaN or an infinity anywhere else, or a
shape that differs, is infinitely far (ratio inf).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tolerances import Tolerance


@dataclass
class Comparison:
    name: str
    ok: bool
    max_abs: float
    max_rel: float
    worst_index: tuple | None
    first_bad_step: int | None
    expected_at_worst: float | None = None
    actual_at_worst: float | None = None
    problem: str | None = None  # shape or NaN-pattern mismatch
    ratio: float = 0.0  # max |actual - expected| / (atol + rtol |expected|); <= 1 passes

    def describe(self) -> str:
        if self.problem:
            return f"{self.name}: {self.problem}"
        text = f"{self.name}: max abs err {self.max_abs:.3g}, max rel err {self.max_rel:.3g}"
        if not self.ok:
            text += (f"; worst at index {self.worst_index} (expected {self.expected_at_worst!r}, "
                     f"got {self.actual_at_worst!r})")
            if self.first_bad_step is not None:
                text += f"; first time step over tolerance: t={self.first_bad_step}"
        return text


def compare(name: str, actual, expected, tol: Tolerance, *, time_axis: int | None = None,
            final_step: int | None = None) -> Comparison:
    """Compare arrays; ``time_axis`` locates the first bad step (``final_step`` for a final state)."""
    expected = np.asarray(expected, dtype=np.float64)
    try:
        actual = np.asarray(actual, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return Comparison(name, False, np.inf, np.inf, None, None, problem=f"not a numeric array ({exc})",
                          ratio=np.inf)
    if actual.shape != expected.shape:
        return Comparison(name, False, np.inf, np.inf, None, None,
                          problem=f"shape {actual.shape}, expected {expected.shape}", ratio=np.inf)
    if expected.size == 0:
        return Comparison(name, True, 0.0, 0.0, None, None)
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    if (nan_a != nan_e).any():
        where = tuple(int(i) for i in np.argwhere(nan_a != nan_e)[0])
        step = where[time_axis] if time_axis is not None else final_step
        return Comparison(name, False, np.inf, np.inf, where, step, float(expected[where]), float(actual[where]),
                          problem=f"NaN positions differ (first at index {where}: expected "
                                  f"{float(expected[where])!r}, got {float(actual[where])!r})", ratio=np.inf)
    diff, bound = _errors(actual, expected, nan_e, tol)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        # Relative errors only where they mean something: where |expected| exceeds atol (below it,
        # the absolute error is what the tolerance bounds, and x / 1e-300 would say nothing).
        meaningful = np.abs(np.where(nan_e, 0.0, expected)) > tol.atol
        rel = np.where(meaningful & (diff > 0), diff / np.where(meaningful, np.abs(expected), 1.0), 0.0)
        excess = diff - bound
        ratio = float(np.max(diff / bound))
    bad = excess > 0
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), excess.shape))
    first_bad = None
    if bad.any():
        if time_axis is not None:
            first_bad = int(np.argwhere(bad.any(axis=tuple(a for a in range(bad.ndim) if a != time_axis)))[0][0])
        else:
            first_bad = final_step
    return Comparison(name, not bad.any(), float(diff.max()), float(rel.max()), worst, first_bad,
                      float(expected[worst]), float(actual[worst]), ratio=ratio)


def _errors(actual: np.ndarray, expected: np.ndarray, nan_e: np.ndarray, tol: Tolerance):
    """|actual - expected| (0 where both are NaN or the same infinity) and atol + rtol |expected|."""
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(nan_e, 0.0, np.abs(actual - expected))
        diff = np.where(np.isinf(expected) & (actual == expected), 0.0, diff)
    bound = tol.atol + tol.rtol * np.abs(np.where(nan_e | np.isinf(expected), 0.0, expected))
    return diff, bound

