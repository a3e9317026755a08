"""The properties catch deliberately broken variants of *this* backend's adapter: its weights
loaded with two gate blocks swapped, its forget bias dropped, its state not carried, ... (see
conformance/harness/mutants.py).  A property the backend cannot express is reported unsupported."""

from __future__ import annotations

import pytest

from adapters import Unsupported
from conformance.harness.known_issues import masked_mutation
from conformance.harness.mutants import CATCHES, applicable
from conformance.harness.mutation_check import caught
from conformance.harness.properties import PROPERTIES
from conformance.suite.conftest import UNSUPPORTED, require_set_up

PAIRS = [(p, m) for p, ms in sorted(CATCHES.items()) for m in ms]


@pytest.mark.parametrize("property_name,mutation", PAIRS, ids=[f"{p}-{m}" for p, m in PAIRS])
def test_mutant_is_caught(adapter, property_name, mutation, request):
    require_set_up(adapter, request)
    lacking = PROPERTIES[property_name].requires(adapter.capabilities)
    if lacking:
        pytest.skip(UNSUPPORTED + f"{adapter.name} cannot express {property_name}: lacks " + ", ".join(lacking))
    if not applicable(adapter, mutation):
        pytest.skip(UNSUPPORTED + f"the mutation {mutation} needs a capability {adapter.name} lacks")
    try:
        ok, _ = caught(adapter, property_name, mutation, max_examples=10)
    except Unsupported as exc:  # the backend refuses every example the property draws
        pytest.skip(UNSUPPORTED + str(exc))
    masked = masked_mutation(adapter.name, property_name, mutation)
    if masked:
        assert not ok, (f"{mutation!r} of {adapter.name!r} is caught by {property_name!r} now, although "
                        f"MASKED_MUTATIONS says it cannot be ({masked}): the issue was fixed, remove the entry")
        pytest.skip(UNSUPPORTED + f"the mutation {mutation} computes what {adapter.name} computes: {masked}")
    assert ok, (f"property {property_name!r} did not catch the deliberately broken variant "
                f"{mutation!r} of backend {adapter.name!r} in 10 examples")
