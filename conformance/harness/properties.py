"""The conformance properties: each holds an adapter to the reference over drawn cases.

A property has a name, what it needs from the adapter (missing needs make it *unsupported*), a
strategy for cases given the adapter, and a check that raises ``verdict.Mismatch`` with a full
report when the framework disagrees with the reference.  ``engine.run_property`` runs one
through Hypothesis, for the pytest suite (``conformance/suite``), the mutation tests and
``check`` alike; a property added here reaches all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from hypothesis import strategies as st

from adapters.base import Adapter, Capabilities, Case, Output
from reference.activations import RECURRENT_ACTIVATIONS

from .requirements import missing
from .results import Stats
from .strategies import cases, chunked, round_to
from .verdict import check_gradients, check_output, expected_for


@dataclass(frozen=True)
class Property:
    name: str
    doc: str
    requires: Callable[[Capabilities], list[str]]
    strategy: Callable[[Adapter], st.SearchStrategy]
    check: Callable[[Adapter, object, Stats], None]


PROPERTIES: dict[str, Property] = {}


def prop(name: str, requires=lambda caps: []):
    def register(fn):
        strategy, check = fn()
        PROPERTIES[name] = Property(name, (fn.__doc__ or "").strip(), requires, strategy, check)
        return fn
    return register


# --------------------------------------------------------------------------------------------
# Helpers

def has(adapter: Adapter, feature: str) -> bool:
    return feature in adapter.capabilities.features


def cases_for(adapter: Adapter, *, spec: dict | None = None, dtype: str | None = None, **kwargs):
    """``strategies.cases`` with the adapter's defaults: its first dtype, recurrent activation
    and activation unless the property asks for others (float32, sigmoid and tanh for every
    framework adapter; a user's callable may claim another), and for layer-norm cases the
    epsilon its kernel adds (``Capabilities.layer_norm_epsilon``)."""
    caps = adapter.capabilities
    spec = dict(spec or {})
    spec.setdefault("recurrent_activation", caps.recurrent_activations[0])
    spec.setdefault("activation", caps.activations[0])
    if spec.get("layer_norm") and caps.layer_norm_epsilon is not None:
        spec.setdefault("layer_norm_epsilon", caps.layer_norm_epsilon)
    return cases(dtype=dtype or caps.dtypes[0], spec=spec, **kwargs)


def _run(adapter: Adapter, case: Case, stats: Stats, name: str, quantity="forward"):
    check_output(adapter, case, adapter.run(case), expected_for(adapter, case), stats,
                 property_name=name, quantity=quantity)


def _maybe_state(adapter):
    return has(adapter, "initial_state")


# --------------------------------------------------------------------------------------------
# The properties

@prop("forward_parity")
def _forward_parity():
    """All outputs and the final (h, c) from a zero state (float32 unless the backend computes in
    another dtype only), every gate order of the data."""
    return (lambda a: cases_for(a)), (lambda a, case, stats: _run(a, case, stats, "forward_parity"))


@prop("initial_state", requires=lambda caps: missing(caps, "initial_state"))
def _initial_state():
    """A given (h0, c0), with |c0| well above 3, as a captioning decoder seeds its state."""
    return (lambda a: cases_for(a, initial_state=True)), (lambda a, case, stats: _run(a, case, stats, "initial_state"))


@prop("state_transfer", requires=lambda caps: missing(caps, "initial_state"))
def _state_transfer():
    """One model's final state, as the framework returned it, is another model's initial state
    (encoder-decoder); the decoder's outputs match the reference chain."""

    @st.composite
    def pair(draw, adapter):
        enc = draw(cases_for(adapter, initial_state=True))
        b, h = enc.batch, enc.params.hidden_size
        dec = draw(cases_for(adapter, batch=(b, b), hidden_size=(h, h)))
        return enc, dec

    def check(adapter, both, stats):
        enc, dec = both
        enc_out = adapter.run(enc)
        check_output(adapter, enc, enc_out, expected_for(adapter, enc), stats,
                     property_name="state_transfer", what="encoder")
        carried = [tuple(round_to(a, dec.dtype) for a in enc_out.final[0])]
        dec_case = dec.replace(initial_state=carried)
        check_output(adapter, dec_case, adapter.run(dec_case), expected_for(adapter, dec_case), stats,
                     property_name="state_transfer", what="decoder seeded with the encoder's final state")

    return (lambda a: pair(a)), check


@prop("step_by_step", requires=lambda caps: missing(caps, "initial_state"))
def _step_by_step():
    """One step at a time with the returned state fed back (a greedy decoding loop) equals the
    whole sequence; uses the framework's single-step API where it has one."""

    def check(adapter, case, stats):
        check_output(adapter, case, adapter.run_steps(case), expected_for(adapter, case), stats,
                     property_name="step_by_step")

    return (lambda a: cases_for(a, initial_state=True, steps=(2, 10))), check


@prop("streaming", requires=lambda caps: [] if {"initial_state", "stateful"} & caps.features
      else ["feature 'initial_state' or 'stateful'"])
def _streaming():
    """A sequence fed in chunks with the state carried (Keras stateful, explicit state elsewhere)
    equals the whole; after a reset the first chunk gives the zero-state result."""

    def check(adapter, drawn, stats):
        case, chunks = drawn
        outputs, after_reset = adapter.run_stream(case, chunks)
        whole = Output(np.concatenate([o.y for o in outputs], axis=1), outputs[-1].final)
        check_output(adapter, case, whole, expected_for(adapter, case), stats,
                     property_name="streaming", what=f"chunks {chunks}")
        first = case.replace(x=case.x[:, :chunks[0]], initial_state=None)
        check_output(adapter, first, after_reset, expected_for(adapter, first), stats,
                     property_name="streaming", what="first chunk after reset")

    return (lambda a: chunked(cases_for(a, initial_state=_maybe_state(a), steps=(2, 12)))), check


@prop("lengths", requires=lambda caps: missing(caps, "lengths"))
def _lengths():
    """Per-sequence lengths with the backend's declared semantics; garbage in padded steps never
    reaches an output; the final state is each sequence's own last valid state."""
    return ((lambda a: cases_for(a, lengths=a.capabilities.length_semantics, initial_state=_maybe_state(a))),
            (lambda a, case, stats: _run(a, case, stats, "lengths")))


@prop("zero_length", requires=lambda caps: missing(caps, "lengths", "empty_sequences"))
def _zero_length():
    """A batch in which at least one sequence is empty (length 0): its final state is its initial
    state and its outputs are padding (the reference, TF dynamic_rnn)."""
    return ((lambda a: cases_for(a, lengths=a.capabilities.length_semantics, initial_state=_maybe_state(a),
                             zero_length=True)),
            (lambda a, case, stats: _run(a, case, stats, "zero_length")))


@st.composite
def _directed(draw, adapter, direction: str, **kwargs):
    """Cases in ``direction``, with lengths in the semantics the backend declares for that
    direction, or without (when the backend has lengths at all)."""
    sem = adapter.capabilities.length_semantics_for(direction)
    lengths = draw(st.sampled_from([None, sem])) if sem else None
    return draw(cases_for(adapter, direction=direction, lengths=lengths, initial_state=_maybe_state(adapter),
                          **kwargs))


@prop("reverse", requires=lambda caps: missing(caps, "reverse"))
def _reverse():
    """The reverse direction, outputs in the backend's declared time order, with lengths when the
    backend has them (each sequence reversed within its own length)."""
    return (lambda a: _directed(a, "reverse")), (lambda a, case, stats: _run(a, case, stats, "reverse"))


@prop("bidirectional", requires=lambda caps: missing(caps, "bidirectional"))
def _bidirectional():
    """A bidirectional layer: outputs concatenated forward | backward, aligned to input steps;
    final states forward then backward; with lengths when the backend has them, in the
    semantics it declares for a bidirectional layer."""
    return (lambda a: _directed(a, "bidirectional")), (lambda a, case, stats: _run(a, case, stats, "bidirectional"))


@prop("stacked", requires=lambda caps: missing(caps, "layers", min_layers=2))
def _stacked():
    """Stacked layers, with lengths when the backend has them (each layer masks the same padded
    steps); final states per layer in order."""
    return ((lambda a: _directed(a, "forward", layers=(2, min(3, a.capabilities.max_layers)))),
            (lambda a, case, stats: _run(a, case, stats, "stacked")))


def _option(name, doc, spec, *features, recurrent_activation=None, activation=None, **case_kwargs):
    def requires(caps):
        return missing(caps, *features, recurrent_activation=recurrent_activation, activation=activation)

    def strategy(adapter):
        return cases_for(adapter, spec=spec, initial_state=_maybe_state(adapter), **case_kwargs)

    def check(adapter, case, stats):
        _run(adapter, case, stats, name)

    PROPERTIES[name] = Property(name, doc, requires, strategy, check)


_option("peepholes", "Peephole connections: i and f see c_{t-1}, o sees c_t.",
        {"use_peepholes": True}, "peepholes")
_option("cell_clip", "The cell state clipped to [-clip, clip] (TF cell_clip), in the regime where |c| > 3.",
        {"cell_clip": st.sampled_from([0.5, 1.0, 3.0, 4.5])}, "cell_clip")
_option("gate_clip", "Gate pre-activations clipped to [-clip, clip] (ONNX clip).",
        {"gate_clip": st.sampled_from([0.25, 1.0, 2.0, 5.0])}, "gate_clip")
_option("projection", "An output projection to P features (num_proj / proj_size).",
        {"proj_size": st.integers(1, 4)}, "projection")
_option("proj_clip", "The projected output clipped (TF proj_clip).",
        {"proj_size": st.integers(1, 4), "proj_clip": st.sampled_from([0.1, 0.3, 1.0])},
        "projection", "proj_clip")
_option("hard_sigmoid", "recurrent_activation='hard_sigmoid' as Keras 3 defines it: clip(x/6 + 1/2, 0, 1).",
        {"recurrent_activation": "hard_sigmoid"}, recurrent_activation="hard_sigmoid")
_option("hard_sigmoid_keras2", "recurrent_activation 'hard_sigmoid' as Keras 2 defines it: clip(0.2x + 0.5, 0, 1).",
        {"recurrent_activation": "hard_sigmoid_keras2"}, recurrent_activation="hard_sigmoid_keras2")
_option("forget_bias", "A run-time forget bias added to the forget pre-activation (TF LSTMCell).",
        {"forget_bias": st.sampled_from([1.0, 0.5, 2.5, -1.5])}, "forget_bias")
_option("recurrent_bias", "Two biases (PyTorch b_ih + b_hh, ONNX Wb + Rb).", {}, "recurrent_bias",
        recurrent_bias=True)
_option("activation_relu", "activation='relu' for the candidate and the cell output.",
        {"activation": "relu"}, activation="relu")
_option("activation_linear", "activation='linear' for the candidate and the cell output.",
        {"activation": "linear"}, activation="linear")
_option("cifg", "Coupled input and forget gates, i = 1 - f (TFLite / NNAPI CIFG): the input gate's "
        "weights are present and must be ignored.", {"coupled_gates": "input_from_forget"}, "cifg")
_option("input_forget", "Coupled input and forget gates, f = 1 - i (ONNX input_forget=1 as ONNX Runtime "
        "computes it): the forget gate's weights are present and must be ignored.",
        {"coupled_gates": "forget_from_input"}, "input_forget")
_option("activation_clip", "ONNX clip as the ONNX spec words it, 'applied to the input of activations': the "
        "gate pre-activations and the cell state entering h (h(clip(c))), in the regime where |c| exceeds the "
        "clip.", {"activation_clip": st.sampled_from([0.5, 1.0, 3.0, 4.5])}, "activation_clip",
        regimes=("accumulating", "moderate"))
_option("layer_norm", "TFLite / NNAPI layer-normalised LSTM: each gate's x W + h R normalised over its units, "
        "scaled, then biased.", {"layer_norm": True}, "layer_norm")
_option("projection_bias", "A bias after the output projection (TFLite / NNAPI).",
        {"proj_size": st.integers(1, 4)}, "projection", "projection_bias", projection_bias=True)


# ONNX's activation functions with drawn parameters (multiples of 1/16: exact in float32, as
# ONNX attributes are).  The gates' function is a bounded one, so that long sequences stay finite.
def _sixteenths(lo, hi):
    return st.integers(int(lo * 16), int(hi * 16)).map(lambda k: k / 16)


_FAMILY_PARAMETERS = {
    "affine": {"alpha": _sixteenths(0.25, 1.5), "beta": _sixteenths(-0.5, 0.5)},
    "leaky_relu": {"alpha": _sixteenths(0.0, 0.5)},
    "thresholded_relu": {"alpha": _sixteenths(-0.5, 1.0)},
    "scaled_tanh": {"alpha": _sixteenths(0.5, 2.0), "beta": _sixteenths(0.25, 2.0)},
    "hard_sigmoid": {"alpha": _sixteenths(0.125, 0.5), "beta": _sixteenths(0.25, 0.75)},
    "elu": {"alpha": _sixteenths(0.25, 2.0)},
}
_BOUNDED = {"sigmoid", "hard_sigmoid", "hard_sigmoid_keras2", "softsign", "tanh", "scaled_tanh(*)",
            "hard_sigmoid(*)"}


@st.composite
def _activation_from(draw, declared, bounded: bool = False):
    """An activation the adapter declares: a named one, or a family(*) with drawn parameters."""
    choices = [a for a in declared if not bounded or a in _BOUNDED]
    choice = draw(st.sampled_from(choices or list(declared)))
    if not choice.endswith("(*)"):
        return choice
    family = choice[:-3]
    params = {k: draw(v) for k, v in _FAMILY_PARAMETERS[family].items()}
    return f"{family}(" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")"


@st.composite
def _activations(draw, adapter):
    caps = adapter.capabilities
    spec = {"recurrent_activation": draw(_activation_from(caps.recurrent_activations, bounded=True)),
            "activation": draw(_activation_from(caps.activations))}
    if "cell_activation" in caps.features:
        spec["cell_activation"] = draw(_activation_from(caps.activations, bounded=True))
    return spec


def _many_activations(caps: Capabilities) -> list[str]:
    """The property needs activations with parameters, or a cell activation (ONNX h) of its own: f, g
    and h then drawn from the functions declared (OpenVINO: relu, sigmoid, tanh in any of them)."""
    parameterised = [a for a in caps.recurrent_activations + caps.activations if a.endswith("(*)")]
    if parameterised or "cell_activation" in caps.features:
        return []
    return ["activations with parameters (an ONNX family such as 'leaky_relu(*)') or feature 'cell_activation'"]


@prop("onnx_activations", requires=_many_activations)
def _onnx_activations():
    """ONNX's activations f, g and h, drawn from the functions the backend declares, with drawn
    activation_alpha and activation_beta (LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid,
    Elu, Affine, Softsign, Softplus, ...) where it declares them."""

    @st.composite
    def drawn(draw, adapter):
        return draw(cases_for(adapter, spec=draw(_activations(adapter)), initial_state=_maybe_state(adapter),
                              regimes=("moderate", "accumulating")))

    return (lambda a: drawn(a)), (lambda a, case, stats: _run(a, case, stats, "onnx_activations"))


@prop("backward_activations", requires=lambda caps: missing(caps, "bidirectional", "backward_activations"))
def _backward_activations():
    """A bidirectional layer whose backward direction has its own activations (ONNX lists six)."""

    @st.composite
    def drawn(draw, adapter):
        spec = draw(_activations(adapter))
        back = draw(_activations(adapter))
        spec["backward_activations"] = (back["recurrent_activation"], back["activation"],
                                        back.get("cell_activation", back["activation"]))
        return draw(_directed(adapter, "bidirectional", spec=spec, regimes=("moderate", "accumulating")))

    return (lambda a: drawn(a)), (lambda a, case, stats: _run(a, case, stats, "backward_activations"))


def _dtype_property(dtype):
    name = f"dtype_{dtype}"

    def requires(caps):
        return missing(caps, dtype=dtype)

    def strategy(adapter):
        return cases_for(adapter, dtype=dtype, initial_state=_maybe_state(adapter))

    def check(adapter, case, stats):
        _run(adapter, case, stats, name)

    PROPERTIES[name] = Property(name, f"Forward parity computed in {dtype}, with the {dtype} "
                                      f"row of the tolerance table.", requires, strategy, check)


for _dtype in ("float64", "float16", "bfloat16"):
    _dtype_property(_dtype)


@prop("long_sequence")
def _long_sequence():
    """Sequences of 20 to 100 steps in the saturating and accumulating regimes (|c| up to ~100):
    the drift that makes ported models match at step 1 and diverge later."""
    return ((lambda a: cases_for(a, steps=(20, 100), regimes=("saturating", "accumulating"),
                             initial_state=_maybe_state(a))),
            (lambda a, case, stats: _run(a, case, stats, "long_sequence", quantity="long_sequence")))


@prop("scale")
def _scale():
    """Every example at scale: input and hidden sizes, batch and steps drawn at and around the
    boundaries where kernels switch code paths (8-, 16-, 32-lane SIMD, GEMM blocks, thread
    partitions over the batch, chunked time loops), as far as the run's SizePlan reaches; the
    other properties draw a share of their examples this way."""
    return ((lambda a: cases_for(a, initial_state=_maybe_state(a), scale=True)),
            (lambda a, case, stats: _run(a, case, stats, "scale")))


_COMBINABLE = {
    "peepholes": {"use_peepholes": True},
    "cell_clip": {"cell_clip": 2.0},
    "gate_clip": {"gate_clip": 3.0},
    "activation_clip": {"activation_clip": 3.0},
    "projection": {"proj_size": 2},
    "forget_bias": {"forget_bias": 1.0},
    "cifg": {"coupled_gates": "input_from_forget"},
    "input_forget": {"coupled_gates": "forget_from_input"},
    "layer_norm": {"layer_norm": True},
}
#: Options that exclude each other: the later one is dropped.
_EXCLUSIVE = (("gate_clip", "activation_clip"), ("cifg", "input_forget"))


def _combined_spec(draw, caps: Capabilities) -> dict:
    chosen = [f for f in _COMBINABLE if f in caps.features and draw(st.booleans())]
    for first, second in _EXCLUSIVE:
        if first in chosen and second in chosen:
            chosen.remove(second)
    spec = {}
    for feature in chosen:
        spec.update(_COMBINABLE[feature])
    return spec


@prop("option_combinations")
def _option_combinations():
    """Random combinations of every option the backend supports (peepholes with cell_clip and
    projection, a forget bias with lengths and reverse, ...): the options interact."""

    @st.composite
    def combined(draw, adapter):
        caps = adapter.capabilities
        spec = _combined_spec(draw, caps)
        if "proj_size" in spec and "proj_clip" in caps.features and draw(st.booleans()):
            spec["proj_clip"] = 0.5
        spec["recurrent_activation"] = draw(st.sampled_from(
            [a for a in caps.recurrent_activations if a in RECURRENT_ACTIVATIONS] or caps.recurrent_activations[:1]))
        directions = ["forward"] + [d for d in ("reverse", "bidirectional") if d in caps.features]
        direction = draw(st.sampled_from(directions))
        sem = caps.length_semantics_for(direction)
        lengths = draw(st.sampled_from([None, sem])) if sem else None
        return draw(cases_for(adapter, spec=spec, direction=direction, lengths=lengths,
                          recurrent_bias="recurrent_bias" in caps.features and draw(st.booleans()),
                          projection_bias="proj_size" in spec and "projection_bias" in caps.features
                          and draw(st.booleans()),
                          initial_state=_maybe_state(adapter)))

    return (lambda a: combined(a)), (lambda a, case, stats: _run(a, case, stats, "option_combinations"))


@prop("gradients", requires=lambda caps: missing(caps, "gradients"))
def _gradients():
    """Gradients of sum(y*dy) + sum(h_T*dh) + sum(c_T*dc) with respect to x, h0, c0 and every
    weight, against the reference backward pass (BPTT); in float64 where the backend allows."""

    @st.composite
    def with_upstream(draw, adapter):
        caps = adapter.capabilities
        dtype = next((d for d in ("float64", "float32") if d in caps.dtypes and d in caps.gradient_dtypes),
                     "float32")
        spec = _combined_spec(draw, caps)
        case = draw(cases_for(adapter, dtype=dtype, spec=spec, initial_state=True, steps=(1, 6),
                          regimes=("moderate", "accumulating"),
                          recurrent_bias="recurrent_bias" in caps.features and draw(st.booleans()),
                          projection_bias="proj_size" in spec and "projection_bias" in caps.features
                          and draw(st.booleans())))
        rng = np.random.default_rng(case.origin["seed"] + 1)
        out_size, hidden = case.params.output_size, case.params.hidden_size
        dy = round_to(rng.normal(size=(case.batch, case.steps, out_size)), dtype)
        dh = round_to(rng.normal(size=(case.batch, out_size)), dtype)
        dc = round_to(rng.normal(size=(case.batch, hidden)), dtype)
        return case, dy, dh, dc

    def check(adapter, drawn, stats):
        from reference.backward import lstm_backward

        case, dy, dh, dc = drawn
        expected = lstm_backward(case.x, case.params, case.spec, case.initial_state[0],
                                 dy=dy, dh_T=dh, dc_T=dc)
        actual = adapter.gradients(case, dy, dh, dc)
        check_gradients(adapter, case, actual, expected, stats, property_name="gradients")

    return (lambda a: with_upstream(a)), check
