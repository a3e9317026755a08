"""The golden fixtures guard themselves: a tampered, missing or extra file fails with a message
naming the file and the expected and actual digests; a pickled payload is refused without being
unpickled; the generator is deterministic and is what wrote the checked-in files."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conformance.golden import drift, store as golden

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"


@pytest.fixture
def copy(tmp_path) -> Path:
    """A private copy of the fixtures (manifest and cases)."""
    target = tmp_path / "fixtures"
    target.mkdir()
    shutil.copyfile(FIXTURES / golden.MANIFEST_NAME, target / golden.MANIFEST_NAME)
    shutil.copytree(FIXTURES / golden.CASES_DIR, target / golden.CASES_DIR)
    return target


def _generator():
    spec = importlib.util.spec_from_file_location("fixtures_generate", FIXTURES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_fixtures_verify_and_load():
    listed = golden.verify()
    names = golden.case_names()
    assert len(names) >= 30 and len(listed) == 2 * len(names)
    cases = {c.name: c for c in golden.load_all()}
    # The hard cases are there.
    assert cases["t1_single_step"].case.steps == 1
    assert cases["h1_one_unit"].case.params.hidden_size == 1
    assert cases["d1_one_input"].case.params.input_size == 1
    assert max(c.case.steps for c in cases.values()) >= 100
    assert any(c.meta["max_abs_final_c"] > 10 for c in cases.values())
    assert {c.case.spec.length_semantics for c in cases.values() if c.case.lengths is not None} == {"zeros", "repeat"}
    assert {"aligned", "processed"} <= set(cases["reverse"].expected)
    assert {c.case.dtype for c in cases.values()} == {"float32", "float64"}
    assert {c.case.direction for c in cases.values()} == {"forward", "reverse", "bidirectional"}
    assert max(len(c.case.layers) for c in cases.values()) == 3
    specs = [c.case.spec for c in cases.values()]
    for option in ("use_peepholes", "cell_clip", "gate_clip", "proj_size", "proj_clip", "activation_clip",
                   "layer_norm", "cell_activation", "backward_activations"):
        assert any(getattr(s, option) for s in specs), option
    assert {s.coupled_gates for s in specs} == {None, "input_from_forget", "forget_from_input"}
    assert any(p.projection_bias is not None for c in cases.values() for p in c.case.layers[0])
    assert any(s.forget_bias for s in specs)
    assert {"sigmoid", "hard_sigmoid", "hard_sigmoid_keras2"} < {s.recurrent_activation for s in specs}
    assert {"tanh", "relu", "linear"} < {s.activation for s in specs}
    # Past the 16- and 32-lane, 16-row and 32-step boundaries.
    assert max(c.case.params.hidden_size for c in cases.values()) > 64
    assert any(c.case.batch > 16 and c.case.steps > 32 for c in cases.values())
    assert any(p.recurrent_bias is not None for c in cases.values() for p in c.case.layers[0])


def test_every_fixture_is_reproduced_by_the_reference():
    for case in golden.load_all():
        assert golden.reproduce(case) == [], case.name


def test_tampered_fixture_fails_naming_file_and_digests(copy):
    path = copy / "cases" / "saturating.npz"
    expected = golden.sha256_file(path)
    data = bytearray(path.read_bytes())
    data[-200] ^= 0x01  # one bit of one stored value
    path.write_bytes(bytes(data))
    actual = golden.sha256_file(path)
    with pytest.raises(golden.FixtureError) as info:
        golden.verify(copy)
    message = str(info.value)
    assert "saturating.npz" in message and "tampered" in message
    assert f"expected {expected}" in message and f"actual {actual}" in message
    with pytest.raises(golden.FixtureError, match=r"saturating\.npz: tampered: sha256 expected"):
        golden.load("saturating", copy)


def test_tampered_metadata_fails(copy):
    path = copy / "cases" / "reverse.json"
    meta = json.loads(path.read_text())
    meta["direction"] = "forward"
    path.write_text(json.dumps(meta))
    with pytest.raises(golden.FixtureError, match=r"reverse\.json: tampered"):
        golden.load("reverse", copy)


def test_missing_fixture_fails(copy):
    path = copy / "cases" / "t1_single_step.npz"
    expected = golden.sha256_file(path)
    path.unlink()
    with pytest.raises(golden.FixtureError) as info:
        golden.verify(copy)
    assert "t1_single_step.npz: missing" in str(info.value) and expected in str(info.value)
    with pytest.raises(golden.FixtureError, match="t1_single_step.npz: missing"):
        golden.load("t1_single_step", copy)


def test_missing_manifest_fails(copy):
    (copy / golden.MANIFEST_NAME).unlink()
    with pytest.raises(golden.FixtureError, match="MANIFEST.json: the fixture manifest is missing"):
        golden.verify(copy)


def test_extra_file_fails(copy):
    extra = copy / "cases" / "smuggled.npz"
    golden.write_npz(extra, {"x": np.zeros(3)})
    with pytest.raises(golden.FixtureError) as info:
        golden.verify(copy)
    message = str(info.value)
    assert "smuggled.npz: extra file not listed in MANIFEST.json" in message
    assert golden.sha256_file(extra) in message


def test_several_problems_are_all_listed(copy):
    (copy / "cases" / "h1_one_unit.json").unlink()
    (copy / "cases" / "notes.txt").write_text("hello")
    with pytest.raises(golden.FixtureError) as info:
        golden.verify(copy)
    assert "2 problems" in str(info.value)
    assert "h1_one_unit.json: missing" in str(info.value) and "notes.txt: extra" in str(info.value)


# A payload that records being unpickled: if the loader ever unpickled, the flag would be set.
UNPICKLED = []


def _mark_unpickled():
    UNPICKLED.append(True)
    return "trap"


class Trap:
    def __reduce__(self):
        return (_mark_unpickled, ())


def test_pickled_payload_is_refused_without_unpickling(copy):
    path = copy / "cases" / "t1_single_step.npz"
    arrays = golden.load_npz(path)
    arrays["x"] = np.array([Trap()], dtype=object)
    np.savez(path, **arrays)  # np.savez pickles the object array
    # Even with the manifest rewritten to match, the payload is refused.
    manifest = json.loads((copy / golden.MANIFEST_NAME).read_text())
    manifest["files"]["cases/t1_single_step.npz"] = golden.sha256_file(path)
    (copy / golden.MANIFEST_NAME).write_text(json.dumps(manifest))
    golden.verify(copy)
    with pytest.raises(golden.FixtureError) as info:
        golden.load("t1_single_step", copy)
    assert "t1_single_step.npz" in str(info.value) and "'x'" in str(info.value)
    assert "pickled" in str(info.value) and "never unpickled" in str(info.value)
    assert UNPICKLED == []
    with pytest.raises(ValueError):
        golden.write_npz(copy / "x.npz", {"x": np.array([Trap()], dtype=object)})
    assert UNPICKLED == []


def test_not_an_npz_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(golden.FixtureError, match="broken.npz: not a readable .npz archive"):
        golden.load_npz(path)


def test_generator_is_deterministic_and_wrote_the_checked_in_fixtures(tmp_path):
    generate = _generator().generate
    first = generate(tmp_path / "a")
    second = generate(tmp_path / "b")
    assert first == second, "two runs of fixtures/generate.py gave different files"
    checked_in = golden.read_manifest(FIXTURES)
    assert sorted(first["files"]) == sorted(checked_in["files"]), \
        "fixtures/ holds other files than the generator writes: run python fixtures/generate.py"
    for rel, digest in sorted(first["files"].items()):
        if digest == checked_in["files"][rel]:
            continue
        # Only the reference's float64 outputs may differ, in the last bits, on another CPU's BLAS.
        assert rel.endswith(".npz"), f"{rel}: regenerated sha256 {digest}, checked in {checked_in['files'][rel]}"
        new, old = golden.load_npz(tmp_path / "a" / rel), golden.load_npz(FIXTURES / rel)
        assert sorted(new) == sorted(old), rel
        for key in new:
            if key.startswith("expected."):
                np.testing.assert_allclose(new[key], old[key], rtol=0, atol=golden.REPRODUCE_ATOL, err_msg=f"{rel} {key}")
            else:
                assert np.array_equal(new[key], old[key]), f"{rel}: input array {key} differs from the generator's"


def test_npz_writer_is_loadable_by_numpy_and_byte_stable(tmp_path):
    arrays = {"b": np.arange(6, dtype=np.int64).reshape(2, 3), "a": np.linspace(0, 1, 5)}
    blob = golden.npz_bytes(arrays)
    assert blob == golden.npz_bytes(dict(reversed(list(arrays.items()))))
    (tmp_path / "x.npz").write_bytes(blob)
    with np.load(tmp_path / "x.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["a", "b"]
        np.testing.assert_array_equal(data["b"], arrays["b"])


def test_drift_between_recordings(tmp_path):
    from adapters.base import Output
    from conformance.harness.tolerances import Tolerance

    case = golden.load("t1_single_step")
    tol = Tolerance(rtol=1e-4, atol=2e-5)
    out = case.expected_for("aligned")
    drift.record_output(tmp_path, "demo", "1.0", case, out, tol)
    moved = Output(out.y + 1e-6, out.final)
    rows = drift.drift_against(tmp_path, "demo", "2.0", case, drift.output_arrays(moved), tol)
    assert len(rows) == 1 and rows[0].from_version == "1.0" and not rows[0].beyond_tolerance
    assert rows[0].max_abs == pytest.approx(1e-6) and 0 < rows[0].ratio < 1
    far = Output(out.y + 1e-3, out.final)
    rows = drift.drift_against(tmp_path, "demo", "2.0", case, drift.output_arrays(far), tol)
    assert rows[0].beyond_tolerance
    assert "BEYOND TOLERANCE" in "\n".join(drift.drift_table(rows))
    # The same version is not a drift; another fixture digest is not compared.
    assert drift.drift_against(tmp_path, "demo", "1.0", case, drift.output_arrays(far), tol) == []
    case.digest = "0" * 64
    rows = drift.drift_against(tmp_path, "demo", "2.0", case, drift.output_arrays(far), tol)
    assert "not compared" in rows[0].note and not rows[0].beyond_tolerance
    assert json.loads(json.dumps(rows[0].to_dict(), allow_nan=False))["ratio"] is None
