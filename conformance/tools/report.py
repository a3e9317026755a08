"""The conformance matrix: ``python -m conformance report [RESULTS_DIR] [options]``.

Merges the result files each tox env writes (``results/<backend>.json``, see
``conformance/suite/conftest.py``) into

* a terminal table, property x backend, one status letter a cell (legend below it);
* a Markdown matrix (``--markdown FILE``), e.g. for a CI job summary;
* a self-contained HTML page (``--html FILE``: inline CSS and SVG, no external asset) with a
  backend x property heat map coloured by status and shaded by the error relative to the
  tolerance, the same for the golden fixtures, and plots of the max error against the time step
  per backend (``max_abs_error_by_step`` of long_sequence and forward_parity).

With ``--baseline DIR`` (a previous results directory, e.g. the checked-in
``fixtures/baseline-results``) it lists the regressions: a property or golden fixture that fails
now and did not fail in the baseline, and a backend's recorded fixture outputs
(``fixture-outputs/``) that moved beyond the tolerance from the baseline's recording; the exit
status is then 1 when there is any.  ``--fail-on-regression`` without a baseline treats every
failure as a regression.  ``--save-baseline DIR`` copies the results (JSON files and fixture
outputs) to DIR, to refresh a checked-in baseline.

Exit status: 0, 1 (regressions), 3 (no result file found, an unreadable one, or a bad argument).
"""

from __future__ import annotations

import argparse
import html
import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ..golden import drift, store
from ..harness.results import ResultFile, ResultFileError, ratio_of, read_result_file
from ..harness.tolerances import Tolerance

LETTERS = {"pass": "P", "fail": "F", "unsupported": "U", "expected-failure": "X", None: "."}
LEGEND = ("P pass   F fail   U unsupported (the backend cannot express it)   "
          "X expected failure (a documented known issue)   . not run")
MD_CELLS = {"pass": "✅", "fail": "❌ **fail**", "unsupported": "➖", "expected-failure": "⚠️ known",
            None: "·"}
_FIRST = ("forward_parity",)
_PLOTTED = ("long_sequence", "forward_parity")
# Line colours of the error plots (red last: it reads as "fail").
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
            "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173", "#d62728")


class ReportError(ValueError):
    """No usable result file, or an unreadable one."""


# --------------------------------------------------------------------------------------------
# Loading

