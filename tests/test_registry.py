"""The registered backends, the tox envs and the CI workflow agree: every registered backend runs in
exactly one tox env, every name a tox env runs is registered (never a module path), and every
tox env is a job of the workflow matrix (tests/test_workflow.py checks the matrix itself)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from adapters import ALIASES, BACKENDS

ROOT = Path(__file__).resolve().parents[1]


#: Envs that need a GPU: defined in tox.ini but kept out of env_list (no CI machine has one), run
#: by hand where a GPU is (docs/frameworks/torch.md, "On a GPU").
GPU_ENVS = ("torch-cuda",)


def tox_envs() -> dict[str, list[str]]:
    """tox env -> the backend names it runs (LSTM_CONFORMANCE_BACKEND, or --backend in its commands):
    the envs of env_list and the GPU envs."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    env_list = [e.strip() for e in tox["tox"]["env_list"].replace("\n", ",").split(",") if e.strip()]
    assert not set(GPU_ENVS) & set(env_list), "a GPU env in env_list would fail CI (not set up, strict)"
    env_list += [env for env in GPU_ENVS if tox.has_section(f"testenv:{env}")]
    out = {}
    for env in env_list:
        section = tox[f"testenv:{env}"] if tox.has_section(f"testenv:{env}") else {}
        names = []
        match = re.search(r"LSTM_CONFORMANCE_BACKEND\s*=\s*(\S+)", section.get("set_env", ""))
        if match:
            names += match.group(1).split(",")
        names += re.findall(r"--backend\s+(\S+)", section.get("commands", ""))
        out[env] = names
    return out


def test_every_registered_backend_runs_in_exactly_one_tox_env():
    envs = tox_envs()
    where: dict[str, list[str]] = {}
    for env, names in envs.items():
        for name in names:
            where.setdefault(name, []).append(env)
    assert set(where) == set(BACKENDS), (
        f"registered but in no tox env: {sorted(set(BACKENDS) - set(where))}; "
        f"in a tox env but not registered (a module path or a typo): {sorted(set(where) - set(BACKENDS))}")
    twice = {name: e for name, e in where.items() if len(e) > 1}
    assert not twice, f"backends run by more than one tox env: {twice}"
    assert not set(ALIASES) & set(BACKENDS)


def test_the_registry_names_modules_that_are_not_the_frameworks():
    """An adapter module never shadows the framework it wraps (adapters/torch.py would)."""
    for target in list(BACKENDS.values()) + list(ALIASES.values()):
        module, _, attribute = target.partition(":")
        assert module.startswith("adapters.") and module.endswith("_adapter") and attribute, target
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), target
