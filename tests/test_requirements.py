"""What a case needs from an adapter (conformance.harness.requirements), and the gate: an adapter
is never called with a case its Capabilities cannot express, whatever calls it (a property, a
golden case, a mutant)."""

from __future__ import annotations

import pytest

from adapters.base import Adapter, Capabilities, Output, Unsupported
from adapters.reference_adapter import ReferenceAdapter
from conformance.golden import store
from conformance.harness.engine import run_property
from conformance.harness.requirements import GatedAdapter, gated, lacking


def test_lacking_names_what_is_missing():
    case = store.load("all_options_reverse_lengths").case
    missing = lacking(case, Capabilities())
    for feature in ("initial_state", "forget_bias", "recurrent_bias", "peepholes", "cell_clip",
                    "gate_clip", "projection", "proj_clip", "lengths", "reverse"):
        assert f"feature {feature!r}" in missing
    caps = Capabilities(features=frozenset({"lengths"}), length_semantics="zeros")
    assert lacking(store.load("lengths_repeat").case, caps) == [
        "feature 'initial_state'", "length_semantics 'repeat' (declares 'zeros' for direction 'forward')"]
    assert lacking(store.load("float64_moderate").case, Capabilities(features=frozenset({"initial_state"}))) \
        == ["dtype 'float64'"]


def test_reasons_come_from_the_capabilities():
    caps = Capabilities(why_not={"peepholes": "the op has none"})
    case = store.load("all_options_reverse_lengths").case
    assert "feature 'peepholes' (the op has none)" in lacking(case, caps)


def test_gradients_and_stateful_calls_have_their_own_needs():
    case = store.load("float64_moderate").case.replace(initial_state=None, dtype="float32")
    caps = Capabilities()
    assert lacking(case, caps) == []
    assert lacking(case, caps, "gradients") == ["feature 'gradients'"]
    with_grads = Capabilities(features=frozenset({"gradients"}), gradient_dtypes=("float64",))
    assert lacking(case, with_grads, "gradients") == ["gradients in float32 (gradient_dtypes: ['float64'])"]
    assert lacking(case, caps, "steps") == ["feature 'step' or 'initial_state' (the state carried between calls)"]
    assert lacking(case, Capabilities(features=frozenset({"step"})), "steps") == []
    assert lacking(case, caps, "stream") == [
        "feature 'stateful' or 'initial_state' (the state carried between calls)"]
    with pytest.raises(ValueError, match="call"):
        lacking(case, caps, "fly")


class Recorder(Adapter):
    """Records every case it is called with; claims only float32 forward runs from zeros."""

    name = "recorder"
    capabilities = Capabilities()

    def __init__(self):
        self.seen = []

    def run(self, case):
        self.seen.append(case)
        return ReferenceAdapter().run(case)


def test_the_gate_stops_a_case_before_the_adapter():
    inner = Recorder()
    gate = gated(inner)
    assert gated(gate) is gate and isinstance(gate, GatedAdapter)
    case = store.load("float64_moderate").case
    with pytest.raises(Unsupported, match="recorder cannot express golden case float64_moderate: lacks .*dtype .float64."):
        gate.run(case)
    assert inner.seen == []
    assert gate.name == "recorder"  # everything else is the inner adapter's


def test_the_engine_calls_adapters_through_the_gate():
    """A property the adapter cannot express is unsupported before any call; the others draw
    only cases the adapter can express (its first dtype, no state it lacks)."""
    inner = Recorder()
    for name in ("dtype_float64", "initial_state", "gradients"):
        with pytest.raises(Unsupported, match=f"recorder cannot express {name}"):
            run_property(name, inner, max_examples=5)
    assert inner.seen == []
    stats = run_property("forward_parity", inner, max_examples=5)
    assert stats.examples == 5 and len(inner.seen) == 5
    assert all(c.dtype == "float32" and c.initial_state is None for c in inner.seen)


def test_an_adapter_that_lacks_a_drawn_option_is_never_called_with_it():
    """option_combinations draws only options the adapter declares; a case that slips through
    (here: the adapter's declaration changes after the strategy was built) is gated out."""
    inner = Recorder()
    case = store.load("all_options_reverse_lengths").case
    with pytest.raises(Unsupported):
        gated(inner).run(case)
    with pytest.raises(Unsupported):
        gated(inner).run_steps(case)
    assert inner.seen == [] and Output


class LayerNormRecorder(Recorder):
    """A layer-norm backend whose kernel adds a fixed epsilon to the variance (LiteRT: 1e-8)."""

    name = "layer-norm-recorder"
    capabilities = Capabilities(features=frozenset({"layer_norm", "initial_state"}), layer_norm_epsilon=0.25)


def test_layer_norm_cases_are_drawn_with_the_epsilon_the_backend_declares():
    inner = LayerNormRecorder()
    stats = run_property("layer_norm", inner, max_examples=5)
    assert stats.examples == 5 and all(c.spec.layer_norm and c.spec.layer_norm_epsilon == 0.25 for c in inner.seen)
    case = inner.seen[0]
    other = case.replace(spec=case.spec.replace(layer_norm_epsilon=0.0))
    assert lacking(other, inner.capabilities) == ["layer_norm_epsilon 0.0 (its layer norm adds 0.25)"]
    assert lacking(other, Capabilities(features=frozenset({"layer_norm", "initial_state"}))) == []


@pytest.mark.parametrize("bad", [-1e-8, 1.0, float("nan"), "1e-8", True])
def test_a_layer_norm_epsilon_must_be_a_small_number(bad):
    with pytest.raises(ValueError, match=r"layer_norm_epsilon: expected None or a number in \[0, 1\), got"):
        Capabilities(layer_norm_epsilon=bad)
