"""Result files shaped like the ones the suite writes (conformance/suite/conftest.py), with every
status, for the report's tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from conformance.harness.results import FORMAT

PROPERTIES = ("forward_parity", "initial_state", "lengths", "long_sequence", "peepholes", "cell_clip",
              "dtype_float64", "gradients")
TOL32 = {"rtol": 1e-4, "atol": 2e-5}


def _row(name, status, max_abs=0.0, steps=0, message="", examples=25, seconds=0.5, tol=TOL32):
    row = {"property": name, "status": status, "examples": examples if status != "unsupported" else 0,
           "unsupported_examples": 0, "known_issue_examples": 0,
           "max_abs_error": max_abs, "max_rel_error": max_abs * 3, "tolerance_ratio": max_abs / tol["atol"],
           "seconds": seconds, "tolerance": tol, "loosened": [], "max_abs_error_by_step": []}
    if steps:
        rng = np.random.default_rng(steps)
        growth = np.linspace(0.05, 1.0, steps)
        row["max_abs_error_by_step"] = [float(max_abs * g * rng.uniform(0.5, 1.0)) for g in growth]
        row["max_abs_error_by_step"][-1] = max_abs
    if message:
        row["message"] = message
    return row


def backend_doc(backend, framework, version, rows, fixtures=()):
    return {
        "format": FORMAT, "backend": backend, "framework": framework, "framework_version": version,
        "adapter": {"name": backend, "framework": framework, "version": version, "api": f"{framework}.LSTM",
                    "native_gate_order": "ifgo"},
        "hypothesis_profile": "ci", "python": "3.11.7", "platform": "Linux", "finished": "2026-01-01T00:00:00",
        "run": {"commit": "0123456789abcdef0123", "tox_env": backend, "command": f"pytest conformance/suite --backend {backend}"},
        "properties": list(rows), "fixtures": list(fixtures),
    }


def sample_docs() -> list[dict]:
    ref = backend_doc("reference", "numpy", "2.4.6", [
        _row(p, "pass", 0.0, steps=100 if p == "long_sequence" else 6 if p == "forward_parity" else 0)
        for p in PROPERTIES], fixtures=[_row("golden_t1_single_step", "pass", examples=1),
                                        _row("golden_long_moderate_t120", "pass", examples=1)])
    alpha = backend_doc("alpha", "alphaflow", "1.2.0", [
        _row("forward_parity", "pass", 1.3e-7, steps=6),
        _row("initial_state", "pass", 2.0e-7),
        _row("lengths", "fail", 0.4, message="property 'lengths' failed on backend 'alpha'\n  y: max abs err 0.4"),
        _row("long_sequence", "pass", 9.5e-6, steps=100),
        _row("peepholes", "unsupported", message="alpha cannot express peepholes: lacks feature 'peepholes'"),
        _row("cell_clip", "expected-failure", 2.1,
             message="the fused kernel clips before the forget gate (established with 1.2.0)"),
        _row("dtype_float64", "pass", 1e-15, tol={"rtol": 1e-9, "atol": 1e-10}),
        _row("gradients", "unsupported", message="alpha: gradients are not implemented"),
    ], fixtures=[dict(_row("golden_t1_single_step", "pass", 1e-7, examples=1), tolerance_ratio=0.004),
                 dict(_row("golden_long_moderate_t120", "pass", 3e-6, examples=1), tolerance_ratio=0.08,
                      drift=[{"backend": "alpha", "fixture": "long_moderate_t120", "from_version": "1.1.0",
                              "to_version": "1.2.0", "max_abs": 2e-6, "ratio": 0.05, "beyond_tolerance": False,
                              "note": ""}])])
    beta = backend_doc("beta-lstm", "betanet", "0.9.1", [
        _row("forward_parity", "pass", 2.5e-6, steps=6),
        _row("initial_state", "pass", 3.0e-6),
        _row("lengths", "pass", 1e-6),
        _row("long_sequence", "pass", 4e-5, steps=80),
        _row("peepholes", "pass", 1e-6),
        _row("cell_clip", "unsupported", message="beta cannot express cell_clip"),
        _row("dtype_float64", "unsupported", message="beta cannot express dtype_float64: lacks dtype 'float64'"),
        _row("gradients", "pass", 1e-6),
    ], fixtures=[_row("golden_t1_single_step", "fail", 0.3, examples=1, message="y: max abs err 0.3"),
                 _row("golden_long_moderate_t120", "unsupported", examples=0, message="beta lacks lengths")])
    return [ref, alpha, beta]


def write_results(directory: Path, docs=None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for doc in sample_docs() if docs is None else docs:
        (directory / f"{doc['backend']}.json").write_text(json.dumps(doc, indent=2))
    return directory
