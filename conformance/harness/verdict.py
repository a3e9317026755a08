"""The verdict on one example: a framework's outputs (or gradients) against the reference's, and
the failure report when they differ.

A failure raises :class:`Mismatch` whose message says, for the suite and for ``check`` alike:
which property failed on which backend; the counterexample (shapes, state, value regime and the
seed that regenerates the values); every output over the tolerance with its max abs and relative
error and the worst index; the first diverging time step and the error of y by time step; the
tolerance and every loosening applied; the input values when they are few; how to rerun it.
"""

from __future__ import annotations

import numpy as np

from adapters.base import Adapter, Case, Output
from adapters.reference_adapter import reference_output

from .compare import Comparison, compare
from .results import Stats
from .tolerances import case_tolerance

#: Input values are printed in a failure report when they hold at most this many numbers.
SMALL = 120
#: The error of y is listed for at most this many time steps.
STEPS_SHOWN = 12


class Mismatch(AssertionError):
    """A framework computed something other than the reference (the message says what; ``cause``
    says it in one line: which output, how far off or which NaN, or the exception)."""

    def __init__(self, message: str, cause: str = ""):
        super().__init__(message)
        self.cause = cause or message.splitlines()[0]


def cause_of(failed: list[Comparison]) -> str:
    """One line for the first failed comparison: its problem, or how far off it is and from
    which time step."""
    c = failed[0]
    if c.problem:
        return f"{c.name}: {c.problem}"
    text = f"{c.name}: max abs err {c.max_abs:.3g} ({c.ratio:.3g} x the tolerance)"
    return text + (f", from t={c.first_bad_step}" if c.first_bad_step is not None else "")


def expected_for(adapter: Adapter, case: Case) -> Output:
    """What the reference computes for ``case``, reverse outputs in the adapter's time order."""
    return reference_output(case, reverse_time_order=adapter.capabilities.reverse_time_order)


def check_output(adapter: Adapter, case: Case, actual: Output, expected: Output, stats: Stats, *,
                 property_name: str, quantity: str = "forward", what: str = "") -> None:
    """Compare y and every final (h, c); record; raise Mismatch with a report on failure."""
    tol, reasons = case_tolerance(case, backend=adapter.name, quantity=quantity)
    if not isinstance(actual, Output):
        raise Mismatch(failure_header(adapter, case, property_name, what) +
                       f"\n  the adapter returned {type(actual).__name__}, expected an Output",
                       f"the adapter returned {type(actual).__name__}, expected an Output")
    comparisons = [compare("y", actual.y, expected.y, tol, time_axis=1)]
    if len(actual.final) != len(expected.final):
        comparisons.append(Comparison("final", False, np.inf, np.inf, None, None, ratio=np.inf,
                                      problem=f"{len(actual.final)} final states, expected {len(expected.final)}"))
    else:
        last = case.steps - 1
        for k, ((h, c), (eh, ec)) in enumerate(zip(actual.final, expected.final)):
            comparisons.append(compare(f"final[{k}].h", h, eh, tol, final_step=last))
            comparisons.append(compare(f"final[{k}].c", c, ec, tol, final_step=last))
    by_step = None
    if comparisons[0].problem is None and np.ndim(expected.y) == 3 and expected.y.size:
        with np.errstate(invalid="ignore"):
            err = np.abs(np.asarray(actual.y, np.float64) - expected.y)
        by_step = np.nan_to_num(err, nan=0.0).max(axis=(0, 2))
    stats.record(comparisons, tol, reasons, by_step)
    _note_sizes(stats, case)
    if actual.produced:
        stats.produced[actual.produced] = stats.produced.get(actual.produced, 0) + 1
    failed = [c for c in comparisons if not c.ok]
    if failed:
        lines = [failure_header(adapter, case, property_name, what)]
        if actual.produced:
            lines.append(f"  the backend ran: {actual.produced}")
        lines += ["  " + c.describe() for c in failed]
        steps = [c.first_bad_step for c in failed if c.first_bad_step is not None]
        if steps:
            lines.append(f"  first diverging time step: t={min(steps)} (of {case.steps})")
        if by_step is not None and case.steps > 1:
            shown = ", ".join(f"t={t}: {e:.3g}" for t, e in enumerate(by_step[:STEPS_SHOWN]))
            lines.append(f"  max abs error of y by time step: {shown}" + (" ..." if case.steps > STEPS_SHOWN else ""))
        lines += _tolerance_lines(tol, reasons)
        lines += _values(adapter, case, {"expected y": expected.y, "actual y": actual.y})
        lines.append(_rerun(adapter, property_name))
        raise Mismatch("\n".join(lines), cause_of(failed))


