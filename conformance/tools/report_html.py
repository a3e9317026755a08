"""The self-contained HTML page of the report (inline CSS and SVG, no script, no external asset).

* Run metadata: when and where each backend ran (date, platform, Python, commit, Hypothesis
  profile, tox env, the command).
* A heat map per section (properties, golden fixtures): one cell per backend and item, its
  colour the status and, for a pass, the margin to the tolerance: solid green is far below it
  (an error <= 1e-4 of the tolerance), pale yellow-green is close to it.  Every cell links to the
  details of that row: status, numbers, tolerance and loosenings, what ran, and the failure
  report with its counterexample.
* The error of y against the time step as small multiples, one chart per backend with its own
  time axis, the error divided by the absolute tolerance (1 = the tolerance).
* Regressions against the baseline, the drift of every backend's golden-fixture outputs, notes.
"""

from __future__ import annotations

import html
import math
import re
import time

from ..harness.results import STATUSES, ResultFile, ratio_of
from .gate import Gate
from .matrix import LEGEND, LETTERS, STATUS_WORDS, counts_text, display_name, fmt, property_names

PLOTTED = ("long_sequence", "forward_parity")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:16px;color:#1b1f23;
background:#fff;max-width:1400px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
p.sub{color:#57606a;margin:0 0 12px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;
vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.fail{color:#b31d28;font-weight:600}.ok{color:#1a7f37}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:13px;margin:8px 0}
.legend span.sw{display:inline-block;width:14px;height:14px;border:1px solid #888;vertical-align:middle;margin-right:4px}
details{margin:4px 0}summary{cursor:pointer}pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:12px;
white-space:pre-wrap;word-break:break-word}
details:target{outline:2px solid #0969da;outline-offset:2px}
.regressions li{color:#b31d28}
.multiples{display:flex;flex-wrap:wrap;gap:10px}
.multiples figure{margin:0;border:1px solid #d0d7de;padding:4px}
.multiples figcaption{font-size:12px;color:#57606a}
"""


def anchor(backend: str, item: str) -> str:
    """The id of the details of one cell."""
    return "d-" + re.sub(r"[^A-Za-z0-9_-]", "_", f"{backend}--{item}")


def status_fill(status: str | None, ratio: float | None) -> str:
    """A cell's colour: by status; a pass from solid green (error <= 1e-4 of the tolerance) to
    pale yellow-green (at the tolerance) on a log scale, so that the darkest green is the safest."""
    if status is None:
        return "#ffffff"
    if status == "unsupported":
        return "#d8dce0"
    if status == "not-set-up":
        return "#b6bcc4"
    t = 1.0
    if ratio is not None and math.isfinite(ratio):
        t = min(1.0, max(0.0, (math.log10(ratio) + 4.0) / 4.0)) if ratio > 0 else 0.0
    if status == "pass":
        hue, sat, light = 140 - 70 * t, 55 + 15 * t, 36 + 46 * t
        return f"hsl({hue:.0f},{sat:.0f}%,{light:.0f}%)"
    if status == "expected-failure":
        return "hsl(30,92%,62%)"
    return "hsl(0,72%,46%)"


def text_colour(fill: str) -> str:
    if fill.startswith("hsl("):
        lightness = float(fill.rstrip("%)").rsplit(",", 1)[1])
        return "#fff" if lightness < 55 else "#1b1f23"
    return "#1b1f23"


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
            status = row["status"] if row else None
            ratio = ratio_of(row)
            fill = status_fill(status, ratio)
            x = left + j * cell_w
            tip = [f"{r.backend} ({r.framework} {r.version}) / {display_name(name)}: "
                   f"{STATUS_WORDS.get(status, 'not run')}"]
            if row and ratio is not None:
                tip.append(f"error / tolerance: {fmt(ratio)}")
            if row and row.get("cause"):
                tip.append(row["cause"])
            dash = ' stroke-dasharray="3 2"' if status is None else ""
            cell = (f'<title>{html.escape(chr(10).join(tip))}</title>'
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w - 2}" height="{cell_h - 2}" rx="3" '
                    f'fill="{fill}" stroke="#8c959f" stroke-width="0.6"{dash}/>'
                    f'<text x="{x + (cell_w - 2) / 2:.1f}" y="{y + cell_h * 0.66:.1f}" font-size="11" '
                    f'font-weight="600" text-anchor="middle" fill="{text_colour(fill)}">'
                    f'{LETTERS.get(status, "?") if status else ""}</text>')
            attrs = (f'class="cell status-{status or "none"}" data-backend="{html.escape(r.backend)}" '
                     f'data-item="{html.escape(name)}"')
            if row:
                parts.append(f'<a href="#{anchor(r.backend, name)}"><g {attrs}>{cell}</g></a>')
            else:
                parts.append(f"<g {attrs}>{cell}</g>")
    parts.append("</svg>")
    return "".join(parts)


def legend_html() -> str:
    items = [("pass, error <= 1e-4 of the tolerance (safest)", status_fill("pass", 1e-5)),
             ("pass, 1e-2 of the tolerance", status_fill("pass", 1e-2)),
             ("pass, at the tolerance (least margin)", status_fill("pass", 1.0)),
             ("fail", status_fill("fail", 10.0)),
             ("expected failure (a documented known issue)", status_fill("expected-failure", 1.0)),
             ("unsupported", status_fill("unsupported", None)),
             ("not set up here", status_fill("not-set-up", None)),
             ("not run", "#ffffff")]
    spans = "".join(f'<span><span class="sw" style="background:{fill}"></span>{html.escape(text)}</span>'
                    for text, fill in items)
    return (f'<div class="legend">{spans}</div><p class="sub">A pass is coloured by its margin: the error '
            f"relative to the tolerance, max |actual - expected| / (atol + rtol |expected|) over every "
            f"compared element, on a log scale: solid green is far below the tolerance, pale yellow-green "
            f"is close to it.  Letters: {html.escape(LEGEND)}.  Every cell links to its details.</p>")


def small_multiples(results: list[ResultFile], property_name: str) -> str | None:
    """One small chart per backend: the max abs error of y at each time step of the property's
    worst example, divided by the absolute tolerance, log scale; the dashed line is 1."""
    figures = []
    for r in results:
        row = r.properties.get(property_name) or {}
        errs = [float(e) for e in row.get("max_abs_error_by_step") or []]
        atol = (row.get("tolerance") or {}).get("atol")
        if not errs or not atol:
            continue
        figures.append(_mini_chart(r, [e / atol for e in errs], row))
    if not figures:
        return None
    return '<div class="multiples">' + "".join(figures) + "</div>"


def _mini_chart(r: ResultFile, values: list[float], row: dict) -> str:
    width, height, ml, mr, mt, mb = 220, 120, 34, 8, 8, 20
    pw, ph = width - ml - mr, height - mt - mb
    lo, hi = -4, 1
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if positive:
        hi = max(hi, math.ceil(math.log10(max(positive))))
        lo = min(lo, math.floor(math.log10(min(positive))))
    lo_zero = lo - 0.5

    def sx(t):
        return ml + pw * t / max(len(values) - 1, 1)

    def sy(v):
        ly = math.log10(v) if v > 0 and math.isfinite(v) else (hi if v > 0 else lo_zero)
        return mt + ph * (hi - max(min(ly, hi), lo_zero)) / (hi - lo_zero)

    colour = "#b31d28" if row.get("status") == "fail" else "#1f77b4"
    points = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in enumerate(values))
    ticks = "".join(f'<text x="{ml - 3}" y="{sy(10.0 ** d) + 3:.1f}" font-size="9" text-anchor="end">1e{d}</text>'
                    for d in range(lo, hi + 1, max(1, (hi - lo) // 3)))
    marks = "" if len(values) > 1 else f'<circle cx="{sx(0):.1f}" cy="{sy(values[0]):.1f}" r="2.5" fill="{colour}"/>'
    svg = (f'<svg class="mini" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="error by step, {html.escape(r.backend)}">'
           f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="#fbfcfd" stroke="#8c959f"/>{ticks}'
           f'<line class="tolerance" x1="{ml}" x2="{ml + pw}" y1="{sy(1.0):.1f}" y2="{sy(1.0):.1f}" '
           f'stroke="#b31d28" stroke-dasharray="4 3"/>'
           f'<polyline class="series" data-backend="{html.escape(r.backend)}" points="{points}" fill="none" '
           f'stroke="{colour}" stroke-width="1.5"/>{marks}'
           f'<text x="{ml + pw / 2:.1f}" y="{height - 5}" font-size="9" text-anchor="middle">'
           f't = 0 .. {len(values) - 1}</text></svg>')
    return (f'<figure><figcaption>{html.escape(r.backend)}: max {fmt(max(values))} x atol</figcaption>'
            f"{svg}</figure>")


def details_html(r: ResultFile, name: str, row: dict) -> str:
    esc = html.escape
    status = row["status"]
    numbers = [("status", STATUS_WORDS.get(status, status)), ("examples compared", row["examples"]),
               ("examples unsupported", row["unsupported_examples"]),
               ("examples in a known issue", row["known_issue_examples"]),
               ("max abs error", fmt(row["max_abs_error"])), ("max rel error", fmt(row["max_rel_error"])),
               ("error / tolerance", fmt(ratio_of(row))),
               ("tolerance", f"rtol {fmt(row['tolerance'].get('rtol'))}, atol {fmt(row['tolerance'].get('atol'))}"
                if row["tolerance"] else "-"),
               ("seconds", fmt(row["seconds"]))]
    if row.get("loosened"):
        numbers.append(("loosened", "; ".join(row["loosened"])))
    if row.get("produced"):
        numbers.append(("what ran", ", ".join(f"{k} ({v})" for k, v in row["produced"].items())))
    if row.get("max_abs_error_by_step"):
        by_step = row["max_abs_error_by_step"]
        numbers.append(("error by step (worst example)", ", ".join(fmt(v) for v in by_step[:16])
                        + (" ..." if len(by_step) > 16 else "")))
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in numbers)
    message = f"<pre>{esc(row['message'])}</pre>" if row.get("message") else ""
    cls = ' class="fail"' if status == "fail" else ""
    return (f'<details id="{anchor(r.backend, name)}"{" open" if status == "fail" else ""}><summary>'
            f"<b>{esc(r.backend)}</b> {esc(display_name(name))}: <span{cls}>{esc(STATUS_WORDS.get(status, status))}"
            f"</span>{(' - ' + esc(row['cause'])) if row.get('cause') else ''}</summary>"
            f'<div class="scroll"><table>{body}</table></div>{message}</details>')


def html_page(results: list[ResultFile], gate: Gate | None = None, baseline: str | None = None) -> str:
    esc = html.escape
    names = property_names(results)
    fixture_names = property_names(results, "fixtures")
    out = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>LSTM conformance matrix</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>LSTM conformance matrix</h1>",
           f'<p class="sub">{len(results)} backend{"s" if len(results) != 1 else ""}, {len(names)} properties'
           + (f", {len(fixture_names)} golden fixtures" if fixture_names else "") +
           ". Each framework is held to the NumPy reference LSTM on identical weights, inputs and state. "
           f"Report generated {esc(time.strftime('%Y-%m-%d %H:%M:%S %z'))}.</p>"]
    if gate is not None:
        out.append(f'<h2 id="regressions">Regressions against {esc(baseline or "the baseline")}</h2>')
        if gate.regressions:
            out.append('<ul class="regressions">' + "".join(f"<li>{esc(g.line())}</li>" for g in gate.regressions)
                       + "</ul>")
        else:
            out.append('<p class="ok">None: nothing failed, went missing or lost examples; no drift beyond '
                       "tolerance.</p>")
        if gate.notes:
            out.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in gate.notes) + "</ul>")
    out.append('<h2 id="backends">Backends</h2><div class="scroll"><table id="backend-table"><tr><th>backend</th>'
               "<th>framework</th><th>API</th><th>gate order</th><th>properties</th><th>golden fixtures</th>"
               "<th>examples/s</th><th>profile</th><th>tox env</th><th>commit</th><th>finished</th>"
               "<th>platform, Python</th><th>command</th></tr>")
    for r in results:
        eps = r.examples_per_second()
        fail = " fail" if r.counts()["fail"] or r.counts("fixtures")["fail"] else ""
        commit = (r.run.get("commit") or "-")[:12]
        out.append(f"<tr><td>{esc(r.backend)}</td><td>{esc(r.framework)} {esc(r.version)}</td>"
                   f"<td><code>{esc(str(r.adapter.get('api', '?')))}</code></td>"
                   f"<td>{esc(str(r.adapter.get('native_gate_order', '?')))}</td>"
                   f'<td class="{fail.strip()}">{esc(counts_text(r))}</td>'
                   f'<td class="{fail.strip()}">{esc(counts_text(r, "fixtures")) if r.fixtures else "-"}</td>'
                   f'<td class="num">{f"{eps:.0f}" if eps else "-"}</td><td>{esc(r.hypothesis_profile)}</td>'
                   f"<td>{esc(r.run.get('tox_env') or '-')}</td><td><code>{esc(commit)}</code></td>"
                   f"<td>{esc(r.finished)}</td><td>{esc(r.platform)}, Python {esc(r.python)}</td>"
                   f"<td><code>{esc(r.run.get('command') or '-')}</code></td></tr>")
    out.append("</table></div>")
    out.append('<h2 id="matrix">Properties: backend &times; property</h2>')
    out.append('<div class="scroll">' + heatmap_svg(results, names, "properties", "heatmap") + "</div>")
    out.append(legend_html())
    plots = [(p, small_multiples(results, p)) for p in PLOTTED]
    plots = [(p, svg) for p, svg in plots if svg]
    if plots:
        out.append('<h2 id="error-by-step">Error against time step</h2>'
                   '<p class="sub">For each backend, the max abs error of y at each time step of the worst '
                   "example of the property, divided by the absolute tolerance (log scale, the dashed line "
                   "is the tolerance). Each chart has its own time axis: the worst examples differ in length."
                   "</p>")
        for p, svg in plots:
            out.append(f'<h3 id="error-by-step-{p}">{esc(p)}</h3>{svg}')
    if fixture_names:
        out.append('<h2 id="fixtures">Golden fixtures: backend &times; fixture</h2>')
        out.append('<div class="scroll">' + heatmap_svg(results, fixture_names, "fixtures", "fixture-heatmap")
                   + "</div>")
    if gate is not None and gate.drift:
        out.append('<h3 id="drift">Drift of the golden-fixture outputs from the baseline</h3>'
                   '<div class="scroll"><table id="drift-table"><tr><th>backend</th><th>golden cases compared'
                   "</th><th>versions</th><th>max |drift|</th><th>/ tolerance</th><th>where</th></tr>")
        for d in gate.drift:
            cls = ' class="fail"' if d.worst_ratio > 1 else ""
            versions = ", ".join(f"{a} &rarr; {b}" for a, b in sorted((esc(a), esc(b)) for a, b in d.versions))
            out.append(f"<tr{cls}><td>{esc(d.backend)}</td><td class=\"num\">{d.compared}</td><td>{versions}</td>"
                       f"<td class=\"num\">{fmt(d.worst_abs)}</td><td class=\"num\">{fmt(d.worst_ratio)}</td>"
                       f"<td>{esc(d.worst_fixture)}</td></tr>")
        out.append("</table></div>")
    out.append('<h2 id="details">Details of every cell</h2><p class="sub">Failures first (open), then the '
               "other rows of each backend.</p>")
    order = {s: k for k, s in enumerate(("fail", "expected-failure", "not-set-up", "unsupported", "pass"))}
    for section in ("properties", "fixtures"):
        rows = [(r, n, row) for r in results for n, row in getattr(r, section).items()]
        rows.sort(key=lambda item: (order.get(item[2]["status"], len(STATUSES)), item[0].backend, item[1]))
        out += [details_html(r, n, row) for r, n, row in rows]
    out.append("</body></html>")
    return "\n".join(out)
