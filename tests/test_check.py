"""`python -m conformance check`: conforming callables pass; every deliberately broken variant in
tests/native_mutants.py is caught with a minimal counterexample (kept mutation tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import native_mutants as nm
from conformance.cli import main
from conformance.harness.properties import PROPERTIES
from conformance.tools.check import check, hint_for, render
from adapters.callable_adapter import Convention, reference_callable

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "numpy_lstm.py"
MUTANTS = Path(nm.__file__)
TF1 = Convention("igfo", forget_bias=1.0)
FEW = 25


@pytest.mark.parametrize("fn, conv, dtype", [
    (nm.good, TF1, "float32"),
    (nm.good, TF1, "float64"),
    (nm.good_float32, TF1, "float32"),
    (nm.good_4h_d, Convention("igfo", "4H,D", forget_bias=1.0), "float32"),
    (reference_callable(Convention("oigf", "4H,D", "4H,H", -0.7, "hard_sigmoid")), None, "float64"),
    (nm.implementation(Convention("gfoi", "D,4H", "4H,H", 0.5, "hard_sigmoid_keras2")), None, "float32"),
], ids=["good", "good-float64", "good-float32-arithmetic", "4h-d", "reference-oigf", "float32-gfoi"])
def test_conforming_callables_pass(fn, conv, dtype):
    if conv is None:
        conv = _convention_of(fn)
    report = check(fn, conv, max_examples=FEW, dtype=dtype)
    assert report.ok, "\n".join(r.get("message", "") for r in report.rows)
    expected = set(BARE) | ({f"dtype_{dtype}"} if dtype != "float32" else set())
    if conv.recurrent_activation != "sigmoid":
        expected.add(conv.recurrent_activation)
    assert {r["property"] for r in report.rows} == expected
    assert all(r["examples"] == FEW for r in report.rows)
    assert set(report.not_applicable) == set(PROPERTIES) - expected


#: The suite's properties a bare callable (one forward layer, sigmoid, tanh, float32) expresses.
BARE = ("forward_parity", "initial_state", "state_transfer", "step_by_step", "streaming", "forget_bias",
        "recurrent_bias", "long_sequence", "option_combinations", "scale")


def _convention_of(fn):
    if fn.__name__.startswith("reference_"):
        return Convention("oigf", "4H,D", "4H,H", -0.7, "hard_sigmoid")
    return Convention("gfoi", "D,4H", "4H,H", 0.5, "hard_sigmoid_keras2")


#: mutant -> (properties that must catch it, text the counterexample must contain)
CAUGHT_BY = {
    "swapped_gates": (["forward_parity"], "first diverging time step: t=0"),
    "forget_bias_dropped": (["forward_parity", "initial_state"], "counterexample: B=1"),
    "state_not_carried": (["forward_parity", "initial_state", "streaming"], "first diverging time step: t="),
    "h_not_carried": (["forward_parity", "initial_state"], "first diverging time step: t=1"),
    "cell_clip_3": (["initial_state", "long_sequence"], "final[0].c"),
    "clip_at_wrong_place": (["initial_state", "long_sequence"], "first diverging time step"),
    "hard_sigmoid_keras2": (["forward_parity"], "max abs err"),
    "nan_at_step_2": (["forward_parity"], "NaN positions differ"),
    "raises_on_long": (["long_sequence"], "the callable raised RuntimeError"),
}


@pytest.mark.parametrize("name", sorted(CAUGHT_BY))
def test_mutants_are_caught(name):
    fn, what = nm.MUTANTS[name]
    properties, text = CAUGHT_BY[name]
    report = check(fn, TF1, max_examples=60, only=properties)
    failed = [r for r in report.rows if r["status"] == "fail"]
    assert len(failed) == len(properties), f"{name} ({what}) was not caught by " + str(
        [r["property"] for r in report.rows if r["status"] == "pass"])
    assert all(text in r["message"] for r in failed), failed[0]["message"]


SIZE_MUTANTS = ("units_past_16", "rows_past_16", "state_lost_at_step_32")


@pytest.mark.parametrize("name", SIZE_MUTANTS)
def test_default_check_catches_bugs_past_a_size_boundary(name):
    """With default settings (every property, 100 examples, --max-size 33), check catches an LSTM
    that is right on small shapes and wrong past 16 units, 16 batch rows or 32 steps, and shrinks
    to the boundary."""
    fn, what = nm.MUTANTS[name]
    small = check(fn, TF1, max_examples=30, max_size=5, only=["forward_parity", "initial_state"])
    assert small.ok, f"{name} is caught without sizes at scale: not a size mutant"
    report = check(fn, TF1)
    failed = {r["property"]: r for r in report.rows if r["status"] == "fail"}
    assert "scale" in failed, f"{name} ({what}) was not caught by the scale property"
    boundary = {"units_past_16": "H=17", "rows_past_16": "B=17", "state_lost_at_step_32": "T=33"}[name]
    assert boundary in failed["scale"]["message"], failed["scale"]["message"][:600]


def test_right_at_first_step_wrong_after_is_minimal():
    """The counterexample is shrunk to the smallest case: one row, two steps, one unit."""
    report = check(nm.MUTANTS["state_not_carried"][0], TF1, max_examples=60, only=["forward_parity"])
    message = report.rows[0]["message"]
    assert "B=1, T=2, D=1, H=1" in message
    assert "max abs error of y by time step: t=0: 0, t=1:" in message
    assert "values (native packing, as passed to the callable)" in message


def test_wrong_layout_is_caught():
    conv = Convention("igfo", "4H,D", forget_bias=1.0)
    assert check(nm.good_4h_d, conv, max_examples=FEW, only=["forward_parity"]).ok
    report = check(nm.wrong_layout, conv, max_examples=FEW, only=["forward_parity"])
    assert not report.ok


def test_wrong_claim_is_caught():
    """The right callable with a wrong claim (gate order of another framework) fails."""
    report = check(nm.good, Convention("ifgo", forget_bias=1.0), max_examples=FEW, only=["forward_parity"])
    assert not report.ok


def test_contract_violations_are_failures():
    report = check(nm.wrong_shapes, TF1, max_examples=5, only=["forward_parity"])
    assert not report.ok and "expected shape" in report.rows[0]["message"]
    report = check(nm.two_results, TF1, max_examples=5, only=["forward_parity"])
    assert not report.ok and "returned 2 values" in report.rows[0]["message"]


def test_same_seed_same_counterexample():
    fn = nm.MUTANTS["cell_clip_3"][0]
    first = check(fn, TF1, max_examples=20, seed=7, only=["forward_parity"]).rows[0]["message"]
    again = check(fn, TF1, max_examples=20, seed=7, only=["forward_parity"]).rows[0]["message"]
    assert first == again and "counterexample" in first


# --- command line ----------------------------------------------------------------------------

def test_cli_pass_and_fail(capsys):
    assert main(["check", f"{EXAMPLES}:tf_lstm", "--gate-order", "igfo", "--forget-bias", "1",
                 "--max-examples", "10"]) == 0
    out = capsys.readouterr()
    assert "verdict: conforms" in out.out and "forward_parity: up to 10 examples" in out.err
    assert main(["check", f"{MUTANTS}:MUTANTS", "--gate-order", "igfo"]) == 3  # a dict is not callable
    assert main(["check", f"{EXAMPLES}:tf_lstm", "--gate-order", "tf", "--max-examples", "10",
                 "--property", "forward_parity"]) == 1
    out = capsys.readouterr().out
    assert "DOES NOT CONFORM" in out and "minimal counterexample" in out


def test_cli_json(capsys):
    code = main(["check", f"{EXAMPLES}:torch_lstm", "--gate-order", "torch", "--kernel-layout", "4H,D",
                 "--recurrent-layout", "4H,H", "--max-examples", "5", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["conforms"] is True
    assert data["convention"]["gate_order"] == "ifgo"
    assert set(data["properties"]) == set(BARE)
    assert data["properties"]["forward_parity"]["status"] == "pass"  # the suite's result row


def test_cli_usage_errors_exit_3():
    with pytest.raises(SystemExit) as exc:
        main(["check", f"{EXAMPLES}:tf_lstm"])  # --gate-order is required
    assert exc.value.code == 3
    assert main(["check", f"{EXAMPLES}:tf_lstm", "--gate-order", "ifgx"]) == 3
    assert main(["check", f"{EXAMPLES}:tf_lstm", "--gate-order", "ifgo", "--kernel-layout", "D,H"]) == 3


def test_float_inputs_are_passed_in_the_dtype():
    seen = set()

    def spy(x, h0, c0, kernel, recurrent_kernel, bias):
        seen.update(a.dtype.name for a in (x, h0, c0, kernel, recurrent_kernel, bias))
        return nm.good(x, h0, c0, kernel, recurrent_kernel, bias)

    check(spy, TF1, max_examples=3, only=["forward_parity"], dtype="float32")
    assert seen == {"float32"}
    assert np.float32  # numpy imported for the dtype names


def test_a_hang_is_a_failed_example_and_stops_the_run():
    report = check(nm.hangs_on_long, TF1, max_examples=30, timeout=0.5, max_size=5,
                   only=["forward_parity", "long_sequence", "streaming"])
    rows = {r["property"]: r for r in report.rows}
    assert rows["forward_parity"]["status"] == "pass"
    hung = rows["long_sequence"]
    assert hung["status"] == "fail" and hung["cause"].startswith("the callable did not return within")
    assert "counterexample: B=" in hung["message"] and "rerun: python -m conformance check" in hung["message"]
    assert report.not_run == ["streaming"] and not report.ok


def test_the_cli_does_not_wait_for_a_hung_callable(tmp_path):
    import subprocess
    import sys
    import time

    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "conformance", "check", f"{MUTANTS}:hangs_on_long", "--gate-order",
                           "igfo", "--forget-bias", "1", "--timeout", "0.5", "--max-examples", "20",
                           "--property", "long_sequence", "--property", "streaming"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "did not return within" in proc.stdout and "not run, after the callable hung (1): streaming" in proc.stdout
    assert time.perf_counter() - start < 60


@pytest.mark.parametrize("mutant, cause", [
    ("nan_at_step_2", "y: NaN positions differ"),
    ("raises_on_long", "the callable raised RuntimeError"),
    ("swapped_gates", "x the tolerance)"),
])
def test_a_failure_line_says_what_failed(mutant, cause):
    report = check(nm.MUTANTS[mutant][0], TF1, max_examples=60, only=["forward_parity", "long_sequence"])
    failed = [r for r in report.rows if r["status"] == "fail"]
    assert failed and cause in failed[0]["cause"], failed[0]["cause"]
    assert cause in render(report)


def test_relative_errors_are_reported_where_they_mean_something():
    report = check(nm.MUTANTS["swapped_gates"][0], TF1, max_examples=20, only=["forward_parity"])
    assert report.rows[0]["max_rel_error"] < 1e6  # not 1e+282 from an expected value near 0
    assert "np.float64(" not in report.rows[0]["message"]


def test_a_near_miss_convention_is_named():
    """A Keras 2 LSTM claimed with Keras 3's hard_sigmoid: the hint names hard_sigmoid_keras2."""
    claim = Convention("ifgo", recurrent_activation="hard_sigmoid")
    report = check(nm.keras2_lstm, claim, max_examples=10, only=["forward_parity"])
    assert not report.ok
    hint = hint_for(nm.keras2_lstm, claim, "float32")
    assert "recurrent activation hard_sigmoid_keras2 (claimed hard_sigmoid)" in hint
    assert "--recurrent-activation hard_sigmoid_keras2" in hint
    assert hint_for(nm.keras2_lstm, Convention("ifgo", recurrent_activation="hard_sigmoid_keras2"), "float32") == ""


def test_check_takes_the_cell_activation():
    conv = Convention("ifgo", activation="relu")
    assert check(reference_callable(conv, output_dtype="float32"), conv, max_examples=10,
                 only=["forward_parity"]).ok
    assert not check(reference_callable(Convention("ifgo"), output_dtype="float32"), conv, max_examples=20,
                     only=["forward_parity"]).ok