def load_results(directory: Path) -> list[ResultFile]:
    """Every ``*.json`` result file in ``directory`` (sorted by backend), read by the one reader
    (``conformance.harness.results``); a file it cannot read is a ReportError naming it."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ReportError(f"results directory {directory}: not found (run tox, which writes "
                          f"results/<backend>.json, or give the directory)")
    results = []
    for path in sorted(directory.glob("*.json")):
        try:
            results.append(read_result_file(path))
        except ResultFileError as exc:
            raise ReportError(str(exc)) from None
    results.sort(key=lambda r: r.backend)
    return results


def property_names(results: list[ResultFile], section: str = "properties") -> list[str]:
    names = set()
    for r in results:
        names |= set(getattr(r, section))
    return [n for n in _FIRST if n in names] + sorted(names - set(_FIRST))


def display_name(name: str) -> str:
    """A property's name, or a golden case's name without the "golden_" of its result row."""
    return name[len("golden_"):] if name.startswith("golden_") else name


# --------------------------------------------------------------------------------------------
# Regressions against a baseline

@dataclass
class Regression:
    backend: str
    item: str
    kind: str  # "new failure", "drift"
    detail: str

    def line(self) -> str:
        return f"{self.backend} {self.item}: {self.kind}: {self.detail}"


def find_regressions(current: list[ResultFile], baseline: list[ResultFile] | None,
                     results_dir: Path, baseline_dir: Path | None) -> list[Regression]:
    """New failures (properties and fixtures) and fixture-output drift beyond tolerance."""
    base = {r.backend: r for r in (baseline or [])}
    out = []
    for r in current:
        before = base.get(r.backend)
        for section, what in (("properties", "property"), ("fixtures", "golden fixture")):
            for name, row in sorted(getattr(r, section).items()):
                if row.get("status") != "fail":
                    continue
                was = getattr(before, section).get(name, {}).get("status") if before else None
                if was != "fail":
                    first = (row.get("message") or "").strip().splitlines()[:1]
                    out.append(Regression(r.backend, f"{what} {display_name(name)}", "new failure",
                                          f"{was or 'absent'} in the baseline, fail now"
                                          + (f" ({first[0][:200]})" if first else "")))
        for name, row in sorted(r.fixtures.items()):
            for d in row.get("drift", []) or []:
                if d.get("beyond_tolerance"):
                    out.append(Regression(r.backend, f"golden fixture {display_name(name)}", "drift",
                                          f"{d['from_version']} -> {d['to_version']}: max abs "
                                          f"{_fmt(d['max_abs'])}, {_fmt(d['ratio'])} x tolerance"
                                          + (f" ({d['note']})" if d.get("note") else "")))
    if baseline_dir is not None:
        out += recorded_drift(current, results_dir, baseline_dir)
    return out


def recorded_drift(current: list[ResultFile], results_dir: Path, baseline_dir: Path) -> list[Regression]:
    """Compare each backend's recorded fixture outputs (this version) with the baseline's
    recordings of the same backend (any version) on the same fixture digest."""
    out = []
    now_root = drift.recordings_root(results_dir)
    base_root = drift.recordings_root(baseline_dir)
    for r in current:
        now_dir = drift.recording_dir(now_root, r.backend, r.version)
        base_backend = drift.backend_dir(base_root, r.backend)
        if not now_dir.is_dir() or not base_backend.is_dir():
            continue
        for side_path in sorted(now_dir.glob("*.json")):
            side = json.loads(side_path.read_text())
            name = side_path.stem
            worst = None
            for version_dir in sorted(p for p in base_backend.iterdir() if p.is_dir()):
                base_side_path = version_dir / f"{name}.json"
                if not base_side_path.is_file() or not (version_dir / f"{name}.npz").is_file():
                    continue
                base_side = json.loads(base_side_path.read_text())
                if base_side.get("fixture_sha256") != side.get("fixture_sha256"):
                    continue
                tol = Tolerance(**side["tolerance"])
                max_abs, ratio = drift.drift_between(store.load_npz(version_dir / f"{name}.npz"),
                                                     store.load_npz(now_dir / f"{name}.npz"), tol)
                if not ratio <= 1.0 and (worst is None or ratio > worst[1]):
                    worst = (max_abs, ratio, base_side.get("version", version_dir.name))
            if worst is not None:
                out.append(Regression(r.backend, f"golden fixture {name}", "drift",
                                      f"outputs of {r.version} differ from the baseline's {worst[2]} by "
                                      f"max abs {worst[0]:.3g}, {worst[1]:.3g} x tolerance"))
    return out


# --------------------------------------------------------------------------------------------
# Terminal

def terminal_table(results: list[ResultFile], width: int = 120) -> str:
    lines = []
    names = property_names(results)
    label_w = max([len(n) for n in names] + [len("golden fixtures"), 8])
    blocks, block, used = [], [], label_w + 2
    for r in results:
        w = max(len(r.backend), len(r.version), 3) + 2
        if block and used + w > width:
            blocks.append(block)
            block, used = [], label_w + 2
        block.append(r)
        used += w
    if block:
        blocks.append(block)
    for block in blocks:
        widths = [max(len(r.backend), len(r.version), 3) for r in block]
        lines.append(" " * label_w + "  " + "  ".join(r.backend.ljust(w) for r, w in zip(block, widths)))
        lines.append(" " * label_w + "  " + "  ".join(r.version[:w].ljust(w) for r, w in zip(block, widths)))
        for name in names:
            cells = [LETTERS.get(r.properties.get(name, {}).get("status")).center(w) for r, w in zip(block, widths)]
            lines.append(name.ljust(label_w) + "  " + "  ".join(cells).rstrip())
        if any(r.fixtures for r in block):
            cells = []
            for r, w in zip(block, widths):
                c = r.counts("fixtures")
                text = f"{c['pass']}/{len(r.fixtures)}" if r.fixtures else "."
                if c["fail"]:
                    text = f"{c['fail']}F"
                cells.append(text.center(w))
            lines.append("golden fixtures".ljust(label_w) + "  " + "  ".join(cells).rstrip())
        lines.append("")
    lines.append(LEGEND)
    lines.append("golden fixtures: passed/total, or the number failed (F)")
    lines.append("")
    for r in results:
        c = r.counts()
        eps = r.examples_per_second()
        lines.append(f"{r.label}: {c['pass']} pass, {c['fail']} fail, {c['unsupported']} unsupported, "
                     f"{c['expected-failure']} known issues"
                     + (f"; {eps:.0f} examples/s" if eps else ""))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Markdown

def markdown(results: list[ResultFile], regressions: list[Regression] | None = None,
             baseline: str | None = None) -> str:
    out = ["# LSTM conformance matrix", ""]
    out.append("| backend | framework | API | gate order | pass | fail | unsupported | known issues | examples/s |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        c, a = r.counts(), r.adapter
        eps = r.examples_per_second()
        out.append(f"| {r.backend} | {r.framework} {r.version} | `{a.get('api', '?')}` | "
                   f"{a.get('native_gate_order', '?')} | {c['pass']} | {c['fail']} | {c['unsupported']} | "
                   f"{c['expected-failure']} | {f'{eps:.0f}' if eps else '-'} |")
    out += ["", "| property | " + " | ".join(r.backend for r in results) + " |",
            "|---|" + "---|" * len(results)]
    for name in property_names(results):
        out.append(f"| {name} | " + " | ".join(MD_CELLS[r.properties.get(name, {}).get("status")]
                                              for r in results) + " |")
    out += ["", "✅ pass · ❌ fail · ➖ unsupported (the backend cannot express it) · "
                "⚠️ known: a documented non-conformance (expected failure) · · not run", ""]
    fixture_names = property_names(results, "fixtures")
    if fixture_names:
        out += ["## Golden fixtures", "", "| fixture | " + " | ".join(r.backend for r in results) + " |",
                "|---|" + "---|" * len(results)]
        for name in fixture_names:
            out.append(f"| {display_name(name)} | " + " | ".join(MD_CELLS[r.fixtures.get(name, {}).get("status")]
                                                  for r in results) + " |")
        out.append("")
    if regressions is not None:
        out += [f"## Regressions against {baseline or 'no baseline'}", ""]
        out += [f"- {g.line()}" for g in regressions] or ["None."]
        out.append("")
    problems = [(r, n, row) for r in results for n, row in sorted(r.properties.items())
                if row.get("status") in ("fail", "expected-failure")]
    if problems:
        out += ["## Failures and known issues", ""]
        for r, n, row in problems:
            first = (row.get("message") or "").strip().splitlines()
            out.append(f"- **{r.backend}** `{n}` ({row['status']}): {first[0][:300] if first else ''}")
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#1b1f23;
background:#fff;max-width:1400px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
p.sub{color:#57606a;margin:0 0 16px}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.fail{color:#b31d28;font-weight:600}.ok{color:#1a7f37}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:13px;margin:8px 0}
.legend span.sw{display:inline-block;width:14px;height:14px;border:1px solid #888;vertical-align:middle;margin-right:4px}
details{margin:4px 0}summary{cursor:pointer}pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:12px;
white-space:pre-wrap}
.regressions li{color:#b31d28}
"""


