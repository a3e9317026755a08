"""pytest wiring of the conformance suite: backend selection, the "unsupported" outcome, and the
machine-readable result file.

    pytest conformance/suite --backend torch [--results results/]
    LSTM_CONFORMANCE_BACKEND=torch pytest conformance/suite

--backend takes registered names or module:attribute paths, comma-separated.

Result rows travel on each test report (``user_properties``) and are collected where reports
arrive, so the result file is also right under pytest-xdist, which tox uses to survive a backend
that crashes the process: xdist reports the crashed test as failed, starts a fresh worker and
goes on, and the crash becomes a "fail" row here.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import pytest

from conformance.harness import profiles
from conformance.harness.results import ResultFile, Stats, write_result_file

UNSUPPORTED = "UNSUPPORTED: "
ROW = "lstm_conformance_row"
_results: dict[str, dict] = {}
_aliases: dict[str, str] = {}  # --backend value -> adapter name
_orphans: dict[str, list] = {}  # --backend value -> rows of tests whose process died
_current_item = None


def pytest_addoption(parser):
    group = parser.getgroup("lstm-conformance")
    group.addoption("--backend", default=os.environ.get("LSTM_CONFORMANCE_BACKEND"),
                    help="backend name(s) or module:attribute, comma-separated "
                         "(default: $LSTM_CONFORMANCE_BACKEND)")
    group.addoption("--results", default=os.environ.get("LSTM_CONFORMANCE_RESULTS"),
                    help="directory for <backend>.json result files")
    group.addoption("--fixture-baseline", default=os.environ.get("LSTM_CONFORMANCE_FIXTURE_BASELINE"),
                    help="a directory of recorded golden-fixture outputs (a results directory or its "
                         "fixture-outputs/): report the drift from other framework versions "
                         "(default: $LSTM_CONFORMANCE_FIXTURE_BASELINE)")


def pytest_configure(config):
    config._lstm_profile = profiles.load()


def pytest_generate_tests(metafunc):
    if "backend_name" in metafunc.fixturenames:
        value = metafunc.config.getoption("--backend")
        if not value:
            raise pytest.UsageError("conformance suite: say which backend to test with --backend NAME "
                                    "or LSTM_CONFORMANCE_BACKEND (e.g. --backend reference)")
        names = [n.strip() for n in value.split(",") if n.strip()]
        metafunc.parametrize("backend_name", names, scope="session")


@pytest.fixture(scope="session")
def adapter(backend_name):
    from adapters import load_adapter

    instance = load_adapter(backend_name)
    instance._described = dict(instance.describe(), requested_as=backend_name)
    yield instance
    instance.close()


def pytest_runtest_setup(item):
    global _current_item
    _current_item = item


def record(adapter, property_name: str, status: str, stats: Stats | None = None, message: str = "", *,
           section: str = "properties", extra: dict | None = None) -> None:
    """Attach a result row (``results.Stats.row``) to the running test's report (see the module
    docstring).  ``section`` is the list of the result file it goes to ("properties", or
    "fixtures" for golden cases); ``extra`` adds JSON-ready fields to the row."""
    row = (stats or Stats()).row(property_name, status, message, **(extra or {}))
    described = getattr(adapter, "_described", None) or adapter.describe()
    if _current_item is not None:
        _current_item.user_properties.append((ROW, {"adapter": described, "row": row, "section": section}))


def fixture_baseline(config):
    """The --fixture-baseline directory, or None."""
    return config.getoption("--fixture-baseline") or None


def pytest_runtest_logreport(report):
    rows = [value for key, value in report.user_properties if key == ROW]
    for value in rows:
        described = value["adapter"]
        if described.get("requested_as"):
            _aliases[described["requested_as"]] = described["name"]
        entry = _results.setdefault(described["name"], {"adapter": described, "properties": {}})
        entry.setdefault(value.get("section", "properties"), {})[value["row"]["property"]] = value["row"]
    for test, section in (("test_property[", "properties"), ("test_fixture[", "fixtures")):
        if not rows and report.failed and test in report.nodeid:
            # No row: the process died (xdist: "worker crashed", a timeout) or setup failed.
            param = report.nodeid.split(test, 1)[1].rstrip("]")
            requested, _, property_name = param.rpartition("-")
            _orphans.setdefault(requested, []).append(dict(Stats().row(
                property_name, "fail", f"no result: the test process failed ({report.when}): "
                                       f"{str(report.longrepr)[-3000:]}"), section=section))


def _attach_orphans():
    for requested, rows in _orphans.items():
        name = _aliases.get(requested, requested)
        entry = _results.setdefault(name, {"adapter": {"name": name, "framework": "?", "version": "?",
                                                       "requested_as": requested}, "properties": {}})
        for row in rows:
            entry.setdefault(row.pop("section", "properties"), {}).setdefault(row["property"], row)
    _orphans.clear()


def pytest_report_teststatus(report, config):
    if report.when == "call" or report.when == "setup":
        if report.skipped and UNSUPPORTED in str(report.longrepr):
            return "unsupported", "U", "UNSUPPORTED"
    return None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    unsupported = terminalreporter.stats.get("unsupported", [])
    if unsupported:
        terminalreporter.write_sep("-", f"{len(unsupported)} properties unsupported by the backend")
        for rep in unsupported:
            reason = str(rep.longrepr[2]) if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
            terminalreporter.write_line(f"UNSUPPORTED {rep.nodeid}: {reason.split(UNSUPPORTED)[-1]}")
    drift = [d for entry in _results.values() for row in entry.get("fixtures", {}).values()
             for d in row.get("drift", [])]
    if drift:
        from conformance.golden.drift import Drift, drift_table

        terminalreporter.write_sep("-", f"golden fixtures: drift of the outputs from other framework versions "
                                        f"({sum(d['beyond_tolerance'] for d in drift)} beyond tolerance)")
        rows = [Drift.from_dict(d) for d in drift]
        for line in drift_table(rows, identical=False):
            terminalreporter.write_line(line)


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller writes the file
    _attach_orphans()
    out_dir = session.config.getoption("--results")
    if not out_dir or not _results:
        return
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    for name, entry in _results.items():
        adapter = entry["adapter"]
        write_result_file(path / f"{name}.json", ResultFile(
            backend=name, framework=adapter["framework"], framework_version=adapter["version"],
            adapter=adapter, hypothesis_profile=session.config._lstm_profile,
            python=sys.version.split()[0], platform=platform.platform(),
            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), properties=entry["properties"],
            fixtures=entry.get("fixtures", {})))
