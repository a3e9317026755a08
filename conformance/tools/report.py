"""The conformance matrix and the regression gate: ``python -m conformance report [RESULTS_DIR] [options]``.

Reads the result files each tox env writes (``results/<backend>.json``, docs/results-format.md)
and prints a terminal table, property x backend, one status letter a cell; ``--markdown FILE``
writes the matrix for a CI job summary; ``--html FILE`` a self-contained page (heat maps whose
cells link to their details, run metadata, the error against the time step; see
``conformance.tools.report_html``).

With ``--baseline DIR`` (a previous results directory, e.g. the checked-in
``fixtures/baseline-results``) it is the regression gate (``conformance.tools.gate``): it fails,
naming the backend and the property, on a result file that went missing, a property or golden
case that passed and is now missing, unsupported or failing, fewer examples than the baseline
ran, a framework version that changed (unless ``--accept-version-change``), golden-fixture
outputs that drifted beyond the tolerance, and (with ``--strict`` or LSTM_CONFORMANCE_STRICT=1,
as CI sets) a backend that is not set up.  It prints the drift of every backend's golden-fixture
outputs from the baseline's, within tolerance too.  Without a baseline, any failure fails.
``--save-baseline DIR`` copies the results (JSON files and fixture outputs) to DIR, to refresh a
checked-in baseline.

Exit status: 0 no regression (without a baseline: no failure); 1 regressions (failures); 3 no
result file, an unreadable one, or a bad argument.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from ..harness.results import ResultFile
from . import gate as regression_gate
from .matrix import (LEGEND, LETTERS, SIZE_KEYS, ReportError, counts_text, display_name, load_results, produced,
                     property_names, shorten, sizes_reached)
from .report_html import html_page

EXIT_OK, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 3
MD_CELLS = {"pass": "✅", "fail": "❌ **fail**", "unsupported": "➖", "expected-failure": "⚠️ known",
            "not-set-up": "⏸ not set up", None: "·"}


# --------------------------------------------------------------------------------------------
# Terminal

def terminal_table(results: list[ResultFile], width: int = 120) -> str:
    lines = []
    names = property_names(results)
    label_w = max([len(n) for n in names] + [len("golden fixtures"), 8])
    fixture_cells = {r.backend: _fixture_cell(r) for r in results}

    def column(r):
        return max(len(r.backend), len(r.version), len(fixture_cells[r.backend]), 3)

    blocks, block, used = [], [], label_w + 2
    for r in results:
        w = column(r) + 2
        if block and used + w > width:
            blocks.append(block)
            block, used = [], label_w + 2
        block.append(r)
        used += w
    if block:
        blocks.append(block)
    for block in blocks:
        widths = [column(r) for r in block]
        lines.append(" " * label_w + "  " + "  ".join(r.backend.ljust(w) for r, w in zip(block, widths)))
        lines.append(" " * label_w + "  " + "  ".join(r.version[:w].ljust(w) for r, w in zip(block, widths)))
        for name in names:
            cells = [LETTERS[r.properties.get(name, {}).get("status")].center(w) for r, w in zip(block, widths)]
            lines.append(name.ljust(label_w) + "  " + "  ".join(cells).rstrip())
        if any(r.fixtures for r in block):
            cells = [fixture_cells[r.backend].center(w) for r, w in zip(block, widths)]
            lines.append("golden fixtures".ljust(label_w) + "  " + "  ".join(cells).rstrip())
        lines.append("")
    lines.append(LEGEND)
    lines.append("golden fixtures: how many pass (P), are unsupported (U), are known issues (X), fail (F)")
    lines.append("")
    for r in results:
        eps = r.examples_per_second()
        lines.append(f"{r.label}: {counts_text(r)}" + (f"; {eps:.0f} examples/s" if eps else "")
                     + (f"; golden fixtures {counts_text(r, 'fixtures')}" if r.fixtures else ""))
    return "\n".join(lines)


def _fixture_cell(r: ResultFile) -> str:
    """The golden fixtures of a backend in one cell: "28P 11U" (pass, unsupported, known X, fail F)."""
    if not r.fixtures:
        return "."
    c = r.counts("fixtures")
    return " ".join(f"{c[s]}{LETTERS[s]}" for s in ("pass", "unsupported", "expected-failure", "fail", "not-set-up")
                    if c[s])


# --------------------------------------------------------------------------------------------
# Markdown

def markdown(results: list[ResultFile], gate: regression_gate.Gate | None = None, baseline: str | None = None) -> str:
    out = ["# LSTM conformance matrix", ""]
    out.append("| backend | framework | API | gate order | properties | golden fixtures | examples/s | commit |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in results:
        eps = r.examples_per_second()
        out.append(f"| {r.backend} | {r.framework} {r.version} | `{r.adapter.get('api', '?')}` | "
                   f"{r.adapter.get('native_gate_order', '?')} | {counts_text(r)} | "
                   f"{counts_text(r, 'fixtures') if r.fixtures else '-'} | {f'{eps:.0f}' if eps else '-'} | "
                   f"{(r.run.get('commit') or '-')[:12]} |")
    out += ["", "| property | " + " | ".join(r.backend for r in results) + " |",
            "|---|" + "---|" * len(results)]
    for name in property_names(results):
        out.append(f"| {name} | " + " | ".join(MD_CELLS[r.properties.get(name, {}).get("status")]
                                              for r in results) + " |")
    out += ["", "✅ pass · ❌ fail · ➖ unsupported (the backend cannot express it) · "
                "⚠️ known: a documented non-conformance (expected failure) · ⏸ not set up on this machine · "
                "· not run", ""]
    fixture_names = property_names(results, "fixtures")
    if fixture_names:
        out += ["## Golden fixtures", "", "| fixture | " + " | ".join(r.backend for r in results) + " |",
                "|---|" + "---|" * len(results)]
        for name in fixture_names:
            out.append(f"| {display_name(name)} | " + " | ".join(MD_CELLS[r.fixtures.get(name, {}).get("status")]
                                                  for r in results) + " |")
        out.append("")
    if gate is not None:
        out += [f"## Regressions against {baseline or 'the baseline'}", ""]
        out += [f"- {g.line()}" for g in gate.regressions] or ["None."]
        out += [f"- note: {n}" for n in gate.notes]
        if gate.drift:
            out += ["", "### Drift of the golden-fixture outputs", ""] + [f"- {d.line()}" for d in gate.drift]
        out.append("")
    out += ["## Sizes reached and what ran", "",
            "| backend | largest D, H, B, T compared | comparisons at scale | what ran (compared outputs) |",
            "|---|---|---|---|"]
    for r in results:
        largest, at_scale = sizes_reached(r)
        ran = produced(r)
        out.append(f"| {r.backend} | {', '.join(str(largest[k]) for k in SIZE_KEYS)} | {at_scale} | "
                   f"{'; '.join(f'{what} ({n})' for what, n in ran.items()) or '-'} |")
    out.append("")
    problems = [(r, n, row) for r in results for n, row in sorted(r.properties.items())
                if row["status"] in ("fail", "expected-failure")]
    if problems:
        out += ["## Failures and known issues", ""]
        for r, n, row in problems:
            text = row.get("cause") or (row.get("message") or "").strip().split("\n")[0]
            out.append(f"- **{r.backend}** `{n}` ({row['status']}): {shorten(text, 400)}")
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Command line

def save_baseline(results_dir: Path, target: Path) -> None:
    """Copy the result JSON files and the fixture-outputs tree of ``results_dir`` to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for r in load_results(results_dir):
        shutil.copyfile(r.path, target / r.path.name)
    src = Path(results_dir) / "fixture-outputs"
    if src.is_dir():
        shutil.copytree(src, target / "fixture-outputs", dirs_exist_ok=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="?", default="results", type=Path,
                        help="the directory of <backend>.json result files (default: results)")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the Markdown matrix here")
    parser.add_argument("--html", type=Path, metavar="FILE", help="write the self-contained HTML page here")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="a previous results directory (e.g. fixtures/baseline-results): the regression "
                             "gate; exit 1 on a regression")
    parser.add_argument("--accept-version-change", action="store_true",
                        help="with --baseline: a framework version other than the baseline's is not a "
                             "regression (the drift is still reported and gated)")
    parser.add_argument("--example-margin", type=float, default=0.1, metavar="FRACTION",
                        help="with --baseline: how many fewer examples than the baseline ran count as lost "
                             "coverage (default 0.1: 10%%)")
    parser.add_argument("--strict", action="store_true",
                        default=os.environ.get("LSTM_CONFORMANCE_STRICT", "") not in ("", "0"),
                        help="with --baseline: a backend not set up on this machine is a regression "
                             "(default: $LSTM_CONFORMANCE_STRICT; CI sets it)")
    parser.add_argument("--save-baseline", type=Path, metavar="DIR",
                        help="copy the results (JSON and fixture outputs) to DIR as a new baseline")
    parser.add_argument("--width", type=int, default=shutil.get_terminal_size((120, 24)).columns,
                        help="terminal table width")


