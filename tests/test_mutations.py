"""Every conformance property catches the deliberately broken variants it is meant to catch,
proved on the reference backend (the same check runs on each framework in its tox env)."""

from __future__ import annotations

import pytest

from adapters import load_adapter
from conformance.harness.mutants import CATCHES, MUTATIONS, applicable
from conformance.harness.mutation_check import caught
from conformance.harness.engine import run_property
from conformance.harness.properties import PROPERTIES

PAIRS = [(p, m) for p, ms in sorted(CATCHES.items()) for m in ms]


@pytest.fixture(scope="module")
def reference_adapter():
    return load_adapter("reference")


def test_every_property_has_a_mutant():
    assert set(CATCHES) == set(PROPERTIES), "a property without a mutant it must catch"
    used = {m for ms in CATCHES.values() for m in ms}
    assert used == set(MUTATIONS), f"mutations never checked: {sorted(set(MUTATIONS) - used)}"


@pytest.mark.parametrize("property_name,mutation", PAIRS, ids=[f"{p}-{m}" for p, m in PAIRS])
def test_property_catches_mutant(reference_adapter, property_name, mutation):
    assert applicable(reference_adapter, mutation)
    ok, report = caught(reference_adapter, property_name, mutation)
    assert ok, f"property {property_name!r} did not catch the mutant {mutation!r}"
    # The report is the one users read: it must locate the error.
    assert "max abs err" in report or "shape" in report or "missing" in report
    assert "rerun: " in report and "counterexample: " in report


@pytest.mark.parametrize("property_name", sorted(CATCHES))
def test_unmutated_reference_passes(reference_adapter, property_name):
    run_property(property_name, reference_adapter, max_examples=5)
