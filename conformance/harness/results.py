"""Result records: what one property or golden case measured (:class:`Stats` -> a row), and the
result file of one backend (:class:`ResultFile`), with its one writer and its one reader.

The format is documented in docs/results-format.md.  A result file carries ``"format":
FORMAT``; :func:`read_result_file` refuses any other version (and any file that lacks a required
key) with a :class:`ResultFileError` that names the file and what is wrong, so that a renamed
key is an error and never shows up as "absent".  Nothing here imports Hypothesis.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .compare import Comparison

#: The version of the result file format (docs/results-format.md); 1 had no "format" key.
FORMAT = 3
#: "not-set-up": the backend's prerequisites are missing on this machine (an old CPython, a
#: system library); nothing ran, and the row says the one command that fixes it.
STATUSES = ("pass", "fail", "unsupported", "expected-failure", "not-set-up")
SECTIONS = ("properties", "fixtures")
#: Keys every row has (besides what a status adds: "message", fixture keys, "drift").
ROW_KEYS = ("property", "status", "examples", "unsupported_examples", "known_issue_examples",
            "max_abs_error", "max_rel_error", "tolerance_ratio", "seconds", "tolerance", "loosened",
            "max_abs_error_by_step")
FILE_KEYS = ("format", "backend", "framework", "framework_version", "adapter", "hypothesis_profile",
             "python", "platform", "finished", "run", "properties", "fixtures")
#: What a result file says about the run that wrote it (values may be None where unknown).
RUN_KEYS = ("commit", "tox_env", "command")


class ResultFileError(ValueError):
    """A result file that cannot be read: not JSON, another format version, a missing key."""


@dataclass
class Stats:
    """What one property run (or one golden case) measured."""

    examples: int = 0
    unsupported_examples: int = 0  # examples the adapter could not express (not counted as passes)
    known_issue_examples: int = 0  # examples that failed within a narrow known issue (not passes)
    max_abs: float = 0.0
    max_rel: float = 0.0
    ratio: float = 0.0  # the largest error relative to the tolerance (compare.tolerance_ratio)
    seconds: float = 0.0
    tolerance: dict = field(default_factory=dict)
    loosened: list = field(default_factory=list)
    worst_by_step: list = field(default_factory=list)  # max abs error of y per time step, worst example
    produced: dict = field(default_factory=dict)  # what the backend ran (Output.produced) -> examples
    largest: dict = field(default_factory=dict)  # the largest batch, steps, input and hidden size compared
    at_scale: int = 0  # comparisons of cases drawn at scale (strategies.SizePlan)

    def record(self, comparisons: list[Comparison], tol, reasons, y_err_by_step=None):
        """Record one comparison; the tolerance kept is that of the comparison closest to it
        (tolerances grow with the size of a case)."""
        worst = max((c.ratio for c in comparisons), default=0.0)
        if worst >= self.ratio or not self.tolerance:
            self.tolerance = tol.to_dict()
            self.loosened = list(reasons)
        for c in comparisons:
            if np.isfinite(c.max_abs):
                self.max_abs = max(self.max_abs, c.max_abs)
            if np.isfinite(c.max_rel):
                self.max_rel = max(self.max_rel, c.max_rel)
            self.ratio = max(self.ratio, c.ratio)
        if y_err_by_step is not None and (not self.worst_by_step or
                                          max(y_err_by_step, default=0) >= max(self.worst_by_step, default=0)):
            self.worst_by_step = [float(e) for e in y_err_by_step]

    def note_sizes(self, **sizes: int) -> None:
        """Keep the largest of each size compared (the row's "largest")."""
        for key, value in sizes.items():
            self.largest[key] = max(self.largest.get(key, 0), int(value))

    def row(self, name: str, status: str, message: str = "", *, cause: str = "", **extra) -> dict:
        """The result row of this measurement (see ROW_KEYS); ``cause``: one line saying why it
        failed (what the failure report leads with)."""
        if status not in STATUSES:
            raise ValueError(f"status: expected one of {STATUSES}, got {status!r}")
        row = {"property": name, "status": status, "examples": self.examples,
               "unsupported_examples": self.unsupported_examples,
               "known_issue_examples": self.known_issue_examples,
               "max_abs_error": self.max_abs, "max_rel_error": self.max_rel,
               "tolerance_ratio": _json_number(self.ratio), "seconds": round(self.seconds, 3),
               "tolerance": self.tolerance, "loosened": self.loosened,
               "max_abs_error_by_step": self.worst_by_step}
        if self.produced:
            row["produced"] = dict(sorted(self.produced.items()))
        if self.largest:
            row["largest"] = dict(self.largest)
            row["at_scale"] = self.at_scale
        row.update(extra)
        if cause:
            row["cause"] = cause[:300]
        if message:
            row["message"] = message[:4000]
        return row


def _json_number(value: float):
    """Strict JSON has no Infinity: an infinite ratio (a NaN or shape mismatch) is "inf"."""
    return float(value) if math.isfinite(value) else "inf"


def ratio_of(row: dict | None) -> float | None:
    """A row's error relative to its tolerance (None when nothing was compared)."""
    if not row or not row.get("examples"):
        return None
    value = row.get("tolerance_ratio")
    if value == "inf":
        return math.inf
    return float(value) if isinstance(value, (int, float)) else None


@dataclass
class ResultFile:
    """The results of one backend: every property row and every golden-case row, by name."""

    backend: str
    framework: str
    framework_version: str
    adapter: dict
    hypothesis_profile: str
    python: str
    platform: str
    finished: str
    properties: dict[str, dict] = field(default_factory=dict)
    fixtures: dict[str, dict] = field(default_factory=dict)
    run: dict = field(default_factory=lambda: {k: None for k in RUN_KEYS})
    path: Path | None = None

    @property
    def version(self) -> str:
        return self.framework_version

    @property
    def label(self) -> str:
        return f"{self.backend} ({self.framework} {self.framework_version})"

    def counts(self, section: str = "properties") -> dict[str, int]:
        rows = getattr(self, section).values()
        return {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES}

    def examples_per_second(self) -> float | None:
        examples = sum(r["examples"] for r in self.properties.values())
        seconds = sum(r["seconds"] for r in self.properties.values()
                      if r["status"] in ("pass", "fail", "expected-failure"))
        return examples / seconds if seconds > 0 and examples else None

    def to_json(self) -> dict:
        return {"format": FORMAT, "backend": self.backend, "framework": self.framework,
                "framework_version": self.framework_version, "adapter": self.adapter,
                "hypothesis_profile": self.hypothesis_profile, "python": self.python,
                "platform": self.platform, "finished": self.finished,
                "run": {k: self.run.get(k) for k in RUN_KEYS},
                "properties": [self.properties[k] for k in sorted(self.properties)],
                "fixtures": [self.fixtures[k] for k in sorted(self.fixtures)]}


def write_result_file(path: Path, result: ResultFile) -> Path:
    """The one writer of result files (sorted keys, strict JSON)."""
    path = Path(path)
    path.write_text(json.dumps(result.to_json(), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def read_result_file(path: Path) -> ResultFile:
    """The one reader: a ResultFile, or ResultFileError naming the file and what is wrong."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResultFileError(f"{path}: not a readable JSON result file ({exc})") from None
    if not isinstance(doc, dict):
        raise ResultFileError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise ResultFileError(f"{path}: result file format {doc.get('format')!r}, this version of the "
                              f"harness reads format {FORMAT} (rerun the suite to write it)")
    lacking = [k for k in FILE_KEYS if k not in doc]
    if lacking:
        raise ResultFileError(f"{path}: not a result file of format {FORMAT}: missing {lacking}")
    if not isinstance(doc["run"], dict) or any(k not in doc["run"] for k in RUN_KEYS):
        raise ResultFileError(f"{path}: 'run': expected an object with the keys {list(RUN_KEYS)}, "
                              f"got {doc['run']!r}")
    sections = {}
    for section in SECTIONS:
        rows = doc[section]
        if not isinstance(rows, list):
            raise ResultFileError(f"{path}: {section!r}: expected a list of rows, got {type(rows).__name__}")
        by_name = {}
        for k, row in enumerate(rows):
            missing = [key for key in ROW_KEYS if not isinstance(row, dict) or key not in row]
            if missing:
                raise ResultFileError(f"{path}: {section}[{k}]: missing {missing}")
            if row["status"] not in STATUSES:
                raise ResultFileError(f"{path}: {section}[{k}] ({row['property']}): status "
                                      f"{row['status']!r}, expected one of {STATUSES}")
            by_name[row["property"]] = row
        sections[section] = by_name
    return ResultFile(str(doc["backend"]), str(doc["framework"]), str(doc["framework_version"]),
                      doc["adapter"], str(doc["hypothesis_profile"]), str(doc["python"]),
                      str(doc["platform"]), str(doc["finished"]), sections["properties"],
                      sections["fixtures"], dict(doc["run"]), path)
