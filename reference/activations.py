"""Activation functions of the reference, by the names frameworks use for them.

All are computed in float64 and are overflow-free for any finite input (|x| up to 1e308): the
logistic sigmoid is evaluated from exp(-|x|) and softplus as max(x, 0) + log1p(exp(-|x|)), which
never overflow, and both keep a few ulp of relative error where their value is tiny.

Names.  The plain names are what Keras, TF and PyTorch call them: "sigmoid", "tanh", "relu",
"linear", "hard_sigmoid" (Keras 3: clip(x/6 + 1/2, 0, 1)), "hard_sigmoid_keras2" (Keras 2:
clip(0.2 x + 0.5, 0, 1)), "softsign", "softplus".  The ONNX RNN activations with their
``activation_alpha`` / ``activation_beta`` are written with their parameters:
"affine(alpha=A, beta=B)", "leaky_relu(alpha=A)", "thresholded_relu(alpha=A)",
"scaled_tanh(alpha=A, beta=B)", "hard_sigmoid(alpha=A, beta=B)", "elu(alpha=A)"; a parameter
left out takes the default of the ONNX operator of that name (:func:`parse` says which).  Every
name has one canonical spelling (:func:`canonical`): "hard_sigmoid(alpha=0.2, beta=0.5)" is
"hard_sigmoid_keras2", "affine(alpha=1, beta=0)" is "linear".

Derivatives are taken through the function's output y (what the backward pass keeps), so a
function must be recoverable enough from y: leaky_relu and elu need alpha >= 0 for their
derivative (the forward pass takes any alpha); at a kink the derivative is that of the flat side
(0 for relu, the hard sigmoids and thresholded_relu), as autograd in TF, PyTorch and JAX returns
for relu and clip.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic sigmoid 1 / (1 + exp(-x)), as (1 or e) / (1 + e) with e = exp(-|x|): no overflow,
    and a few ulp of relative error everywhere, also where the sigmoid is tiny (x << 0), where
    0.5 (1 + tanh(x / 2)) would lose all its digits to cancellation."""
    x = np.asarray(x)
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    num = np.where(x >= 0, 1.0, e)  # NaN in x: e is NaN, and so is the result
    e += 1.0
    return np.divide(num, e, out=out)


def hard_sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Keras 3 ``hard_sigmoid``: clip(x / 6 + 1/2, 0, 1) (keras.ops.hard_sigmoid, Keras >= 3.0)."""
    return _hard(x, out, 1.0 / 6.0, 0.5)


def hard_sigmoid_keras2(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Keras 2 / tf.keras ``hard_sigmoid``: clip(0.2 x + 0.5, 0, 1) (tf_keras.activations); also
    ONNX HardSigmoid with its default alpha and beta."""
    return _hard(x, out, 0.2, 0.5)


def _hard(x, out, alpha, beta):
    out = np.multiply(x, alpha, out=out)
    out += beta
    return np.clip(out, 0.0, 1.0, out=out)


def tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.tanh(x, out=out)


