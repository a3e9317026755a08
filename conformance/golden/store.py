"""Golden fixtures: loading, verifying and recording the cases that ``fixtures/generate.py`` writes.

Layout of the fixtures directory (written only by ``python fixtures/generate.py``)::

    fixtures/MANIFEST.json        {"files": {"cases/<name>.npz": "<sha256>", "cases/<name>.json": ...}}
    fixtures/cases/<name>.json    metadata: spec, dtype, direction, shapes, seed, regime, what it covers
    fixtures/cases/<name>.npz     arrays: weights, inputs, initial state, lengths, reference outputs

Every file under ``fixtures/cases/`` must be listed in the manifest with its digest: a tampered,
missing or extra file raises :class:`FixtureError` naming the file and the expected and actual
digests.  Arrays are read with ``numpy.load(allow_pickle=False)`` and must be numeric: nothing
is ever unpickled.

Array names inside ``<name>.npz``::

    x                                (B, T, D)
    lengths                          (B,) int64, when the case has lengths
    layer{k}.dir{d}.{field}          LSTMParams fields (kernel, recurrent_kernel, bias, ...)
    initial_state.{k}.h / .c         one per layer and direction (PyTorch h_n order)
    expected.{order}.y               the reference's y; order "aligned", and "processed" too for a
                                     reverse case (the two ``Capabilities.reverse_time_order``)
    expected.final.{k}.h / .c        the reference's final states

The recordings of an adapter's own outputs on these cases, and the drift between framework
versions, are ``conformance.golden.drift``.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapters.base import Case, Output
from reference import LSTMParams, LSTMSpec

from ..harness.tolerances import Tolerance, case_tolerance

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures"
MANIFEST_NAME = "MANIFEST.json"
CASES_DIR = "cases"
FORMAT = 1
#: The stored reference outputs must be reproduced by the current reference to within this.
REPRODUCE_ATOL = 1e-12
TIME_ORDERS = ("aligned", "processed")
REGENERATE = "python fixtures/generate.py"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class FixtureError(ValueError):
    """A fixture file is tampered, missing, extra, unreadable or holds a non-numeric payload."""


# --------------------------------------------------------------------------------------------
# Files: digests, deterministic npz writing, safe npz reading

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive (what ``numpy.savez`` writes, loadable by ``numpy.load``) that is
    byte-identical for identical arrays: sorted members, fixed timestamps, no compression,
    ``allow_pickle=False`` (an object array raises)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            array = np.asarray(arrays[key])
            if array.dtype.kind not in "biuf":
                raise ValueError(f"arrays[{key!r}]: expected a numeric array, got dtype {array.dtype}")
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), version=(1, 0),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.create_system = 3
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    Path(path).write_bytes(npz_bytes(arrays))


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz, read with ``allow_pickle=False``; a pickled (object) payload or a
    non-numeric array raises FixtureError naming the file and the member (never unpickled)."""
    path = Path(path)
    out = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                try:
                    array = archive[key]
                except ValueError as exc:
                    raise FixtureError(
                        f"{path}: member {key!r} holds a pickled object payload, refused "
                        f"(fixtures hold numeric arrays only and are never unpickled): {exc}") from None
                if array.dtype.kind not in "biuf":
                    raise FixtureError(f"{path}: member {key!r}: expected a numeric array, "
                                       f"got dtype {array.dtype}")
                out[key] = array
    except FixtureError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile raises OSError, ValueError, BadZipFile,
        # EOFError, NotImplementedError ("compression method"), RuntimeError ("encrypted") on
        # corrupted bytes (found by tests/test_fuzz_decoders.py)
        raise FixtureError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    return out


# --------------------------------------------------------------------------------------------
# The manifest

def manifest_path(directory: Path = FIXTURES_DIR) -> Path:
    return Path(directory) / MANIFEST_NAME