def _status_fill(status: str | None, ratio: float | None) -> str:
    """Colour by status, shaded by the error relative to the tolerance (log scale, 1e-4 .. 1)."""
    if status is None:
        return "#ffffff"
    if status == "unsupported":
        return "#d8dce0"
    t = 0.0
    if ratio is not None and ratio > 0 and math.isfinite(ratio):
        t = min(1.0, max(0.0, (math.log10(ratio) + 4.0) / 4.0))
    elif ratio is not None and not math.isfinite(ratio):
        t = 1.0
    if status == "pass":
        return f"hsl(140,55%,{82 - 44 * t:.0f}%)"
    if status == "expected-failure":
        return f"hsl(38,92%,{66 - 16 * t:.0f}%)"
    return f"hsl(0,72%,{50 - 12 * t:.0f}%)"


def _text_colour(fill: str) -> str:
    if fill.startswith("hsl("):
        lightness = float(fill.rstrip("%)").rsplit(",", 1)[1])
        return "#fff" if lightness < 55 else "#1b1f23"
    return "#1b1f23"


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:.3g}"
    return str(value)


def heatmap_svg(results: list[ResultFile], names: list[str], section: str, svg_id: str) -> str:
    cell_w, cell_h = 24, 22
    labels = [display_name(n) for n in names]
    left = max([len(r.backend) for r in results] + [8]) * 7.4 + 16
    top = max([len(n) for n in labels] + [4]) * 5.4 + 24
    width = left + cell_w * len(names) + top * 0.75 + 20
    height = top + cell_h * len(results) + 10
    parts = [f'<svg id="{svg_id}" class="heatmap" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
             f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
             f'aria-label="{section} heat map">']
    for j, label in enumerate(labels):
        x = left + j * cell_w + cell_w / 2
        parts.append(f'<text x="{x:.1f}" y="{top - 6:.1f}" font-size="11" transform="rotate(-55 {x:.1f} '
                     f'{top - 6:.1f})">{html.escape(label)}</text>')
    for i, r in enumerate(results):
        y = top + i * cell_h
        parts.append(f'<text x="{left - 8:.1f}" y="{y + cell_h * 0.68:.1f}" font-size="12" '
                     f'text-anchor="end">{html.escape(r.backend)}</text>')
        for j, name in enumerate(names):
            row = getattr(r, section).get(name)
            status = row.get("status") if row else None
            ratio = ratio_of(row)
            fill = _status_fill(status, ratio)
            x = left + j * cell_w
            tip = [f"{r.backend} ({r.framework} {r.version}) / {name}: {status or 'not run'}"]
            if row:
                for key in ("max_abs_error", "max_rel_error", "examples", "seconds"):
                    if key in row:
                        tip.append(f"{key}: {_fmt(row[key])}")
                if ratio is not None:
                    tip.append(f"error / tolerance: {_fmt(ratio)}")
                if row.get("tolerance"):
                    tip.append(f"tolerance: rtol {_fmt(row['tolerance'].get('rtol'))} "
                               f"atol {_fmt(row['tolerance'].get('atol'))}")
                if row.get("message"):
                    tip.append(row["message"].strip().splitlines()[0][:300])
            dash = ' stroke-dasharray="3 2"' if status is None else ""
            parts.append(f'<g class="cell status-{status or "none"}" data-backend="{html.escape(r.backend)}" '
                         f'data-item="{html.escape(name)}"><title>{html.escape(chr(10).join(tip))}</title>'
                         f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w - 2}" height="{cell_h - 2}" rx="3" '
                         f'fill="{fill}" stroke="#8c959f" stroke-width="0.6"{dash}/>'
                         f'<text x="{x + (cell_w - 2) / 2:.1f}" y="{y + cell_h * 0.66:.1f}" font-size="11" '
                         f'font-weight="600" text-anchor="middle" fill="{_text_colour(fill)}">'
                         f'{LETTERS.get(status, "?") if status else ""}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _legend_html() -> str:
    items = [("pass, error far below tolerance", _status_fill("pass", 1e-5)),
             ("pass, error near tolerance", _status_fill("pass", 1.0)),
             ("fail", _status_fill("fail", 10.0)),
             ("expected failure (known issue)", _status_fill("expected-failure", 1.0)),
             ("unsupported", _status_fill("unsupported", None)),
             ("not run", "#ffffff")]
    spans = "".join(f'<span><span class="sw" style="background:{fill}"></span>{html.escape(text)}</span>'
                    for text, fill in items)
    return (f'<div class="legend">{spans}</div><p class="sub">Shade: error relative to the tolerance on a log '
            f"scale from 1e-4 (light) to 1 (dark): max |actual - expected| / (atol + rtol |expected|) "
            f"over every compared element.  Letters: {html.escape(LEGEND)}.  "
            f"Hover a cell for its numbers.</p>")


