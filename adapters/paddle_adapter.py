"""PaddlePaddle: ``paddle.nn.LSTM`` (whole sequences, ``sequence_length``, ``direction="bidirect"``,
stacks, ``proj_size``), ``paddle.nn.LSTMCell`` (one step at a time) and ``paddle.grad``.

Convention (paddle/nn/layer/rnn.py, paddle 3.3.1): ``LSTMCell.forward`` computes
``gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh``, splits it in four as
i, f, g, o (``chunked_gates[0]``, ``[1]``, ``[2]``, ``[3]``), ``c = f * c + i * tanh(g)``,
``h = o * tanh(c)`` and, with ``proj_size``, ``h = h @ weight_ho``.  So: gate order ifgo, weights
stored transposed like torch's (``weight_ih`` (4H, D), ``weight_hh`` (4H, P)), two biases, no
run-time forget bias; the projection ``weight_ho`` is (H, P), *not* transposed (torch's
``weight_hr`` is (P, H)).  Weights are converted with the "paddle" entry of ``adapters.packings``.

``nn.LSTM`` is a list of ``RNN`` / ``BiRNN`` layers around ``LSTMCell`` s (``RNNBase.__init__``).
Without ``proj_size`` its ``forward`` runs the fused C++ ``rnn`` kernel (``_cudnn_impl``, which
also serves the CPU) on the cells' parameters; with ``proj_size`` (five parameters per cell, so
``could_use_cudnn`` is False) it runs the Python loop ``_rnn_dynamic_graph`` over the cells.
Both paths are tested (the projection cases take the second).  h_n / c_n are indexed
layer * num_directions + direction.

What the adapter does on top of Paddle, and nothing else:

* weights are loaded into each cell by the cell's own names (``layer[k].cell`` / ``cell_fw`` /
  ``cell_bw``): the flat ``weight_ih_l{k}`` attributes of ``nn.LSTM`` are bound by position to
  four parameters per cell and point at the wrong tensors with ``proj_size`` (five per cell;
  Paddle issue #70245, docs/frameworks/paddle.md);
* a run-time forget bias is *folded* into ``bias_ih``; a case without ``recurrent_bias`` loads
  zeros into ``bias_hh``;
* ``reverse`` (a reverse-only layer) is run as the *backward half of a bidirectional*
  ``nn.LSTM`` whose forward half has zero weights (Paddle's own reverse scan, with each sequence
  reversed within its length, is what is tested; the adapter never flips time steps);
* ``proj_size >= hidden_size`` is refused by ``LSTMCell.__init__`` ("proj_size must be smaller
  than hidden_size"), as in torch; such a case runs with ``proj_size + 1`` units, the extra ones
  inert (``adapters.padding.pad_params``: zero weights, biases and cell state, so c and the unit's
  o * tanh(c) stay exactly 0, and zero rows in ``weight_ho``);
* everything runs on the CPU (``paddle.set_device("cpu")``), in eval mode for forward runs.

Not expressible (reported unsupported with the reasons in ``Capabilities.why_not``): peepholes,
cell_clip, gate_clip, proj_clip, other activations, float16 and bfloat16 (Paddle's CPU build has
no float16 / bfloat16 ``matmul`` kernel, and ``nn.LSTM`` no such ``coalesce_tensor`` kernel).
"""

from __future__ import annotations

import numpy as np

from .base import Adapter, Capabilities, Case, Output, Unsupported
from .packings import PACKINGS
from .padding import pad_params, unpad_gradients

PACKING = PACKINGS["paddle"]
_NP = {"float32": np.float32, "float64": np.float64}


