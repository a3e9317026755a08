"""What a case needs from an adapter, and the gate every adapter call of the harness goes through.

``lacking(case, capabilities, call)`` lists what an adapter with those Capabilities lacks to
express ``case`` for one of its calls ("run", "steps", "stream", "gradients"); the properties,
the golden fixtures and the mutants all run their adapter behind :class:`GatedAdapter`, which
raises ``Unsupported`` (naming what is lacking, and why where the adapter says) before the
adapter is called.  So an adapter never re-checks what its Capabilities declare; it raises
Unsupported itself only for what Capabilities cannot express (e.g. torch's LSTMCell has no
projection although nn.LSTM has one).
"""

from __future__ import annotations

import numpy as np

from adapters.base import Adapter, Capabilities, Case, Unsupported
from reference.activations import supported

CALLS = ("run", "steps", "stream", "gradients")


def missing(caps: Capabilities, *features: str, dtype: str | None = None,
            recurrent_activation: str | None = None, activation: str | None = None,
            min_layers: int = 1) -> list[str]:
    """What ``caps`` lacks of the named features, dtype, activations and number of layers, each
    with the adapter's reason (``Capabilities.why_not``) where it gives one."""
    out = [_why(caps, f, f"feature {f!r}") for f in features if f not in caps.features]
    if dtype and dtype not in caps.dtypes:
        out.append(_why(caps, dtype, f"dtype {dtype!r}"))
    if recurrent_activation and not supported(recurrent_activation, caps.recurrent_activations):
        out.append(_why(caps, recurrent_activation, f"recurrent_activation {recurrent_activation!r}"))
    for name in ([activation] if isinstance(activation, str) else activation or []):
        if not supported(name, caps.activations):
            out.append(_why(caps, name, f"activation {name!r}"))
    if caps.max_layers < min_layers:
        out.append(_why(caps, "layers", f"{min_layers} layers (max_layers is {caps.max_layers})"))
    return out


def _why(caps: Capabilities, key: str, text: str) -> str:
    reason = caps.why_not.get(key)
    return f"{text} ({reason})" if reason else text


def case_features(case: Case) -> list[str]:
    """The features (``adapters.base.FEATURES``) a case uses."""
    spec = case.spec
    features = []
    if case.initial_state is not None:
        features.append("initial_state")
    if spec.forget_bias != 0.0:
        features.append("forget_bias")
    if any(p.recurrent_bias is not None for dirs in case.layers for p in dirs):
        features.append("recurrent_bias")
    params = [p for dirs in case.layers for p in dirs]
    for flag, feature in ((spec.use_peepholes, "peepholes"), (spec.cell_clip, "cell_clip"),
                          (spec.gate_clip, "gate_clip"), (spec.activation_clip, "activation_clip"),
                          (spec.coupled_gates == "input_from_forget", "cifg"),
                          (spec.coupled_gates == "forget_from_input", "input_forget"),
                          (spec.layer_norm, "layer_norm"),
                          (any(p.projection_bias is not None for p in params), "projection_bias"),
                          (spec.cell_activation is not None, "cell_activation"),
                          (spec.backward_activations is not None and case.direction == "bidirectional",
                           "backward_activations"),
                          (spec.proj_size, "projection"),
                          (spec.proj_clip, "proj_clip"), (case.lengths is not None, "lengths"),
                          (case.lengths is not None and bool(np.any(np.asarray(case.lengths) == 0)),
                           "empty_sequences"),
                          (case.direction == "reverse", "reverse"),
                          (case.direction == "bidirectional", "bidirectional"),
                          (len(case.layers) > 1, "layers")):
        if flag:
            features.append(feature)
    return features


def lacking(case: Case, caps: Capabilities, call: str = "run") -> list[str]:
    """What an adapter with ``caps`` lacks to express ``case`` for ``call`` (empty: it can)."""
    if call not in CALLS:
        raise ValueError(f"call: expected one of {CALLS}, got {call!r}")
    spec = case.spec
    features = case_features(case)
    if call == "gradients":
        features.append("gradients")
    activations = [spec.activation] + ([spec.cell_activation] if spec.cell_activation else [])
    recurrent = [spec.recurrent_activation]
    if spec.backward_activations is not None and case.direction == "bidirectional":
        recurrent.append(spec.backward_activations[0])
        activations += list(spec.backward_activations[1:])
    out = missing(caps, *features, dtype=case.dtype, recurrent_activation=recurrent[0],
                  activation=list(dict.fromkeys(activations)), min_layers=len(case.layers))
    out += [_why(caps, name, f"recurrent_activation {name!r}") for name in dict.fromkeys(recurrent[1:])
            if not supported(name, caps.recurrent_activations)]
    if call == "gradients" and "gradients" in caps.features and case.dtype not in caps.gradient_dtypes:
        out.append(_why(caps, f"gradients {case.dtype}",
                        f"gradients in {case.dtype} (gradient_dtypes: {list(caps.gradient_dtypes)})"))
    if call in ("steps", "stream"):
        native = "step" if call == "steps" else "stateful"
        if native not in caps.features and "initial_state" not in caps.features:
            out.append(f"feature {native!r} or 'initial_state' (the state carried between calls)")
    eps = caps.layer_norm_epsilon
    if spec.layer_norm and eps is not None and spec.layer_norm_epsilon != eps:
        out.append(_why(caps, "layer_norm_epsilon", f"layer_norm_epsilon {spec.layer_norm_epsilon!r} (its layer "
                                                    f"norm adds {eps!r})"))
    declared = caps.length_semantics_for(case.direction)
    if case.lengths is not None and declared and declared != spec.length_semantics:
        out.append(_why(caps, f"length_semantics {spec.length_semantics}",
                        f"length_semantics {spec.length_semantics!r} (declares {declared!r} for direction "
                        f"{case.direction!r})"))
    return out


class GatedAdapter:
    """``inner`` behind the capability gate: each call first checks :func:`lacking` and raises
    Unsupported naming what the adapter lacks; everything else is ``inner``'s."""

    def __init__(self, inner: Adapter):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def check(self, case: Case, call: str = "run") -> None:
        lacks = lacking(case, self.inner.capabilities, call)
        if lacks:
            what = f"golden case {case.origin['fixture']}" if "fixture" in case.origin else "this case"
            raise Unsupported(f"{self.inner.name} cannot express {what}: lacks " + ", ".join(lacks))

    def run(self, case: Case):
        self.check(case)
        return self.inner.run(case)

    def run_steps(self, case: Case):
        self.check(case, "steps")
        return self.inner.run_steps(case)

    def run_stream(self, case: Case, chunks):
        self.check(case, "stream")
        return self.inner.run_stream(case, chunks)

    def gradients(self, case: Case, dy, dh, dc):
        self.check(case, "gradients")
        return self.inner.gradients(case, dy, dh, dc)


def gated(adapter) -> GatedAdapter:
    """``adapter`` behind the gate (an adapter already gated is returned as it is)."""
    return adapter if isinstance(adapter, GatedAdapter) else GatedAdapter(adapter)