def run(args: argparse.Namespace) -> int:
    try:
        if not 0 <= args.example_margin < 1:
            raise ReportError(f"--example-margin: expected a fraction in [0, 1), got {args.example_margin}")
        results = load_results(args.results)
        if not results:
            raise ReportError(f"results directory {args.results}: no result file (<backend>.json); "
                              f"run a backend's tox env first, e.g. tox -e reference")
        gate = None
        if args.baseline is not None:
            if not Path(args.baseline).is_dir():
                raise ReportError(f"--baseline {args.baseline}: not a directory")
            gate = regression_gate.compare(results, load_results(args.baseline), Path(args.results),
                                           Path(args.baseline), accept_version_change=args.accept_version_change,
                                           example_margin=args.example_margin, strict=args.strict)
    except ReportError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(terminal_table(results, args.width))
    label = str(args.baseline) if args.baseline is not None else None
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(results, gate, label) + "\n")
        print(f"wrote {args.markdown}")
    if args.html:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(html_page(results, gate, label))
        print(f"wrote {args.html}")
    if args.save_baseline:
        save_baseline(Path(args.results), args.save_baseline)
        print(f"saved the results as a baseline in {args.save_baseline}")
    if gate is None:
        failed = [f"{r.backend} {display_name(n)}" for r in results for section in ("properties", "fixtures")
                  for n, row in getattr(r, section).items() if row["status"] == "fail"]
        if failed:
            print(f"\n{len(failed)} failure{'s' if len(failed) > 1 else ''} (no baseline: every failure "
                  f"counts): {', '.join(failed)}")
            return EXIT_REGRESSION
        return EXIT_OK
    if gate.drift:
        print("\ndrift of the golden-fixture outputs from the baseline:")
        for d in gate.drift:
            print(f"  {d.line()}")
    for note in gate.notes:
        print(f"note: {note}")
    if gate.regressions:
        print(f"\n{len(gate.regressions)} regression{'s' if len(gate.regressions) > 1 else ''} against the "
              f"baseline {args.baseline}:")
        for g in gate.regressions:
            print(f"  {g.line()}")
        return EXIT_REGRESSION
    print(f"\nno regression against the baseline {args.baseline}")
    return EXIT_OK
