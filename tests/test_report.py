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
import pytest
import report_samples

from conformance.golden import drift, store as golden
from conformance.cli import main as cli_main
from conformance.harness.results import ratio_of
from conformance.tools import report, report_html
from conformance.harness.tolerances import Tolerance
from conformance.tools.matrix import load_results, shorten

ROOT = Path(__file__).resolve().parents[1]


def run_report(*args) -> tuple[int, str]:
    """``python -m conformance report ARGS`` in this process: (exit status, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["report"] + [str(a) for a in args])
    return code, out.getvalue() + err.getvalue()


def test_command_line_entry(tmp_path):
    """Without a baseline every failure counts (a failing matrix never exits 0)."""
    results = report_samples.write_results(tmp_path / "results")
    proc = subprocess.run([sys.executable, "-m", "conformance", "report", str(results)],
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "forward_parity" in proc.stdout and "no baseline: every failure counts" in proc.stdout
    assert "alpha lengths" in proc.stdout and "beta-lstm t1_single_step" in proc.stdout


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
    assert code == 1, out  # the samples have failures, and there is no baseline
    lines = out.splitlines()
    header = next(line for line in lines if "alpha" in line and "beta-lstm" in line)
    col = {name: header.index(name) for name in ("alpha", "beta-lstm", "reference")}
    row = next(line for line in lines if line.startswith("lengths "))
    assert row[col["alpha"]:col["alpha"] + 5].strip() == "F"
    assert row[col["beta-lstm"]:col["beta-lstm"] + 9].strip() == "P"
    assert next(line for line in lines if line.startswith("cell_clip "))[col["alpha"]:col["alpha"] + 5].strip() == "X"
    assert next(line for line in lines if line.startswith("peepholes "))[col["alpha"]:col["alpha"] + 5].strip() == "U"
    assert "P pass" in out and "X expected failure" in out and "U unsupported" in out and "N not set up" in out
    assert "alpha (alphaflow 1.2.0): 4 pass, 1 fail, 2 unsupported, 1 known" in out
    # Golden fixtures say how many pass, are unsupported, known, fail: never "1/2" alone.
    assert "beta-lstm (betanet 0.9.1): 6 pass, 0 fail, 2 unsupported; 50 examples/s; golden fixtures 0 pass, " \
           "1 fail, 1 unsupported" in out
    fixture_row = next(line for line in lines if line.startswith("golden fixtures "))
    assert "1U 1F" in fixture_row and "2P" in fixture_row
    md = (tmp_path / "m.md").read_text()
    assert "| property | alpha | beta-lstm | reference |" in md
    assert "| lengths | ❌ **fail** | ✅ | ✅ |" in md
    assert "| t1_single_step | ✅ | ❌ **fail** | ✅ |" in md
    page = (tmp_path / "r.html").read_text()
    parser = Elements()
    parser.feed(page)
    assert {"heatmap", "fixture-heatmap", "error-by-step-long_sequence", "error-by-step-forward_parity",
            "backend-table", "details"} <= parser.ids
    assert [e for e in parser.external if not e[1].startswith("#")] == [], "the page must be self-contained"
    assert "<script" not in page
    assert page.count('class="cell status-fail"') == 2 and page.count('class="cell status-expected-failure"') == 1
    assert page.count('<polyline class="series"') == 6  # 3 backends x 2 properties, one small chart each
    # Every cell links to the details of its row, and every link has its target.
    links = {href[1:] for tag, href in parser.external if tag == "a"}
    rows = sum(len(d["properties"]) + len(d["fixtures"]) for d in report_samples.sample_docs())
    assert len(links) == rows and links <= parser.ids
    assert report_html.anchor("alpha", "lengths") in links
    # Run metadata: commit, tox env, command, date, platform.
    for text in ("0123456789ab", "pytest conformance/suite --backend alpha", "2026-01-01T00:00:00", "Linux, Python 3.11.7"):
        assert text in page


def test_markdown_cuts_text_at_a_word_boundary():
    assert shorten("the fused kernel clips before the forget gate", 20) == "the fused kernel…"
    assert shorten("short", 20) == "short"


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
    # The darkest green is the safest pass: lightness grows as the error nears the tolerance.
    far, mid, near = (report_html.status_fill("pass", r) for r in (1e-5, 1e-2, 1.0))
    lightness = [float(f.rstrip("%)").rsplit(",", 1)[1]) for f in (far, mid, near)]
    assert lightness[0] < lightness[1] < lightness[2]
    assert report_html.status_fill("fail", 2.0).startswith("hsl(0,")
    assert report_html.status_fill("pass", float("inf")) == near


def test_no_results_is_exit_3(tmp_path):
    (tmp_path / "empty").mkdir()
    code, out = run_report(tmp_path / "empty")
    assert code == 3 and "no result file" in out
    code, out = run_report(tmp_path / "nowhere")
    assert code == 3 and "not found" in out


def _gate(tmp_path, change, *options):
    """The report against a baseline of the sample results, after ``change(docs)`` on a copy."""
    docs = report_samples.sample_docs()
    baseline = report_samples.write_results(tmp_path / "baseline", docs)
    docs = report_samples.sample_docs()
    change(docs)
    current = report_samples.write_results(tmp_path / "current", docs)
    return run_report(current, "--baseline", baseline, *options)


def _row(docs, backend, name, section="properties"):
    doc = next(d for d in docs if d["backend"] == backend)
    return next(r for r in doc[section] if r["property"] == name)


def test_no_change_is_no_regression(tmp_path):
    code, out = _gate(tmp_path, lambda docs: None)
    assert code == 0 and "no regression against the baseline" in out, out


def test_new_failure_against_baseline_is_exit_1(tmp_path):
    def change(docs):
        # alpha's initial_state now fails; beta's lengths too; alpha's lengths failed before: not new.
        for backend, name in (("alpha", "initial_state"), ("beta-lstm", "lengths")):
            _row(docs, backend, name).update(status="fail", message="y: max abs err 0.5", cause="y: max abs err 0.5")

    code, out = _gate(tmp_path, change, "--html", tmp_path / "r.html")
    assert code == 1, out
    assert "2 regressions against the baseline" in out
    assert "alpha property initial_state: new failure: pass in the baseline, fail now (y: max abs err 0.5)" in out
    assert "beta-lstm property lengths: new failure" in out
    assert "alpha property lengths" not in out
    assert "Regressions against" in (tmp_path / "r.html").read_text()


def _doc(docs, backend):
    return next(d for d in docs if d["backend"] == backend)


@pytest.mark.parametrize("change, expected", [
    # A backend's result file deleted.
    (lambda docs: docs.remove(_doc(docs, "beta-lstm")),
     "beta-lstm result file: missing: the baseline has beta-lstm.json, this run wrote none"),
    # Two properties dropped.
    (lambda docs: _doc(docs, "beta-lstm")["properties"].__delitem__(slice(0, 2)),
     "beta-lstm property forward_parity: missing: pass in the baseline, not run now"),
    # A pass turned into unsupported.
    (lambda docs: _row(docs, "reference", "peepholes").update(status="unsupported", message="lacks peepholes"),
     "reference property peepholes: now unsupported: pass in the baseline: lacks peepholes"),
    # A golden case that passed is now missing.
    (lambda docs: _doc(docs, "reference")["fixtures"].pop(0), "reference golden fixture t1_single_step: missing"),
    # Fewer examples than the baseline ran.
    (lambda docs: _row(docs, "reference", "gradients").update(examples=10),
     "reference property gradients: fewer examples: 10 compared now, 25 in the baseline (margin 10%)"),
    # A framework upgrade.
    (lambda docs: _doc(docs, "reference").update(framework_version="2.5.0"),
     "reference framework version: changed: numpy 2.4.6 in the baseline, numpy 2.5.0 now"),
])
def test_lost_coverage_fails_the_gate(tmp_path, change, expected):
    code, out = _gate(tmp_path, change)
    assert code == 1 and expected in out, out


def test_a_version_change_can_be_accepted(tmp_path):
    code, out = _gate(tmp_path, lambda docs: _doc(docs, "reference").update(framework_version="2.5.0"),
                      "--accept-version-change")
    assert code == 0, out


def test_a_truncated_result_file_is_an_error(tmp_path):
    docs = report_samples.sample_docs()
    baseline = report_samples.write_results(tmp_path / "baseline", docs)
    current = report_samples.write_results(tmp_path / "current", docs)
    text = (current / "beta-lstm.json").read_text()
    (current / "beta-lstm.json").write_text(text[:len(text) // 2])
    code, out = run_report(current, "--baseline", baseline)
    assert code == 3 and "beta-lstm.json: not a readable JSON result file" in out


def test_a_backend_not_set_up_is_a_regression_only_when_strict(tmp_path, monkeypatch):
    monkeypatch.delenv("LSTM_CONFORMANCE_STRICT", raising=False)

    def change(docs):
        beta = _doc(docs, "beta-lstm")
        for section in ("properties", "fixtures"):
            for row in beta[section]:
                row.update(status="not-set-up", message="beta: needs CPython 3.6. Then: python -m conformance setup beta")
        beta["framework_version"] = "not set up"

    code, out = _gate(tmp_path, change)
    assert code == 0 and "note: beta-lstm: not set up on this machine: beta: needs CPython 3.6" in out, out
    code, out = _gate(tmp_path, change, "--strict")
    assert code == 1 and "beta-lstm backend: not set up" in out, out
    monkeypatch.setenv("LSTM_CONFORMANCE_STRICT", "1")
    code, out = _gate(tmp_path, change)
    assert code == 1, out


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
    code, text = run_report(current, "--baseline", baseline, "--accept-version-change")
    assert code == 0, text
    # Drift within tolerance is reported too, with its size per backend.
    assert "alpha: 1 golden cases compared (1.1.0 -> 1.3.0): max |drift| 1e-06" in text and "within tolerance" in text
    drift.record_output(current / "fixture-outputs", "alpha", "1.3.0", case, Output(out.y + 1e-2, out.final), tol)
    code, text = run_report(current, "--baseline", baseline, "--accept-version-change")
    assert code == 1, text
    assert "alpha golden fixture t1_single_step: drift: outputs of 1.3.0 differ from the baseline's 1.1.0" in text


def test_save_baseline(tmp_path):
    results = report_samples.write_results(tmp_path / "results")
    case = golden.load("t1_single_step")
    drift.record_output(results / "fixture-outputs", "alpha", "1.2.0", case, case.expected_for(),
                         Tolerance(**report_samples.TOL32))
    code, out = run_report(results, "--save-baseline", tmp_path / "base")
    assert code == 1 and "saved the results as a baseline" in out, out  # saved, though the samples fail
    assert sorted(p.name for p in (tmp_path / "base").glob("*.json")) == ["alpha.json", "beta-lstm.json",
                                                                          "reference.json"]
    assert (tmp_path / "base" / "fixture-outputs" / "alpha" / "1.2.0" / "t1_single_step.npz").is_file()
    assert run_report(results, "--baseline", tmp_path / "base")[0] == 0


def test_checked_in_baseline_is_a_results_directory():
    baseline = ROOT / "fixtures" / "baseline-results"
    results = load_results(baseline)
    assert "reference" in {r.backend for r in results}
    ref = next(r for r in results if r.backend == "reference")
    assert all(row["status"] in ("pass", "unsupported") for row in ref.properties.values())
    assert ref.fixtures and all(row["status"] in ("pass", "unsupported") for row in ref.fixtures.values())
    recorded = drift.recording_dir(baseline / "fixture-outputs", "reference", ref.version)
    assert len(list(recorded.glob("*.npz"))) == sum(r["status"] == "pass" for r in ref.fixtures.values())
    for path in recorded.glob("*.npz"):
        arrays = golden.load_npz(path)
        assert np.isfinite(arrays["y"]).all()


def test_markdown_says_how_far_sizes_reached_and_what_ran(tmp_path):
    """A pipeline's rows say what its converter produced and how large the compared cases were;
    the Markdown report sums them per backend."""
    from report_samples import _row, backend_doc, write_results

    a = _row("forward_parity", "pass")
    a.update(largest={"input_size": 33, "hidden_size": 17, "batch": 4, "steps": 65}, at_scale=3,
             produced={"ONNX LSTM op (opset 20)": 40})
    b = _row("lengths", "pass")
    b.update(largest={"input_size": 5, "hidden_size": 129, "batch": 17, "steps": 8}, at_scale=2,
             produced={"ONNX LSTM op (opset 20)": 10, "Loop with 31 ops in its body": 5})
    results = write_results(tmp_path / "r", [backend_doc("torch-onnx", "torch", "2.13.0", [a, b])])
    out = tmp_path / "report.md"
    assert cli_main(["report", str(results), "--markdown", str(out)]) in (0, 1)
    text = out.read_text()
    assert ("| torch-onnx | 33, 129, 17, 65 | 5 | ONNX LSTM op (opset 20) (50); Loop with 31 ops in its body (5) |"
            in text), text