def linear(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        return np.array(x, dtype=np.float64, copy=True)
    if out is not x:
        out[...] = x
    return out


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(x, 0.0, out=out)


def _softsign(x, out):
    a = np.abs(x)
    a += 1.0
    return np.divide(x, a, out=out)


def _softplus(x, out):
    # max(x, 0) + log1p(exp(-|x|)): exact to a few ulp and never overflows.
    t = np.abs(x)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    out = np.maximum(x, 0.0, out=out)
    out += t
    return out


def _affine(x, out, alpha, beta):
    out = np.multiply(x, alpha, out=out)
    out += beta
    return out


def _leaky_relu(x, out, alpha):
    neg = np.minimum(x, 0.0)
    neg *= alpha
    out = np.maximum(x, 0.0, out=out)
    out += neg
    return out


def _thresholded_relu(x, out, alpha):
    below = x < alpha  # NaN stays NaN
    out = linear(x, out)
    out[below] = 0.0
    return out


def _scaled_tanh(x, out, alpha, beta):
    out = np.multiply(x, beta, out=out)
    np.tanh(out, out=out)
    out *= alpha
    return out


def _elu(x, out, alpha):
    neg = np.minimum(x, 0.0)
    np.expm1(neg, out=neg)
    neg *= alpha
    out = np.maximum(x, 0.0, out=out)
    out += neg
    return out


# Derivatives expressed through the activation's *output* y (what the backward pass keeps).

def _d_sigmoid(y):
    return y * (1.0 - y)


def _d_hard(slope):
    def derivative(y):
        return np.where((y > 0.0) & (y < 1.0), slope, 0.0)
    return derivative


def _d_tanh(y):
    return 1.0 - y * y


def _d_linear(y):
    return np.ones_like(y)


def _d_relu(y):
    return (y > 0.0).astype(np.float64)


def _d_softsign(y):
    # y = x / (1 + |x|): dy/dx = 1 / (1 + |x|)^2 = (1 - |y|)^2.
    return np.square(1.0 - np.abs(y))


def _d_softplus(y):
    # y = log(1 + e^x): dy/dx = sigmoid(x) = 1 - exp(-y), as -expm1(-y) (exact for tiny y).
    return -np.expm1(-y)


@dataclass(frozen=True)
class Family:
    """An activation with up to two parameters: ``fn(x, out, alpha, beta)``, ``deriv(y, alpha,
    beta)`` through the output, and the defaults of the ONNX operator of that name."""

    fn: Callable
    deriv: Callable
    alpha: float | None = None  # default; None: the family takes no alpha
    beta: float | None = None


def _no_alpha_derivative(name):
    def check(alpha):
        if alpha < 0:
            raise ValueError(f"activation {name}(alpha={alpha:g}): the derivative through the output needs "
                             f"alpha >= 0 (the backward pass); the forward pass takes any alpha")
    return check


FAMILIES: dict[str, Family] = {
    "affine": Family(lambda x, o, a, b: _affine(x, o, a, b), lambda y, a, b: np.full_like(y, a), 1.0, 0.0),
    "leaky_relu": Family(lambda x, o, a, b: _leaky_relu(x, o, a),
                         lambda y, a, b: _checked(y, "leaky_relu", a, np.where(y > 0.0, 1.0, a)), 0.01),
    "thresholded_relu": Family(lambda x, o, a, b: _thresholded_relu(x, o, a),
                               lambda y, a, b: (y != 0.0).astype(np.float64), 1.0),
    "scaled_tanh": Family(lambda x, o, a, b: _scaled_tanh(x, o, a, b),
                          lambda y, a, b: (a * b * (1.0 - np.square(y / a))) if a else np.zeros_like(y), 1.0, 1.0),
    "hard_sigmoid": Family(lambda x, o, a, b: _hard(x, o, a, b), lambda y, a, b: _d_hard(a)(y), 0.2, 0.5),
    "elu": Family(lambda x, o, a, b: _elu(x, o, a),
                  lambda y, a, b: _checked(y, "elu", a, np.where(y > 0.0, 1.0, y + a)), 1.0),
}


def _checked(y, name, alpha, value):
    _no_alpha_derivative(name)(alpha)
    return value


#: Name -> (function, derivative in terms of the output).  The recurrent activation is applied to
#: the i, f, o gates; the activation to the cell candidate g and to the cell state before the
#: output gate (as in Keras ``activation`` and TF LSTMCell ``activation``), unless
#: LSTMSpec.cell_activation names another for the latter (ONNX h).  These are the named
#: activations of the frameworks (what detect tries); any name :func:`parse` accepts may be used
#: in any of the three places.
RECURRENT_ACTIVATIONS = {
    "sigmoid": (sigmoid, _d_sigmoid),
    "hard_sigmoid": (hard_sigmoid, _d_hard(1.0 / 6.0)),
    "hard_sigmoid_keras2": (hard_sigmoid_keras2, _d_hard(0.2)),
}
ACTIVATIONS = {
    "tanh": (tanh, _d_tanh),
    "linear": (linear, _d_linear),
    "relu": (relu, _d_relu),
}
#: Every named (parameterless) activation.
NAMED = {**RECURRENT_ACTIVATIONS, **ACTIVATIONS,
         "softsign": (_softsign, _d_softsign), "softplus": (_softplus, _d_softplus)}
#: The named ones that are a family with fixed parameters.
NAMED_AS = {"linear": ("affine", 1.0, 0.0), "hard_sigmoid": ("hard_sigmoid", 1.0 / 6.0, 0.5),
             "hard_sigmoid_keras2": ("hard_sigmoid", 0.2, 0.5)}

#: What an adapter that computes every activation declares (named ones, then every family with
#: any parameters), in the order the first of which is the default: sigmoid for the gates, tanh
#: for the candidate.
EVERY_RECURRENT = tuple(RECURRENT_ACTIVATIONS) + tuple(a for a in NAMED if a not in RECURRENT_ACTIVATIONS) + tuple(
    f"{f}(*)" for f in FAMILIES)
EVERY_ACTIVATION = tuple(ACTIVATIONS) + tuple(a for a in NAMED if a not in ACTIVATIONS) + tuple(
    f"{f}(*)" for f in FAMILIES)

_PARAMETERS = re.compile(r"^([a-z_]+)\((.*)\)$")


@dataclass(frozen=True)
class Activation:
    """A parsed activation: ``apply(x, out=None)`` and ``derivative(y)`` (through the output)."""

    name: str  # canonical
    family: str  # the family (for a named one that is a family with fixed parameters) or the name
    alpha: float | None = None
    beta: float | None = None

    def apply(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if self.name in NAMED:
            return NAMED[self.name][0](x, out)
        return FAMILIES[self.family].fn(x, out, self.alpha, self.beta)

    def derivative(self, y: np.ndarray) -> np.ndarray:
        if self.name in NAMED:
            return NAMED[self.name][1](y)
        return FAMILIES[self.family].deriv(y, self.alpha, self.beta)


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def parse(name, argument: str = "activation") -> Activation:
    """The activation ``name`` names (see the module docstring); ValueError naming ``argument``,
    what is expected and what was given."""
    if not isinstance(name, str):
        raise ValueError(f"{argument}: expected a name such as 'tanh' or 'leaky_relu(alpha=0.1)', got {name!r}")
    text = name.replace(" ", "")
    if text in NAMED:
        family, alpha, beta = NAMED_AS.get(text, (text, None, None))
        return Activation(text, family, alpha, beta)
    match = _PARAMETERS.match(text)
    family = match.group(1) if match else text
    if family not in FAMILIES:
        raise ValueError(f"{argument}: expected one of {sorted(NAMED)} or {sorted(FAMILIES)} with parameters, "
                         f"e.g. 'leaky_relu(alpha=0.1)', got {name!r}")
    spec = FAMILIES[family]
    params = {"alpha": spec.alpha, "beta": spec.beta}
    for item in filter(None, (match.group(2).split(",") if match else [])):
        key, _, value = item.partition("=")
        if key not in params or params[key] is None:
            allowed = [k for k, v in params.items() if v is not None]
            raise ValueError(f"{argument}: expected {family} with parameters {allowed}, got {key!r} in {name!r}")
        try:
            params[key] = float(value)
        except ValueError:
            raise ValueError(f"{argument}: {key} expected a number, got {value!r} in {name!r}") from None
        if not math.isfinite(params[key]):
            raise ValueError(f"{argument}: {key} expected a finite number, got {value!r} in {name!r}")
    alpha, beta = params["alpha"], params["beta"]
    for named, fixed in NAMED_AS.items():
        if fixed == (family, alpha, beta):
            return Activation(named, family, alpha, beta)
    shown = [f"{k}={_number(v)}" for k, v in (("alpha", alpha), ("beta", beta)) if v is not None]
    return Activation(f"{family}({', '.join(shown)})", family, alpha, beta)


def canonical(name) -> str:
    """The one spelling of an activation name (ValueError if it names none)."""
    return parse(name).name


#: Families whose values are bounded (the others grow with their input: an LSTM whose g or h is
#: one of them can have exploding, ill-conditioned dynamics).
BOUNDED = frozenset({"sigmoid", "tanh", "hard_sigmoid", "softsign", "scaled_tanh"})


def bounded(name: str) -> bool:
    """Whether the activation ``name`` has bounded values."""
    act = parse(name)
    return act.family in BOUNDED or act.name in BOUNDED


def family_of(name: str) -> str:
    """The family an activation belongs to ("hard_sigmoid" for every hard sigmoid, "affine" for
    "linear" and every affine): what a capability "family(*)" accepts."""
    return parse(name).family


def supported(name: str, declared) -> bool:
    """Whether an adapter that declares the activations ``declared`` can compute ``name``: listed
    by its canonical name, or its family listed as "family(*)" (any parameters)."""
    act = parse(name)
    return act.name in declared or f"{act.family}(*)" in declared