def error_plot_svg(results: list[ResultFile], property_name: str, svg_id: str) -> str | None:
    series = []
    for k, r in enumerate(results):
        row = r.properties.get(property_name) or {}
        errs = row.get("max_abs_error_by_step") or []
        if errs:
            series.append((r, [float(e) for e in errs], row.get("tolerance") or {}, _PALETTE[k % len(_PALETTE)]))
    if not series:
        return None
    width, height = 860, 340
    ml, mr, mt, mb = 64, 230, 16, 44
    pw, ph = width - ml - mr, height - mt - mb
    steps = max(len(e) for _, e, _, _ in series)
    positive = [v for _, e, _, _ in series for v in e if v > 0 and math.isfinite(v)]
    atols = sorted({t.get("atol") for _, _, t, _ in series if t.get("atol")})
    lo = math.floor(math.log10(min(positive + atols))) - 1 if positive or atols else -17
    hi = math.ceil(math.log10(max(positive + atols))) if positive or atols else 0
    hi = max(hi, lo + 2)
    lo_zero = lo - 0.6  # the "exact (0)" row below the lowest decade

    def sx(t):
        return ml + (pw * t / max(steps - 1, 1))

    def sy(v):
        ly = math.log10(v) if v > 0 else lo_zero
        ly = max(min(ly, hi), lo_zero)
        return mt + ph * (hi - ly) / (hi - lo_zero)

    parts = [f'<svg id="{svg_id}" class="error-plot" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="max abs error of y against time step, {html.escape(property_name)}">',
             f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="#fbfcfd" stroke="#8c959f"/>']
    for d in range(lo, hi + 1):
        y = sy(10.0 ** d)
        parts.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e1e4e8"/>'
                     f'<text x="{ml - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">1e{d}</text>')
    parts.append(f'<text x="{ml - 6}" y="{sy(0) + 4:.1f}" font-size="11" text-anchor="end">0</text>')
    tick = max(1, round(steps / 10))
    for t in range(0, steps, tick):
        x = sx(t)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{mt + ph}" y2="{mt + ph + 4}" stroke="#57606a"/>'
                     f'<text x="{x:.1f}" y="{mt + ph + 17}" font-size="11" text-anchor="middle">{t}</text>')
    parts.append(f'<text x="{ml + pw / 2}" y="{height - 6}" font-size="12" text-anchor="middle">time step t '
                 f'(worst example of {html.escape(property_name)})</text>'
                 f'<text x="14" y="{mt + ph / 2}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {mt + ph / 2})">max |y - y_ref| at step t</text>')
    for atol in atols:
        y = sy(atol)
        parts.append(f'<line class="tolerance" x1="{ml}" x2="{ml + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#b31d28" stroke-dasharray="6 4"/><text x="{ml + pw - 4}" y="{y - 4:.1f}" '
                     f'font-size="11" text-anchor="end" fill="#b31d28">atol {atol:g}</text>')
    for k, (r, errs, tol, colour) in enumerate(series):
        points = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in enumerate(errs))
        parts.append(f'<g class="series" data-backend="{html.escape(r.backend)}"><title>'
                     f'{html.escape(r.label)}: max {max(errs):.3g} over {len(errs)} steps</title>'
                     f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        if len(errs) == 1:
            parts.append(f'<circle cx="{sx(0):.1f}" cy="{sy(errs[0]):.1f}" r="3" fill="{colour}"/>')
        parts.append("</g>")
        ly = mt + 12 + k * 18
        parts.append(f'<line x1="{ml + pw + 14}" x2="{ml + pw + 38}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" '
                     f'stroke-width="3"/><text x="{ml + pw + 44}" y="{ly}" font-size="12">'
                     f'{html.escape(r.backend)} ({html.escape(_fmt(max(errs)))})</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_page(results: list[ResultFile], regressions: list[Regression] | None = None,
              baseline: str | None = None) -> str:
    esc = html.escape
    names = property_names(results)
    fixture_names = property_names(results, "fixtures")
    out = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>LSTM conformance matrix</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>LSTM conformance matrix</h1>",
           f'<p class="sub">{len(results)} backend{"s" if len(results) != 1 else ""}, {len(names)} properties'
           + (f", {len(fixture_names)} golden fixtures" if fixture_names else "") +
           ". Each framework is held to the NumPy reference LSTM on identical weights, inputs and state.</p>"]
    if regressions is not None:
        out.append(f'<h2 id="regressions">Regressions against {esc(baseline or "no baseline")}</h2>')
        if regressions:
            out.append('<ul class="regressions">' + "".join(f"<li>{esc(g.line())}</li>" for g in regressions)
                       + "</ul>")
        else:
            out.append('<p class="ok">None: no new failure, no drift beyond tolerance.</p>')
    out.append('<h2 id="backends">Backends</h2><table id="backend-table"><tr><th>backend</th><th>framework</th>'
               "<th>API</th><th>gate order</th><th>pass</th><th>fail</th><th>unsupported</th>"
               "<th>known issues</th><th>fixtures passed</th><th>examples/s</th><th>profile</th></tr>")
    for r in results:
        c, a, fc = r.counts(), r.adapter, r.counts("fixtures")
        eps = r.examples_per_second()
        out.append(f"<tr><td>{esc(r.backend)}</td><td>{esc(r.framework)} {esc(r.version)}</td>"
                   f"<td><code>{esc(str(a.get('api', '?')))}</code></td><td>{esc(str(a.get('native_gate_order', '?')))}</td>"
                   f'<td class="num">{c["pass"]}</td><td class="num{" fail" if c["fail"] else ""}">{c["fail"]}</td>'
                   f'<td class="num">{c["unsupported"]}</td><td class="num">{c["expected-failure"]}</td>'
                   f'<td class="num">{fc["pass"]}/{len(r.fixtures)}</td>'
                   f'<td class="num">{f"{eps:.0f}" if eps else "-"}</td>'
                   f"<td>{esc(str(r.hypothesis_profile))}</td></tr>")
    out.append("</table>")
    out.append('<h2 id="matrix">Properties: backend &times; property</h2>')
    out.append(heatmap_svg(results, names, "properties", "heatmap"))
    out.append(_legend_html())
    plots = [(p, error_plot_svg(results, p, f"error-plot-{p.replace('_', '-')}")) for p in _PLOTTED]
    plots = [(p, svg) for p, svg in plots if svg]
    if plots:
        out.append('<h2 id="error-by-step">Error against time step</h2>'
                   '<p class="sub">Max abs error of y at each time step in the worst example of the property, '
                   "per backend (log scale; 0 is an exact match). Dashed: the absolute tolerance.</p>")
        for p, svg in plots:
            out.append(f"<h3>{esc(p)}</h3>{svg}")
    if fixture_names:
        out.append('<h2 id="fixtures">Golden fixtures: backend &times; fixture</h2>')
        out.append(heatmap_svg(results, fixture_names, "fixtures", "fixture-heatmap"))
        drift = [(r, n, d) for r in results for n, row in sorted(r.fixtures.items())
                 for d in (row.get("drift") or [])]
        if drift:
            out.append('<h3>Drift between framework versions</h3><table id="drift-table"><tr><th>backend</th>'
                       "<th>fixture</th><th>from</th><th>to</th><th>max abs drift</th><th>/ tolerance</th></tr>")
            for r, n, d in drift:
                cls = ' class="fail"' if d.get("beyond_tolerance") else ""
                out.append(f"<tr{cls}><td>{esc(r.backend)}</td><td>{esc(display_name(n))}</td><td>{esc(str(d['from_version']))}"
                           f"</td><td>{esc(str(d['to_version']))}</td><td class=\"num\">{_fmt(d['max_abs'])}</td>"
                           f"<td class=\"num\">{_fmt(d['ratio'])}</td></tr>")
            out.append("</table>")
    problems = [(r, n, row) for r in results for n, row in sorted(r.properties.items())
                if row.get("status") in ("fail", "expected-failure")]
    problems += [(r, f"golden fixture {display_name(n)}", row) for r in results for n, row in sorted(r.fixtures.items())
                 if row.get("status") in ("fail", "expected-failure")]
    if problems:
        out.append('<h2 id="failures">Failures and known issues</h2>')
        for r, n, row in problems:
            out.append(f"<details><summary><b>{esc(r.backend)}</b> {esc(n)}: "
                       f'<span class="{"fail" if row["status"] == "fail" else ""}">{esc(row["status"])}</span>'
                       f"</summary><pre>{esc(row.get('message', ''))}</pre></details>")
    unsupported = [(r, n, row) for r in results for n, row in sorted(r.properties.items())
                   if row.get("status") == "unsupported"]
    if unsupported:
        out.append('<h2 id="unsupported">Unsupported, and why</h2><details><summary>'
                   f"{len(unsupported)} properties a backend cannot express</summary><table>"
                   "<tr><th>backend</th><th>property</th><th>reason</th></tr>")
        for r, n, row in unsupported:
            out.append(f"<tr><td>{esc(r.backend)}</td><td>{esc(n)}</td><td>{esc(row.get('message', ''))}</td></tr>")
        out.append("</table></details>")
    out.append("</body></html>")
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
                        help="a previous results directory: list new failures and fixture-output drift "
                             "beyond tolerance, and exit 1 when there is any")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="exit 1 on a regression (without --baseline: on any failure)")
    parser.add_argument("--save-baseline", type=Path, metavar="DIR",
                        help="copy the results (JSON and fixture outputs) to DIR as a new baseline")
    parser.add_argument("--width", type=int, default=shutil.get_terminal_size((120, 24)).columns,
                        help="terminal table width")


