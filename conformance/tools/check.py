"""Check a native LSTM callable against the reference under a claimed convention.

    python -m conformance check MODULE:ATTR --gate-order ORDER [--forget-bias F]
        [--kernel-layout D,4H|4H,D] [--recurrent-layout H,4H|4H,H]
        [--recurrent-activation sigmoid|hard_sigmoid|hard_sigmoid_keras2] [--activation tanh|relu|linear]
        [--packing gate-major|unit-major]
        [--max-examples N] [--max-size N] [--seed S] [--dtype float32|float64|float16] [--property NAME ...]
        [--json]

The callable follows the native-function contract (``adapters.callable_adapter``).  It is wrapped
in an adapter that packs the weights in the claimed convention (``CallableAdapter``), and the
suite's own properties run on it through the suite's own engine (``conformance.harness.engine``):
the same drawn cases (weights asymmetric across gates, shapes down to 1, three value regimes:
moderate, saturating, and accumulating with |c| well beyond 3), the same comparisons and
tolerance table (``--dtype``), the same shrinking to a minimal counterexample, the same failure
reports and the same result rows.  A property added to the suite reaches ``check`` by itself.

Every property a bare callable can express runs: one forward layer with a zero or a given state,
greedy decoding and streaming with the returned state fed back, state transfer, a run-time forget
bias and a second bias (folded into the one bias: the callable must add exactly its claimed
forget bias), long sequences, random combinations, and ``scale``: every example at sizes past the
boundaries where kernels switch code paths.  One example in four of the other properties is drawn
at scale too: input and hidden sizes and batches up to ``--max-size`` (default 33: past 8, 16 and
32 lanes), steps up to twice that (default 65).  The others (lengths, directions, stacks,
peepholes, clips, projection, other activations and dtypes) are listed as not applicable.

Exit 0 when every property holds, 1 with the minimal counterexample Hypothesis shrank to, 3 when
the callable cannot be loaded or an option is invalid.  The same ``--seed`` draws the same cases;
a failure report ends with the command that reruns exactly that property.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from adapters.base import Unsupported
from adapters.callable_adapter import (DEFAULT_TIMEOUT, DTYPES, KERNEL_LAYOUTS, RECURRENT_LAYOUTS, CallableAdapter,
                                       CallableHung, Convention)
from reference.activations import ACTIVATIONS, RECURRENT_ACTIVATIONS
from reference.layout import GATE_PACKINGS

from .native import answer, load_callable

# Hypothesis and the harness are imported where they are used, so that building the command line
# (every subcommand's options) does not need Hypothesis installed.

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 3
#: Seconds between progress lines of one property.
PROGRESS_EVERY = 2.0
#: The default --max-size: past SIMD widths of 8, 16 and 32 lanes.
DEFAULT_MAX_SIZE = 33


def size_plan(max_size: int):
    """check's SizePlan: one example in 4 at scale, sizes and batches up to ``max_size``, steps up
    to twice that; the work of an example (B T 4H (D+P)) grows with max_size squared from 1e7
    multiply-adds (about 0.03 s for the reference) at the default."""
    from conformance.harness.strategies import SizePlan

    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise ValueError(f"max_size: expected a positive int, got {max_size!r}")
    return SizePlan(share=4, max_size=max_size, max_batch=max_size, max_steps=2 * max_size - 1,
                    max_work=1e7 * max(1.0, max_size / DEFAULT_MAX_SIZE) ** 2)


@dataclass
class CheckReport:
    convention: Convention
    dtype: str
    seed: int
    max_examples: int
    rows: list[dict] = field(default_factory=list)  # the suite's result rows, one per property run
    not_applicable: dict[str, str] = field(default_factory=dict)  # property -> what the callable lacks
    not_run: list[str] = field(default_factory=list)  # properties left after the callable hung
    hint: str = ""  # a near-miss convention that fits (see check's hint_for)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r["status"] == "pass" for r in self.rows)

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.ok else EXIT_FAIL

    def to_dict(self) -> dict:
        return {"conforms": self.ok, "convention": self.convention.to_dict(), "dtype": self.dtype,
                "seed": self.seed, "max_examples": self.max_examples,
                "properties": {r["property"]: r for r in self.rows}, "not_applicable": self.not_applicable,
                "not_run": self.not_run, "hint": self.hint or None}


def settings(max_examples: int) -> dict:
    """check's Hypothesis settings: seeded (not derandomized), quiet, no example database."""
    from hypothesis import HealthCheck, Verbosity

    return dict(max_examples=max_examples, deadline=None, database=None, derandomize=False,
                report_multiple_bugs=False, print_blob=False, verbosity=Verbosity.quiet,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


def check(fn, convention: Convention, *, max_examples: int = 100, seed: int = 0, dtype: str = "float32",
          only: list[str] | None = None, progress=None, target: str = "callable",
          timeout: float | None = DEFAULT_TIMEOUT, max_size: int = DEFAULT_MAX_SIZE) -> CheckReport:
    """Run every property the callable can express (or those in ``only``) through the suite's
    engine, with examples at scale up to ``max_size`` (:func:`size_plan`); ``progress(text)`` is
    called at each property and every ~2 s.  A call that does not return within its timeout
    (``timeout`` seconds plus the time of its work) fails that example, and the properties after
    it are not run (each could hang as long)."""
    from conformance.harness.engine import run_property
    from conformance.harness.properties import PROPERTIES
    from conformance.harness.results import Stats
    from conformance.harness.verdict import Mismatch, failure_report

    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples: expected a positive int, got {max_examples!r}")
    plan = size_plan(max_size)
    unknown = [n for n in only or [] if n not in PROPERTIES]
    if unknown:
        raise ValueError(f"property: expected names from {sorted(PROPERTIES)}, got {unknown}")
    rerun = (f"python -m conformance check {target} {convention.cli_options()} --dtype {dtype} "
             f"--seed {seed} --max-examples {max_examples}"
             + (f" --max-size {max_size}" if max_size != DEFAULT_MAX_SIZE else "") + " --property {property}")
    adapter = CallableAdapter(fn, convention, dtype=dtype, name=target, rerun=rerun, timeout=timeout)
    report = CheckReport(convention, dtype, seed, max_examples)
    names = only or list(PROPERTIES)
    for position, name in enumerate(names):
        lacking = PROPERTIES[name].requires(adapter.capabilities)
        if lacking:
            report.not_applicable[name] = ", ".join(lacking)
            if only:  # asked for by name: say so in the results
                report.rows.append(Stats().row(name, "unsupported", f"{target} cannot express {name}: "
                                                                    f"lacks {report.not_applicable[name]}"))
            continue
        stats = Stats()
        start = last = time.perf_counter()

        def tick(stats, name=name):
            nonlocal last
            now = time.perf_counter()
            if progress and now - last > PROGRESS_EVERY:
                last = now
                progress(f"  {name}: {stats.examples} examples, {now - start:.1f} s")

        if progress:
            progress(f"{name}: up to {max_examples} examples")
        try:
            run_property(name, adapter, stats=stats, seed=seed, on_example=tick, sizes=plan,
                         **settings(max_examples))
        except Unsupported as exc:
            report.rows.append(stats.row(name, "unsupported", str(exc)))
        except Mismatch as exc:
            report.rows.append(stats.row(name, "fail", str(exc), cause=exc.cause))
        except CallableHung as exc:
            report.rows.append(stats.row(name, "fail", failure_report(adapter, exc.case, name, [str(exc)]),
                                         cause=str(exc)))
            report.not_run = [n for n in names[position + 1:] if n not in report.not_applicable]
            break
        except Exception as exc:  # Hypothesis' own errors (e.g. a flaky callable), with the reason
            report.rows.append(stats.row(name, "fail", f"{type(exc).__name__}: {exc}",
                                         cause=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
        else:
            report.rows.append(stats.row(name, "pass"))
    return report


def hint_for(fn, claimed: Convention, dtype: str) -> str:
    """When the claim fails: what ``detect`` finds, if it finds one other convention that fits
    every probe (a Keras 2 user who claims hard_sigmoid means hard_sigmoid_keras2; a TF1 port
    claimed without its forget bias, ...)."""
    from .detect import detect

    try:
        found = detect(fn, dtype=dtype)
    except (ValueError, CallableHung):
        return ""
    if found.status != "unique" or found.best is None:
        return ""
    conv = found.best.convention
    if conv == claimed:
        return ""
    changed = [f"{key.replace('_', ' ')} {getattr(conv, key)} (claimed {getattr(claimed, key)})"
               for key in ("gate_order", "kernel_layout", "recurrent_layout", "forget_bias",
                           "recurrent_activation", "activation") if getattr(conv, key) != getattr(claimed, key)]
    return (f"detect finds a convention that fits every probe: {'; '.join(changed)}; check it with "
            f"{conv.cli_options()}")


# ------------------------------------------------------------------------------------------
# Command line

def add_arguments(parser) -> None:
    parser.add_argument("callable", metavar="MODULE:ATTR",
                        help="the LSTM callable (x, h0, c0, kernel, recurrent_kernel, bias) -> (y, h_T, c_T)")
    parser.add_argument("--gate-order", required=True, metavar="ORDER",
                        help="the claimed gate order: a permutation of ifgo or a preset "
                             "(torch, tf, cntk, onnx, ...)")
    parser.add_argument("--forget-bias", type=float, default=0.0, metavar="F",
                        help="run-time forget bias the callable adds (TF1 LSTMCell: 1; default 0)")
    parser.add_argument("--kernel-layout", default="D,4H", metavar="L",
                        help=f"one of {', '.join(KERNEL_LAYOUTS)} (default D,4H)")
    parser.add_argument("--recurrent-layout", default="H,4H", metavar="L",
                        help=f"one of {', '.join(RECURRENT_LAYOUTS)} (default H,4H)")
    parser.add_argument("--recurrent-activation", default="sigmoid", choices=sorted(RECURRENT_ACTIVATIONS),
                        help="activation of the i, f, o gates (default sigmoid)")
    parser.add_argument("--activation", default="tanh", choices=sorted(ACTIVATIONS),
                        help="activation of the candidate and of the cell state before the output gate "
                             "(default tanh)")
    parser.add_argument("--packing", default="gate-major", choices=GATE_PACKINGS,
                        help="how the 4H axes hold the gates: gate-major (four blocks of H, the gate order "
                             "names the blocks; default) or unit-major (H groups of four, the gate order "
                             "names the four of each unit: Chainer's F.lstm, --gate-order chainer)")
    parser.add_argument("--max-examples", type=int, default=100, metavar="N",
                        help="Hypothesis examples per property (default 100)")
    parser.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE, metavar="N",
                        help=f"the largest input size, hidden size and batch drawn at scale, steps up to 2N-1 "
                             f"(default {DEFAULT_MAX_SIZE}: past 8, 16 and 32 lanes)")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES,
                        help="dtype of the arrays passed and of the tolerance (default float32)")
    parser.add_argument("--property", action="append", dest="properties", metavar="NAME",
                        help="run only this property (repeatable; the suite's property names)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"a call that has not returned after SECONDS plus the time of its work (at 1e8 "
                             f"multiply-adds per second) fails its example, and the rest is not run "
                             f"(default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--no-hint", dest="hint", action="store_false",
                        help="on a failure, do not look for a near-miss convention that fits (detect)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")


def run(args) -> int:
    try:
        convention = Convention(args.gate_order, args.kernel_layout, args.recurrent_layout, args.forget_bias,
                                args.recurrent_activation, args.activation, args.packing)
        fn = load_callable(args.callable)
    except ValueError as exc:
        print(f"error: {exc}")
        return EXIT_ERROR

    def progress(text):
        print(text, file=sys.stderr, flush=True)

    print(f"check {args.callable}: {convention.describe()}; {args.dtype}, seed {args.seed}, "
          f"up to {args.max_examples} examples per property, sizes up to {args.max_size}",
          file=sys.stderr if args.json else sys.stdout)
    if args.timeout is not None and not args.timeout > 0:
        print(f"error: --timeout: expected a positive number of seconds, got {args.timeout}")
        return EXIT_ERROR
    try:
        report = check(fn, convention, max_examples=args.max_examples, seed=args.seed, dtype=args.dtype,
                       only=args.properties, progress=progress, target=args.callable, timeout=args.timeout,
                       max_size=args.max_size)
    except ValueError as exc:
        print(f"error: {exc}")
        return EXIT_ERROR
    if not report.ok and args.hint and not report.not_run:
        report.hint = hint_for(fn, convention, args.dtype)
    status = answer(args, report, render(report))
    if report.not_run:  # a call of the callable hung and may still be running: do not wait for it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def render(report: CheckReport) -> str:
    width = max([len(r["property"]) for r in report.rows] + [15])
    lines = []
    for r in report.rows:
        if r["status"] == "fail":  # what failed: how far off, a NaN, an exception, a hang
            what = r.get("cause", "")
        else:
            what = f"max abs err {r['max_abs_error']:.2g}"
        lines.append(f"  {r['property']:<{width}} {r['status'].upper():<11} {r['examples']:>4} examples  "
                     f"{r['seconds']:6.2f} s  {what}")
    if report.not_run:
        lines.append(f"  not run, after the callable hung ({len(report.not_run)}): " + ", ".join(report.not_run))
    if report.not_applicable:
        lines.append(f"  not applicable to a bare callable ({len(report.not_applicable)}): "
                     + ", ".join(sorted(report.not_applicable)))
    for r in report.rows:
        if r["status"] == "fail":
            lines.append(f"\n{r['property']} FAILED: minimal counterexample\n" + _indent(r.get("message", "")))
    verdict = ("conforms" if report.ok else "DOES NOT CONFORM") + " to " + report.convention.describe()
    lines.append(f"verdict: {verdict}")
    if report.hint:
        lines.append(f"hint: {report.hint}")
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
