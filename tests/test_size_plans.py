"""How a backend narrows the run's SizePlan (``Adapter.size_plan``): ``unit_sizes`` draws the input
and hidden sizes at scale from a few values, and ``adapters.onnx_pipelines.export_size_plan`` (the
plan of the pipelines that export one model per structure) keeps examples at scale in the
``scale`` property only, at sizes past the 16-, 32- and 128-unit boundaries.  The narrowed plan
must still catch every size mutant in the ``scale`` property (proved on the reference backend);
the other properties keep their small shapes."""

from __future__ import annotations

import pytest
from hypothesis import Phase, given, settings

from adapters.onnx_pipelines import EXPORT_UNIT_SIZES, export_size_plan
from adapters.reference_adapter import ReferenceAdapter
from conformance.harness.engine import run_property
from conformance.harness.mutants import SIZE_MUTATIONS, Mutant
from conformance.harness.profiles import SIZE_PLANS
from conformance.harness.results import Stats
from conformance.harness.strategies import SizePlan, cases, size_plan
from conformance.harness.verdict import Mismatch

CI = SIZE_PLANS["ci"]


class Narrowed(ReferenceAdapter):
    """The reference with the pipelines' narrowed plan."""

    name = "reference-export-plan"

    def size_plan(self, plan):
        return export_size_plan(plan)


def test_unit_sizes_are_the_only_layer_sizes_drawn_at_scale():
    plan = SizePlan(share=1, max_size=257, max_batch=9, max_steps=9, max_work=1e7, unit_sizes=(17, 33))
    seen = set()

    @settings(max_examples=40, database=None, derandomize=True)
    @given(case=cases(scale=True))
    def draw(case):
        seen.add((case.params.input_size, case.params.hidden_size))

    with size_plan(plan):
        draw()
    assert seen and {d for d, _ in seen} | {h for _, h in seen} <= {17, 33}, seen


@pytest.mark.parametrize("sizes", [[17, 33], (33, 17), (17, 17), (0, 17), (True,), (17.0,)])
def test_bad_unit_sizes_are_refused_by_name(sizes):
    with pytest.raises(ValueError, match=r"unit_sizes: expected a tuple of distinct positive ints in "
                                         r"ascending order, got"):
        SizePlan(unit_sizes=sizes)


def test_the_export_plan_keeps_scale_to_the_scale_property_at_a_few_sizes():
    plan = export_size_plan(CI)
    assert plan.share == 0
    assert plan.unit_sizes == tuple(s for s in EXPORT_UNIT_SIZES if s <= CI.max_size) == (17, 33, 129)
    assert (plan.max_batch, plan.max_steps, plan.max_work) == (CI.max_batch, CI.max_steps, CI.max_work)
    # A plan that reaches none of the sizes loses its share only; one that names its own sizes
    # keeps those of them that are among the pipelines'.
    small = SizePlan(share=4, max_size=9, max_batch=9, max_steps=17, max_work=1e6)
    assert export_size_plan(small) == SizePlan(share=0, max_size=9, max_batch=9, max_steps=17, max_work=1e6)
    assert export_size_plan(SizePlan(share=2, max_size=257, unit_sizes=(33, 64))).unit_sizes == (33,)


@pytest.mark.parametrize("mutation", SIZE_MUTATIONS)
def test_the_export_plan_still_catches_every_size_mutant_in_scale(mutation):
    """The examples the suite's mutation tests draw in the ci profile (10, derandomized: seeded by
    the property's name): every size mutant is caught although units are only 17, 33 or 129."""
    with pytest.raises(Mismatch):
        run_property("scale", Mutant(Narrowed(), mutation), max_examples=10, sizes=CI, derandomize=True,
                     phases=[Phase.explicit, Phase.generate])


def test_the_export_plan_leaves_the_other_properties_small():
    stats = run_property("forward_parity", Narrowed(), max_examples=25, sizes=CI, derandomize=True,
                         stats=Stats())
    assert stats.examples == 25 and max(stats.largest["hidden_size"], stats.largest["input_size"]) <= 5
    scaled = run_property("scale", Narrowed(), max_examples=25, sizes=CI, derandomize=True, stats=Stats())
    assert scaled.largest["hidden_size"] in EXPORT_UNIT_SIZES and scaled.largest["batch"] > 16


def test_lstm_conformance_sizes_chooses_the_size_plan(monkeypatch):
    """LSTM_CONFORMANCE_SIZES picks a profile's sizes apart from its example counts; a name that
    is not a profile is refused by name."""
    from conformance.harness import profiles

    monkeypatch.setenv("LSTM_CONFORMANCE_SIZES", "thorough")
    assert profiles.size_plan() == SIZE_PLANS["thorough"]
    monkeypatch.setenv("LSTM_CONFORMANCE_SIZES", "huge")
    with pytest.raises(ValueError, match=r"LSTM_CONFORMANCE_SIZES: expected one of \['ci', 'dev', 'thorough'\], got 'huge'"):
        profiles.size_plan()
