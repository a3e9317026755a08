"""The reference LSTM backward pass: backpropagation through time, in float64.

``lstm_backward`` returns the gradients of the scalar loss

    L = sum(y * dy) + sum(h_T * dh_T) + sum(c_T * dc_T),
    y, (h_T, c_T) = lstm_forward(x, params, spec, initial_state, lengths=..., reverse=...,
                                 time_order=...)

with respect to every input of ``lstm_forward`` that is an array: x, the initial state and each
LSTMParams field that is set.  It is the vector-Jacobian product of ``lstm_forward`` (as in
CS231n assignment 3's ``lstm_backward``), so framework gradients can be compared with it by
feeding the same ``dy`` to their autograd.

Derivative conventions (``reference.activations``): derivatives of activations are taken
through their outputs; at the kinks of the piecewise-linear functions (relu, hard sigmoids) and
of the clips (cell_clip, gate_clip, proj_clip) the derivative is that of the flat side, 0.  JAX
and PyTorch's relu / hardsigmoid do the same; ``torch.clamp`` and ``tf.clip_by_value`` pass the
gradient *at* the boundary, so cross-framework gradient checks should keep data off the kinks
(where every one of these conventions agrees).

Padded steps (t >= lengths[b]) receive a zero gradient for x, and their data (even NaN or Inf)
never reaches any gradient, as it never reaches any output.
"""

from __future__ import annotations

import numpy as np

from .gates import permute_gates
from .lstm import (
    COUPLED_BLOCK,
    Prepared,
    WORK_ORDER,
    _as_float64,
    check_sequence_inputs,
    scan,
)
from .spec import LSTMParams, LSTMSpec


def lstm_backward(x, params: LSTMParams, spec: LSTMSpec | None = None, initial_state=None, *,
                  dy, dh_T=None, dc_T=None, lengths=None, reverse: bool = False,
                  time_order: str = "aligned") -> dict[str, np.ndarray]:
    """Gradients of ``sum(y * dy) + sum(h_T * dh_T) + sum(c_T * dc_T)`` (see the module docstring).

    x, params, spec, initial_state, lengths, reverse and time_order are as in
    :func:`reference.lstm.lstm_forward`.  ``dy`` has the shape of y, (B, T, H or P), and is in
    the same time order as y (for ``reverse=True, time_order="processed"`` it is in processed
    order).  ``dh_T`` (B, H or P) and ``dc_T`` (B, H) default to zeros.

    Returns float64 arrays keyed "x", "h0", "c0", "kernel", "recurrent_kernel", and "bias",
    "recurrent_bias", "peephole", "projection", "layer_norm", "projection_bias" for exactly those
    fields of ``params`` that are not None, each in the reference packing (gate blocks in
    ``spec.gate_order``, peephole rows i, f, o).  The gradients of bias and recurrent_bias are
    equal (the two biases are summed); ``spec.forget_bias`` is a constant and has no gradient;
    with coupled gates the weights of the derived gate (and its peephole) get zero.
    """
    prep, x, h0, c0, lengths = check_sequence_inputs(x, params, spec, initial_state, lengths, time_order)
    batch, steps, _ = x.shape
    out_size, hidden = prep.output_size, prep.hidden_size
    reverse = bool(reverse)
    dy = _cotangent(dy, (batch, steps, out_size), "dy", "(B, T, H or P) like y")
    dh_T = _cotangent(dh_T, (batch, out_size), "dh_T", "(B, H or P) like h_T")
    dc_T = _cotangent(dc_T, (batch, hidden), "dc_T", "(B, H) like c_T")
    if reverse and time_order == "processed":
        dy = dy[:, ::-1]

    trace: dict = {}
    scan(x, prep, h0, c0, lengths=lengths, reverse=reverse, trace=trace)
    bptt = _bptt if prep.simple else _bptt_general
    grads = bptt(x, prep, trace, dy, dh_T, dc_T, lengths, reverse)

    order = prep.spec.gate_order
    out = {
        "x": grads["x"],
        "h0": grads["h0"],
        "c0": grads["c0"],
        "kernel": permute_gates(grads["kernel"], WORK_ORDER, order),
        "recurrent_kernel": permute_gates(grads["recurrent_kernel"], WORK_ORDER, order),
    }
    if params.bias is not None:
        out["bias"] = permute_gates(grads["bias"], WORK_ORDER, order)
    if params.recurrent_bias is not None:
        out["recurrent_bias"] = permute_gates(grads["bias"], WORK_ORDER, order)
    if params.peephole is not None:
        out["peephole"] = grads["peephole"]
    if params.projection is not None:
        out["projection"] = grads["projection"]
    if params.projection_bias is not None:
        out["projection_bias"] = grads["projection_bias"]
    if params.layer_norm is not None:
        out["layer_norm"] = permute_gates(grads["layer_norm"], WORK_ORDER, order)
    return out


