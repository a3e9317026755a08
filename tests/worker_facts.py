"""Shared by the tests that ask a framework's worker for facts (tests/test_tf1_facts.py,
tests/test_chainer_facts.py): they run in the framework's tox env, which sets the flag, and are
skipped, saying why, elsewhere (a failure where the environment is missing and
LSTM_CONFORMANCE_STRICT is set, as CI sets it)."""

from __future__ import annotations

import os

import pytest

from adapters.worker_env import is_ready


def require_worker(env: str, flag: str, framework: str) -> None:
    """Skip unless ``$flag`` is 1 and the worker environment ``env`` is set up."""
    if os.environ.get(flag) != "1":
        pytest.skip(f"asks the {framework} worker (seconds to start): run by `tox -e {env}`, or set {flag}=1")
    if not is_ready(env):
        message = f"the {env} worker environment is not set up: run `python -m conformance setup {env}`"
        if os.environ.get("LSTM_CONFORMANCE_STRICT", "") not in ("", "0"):
            pytest.fail(message + " (LSTM_CONFORMANCE_STRICT is set)")
        pytest.skip(message)
