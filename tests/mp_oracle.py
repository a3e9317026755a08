"""An independent extended-precision LSTM: the oracle the float64 reference is measured against.

Written from the equations of LSTMSpec's docstring with mpmath numbers (40 significant digits by
default), element by element: nothing of ``reference.lstm`` is used (only the name parser of
``reference.activations``, for the family and parameters an activation name denotes).  Slow by
design; meant for small layers and sequences of up to a few hundred steps.
"""

from __future__ import annotations

import mpmath as mp

from reference.activations import parse


def _activation(name):
    act = parse(name)
    a, b = act.alpha, act.beta
    family = act.family if act.name not in ("sigmoid", "tanh", "relu", "softsign", "softplus") else act.name
    table = {
        "sigmoid": lambda x: 1 / (1 + mp.exp(-x)),
        "tanh": mp.tanh,
        "relu": lambda x: x if x > 0 else mp.mpf(0),
        "softsign": lambda x: x / (1 + abs(x)),
        "softplus": lambda x: mp.log1p(mp.exp(x)),
        "affine": lambda x: a * x + b,
        "hard_sigmoid": lambda x: min(max(a * x + b, mp.mpf(0)), mp.mpf(1)),
        "leaky_relu": lambda x: x if x >= 0 else a * x,
        "thresholded_relu": lambda x: x if x >= a else mp.mpf(0),
        "scaled_tanh": lambda x: a * mp.tanh(b * x),
        "elu": lambda x: x if x >= 0 else a * mp.expm1(x),
    }
    fn = table[family]
    return lambda v: [fn(e) for e in v]


def _clip(v, limit):
    if limit is None:
        return list(v)
    lim = mp.mpf(limit)
    return [min(max(e, -lim), lim) for e in v]


def _mat(a):
    return [[mp.mpf(float(e)) for e in row] for row in a]


def _vec(a):
    return [mp.mpf(float(e)) for e in a]


def _blocks(vector, order, hidden):
    """{gate letter: H numbers} of a 4H vector in ``order``."""
    return {letter: vector[k * hidden:(k + 1) * hidden] for k, letter in enumerate(order)}


def _normalize(v, epsilon):
    n = len(v)
    mean = sum(v) / n
    var = sum((e - mean) ** 2 for e in v) / n
    sigma = mp.sqrt(var + mp.mpf(epsilon))
    return [mp.mpf(0) for _ in v] if sigma == 0 else [(e - mean) / sigma for e in v]


def run_layer(x, params, spec, h0, c0, lengths=None, reverse=False):
    """One layer and direction: x (B, T, D) nested lists or an array, float weights.  Returns
    (y as B lists of T vectors, [h_T per row], [c_T per row]) in mpf, y aligned to input steps,
    zeros at padded steps (spec.length_semantics "zeros") or the previous output ("repeat")."""
    order = spec.gate_order
    kernel, recurrent = _mat(params.kernel), _mat(params.recurrent_kernel)
    hidden = len(kernel[0]) // 4
    bias = [mp.mpf(0)] * (4 * hidden)
    for b in (params.bias, params.recurrent_bias):
        if b is not None:
            bias = [u + v for u, v in zip(bias, _vec(b))]
    bias_blocks = _blocks(bias, order, hidden)
    ln = _blocks(_vec(params.layer_norm), order, hidden) if spec.layer_norm else None
    peep = _mat(params.peephole) if spec.use_peepholes else None
    proj = _mat(params.projection) if spec.proj_size else None
    proj_bias = _vec(params.projection_bias) if params.projection_bias is not None else None
    f_act, g_act, h_act = (_activation(n) for n in (spec.recurrent_activation, spec.activation, spec.h_activation))
    z_clip = spec.gate_clip if spec.gate_clip is not None else spec.activation_clip
    fb = mp.mpf(spec.forget_bias)
    batch, steps = len(x), len(x[0])
    ys, finals_h, finals_c = [], [], []
    for b in range(batch):
        h = _vec(h0[b])
        c = _vec(c0[b])
        n_valid = steps if lengths is None else int(lengths[b])
        out = [None] * steps
        order_t = list(range(n_valid))[::-1] if reverse else list(range(n_valid))
        for t in order_t:
            xt = _vec(x[b][t])
            z = [sum(xt[i] * kernel[i][j] for i in range(len(xt))) + sum(h[i] * recurrent[i][j] for i in range(len(h)))
                 for j in range(4 * hidden)]
            zb = _blocks(z, order, hidden)
            if not spec.layer_norm:
                zb = {g: [u + v for u, v in zip(zb[g], bias_blocks[g])] for g in zb}
            if peep is not None:
                zb["i"] = [u + p * cc for u, p, cc in zip(zb["i"], peep[0], c)]
                zb["f"] = [u + p * cc for u, p, cc in zip(zb["f"], peep[1], c)]

            def finish(letter, values, act):
                if spec.layer_norm:
                    values = [n * g + bb for n, g, bb in zip(_normalize(values, spec.layer_norm_epsilon), ln[letter],
                                                             bias_blocks[letter])]
                if letter == "f":
                    values = [u + fb for u in values]
                return act(_clip(values, z_clip))

            coupled = spec.coupled_gates
            if coupled == "input_from_forget":
                f = finish("f", zb["f"], f_act)
                i = [1 - e for e in f]
            elif coupled == "forget_from_input":
                i = finish("i", zb["i"], f_act)
                f = [1 - e for e in i]
            else:
                i, f = finish("i", zb["i"], f_act), finish("f", zb["f"], f_act)
            g = finish("g", zb["g"], g_act)
            c = [fe * ce + ie * ge for fe, ce, ie, ge in zip(f, c, i, g)]
            c = _clip(c, spec.cell_clip)
            zo = zb["o"]
            if peep is not None:
                zo = [u + p * cc for u, p, cc in zip(zo, peep[2], c)]
            o = finish("o", zo, f_act)
            m = [oe * te for oe, te in zip(o, h_act(_clip(c, spec.activation_clip)))]
            if proj is not None:
                m = [sum(m[i] * proj[i][j] for i in range(hidden)) for j in range(len(proj[0]))]
                if proj_bias is not None:
                    m = [u + v for u, v in zip(m, proj_bias)]
                m = _clip(m, spec.proj_clip)
            h = m
            out[t] = list(h)
        zero = [mp.mpf(0)] * len(h)
        if spec.length_semantics == "repeat":
            # each padded step repeats the previous output of the scan (zeros before any)
            prev = zero
            scan = range(steps - 1, -1, -1) if reverse else range(steps)
            for t in scan:
                if out[t] is None:
                    out[t] = prev
                prev = out[t]
        out = [v if v is not None else zero for v in out]
        ys.append(out)
        finals_h.append(h)
        finals_c.append(c)
    return ys, finals_h, finals_c
