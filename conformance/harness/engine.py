"""The one Hypothesis driver of the conformance properties, for the suite and for ``check``.

``run_property(name, adapter)`` draws cases from the property's strategy, runs its check against
the adapter behind the capability gate (``requirements.GatedAdapter``), lets Hypothesis shrink a
failure to a minimal counterexample, and returns what it measured (``results.Stats``).

Outcomes:

* ``Unsupported``: the adapter lacks what the property needs, or could not express a single
  drawn example (each one it could not is counted in ``stats.unsupported_examples``, never as
  a pass);
* ``verdict.Mismatch``: the shrunk counterexample, with the full report; an adapter that broke
  its contract (``adapters.base.BrokenContract``: a user's callable that raised or returned the
  wrong shapes) fails the same way, with the same report header;
* normal return: every example passed, except those a narrow known issue covers (a mismatch or
  a broken contract; counted in ``stats.known_issue_examples``).
"""

from __future__ import annotations

import time
import zlib
from typing import Callable

from hypothesis import errors, given, seed as hseed, settings as hsettings

from adapters.base import Adapter, BrokenContract, Case, Unsupported

from . import profiles
from .properties import PROPERTIES
from .requirements import gated
from .results import Stats
from .sizes import SizePlan
from .strategies import size_plan
from .verdict import Mismatch, failure_header


def derandomized_seed(property_name: str) -> int:
    """The seed of a derandomized run (the ``ci`` profile): a checksum of the property's name, so
    that the examples depend on the property alone, not on the engine's source code (which is
    what Hypothesis' own derandomization hashes: every edit of this module would redraw them)."""
    return zlib.crc32(f"lstm-conformance:{property_name}".encode())


def cases_in(drawn) -> list[Case]:
    """Every Case inside what a property's strategy drew (an encoder's and its decoder's)."""
    if isinstance(drawn, Case):
        return [drawn]
    return [item for item in drawn if isinstance(item, Case)]


def case_of(drawn) -> Case:
    """The (first) Case inside what a property's strategy drew."""
    return cases_in(drawn)[0]


def run_property(name: str, adapter: Adapter, *, max_examples: int | None = None,
                 stats: Stats | None = None, known_issue: Callable | None = None,
                 seed: int | None = None, on_example: Callable[[Stats], None] | None = None,
                 sizes: SizePlan | None = None, **settings_overrides) -> Stats:
    """Run property ``name`` against ``adapter`` with the current Hypothesis profile, changed by
    ``max_examples``, ``seed`` and any other ``settings`` keyword (see the module docstring).
    A derandomized profile without a ``seed`` runs with :func:`derandomized_seed`.
    ``sizes``: how far the cases reach beyond small shapes (default: the loaded profile's plan,
    ``profiles.size_plan()``).

    ``known_issue``: a predicate on a case; an example for one of whose cases it holds may fail (it is
    counted in ``stats.known_issue_examples``, never as a pass), every other one must pass.
    ``on_example(stats)`` is called after every example (progress output).
    """
    if name not in PROPERTIES:
        raise ValueError(f"property: expected one of {sorted(PROPERTIES)}, got {name!r}")
    prop = PROPERTIES[name]
    lacking = prop.requires(adapter.capabilities)
    if lacking:
        raise Unsupported(f"{adapter.name} cannot express {name}: lacks " + ", ".join(lacking))
    stats = Stats() if stats is None else stats
    if max_examples is not None:
        settings_overrides["max_examples"] = max_examples
    gate = gated(adapter)
    strategy = prop.strategy(gate)
    unsupported_reasons: list[str] = []

    @hsettings(**settings_overrides)
    @given(drawn=strategy)
    def property_test(drawn):
        # Unsupported and known-issue examples end normally (not rejected), so that they count
        # towards max_examples: rejecting them would make Hypothesis draw ten times as many.
        if on_example is not None:
            on_example(stats)
        try:
            prop.check(gate, drawn, stats)
        except Unsupported as exc:
            stats.unsupported_examples += 1
            unsupported_reasons.append(str(exc))
            return
        except (Mismatch, BrokenContract) as exc:
            # A broken contract (the runtime refused the converted model) is the example's
            # failure too: a narrow known issue that names the case covers it as well.
            # Any of the example's cases: a decoder's saturating values fail as an encoder's do.
            if known_issue is not None and any(known_issue(case) for case in cases_in(drawn)):
                stats.known_issue_examples += 1
                return
            if isinstance(exc, Mismatch):
                raise
            raise Mismatch(failure_header(adapter, case_of(drawn), name) + f"\n  {exc}",
                           str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        stats.examples += 1

    if seed is None and settings_overrides.get("derandomize", hsettings.default.derandomize):
        seed = derandomized_seed(name)
    if seed is not None:
        property_test = hseed(seed)(property_test)
    start = time.perf_counter()
    try:
        with size_plan(adapter.size_plan(profiles.size_plan() if sizes is None else sizes)):
            property_test()
    except Unsupported:
        raise
    except Exception as exc:
        if stats.examples == 0 and stats.unsupported_examples and isinstance(
                exc, (errors.Unsatisfiable, errors.FailedHealthCheck)):
            raise Unsupported(f"{adapter.name} raised Unsupported for every example of {name} "
                              f"({unsupported_reasons[-1]})") from exc
        raise
    finally:
        stats.seconds += time.perf_counter() - start
    if stats.examples == 0 and stats.unsupported_examples and not stats.known_issue_examples:
        raise Unsupported(f"{adapter.name} raised Unsupported for every example of {name} "
                          f"({unsupported_reasons[-1]})")
    return stats
