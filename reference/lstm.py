"""The reference LSTM forward pass: one step, a sequence, both directions, stacked layers.

Row-vector convention, computed in float64 whatever the input dtype::

    z_t = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias [+ recurrent_bias]
    i, f, o = ract(z_i [+ p_i * c_{t-1}]), ract(z_f + forget_bias [+ p_f * c_{t-1}]), ...
    g = act(z_g)
    c_t = clip(f * c_{t-1} + i * g, cell_clip)
    o = ract(z_o [+ p_o * c_t])                    (gate_clip clips every z before its activation)
    h_t = clip((o * hact(c_t)) [@ projection + projection_bias], proj_clip)

with hact = act unless spec.cell_activation (ONNX h) says otherwise.  The published variants:
coupled gates (i = 1 - f, TFLite CIFG; f = 1 - i, ONNX input_forget in ONNX Runtime), ONNX clip
as the specification words it (activation_clip: also h(clip(c_t))), and TFLite's layer-normalised
LSTM, where each gate's z without its bias is normalised over the units of its row and scaled
before the bias is added (see LSTMSpec).

Internally the gate blocks are permuted once to the order "ifog" (so that the three gates that
share the recurrent activation are contiguous); results do not depend on it.

NaN and Inf in the data propagate as IEEE arithmetic says, row by row (batch rows never mix;
the other rows' results are bit for bit those of a run without the bad row):

- A NaN anywhere in x[b, t] makes every unit of row b's output and state NaN from step t on.
- An infinite input that meets only non-zero weights makes its pre-activations +-inf, which
  saturate the gates (sigmoid(+-inf) = 1 or 0, the hard sigmoids clip to 1 or 0, tanh(+-inf) =
  +-1): with the "tanh" activation, or with a gate_clip (which clips +-inf to +-gate_clip), the
  outputs stay finite.  With the "linear" or "relu" activation the candidate g itself is
  infinite and c and h become +-inf or NaN (0 * inf, inf - inf).
- An infinite input meeting a zero weight (0 * inf), or +inf and -inf meeting in one
  pre-activation, gives NaN in that unit at that step (NumPy warns "invalid value encountered");
  through the recurrent kernel it reaches every unit of the row at the next step.
- Data at padded steps (t >= lengths[b]) never reaches any output, whatever it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .activations import Activation, parse
from .gates import permutation, permute_gates
from .spec import LSTMParams, LSTMSpec, check_params

#: Internal working order: the three recurrent-activation gates first, contiguous.
WORK_ORDER = "ifog"
TIME_ORDERS = ("aligned", "processed")

State = tuple[np.ndarray, np.ndarray]


@dataclass
class Prepared:
    """Parameters in float64, permuted to WORK_ORDER, biases (and forget bias) summed once."""

    kernel: np.ndarray  # (D, 4H)
    recurrent_kernel: np.ndarray  # (P, 4H)
    bias: np.ndarray  # (4H,)
    peephole: np.ndarray | None  # (3, H): i, f, o
    projection: np.ndarray | None  # (H, P)
    input_size: int
    hidden_size: int
    output_size: int
    spec: LSTMSpec
    layer_norm: np.ndarray | None = None  # (4H,) WORK_ORDER: the bias is then added after it
    projection_bias: np.ndarray | None = None  # (P,)
    f_act: Activation = field(default=None, repr=False)  # ONNX f: i, f, o
    g_act: Activation = field(default=None, repr=False)  # ONNX g: the candidate
    h_act: Activation = field(default=None, repr=False)  # ONNX h: the cell state before o
    ract: Callable = field(default=None, repr=False)
    act: Callable = field(default=None, repr=False)
    hact: Callable = field(default=None, repr=False)

    def __post_init__(self):
        spec = self.spec
        self.f_act = self.f_act or parse(spec.recurrent_activation)
        self.g_act = self.g_act or parse(spec.activation)
        self.h_act = self.h_act or parse(spec.h_activation)
        self.ract, self.act, self.hact = self.f_act.apply, self.g_act.apply, self.h_act.apply

    @property
    def z_clip(self) -> float | None:
        """The clip of the gate pre-activations (gate_clip, or the activation_clip)."""
        return self.spec.gate_clip if self.spec.gate_clip is not None else self.spec.activation_clip

    @property
    def simple(self) -> bool:
        """No layer norm and no coupled gates: the fused paths of _cell and the backward pass."""
        return self.layer_norm is None and self.spec.coupled_gates is None


_COLUMNS: dict[tuple[str, int], np.ndarray] = {}
_PARAM_FIELDS = ("kernel", "recurrent_kernel", "bias", "recurrent_bias", "peephole", "projection", "layer_norm",
                 "projection_bias")


#: From this hidden size on, prepare re-packs gate blocks by block copies (see prepare.work).
_BLOCK_COPY_FROM = 32


def _work_columns(order: str, hidden: int) -> np.ndarray | None:
    """Column indices that re-pack a 4H axis from ``order`` to WORK_ORDER (None: already is).

    Same result as ``permute_gates(a, order, WORK_ORDER)`` with one fancy index instead of a split
    and a concatenation (this matters for small layers, where the call overhead dominates).
    """
    if order == WORK_ORDER:
        return None
    key = (order, hidden)
    columns = _COLUMNS.get(key)
    if columns is None:
        if len(_COLUMNS) > 256:
            _COLUMNS.clear()
        blocks = np.arange(4 * hidden).reshape(4, hidden)
        columns = np.concatenate([blocks[k] for k in permutation(order, WORK_ORDER)])
        _COLUMNS[key] = columns
    return columns


def prepare(params: LSTMParams, spec: LSTMSpec, *, argument: str = "params") -> Prepared:
    dims = check_params(params, spec, argument=argument)
    hidden = dims.hidden_size
    # Re-packing into WORK_ORDER: none, one cached fancy index (small layers) or permute_gates' four
    # block copies (wide layers, see work).
    repack = spec.gate_order != WORK_ORDER
    columns = _work_columns(spec.gate_order, hidden) if repack and hidden < _BLOCK_COPY_FROM else None

    for name in _PARAM_FIELDS:
        value = getattr(params, name)
        if value is not None and np.asarray(value).dtype.kind not in "fiu":
            raise ValueError(f"{argument}.{name}: expected a float array, got dtype "
                             f"{np.asarray(value).dtype}")

    def work(a):
        a = np.asarray(a, dtype=np.float64)
        # C order either way: BLAS may round differently for another memory layout.
        if not repack:
            return np.array(a, order="C")
        if columns is not None:
            return np.ascontiguousarray(a[..., columns])
        # Wide layers: block copies into a new C-ordered array (np.concatenate).  A fancy index on
        # the last axis gathers element by element and returns a non-C-ordered array that then
        # needs a second copy (0.15 s of a 0.55 s forward at D = H = 1024, B = 8, T = 128).
        return permute_gates(a, spec.gate_order, WORK_ORDER)

    bias = np.zeros(4 * hidden)
    if params.bias is not None:
        bias += work(params.bias)
    if params.recurrent_bias is not None:
        bias += work(params.recurrent_bias)
    bias[hidden:2 * hidden] += spec.forget_bias
    return Prepared(
        kernel=work(params.kernel),
        recurrent_kernel=work(params.recurrent_kernel),
        bias=bias,
        peephole=None if params.peephole is None else np.asarray(params.peephole, np.float64),
        projection=None if params.projection is None else np.asarray(params.projection, np.float64),
        input_size=dims.input_size,
        hidden_size=hidden,
        output_size=dims.output_size,
        spec=spec,
        layer_norm=work(params.layer_norm) if spec.layer_norm else None,
        projection_bias=(None if params.projection_bias is None
                         else np.asarray(params.projection_bias, np.float64)),
    )


class _Views:
    """The gate blocks of a (B, 4H) array in WORK_ORDER, as views."""

    __slots__ = ("all", "ifo", "if_", "i", "f", "o", "g")

    def __init__(self, z: np.ndarray, hidden: int):
        self.all = z
        self.ifo = z[:, :3 * hidden]
        self.if_ = z[:, :2 * hidden]
        self.i = z[:, :hidden]
        self.f = z[:, hidden:2 * hidden]
        self.o = z[:, 2 * hidden:3 * hidden]
        self.g = z[:, 3 * hidden:]


def _cell(prep: Prepared, z: _Views, c_prev, c, tc, m, h, tmp, gate_mask=None, cell_mask=None,
          proj_mask=None, hclip_mask=None, ln_n=None, ln_sigma=None) -> None:
    """The cell update, written into preallocated arrays.

    z: views of the pre-activations (B, 4H) in WORK_ORDER, without peephole terms (and without
    the bias under layer norm), overwritten with the gate activations.  c_prev (B, H) in; c, tc
    = hact(c), m = o * tc (all (B, H)) and h (B, P) out (m may be h itself when there is no
    projection); tmp (B, H) scratch.  The masks, when given, receive where the gate
    pre-activations, the cell state, the projected output and the cell state entering h were
    strictly inside their clip ranges (the backward pass's derivative of the clip); ln_n (B, 4H)
    and ln_sigma (B, 4) the normalised gate values and their sqrt(var + epsilon) under layer norm.
    """
    if not prep.simple:
        _cell_general(prep, z, c_prev, c, tmp, gate_mask, cell_mask, ln_n, ln_sigma)
        _cell_output(prep, z, c, tc, m, h, proj_mask, hclip_mask)
        return
    spec = prep.spec
    ract, act = prep.ract, prep.act
    clip = prep.z_clip
    peep = prep.peephole
    if peep is None:
        if clip is not None:
            if gate_mask is not None:
                np.less(np.abs(z.all), clip, out=gate_mask)
            np.clip(z.all, -clip, clip, out=z.all)
        ract(z.ifo, out=z.ifo)
    else:
        np.multiply(peep[0], c_prev, out=tmp)
        z.i += tmp
        np.multiply(peep[1], c_prev, out=tmp)
        z.f += tmp
        if clip is not None:
            if gate_mask is not None:
                np.less(np.abs(z.all), clip, out=gate_mask)  # the o column is redone below
            np.clip(z.if_, -clip, clip, out=z.if_)
            np.clip(z.g, -clip, clip, out=z.g)
        ract(z.if_, out=z.if_)
    act(z.g, out=z.g)
    np.multiply(z.f, c_prev, out=c)
    np.multiply(z.i, z.g, out=tmp)
    c += tmp
    if spec.cell_clip is not None:
        if cell_mask is not None:
            np.less(np.abs(c), spec.cell_clip, out=cell_mask)
        np.clip(c, -spec.cell_clip, spec.cell_clip, out=c)
    if peep is not None:
        o = z.o
        np.multiply(peep[2], c, out=tmp)
        o += tmp
        if clip is not None:
            if gate_mask is not None:
                np.less(np.abs(o), clip, out=gate_mask[:, 2 * prep.hidden_size:3 * prep.hidden_size])
            np.clip(o, -clip, clip, out=o)
        ract(o, out=o)
    _cell_output(prep, z, c, tc, m, h, proj_mask, hclip_mask)


def _cell_output(prep: Prepared, z: _Views, c, tc, m, h, proj_mask, hclip_mask) -> None:
    """tc = hact(c) (of the clipped c under activation_clip), m = o * tc, h = clip(m @ projection
    + projection_bias, proj_clip)."""
    spec = prep.spec
    hclip = spec.activation_clip
    if hclip is not None:
        if hclip_mask is not None:
            np.less(np.abs(c), hclip, out=hclip_mask)
        np.clip(c, -hclip, hclip, out=tc)
        prep.hact(tc, out=tc)
    else:
        prep.hact(c, out=tc)
    np.multiply(tc, z.o, out=m)
    if prep.projection is not None:
        np.matmul(m, prep.projection, out=h)
        if prep.projection_bias is not None:
            h += prep.projection_bias
        if spec.proj_clip is not None:
            if proj_mask is not None:
                np.less(np.abs(h), spec.proj_clip, out=proj_mask)
            np.clip(h, -spec.proj_clip, spec.proj_clip, out=h)


#: The gate each coupling computes from the other (WORK_ORDER block index of the derived gate).
COUPLED_BLOCK = {"input_from_forget": 0, "forget_from_input": 1}


def _cell_general(prep: Prepared, z: _Views, c_prev, c, tmp, gate_mask, cell_mask, ln_n, ln_sigma) -> None:
    """The gates and the cell state with layer norm and / or coupled gates, gate by gate in the
    order TFLite's lstm_eval.cc computes them: i, f (peepholes on c_{t-1}), g, the cell state,
    then o (peephole on c_t)."""
    spec = prep.spec
    hidden = prep.hidden_size
    peep = prep.peephole
    derived = COUPLED_BLOCK.get(spec.coupled_gates)
    blocks = (z.i, z.f, z.o, z.g)  # WORK_ORDER
    if peep is not None:
        for k in (0, 1):
            if k != derived:
                np.multiply(peep[k], c_prev, out=tmp)
                np.add(blocks[k], tmp, out=blocks[k])
    for k in (0, 1, 3):
        if k != derived:
            _finish_gate(prep, k, blocks[k], prep.act if k == 3 else prep.ract, gate_mask, ln_n, ln_sigma)
    if derived is not None:
        np.subtract(1.0, blocks[1 - derived], out=blocks[derived])
        cols = slice(derived * hidden, (derived + 1) * hidden)
        if gate_mask is not None:
            gate_mask[:, cols] = False
        if ln_n is not None:
            ln_n[:, cols] = 0.0
            ln_sigma[:, derived] = 1.0
    np.multiply(z.f, c_prev, out=c)
    np.multiply(z.i, z.g, out=tmp)
    c += tmp
    if spec.cell_clip is not None:
        if cell_mask is not None:
            np.less(np.abs(c), spec.cell_clip, out=cell_mask)
        np.clip(c, -spec.cell_clip, spec.cell_clip, out=c)
    if peep is not None:
        np.multiply(peep[2], c, out=tmp)
        z.o += tmp
    _finish_gate(prep, 2, z.o, prep.ract, gate_mask, ln_n, ln_sigma)


def _finish_gate(prep: Prepared, k: int, v: np.ndarray, act, gate_mask, ln_n, ln_sigma) -> None:
    """Block k (WORK_ORDER) of the pre-activations, in place: layer norm, its scale and the bias
    (under layer norm), the clip, the activation."""
    hidden = prep.hidden_size
    cols = slice(k * hidden, (k + 1) * hidden)
    if prep.layer_norm is not None:
        sigma = normalize_rows(v, prep.spec.layer_norm_epsilon)
        if ln_n is not None:
            ln_n[:, cols] = v
            ln_sigma[:, k] = sigma
        v *= prep.layer_norm[cols]
        v += prep.bias[cols]
    clip = prep.z_clip
    if clip is not None:
        if gate_mask is not None:
            np.less(np.abs(v), clip, out=gate_mask[:, cols])
        np.clip(v, -clip, clip, out=v)
    act(v, out=v)


def normalize_rows(v: np.ndarray, epsilon: float) -> np.ndarray:
    """Each row of ``v`` (B, H), in place: (v - mean) / sqrt(var + epsilon), two-pass; a row whose
    sqrt(var + epsilon) is 0 (all values equal, epsilon 0) becomes 0 (TFLite's
    MeanStddevNormalization).  Returns sqrt(var + epsilon) per row (B,)."""
    v -= v.mean(axis=1, keepdims=True)
    sigma = np.sqrt(np.mean(v * v, axis=1) + epsilon)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(v, sigma[:, None], out=v, where=sigma[:, None] > 0)
    v[sigma == 0] = 0.0
    return sigma


def cell(z: np.ndarray, c_prev: np.ndarray, prep: Prepared, trace: dict | None = None) -> State:
    """One LSTM cell update from the pre-activations ``z`` (B, 4H) in WORK_ORDER, without the
    peephole terms.  ``z`` is overwritten with the gate activations.  Returns new (h, c).

    When ``trace`` is a dict, this step's intermediates are appended to its lists: "gates"
    (activations, WORK_ORDER), "c_prev", "c", "tc" (hact(c)), "m" (o * tc), and "gate_mask",
    "cell_mask", "proj_mask", "hclip_mask", "ln_n", "ln_sigma" (None where that option is off).
    """
    batch, hidden = z.shape[0], prep.hidden_size
    spec = prep.spec
    c = np.empty((batch, hidden))
    tc = np.empty((batch, hidden))
    tmp = np.empty((batch, hidden))
    h = np.empty((batch, prep.output_size))
    m = h if prep.projection is None else np.empty((batch, hidden))
    record = trace is not None
    gate_mask = np.empty(z.shape, bool) if record and prep.z_clip is not None else None
    cell_mask = np.empty((batch, hidden), bool) if record and spec.cell_clip is not None else None
    proj_mask = (np.empty(h.shape, bool) if record and spec.proj_clip is not None else None)
    hclip_mask = np.empty((batch, hidden), bool) if record and spec.activation_clip is not None else None
    ln_n = np.empty(z.shape) if record and prep.layer_norm is not None else None
    ln_sigma = np.empty((batch, 4)) if ln_n is not None else None
    _cell(prep, _Views(z, hidden), c_prev, c, tc, m, h, tmp, gate_mask, cell_mask, proj_mask, hclip_mask,
          ln_n, ln_sigma)
    if record:
        for key, value in (("gates", z.copy()), ("c_prev", c_prev), ("c", c), ("tc", tc),
                           ("m", m), ("gate_mask", gate_mask), ("cell_mask", cell_mask),
                           ("proj_mask", proj_mask), ("hclip_mask", hclip_mask), ("ln_n", ln_n),
                           ("ln_sigma", ln_sigma)):
            trace.setdefault(key, []).append(value)
    return h, c


def lstm_step(x_t, state, params: LSTMParams, spec: LSTMSpec | None = None) -> State:
    """One time step: ``h, c = lstm_step(x_t, (h_prev, c_prev), params, spec)``.

    x_t (B, D); h_prev (B, H) or (B, P) with projection; c_prev (B, H).  Returns float64 arrays.
    """
    spec = LSTMSpec() if spec is None else spec
    prep = prepare(params, spec)
    x_t = _as_float64(x_t, "x_t")
    if x_t.ndim != 2 or x_t.shape[1] != prep.input_size:
        raise ValueError(f"x_t: expected shape (B, {prep.input_size}), got {x_t.shape}")
    h_prev, c_prev = _initial_state(state, x_t.shape[0], prep, argument="state", required=True)
    z = x_t @ prep.kernel
    z += h_prev @ prep.recurrent_kernel
    if prep.layer_norm is None:  # under layer norm the bias comes after the normalisation
        z += prep.bias
    return cell(z, c_prev, prep)


def check_sequence_inputs(x, params: LSTMParams, spec: LSTMSpec | None, initial_state, lengths,
                          time_order: str):
    """Validate the arguments of a sequence run (forward or backward); returns the prepared
    parameters and float64 ``x``, ``h0``, ``c0`` and int ``lengths`` (or None)."""
    spec = LSTMSpec() if spec is None else spec
    prep = prepare(params, spec)
    x = _as_float64(x, "x")
    if x.ndim != 3 or x.shape[2] != prep.input_size:
        raise ValueError(f"x: expected shape (B, T, {prep.input_size}) batch-major, got {x.shape}")
    if time_order not in TIME_ORDERS:
        raise ValueError(f"time_order: expected one of {TIME_ORDERS}, got {time_order!r}")
    batch, steps, _ = x.shape
    h0, c0 = _initial_state(initial_state, batch, prep)
    return prep, x, h0, c0, check_lengths(lengths, batch, steps)


def lstm_forward(x, params: LSTMParams, spec: LSTMSpec | None = None, initial_state=None, *,
                 lengths=None, reverse: bool = False, time_order: str = "aligned"):
    """Run a whole sequence: ``y, (h_T, c_T) = lstm_forward(x, params, spec, initial_state)``.

    x (B, T, D) batch-major.  initial_state (h0, c0) or None for zeros.  Returns float64
    y (B, T, H or P) and the final state.

    lengths
        (B,) ints in [0, T]: step t of sequence b is valid when t < lengths[b] (right padding).
        Padded steps follow ``spec.length_semantics``; the final state is that of each sequence's
        last valid step (its initial state when its length is 0).
    reverse
        Process the valid steps from last to first (ONNX direction="reverse", Keras
        go_backwards, the backward half of a bidirectional layer).  Each sequence is reversed
        within its own length.
    time_order
        Where a reverse run puts its outputs.  "aligned": y[:, t] is the output computed at input
        step t (ONNX reverse, PyTorch and TF bidirectional).  "processed": y[:, k] is the k-th
        output of the scan over the reversed padded sequence, i.e. aligned y flipped in time
        (Keras go_backwards with return_sequences=True; padded steps come first and, under
        "repeat" semantics, are zeros since nothing valid precedes them).
    """
    prep, x, h0, c0, lengths = check_sequence_inputs(x, params, spec, initial_state, lengths, time_order)
    y, final = scan(x, prep, h0, c0, lengths=lengths, reverse=bool(reverse))
    if reverse and time_order == "processed":
        y = np.ascontiguousarray(y[:, ::-1])
    return y, final


def scan(x: np.ndarray, prep: Prepared, h0: np.ndarray, c0: np.ndarray, *, lengths=None,
         reverse: bool = False, trace: dict | None = None):
    """The time loop on validated float64 inputs; returns (y aligned, (h_T, c_T)).

    When ``trace`` is a dict it receives, for the backward pass, arrays stacked over the T steps
    in *processing* order (k = 0 is the first step computed; for ``reverse`` that is input step
    T - 1): "gates" (T, B, 4H) activations in WORK_ORDER, "h_prev" (T, B, P) and "c_prev"
    (T, B, H) the states each step started from, "c" (T, B, H) the cell's new state (after
    cell_clip, before any length masking), "tc" (T, B, H) act(c), "m" (T, B, H) o * act(c) (only
    with a projection, else None), "gate_mask" (T, B, 4H), "cell_mask" (T, B, H), "proj_mask"
    (T, B, P) (None where that clip is off), "valid" (T, B, 1) (None without lengths), and
    "order", the input step of each k.
    """
    batch, steps, d = x.shape
    hidden, out_size = prep.hidden_size, prep.output_size
    spec = prep.spec
    # One matmul for the input projection of every step, in x's batch-major order (no transposed
    # copy of x; step t is the strided view xw[:, t]).
    xw = np.ascontiguousarray(x).reshape(batch * steps, d) @ prep.kernel
    if prep.layer_norm is None:  # under layer norm the bias comes after the normalisation
        xw += prep.bias
    xw = xw.reshape(batch, steps, 4 * hidden)
    y = np.empty((steps, batch, out_size))
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    record = trace is not None
    projection = prep.projection is not None
    repeat = spec.length_semantics == "repeat"
    # State before step k at slot k (a ring of two slots when nothing is recorded).
    slots = steps + 1 if record else 2
    hs = np.empty((slots, batch, out_size))
    cs = np.empty((slots, batch, hidden))
    hs[0] = h0
    cs[0] = c0
    tmp = np.empty((batch, hidden))
    valid = None
    if lengths is not None:
        valid = (np.asarray(order)[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)
        invalid = ~valid
        h_cell = np.empty((batch, out_size))
    if record:
        gates = np.empty((steps, batch, 4 * hidden))
        tcs = np.empty((steps, batch, hidden))
        c_cell = cs[1:] if lengths is None else np.empty((steps, batch, hidden))
        ms = np.empty((steps, batch, hidden)) if projection else None
        gate_masks = np.empty((steps, batch, 4 * hidden), bool) if prep.z_clip is not None else None
        cell_masks = np.empty((steps, batch, hidden), bool) if spec.cell_clip is not None else None
        proj_masks = np.empty((steps, batch, out_size), bool) if spec.proj_clip is not None else None
        hclip_masks = np.empty((steps, batch, hidden), bool) if spec.activation_clip is not None else None
        ln_ns = np.empty((steps, batch, 4 * hidden)) if prep.layer_norm is not None else None
        ln_sigmas = np.empty((steps, batch, 4)) if prep.layer_norm is not None else None
        trace.update(gates=gates, h_prev=hs[:-1], c_prev=cs[:-1], c=c_cell, tc=tcs, m=ms,
                     gate_mask=gate_masks, cell_mask=cell_masks, proj_mask=proj_masks, hclip_mask=hclip_masks,
                     ln_n=ln_ns, ln_sigma=ln_sigmas, valid=valid, order=np.asarray(order, dtype=np.int64))
    else:
        z_buf = np.empty((batch, 4 * hidden))
        z = _Views(z_buf, hidden)
        tc = np.empty((batch, hidden))
        m = np.empty((batch, hidden)) if projection else None
        gate_mask = cell_mask = proj_mask = hclip_mask = ln_n = ln_sigma = None
    if not record and lengths is None:
        # The plain forward: h is written straight into y; c alternates between two buffers.
        h, c = h0, c0
        rec = prep.recurrent_kernel
        z_all = z.all
        for k, t in enumerate(order):
            np.matmul(h, rec, out=z_all)
            z_all += xw[:, t]
            h_new, c_new = y[t], cs[(k + 1) & 1]
            _cell(prep, z, c, c_new, tc, h_new if m is None else m, h_new, tmp)
            h, c = h_new, c_new
        return np.ascontiguousarray(y.transpose(1, 0, 2)), (h.copy(), c.copy())
    prev_out = None
    for k, t in enumerate(order):
        prev, nxt = (k, k + 1) if record else (k & 1, (k + 1) & 1)
        h_prev, c_prev = hs[prev], cs[prev]
        if record:
            z = _Views(gates[k], hidden)
            tc = tcs[k]
            m = None if ms is None else ms[k]
            gate_mask = None if gate_masks is None else gate_masks[k]
            cell_mask = None if cell_masks is None else cell_masks[k]
            proj_mask = None if proj_masks is None else proj_masks[k]
            hclip_mask = None if hclip_masks is None else hclip_masks[k]
            ln_n = None if ln_ns is None else ln_ns[k]
            ln_sigma = None if ln_sigmas is None else ln_sigmas[k]
        np.matmul(h_prev, prep.recurrent_kernel, out=z.all)
        z.all += xw[:, t]
        if lengths is None:
            h = hs[nxt]
            _cell(prep, z, c_prev, cs[nxt], tc, h if m is None else m, h, tmp,
                  gate_mask, cell_mask, proj_mask, hclip_mask, ln_n, ln_sigma)
            y[t] = h
        else:
            c = c_cell[k] if record else cs[nxt]
            _cell(prep, z, c_prev, c, tc, h_cell if m is None else m, h_cell, tmp,
                  gate_mask, cell_mask, proj_mask, hclip_mask, ln_n, ln_sigma)
            bad = invalid[k]
            h = hs[nxt]
            np.copyto(h, h_cell)
            np.copyto(h, h_prev, where=bad)
            if c is not cs[nxt]:
                np.copyto(cs[nxt], c)
            np.copyto(cs[nxt], c_prev, where=bad)
            out = y[t]
            np.copyto(out, h)
            if repeat and prev_out is not None:
                np.copyto(out, prev_out, where=bad)
            else:
                np.copyto(out, 0.0, where=bad)
            prev_out = out
    last = steps if record else steps & 1
    final = (hs[last].copy(), cs[last].copy())
    return np.ascontiguousarray(y.transpose(1, 0, 2)), final


def lstm_bidirectional(x, params_fw: LSTMParams, params_bw: LSTMParams, spec: LSTMSpec | None = None,
                       initial_state=None, *, lengths=None):
    """A bidirectional layer: y (B, T, 2P) = [forward y, backward y aligned to input steps]
    (PyTorch bidirectional, Keras Bidirectional(merge_mode="concat"), ONNX bidirectional with
    its direction axis folded into features).

    initial_state: None or ((h0_fw, c0_fw), (h0_bw, c0_bw)).  Returns
    ``y, ((h_fw, c_fw), (h_bw, c_bw))``, forward first.  The backward direction computes with
    ``spec.backward_direction()`` (its own activations, ONNX's six).
    """
    states = _per_direction(initial_state, 2, "initial_state")
    spec = LSTMSpec() if spec is None else spec
    y_fw, final_fw = lstm_forward(x, params_fw, spec, states[0], lengths=lengths)
    y_bw, final_bw = lstm_forward(x, params_bw, spec.backward_direction(), states[1], lengths=lengths,
                                  reverse=True)
    return np.concatenate([y_fw, y_bw], axis=-1), (final_fw, final_bw)


def lstm_stack(x, layers, spec: LSTMSpec | None = None, initial_states=None, *, lengths=None):
    """Stacked layers, each unidirectional (an LSTMParams) or bidirectional (a (fw, bw) pair).

    Layer k + 1 reads layer k's y.  initial_states: None, or a sequence with one (h0, c0) per
    layer and direction in PyTorch's h_n order: index = layer * num_directions + direction
    (forward 0, backward 1).  Returns ``y, finals`` with y the last layer's output and ``finals``
    a list of (h_T, c_T) in that same order.
    """
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError(f"layers: expected a non-empty list of LSTMParams or (fw, bw) pairs, got {layers!r}")
    bidirectional = [not isinstance(layer, LSTMParams) for layer in layers]
    if any(bidirectional) and not all(bidirectional):
        raise ValueError("layers: expected all layers unidirectional (LSTMParams) or all "
                         "bidirectional ((fw, bw) pairs), got a mix")
    dirs = 2 if bidirectional[0] else 1
    states = _per_direction(initial_states, dirs * len(layers), "initial_states")
    finals = []
    y = x
    for k, layer in enumerate(layers):
        if dirs == 2:
            if len(layer) != 2:
                raise ValueError(f"layers[{k}]: expected a (forward, backward) pair, got {len(layer)} items")
            y, (fw, bw) = lstm_bidirectional(y, layer[0], layer[1], spec,
                                             (states[2 * k], states[2 * k + 1]), lengths=lengths)
            finals += [fw, bw]
        else:
            y, final = lstm_forward(y, layer, spec, states[k], lengths=lengths)
            finals.append(final)
    return y, finals


def _per_direction(states, count, argument):
    if states is None:
        return [None] * count
    states = list(states)
    if len(states) != count:
        raise ValueError(f"{argument}: expected {count} (h0, c0) pairs (layer-major, forward "
                         f"before backward), got {len(states)}")
    return states


def check_lengths(lengths, batch: int, steps: int):
    """Validate ``lengths`` (B,) of ints in [0, T]; None stays None."""
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
            or arr.dtype == np.bool_):
        raise ValueError(f"lengths: expected integers, got dtype {arr.dtype}")
    if arr.shape != (batch,):
        raise ValueError(f"lengths: expected shape ({batch},), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"lengths: expected integers, got {arr!r}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() > steps):
        raise ValueError(f"lengths: expected values in [0, {steps}], got min {arr.min()} max {arr.max()}")
    return arr


def _as_float64(a, argument):
    arr = np.asarray(a)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{argument}: expected a float array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _initial_state(state, batch, prep, *, argument="initial_state", required=False):
    if state is None:
        if required:
            raise ValueError(f"{argument}: expected (h, c), got None")
        return np.zeros((batch, prep.output_size)), np.zeros((batch, prep.hidden_size))
    try:
        h, c = state
    except (TypeError, ValueError):
        raise ValueError(f"{argument}: expected a pair (h, c), got {type(state).__name__}") from None
    h = _as_float64(h, f"{argument}[0] (h)")
    c = _as_float64(c, f"{argument}[1] (c)")
    if h.shape != (batch, prep.output_size):
        raise ValueError(f"{argument}[0] (h): expected shape ({batch}, {prep.output_size}), got {h.shape}")
    if c.shape != (batch, prep.hidden_size):
        raise ValueError(f"{argument}[1] (c): expected shape ({batch}, {prep.hidden_size}), got {c.shape}")
    return h, c
