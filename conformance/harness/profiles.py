"""Hypothesis profiles shared by the harness's tests and the conformance suite, and the sizes
each one reaches (``SIZE_PLANS``; strategies.SizePlan says what the fields mean).

dev       fast local iteration: random, 15 examples a property, one in 8 at sizes up to 33,
          batches up to 33, steps up to 65
ci        derandomized (two runs draw the same examples and give the same verdicts), 25
          examples a property, one in 4 at sizes up to 257, batches up to 65, steps up to 129
thorough  500 examples, one in 4 at sizes up to 1024, batches up to 256, steps up to 512: for a
          release or a framework upgrade
Chosen by the HYPOTHESIS_PROFILE environment variable (default "dev"); tox sets "ci".
docs/benchmarks.md records what each profile costs per backend.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from .sizes import SMALL, SizePlan

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile("dev", max_examples=15, deadline=None, suppress_health_check=_SLOW)
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, database=None,
                          print_blob=True, suppress_health_check=_SLOW)
settings.register_profile("thorough", max_examples=500, deadline=None, suppress_health_check=_SLOW)

#: The sizes drawn by each profile.  max_work bounds one example's multiply-adds (B * T * 4H *
#: (D + P), all layers and directions): the reference computes each at-scale example in float64
#: and the framework once more, so it is what an example costs.
SIZE_PLANS: dict[str, SizePlan] = {
    "dev": SizePlan(share=8, max_size=33, max_batch=33, max_steps=65, max_work=1e7),
    "ci": SizePlan(share=4, max_size=257, max_batch=65, max_steps=129, max_work=3e7),
    "thorough": SizePlan(share=4, max_size=1024, max_batch=256, max_steps=512, max_work=2e9),
}

_loaded = {"name": None}


def load() -> str:
    name = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    settings.load_profile(name)
    _loaded["name"] = name
    return name


def size_plan() -> SizePlan:
    """The SizePlan of the profile :func:`load` loaded (no example at scale before it is called,
    or for a profile registered elsewhere), or the one LSTM_CONFORMANCE_SIZES names: e.g. the
    ``ci`` profile's example counts with the ``thorough`` sizes, for a short run on big hardware."""
    chosen = os.environ.get("LSTM_CONFORMANCE_SIZES", "")
    if chosen:
        if chosen not in SIZE_PLANS:
            raise ValueError(f"LSTM_CONFORMANCE_SIZES: expected one of {sorted(SIZE_PLANS)}, got {chosen!r}")
        return SIZE_PLANS[chosen]
    return SIZE_PLANS.get(_loaded["name"], SMALL)
