"""Under the `ci` profile two runs of the suite give identical verdicts and identical result
files apart from timings (the profile is derandomized and the result file sorted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = {"seconds", "finished", "command"}  # the command names each run's own --results directory


def _strip_timings(value):
    if isinstance(value, dict):
        return {k: _strip_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_strip_timings(v) for v in value]
    return value


def _run(results: Path) -> tuple[dict, str]:
    env = dict(os.environ, HYPOTHESIS_PROFILE="ci", PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "conformance" / "suite"), "--backend", "reference",
         "--results", str(results), "-k", "test_property and not long_sequence", "-q",
         "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    verdicts = [line for line in proc.stdout.splitlines() if "passed" in line or "failed" in line]
    return json.loads((results / "reference.json").read_text()), verdicts[-1].split(" in ")[0]


def test_two_ci_runs_give_identical_results(tmp_path):
    first, verdict_1 = _run(tmp_path / "one")
    second, verdict_2 = _run(tmp_path / "two")
    assert verdict_1 == verdict_2
    a, b = _strip_timings(first), _strip_timings(second)
    differing = [(x, y) for x, y in zip(a["properties"], b["properties"]) if x != y]
    assert not differing, f"first differing property between two ci runs: {differing[:1]}"
    assert a == b
    assert first["hypothesis_profile"] == "ci"
    assert sum(p["examples"] for p in first["properties"]) > 0
