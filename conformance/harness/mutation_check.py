"""Run one property against one mutant and say whether it was caught (shared by the tests)."""

from __future__ import annotations

from hypothesis import Phase

from .engine import run_property
from .mutants import SIZE_MUTATIONS, Mutant
from .verdict import Mismatch


def caught(adapter, property_name: str, mutation: str, *, max_examples: int | None = None,
           sizes=None) -> tuple[bool, str]:
    """True (and the report) when ``property_name`` fails on ``adapter`` with ``mutation``.

    No shrinking: the first failing example is proof enough, and shrinking costs framework calls.
    ``max_examples``: 20, or 50 for a size mutation (only an example past its boundary shows it);
    ``sizes``: the SizePlan (default: the profile's).
    """
    if max_examples is None:
        max_examples = 50 if mutation in SIZE_MUTATIONS else 20
    mutant = Mutant(adapter, mutation)
    try:
        run_property(property_name, mutant, max_examples=max_examples, sizes=sizes,
                     phases=[Phase.explicit, Phase.generate])
    except Mismatch as exc:
        return True, str(exc)
    return False, ""
