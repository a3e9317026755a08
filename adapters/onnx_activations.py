"""ONNX RNN activations <-> the reference's activation names: one home for the LSTM node's
``activations`` / ``activation_alpha`` / ``activation_beta`` attributes (the ORT adapter writes
them, the .onnx model-file reader reads them).

ONNX lists f, g, h per direction (six for a bidirectional node).  ``activation_alpha`` holds one
value per listed function that takes an alpha, in the order of the list, and
``activation_beta`` one per function that takes a beta (ONNX Runtime, rnn_helpers.cc
NormalizeActivationArgumentAndGetAlphaBetaCount): Affine, ScaledTanh and HardSigmoid take both;
LeakyRelu, ThresholdedRelu and Elu take alpha only.  A missing value takes a default: ONNX says
"the same as of the corresponding ONNX operator"; ONNX Runtime uses LeakyRelu 0.01, HardSigmoid
(0.2, 0.5), Elu 1.0, and 0 for every other (ThresholdedRelu's operator default is 1.0).  This
module always writes every value, so that no default is ever relied on.
"""

from __future__ import annotations

import numpy as np

from reference.activations import NAMED_AS, parse

#: ONNX name -> (reference family or name, takes alpha, takes beta)
ONNX_FUNCTIONS = {
    "Sigmoid": ("sigmoid", False, False),
    "Tanh": ("tanh", False, False),
    "Relu": ("relu", False, False),
    "Softsign": ("softsign", False, False),
    "Softplus": ("softplus", False, False),
    "Affine": ("affine", True, True),
    "LeakyRelu": ("leaky_relu", True, False),
    "ThresholdedRelu": ("thresholded_relu", True, False),
    "ScaledTanh": ("scaled_tanh", True, True),
    "HardSigmoid": ("hard_sigmoid", True, True),
    "Elu": ("elu", True, False),
}
_BY_FAMILY = {family: name for name, (family, _, _) in ONNX_FUNCTIONS.items()}
#: ONNX Runtime's defaults for a value the attribute does not hold (0 for the others).
ORT_DEFAULTS = {"LeakyRelu": (0.01, 0.0), "HardSigmoid": (0.2, 0.5), "Elu": (1.0, 0.0)}
DEFAULT_TRIPLE = ("sigmoid", "tanh", "tanh")


def to_onnx(name: str) -> tuple[str, float | None, float | None]:
    """(ONNX name, alpha or None, beta or None) of a reference activation name."""
    act = parse(name)
    onnx_name = _BY_FAMILY.get(act.family) or _BY_FAMILY.get(act.name)
    if onnx_name is None:
        raise ValueError(f"activation: expected one ONNX has ({sorted(ONNX_FUNCTIONS)}), got {name!r}")
    _, takes_alpha, takes_beta = ONNX_FUNCTIONS[onnx_name]
    return onnx_name, act.alpha if takes_alpha else None, act.beta if takes_beta else None


def from_onnx(onnx_name: str, alpha: float | None = None, beta: float | None = None) -> str:
    """The reference's canonical name of an ONNX activation with its parameters (a missing one
    takes ONNX Runtime's default)."""
    key = next((k for k in ONNX_FUNCTIONS if k.lower() == str(onnx_name).lower()), None)
    if key is None:
        raise ValueError(f"activation: expected one of {sorted(ONNX_FUNCTIONS)}, got {onnx_name!r}")
    family, takes_alpha, takes_beta = ONNX_FUNCTIONS[key]
    if not (takes_alpha or takes_beta):
        return family
    default_alpha, default_beta = ORT_DEFAULTS.get(key, (0.0, 0.0))
    alpha = default_alpha if alpha is None else alpha
    beta = default_beta if beta is None else beta
    # Attributes are float32: Keras 3's hard sigmoid (alpha 1/6) comes back as 0.16666667.
    for named, (named_family, named_alpha, named_beta) in NAMED_AS.items():
        if named_family == family and np.float32(alpha) == np.float32(named_alpha) and (
                not takes_beta or np.float32(beta) == np.float32(named_beta)):
            return named
    params = []
    if takes_alpha:
        params.append(f"alpha={float(default_alpha if alpha is None else alpha)!r}")
    if takes_beta:
        params.append(f"beta={float(default_beta if beta is None else beta)!r}")
    return parse(f"{family}({', '.join(params)})").name


def attributes(triples: list[tuple[str, str, str]]) -> dict:
    """The node's ``activations``, ``activation_alpha`` and ``activation_beta`` for (f, g, h) of
    each direction; empty when every direction has ONNX's default (Sigmoid, Tanh, Tanh)."""
    if all(tuple(t) == DEFAULT_TRIPLE for t in triples):
        return {}
    attrs: dict = {"activations": [], "activation_alpha": [], "activation_beta": []}
    for triple in triples:
        for name in triple:
            onnx_name, alpha, beta = to_onnx(name)
            attrs["activations"].append(onnx_name)
            if alpha is not None:
                attrs["activation_alpha"].append(float(alpha))
            if beta is not None:
                attrs["activation_beta"].append(float(beta))
    return {k: v for k, v in attrs.items() if v}


def read_attributes(names, alphas, betas, directions: int) -> list[tuple[str, str, str]]:
    """(f, g, h) per direction from a node's attributes, alphas and betas consumed as ONNX
    Runtime consumes them; ValueError when the list does not hold 3 per direction."""
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    if not names:
        return [DEFAULT_TRIPLE] * directions
    if len(names) != 3 * directions:
        raise ValueError(f"activations: expected {3 * directions} names (f, g, h per direction), got {names}")
    alphas, betas = list(alphas), list(betas)
    out = []
    for name in names:
        key = next((k for k in ONNX_FUNCTIONS if k.lower() == name.lower()), None)
        if key is None:
            raise ValueError(f"activations: expected names from {sorted(ONNX_FUNCTIONS)}, got {name!r}")
        _, takes_alpha, takes_beta = ONNX_FUNCTIONS[key]
        alpha = alphas.pop(0) if takes_alpha and alphas else None
        beta = betas.pop(0) if takes_beta and betas else None
        out.append(from_onnx(key, alpha, beta))
    return [tuple(out[3 * d:3 * d + 3]) for d in range(directions)]


def spec_triples(spec, directions: int) -> list[tuple[str, str, str]]:
    """(f, g, h) of each direction of an LSTMSpec (the backward direction's own when set)."""
    forward = (spec.recurrent_activation, spec.activation, spec.h_activation)
    if directions == 1:
        return [forward]
    backward = spec.backward_direction()
    return [forward, (backward.recurrent_activation, backward.activation, backward.h_activation)]
