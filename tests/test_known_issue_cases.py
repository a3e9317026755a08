"""A narrow known issue is asked about every case of an example (``engine.cases_in``): in
``state_transfer`` the decoder's case is the second one drawn, and an issue that names only
decoder cases (their saturating values fail as an encoder's do) must excuse those examples.
Asking only the first case (the encoder's) fails them."""

from __future__ import annotations

import numpy as np
import pytest

from adapters import Output
from adapters.reference_adapter import ReferenceAdapter
from conformance.harness.engine import cases_in, run_property
from conformance.harness.strategies import build_case
from conformance.harness.verdict import Mismatch
from reference import LSTMSpec


class _AlwaysWrong(ReferenceAdapter):
    name = "reference-always-wrong"

    def run(self, case):
        out = super().run(case)
        return Output(np.asarray(out.y) + 1.0, [(np.asarray(h) + 1.0, np.asarray(c) + 1.0) for h, c in out.final])


def _decoder_only(case) -> bool:
    # state_transfer draws its encoder with an initial state and its decoder without one.
    return case.initial_state is None


def test_cases_in_lists_every_case():
    rng = np.random.default_rng(0)
    enc, dec = (build_case(rng, LSTMSpec(), 2, 3, 4, 5) for _ in range(2))
    assert cases_in(enc) == [enc]
    assert cases_in((enc, dec)) == [enc, dec] and cases_in((enc, [1, 2])) == [enc]


def test_an_issue_naming_the_decoder_excuses_a_state_transfer_example():
    stats = run_property("state_transfer", _AlwaysWrong(), max_examples=5, known_issue=_decoder_only)
    assert stats.known_issue_examples == 5 and stats.examples == 0


def test_an_issue_naming_no_case_of_the_example_excuses_nothing():
    with pytest.raises(Mismatch):
        run_property("state_transfer", _AlwaysWrong(), max_examples=5, known_issue=lambda case: False)
