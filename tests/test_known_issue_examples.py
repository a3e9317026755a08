"""A narrow known issue (``known_issue`` of ``engine.run_property``) covers the examples it names
however they fail: a mismatch, or a broken contract (a runtime that refuses the model a converter
wrote, as ONNX Runtime refuses torch.onnx's dynamo export of a projected LSTM).  Any other example
that breaks the contract fails the property with its counterexample."""

from __future__ import annotations

import pytest

from adapters.base import BrokenContract
from adapters.reference_adapter import ReferenceAdapter
from conformance.harness.engine import run_property
from conformance.harness.strategies import SMALL
from conformance.harness.verdict import Mismatch


class RefusesWideLayers(ReferenceAdapter):
    """The reference, except that a layer of more than 3 units is refused at run time."""

    name = "refuses-wide-layers"

    def run(self, case):
        if case.params.hidden_size > 3:
            raise BrokenContract("the runtime refused the converted model: hidden size > 3")
        return super().run(case)


def test_a_narrow_known_issue_covers_a_broken_contract_in_the_cases_it_names():
    stats = run_property("forward_parity", RefusesWideLayers(), max_examples=30, sizes=SMALL,
                         derandomize=True, known_issue=lambda case: case.params.hidden_size > 3)
    assert stats.known_issue_examples > 0 and stats.examples > 0
    assert stats.known_issue_examples + stats.examples == 30


def test_a_broken_contract_outside_the_known_issue_fails_with_its_counterexample():
    with pytest.raises(Mismatch, match=r"(?s)counterexample: .*H=4.*the runtime refused"):
        run_property("forward_parity", RefusesWideLayers(), max_examples=30, sizes=SMALL, derandomize=True,
                     known_issue=lambda case: case.params.hidden_size > 4)
