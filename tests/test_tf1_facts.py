"""Conformance facts about the Keras LSTMs that sit next to TensorFlow 1.15, asked of the tf1
worker (run by `tox -e tf1`; skipped, saying why, where `python -m conformance setup tf1` has
not been run).  Recorded in docs/frameworks/tf1.md and in results/tf1-*.json ("facts")."""

from __future__ import annotations

import numpy as np
import pytest

from worker_facts import require_worker


@pytest.fixture(scope="module")
def facts():
    require_worker("tf1", "LSTM_CONFORMANCE_TF1_FACTS", "TF 1.15")
    from adapters.tf1_adapter import TF1LSTMCellAdapter

    adapter = TF1LSTMCellAdapter()
    try:
        yield adapter.facts()
    finally:
        adapter.close()


def test_tf_keras_1_15_lstm_defaults_to_hard_sigmoid(facts):
    assert facts["tensorflow"].startswith("1.15")
    assert facts["tf_keras_lstm_recurrent_activation"] == "hard_sigmoid"
    assert facts["tf_keras_lstmcell_recurrent_activation"] == "hard_sigmoid"


def test_tf_keras_1_15_hard_sigmoid_is_the_keras2_definition(facts):
    probe = np.array(facts["probe"])
    keras2 = np.clip(0.2 * probe + 0.5, 0.0, 1.0)  # reference "hard_sigmoid_keras2"
    np.testing.assert_allclose(facts["tf_keras_hard_sigmoid"], keras2, atol=1e-7)
    assert not np.allclose(facts["tf_keras_hard_sigmoid"], np.clip(probe / 6 + 0.5, 0, 1))


def test_standalone_keras_2_3_1_lstm_defaults_to_sigmoid(facts):
    assert facts["keras"] == "2.3.1", facts.get("keras_error")
    assert facts["keras_lstm_recurrent_activation"] == "sigmoid"