def check_gradients(adapter: Adapter, case: Case, actual: dict, expected: dict, stats: Stats, *,
                    property_name: str) -> None:
    """Compare every gradient the reference has (keyed like ``reference.lstm_backward``)."""
    tol, reasons = case_tolerance(case, backend=adapter.name, quantity="gradients")
    comparisons = []
    for key, value in expected.items():
        if key not in actual:
            comparisons.append(Comparison(f"d{key}", False, np.inf, np.inf, None, None, ratio=np.inf,
                                          problem="missing from the adapter's gradients"))
        else:
            comparisons.append(compare(f"d{key}", actual[key], value, tol,
                                       time_axis=1 if key == "x" else None))
    stats.record(comparisons, tol, reasons)
    _note_sizes(stats, case)
    failed = [c for c in comparisons if not c.ok]
    if failed:
        lines = [failure_header(adapter, case, property_name)] + ["  " + c.describe() for c in failed]
        lines += _tolerance_lines(tol, reasons)
        lines += _values(adapter, case, {})
        lines.append(_rerun(adapter, property_name))
        raise Mismatch("\n".join(lines), cause_of(failed))


def failure_report(adapter: Adapter, case: Case, property_name: str, lines: list[str]) -> str:
    """A failure report that is not a comparison (the callable hung, raised): the header with
    the counterexample, ``lines``, the inputs when they are few, and the rerun command."""
    return "\n".join([failure_header(adapter, case, property_name)] + [f"  {line}" for line in lines]
                     + _values(adapter, case, {}) + [_rerun(adapter, property_name)])


def counterexample(case: Case) -> str:
    """One line that says which example this is: shapes, state, regime and the value seed."""
    p = case.params
    state = "given (h0, c0)" if case.initial_state is not None else "zero state"
    text = (f"B={case.batch}, T={case.steps}, D={p.input_size}, H={p.hidden_size}")
    if p.output_size != p.hidden_size:
        text += f", P={p.output_size}"
    if len(case.layers) > 1 or case.direction != "forward":
        text += f", {len(case.layers)} layer(s) {case.direction}"
    text += f", {state}"
    if case.lengths is not None:
        text += f", lengths {case.lengths.tolist()}"
    origin = case.origin
    if "fixture" in origin:
        text += f", golden case {origin['fixture']!r}"
    if "regime" in origin:
        text += f", regime {origin['regime']!r}"
    if "seed" in origin:
        text += f", value seed {origin['seed']}"
    return text


def failure_header(adapter: Adapter, case: Case, property_name: str, what: str = "") -> str:
    return (f"property {property_name!r} failed on backend {adapter.name!r} ({adapter.identity()})"
            + (f" ({what})" if what else "")
            + f"\n  counterexample: {counterexample(case)}\n  case: {case!r}")


def _note_sizes(stats: Stats, case: Case) -> None:
    first = case.layers[0][0]
    stats.note_sizes(batch=case.batch, steps=case.steps, input_size=first.input_size,
                     hidden_size=first.hidden_size)
    stats.at_scale += bool(case.origin.get("at_scale"))


def _tolerance_lines(tol, reasons) -> list[str]:
    return [f"  tolerance: rtol={tol.rtol:g} atol={tol.atol:g}" + "".join(f"\n    loosened {r}" for r in reasons)]


def _values(adapter: Adapter, case: Case, outputs: dict) -> list[str]:
    """The inputs as the adapter passes them (and the outputs), when they are few numbers."""
    label, arrays = adapter.report_inputs(case)
    arrays = {**arrays, **outputs}
    if sum(np.size(a) for a in arrays.values()) > SMALL or case.steps > STEPS_SHOWN:
        return ["  (the values regenerate from the value seed and regime: conformance.harness.strategies; "
                "or rerun the command below)"]
    lines = [f"  values ({label}):"]
    for name, a in arrays.items():
        text = np.array2string(np.asarray(a, np.float64), precision=6, separator=", ",
                               max_line_width=100, floatmode="maxprec")
        lines.append(f"    {name} {np.shape(a)} = " + text.replace("\n", "\n      "))
    return lines


def _rerun(adapter: Adapter, property_name: str) -> str:
    return "  rerun: " + adapter.rerun_command(property_name)
