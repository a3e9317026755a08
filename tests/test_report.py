"""The conformance report: merging result files into a terminal table, Markdown and a
self-contained HTML page, and the regressions against a baseline (exit status 1)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import report_samples

from conformance.golden import drift, store as golden
from conformance.cli import main as cli_main
from conformance.harness.results import ratio_of
from conformance.tools import report
from conformance.harness.tolerances import Tolerance

ROOT = Path(__file__).resolve().parents[1]


def run_report(*args) -> tuple[int, str]:
    """``python -m conformance report ARGS`` in this process: (exit status, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["report"] + [str(a) for a in args])
    return code, out.getvalue() + err.getvalue()


def test_command_line_entry(tmp_path):
    results = report_samples.write_results(tmp_path / "results")
    proc = subprocess.run([sys.executable, "-m", "conformance", "report", str(results), "--fail-on-regression"],
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "forward_parity" in proc.stdout and "alpha property lengths: new failure" in proc.stdout


class Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.ids, self.external = [], set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("src", "href"):
            if attrs.get(key):
                self.external.append((tag, attrs[key]))
        if tag == "link":
            self.external.append((tag, attrs.get("href")))


def test_terminal_markdown_html(tmp_path):
    results = report_samples.write_results(tmp_path / "results")
    code, out = run_report(results, "--markdown", tmp_path / "m.md", "--html", tmp_path / "r.html", "--width", "100")
    assert code == 0, out
    lines = out.splitlines()
    header = next(line for line in lines if "alpha" in line and "beta-lstm" in line)
    col = {name: header.index(name) for name in ("alpha", "beta-lstm", "reference")}
    row = next(line for line in lines if line.startswith("lengths "))
    assert row[col["alpha"]:col["alpha"] + 5].strip() == "F"
    assert row[col["beta-lstm"]:col["beta-lstm"] + 9].strip() == "P"
    assert next(line for line in lines if line.startswith("cell_clip "))[col["alpha"]:col["alpha"] + 5].strip() == "X"
    assert next(line for line in lines if line.startswith("peepholes "))[col["alpha"]:col["alpha"] + 5].strip() == "U"
    assert "P pass" in out and "X expected failure" in out and "U unsupported" in out
    assert "alpha (alphaflow 1.2.0): 4 pass, 1 fail, 2 unsupported, 1 known issues" in out
    md = (tmp_path / "m.md").read_text()
    assert "| property | alpha | beta-lstm | reference |" in md
    assert "| lengths | ❌ **fail** | ✅ | ✅ |" in md
    assert "| t1_single_step | ✅ | ❌ **fail** | ✅ |" in md
    page = (tmp_path / "r.html").read_text()
    parser = Elements()
    parser.feed(page)
    assert {"heatmap", "fixture-heatmap", "error-plot-long-sequence", "error-plot-forward-parity",
            "backend-table", "drift-table"} <= parser.ids
    assert parser.external == [], "the page must be self-contained"
    assert "<script" not in page
    assert page.count('class="cell status-fail"') == 2 and page.count('class="cell status-expected-failure"') == 1
    assert page.count('<g class="series"') == 6  # 3 backends x 2 plots


def test_a_file_that_is_not_a_result_file_is_an_error(tmp_path):
    """Result files have one reader: a file it cannot read (not JSON, another format version, a
    missing key) stops the report with a message naming the file, never a silent skip."""
    results = report_samples.write_results(tmp_path / "results")
    (results / "notes.json").write_text(json.dumps({"not": "a result file"}))
    code, out = run_report(results)
    assert code != 0 and "notes.json: result file format None, this version of the harness reads format" in out
    doc = report_samples.sample_docs()[0]
    del doc["properties"][0]["tolerance_ratio"]
    (results / "notes.json").write_text(json.dumps(doc))
    code, out = run_report(results)
    assert code != 0 and "notes.json: properties[0]: missing ['tolerance_ratio']" in out
    (results / "notes.json").write_text("{truncated")
    code, out = run_report(results)
    assert code != 0 and "notes.json: not a readable JSON result file" in out


def test_error_ratio_and_colours():
    assert ratio_of({"tolerance_ratio": 0.25, "examples": 1}) == 0.25
    assert ratio_of({"tolerance_ratio": "inf", "examples": 3}) == float("inf")
    assert ratio_of({"status": "unsupported", "examples": 0, "tolerance_ratio": 0.0}) is None
    light, dark = report._status_fill("pass", 1e-5), report._status_fill("pass", 1.0)
    assert light != dark and "140" in light and report._status_fill("fail", 2.0).startswith("hsl(0,")


def test_no_results_is_exit_3(tmp_path):
    (tmp_path / "empty").mkdir()
    code, out = run_report(tmp_path / "empty")
    assert code == 3 and "no result file" in out
    code, out = run_report(tmp_path / "nowhere")
    assert code == 3 and "not found" in out


def test_new_failure_against_baseline_is_exit_1(tmp_path):
    docs = report_samples.sample_docs()
    baseline = report_samples.write_results(tmp_path / "baseline", docs)
    code, out = run_report(baseline, "--baseline", baseline)
    assert code == 0 and "no regression against the baseline" in out, out
    # alpha's initial_state now fails; beta's lengths too; alpha's lengths failed before: not new.
    for doc in docs:
        for row in doc["properties"]:
            if (doc["backend"], row["property"]) in {("alpha", "initial_state"), ("beta-lstm", "lengths")}:
                row.update(status="fail", message="y: max abs err 0.5")
    current = report_samples.write_results(tmp_path / "current", docs)
    code, out = run_report(current, "--baseline", baseline, "--html", tmp_path / "r.html")
    assert code == 1, out
    assert "2 regressions against the baseline" in out
    assert "alpha property initial_state: new failure: pass in the baseline, fail now" in out
    assert "beta-lstm property lengths: new failure" in out
    assert "alpha property lengths" not in out
    assert "Regressions against" in (tmp_path / "r.html").read_text()
    # Without a baseline, --fail-on-regression counts every failure.
    code, out = run_report(current, "--fail-on-regression")
    assert code == 1 and "every failure counts" in out
    assert run_report(current)[0] == 0


def test_drift_beyond_tolerance_is_exit_1(tmp_path):
    case = golden.load("t1_single_step")
    tol = Tolerance(**report_samples.TOL32)
    out = case.expected_for("aligned")
    docs = [report_samples.backend_doc("alpha", "alphaflow", "1.2.0", [report_samples._row("forward_parity", "pass")])]
    baseline = report_samples.write_results(tmp_path / "baseline", docs)
    drift.record_output(baseline / "fixture-outputs", "alpha", "1.1.0", case, out, tol)
    docs[0]["framework_version"] = "1.3.0"
    current = report_samples.write_results(tmp_path / "current", docs)
    from adapters.base import Output

    drift.record_output(current / "fixture-outputs", "alpha", "1.3.0", case, Output(out.y + 1e-6, out.final), tol)
    code, text = run_report(current, "--baseline", baseline)
    assert code == 0, text
    drift.record_output(current / "fixture-outputs", "alpha", "1.3.0", case, Output(out.y + 1e-2, out.final), tol)
    code, text = run_report(current, "--baseline", baseline)
    assert code == 1, text
    assert "alpha golden fixture t1_single_step: drift: outputs of 1.3.0 differ from the baseline's 1.1.0" in text


def test_save_baseline(tmp_path):
    results = report_samples.write_results(tmp_path / "results")
    case = golden.load("t1_single_step")
    drift.record_output(results / "fixture-outputs", "alpha", "1.2.0", case, case.expected_for(),
                         Tolerance(**report_samples.TOL32))
    code, out = run_report(results, "--save-baseline", tmp_path / "base")
    assert code == 0, out
    assert sorted(p.name for p in (tmp_path / "base").glob("*.json")) == ["alpha.json", "beta-lstm.json",
                                                                          "reference.json"]
    assert (tmp_path / "base" / "fixture-outputs" / "alpha" / "1.2.0" / "t1_single_step.npz").is_file()
    assert run_report(results, "--baseline", tmp_path / "base")[0] == 0


def test_checked_in_baseline_is_a_results_directory():
    baseline = ROOT / "fixtures" / "baseline-results"
    results = report.load_results(baseline)
    assert "reference" in {r.backend for r in results}
    ref = next(r for r in results if r.backend == "reference")
    assert all(row["status"] in ("pass", "unsupported") for row in ref.properties.values())
    assert ref.fixtures and all(row["status"] in ("pass", "unsupported") for row in ref.fixtures.values())
    recorded = drift.recording_dir(baseline / "fixture-outputs", "reference", ref.version)
    assert len(list(recorded.glob("*.npz"))) == sum(r["status"] == "pass" for r in ref.fixtures.values())
    for path in recorded.glob("*.npz"):
        arrays = golden.load_npz(path)
        assert np.isfinite(arrays["y"]).all()
