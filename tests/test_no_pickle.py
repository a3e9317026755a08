"""Nothing in the project unpickles data: every np.load says allow_pickle=False, no module
imports pickle, and a pickled payload in an .npz is refused with a clear error.

The one exception the project permits: a PyTorch .pt / .pth state_dict read through PyTorch's
allow-listed loader, ``torch.load(..., weights_only=True)``, when torch is installed
(conformance/tools/model_files/arrays.py); every torch.load call must say weights_only=True, and
tests/model_files/test_torch_files.py checks that a .pt holding other objects is refused."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("reference", "adapters", "conformance", "fixtures", "bench", "examples")
           for p in (ROOT / d).rglob("*.py")]


def test_sources_exist():
    assert len(SOURCES) > 10


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unpickling(path):
    text = path.read_text()
    assert not re.search(r"^\s*(import|from)\s+(c?pickle|dill|joblib|shelve)\b", text, re.M), \
        f"{path}: imports a pickle module"
    assert "allow_pickle=True" not in text, f"{path}: np.load with allow_pickle=True"
    for call in re.finditer(r"\b(np|numpy)\.load\(", text):
        args = _call_arguments(text, call.end())
        assert "allow_pickle=False" in args, f"{path}: np.load({args}) must say allow_pickle=False"
    for call in re.finditer(r"\btorch\.load\(", text):
        args = _call_arguments(text, call.end())
        assert "weights_only=True" in args, f"{path}: torch.load({args}) must say weights_only=True"
    assert "weights_only=False" not in text, f"{path}: torch.load with weights_only=False"
    assert not re.search(r"\b(pickle|dill|joblib)\.loads?\(|\bUnpickler\(", text), f"{path}: unpickles"


def _torch_load_calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"]


def test_the_one_torch_load_is_allow_listed():
    """Exactly one torch.load in the project's code, and it passes weights_only=True."""
    calls = [(p, call) for p in SOURCES for call in _torch_load_calls(p)]
    assert [p.name for p, _ in calls] == ["arrays.py"], [str(p) for p, _ in calls]
    for _, call in calls:
        flags = {k.arg: k.value for k in call.keywords}
        assert isinstance(flags.get("weights_only"), ast.Constant) and flags["weights_only"].value is True


def _call_arguments(text: str, start: int) -> str:
    depth = 1
    for k in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[k], 0)
        if depth == 0:
            return text[start:k]
    return text[start:]


def test_pickled_array_in_npz_is_refused():
    buffer = io.BytesIO()
    np.savez(buffer, weights=np.array([{"not": "an array"}], dtype=object))
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data, pytest.raises(ValueError, match="pickle"):
        data["weights"]
