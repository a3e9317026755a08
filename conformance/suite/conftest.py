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
NOT_SET_UP = "NOT SET UP: "
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
    group.addoption("--strict-setup", dest="strict_setup", action="store_true",
                    default=os.environ.get("LSTM_CONFORMANCE_STRICT", "") not in ("", "0"),
                    help="a backend whose prerequisites are missing on this machine fails instead of "
                         "being reported 'not set up' (default: $LSTM_CONFORMANCE_STRICT; CI sets it)")
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


def require_set_up(adapter, request, test_name: str | None = None, *, section: str = "properties") -> None:
    """A backend whose prerequisites are missing here (``Adapter.setup_problem``) is reported
    "not set up" with the command that fixes it: each of its tests records that row (when it
    has one: ``test_name``) and is skipped, or fails with --strict-setup (CI sets
    LSTM_CONFORMANCE_STRICT=1)."""
    problem = adapter.setup_problem()
    if not problem:
        return
    if test_name is not None:
        record(adapter, test_name, "not-set-up", None, problem, section=section)
    if request.config.getoption("strict_setup"):
        pytest.fail(f"{adapter.name} is not set up on this machine (--strict-setup): {problem}")
    pytest.skip(NOT_SET_UP + problem)


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
        if report.skipped and NOT_SET_UP in str(report.longrepr):
            return "not set up", "N", "NOT SET UP"
    return None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    not_set_up = terminalreporter.stats.get("not set up", [])
    if not_set_up:
        reasons = sorted({str(rep.longrepr[2] if isinstance(rep.longrepr, tuple) else rep.longrepr)
                          .split(NOT_SET_UP)[-1] for rep in not_set_up})
        terminalreporter.write_sep("-", f"{len(not_set_up)} tests of a backend that is not set up on this "
                                        f"machine (not run; --strict-setup or LSTM_CONFORMANCE_STRICT=1 fails them)")
        for reason in reasons:
            terminalreporter.write_line(f"NOT SET UP: {reason}")
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
    run = run_metadata(session.config)
    for name, entry in _results.items():
        adapter = entry["adapter"]
        write_result_file(path / f"{name}.json", ResultFile(
            backend=name, framework=adapter["framework"], framework_version=adapter["version"],
            adapter=adapter, hypothesis_profile=session.config._lstm_profile,
            python=sys.version.split()[0], platform=platform.platform(),
            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), properties=entry["properties"],
            fixtures=entry.get("fixtures", {}), run=run))


def run_metadata(config) -> dict:
    """The commit of the checkout (None outside git), the tox env (None outside tox) and the
    command line of this run."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        commit = out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        commit = None
    return {"commit": commit or None, "tox_env": os.environ.get("TOX_ENV_NAME"),
            "command": " ".join(["pytest", *config.invocation_params.args])}
