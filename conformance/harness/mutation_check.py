"""Run one property against one mutant and say whether it was caught (shared by the tests)."""

from __future__ import annotations

from hypothesis import Phase

from .engine import run_property
from .mutants import Mutant
from .verdict import Mismatch


def caught(adapter, property_name: str, mutation: str, *, max_examples: int = 20) -> tuple[bool, str]:
    """True (and the report) when ``property_name`` fails on ``adapter`` with ``mutation``.

    No shrinking: the first failing example is proof enough, and shrinking costs framework calls.
    """
    mutant = Mutant(adapter, mutation)
    try:
        run_property(property_name, mutant, max_examples=max_examples,
                     phases=[Phase.explicit, Phase.generate])
    except Mismatch as exc:
        return True, str(exc)
    return False, ""
