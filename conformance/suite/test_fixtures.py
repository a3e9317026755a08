"""The golden fixtures (``fixtures/``) against the selected backend(s): one test per case.

For every golden case the adapter can express (else reported unsupported, as the properties
are), the adapter's outputs are compared with the reference's stored outputs under the tolerance
table, and recorded under ``<results>/fixture-outputs/<backend>/<version>/``.  With
``--fixture-baseline DIR`` (or $LSTM_CONFORMANCE_FIXTURE_BASELINE), a recording of the same
backend under another framework version is compared too: the drift is reported with its size in
a table at the end of the run, and fails the case only beyond the tolerance.

Independently of any backend, the fixture files must match their manifest (sha256) and the
current reference must still reproduce every stored output to 1e-12.
"""

from __future__ import annotations

import time

import pytest

from adapters import BrokenContract, Unsupported
from conformance.golden import drift, store
from conformance.harness.known_issues import known_issue
from conformance.harness.requirements import gated
from conformance.harness.results import Stats
from conformance.harness.verdict import Mismatch, check_output
from conformance.suite.conftest import UNSUPPORTED, fixture_baseline, record, require_set_up

NAMES = store.case_names()


def test_fixture_manifest():
    """Every fixture file is listed in fixtures/MANIFEST.json with its digest; nothing is extra."""
    store.verify()


@pytest.mark.parametrize("name", NAMES)
def test_reference_reproduces_fixture(name):
    """The current reference still computes the stored outputs (to 1e-12): a reference change
    is caught here, not mistaken for a framework change."""
    case = store.load(name)
    problems = store.reproduce(case)
    assert not problems, (f"golden case {name!r}: the reference no longer reproduces its stored outputs:\n  "
                          + "\n  ".join(problems) + f"\n  if the change is intended: {store.REGENERATE}")


def excused(issue, case) -> bool:
    """A known issue excuses a golden case of its property when it covers the whole property or
    its ``when`` holds for the case (a narrow issue excuses only the cases it names)."""
    return issue is not None and (issue.when is None or bool(issue.when(case)))


@pytest.mark.parametrize("name", [f"golden_{n}" for n in NAMES])
def test_fixture(adapter, name, request):
    require_set_up(adapter, request, name, section="fixtures")
    fixture_name = name[len("golden_"):]
    case = store.load(fixture_name)
    stats = Stats()
    issue = known_issue(adapter.name, case.property_name)
    expected = case.expected_for(adapter.capabilities.reverse_time_order)
    tol = case.tolerance(adapter.name)
    extra = {"fixture": fixture_name, "fixture_property": case.property_name,
             "fixture_sha256": case.digest}
    stats.examples = 1
    start = time.perf_counter()
    try:
        actual = gated(adapter).run(case.case)
        stats.seconds = time.perf_counter() - start
        check_output(adapter, case.case, actual, expected, stats, property_name=name, quantity=case.quantity)
    except Unsupported as exc:
        stats.examples = 0
        record(adapter, name, "unsupported", stats, str(exc), section="fixtures")
        pytest.skip(UNSUPPORTED + str(exc))
    except (Mismatch, BrokenContract) as exc:
        # A broken contract (e.g. the runtime refused a converted model) fails the case as a
        # mismatch does, and a known issue of the case excuses it the same way.
        if excused(issue, case.case):
            record(adapter, name, "expected-failure", stats,
                   f"{issue.reason} (established with {issue.versions})\n{exc}", section="fixtures", extra=extra)
            pytest.xfail(f"known non-conformance of {case.property_name}: {issue.reason} "
                         f"(established with {issue.versions})")
        record(adapter, name, "fail", stats, str(exc), section="fixtures", extra=extra)
        raise
    except Exception as exc:
        record(adapter, name, "fail", stats, f"{type(exc).__name__}: {exc}", section="fixtures", extra=extra)
        raise
    version = adapter.version()
    results = request.config.getoption("--results")
    if results:
        drift.record_output(drift.recordings_root_for_results(results), adapter.name, version, case,
                            actual, tol)
    drifts = []
    baseline = fixture_baseline(request.config)
    if baseline:
        drifts = drift.drift_against(baseline, adapter.name, version, case, drift.output_arrays(actual), tol)
        extra["drift"] = [d.to_dict() for d in drifts]
    beyond = [d for d in drifts if d.beyond_tolerance]
    if beyond:
        lines = "\n  ".join(drift.drift_table(beyond))
        record(adapter, name, "fail", stats, f"outputs drifted beyond tolerance from another "
                                             f"{adapter.framework} version:\n  {lines}",
               section="fixtures", extra=extra)
        pytest.fail(f"{adapter.name} golden case {fixture_name}: outputs of {adapter.framework} {version} "
                    f"drifted beyond tolerance (rtol={tol.rtol:g} atol={tol.atol:g}) from a recording of "
                    f"another version:\n  {lines}")
    record(adapter, name, "pass", stats, section="fixtures", extra=extra)
