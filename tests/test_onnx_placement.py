"""Weights placed by tags must reproduce a real export (adapters/onnx_pipelines.py): where they do
not, the converter looked at weight values, and that kind of product is exported with each
example's own weights from then on (never run with a wrong placement, never failed for it).
Needs onnx: run by `tox -e tf2onnx` and `tox -e torch-onnx`."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from adapters.onnx_pipelines import OnnxPipeline  # noqa: E402


def model(ops: list[str], constant) -> onnx.ModelProto:
    """X -> ops (each adding the constant W) -> Y."""
    w = numpy_helper.from_array(np.asarray(constant, np.float32), "W")
    nodes, last = [], "X"
    for k, op in enumerate(ops):
        out = "Y" if k == len(ops) - 1 else f"t{k}"
        nodes.append(helper.make_node(op, [last, "W"], [out]))
        last = out
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])], [w])
    return helper.make_model(graph)


def test_a_bound_model_equal_to_the_real_export_has_no_problems():
    assert OnnxPipeline._placement_problems(model(["Add"], [1, 2]), model(["Add"], [1, 2])) == []


def test_other_operators_and_other_constants_are_named():
    assert OnnxPipeline._placement_problems(model(["Add", "Mul"], [1, 2]), model(["Add"], [1, 2])) == [
        "the graphs have different operators"]
    assert OnnxPipeline._placement_problems(model(["Add"], [1, 3]), model(["Add"], [1, 2])) == [
        "1 of 1 constant tensors differ"]


class _Placement:
    def bind(self, model, weights):
        pass


class _Stub(OnnxPipeline):
    """A pipeline whose tagged export is ``tagged`` and whose real export is ``real``."""

    name = "stub-pipeline"

    def __init__(self, tagged, real):
        super().__init__()
        self.tagged, self.real, self.exports = tagged, real, 0

    def _weights(self, handle):
        return [np.zeros(2, np.float32)]

    def _exported(self, case, handle, native):
        return self.tagged, _Placement(), "Add x1", None

    def _export(self, handle, case):
        self.exports += 1
        return self.real


def test_a_placement_that_does_not_reproduce_the_export_falls_back_to_real_exports():
    stub = _Stub(model(["Add"], [1, 2]), model(["Add", "Mul"], [1, 2]))
    serialized, produced = stub._model_for(None, None)
    assert onnx.load_from_string(serialized) == stub.real and stub.exports == 1
    assert "exported per example" in produced and "different operators" in produced
    serialized, produced = stub._model_for(None, None)  # the same product: exported again
    assert onnx.load_from_string(serialized) == stub.real and stub.exports == 2
    assert "exported per example" in produced


def test_a_verified_placement_is_reused_without_exporting():
    stub = _Stub(model(["Add"], [1, 2]), model(["Add"], [1, 2]))
    stub._model_for(None, None)
    stub._model_for(None, None)
    assert stub.exports == 1  # the one verification export
