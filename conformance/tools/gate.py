"""The regression gate of ``report --baseline DIR``: what this run broke or lost against a
baseline run, each naming the backend and the property or golden case.

A regression is:

* a backend whose result file the baseline has and this run lacks;
* a property or golden case that passed (or failed as a documented known issue) in the baseline
  and is now missing, unsupported or failing; a failure that the baseline did not have;
* fewer compared examples than the baseline (beyond ``example_margin``, 10% by default): a
  property that checks less than it did;
* a framework version other than the baseline's, unless ``accept_version_change`` (an upgrade
  must be looked at: the drift below says what moved);
* golden-fixture outputs that drifted beyond the tolerance from the baseline's recording;
* a backend "not set up" on this machine, when ``strict`` (CI); otherwise it is a note.

The drift of every backend's golden-fixture outputs from the baseline's recordings is measured
for all fixtures, within tolerance too, and summarised per backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..golden import drift, store
from ..harness.results import ResultFile
from ..harness.tolerances import Tolerance
from .matrix import display_name, fmt, shorten

KEPT = ("pass", "expected-failure")  # statuses whose loss is a regression


@dataclass
class Regression:
    backend: str
    item: str
    kind: str
    detail: str

    def line(self) -> str:
        return f"{self.backend} {self.item}: {self.kind}: {self.detail}"


@dataclass
class DriftSummary:
    """The drift of one backend's golden-fixture outputs from the baseline's recordings."""

    backend: str
    compared: int = 0
    worst_ratio: float = 0.0
    worst_abs: float = 0.0
    worst_fixture: str = ""
    versions: set = field(default_factory=set)  # (baseline version, this version)

    def line(self) -> str:
        versions = ", ".join(f"{a} -> {b}" for a, b in sorted(self.versions))
        verdict = "BEYOND TOLERANCE" if self.worst_ratio > 1 else "identical" if self.worst_abs == 0 else \
            "within tolerance"
        return (f"{self.backend}: {self.compared} golden cases compared ({versions}): max |drift| "
                f"{fmt(self.worst_abs)}, {fmt(self.worst_ratio)} x the tolerance"
                + (f" ({self.worst_fixture})" if self.worst_abs else "") + f": {verdict}")


@dataclass
class Gate:
    regressions: list[Regression] = field(default_factory=list)
    drift: list[DriftSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def compare(current: list[ResultFile], baseline: list[ResultFile], results_dir: Path, baseline_dir: Path, *,
            accept_version_change: bool = False, example_margin: float = 0.1, strict: bool = False) -> Gate:
    """The gate's verdict on ``current`` against ``baseline`` (see the module docstring)."""
    gate = Gate()
    now = {r.backend: r for r in current}
    for base in baseline:
        if base.backend not in now:
            gate.regressions.append(Regression(
                base.backend, "result file", "missing",
                f"the baseline has {base.backend}.json, this run wrote none (its env failed before the suite "
                f"ran, or was not run)"))
    for r in current:
        before = next((b for b in baseline if b.backend == r.backend), None)
        if _not_set_up(r):
            message = next(iter(r.properties.values()), {}).get("message", "")
            text = f"not set up on this machine: {shorten(message, 300)}"
            if strict:
                gate.regressions.append(Regression(r.backend, "backend", "not set up", text))
            else:
                gate.notes.append(f"{r.backend}: {text}")
            continue
        if before is None:
            gate.notes.append(f"{r.backend}: a new backend (not in the baseline)")
        elif before.version != r.version and not accept_version_change:
            gate.regressions.append(Regression(
                r.backend, "framework version", "changed",
                f"{before.framework} {before.version} in the baseline, {r.framework} {r.version} now; look at "
                f"the drift below, then accept it with --accept-version-change (and refresh the baseline)"))
        for section, what in (("properties", "property"), ("fixtures", "golden fixture")):
            gate.regressions += _rows(r, before, section, what, example_margin)
    gate.drift, drifted = _drift(current, results_dir, baseline_dir)
    gate.regressions += drifted
    return gate


def _not_set_up(r: ResultFile) -> bool:
    rows = list(r.properties.values()) + list(r.fixtures.values())
    return bool(rows) and all(row["status"] == "not-set-up" for row in rows)


