"""Recordings of each backend's outputs on the golden cases, and their drift across framework
versions.

A suite run with ``--results DIR`` records every backend's outputs under
``DIR/fixture-outputs/<backend>/<version>/<name>.npz`` (arrays ``y``, ``final.{k}.h`` and
``final.{k}.c``) with a ``<name>.json`` sidecar holding the fixture's digest and tolerance.  The
drift of one version's outputs from another's is measured with the one tolerance ratio of
``conformance.harness.compare``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapters.base import Output

from ..harness.compare import compare
from ..harness.tolerances import Tolerance
from .store import GoldenCase, load_npz, write_npz



def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", str(part)) or "_"


def backend_dir(root: Path, backend: str) -> Path:
    """Where the recordings of ``backend`` (every version) are under ``root``."""
    return Path(root) / _safe(backend)


def recording_dir(root: Path, backend: str, version: str) -> Path:
    return backend_dir(root, backend) / _safe(version)


def output_arrays(output: Output) -> dict[str, np.ndarray]:
    arrays = {"y": np.asarray(output.y, np.float64)}
    for k, (h, c) in enumerate(output.final):
        arrays[f"final.{k}.h"] = np.asarray(h, np.float64)
        arrays[f"final.{k}.c"] = np.asarray(c, np.float64)
    return arrays


def record_output(root: Path, backend: str, version: str, golden: GoldenCase, output: Output,
                  tol: Tolerance) -> Path:
    """Write an adapter's outputs for ``golden`` under root/<backend>/<version>/<name>.npz."""
    directory = recording_dir(root, backend, version)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{golden.name}.npz"
    write_npz(path, output_arrays(output))
    side = {"fixture": golden.name, "fixture_sha256": golden.digest, "backend": backend,
            "version": version, "dtype": golden.case.dtype, "quantity": golden.quantity,
            "tolerance": tol.to_dict()}
    (directory / f"{golden.name}.json").write_text(json.dumps(side, indent=2, sort_keys=True) + "\n")
    return path


def recordings_root_for_results(results_dir: Path) -> Path:
    """Where a suite run with ``--results results_dir`` records the adapters' fixture outputs."""
    return Path(results_dir) / "fixture-outputs"


def recordings_root(directory: Path) -> Path:
    """A fixture-outputs tree: ``directory`` itself or its ``fixture-outputs`` subdirectory."""
    directory = Path(directory)
    sub = directory / "fixture-outputs"
    return sub if sub.is_dir() else directory


@dataclass
class Drift:
    backend: str
    fixture: str
    from_version: str
    to_version: str
    max_abs: float
    ratio: float  # max over elements of |difference| / (atol + rtol * |old|); > 1 is beyond tolerance
    note: str = ""

    @property
    def beyond_tolerance(self) -> bool:
        """The ratio exceeds 1 (inf: shapes or NaN positions differ); NaN (not compared) is not."""
        return bool(self.ratio > 1.0)

    def to_dict(self) -> dict:
        def number(value):  # strict JSON: no NaN or Infinity ("inf": not comparable, None: not compared)
            return float(value) if np.isfinite(value) else "inf" if np.isinf(value) else None

        return {"backend": self.backend, "fixture": self.fixture, "from_version": self.from_version,
                "to_version": self.to_version, "max_abs": number(self.max_abs), "ratio": number(self.ratio),
                "beyond_tolerance": self.beyond_tolerance, "note": self.note}

    @classmethod
    def from_dict(cls, d: dict) -> "Drift":
        """Inverse of :meth:`to_dict` ("inf" -> inf, None -> NaN)."""
        def number(value):
            return np.nan if value is None else float(value)

        return cls(d["backend"], d["fixture"], d["from_version"], d["to_version"], number(d["max_abs"]),
                   number(d["ratio"]), d.get("note", ""))


def drift_between(old: dict[str, np.ndarray], new: dict[str, np.ndarray], tol: Tolerance) -> tuple[float, float]:
    """(max abs difference, max ratio to the tolerance) between two recordings' arrays, the old
    one taken as the expected value (``compare``'s ratio; inf when the arrays recorded
    differ in names or shapes)."""
    max_abs, ratio = 0.0, 0.0
    for key in sorted(set(old) | set(new)):
        if key not in old or key not in new:
            return np.inf, np.inf
        comparison = compare(key, new[key], old[key], tol)
        max_abs, ratio = max(max_abs, comparison.max_abs), max(ratio, comparison.ratio)
    return max_abs, ratio


def drift_against(baseline: Path, backend: str, version: str, golden: GoldenCase,
                  arrays: dict[str, np.ndarray], tol: Tolerance) -> list[Drift]:
    """The drift of ``arrays`` (this version's outputs) from every recording of the same backend
    under another version in ``baseline`` (recorded on the same fixture digest)."""
    root = backend_dir(recordings_root(baseline), backend)
    out = []
    if not root.is_dir():
        return out
    for other in sorted(p for p in root.iterdir() if p.is_dir()):
        if other.name == _safe(version):
            continue
        path, side_path = other / f"{golden.name}.npz", other / f"{golden.name}.json"
        if not path.is_file():
            continue
        side = json.loads(side_path.read_text()) if side_path.is_file() else {}
        recorded = side.get("version") if _safe(side.get("version", "")) == other.name else other.name
        if side.get("fixture_sha256") != golden.digest:
            out.append(Drift(backend, golden.name, recorded, version, np.nan, np.nan,
                             "recorded on another version of the fixture: not compared"))
            continue
        max_abs, ratio = drift_between(load_npz(path), arrays, tol)
        out.append(Drift(backend, golden.name, recorded, version, max_abs, ratio))
    return out


def drift_table(rows: list[Drift], *, identical: bool = True) -> list[str]:
    """Lines of a terminal table of drifts; with ``identical=False`` the identical outputs are
    counted in one line per pair of versions instead of listed."""
    if not rows:
        return []
    head = ("backend", "fixture", "from", "to", "max abs drift", "/ tolerance", "")
    body, same = [], {}
    for r in rows:
        if not identical and r.max_abs == 0 and not r.note:
            key = (r.backend, r.from_version, r.to_version)
            same[key] = same.get(key, 0) + 1
            continue
        verdict = r.note or ("BEYOND TOLERANCE" if r.beyond_tolerance else
                             "identical" if r.max_abs == 0 else "within tolerance")
        body.append((r.backend, r.fixture, r.from_version, r.to_version,
                     "-" if np.isnan(r.max_abs) else f"{r.max_abs:.3g}",
                     "-" if np.isnan(r.ratio) else f"{r.ratio:.3g}", verdict))
    widths = [max(len(str(row[i])) for row in [head] + body) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head).rstrip()] + [fmt.format(*row).rstrip() for row in body] if body else []
    lines += [f"{backend}: {n} golden case{'s' if n > 1 else ''} with outputs identical in {old} and {new}"
              for (backend, old, new), n in sorted(same.items())]
    return lines
