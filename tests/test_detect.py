"""`python -m conformance detect`: every gate order, layout, recurrent activation and a range of
forget biases is found on reference-built and hand-written float32 callables; ambiguous and
non-LSTM callables get exit 2 and 1 with the reason."""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

import native_mutants as nm
from conformance.cli import main
from conformance.tools.detect import LAYOUT_PAIRS, detect
from adapters.callable_adapter import Convention, reference_callable
from reference import ALL_GATE_ORDERS
from reference.activations import RECURRENT_ACTIVATIONS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "numpy_lstm.py"
MUTANTS = Path(nm.__file__)
ACTIVATIONS = tuple(RECURRENT_ACTIVATIONS)
FORGET_BIASES = (0.0, 1.0, 0.5, -0.7)


def _covering_design():
    """All 24 gate orders; across them every (layout pair, activation) combination twice and
    every forget bias with several layouts."""
    for k, order in enumerate(ALL_GATE_ORDERS):
        kernel_layout, recurrent_layout = LAYOUT_PAIRS[k % 4]
        yield Convention(order, kernel_layout, recurrent_layout, FORGET_BIASES[(k // 4) % 4],
                         ACTIVATIONS[k % 3])


def _assert_found(result, conv):
    assert result.status == "unique", result.reason
    found = result.best.convention
    assert (found.gate_order, found.kernel_layout, found.recurrent_layout, found.recurrent_activation) == (
        conv.gate_order, conv.kernel_layout, conv.recurrent_layout, conv.recurrent_activation), result.reason
    assert found.forget_bias == conv.forget_bias, (found.forget_bias, result.best.forget_bias_estimate)


@pytest.mark.parametrize("conv", list(_covering_design()), ids=lambda c: f"{c.gate_order}-{c.kernel_layout}-"
                         f"{c.recurrent_layout}-{c.recurrent_activation}-{c.forget_bias:g}")
def test_detects_reference_callable(conv):
    _assert_found(detect(reference_callable(conv)), conv)


@pytest.mark.parametrize("conv", [
    Convention("igfo", "D,4H", "H,4H", 1.0, "sigmoid"),
    Convention("ifgo", "4H,D", "4H,H", 0.0, "sigmoid"),
    Convention("iofg", "4H,D", "4H,H", 0.0, "sigmoid"),
    Convention("ifog", "D,4H", "H,4H", 0.0, "sigmoid"),
    Convention("ogif", "D,4H", "4H,H", 2.5, "hard_sigmoid"),
    Convention("gfoi", "4H,D", "H,4H", -0.7, "hard_sigmoid_keras2"),
    Convention("fiog", "D,4H", "H,4H", 0.5, "hard_sigmoid_keras2"),
    Convention("figo", "4H,D", "H,4H", 1.25, "sigmoid"),
], ids=lambda c: c.gate_order)
def test_detects_float32_implementations(conv):
    """Hand-written LSTMs computing in float32 arithmetic (not only rounded results)."""
    result = detect(nm.implementation(conv, np.float32))
    _assert_found(result, conv)
    assert 0 < result.best.max_abs < 1e-3  # float32 roundoff, within the float32 tolerance


def test_float64_tolerance_holds_float64_callables():
    conv = Convention("oifg", "D,4H", "H,4H", 0.3, "sigmoid")
    result = detect(nm.implementation(conv, np.float64), dtype="float64")
    _assert_found(result, conv)
    assert result.best.max_abs < 1e-12


@pytest.mark.parametrize("input_size, hidden_size", [(8, 2), (2, 5), (7, 3)])
def test_other_probe_sizes(input_size, hidden_size):
    """Including D == 4H, where both kernel layouts have the same shape and only values tell (H = 1:
    tests/test_unit_major.py, the packing is undetermined there)."""
    conv = Convention("fgoi", "4H,D", "H,4H", 0.5, "sigmoid")
    result = detect(reference_callable(conv), input_size=input_size, hidden_size=hidden_size)
    _assert_found(result, conv)


def test_detection_takes_well_under_a_second():
    start = time.perf_counter()
    detect(nm.good)
    assert time.perf_counter() - start < 2.0


@pytest.mark.skipif(not os.environ.get("LSTM_CONFORMANCE_FULL_GRID"),
                    reason="the full 24 x 4 x 3 x 4 grid takes about 3 minutes: "
                           "set LSTM_CONFORMANCE_FULL_GRID=1")
def test_full_grid():
    missed = []
    grid = itertools.product(ALL_GATE_ORDERS, LAYOUT_PAIRS, ACTIVATIONS, FORGET_BIASES)
    for order, layouts, act, fb in grid:
        conv = Convention(order, layouts[0], layouts[1], fb, act)
        result = detect(reference_callable(conv))
        if result.status != "unique" or result.best.convention != conv:
            missed.append((conv, result.reason))
    assert not missed, missed[:3]


# --- examples -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, order, layouts, fb", [
    ("cs231n_lstm", "ifog", ("D,4H", "H,4H"), 0.0),
    ("tf_lstm", "igfo", ("D,4H", "H,4H"), 1.0),
    ("torch_lstm", "ifgo", ("4H,D", "4H,H"), 0.0),
])
def test_examples(name, order, layouts, fb):
    from conformance.tools.native import load_callable

    result = detect(load_callable(f"{EXAMPLES}:{name}"))
    _assert_found(result, Convention(order, *layouts, fb, "sigmoid"))


# --- ambiguous and no match -----------------------------------------------------------------

