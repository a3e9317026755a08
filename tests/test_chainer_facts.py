"""The real chainer.functions.lstm, asked through the chainer worker (run by `tox -e chainer`;
skipped, saying why, where `python -m conformance setup chainer` has not been run): detect
identifies its unit-major a, i, f, o packing, check accepts it under that claim and catches the
gate-major claim, and the NumPy stand-in of examples/numpy_lstm.py (which the tests of the
reference env use in its place) computes what Chainer computes.  docs/frameworks/chainer.md."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from adapters.callable_adapter import Convention
from worker_facts import require_worker

ROOT = Path(__file__).resolve().parents[1]
CHAINER = Convention("chainer", "4H,D", "4H,H", packing="unit-major")


@pytest.fixture(scope="module")
def f_lstm():
    require_worker("chainer", "LSTM_CONFORMANCE_CHAINER_FACTS", "Chainer")
    from adapters.chainer_adapter import ChainerFunctionLSTM

    fn = ChainerFunctionLSTM()
    try:
        yield fn
    finally:
        fn.close()


def test_detect_identifies_f_lstm_as_unit_major_gifo(f_lstm):
    from conformance.tools.detect import detect

    result = detect(f_lstm)
    assert result.status == "unique", result.reason
    c = result.best.convention
    assert (c.gate_order, c.packing, c.kernel_layout, c.recurrent_layout, c.forget_bias, c.recurrent_activation) == (
        "gifo", "unit-major", "4H,D", "4H,H", 0.0, "sigmoid")
    assert result.to_dict()["presets"] == ["chainer"]


def test_check_accepts_the_unit_major_claim_and_catches_the_gate_major_one(f_lstm):
    from conformance.tools.check import check

    report = check(f_lstm, CHAINER, max_examples=15, only=["forward_parity", "initial_state", "forget_bias"])
    assert report.ok, "\n".join(r.get("message", "") for r in report.rows)
    wrong = check(f_lstm, dataclasses.replace(CHAINER, packing="gate-major"), max_examples=15, only=["forward_parity"])
    assert not wrong.ok


@pytest.mark.parametrize("hidden, dtype", [(3, np.float32), (5, np.float64)])
def test_the_numpy_stand_in_computes_what_chainer_computes(f_lstm, hidden, dtype):
    from conformance.tools.native import load_callable

    stand_in = load_callable(f"{ROOT / 'examples' / 'numpy_lstm.py'}:chainer_lstm")
    rng = np.random.default_rng(hidden)
    x = rng.normal(size=(2, 6, 4)).astype(dtype)
    h0, c0 = (rng.normal(size=(2, hidden)).astype(dtype) for _ in range(2))
    w = rng.normal(size=(4 * hidden, 4)).astype(dtype)
    r = rng.normal(size=(4 * hidden, hidden)).astype(dtype)
    b = rng.normal(size=4 * hidden).astype(dtype)
    for expected, actual in zip(f_lstm(x, h0, c0, w, r, b), stand_in(x, h0, c0, w, r, b)):
        np.testing.assert_allclose(actual, expected, rtol=2e-5, atol=2e-5)  # the stand-in computes in float32
