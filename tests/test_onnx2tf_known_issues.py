"""The predicates of the onnx2tf known issues (conformance/harness/known_issues.py), checked on
the reference alone: which cases onnx2tf's fixed activation parameters change, and the mutation
its HardSigmoid makes invisible."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.harness.known_issues import (_onnx2tf_activation, _onnx2tf_activations_differ, known_issue,
                                              masked_mutation)
from conformance.harness.strategies import build_case
from reference import LSTMSpec


@pytest.mark.parametrize("name,built", [
    ("hard_sigmoid", "hard_sigmoid_keras2"),
    ("hard_sigmoid_keras2", "hard_sigmoid_keras2"),
    ("scaled_tanh(alpha=1.5, beta=0.5)", "scaled_tanh(alpha=1, beta=1)"),
    ("leaky_relu(alpha=0.01)", "leaky_relu(alpha=0.01)"),
    ("elu(alpha=0.5)", "elu(alpha=1)"),
    ("tanh", "tanh"),
    ("relu", "relu"),
])
def test_the_activation_onnx2tf_builds(name, built):
    assert _onnx2tf_activation(name) == _onnx2tf_activation(built) == built


@pytest.mark.parametrize("spec,differs", [
    (LSTMSpec(), False),
    (LSTMSpec(recurrent_activation="hard_sigmoid_keras2"), False),
    (LSTMSpec(recurrent_activation="hard_sigmoid"), True),
    (LSTMSpec(activation="scaled_tanh(alpha=1.5, beta=0.5)"), True),
    (LSTMSpec(cell_activation="elu(alpha=0.5)"), True),
    (LSTMSpec(backward_activations=("sigmoid", "tanh", "affine(alpha=2.0, beta=0.5)")), True),
])
def test_cases_whose_activation_parameters_onnx2tf_replaces(spec, differs):
    direction = "bidirectional" if spec.backward_activations else "forward"
    case = build_case(np.random.default_rng(3), spec, 2, 4, 3, 4, direction=direction, origin={})
    assert _onnx2tf_activations_differ(case) is differs
    assert known_issue("onnx2tf", "onnx_activations").when(case) is differs


def test_the_masked_mutation_is_named_for_its_property_only():
    assert masked_mutation("onnx2tf", "hard_sigmoid_keras2", "hard_sigmoid_variant_swapped")
    assert masked_mutation("onnx2tf", "hard_sigmoid", "hard_sigmoid_variant_swapped") is None
    assert masked_mutation("tflite-keras", "hard_sigmoid_keras2", "hard_sigmoid_variant_swapped") is None