def _rows(r: ResultFile, before: ResultFile | None, section: str, what: str, margin: float) -> list[Regression]:
    out = []
    rows_now = getattr(r, section)
    rows_then = getattr(before, section) if before else {}
    for name in sorted(set(rows_now) | set(rows_then)):
        row, was = rows_now.get(name), rows_then.get(name)
        item = f"{what} {display_name(name)}"
        status, was_status = (row or {}).get("status"), (was or {}).get("status")
        if row is None:
            if was_status in KEPT:
                out.append(Regression(r.backend, item, "missing", f"{was_status} in the baseline, not run now"))
            continue
        if status == "fail" and was_status != "fail":
            cause = row.get("cause") or (row.get("message") or "").strip().split("\n")[0]
            out.append(Regression(r.backend, item, "new failure", f"{was_status or 'absent'} in the baseline, "
                                                                   f"fail now" + (f" ({shorten(cause, 200)})"
                                                                                  if cause else "")))
        elif was_status in KEPT and status in ("unsupported", "not-set-up"):
            out.append(Regression(r.backend, item, f"now {status}", f"{was_status} in the baseline: "
                                                                    f"{shorten(row.get('message', ''), 200)}"))
        elif was_status in KEPT and status in KEPT:
            then = was["examples"] + was["known_issue_examples"]
            now = row["examples"] + row["known_issue_examples"]
            if now < then * (1 - margin):
                out.append(Regression(r.backend, item, "fewer examples",
                                      f"{now} compared now, {then} in the baseline (margin {margin:.0%})"))
        for d in row.get("drift") or []:
            if d.get("beyond_tolerance"):
                out.append(Regression(r.backend, item, "drift",
                                      f"{d['from_version']} -> {d['to_version']}: max abs {fmt(d['max_abs'])}, "
                                      f"{fmt(d['ratio'])} x tolerance" + (f" ({d['note']})" if d.get("note") else "")))
    return out


def _drift(current: list[ResultFile], results_dir: Path, baseline_dir: Path):
    """Each backend's recorded fixture outputs (this version) against the baseline's recordings
    of the same backend (every version) on the same fixture digest: a summary per backend, and
    a regression per golden case beyond tolerance."""
    summaries, regressions = [], []
    now_root, base_root = drift.recordings_root(results_dir), drift.recordings_root(baseline_dir)
    for r in current:
        now_dir = drift.recording_dir(now_root, r.backend, r.version)
        base_backend = drift.backend_dir(base_root, r.backend)
        if not now_dir.is_dir() or not base_backend.is_dir():
            continue
        summary = DriftSummary(r.backend)
        for side_path in sorted(now_dir.glob("*.json")):
            side = json.loads(side_path.read_text())
            name = side_path.stem
            worst = None
            for version_dir in sorted(p for p in base_backend.iterdir() if p.is_dir()):
                base_side_path = version_dir / f"{name}.json"
                if not base_side_path.is_file() or not (version_dir / f"{name}.npz").is_file():
                    continue
                base_side = json.loads(base_side_path.read_text())
                if base_side.get("fixture_sha256") != side.get("fixture_sha256"):
                    continue
                max_abs, ratio = drift.drift_between(store.load_npz(version_dir / f"{name}.npz"),
                                                     store.load_npz(now_dir / f"{name}.npz"),
                                                     Tolerance(**side["tolerance"]))
                summary.versions.add((base_side.get("version", version_dir.name), r.version))
                if worst is None or ratio > worst[1]:
                    worst = (max_abs, ratio, base_side.get("version", version_dir.name))
            if worst is None:
                continue
            summary.compared += 1
            if worst[1] > summary.worst_ratio or (worst[1] == summary.worst_ratio and worst[0] > summary.worst_abs):
                summary.worst_ratio, summary.worst_abs, summary.worst_fixture = worst[1], worst[0], name
            if not worst[1] <= 1.0:
                regressions.append(Regression(r.backend, f"golden fixture {name}", "drift",
                                              f"outputs of {r.version} differ from the baseline's {worst[2]} by "
                                              f"max abs {worst[0]:.3g}, {worst[1]:.3g} x tolerance"))
        if summary.compared:
            summaries.append(summary)
    return summaries, regressions