def read_manifest(directory: Path = FIXTURES_DIR) -> dict:
    path = manifest_path(directory)
    if not path.is_file():
        raise FixtureError(f"{path}: the fixture manifest is missing; regenerate with: {REGENERATE}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FixtureError(f"{path}: not a readable JSON manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise FixtureError(f"{path}: expected a JSON object with a 'files' mapping of path -> sha256")
    if manifest.get("format") != FORMAT:
        raise FixtureError(f"{path}: expected fixture format {FORMAT}, got {manifest.get('format')!r}")
    return manifest


def build_manifest(directory: Path, changes: list[dict] | None = None) -> dict:
    """The manifest of every file under ``directory/cases`` (what the generator writes), with the
    generator's record of why and by how much the cases' values moved when they were regenerated."""
    directory = Path(directory)
    files = {}
    for path in sorted((directory / CASES_DIR).rglob("*")):
        if path.is_file():
            files[path.relative_to(directory).as_posix()] = sha256_file(path)
    names = sorted({Path(p).stem for p in files if p.endswith(".json")})
    manifest = {"format": FORMAT, "generator": "fixtures/generate.py", "regenerate": REGENERATE,
                "cases": names, "files": files}
    if changes:
        manifest["changes"] = list(changes)
    return manifest


def verify(directory: Path = FIXTURES_DIR) -> dict[str, str]:
    """Check every file against the manifest; raise FixtureError listing each tampered, missing
    or extra file with the expected and actual sha256.  Returns the manifest's files."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    listed = manifest["files"]
    problems = []
    for rel, expected in sorted(listed.items()):
        path = directory / rel
        if not path.is_file():
            problems.append(f"{path}: missing (MANIFEST.json expects sha256 {expected})")
            continue
        actual = sha256_file(path)
        if actual != expected:
            problems.append(f"{path}: tampered: sha256 expected {expected}, actual {actual}")
    cases = directory / CASES_DIR
    present = [p for p in sorted(cases.rglob("*")) if p.is_file()] if cases.is_dir() else []
    for path in present:
        rel = path.relative_to(directory).as_posix()
        if rel not in listed:
            problems.append(f"{path}: extra file not listed in MANIFEST.json "
                            f"(expected: no such file, actual sha256 {sha256_file(path)})")
    if problems:
        raise FixtureError(f"golden fixtures in {directory} do not match {MANIFEST_NAME} "
                           f"({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n  "
                           + "\n  ".join(problems) +
                           f"\n  fixtures are written only by the generator: {REGENERATE}")
    return listed


def case_names(directory: Path = FIXTURES_DIR) -> list[str]:
    """The golden case names the manifest lists (no digest check: see ``verify``)."""
    manifest = read_manifest(directory)
    return sorted({Path(rel).stem for rel in manifest["files"] if rel.endswith(".json")})


def _checked(directory: Path, rel: str, listed: dict) -> Path:
    path = directory / rel
    if rel not in listed:
        raise FixtureError(f"{path}: not listed in {MANIFEST_NAME}; regenerate with: {REGENERATE}")
    if not path.is_file():
        raise FixtureError(f"{path}: missing (MANIFEST.json expects sha256 {listed[rel]})")
    actual = sha256_file(path)
    if actual != listed[rel]:
        raise FixtureError(f"{path}: tampered: sha256 expected {listed[rel]}, actual {actual}")
    return path


# --------------------------------------------------------------------------------------------
# Cases

@dataclass
class GoldenCase:
    """One golden case: its metadata, the Case an adapter runs, the reference's stored outputs."""

    name: str
    meta: dict
    case: Case
    expected: dict[str, Output]  # by reverse time order ("aligned", and "processed" for reverse)
    digest: str  # sha256 of the .npz

    @property
    def property_name(self) -> str:
        """The conformance property this case belongs to (for known issues)."""
        return self.meta["property"]

    @property
    def quantity(self) -> str:
        """The tolerance quantity ("forward" or "long_sequence")."""
        return self.meta.get("quantity", "forward")

    def expected_for(self, time_order: str = "aligned") -> Output:
        if time_order not in TIME_ORDERS:
            raise ValueError(f"time_order: expected one of {TIME_ORDERS}, got {time_order!r}")
        return self.expected.get(time_order, self.expected["aligned"])

    def tolerance(self, backend: str = "*") -> Tolerance:
        return case_tolerance(self.case, backend=backend, quantity=self.quantity)[0]


def case_arrays(case: Case, expected: dict[str, Output]) -> dict[str, np.ndarray]:
    """The arrays of a golden case, named as the module docstring says."""
    arrays = {"x": np.asarray(case.x, np.float64)}
    if case.lengths is not None:
        arrays["lengths"] = np.asarray(case.lengths, np.int64)
    for k, dirs in enumerate(case.layers):
        for d, params in enumerate(dirs):
            for field_name, value in params.arrays().items():
                arrays[f"layer{k}.dir{d}.{field_name}"] = np.asarray(value, np.float64)
    for k, (h, c) in enumerate(case.initial_state or []):
        arrays[f"initial_state.{k}.h"] = np.asarray(h, np.float64)
        arrays[f"initial_state.{k}.c"] = np.asarray(c, np.float64)
    for order, out in expected.items():
        arrays[f"expected.{order}.y"] = np.asarray(out.y, np.float64)
    for k, (h, c) in enumerate(expected["aligned"].final):
        arrays[f"expected.final.{k}.h"] = np.asarray(h, np.float64)
        arrays[f"expected.final.{k}.c"] = np.asarray(c, np.float64)
    return arrays


def case_from_arrays(name: str, meta: dict, arrays: dict[str, np.ndarray]) -> tuple[Case, dict[str, Output]]:
    """Rebuild the Case and the expected outputs from a fixture's metadata and arrays."""
    try:
        spec = LSTMSpec(**meta["spec"])
        n_layers, n_dirs = int(meta["layers"]), 2 if meta["direction"] == "bidirectional" else 1
        layers = []
        for k in range(n_layers):
            row = []
            for d in range(n_dirs):
                prefix = f"layer{k}.dir{d}."
                fields = {key[len(prefix):]: arrays[key] for key in arrays if key.startswith(prefix)}
                row.append(LSTMParams(**fields))
            layers.append(row)
        state = None
        if "initial_state.0.h" in arrays:
            state = [(arrays[f"initial_state.{k}.h"], arrays[f"initial_state.{k}.c"])
                     for k in range(n_layers * n_dirs)]
        finals = [(arrays[f"expected.final.{k}.h"], arrays[f"expected.final.{k}.c"])
                  for k in range(n_layers * n_dirs)]
        expected = {order: Output(arrays[f"expected.{order}.y"], finals)
                    for order in TIME_ORDERS if f"expected.{order}.y" in arrays}
        case = Case(spec=spec, layers=layers, x=arrays["x"], initial_state=state,
                    lengths=arrays.get("lengths"), direction=meta["direction"], dtype=meta["dtype"],
                    origin={"fixture": name, "seed": meta["seed"], "regime": meta["regime"]})
    except (KeyError, TypeError, ValueError) as exc:
        raise FixtureError(f"golden case {name!r}: metadata and arrays do not form a case "
                           f"({type(exc).__name__}: {exc})") from None
    if "aligned" not in expected:
        raise FixtureError(f"golden case {name!r}: expected.aligned.y is missing")
    return case, expected


def load(name: str, directory: Path = FIXTURES_DIR) -> GoldenCase:
    """Load one golden case after checking both its files against the manifest."""
    directory = Path(directory)
    listed = read_manifest(directory)["files"]
    meta_path = _checked(directory, f"{CASES_DIR}/{name}.json", listed)
    npz_path = _checked(directory, f"{CASES_DIR}/{name}.npz", listed)
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as exc:
        raise FixtureError(f"{meta_path}: not valid JSON ({exc})") from None
    arrays = load_npz(npz_path)
    case, expected = case_from_arrays(name, meta, arrays)
    return GoldenCase(name, meta, case, expected, listed[f"{CASES_DIR}/{name}.npz"])


def load_all(directory: Path = FIXTURES_DIR) -> list[GoldenCase]:
    verify(directory)
    return [load(name, directory) for name in case_names(directory)]


def reproduce(golden: GoldenCase, atol: float = REPRODUCE_ATOL) -> list[str]:
    """Recompute the case with the current reference; the problems where it no longer gives the
    stored outputs to within ``atol`` (a changed reference is caught here)."""
    from adapters.reference_adapter import reference_output

    problems = []
    for order, stored in golden.expected.items():
        now = reference_output(golden.case, reverse_time_order=order)
        pairs = [("y", now.y, stored.y)]
        for k, ((h, c), (sh, sc)) in enumerate(zip(now.final, stored.final)):
            pairs += [(f"final[{k}].h", h, sh), (f"final[{k}].c", c, sc)]
        for label, a, b in pairs:
            a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
            if a.shape != b.shape:
                problems.append(f"{label} ({order}): shape {a.shape}, stored {b.shape}")
                continue
            err = float(np.max(np.abs(a - b), initial=0.0))
            if not err <= atol:
                problems.append(f"{label} ({order}): max abs difference {err:.3g} > {atol:g}")
    return problems
