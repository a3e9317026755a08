"""The native packing of every framework, one table entry each: which arrays a framework stores
for one LSTM layer and direction, under which names, in which gate order and orientation, with
how many biases and which run-time forget bias.

The math (gate permutations, bias folds, fused kernels, transposes, per-gate splits) lives in
``reference.layout``; an entry here only names and places the arrays.  The adapters load weights
with :meth:`Packing.to_native` and read gradients back with :meth:`Packing.gradients`; the
``convert`` tool reads and writes files with :meth:`Packing.from_native` / ``to_native``, so a
name or an order is written once, here.

Names per framework (one layer, one direction):

torch      ``weight_ih`` (4H, D), ``weight_hh`` (4H, P), ``bias_ih``, ``bias_hh`` (4H,),
           ``weight_hr`` (P, H) with proj_size; gate order ifgo; two biases
           (torch/nn/modules/rnn.py; a state_dict adds the suffix ``_l<k>`` and ``_reverse``).
paddle     ``weight_ih`` (4H, D), ``weight_hh`` (4H, P), ``bias_ih``, ``bias_hh`` (4H,) as torch, but
           the projection is ``weight_ho`` (H, P), applied as ``h @ weight_ho`` (torch's
           ``weight_hr`` is its transpose); gate order ifgo; two biases
           (paddle/nn/layer/rnn.py, ``LSTMCell.__init__`` and ``forward``).  The names are those of
           each cell (``nn.LSTM``'s sublayers ``{k}.cell``, ``{k}.cell_fw``, ``{k}.cell_bw``).
keras      ``kernel`` (D, 4H), ``recurrent_kernel`` (H, 4H), ``bias`` (4H,) (absent with
           use_bias=False): ``LSTMCell``'s variables; gate order ifgo (Keras 2 and 3); no run-time
           forget bias (``unit_forget_bias`` only initialises the bias).
tf1        ``kernel`` (D + P, 4H), the fused kernel of ``tf.compat.v1.nn.rnn_cell.LSTMCell`` applied
           to concat([x, h]); ``bias`` (4H,); peepholes ``w_i_diag``, ``w_f_diag``, ``w_o_diag``
           (H,); ``projection/kernel`` (H, P) with num_proj; gate order igfo (i, j, f, o); the cell
           adds ``forget_bias`` (default 1.0) at run time.
tf_block   ``w`` (D + H, 4H) on concat([x, h]), ``b`` (4H,), peepholes ``wci``, ``wcf``, ``wco``
           (H,): the inputs of ``tf.raw_ops.BlockLSTM`` / ``LSTMBlockCell``; gate order igfo
           (i, ci, f, o); run-time ``forget_bias`` attribute (default 1.0).
tf_block_v2  the same names for ``tf.raw_ops.BlockLSTMV2``: gate order ifgo, no forget bias.
cntk       ``W`` (D, 4H), ``H`` (P, 4H), ``b`` (4H,), peepholes ``Ci``, ``Cf``, ``Co`` (H,),
           projection ``P`` (H, P); gate order igfo (cntk/layers/blocks.py, _RecurrentBlock).
onnx       ``W`` (4H, D), ``R`` (4H, H), ``B`` (8H,) = [Wb, Rb], ``P`` (3H,) peepholes ordered
           i, o, f; gate order iofg (the LSTM operator; a model stacks directions on axis 0).
openvino   ``W`` (4H, D), ``R`` (4H, H), ``B`` (4H,): the inputs of OpenVINO's ``LSTMSequence`` /
           ``LSTMCell`` (one direction; a model stacks directions on axis 0), gate order figo ("fico"
           in the spec); B is *one* bias, "the sum of biases (weight and recurrence)".
litert     the per-gate operands of LiteRT's ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (tensorflow/lite/kernels/
           lstm_shared.h): ``input_to_{input,forget,cell,output}_weights`` (H, D),
           ``recurrent_to_*_weights`` (H, P), ``{input,forget,cell,output}_gate_bias`` (H,),
           peepholes ``cell_to_{input,forget,output}_weights`` (H,), ``projection_weights`` (P, H),
           ``projection_bias`` (P,), ``{input,forget,cell,output}_layer_norm_coefficients`` (H,).
haiku      ``linear/w`` (D + H, 4H) applied to concat([x, h]) and ``linear/b`` (4H,): the ``hk.Linear``
           inside ``hk.LSTM`` (parameters ``<lstm name>/linear``); gate order igfo
           (``i, g, f, o = jnp.split(gated, 4)``); the core adds 1 to the forget pre-activation at
           run time, always (``f = jax.nn.sigmoid(f + 1)``; haiku/_src/recurrent.py, ``LSTM.__call__``).
sonnet     ``w_i`` (D, 4H), ``w_h`` (P, 4H), ``b`` (4H,), ``projection`` (H, P): the variables of
           ``snt.LSTM`` (Sonnet 2); gate order ifgo (``_lstm_fn``); ``forget_bias`` (default 1.0)
           is added to ``b``'s forget block once, when the variables are created (``_initialize``):
           no run-time forget bias.
equinox    ``weight_ih`` (4H, D), ``weight_hh`` (4H, H), ``bias`` (4H,) (absent with use_bias=False):
           the fields of ``eqx.nn.LSTMCell``, column vectors (``weight_ih @ x``); gate order ifgo.
flax       ``ii/kernel``, ``if/kernel``, ``ig/kernel``, ``io/kernel`` (D, H), no bias;
           ``hi/kernel`` ... ``ho/kernel`` (H, H) and ``hi/bias`` ... ``ho/bias`` (H,): the
           parameter tree of ``flax.linen.LSTMCell`` / ``OptimizedLSTMCell`` flattened with "/".
flax_nnx   the same with ``if_`` for ``if`` (``flax.nnx.LSTMCell``).
mxnet      ``i2h_weight`` (4H, D), ``h2h_weight`` (4H, P), ``i2h_bias``, ``h2h_bias`` (4H,),
           ``h2r_weight`` (P, H) with projection_size: ``gluon.rnn.LSTM``'s ``l<k>_`` / ``r<k>_``
           parameters and ``gluon.rnn.LSTMCell``'s (python/mxnet/gluon/rnn/rnn_layer.py, rnn_cell.py);
           gate order ifgo; two biases.  The fused ``RNN`` operator takes all of a stack's arrays
           as one flat vector: :func:`mxnet_flat_params` / :func:`mxnet_unflat_params`.
chainer    ``upward/W`` (4H, D), ``upward/b`` (4H,), ``lateral/W`` (4H, H): ``chainer.links.LSTM``
           (its Linear links ``upward`` with a bias and ``lateral`` without); **unit-major**, gate
           order a, i, f, o (g, i, f, o): ``F.lstm`` reshapes its (B, 4H) input to (B, H, 4)
           (chainer/functions/rnn/lstm.py, ``_extract_gates``).

:func:`callable_packing` builds the entry of a user's own LSTM callable (``kernel``,
``recurrent_kernel``, ``bias`` in a claimed gate order and orientation), which ``check`` and
``detect`` use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from reference.gates import GATES, ONNX_PEEPHOLE_ORDER, REFERENCE_PEEPHOLE_ORDER, resolve_gate_order
from reference.layout import (arrange_biases, join_fused_kernel, join_gates, join_peepholes, orient,
                              permute_params, resolve_packing, split_fused_kernel, split_gates,
                              split_peepholes)
from reference.spec import LSTMParams

#: What a packing can store beyond the kernel, the recurrent kernel and one bias.
EXTRAS = ("recurrent_bias", "peephole", "projection", "layer_norm", "projection_bias")


@dataclass(frozen=True)
class Packing:
    """One framework's storage of one layer and direction (see the module docstring).

    ``names(p)`` turns parameters already in ``gate_order`` with the biases arranged
    (``reference.layout.arrange_biases``) into the named arrays; ``params(arrays)`` is its
    inverse and refuses a missing or unknown name.
    """

    name: str
    gate_order: str
    names: Callable[[LSTMParams], dict[str, np.ndarray]] = field(repr=False)
    params: Callable[[dict[str, np.ndarray]], LSTMParams] = field(repr=False)
    two_biases: bool = False
    bias_optional: bool = False
    #: The forget bias the framework adds by itself at run time (its default; 0.0: none).
    runtime_forget_bias: float = 0.0
    holds: frozenset[str] = frozenset()
    #: How the 4H axes hold the gates: "gate-major" (four blocks of H) or "unit-major" (H groups of
    #: four, Chainer), see ``reference.layout``.  ``names`` and ``params`` see it already applied.
    gate_packing: str = "gate-major"

    def __post_init__(self):
        object.__setattr__(self, "gate_order", resolve_gate_order(self.gate_order))
        object.__setattr__(self, "gate_packing", resolve_packing(self.gate_packing, argument="gate_packing"))
        unknown = set(self.holds) - set(EXTRAS)
        if unknown:
            raise ValueError(f"holds: expected names from {EXTRAS}, got {sorted(unknown)}")

    def native_params(self, params: LSTMParams, gate_order: str, *, forget_bias: float = 0.0) -> LSTMParams:
        """``params`` (packed in ``gate_order``) in this framework's gate order with its biases
        arranged; ``forget_bias`` is folded into the bias (see ``arrange_biases``)."""
        self.refuse(params)
        p = permute_params(params, gate_order, self.gate_order)
        p = arrange_biases(p, self.gate_order, forget_bias=forget_bias, two_biases=self.two_biases,
                           bias_optional=self.bias_optional)
        return permute_params(p, self.gate_order, self.gate_order, to_packing=self.gate_packing)

    def to_native(self, params: LSTMParams, gate_order: str, *, forget_bias: float = 0.0) -> dict[str, np.ndarray]:
        """The framework's named arrays for reference ``params`` packed in ``gate_order``.

        ``forget_bias`` is the run-time forget bias the weights are meant for minus the one the
        framework will add itself: it is folded into the bias."""
        return self.names(self.native_params(params, gate_order, forget_bias=forget_bias))

    def from_native(self, arrays: dict, gate_order: str) -> LSTMParams:
        """Inverse of :meth:`to_native` without a fold: reference params packed in ``gate_order``."""
        return permute_params(self.params(dict(arrays)), self.gate_order, gate_order, from_packing=self.gate_packing)

    def gradients(self, grads: dict, params: LSTMParams, gate_order: str) -> dict[str, np.ndarray]:
        """Gradients with respect to the native arrays (named as :meth:`to_native` names them)
        -> gradients with respect to the reference ``params`` (packed in ``gate_order``), keyed
        like ``reference.lstm_backward``, for the fields of ``params`` that are set.  A bias the
        adapter summed into the native one, or folded a forget bias into, has that one's
        gradient (a sum passes its gradient to every term; a constant does not change it)."""
        g = self.from_native(grads, gate_order)
        out = {"kernel": g.kernel, "recurrent_kernel": g.recurrent_kernel}
        if params.bias is not None:
            out["bias"] = g.bias
        if params.recurrent_bias is not None:
            out["recurrent_bias"] = (g.recurrent_bias if self.two_biases else g.bias).copy()
        if params.peephole is not None:
            out["peephole"] = g.peephole
        if params.projection is not None:
            out["projection"] = g.projection
        return {k: np.asarray(v, np.float64) for k, v in out.items()}

    def refuse(self, params: LSTMParams, *, argument: str = "params") -> None:
        """ValueError when ``params`` has what this framework cannot store (nothing is dropped)."""
        if params.peephole is not None and "peephole" not in self.holds:
            raise ValueError(f"{argument}: the weights have peepholes, which {self.name}'s LSTM cannot "
                             f"hold (frameworks with peepholes: {holding('peephole')})")
        if params.projection is not None and "projection" not in self.holds:
            raise ValueError(f"{argument}: the weights have an output projection, which {self.name}'s LSTM "
                             f"cannot hold (frameworks with a projection: {holding('projection')})")
        for extra, what in (("layer_norm", "layer-norm coefficients"), ("projection_bias", "a projection bias")):
            if getattr(params, extra) is not None and extra not in self.holds:
                raise ValueError(f"{argument}: the weights have {what}, which {self.name}'s LSTM cannot hold "
                                 f"(frameworks with {what}: {holding(extra) or 'none'})")


# --------------------------------------------------------------------------------------------
# Reading named arrays


class _Arrays:
    """Named arrays being read into LSTMParams: every name must be known, the required present."""

    def __init__(self, arrays: dict, framework: str):
        self.left = dict(arrays)
        self.framework = framework

    def take(self, name: str, *, required: bool = True):
        if name in self.left:
            return np.asarray(self.left.pop(name))
        if required:
            raise ValueError(f"weights: expected an array named {name!r} for {self.framework}, not found "
                             f"(have {sorted(self.left)})")
        return None

    def peepholes(self, names: dict[str, str]):
        rows = {g: self.take(names[g], required=False) for g in REFERENCE_PEEPHOLE_ORDER}
        present = [g for g, r in rows.items() if r is not None]
        if not present:
            return None
        if len(present) != len(rows):
            missing = [names[g] for g in REFERENCE_PEEPHOLE_ORDER if rows[g] is None]
            raise ValueError(f"weights: expected all three peephole vectors or none, missing {missing}")
        return join_peepholes(rows)

    def done(self, params: LSTMParams) -> LSTMParams:
        if self.left:
            raise ValueError(f"weights: unexpected names for {self.framework}: {sorted(self.left)} "
                             f"(nothing is dropped silently)")
        return params


def _peephole_names(peephole, names: dict[str, str]) -> dict[str, np.ndarray]:
    return {names[g]: row for g, row in split_peepholes(peephole).items()}


# --------------------------------------------------------------------------------------------
# The frameworks

def _transposed(framework: str, kernel: str, recurrent: str, bias: str, recurrent_bias: str, projection: str, *,
                projection_layout: str = "P,H"):
    """(names, params) of a framework that stores (4H, D) and (4H, P) weights, two biases and a
    (P, H) projection (PyTorch, MXNet; ``projection_layout="H,P"``: Paddle's (H, P) ``weight_ho``),
    under its own five names."""
    if projection_layout not in ("P,H", "H,P"):
        raise ValueError(f"projection_layout: expected 'P,H' or 'H,P', got {projection_layout!r}")
    flip = projection_layout == "P,H"

    def names(p: LSTMParams) -> dict:
        out = {kernel: orient(p.kernel, "4H,D", rows="D"), recurrent: orient(p.recurrent_kernel, "4H,H", rows="H"),
               bias: np.array(p.bias), recurrent_bias: np.array(p.recurrent_bias)}
        if p.projection is not None:
            out[projection] = np.ascontiguousarray(np.asarray(p.projection).T if flip else p.projection)
        return out

    def params(arrays: dict) -> LSTMParams:
        a = _Arrays(arrays, framework)
        proj = a.take(projection, required=False)
        return a.done(LSTMParams(kernel=orient(a.take(kernel), "4H,D", rows="D"),
                                 recurrent_kernel=orient(a.take(recurrent), "4H,H", rows="H"),
                                 bias=a.take(bias, required=False), recurrent_bias=a.take(recurrent_bias, required=False),
                                 projection=None if proj is None else proj.T.copy() if flip else proj))

    return names, params


_torch_names, _torch_params = _transposed("torch", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


def _keras_names(p: LSTMParams) -> dict:
    out = {"kernel": np.asarray(p.kernel), "recurrent_kernel": np.asarray(p.recurrent_kernel)}
    if p.bias is not None:
        out["bias"] = np.asarray(p.bias)
    return out


def _keras_params(arrays: dict) -> LSTMParams:
    a = _Arrays(arrays, "keras")
    return a.done(LSTMParams(kernel=a.take("kernel"), recurrent_kernel=a.take("recurrent_kernel"),
                             bias=a.take("bias", required=False)))


TF1_PEEPHOLES = {"i": "w_i_diag", "f": "w_f_diag", "o": "w_o_diag"}


def _tf1_names(p: LSTMParams) -> dict:
    out = {"kernel": join_fused_kernel(p.kernel, p.recurrent_kernel), "bias": np.asarray(p.bias)}
    if p.peephole is not None:
        out.update(_peephole_names(p.peephole, TF1_PEEPHOLES))
    if p.projection is not None:
        out["projection/kernel"] = np.asarray(p.projection)
    return out


def _fused_params(a: _Arrays, kernel: str, bias: str, peepholes: dict | None, projection: str | None):
    fused = a.take(kernel)
    proj = a.take(projection, required=False) if projection else None
    if fused.ndim != 2 or fused.shape[1] % 4 or (proj is not None and proj.ndim != 2):
        raise ValueError(f"weights: {kernel}: expected shape (D + P, 4H), got {fused.shape}")
    out_size = fused.shape[1] // 4 if proj is None else proj.shape[1]
    k, r = split_fused_kernel(fused, fused.shape[0] - out_size)
    return a.done(LSTMParams(kernel=k, recurrent_kernel=r, bias=a.take(bias, required=False),
                             peephole=a.peepholes(peepholes) if peepholes else None, projection=proj))


def _tf1_params(arrays: dict) -> LSTMParams:
    return _fused_params(_Arrays(arrays, "tf1"), "kernel", "bias", TF1_PEEPHOLES, "projection/kernel")


TF_BLOCK_PEEPHOLES = {"i": "wci", "f": "wcf", "o": "wco"}


def _tf_block_names(p: LSTMParams) -> dict:
    out = {"w": join_fused_kernel(p.kernel, p.recurrent_kernel), "b": np.asarray(p.bias)}
    if p.peephole is not None:
        out.update(_peephole_names(p.peephole, TF_BLOCK_PEEPHOLES))
    return out


def _tf_block_params(arrays: dict) -> LSTMParams:
    return _fused_params(_Arrays(arrays, "tf_block"), "w", "b", TF_BLOCK_PEEPHOLES, None)


def _haiku_names(p: LSTMParams) -> dict:
    return {"linear/w": join_fused_kernel(p.kernel, p.recurrent_kernel), "linear/b": np.asarray(p.bias)}


def _haiku_params(arrays: dict) -> LSTMParams:
    return _fused_params(_Arrays(arrays, "haiku"), "linear/w", "linear/b", None, None)


def _sonnet_names(p: LSTMParams) -> dict:
    out = {"w_i": np.asarray(p.kernel), "w_h": np.asarray(p.recurrent_kernel), "b": np.asarray(p.bias)}
    if p.projection is not None:
        out["projection"] = np.asarray(p.projection)
    return out


def _sonnet_params(arrays: dict) -> LSTMParams:
    a = _Arrays(arrays, "sonnet")
    return a.done(LSTMParams(kernel=a.take("w_i"), recurrent_kernel=a.take("w_h"), bias=a.take("b", required=False),
                             projection=a.take("projection", required=False)))


def _equinox_names(p: LSTMParams) -> dict:
    out = {"weight_ih": orient(p.kernel, "4H,D", rows="D"), "weight_hh": orient(p.recurrent_kernel, "4H,H", rows="H")}
    if p.bias is not None:
        out["bias"] = np.asarray(p.bias)
    return out


def _equinox_params(arrays: dict) -> LSTMParams:
    a = _Arrays(arrays, "equinox")
    return a.done(LSTMParams(kernel=orient(a.take("weight_ih"), "4H,D", rows="D"),
                             recurrent_kernel=orient(a.take("weight_hh"), "4H,H", rows="H"),
                             bias=a.take("bias", required=False)))


CNTK_PEEPHOLES = {"i": "Ci", "f": "Cf", "o": "Co"}


def _cntk_names(p: LSTMParams) -> dict:
    out = {"W": np.asarray(p.kernel), "H": np.asarray(p.recurrent_kernel), "b": np.asarray(p.bias)}
    if p.peephole is not None:
        out.update(_peephole_names(p.peephole, CNTK_PEEPHOLES))
    if p.projection is not None:
        out["P"] = np.asarray(p.projection)
    return out


def _cntk_params(arrays: dict) -> LSTMParams:
    a = _Arrays(arrays, "cntk")
    return a.done(LSTMParams(kernel=a.take("W"), recurrent_kernel=a.take("H"), bias=a.take("b", required=False),
                             peephole=a.peepholes(CNTK_PEEPHOLES), projection=a.take("P", required=False)))


def _onnx_names(p: LSTMParams) -> dict:
    out = {"W": orient(p.kernel, "4H,D", rows="D"), "R": orient(p.recurrent_kernel, "4H,H", rows="H"),
           "B": np.concatenate([np.asarray(p.bias), np.asarray(p.recurrent_bias)])}
    if p.peephole is not None:  # ONNX orders P as i, o, f
        rows = split_peepholes(p.peephole)
        out["P"] = np.concatenate([rows[g] for g in ONNX_PEEPHOLE_ORDER])
    return out


def _onnx_params(arrays: dict) -> LSTMParams:
    a = _Arrays(arrays, "onnx")
    b, p = a.take("B", required=False), a.take("P", required=False)
    wb, rb = (None, None) if b is None else (x.copy() for x in np.split(b, 2))
    peephole = None if p is None else join_peepholes(dict(zip(ONNX_PEEPHOLE_ORDER, np.split(p, 3))))
    return a.done(LSTMParams(kernel=orient(a.take("W"), "4H,D", rows="D"),
                             recurrent_kernel=orient(a.take("R"), "4H,H", rows="H"),
                             bias=wb, recurrent_bias=rb, peephole=peephole))


def _openvino_names(p: LSTMParams) -> dict:
    return {"W": orient(p.kernel, "4H,D", rows="D"), "R": orient(p.recurrent_kernel, "4H,H", rows="H"),
            "B": np.asarray(p.bias)}


def _openvino_params(arrays: dict) -> LSTMParams:
    a = _Arrays(arrays, "openvino")
    return a.done(LSTMParams(kernel=orient(a.take("W"), "4H,D", rows="D"),
                             recurrent_kernel=orient(a.take("R"), "4H,H", rows="H"),
                             bias=a.take("B", required=False)))


#: LiteRT's gate names by reference gate letter, and its peephole names.
LITERT_GATES = {"i": "input", "f": "forget", "g": "cell", "o": "output"}
LITERT_PEEPHOLES = {g: f"cell_to_{LITERT_GATES[g]}_weights" for g in REFERENCE_PEEPHOLE_ORDER}


def _litert_names(p: LSTMParams) -> dict:
    ins, recs = split_gates(p.kernel, "ifgo"), split_gates(p.recurrent_kernel, "ifgo")
    out = {}
    for g, name in LITERT_GATES.items():
        out[f"input_to_{name}_weights"] = np.ascontiguousarray(ins[g].T)
        out[f"recurrent_to_{name}_weights"] = np.ascontiguousarray(recs[g].T)
    if p.bias is not None:
        out.update({f"{name}_gate_bias": b for g, name in LITERT_GATES.items()
                    for b in [split_gates(p.bias, "ifgo")[g]]})
    if p.peephole is not None:
        out.update(_peephole_names(p.peephole, LITERT_PEEPHOLES))
    if p.projection is not None:
        out["projection_weights"] = np.ascontiguousarray(np.asarray(p.projection).T)
    if p.projection_bias is not None:
        out["projection_bias"] = np.asarray(p.projection_bias)
    if p.layer_norm is not None:
        out.update({f"{name}_layer_norm_coefficients": v for g, name in LITERT_GATES.items()
                    for v in [split_gates(p.layer_norm, "ifgo")[g]]})
    return out


def _litert_params(arrays: dict) -> LSTMParams:
    a = _Arrays(arrays, "litert")
    kernel = join_gates({g: a.take(f"input_to_{n}_weights").T for g, n in LITERT_GATES.items()}, "ifgo")
    recurrent = join_gates({g: a.take(f"recurrent_to_{n}_weights").T for g, n in LITERT_GATES.items()}, "ifgo")
    biases = {g: a.take(f"{n}_gate_bias", required=False) for g, n in LITERT_GATES.items()}
    bias = join_gates(biases, "ifgo") if all(b is not None for b in biases.values()) else None
    projection = a.take("projection_weights", required=False)
    norms = {g: a.take(f"{n}_layer_norm_coefficients", required=False) for g, n in LITERT_GATES.items()}
    present = [g for g, v in norms.items() if v is not None]
    if present and len(present) != 4:
        raise ValueError(f"weights: expected the layer-norm coefficients of all four gates or none, got "
                         f"{[f'{LITERT_GATES[g]}_layer_norm_coefficients' for g in present]}")
    return a.done(LSTMParams(kernel=kernel, recurrent_kernel=recurrent, bias=bias,
                             peephole=a.peepholes(LITERT_PEEPHOLES),
                             projection=None if projection is None else projection.T.copy(),
                             projection_bias=a.take("projection_bias", required=False),
                             layer_norm=join_gates(norms, "ifgo") if present else None))


def flax_layer_names(forget_input: str) -> tuple[dict[str, str], dict[str, str]]:
    """Flax's per-gate Dense layers by gate letter: (input side, recurrent side)."""
    inputs = {g: "i" + (forget_input if g == "f" else g) for g in GATES}
    return inputs, {g: "h" + g for g in GATES}


def _flax(framework: str, forget_input: str):
    inputs, recurrents = flax_layer_names(forget_input)

    def names(p: LSTMParams) -> dict:
        ins, recs, biases = (split_gates(a, "ifgo") for a in (p.kernel, p.recurrent_kernel, p.bias))
        out = {f"{inputs[g]}/kernel": ins[g] for g in GATES}
        for g in GATES:
            out[f"{recurrents[g]}/kernel"] = recs[g]
            out[f"{recurrents[g]}/bias"] = biases[g]
        return out

    def params(arrays: dict) -> LSTMParams:
        a = _Arrays(arrays, framework)
        for g in GATES:
            if f"{inputs[g]}/bias" in a.left:
                raise ValueError(f"weights: {inputs[g]}/bias: the input-side Dense layers of a Flax LSTMCell "
                                 f"have no bias; only {', '.join(recurrents.values())} do")
        ins = {g: a.take(f"{inputs[g]}/kernel") for g in GATES}
        recs = {g: a.take(f"{recurrents[g]}/kernel") for g in GATES}
        biases = {g: a.take(f"{recurrents[g]}/bias", required=False) for g in GATES}
        present = [g for g in GATES if biases[g] is not None]
        if present and len(present) != 4:
            raise ValueError(f"weights: expected the biases of all of {', '.join(recurrents.values())} or "
                             f"none, got {present}")
        return a.done(LSTMParams(kernel=join_gates(ins, "ifgo"), recurrent_kernel=join_gates(recs, "ifgo"),
                                 bias=join_gates(biases, "ifgo") if present else None))

    return names, params


def _chainer_names(p: LSTMParams) -> dict:
    return {"upward/W": orient(p.kernel, "4H,D", rows="D"), "upward/b": np.array(p.bias),
            "lateral/W": orient(p.recurrent_kernel, "4H,H", rows="H")}


def _chainer_params(arrays: dict) -> LSTMParams:
    a = _Arrays(arrays, "chainer")
    return a.done(LSTMParams(kernel=orient(a.take("upward/W"), "4H,D", rows="D"),
                             recurrent_kernel=orient(a.take("lateral/W"), "4H,H", rows="H"),
                             bias=a.take("upward/b", required=False)))


#: chainer.links.NStepLSTM: one (H, D) / (H, H) matrix and one bias per gate and side, numbered
#: w0..w3 (input side: i, f, a, o) and w4..w7 (recurrent side), b0..b7 alike
#: (chainer/functions/rnn/n_step_lstm.py, n_step_lstm's docstring and _lstm).
CHAINER_NSTEP_GATES = "ifgo"


def _chainer_nstep_names(p: LSTMParams) -> dict:
    out = {}
    for side, (weights, bias) in enumerate(((p.kernel, p.bias), (p.recurrent_kernel, p.recurrent_bias))):
        w_blocks, b_blocks = split_gates(weights, CHAINER_NSTEP_GATES), split_gates(bias, CHAINER_NSTEP_GATES)
        for k, g in enumerate(CHAINER_NSTEP_GATES):
            out[f"w{4 * side + k}"] = np.ascontiguousarray(w_blocks[g].T)
            out[f"b{4 * side + k}"] = b_blocks[g]
    return out


def _chainer_nstep_params(arrays: dict) -> LSTMParams:
    a = _Arrays(arrays, "chainer_nstep")
    sides = []
    for side in range(2):
        w = {g: a.take(f"w{4 * side + k}").T for k, g in enumerate(CHAINER_NSTEP_GATES)}
        b = {g: a.take(f"b{4 * side + k}", required=False) for k, g in enumerate(CHAINER_NSTEP_GATES)}
        present = [g for g in b if b[g] is not None]
        if present and len(present) != 4:
            raise ValueError(f"weights: expected all of b{4 * side}..b{4 * side + 3} or none, got "
                             f"{[f'b{4 * side + CHAINER_NSTEP_GATES.index(g)}' for g in present]}")
        sides.append((join_gates(w, CHAINER_NSTEP_GATES), join_gates(b, CHAINER_NSTEP_GATES) if present else None))
    return a.done(LSTMParams(kernel=sides[0][0], recurrent_kernel=sides[1][0], bias=sides[0][1],
                             recurrent_bias=sides[1][1]))


PACKINGS: dict[str, Packing] = {
    p.name: p for p in (
        Packing("torch", "torch", _torch_names, _torch_params, two_biases=True,
                holds=frozenset({"recurrent_bias", "projection"})),
        Packing("keras", "keras", _keras_names, _keras_params, bias_optional=True),
        Packing("tf1", "tf1", _tf1_names, _tf1_params, runtime_forget_bias=1.0,
                holds=frozenset({"peephole", "projection"})),
        Packing("tf_block", "tf_block", _tf_block_names, _tf_block_params, runtime_forget_bias=1.0,
                holds=frozenset({"peephole"})),
        Packing("tf_block_v2", "tf_block_v2", _tf_block_names, _tf_block_params,
                holds=frozenset({"peephole"})),
        Packing("cntk", "cntk", _cntk_names, _cntk_params, holds=frozenset({"peephole", "projection"})),
        Packing("onnx", "onnx", _onnx_names, _onnx_params, two_biases=True,
                holds=frozenset({"recurrent_bias", "peephole"})),
        Packing("openvino", "openvino", _openvino_names, _openvino_params),
        Packing("litert", "ifgo", _litert_names, _litert_params, bias_optional=True,
                holds=frozenset({"peephole", "projection", "layer_norm", "projection_bias"})),
        Packing("paddle", "paddle", *_transposed("paddle", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ho",
                                                 projection_layout="H,P"),
                two_biases=True, holds=frozenset({"recurrent_bias", "projection"})),
        # hk.LSTM: f = sigmoid(f + 1) in __call__, always (its docstring says "after initialization").
        Packing("haiku", "haiku", _haiku_names, _haiku_params, runtime_forget_bias=1.0),
        # snt.LSTM (Sonnet 2): forget_bias is added to b_f once, in _initialize; none at run time.
        Packing("sonnet", "sonnet", _sonnet_names, _sonnet_params, holds=frozenset({"projection"})),
        Packing("equinox", "equinox", _equinox_names, _equinox_params, bias_optional=True),
        Packing("flax", "ifgo", *_flax("flax", "f")),
        Packing("flax_nnx", "ifgo", *_flax("flax_nnx", "f_")),
        Packing("mxnet", "mxnet", *_transposed("mxnet", "i2h_weight", "h2h_weight", "i2h_bias", "h2h_bias",
                                               "h2r_weight"),
                two_biases=True, holds=frozenset({"recurrent_bias", "projection"})),
        Packing("chainer", "chainer", _chainer_names, _chainer_params, gate_packing="unit-major"),
        Packing("chainer_nstep", CHAINER_NSTEP_GATES, _chainer_nstep_names, _chainer_nstep_params,
                two_biases=True, holds=frozenset({"recurrent_bias"})),
    )
}


def holding(extra: str) -> str:
    """The frameworks of the table that can store ``extra`` ("peephole", ...), for messages."""
    return ", ".join(name for name, p in PACKINGS.items() if extra in p.holds)


def callable_packing(gate_order: str, kernel_layout: str = "D,4H", recurrent_layout: str = "H,4H", *,
                     forget_bias: float = 0.0, packing: str = "gate-major") -> Packing:
    """The packing of a user's LSTM callable (the native-function contract of ``check`` and
    ``detect``): ``kernel`` (D, 4H) or (4H, D), ``recurrent_kernel`` (H, 4H) or (4H, H), one
    ``bias`` (4H,), gates in ``gate_order`` along the 4H axes, packed ``packing`` (gate-major
    blocks or unit-major groups); ``forget_bias`` is what it adds at run time."""

    def names(p: LSTMParams) -> dict:
        return {"kernel": orient(p.kernel, kernel_layout, rows="D"),
                "recurrent_kernel": orient(p.recurrent_kernel, recurrent_layout, rows="H"),
                "bias": np.ascontiguousarray(p.bias)}

    def params(arrays: dict) -> LSTMParams:
        a = _Arrays(arrays, "the callable")
        return a.done(LSTMParams(kernel=orient(a.take("kernel"), kernel_layout, rows="D"),
                                 recurrent_kernel=orient(a.take("recurrent_kernel"), recurrent_layout, rows="H"),
                                 bias=a.take("bias", required=False)))

    packing = resolve_packing(packing)
    what = "" if packing == "gate-major" else f" {packing}"
    return Packing(f"callable ({gate_order}{what}, {kernel_layout}, {recurrent_layout})", gate_order, names, params,
                   runtime_forget_bias=float(forget_bias), gate_packing=packing)


# --------------------------------------------------------------------------------------------
# MXNet's fused RNN operator: one flat parameter vector for a whole stack

def _mxnet_flat_order(num_layers: int, num_directions: int, projection: bool):
    """(layer, direction, native name) in the order of the fused RNN operator's parameter vector:
    every weight, layer by layer, direction by direction (i2h, h2h, and h2r with a projection),
    then every bias in the same order (i2h, h2h): gluon.rnn.LSTM's ``_forward_kernel``
    (python/mxnet/gluon/rnn/rnn_layer.py) concatenates exactly these, each flattened row-major."""
    groups = (("i2h_weight", "h2h_weight") + (("h2r_weight",) if projection else ()), ("i2h_bias", "h2h_bias"))
    return [(k, d, name) for names in groups for k in range(num_layers) for d in range(num_directions)
            for name in names]


def mxnet_flat_params(layers: list[list[dict]]) -> np.ndarray:
    """The fused RNN operator's parameter vector from ``layers[k][d]``, the "mxnet" named arrays
    (``PACKINGS["mxnet"].to_native``) of every layer and direction."""
    projection = "h2r_weight" in layers[0][0]
    order = _mxnet_flat_order(len(layers), len(layers[0]), projection)
    return np.concatenate([np.asarray(layers[k][d][name]).ravel() for k, d, name in order])


def mxnet_unflat_params(flat, *, input_size: int, hidden_size: int, num_layers: int, num_directions: int,
                        projection_size: int | None = None) -> list[list[dict]]:
    """Inverse of :func:`mxnet_flat_params`: ``layers[k][d]`` "mxnet" named arrays.  ValueError
    when ``flat`` does not have the operator's size for these shapes."""
    out_size = projection_size or hidden_size
    flat = np.asarray(flat)

    def shape(k, name):
        return {"i2h_weight": (4 * hidden_size, input_size if k == 0 else out_size * num_directions),
                "h2h_weight": (4 * hidden_size, out_size), "h2r_weight": (out_size, hidden_size)}.get(
                    name, (4 * hidden_size,))

    order = _mxnet_flat_order(num_layers, num_directions, projection_size is not None)
    sizes = [int(np.prod(shape(k, name))) for k, _, name in order]
    if flat.ndim != 1 or flat.size != sum(sizes):
        raise ValueError(f"flat: expected a vector of {sum(sizes)} elements for {num_layers} layer(s), "
                         f"{num_directions} direction(s), input size {input_size}, hidden size {hidden_size}, "
                         f"projection size {projection_size}, got shape {flat.shape}")
    layers = [[{} for _ in range(num_directions)] for _ in range(num_layers)]
    start = 0
    for (k, d, name), size in zip(order, sizes):
        layers[k][d][name] = flat[start:start + size].reshape(shape(k, name)).copy()
        start += size
    return layers