class PaddleLSTMAdapter(Adapter):
    """paddle.nn.LSTM (batch-major, ``time_major=False``); paddle.nn.LSTMCell for ``run_steps``."""

    name = "paddle"
    framework = "paddlepaddle"
    api = "paddle.nn.LSTM(sequence_length=..., direction='bidirect', proj_size=...), paddle.nn.LSTMCell, paddle.grad"
    native_gate_order = "paddle"
    bias_convention = "two biases bias_ih + bias_hh (zeros in bias_hh without recurrent_bias); forget bias folded into bias_ih"
    weight_orientation = "weight_ih (4H, D), weight_hh (4H, P), weight_ho (H, P)"
    capabilities = Capabilities(
        dtypes=("float32", "float64"),
        recurrent_activations=("sigmoid",),
        activations=("tanh",),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "projection", "lengths",
                            "empty_sequences", "reverse", "bidirectional", "layers", "step", "gradients"}),
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
        gradient_dtypes=("float32", "float64"),
        why_not={"peepholes": "paddle.nn.LSTM has no peephole connections",
                 "cell_clip": "paddle.nn.LSTM has no cell clip", "gate_clip": "paddle.nn.LSTM has no gate clip",
                 "proj_clip": "paddle.nn.LSTM's projection (proj_size) has no clip",
                 **{d: f"Paddle's CPU build has no {d} kernels for matmul (LSTMCell) or coalesce_tensor "
                       f"(nn.LSTM): RuntimeError NotFound" for d in ("float16", "bfloat16")},
                 **{a: "LSTMCell's gates are F.sigmoid" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
                 **{a: "LSTMCell's activation is paddle.tanh" for a in ("relu", "linear")},
                 "length_semantics repeat": "nn.LSTM outputs zeros at padded steps"},
    )

    def __init__(self):
        import paddle

        paddle.set_device("cpu")
        self._paddle = paddle
        self._modules: dict[tuple, object] = {}
        self._cells: dict[tuple, object] = {}

    # ------------------------------------------------------------------ conversions

    def _tensor(self, array, dtype: str, *, grad: bool = False):
        t = self._paddle.to_tensor(np.ascontiguousarray(array, dtype=_NP[dtype]))
        t.stop_gradient = not grad
        return t

    @staticmethod
    def _numpy(tensor) -> np.ndarray:
        return np.asarray(tensor.numpy(), dtype=np.float64)

    def _build(self, factory, dtype: str):
        """A layer created with ``dtype`` as Paddle's default dtype (its parameters' dtype)."""
        paddle = self._paddle
        previous = paddle.get_default_dtype()
        paddle.set_default_dtype(dtype)
        try:
            return factory()
        finally:
            paddle.set_default_dtype(previous)

    # ------------------------------------------------------------------ modules

    def _module(self, input_size, hidden_size, proj_size, layers, bidirectional, dtype):
        """One nn.LSTM per shape signature, reused: new weights are set for each case."""
        key = (input_size, hidden_size, proj_size, layers, bidirectional, dtype)
        module = self._modules.get(key)
        if module is None:
            direction = "bidirect" if bidirectional else "forward"
            module = self._modules[key] = self._build(lambda: self._paddle.nn.LSTM(
                input_size, hidden_size, num_layers=layers, direction=direction, time_major=False,
                proj_size=proj_size), dtype)
        return module

    @staticmethod
    def _cells_of(module, k: int, bidirectional: bool) -> list:
        layer = module[k]
        return [layer.cell_fw, layer.cell_bw] if bidirectional else [layer.cell]

    def _load(self, cell, weights: dict, dtype: str) -> None:
        for name, value in weights.items():
            getattr(cell, name).set_value(self._tensor(value, dtype))

    def _prepare(self, case: Case):
        """(module, h0, c0, reverse_only, hidden) for ``case``, weights loaded; h0 and c0 are
        stacked per layer and direction, zeros when the case has none (what nn.LSTM fills in
        itself), c0 widened to ``hidden`` units."""
        spec, dtype, p0 = case.spec, case.dtype, case.params
        hidden = max(p0.hidden_size, spec.proj_size + 1) if spec.proj_size else p0.hidden_size
        layers = [[pad_params(p, hidden) if hidden != p0.hidden_size else p for p in dirs] for dirs in case.layers]
        native = [[PACKING.to_native(p, spec.gate_order, forget_bias=spec.forget_bias) for p in dirs]
                  for dirs in layers]
        reverse_only = case.direction == "reverse"
        if reverse_only:
            if len(native) != 1:
                raise Unsupported(f"{self.name}: a stack of reverse-only layers (Paddle has no reverse-only "
                                  f"nn.LSTM; a single one is run as the backward half of a bidirect layer)")
            native = [[{k: np.zeros_like(v) for k, v in native[0][0].items()}, native[0][0]]]
        bidirectional = case.direction != "forward"
        module = self._module(p0.input_size, hidden, spec.proj_size or 0, len(native), bidirectional, dtype)
        for k, dirs in enumerate(native):
            for cell, weights in zip(self._cells_of(module, k, bidirectional), dirs):
                self._load(cell, weights, dtype)
        out_size = p0.output_size
        states = case.initial_state or [(np.zeros((case.batch, out_size)), np.zeros((case.batch, p0.hidden_size)))
                                        ] * (len(native) * (2 if bidirectional else 1))
        hs = [np.asarray(h) for h, _ in states]
        cs = [np.pad(np.asarray(c), ((0, 0), (0, hidden - p0.hidden_size))) for _, c in states]
        if reverse_only:
            hs, cs = [np.zeros_like(hs[0]), hs[0]], [np.zeros_like(cs[0]), cs[0]]
        return module, np.stack(hs), np.stack(cs), reverse_only, hidden

    def _forward(self, case: Case, module, x, h0, c0):
        lengths = None
        if case.lengths is not None:
            lengths = self._paddle.to_tensor(np.asarray(case.lengths, dtype=np.int64))
        y, (h_n, c_n) = module(x, (h0, c0), lengths)
        return y, h_n, c_n[..., :case.params.hidden_size]

    # ------------------------------------------------------------------ the contract

    def run(self, case: Case) -> Output:
        module, h0, c0, reverse_only, _ = self._prepare(case)
        module.eval()
        dtype = case.dtype
        with self._paddle.no_grad():
            y, h_n, c_n = self._forward(case, module, self._tensor(case.x, dtype), self._tensor(h0, dtype),
                                        self._tensor(c0, dtype))
        y, h_n, c_n = self._numpy(y), self._numpy(h_n), self._numpy(c_n)
        if reverse_only:
            return Output(y[..., case.params.output_size:], [(h_n[1], c_n[1])])
        return Output(y, [(h_n[k], c_n[k]) for k in range(h_n.shape[0])])

    def run_steps(self, case: Case) -> Output:
        """paddle.nn.LSTMCell called once per step, (h, c) fed back into each call.  The cell is
        one forward layer without lengths: other cases are Unsupported here (rather than falling
        back to nn.LSTM).  A case without a state passes none (the cell's own zero state)."""
        if case.lengths is not None or case.direction != "forward" or len(case.layers) != 1:
            raise Unsupported(f"{self.name}: paddle.nn.LSTMCell is one forward layer without lengths")
        p, spec, dtype = case.params, case.spec, case.dtype
        if spec.proj_size and spec.proj_size >= p.hidden_size:
            raise Unsupported(f"{self.name}: LSTMCell refuses proj_size >= hidden_size")
        key = (p.input_size, p.hidden_size, spec.proj_size or 0, dtype)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = self._build(lambda: self._paddle.nn.LSTMCell(
                p.input_size, p.hidden_size, proj_size=spec.proj_size or 0), dtype)
        self._load(cell, PACKING.to_native(p, spec.gate_order, forget_bias=spec.forget_bias), dtype)
        state = None
        if case.initial_state is not None:
            h0, c0 = case.initial_state[0]
            state = (self._tensor(h0, dtype), self._tensor(c0, dtype))
        outputs = []
        with self._paddle.no_grad():
            for t in range(case.steps):
                y, state = cell(self._tensor(case.x[:, t], dtype), state)
                outputs.append(self._numpy(y))
        return Output(np.stack(outputs, axis=1), [(self._numpy(state[0]), self._numpy(state[1]))])

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        """paddle.grad of sum(y*dy) + sum(h_n*dh) + sum(c_n*dc) with respect to x, h0, c0 and the
        cell's parameters (nn.LSTM in train mode; dropout is 0), converted back with the
        packing's ``gradients``.  Without recurrent_bias the reference bias gradient is that of
        bias_ih; a folded forget bias is a constant and changes no gradient."""
        if case.direction != "forward" or len(case.layers) != 1:
            raise Unsupported(f"{self.name}: gradients are implemented for one forward layer")
        paddle, dtype, p = self._paddle, case.dtype, case.params
        module, h0, c0, _, hidden = self._prepare(case)
        module.train()
        x, h0, c0 = (self._tensor(a, dtype, grad=True) for a in (case.x, h0, c0))
        cell = module[0].cell
        names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] + (["weight_ho"] if case.spec.proj_size else [])
        weights = [getattr(cell, n) for n in names]
        y, h_n, c_n = self._forward(case, module, x, h0, c0)
        loss = ((y * self._tensor(dy, dtype)).sum() + (h_n[0] * self._tensor(dh, dtype)).sum()
                + (c_n[0] * self._tensor(dc, dtype)).sum())
        grads = paddle.grad([loss], [x, h0, c0, *weights])
        gx, gh0, gc0, *gw = (self._numpy(g) for g in grads)
        padded = pad_params(p, hidden) if hidden != p.hidden_size else p
        out = {"x": gx, "h0": gh0[0], "c0": gc0[0, :, :p.hidden_size]}
        out.update(unpad_gradients(PACKING.gradients(dict(zip(names, gw)), padded, case.spec.gate_order),
                                   p.hidden_size, hidden))
        return out