def _cotangent(value, shape, argument, meaning):
    if value is None:
        return np.zeros(shape)
    arr = _as_float64(value, argument)
    if arr.shape != shape:
        raise ValueError(f"{argument}: expected shape {shape} {meaning}, got {arr.shape}")
    return arr


#: Size of the per-chunk buffers of the backward pass (see _bptt).
_CHUNK_BYTES = 1 << 20


def _bptt(x, prep: Prepared, trace: dict, dy, dh_T, dc_T, lengths, reverse):
    """Backpropagation through the steps recorded by ``scan`` (see its docstring for the trace);
    gradients in WORK_ORDER ("ifog").

    Everything that does not depend on the incoming gradient (derivatives of the activations,
    clip masks, the factors each gate's gradient is multiplied by) is computed for a chunk of
    steps at once; the loop itself is a few (B, H) operations and one matmul per step; the
    weight gradients are one matmul each over all steps at the end (dW = X^T dZ).
    """
    spec = prep.spec
    batch, steps, d = x.shape
    H, out_size = prep.hidden_size, prep.output_size
    d_ract, d_act, d_hact = prep.f_act.derivative, prep.g_act.derivative, prep.h_act.derivative
    hclip_mask = trace["hclip_mask"]
    peep, proj = prep.peephole, prep.projection
    repeat = spec.length_semantics == "repeat"
    gates, tc = trace["gates"], trace["tc"]  # processing order k
    c_prev, c_cell = trace["c_prev"], trace["c"]
    valid = trace["valid"]  # (T, B, 1) or None
    order = trace["order"]
    cell_mask = trace["cell_mask"]
    proj_mask = trace["proj_mask"]
    gate_mask = trace["gate_mask"]
    dz_all = np.empty((steps, batch, 4 * H))  # processing order
    dhp_all = np.empty((steps, batch, out_size)) if proj is not None else None
    rec_t = np.ascontiguousarray(prep.recurrent_kernel.T)
    proj_t = None if proj is None else np.ascontiguousarray(proj.T)
    # dz = dc_t * q for i, f, g and dz_o = dm * q_o, with q the derivative of each gate's
    # activation (times its clip mask) times the other factor of the product it enters; and
    # dc_t = dc + dm * (o * act'(c)) [+ dz_o * p_o], times the cell_clip mask.  q and o * act'(c)
    # are computed for a chunk of steps at once (all of them for small layers), in buffers of
    # about a megabyte that stay in cache and are reused from chunk to chunk.
    chunk = max(1, min(steps, _CHUNK_BYTES // (8 * 4 * H * max(batch, 1))))
    q_buf = np.empty((chunk, batch, 4 * H))
    o_dtc_buf = np.empty((chunk, batch, H))

    dh = dh_T.copy()
    dc = dc_T.copy()
    dprev = None  # gradient reaching the previous output under "repeat" semantics
    for k1 in range(steps, 0, -chunk):
        k0 = max(0, k1 - chunk)
        g = gates[k0:k1]
        q = q_buf[:k1 - k0]
        q[..., :3 * H] = d_ract(g[..., :3 * H])
        q[..., 3 * H:] = d_act(g[..., 3 * H:])
        if gate_mask is not None:
            q *= gate_mask[k0:k1]
        q[..., :H] *= g[..., 3 * H:]
        q[..., H:2 * H] *= c_prev[k0:k1]
        q[..., 2 * H:3 * H] *= tc[k0:k1]
        q[..., 3 * H:] *= g[..., :H]
        o_dtc = o_dtc_buf[:k1 - k0]
        np.multiply(g[..., 2 * H:3 * H], d_hact(tc[k0:k1]), out=o_dtc)
        if hclip_mask is not None:
            o_dtc *= hclip_mask[k0:k1]
        q_blocks = q.reshape(k1 - k0, batch, 4, H)
        for k in range(k1 - 1, k0 - 1, -1):
            j = k - k0
            t = order[k]
            dz = dz_all[k]
            if valid is None:
                dh += dy[:, t]
            else:
                ok = valid[k]
                bad = ~ok
                dout = dy[:, t] if dprev is None else dy[:, t] + dprev
                dh += np.where(ok, dout, 0.0)  # out = where(valid, h_new, prev_out or 0)
                if repeat:
                    dprev = np.where(ok, 0.0, dout)
            if proj is not None:  # h = clip(m @ projection, proj_clip)
                dhp = dhp_all[k]
                np.copyto(dhp, dh)
                if proj_mask is not None:
                    dhp *= proj_mask[k]
                dm = dhp @ proj_t
            else:
                dm = dh
            # m = o * act(c);  c = clip(f * c_prev + i * g, cell_clip)
            dc_t = dm * o_dtc[j]
            dc_t += dc
            np.multiply(dm, q_blocks[j, :, 2], out=dz[:, 2 * H:3 * H])
            if peep is not None:  # o = ract(z_o + p_o * c): c after cell_clip
                dc_t += dz[:, 2 * H:3 * H] * peep[2]
            if cell_mask is not None:
                dc_t *= cell_mask[k]
            dzk = dz.reshape(batch, 4, H)
            np.multiply(dc_t[:, None, :], q_blocks[j, :, :2], out=dzk[:, :2])
            np.multiply(dc_t, q_blocks[j, :, 3], out=dzk[:, 3])
            dc_new = dc_t * g[j, :, H:2 * H]
            if peep is not None:  # i, f = ract(z + p * c_prev)
                dc_new += dz[:, :H] * peep[0]
                dc_new += dz[:, H:2 * H] * peep[1]
            if valid is None:
                dh = dz @ rec_t
                dc = dc_new
            else:  # padded rows: no gradient into the cell; the state was copied through
                np.copyto(dz, 0.0, where=bad)
                dh = np.where(ok, dz @ rec_t, dh)
                dc = np.where(ok, dc_new, dc)

    return _weight_gradients(x, prep, trace, dz_all, dz_all, dhp_all, dh, dc)


def _weight_gradients(x, prep: Prepared, trace: dict, dz_all, dpost_all, dhp_all, dh, dc) -> dict:
    """The gradients of x, the initial state and every weight from the pre-activation gradients
    of every step (processing order): dz_all of the sums x W + h R (+ peepholes), dpost_all of
    the values the bias is added to (the same array without layer norm), dhp_all of the
    projected outputs (with a projection)."""
    batch, steps, d = x.shape
    H, out_size = prep.hidden_size, prep.output_size
    valid, order = trace["valid"], trace["order"]
    c_prev, c_cell = trace["c_prev"], trace["c"]
    peep, proj = prep.peephole, prep.projection
    # One matmul each over all steps (rows of padded steps are zero in dz; the data there is
    # masked too, so that NaN or Inf in padding cannot leak in as 0 * NaN).
    x_proc = x.transpose(1, 0, 2)[order]  # (T, B, D) processing order
    rows = steps * batch
    dz2 = dz_all.reshape(rows, 4 * H)
    if valid is not None:
        x_proc = np.where(valid, x_proc, 0.0)
    dx_proc = (dz2 @ prep.kernel.T).reshape(steps, batch, d)
    dx = np.empty((batch, steps, d))
    dx.transpose(1, 0, 2)[order] = dx_proc
    grads = {
        "x": dx,
        "h0": dh,
        "c0": dc,
        "kernel": x_proc.reshape(rows, d).T @ dz2,
        "recurrent_kernel": trace["h_prev"].reshape(rows, out_size).T @ dz2,
        "bias": dpost_all.reshape(rows, 4 * H).sum(axis=0),
        "peephole": None,
        "projection": None,
        "projection_bias": None,
        "layer_norm": None,
    }
    if peep is not None:
        c_new = c_cell if valid is None else np.where(valid, c_cell, 0.0)
        dpeep = np.empty((3, H))
        dpeep[0] = np.einsum("kbh,kbh->h", dz_all[..., :H], c_prev)
        dpeep[1] = np.einsum("kbh,kbh->h", dz_all[..., H:2 * H], c_prev)
        dpeep[2] = np.einsum("kbh,kbh->h", dz_all[..., 2 * H:3 * H], c_new)
        grads["peephole"] = dpeep
    if proj is not None:
        m = trace["m"]
        if valid is not None:
            m = np.where(valid, m, 0.0)
            dhp_all = np.where(valid, dhp_all, 0.0)
        grads["projection"] = m.reshape(rows, H).T @ dhp_all.reshape(rows, out_size)
        grads["projection_bias"] = dhp_all.reshape(rows, out_size).sum(axis=0)
    if prep.layer_norm is not None:
        ln_n = trace["ln_n"] if valid is None else np.where(valid, trace["ln_n"], 0.0)
        grads["layer_norm"] = np.einsum("kbj,kbj->j", dpost_all, ln_n)
    return grads


def _bptt_general(x, prep: Prepared, trace: dict, dy, dh_T, dc_T, lengths, reverse):
    """Backpropagation with layer norm and / or coupled gates, one step at a time (the fused
    chunks of :func:`_bptt` assume four independent gates whose bias is part of z)."""
    spec = prep.spec
    batch, steps, d = x.shape
    H, out_size = prep.hidden_size, prep.output_size
    f_act, g_act, h_act = prep.f_act, prep.g_act, prep.h_act
    peep, proj = prep.peephole, prep.projection
    repeat = spec.length_semantics == "repeat"
    derived = COUPLED_BLOCK.get(spec.coupled_gates)
    gates, tc = trace["gates"], trace["tc"]
    c_prev = trace["c_prev"]
    valid, order = trace["valid"], trace["order"]
    cell_mask, proj_mask = trace["cell_mask"], trace["proj_mask"]
    gate_mask, hclip_mask = trace["gate_mask"], trace["hclip_mask"]
    ln_n, ln_sigma = trace["ln_n"], trace["ln_sigma"]
    layer_norm = prep.layer_norm
    dz_all = np.zeros((steps, batch, 4 * H))
    dpost_all = np.zeros((steps, batch, 4 * H)) if layer_norm is not None else dz_all
    dhp_all = np.empty((steps, batch, out_size)) if proj is not None else None
    rec_t = np.ascontiguousarray(prep.recurrent_kernel.T)
    proj_t = None if proj is None else np.ascontiguousarray(proj.T)

    def back(k, j, da, act):
        """Gate j of step k: from the gradient of its activation to that of its z."""
        cols = slice(j * H, (j + 1) * H)
        post = da * act.derivative(gates[k][:, cols])
        if gate_mask is not None:
            post *= gate_mask[k][:, cols]
        if layer_norm is None:
            dz_all[k][:, cols] = post
            return
        dpost_all[k][:, cols] = post
        dn = post * layer_norm[cols]
        n = ln_n[k][:, cols]
        raw = dn - dn.mean(axis=1, keepdims=True)
        raw -= n * np.mean(dn * n, axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma = ln_sigma[k][:, j:j + 1]
            raw = np.where(sigma > 0, raw / np.where(sigma > 0, sigma, 1.0), 0.0)
        dz_all[k][:, cols] = raw

    dh = dh_T.copy()
    dc = dc_T.copy()
    dprev = None
    for k in range(steps - 1, -1, -1):
        t = order[k]
        a = gates[k]
        a_i, a_f, a_o, a_g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        if valid is None:
            dh += dy[:, t]
        else:
            ok = valid[k]
            bad = ~ok
            dout = dy[:, t] if dprev is None else dy[:, t] + dprev
            dh += np.where(ok, dout, 0.0)
            if repeat:
                dprev = np.where(ok, 0.0, dout)
        if proj is not None:
            dhp = dhp_all[k]
            np.copyto(dhp, dh)
            if proj_mask is not None:
                dhp *= proj_mask[k]
            dm = dhp @ proj_t
        else:
            dm = dh
        back(k, 2, dm * tc[k], f_act)
        d_tc = dm * a_o * h_act.derivative(tc[k])
        if hclip_mask is not None:
            d_tc *= hclip_mask[k]
        dc_t = dc + d_tc
        if peep is not None:
            dc_t += dz_all[k][:, 2 * H:3 * H] * peep[2]
        if cell_mask is not None:
            dc_t *= cell_mask[k]
        da_i, da_f, da_g = dc_t * a_g, dc_t * c_prev[k], dc_t * a_i
        if derived == 0:  # i = 1 - f
            da_f = da_f - da_i
        elif derived == 1:  # f = 1 - i
            da_i = da_i - da_f
        if derived != 0:
            back(k, 0, da_i, f_act)
        if derived != 1:
            back(k, 1, da_f, f_act)
        back(k, 3, da_g, g_act)
        dc_new = dc_t * a_f
        if peep is not None:
            dc_new += dz_all[k][:, :H] * peep[0]
            dc_new += dz_all[k][:, H:2 * H] * peep[1]
        if valid is None:
            dh = dz_all[k] @ rec_t
            dc = dc_new
        else:
            np.copyto(dz_all[k], 0.0, where=bad)
            if dpost_all is not dz_all:
                np.copyto(dpost_all[k], 0.0, where=bad)
            dh = np.where(ok, dz_all[k] @ rec_t, dh)
            dc = np.where(ok, dc_new, dc)
    return _weight_gradients(x, prep, trace, dz_all, dpost_all, dhp_all, dh, dc)