def run(args: argparse.Namespace) -> int:
    try:
        results = load_results(args.results)
        if not results:
            raise ReportError(f"results directory {args.results}: no result file (<backend>.json); "
                              f"run a backend's tox env first, e.g. tox -e reference")
        baseline = None
        if args.baseline is not None:
            if not Path(args.baseline).is_dir():
                raise ReportError(f"--baseline {args.baseline}: not a directory")
            baseline = load_results(args.baseline)
    except ReportError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 3
    regressions = None
    if baseline is not None or args.fail_on_regression:
        regressions = find_regressions(results, baseline, Path(args.results), args.baseline)
    print(terminal_table(results, args.width))
    label = str(args.baseline) if args.baseline is not None else None
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(results, regressions, label) + "\n")
        print(f"wrote {args.markdown}")
    if args.html:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(html_page(results, regressions, label))
        print(f"wrote {args.html}")
    if args.save_baseline:
        save_baseline(Path(args.results), args.save_baseline)
        print(f"saved the results as a baseline in {args.save_baseline}")
    if regressions is None:
        return 0
    against = f"the baseline {args.baseline}" if args.baseline is not None else "no baseline (every failure counts)"
    if regressions:
        print(f"\n{len(regressions)} regression{'s' if len(regressions) > 1 else ''} against {against}:")
        for g in regressions:
            print(f"  {g.line()}")
        return 1
    print(f"\nno regression against {against}")
    return 0

