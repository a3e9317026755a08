"""Hypothesis profiles shared by the harness's tests and the conformance suite.

dev       fast local iteration (random, 15 examples a property)
ci        derandomized: two runs draw the same examples and give the same verdicts; fixed counts
thorough  many examples, for a release or a framework upgrade
Chosen by the HYPOTHESIS_PROFILE environment variable (default "dev"); tox sets "ci".
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile("dev", max_examples=15, deadline=None, suppress_health_check=_SLOW)
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, database=None,
                          print_blob=True, suppress_health_check=_SLOW)
settings.register_profile("thorough", max_examples=500, deadline=None, suppress_health_check=_SLOW)


def load() -> str:
    name = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    settings.load_profile(name)
    return name
