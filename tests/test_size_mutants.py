"""Bugs that only a case past a size boundary shows (units past 16, batch rows past 16, steps
past 32: mutants.SIZE_MUTATIONS) are caught by every property family when its examples are drawn
at scale, and by the ``scale`` property in every run; a property that never left the small
shapes would pass them all.  Proved on the reference backend."""

from __future__ import annotations

import pytest

from adapters import load_adapter
from conformance.harness.mutants import SIZE_MUTATIONS, Mutant
from conformance.harness.mutation_check import caught
from conformance.harness.engine import run_property
from conformance.harness.properties import PROPERTIES
from conformance.harness.strategies import SMALL, SizePlan

#: Every example at scale, within the sizes that ``check`` reaches by default.
AT_SCALE = SizePlan(share=1, max_size=33, max_batch=33, max_steps=65, max_work=1e7)
PAIRS = [(p, m) for p in sorted(PROPERTIES) for m in SIZE_MUTATIONS]


@pytest.fixture(scope="module")
def reference_adapter():
    return load_adapter("reference")


@pytest.mark.parametrize("property_name,mutation", PAIRS, ids=[f"{p}-{m}" for p, m in PAIRS])
def test_every_property_catches_size_mutants_at_scale(reference_adapter, property_name, mutation):
    ok, report = caught(reference_adapter, property_name, mutation, sizes=AT_SCALE, max_examples=60)
    assert ok, f"{property_name} drawn at scale did not catch {mutation}"


@pytest.mark.parametrize("mutation", SIZE_MUTATIONS)
def test_small_shapes_cannot_catch_size_mutants(reference_adapter, mutation):
    """The mutants are right on small shapes: what catches them is the size."""
    run_property("forward_parity", Mutant(reference_adapter, mutation), max_examples=30, sizes=SMALL)


def test_a_size_failure_shrinks_to_the_boundary(reference_adapter):
    """Hypothesis shrinks a failing case at scale to the smallest size past the boundary."""
    from conformance.harness.verdict import Mismatch

    with pytest.raises(Mismatch) as info:
        run_property("scale", Mutant(reference_adapter, "units_past_16_swapped"), max_examples=60,
                     sizes=AT_SCALE, derandomize=True)
    text = str(info.value)
    assert "'hidden_size': 17" in text, text.splitlines()[:3]
