"""A known issue excuses a golden case only where it applies: a narrow known issue (with ``when``)
excuses the golden cases it names and no other case of its property (conformance/suite/
test_fixtures.py); a whole-property issue excuses every case of it.  The mutant is the old rule,
which excused every case of the property and so hid, e.g., a failure of the unpadded reverse
case behind an issue about padded reverse runs with an initial state."""

from __future__ import annotations

import numpy as np

from conformance.golden import store
from conformance.harness.known_issues import KnownIssue, _padded_reverse_with_state
from conformance.suite.test_fixtures import excused

NARROW = KnownIssue("demo", "reverse", "demo 1.0", "padded reverse with h0", when=_padded_reverse_with_state)
WHOLE = KnownIssue("demo", "reverse", "demo 1.0", "every reverse run")


def excused_by_name_only(issue, case) -> bool:
    """The rule before: any known issue of the property excused any golden case of it."""
    return issue is not None


def test_a_narrow_issue_excuses_only_the_cases_it_names():
    unpadded = store.load("reverse").case  # reverse, no padding: not what the issue names
    padded = store.load("reverse_lengths_zeros").case  # padded, but from a zero state
    p = padded.params
    named = padded.replace(initial_state=[(np.full((padded.batch, p.output_size), 0.5),
                                           np.full((padded.batch, p.hidden_size), 2.0))])
    assert not _padded_reverse_with_state(unpadded) and not _padded_reverse_with_state(padded)
    assert _padded_reverse_with_state(named)
    assert not excused(NARROW, unpadded) and not excused(NARROW, padded) and excused(NARROW, named)
    assert excused(WHOLE, unpadded) and excused(WHOLE, padded)
    assert not excused(None, unpadded)


def test_the_old_rule_is_caught_as_too_wide():
    """The mutant rule excuses the unpadded reverse case under the narrow issue: this test file's
    assertion above fails for it."""
    unpadded = store.load("reverse").case
    assert excused_by_name_only(NARROW, unpadded) != excused(NARROW, unpadded)
