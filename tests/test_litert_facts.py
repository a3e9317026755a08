"""Facts about LiteRT's fused LSTM kernels built directly (adapters/litert_native_adapter.py),
established with ai-edge-litert 2.3.0 and recorded in docs/converters/litert.md.  Run by
`tox -e litert`; skipped where ai-edge-litert is not installed.  A failure here means a LiteRT
release changed one of them: update the documentation, the adapters and
conformance/harness/known_issues.py (the litert-bilstm entry)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from adapters.base import Case, Output  # noqa: E402
from adapters.litert_native_adapter import (LITERT_LAYER_NORM_EPSILON, LiteRTBidirectionalLSTMAdapter,  # noqa: E402
                                            LiteRTLSTMAdapter)
from adapters.reference_adapter import reference_output  # noqa: E402
from conformance.harness.strategies import build_case  # noqa: E402
from reference import LSTMParams, LSTMSpec  # noqa: E402


def _layer_norm_case(spread: float, epsilon: float) -> Case:
    """One step of a layer-norm LSTM whose four units' pre-activations (x = 1, h0 = 0) are 0, 1,
    2, 3 times ``spread`` in every gate: the normalisation sees a variance of 1.25 spread**2."""
    hidden = 4
    block = spread * np.arange(hidden)
    kernel = np.tile(block, 4)[None, :].astype(np.float32).astype(np.float64)
    params = LSTMParams(kernel=kernel, recurrent_kernel=np.zeros((hidden, 4 * hidden)),
                        bias=np.repeat([0.5, 1.0, -0.25, 0.75], hidden), layer_norm=np.ones(4 * hidden))
    spec = LSTMSpec(layer_norm=True, layer_norm_epsilon=epsilon)
    return Case(spec=spec, layers=[[params]], x=np.ones((1, 1, 1)))


def _error(out, expected) -> float:
    return max(float(np.abs(out.y - expected.y).max()),
               *(float(np.abs(a - b).max()) for f, e in zip(out.final, expected.final) for a, b in zip(f, e)))


def test_the_float_layer_norm_adds_1e_8_to_the_variance():
    """Pre-activations 2e-5 apart (variance 5e-10): the kernel's normalised values are those of
    sqrt(variance + 1e-8) (about 0.3 of one standard deviation), not of sqrt(variance) (1.34)."""
    case = _layer_norm_case(2e-5, LITERT_LAYER_NORM_EPSILON)
    out = LiteRTLSTMAdapter().run(case)
    assert _error(out, reference_output(case)) < 1e-6
    assert _error(out, reference_output(case.replace(spec=case.spec.replace(layer_norm_epsilon=0.0)))) > 0.05


def test_a_row_of_equal_values_normalises_to_zero():
    """Equal pre-activations in a row: every unit's gate is the activation of its bias alone, as in
    the reference (with epsilon 1e-8 or 0)."""
    case = _layer_norm_case(0.0, LITERT_LAYER_NORM_EPSILON)
    out = LiteRTLSTMAdapter().run(case)
    assert _error(out, reference_output(case)) < 1e-7
    assert _error(out, reference_output(case.replace(spec=case.spec.replace(layer_norm_epsilon=0.0)))) < 1e-7


def _row(out: Output, row: int) -> Output:
    return Output(out.y[row:row + 1], [(h[row:row + 1], c[row:row + 1]) for h, c in out.final])


def _bidirectional(batch: int, time_major: bool) -> float:
    case = build_case(np.random.default_rng(1), LSTMSpec(), batch, 4, 3, 2, direction="bidirectional",
                      initial_state=True)
    adapter = LiteRTBidirectionalLSTMAdapter()
    adapter.time_major = time_major
    out, expected = adapter.run(case), reference_output(case)
    # Row 0 is right in every layout; the known issue is about the rows after it.
    assert _error(_row(out, 0), _row(expected, 0)) < 1e-6
    return _error(out, expected)


def test_merged_outputs_batch_major_misplace_the_output_state_of_rows_after_the_first():
    """BIDIRECTIONAL_SEQUENCE_LSTM, merge_outputs, time_major = false, B > 1: row b reads and writes
    its h at row 2b (lstm_eval.cc EvalFloat); time_major = true and B = 1 are right."""
    assert _bidirectional(1, time_major=False) < 1e-6
    assert _bidirectional(3, time_major=True) < 1e-6
    assert _bidirectional(3, time_major=False) > 0.1