def test_layout_adaptive_callable_is_ambiguous():
    result = detect(nm.transposing)
    assert result.status == "ambiguous" and result.exit_code == 2
    assert len(result.fits) == 4
    assert {h.convention.gate_order for h in result.fits} == {"igfo"}
    assert "accepts both kernel layouts and recurrent layouts" in result.reason


def test_forget_gate_never_seen_is_ambiguous():
    """A callable that only takes one step from zeros: the forget bias cannot be determined (its gate
    order can, by elimination)."""
    result = detect(nm.cell_only)
    assert result.status == "ambiguous" and result.exit_code == 2
    assert not result.forget_bias_determined
    assert result.best.convention.gate_order == "igfo"
    assert "forget bias never changed an output" in result.reason
    assert result.to_dict()["forget_bias"] is None


def test_non_lstm_matches_nothing():
    result = detect(nm.not_an_lstm)
    assert result.status == "none" and result.exit_code == 1
    assert "even the one-step probes are off" in result.reason


def test_state_not_carried_diverges_after_the_first_step():
    result = detect(nm.MUTANTS["state_not_carried"][0])
    assert result.status == "none"
    assert result.best.convention.gate_order == "igfo"
    assert "time step t=1" in result.reason and "right at the first time step" in result.reason


def test_cell_clip_is_pointed_at():
    result = detect(nm.MUTANTS["cell_clip_3"][0])
    assert result.status == "none"
    assert "is the cell state clipped at 3?" in result.reason


def test_wrong_shapes_reject_every_layout():
    """A callable that cannot be run under the contract is not "no match": it is an error (exit 3)."""
    result = detect(nm.wrong_shapes)
    assert result.status == "error" and result.best is None and result.exit_code == 3
    assert "the callable could not be run" in result.reason and "expected shape" in result.reason


def test_a_relu_lstm_is_identified():
    conv = Convention("ifgo", "4H,D", "4H,H", 0.0, "sigmoid", "relu")
    result = detect(reference_callable(conv, output_dtype="float32"))
    assert result.status == "unique", result.reason
    assert result.best.convention == conv


def test_states_returned_in_the_wrong_order_get_a_hint():
    def c_then_h(*args):
        y, h, c = nm.good(*args)
        return y, c, h

    result = detect(c_then_h)
    assert result.status == "none" and result.exit_code == 1
    assert "h_T and c_T match with their places exchanged" in result.reason
    assert "gate order igfo" in result.reason


def test_nan_outputs_are_not_a_match():
    result = detect(nm.MUTANTS["nan_at_step_2"][0])
    assert result.status == "none"
    assert "NaN" in result.reason


# --- command line ----------------------------------------------------------------------------

def test_cli_unique_json(capsys):
    assert main(["detect", f"{EXAMPLES}:tf_lstm", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("gate_order", "kernel_layout", "recurrent_layout", "forget_bias", "recurrent_activation",
                "max_abs_error", "unique"):
        assert key in data
    assert (data["gate_order"], data["kernel_layout"], data["recurrent_layout"], data["forget_bias"],
            data["recurrent_activation"], data["unique"]) == ("igfo", "D,4H", "H,4H", 1.0, "sigmoid", True)
    assert data["max_abs_error"] < 1e-4 and data["runner_up"]["max_abs_error"] > 0.1


def test_cli_text_verdict(capsys):
    assert main(["detect", f"{EXAMPLES}:cs231n_lstm"]) == 0
    out = capsys.readouterr().out
    assert "verdict: unique match" in out and "gate order            ifog   (as cs231n)" in out
    assert "check it: python -m conformance check" in out


def test_cli_exit_codes(capsys):
    assert main(["detect", f"{MUTANTS}:not_an_lstm"]) == 1
    assert "NO MATCH" in capsys.readouterr().out
    assert main(["detect", f"{MUTANTS}:transposing", "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["unique"] is False and data["status"] == "ambiguous"
    assert main(["detect", "no_such_module_xyz:fn"]) == 3
    assert "importing module 'no_such_module_xyz' failed" in capsys.readouterr().out
    assert main(["detect", f"{MUTANTS}:good", "--input-size", "2", "--hidden-size", "2"]) == 3
    with pytest.raises(SystemExit) as exc:
        main(["detect", f"{MUTANTS}:good", "--hidden-size", "two"])
    assert exc.value.code == 3  # usage errors never look like "ambiguous" (2)


def test_buggy_examples_are_explained():
    from conformance.tools.native import load_callable

    buggy = ROOT / "examples" / "buggy_lstm.py"
    ported = detect(load_callable(f"{buggy}:ported_tf_lstm"))
    _assert_found(ported, Convention("igfo", forget_bias=0.0))  # TF's forget_bias=1 was forgotten
    restarting = detect(load_callable(f"{buggy}:restarting_lstm"))
    assert restarting.status == "none" and "right at the first time step" in restarting.reason


def test_lower_precision_is_pointed_at():
    """A float16 implementation probed at float32 (or a float32 one at float64) does not match, and
    the verdict names the precision it does match at."""
    conv = Convention("igfo", forget_bias=1.0)
    result = detect(nm.implementation(conv, np.float16))
    assert result.status == "none" and "pass --dtype float16" in result.reason
    _assert_found(detect(nm.implementation(conv, np.float16), dtype="float16"), conv)
    result = detect(nm.implementation(conv, np.float32), dtype="float64")
    assert result.status == "none" and "pass --dtype float32" in result.reason
