"""Every conformance property against the selected backend(s): one test per property."""

from __future__ import annotations

import pytest
from hypothesis import Phase

from adapters import Unsupported
from conformance.harness.engine import run_property
from conformance.harness.known_issues import known_issue
from conformance.harness.properties import PROPERTIES
from conformance.harness.results import Stats
from conformance.harness.verdict import Mismatch
from conformance.suite.conftest import UNSUPPORTED, record, require_set_up


@pytest.mark.parametrize("property_name", sorted(PROPERTIES))
def test_property(adapter, property_name, request):
    require_set_up(adapter, request, property_name)
    issue = known_issue(adapter.name, property_name)
    narrow = issue is not None and issue.when is not None
    stats = Stats()
    # A documented whole-property non-conformance is expected to fail: the first failing example
    # is the evidence, and shrinking it would only cost framework calls (compiles, on JAX).
    settings = {"phases": [Phase.explicit, Phase.generate]} if issue is not None and not narrow else {}
    try:
        run_property(property_name, adapter, stats=stats, known_issue=issue.when if narrow else None,
                     **settings)
    except Unsupported as exc:
        record(adapter, property_name, "unsupported", stats, str(exc))
        pytest.skip(UNSUPPORTED + str(exc))
    except Mismatch as exc:
        if issue is not None and not narrow:
            record(adapter, property_name, "expected-failure", stats,
                   f"{issue.reason} (established with {issue.versions})\n{exc}")
            pytest.xfail(f"known non-conformance: {issue.reason} (established with {issue.versions})")
        record(adapter, property_name, "fail", stats, str(exc))
        raise
    except Exception as exc:
        record(adapter, property_name, "fail", stats, f"{type(exc).__name__}: {exc}")
        raise
    if issue is not None and not narrow:
        record(adapter, property_name, "fail", stats,
               f"documented as a known non-conformance ({issue.reason}) but it now passes")
        pytest.fail(f"{adapter.name} {property_name} is listed in conformance/harness/known_issues.py as a "
                    f"known non-conformance ({issue.reason}, {issue.versions}) but now passes: "
                    f"the framework changed; update the entry")
    if narrow and stats.known_issue_examples:
        message = (f"{stats.known_issue_examples} examples ({issue.when_text}) failed as documented: "
                   f"{issue.reason} (established with {issue.versions}); the other {stats.examples} passed")
        record(adapter, property_name, "expected-failure", stats, message)
        pytest.xfail(f"known non-conformance in {issue.when_text}; every other example passed")
    record(adapter, property_name, "pass", stats,
           f"the known issue ({issue.when_text}) was not exercised" if narrow else "")
