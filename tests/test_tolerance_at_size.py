"""The tolerances are fair at size: a straightforward float32 LSTM (tests/float32_lstm.py) passes
every property it can express with the run's profile, and the scale property at sizes up to those
of the thorough profile; and they still catch: the same LSTM with f and g crossed past unit 16,
or its state lost at step 32, fails at those sizes."""

from __future__ import annotations

import pytest

from conformance.harness.engine import run_property
from conformance.harness.mutants import Mutant
from conformance.harness.mutation_check import caught
from conformance.harness.sizes import SizePlan
from float32_lstm import Float32LSTMAdapter

PROPERTIES = ("forward_parity", "initial_state", "state_transfer", "step_by_step", "streaming", "forget_bias",
              "recurrent_bias", "long_sequence", "scale", "activation_relu", "activation_linear", "hard_sigmoid",
              "hard_sigmoid_keras2", "option_combinations")
#: Up to the sizes of the thorough profile, fewer multiply-adds an example (the reference's cost).
LARGE = SizePlan(share=1, max_size=1024, max_batch=256, max_steps=512, max_work=2e8)


@pytest.fixture(scope="module")
def adapter():
    return Float32LSTMAdapter()


@pytest.mark.parametrize("name", PROPERTIES)
def test_a_float32_lstm_passes(adapter, name):
    run_property(name, adapter)


def test_a_float32_lstm_passes_at_the_largest_sizes(adapter):
    stats = run_property("scale", adapter, max_examples=12, sizes=LARGE, derandomize=True)
    assert stats.largest["hidden_size"] >= 255 or stats.largest["steps"] >= 255, stats.largest


@pytest.mark.parametrize("mutation", ["units_past_16_swapped", "steps_past_32_offset"])
def test_the_large_tolerances_still_catch_a_size_bug(adapter, mutation):
    ok, _ = caught(adapter, "scale", mutation, sizes=LARGE, max_examples=12)
    assert ok, f"{mutation} passed at the largest sizes"
