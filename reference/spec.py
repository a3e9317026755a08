"""LSTMSpec (what is computed) and LSTMParams (the weights), with their validation.

Every option models a behaviour that differs between frameworks; the docstring of each field
names the framework behaviour.  Invalid values raise ValueError naming the argument, the expected
and the actual value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from .activations import parse
from .gates import resolve_gate_order

LENGTH_SEMANTICS = ("zeros", "repeat")
#: Coupled input and forget gates: "input_from_forget" is TFLite / NNAPI CIFG (no input-gate
#: weights; i = 1 - f), "forget_from_input" is ONNX input_forget as ONNX Runtime computes it
#: (f = 1 - i; uni_directional_lstm.cc); the ONNX spec says only "couple the input and forget
#: gates".
COUPLED_GATES = ("input_from_forget", "forget_from_input")


@dataclass(frozen=True)
class LSTMSpec:
    """The convention an LSTM computes, as keyword options (defaults: PyTorch / Keras 3).

    gate_order
        Order of the i, f, g, o blocks along the 4H axis of kernel, recurrent kernel and biases:
        a permutation of "ifgo" or a preset name from ``reference.gates.GATE_ORDER_PRESETS``
        ("torch", "keras", "tf", "cntk", "onnx", "cs231n", ...).  Stored canonically.
    forget_bias
        Added to the forget pre-activation at run time, on top of the bias.  TF 1.x
        ``LSTMCell`` / ``LSTMBlockCell`` and ``tf.raw_ops.BlockLSTM`` default to 1.0; Keras'
        ``unit_forget_bias`` only initialises the bias and is *not* this (0.0 here).
    recurrent_activation
        Applied to i, f, o (ONNX f): "sigmoid"; "hard_sigmoid" (Keras 3: clip(x/6 + 1/2, 0, 1));
        "hard_sigmoid_keras2" (Keras 2 / tf.keras 1.x: clip(0.2 x + 0.5, 0, 1), the default of
        Keras < 2.3 and of tf.keras 1.15's LSTM); or any name of ``reference.activations``.
    activation
        Applied to g (ONNX g) and, unless ``cell_activation`` is set, to the cell state before
        the output gate: "tanh", "linear", "relu", or any name of ``reference.activations``
        (the ONNX functions with their alpha and beta: "leaky_relu(alpha=0.1)", ...).
    cell_activation
        ONNX h, applied to the cell state before the output gate when it differs from g; None:
        the same as ``activation`` (every framework but ONNX).
    backward_activations
        (f, g, h) of the backward direction of a bidirectional layer, where ONNX ``activations``
        lists six; None: the same as the forward direction's.
    coupled_gates
        None, or one gate computed from the other: "input_from_forget" (TFLite / NNAPI CIFG:
        i = 1 - f, the input-gate weights and peephole unused) or "forget_from_input" (ONNX
        input_forget=1 as ONNX Runtime computes it: f = 1 - i, the forget-gate weights,
        peephole and forget bias unused).
    use_peepholes
        Peephole connections as in TF LSTMCell(use_peepholes=True), CNTK use_peepholes and ONNX
        P: i and f see c_{t-1}, o sees c_t (after cell_clip).  Weights in LSTMParams.peephole.
    cell_clip
        TF LSTMCell / LSTMBlockCell ``cell_clip``: the new cell state is clipped to
        [-cell_clip, cell_clip] before it is used for the output and carried on.  None: no clip.
        (LSTMBlockCell's own default is 3.0; the reference default is no clip.)
    gate_clip
        ONNX LSTM ``clip`` as ONNX Runtime computes it: every gate pre-activation (after bias,
        forget bias and peephole terms) is clipped to [-gate_clip, gate_clip] before its
        activation.  Not the same as cell_clip.
    activation_clip
        ONNX LSTM ``clip`` as the ONNX specification words it, "applied to the input of
        activations": the gate pre-activations as with gate_clip, and the cell state where it
        enters h (h(clip(c_t))); the carried cell state is not clipped.  Exclusive with
        gate_clip.
    layer_norm
        TFLite / NNAPI layer-normalised LSTM (lstm_eval.cc): each gate's pre-activation without
        its bias (x W + h R [+ peephole]) is normalised over the H units of its row, scaled by
        LSTMParams.layer_norm, and then the bias (and forget bias) is added, before the clip and
        the activation.  The recurrent_bias is added with the bias.
    layer_norm_epsilon
        (z - mean) / sqrt(var + epsilon); TFLite's is 0 (and a row of equal values gives 0).
    proj_size
        Projection of the output (TF num_proj, PyTorch proj_size, CNTK cell_shape != shape):
        h_t = (o_t * act(c_t)) @ projection [+ projection_bias], of size P; the recurrent kernel
        is then (P, 4H).  None or 0: no projection.  The projection bias (TFLite / NNAPI) is
        LSTMParams.projection_bias.
    proj_clip
        TF LSTMCell ``proj_clip``: the projected output is clipped to [-proj_clip, proj_clip].
    length_semantics
        What ``lstm_forward(..., lengths=...)`` outputs at padded steps: "zeros" (TF dynamic_rnn,
        PyTorch packed sequences, ONNX sequence_lens) or "repeat" (Keras masking: the previous
        output of the scan is repeated; zeros before the first valid step).  In both the state is
        copied through padded steps, so the final state is that of each sequence's last valid step.
    """

    gate_order: str = "ifgo"
    forget_bias: float = 0.0
    recurrent_activation: str = "sigmoid"
    activation: str = "tanh"
    use_peepholes: bool = False
    cell_clip: float | None = None
    gate_clip: float | None = None
    proj_size: int | None = None
    proj_clip: float | None = None
    length_semantics: str = "zeros"
    cell_activation: str | None = None
    backward_activations: tuple | None = None
    coupled_gates: str | None = None
    activation_clip: float | None = None
    layer_norm: bool = False
    layer_norm_epsilon: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "gate_order", resolve_gate_order(self.gate_order))
        _finite_float(self, "forget_bias")
        for name in ("cell_clip", "gate_clip", "proj_clip", "activation_clip"):
            value = getattr(self, name)
            if value is not None:
                value = _finite_float(self, name)
                if value <= 0:
                    raise ValueError(f"{name}: expected a positive number or None, got {value!r}")
        if self.gate_clip is not None and self.activation_clip is not None:
            raise ValueError(f"activation_clip: expected None when gate_clip is set (ONNX clip is one or the "
                             f"other), got {self.activation_clip!r} with gate_clip {self.gate_clip!r}")
        for name in ("recurrent_activation", "activation"):
            object.__setattr__(self, name, _activation(name, getattr(self, name)))
        if self.cell_activation is not None:
            value = _activation("cell_activation", self.cell_activation)
            object.__setattr__(self, "cell_activation", None if value == self.activation else value)
        if self.backward_activations is not None:
            value = self.backward_activations
            if isinstance(value, str) or not isinstance(value, (tuple, list)) or len(value) != 3:
                raise ValueError(f"backward_activations: expected None or three names (f, g, h), got {value!r}")
            value = tuple(_activation(f"backward_activations[{k}]", v) for k, v in enumerate(value))
            same = (self.recurrent_activation, self.activation, self.cell_activation or self.activation)
            object.__setattr__(self, "backward_activations", None if value == same else value)
        if self.coupled_gates is not None and self.coupled_gates not in COUPLED_GATES:
            raise ValueError(f"coupled_gates: expected None or one of {COUPLED_GATES}, got {self.coupled_gates!r}")
        if not isinstance(self.layer_norm, (bool, np.bool_)):
            raise ValueError(f"layer_norm: expected a bool, got {self.layer_norm!r}")
        if _finite_float(self, "layer_norm_epsilon") < 0:
            raise ValueError(f"layer_norm_epsilon: expected a number >= 0, got {self.layer_norm_epsilon!r}")
        if not isinstance(self.use_peepholes, (bool, np.bool_)):
            raise ValueError(f"use_peepholes: expected a bool, got {self.use_peepholes!r}")
        proj = self.proj_size
        if proj is not None:
            if isinstance(proj, bool) or not isinstance(proj, (int, np.integer)) or proj < 0:
                raise ValueError(f"proj_size: expected None or a non-negative int, got {proj!r}")
            object.__setattr__(self, "proj_size", int(proj) or None)
        if self.proj_clip is not None and self.proj_size is None:
            raise ValueError(
                f"proj_clip: expected None when proj_size is None (no projection to clip), "
                f"got {self.proj_clip!r}"
            )
        if self.length_semantics not in LENGTH_SEMANTICS:
            raise ValueError(
                f"length_semantics: expected one of {LENGTH_SEMANTICS}, got {self.length_semantics!r}"
            )

    @property
    def h_activation(self) -> str:
        """The activation of the cell state before the output gate (ONNX h)."""
        return self.cell_activation or self.activation

    def backward_direction(self) -> "LSTMSpec":
        """The spec of the backward direction of a bidirectional layer (its own activations when
        ``backward_activations`` is set)."""
        if self.backward_activations is None:
            return self
        f, g, h = self.backward_activations
        return self.replace(recurrent_activation=f, activation=g, cell_activation=h, backward_activations=None)

    def replace(self, **changes) -> "LSTMSpec":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return LSTMSpec(**values)

    def to_dict(self) -> dict:
        """JSON-ready dict; ``LSTMSpec(**d)`` rebuilds the spec."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if out["backward_activations"] is not None:
            out["backward_activations"] = list(out["backward_activations"])
        return out


def _activation(name: str, value) -> str:
    return parse(value, argument=name).name


def _finite_float(spec, name):
    value = getattr(spec, name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a finite number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    object.__setattr__(spec, name, number)
    return number


@dataclass(frozen=True)
class LSTMParams:
    """Weights of one LSTM layer and direction, in the reference packing (row vectors).

    kernel            (D, 4H)  input weights, gate blocks in ``spec.gate_order``
    recurrent_kernel  (H, 4H), or (P, 4H) with projection
    bias              (4H,) or None (no bias; Keras use_bias=False)
    recurrent_bias    (4H,) or None: a second bias added to the first (PyTorch b_hh, ONNX Rb)
    peephole          (3, H) or None: peephole weights of the i, f, o gates, in that order
    projection        (H, P) or None: projection kernel, h_t = m_t @ projection
    layer_norm        (4H,) or None: layer-norm coefficients per gate (spec.layer_norm), gate
                      blocks in ``spec.gate_order``
    projection_bias   (P,) or None: added after the projection, before proj_clip (TFLite)

    Arrays are stored as given (any float dtype); the reference converts to float64 on use.
    """

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray | None = None
    recurrent_bias: np.ndarray | None = None
    peephole: np.ndarray | None = None
    projection: np.ndarray | None = None
    layer_norm: np.ndarray | None = None
    projection_bias: np.ndarray | None = None

    @property
    def input_size(self) -> int:
        return int(np.shape(self.kernel)[0])

    @property
    def hidden_size(self) -> int:
        return int(np.shape(self.kernel)[-1]) // 4

    @property
    def output_size(self) -> int:
        """H, or P with projection: the size of h_t and of y."""
        if self.projection is None:
            return self.hidden_size
        return int(np.shape(self.projection)[1])

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that are set, by field name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def astype(self, dtype) -> "LSTMParams":
        return LSTMParams(**{k: np.asarray(v).astype(dtype) for k, v in self.arrays().items()})


@dataclass(frozen=True)
class Dims:
    """Sizes implied by validated parameters: D inputs, H units, P outputs (P == H without projection)."""

    input_size: int
    hidden_size: int
    output_size: int


def check_params(params: LSTMParams, spec: LSTMSpec, *, argument: str = "params") -> Dims:
    """Validate ``params`` against ``spec`` and return the sizes; ValueError on any mismatch."""
    if not isinstance(params, LSTMParams):
        raise ValueError(f"{argument}: expected an LSTMParams, got {type(params).__name__}")
    if not isinstance(spec, LSTMSpec):
        raise ValueError(f"spec: expected an LSTMSpec, got {type(spec).__name__}")
    kernel = np.asarray(params.kernel)
    if kernel.ndim != 2 or kernel.shape[1] == 0 or kernel.shape[1] % 4:
        raise ValueError(
            f"{argument}.kernel: expected shape (D, 4H) with 4H a positive multiple of 4, "
            f"got {kernel.shape}"
        )
    d, hidden = kernel.shape[0], kernel.shape[1] // 4
    p = spec.proj_size or hidden
    _expect(params.recurrent_kernel, (p, 4 * hidden), f"{argument}.recurrent_kernel",
            "(P, 4H)" if spec.proj_size else "(H, 4H)")
    _expect(params.bias, (4 * hidden,), f"{argument}.bias", "(4H,)", optional=True)
    _expect(params.recurrent_bias, (4 * hidden,), f"{argument}.recurrent_bias", "(4H,)", optional=True)
    if spec.use_peepholes:
        if params.peephole is None:
            raise ValueError(f"{argument}.peephole: expected an array of shape (3, {hidden}) "
                             f"because spec.use_peepholes is True, got None")
        _expect(params.peephole, (3, hidden), f"{argument}.peephole", "(3, H) ordered i, f, o")
    elif params.peephole is not None:
        raise ValueError(f"{argument}.peephole: expected None because spec.use_peepholes is False, "
                         f"got an array of shape {np.shape(params.peephole)}")
    if spec.proj_size:
        if params.projection is None:
            raise ValueError(f"{argument}.projection: expected an array of shape ({hidden}, "
                             f"{spec.proj_size}) because spec.proj_size is {spec.proj_size}, got None")
        _expect(params.projection, (hidden, spec.proj_size), f"{argument}.projection", "(H, P)")
    elif params.projection is not None:
        raise ValueError(f"{argument}.projection: expected None because spec.proj_size is None, "
                         f"got an array of shape {np.shape(params.projection)}")
    if params.projection_bias is not None:
        if not spec.proj_size:
            raise ValueError(f"{argument}.projection_bias: expected None because spec.proj_size is None, "
                             f"got an array of shape {np.shape(params.projection_bias)}")
        _expect(params.projection_bias, (spec.proj_size,), f"{argument}.projection_bias", "(P,)")
    if spec.layer_norm:
        if params.layer_norm is None:
            raise ValueError(f"{argument}.layer_norm: expected an array of shape ({4 * hidden},) because "
                             f"spec.layer_norm is True, got None")
        _expect(params.layer_norm, (4 * hidden,), f"{argument}.layer_norm", "(4H,) in the spec's gate order")
    elif params.layer_norm is not None:
        raise ValueError(f"{argument}.layer_norm: expected None because spec.layer_norm is False, "
                         f"got an array of shape {np.shape(params.layer_norm)}")
    return Dims(d, hidden, p)


def _expect(array, shape, argument, meaning, optional=False):
    if array is None:
        if optional:
            return
        raise ValueError(f"{argument}: expected an array of shape {shape} {meaning}, got None")
    actual = np.shape(array)
    if actual != shape:
        raise ValueError(f"{argument}: expected shape {shape} {meaning}, got {actual}")
    if not np.issubdtype(np.asarray(array).dtype, np.number):
        raise ValueError(f"{argument}: expected a numeric array, got dtype {np.asarray(array).dtype}")
