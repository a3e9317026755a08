"""MindSpore (CPU build): ``mindspore.nn.LSTM`` (``seq_length``, ``bidirectional``, stacks),
``mindspore.nn.LSTMCell`` (one step at a time) and ``mindspore.grad``.

Convention (mindspore/nn/layer/rnns.py and rnn_cells.py, mindspore 2.10.0): parameters
``weight_ih_l{k}`` (4H, D), ``weight_hh_l{k}`` (4H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (4H,)
(``_reverse`` for the backward direction), gate order i, f, g, o (``_lstm_cell``:
``ingate, forgetgate, cellgate, outgate = ops.Split(1, 4)(gates)``), two biases simply added,
no run-time forget bias, no projection: PyTorch's packing and names.  h_n / c_n are indexed
layer * num_directions + direction.  Weights are converted with the "torch" entry of
``adapters.packings`` (the names and layout are the same).

On the CPU, ``nn.LSTM`` has two code paths (``_DynamicLSTMCPUGPU.construct``):

* without ``seq_length``: the fused ``ops.LSTM`` kernel, given ``w_ih``, ``w_hh`` and the sum
  ``b_ih + b_hh`` flattened into one weight vector;
* with ``seq_length``: ``_DynamicRNNBase.variable_recurrent``, a loop of ``_lstm_cell`` that
  selects the new state where ``t < seq_length`` and outputs zeros elsewhere (semantics
  "zeros"); the backward direction reverses each sequence within its length
  (``ops.ReverseSequence``), outputs aligned.

Both paths are tested (cases with lengths take the second).

What the adapter does on top of MindSpore, and nothing else:

* a run-time forget bias is folded into ``bias_ih``; zeros go into ``bias_hh`` without a
  recurrent bias;
* ``reverse`` (a reverse-only layer) is run as the *backward half of a bidirectional*
  ``nn.LSTM`` whose forward half has zero weights;
* speed: in PyNative mode (the default) each operator is dispatched from Python; the
  ``seq_length`` loop (about ten operators a step) and ``LSTMCell`` then cost tens of
  milliseconds to a second per call on these machines.  So runs with lengths and single steps
  go through ``mindspore.jit`` (graph mode) on zero-padded shapes (``adapters.padding``: batch,
  features and units to buckets, time to 16 or a multiple of 128 beyond every length: exact),
  one compilation per configuration; runs without lengths and gradients run in PyNative mode
  (the fused kernel: one operator) on the exact shapes.  Weights reach a compiled function
  through a compiled assignment (``_loader``): the values set in PyNative mode are not seen.

Dtypes: ``nn.LSTM`` and ``LSTMCell`` check x and the given state against float32 / float16
(``_check_input_dtype_same_and_valid``: TypeError).  float64 is accepted *only without an
initial state*, and then the fused kernel returns a Float64 tensor computed with float32
accuracy (the ``seq_length`` loop is float64-accurate): a case with a float64 state is
Unsupported (MindSpore's TypeError), the silent float32 is a known issue
(``conformance/harness/known_issues.py``).  bfloat16: no CPU ``LSTM`` kernel ("Select CPU
operator[LSTM] fail!").

Not expressible (unsupported): peepholes, clips, projection, other activations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Adapter, Capabilities, Case, Output, Unsupported
from .packings import PACKINGS
from .padding import bucket, bucket_steps, pad, pad_params

PACKING = PACKINGS["torch"]
_NP = {"float32": np.float32, "float16": np.float16, "float64": np.float64}


@dataclass(frozen=True)
class _Config:
    """A padded configuration compiled with mindspore.jit (the cache key)."""

    what: str
    dtype: str
    layers: int
    bidirectional: bool
    batch: int
    steps: int
    inputs: int
    hidden: int


class MindSporeLSTMAdapter(Adapter):
    """mindspore.nn.LSTM(batch_first=True); mindspore.nn.LSTMCell for ``run_steps``."""

    name = "mindspore"
    framework = "mindspore"
    api = "mindspore.nn.LSTM(batch_first=True, bidirectional=..., seq_length=...), mindspore.nn.LSTMCell, mindspore.grad"
    native_gate_order = "ifgo"
    bias_convention = "two biases bias_ih + bias_hh (zeros in bias_hh without recurrent_bias); forget bias folded into bias_ih"
    weight_orientation = "weight_ih_l{k} (4H, D), weight_hh_l{k} (4H, H)"
    capabilities = Capabilities(
        dtypes=("float32", "float16", "float64"),
        recurrent_activations=("sigmoid",),
        activations=("tanh",),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "lengths", "empty_sequences", "reverse",
                            "bidirectional", "layers", "step", "gradients"}),
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
        gradient_dtypes=("float32",),
        why_not={"peepholes": "nn.LSTM has no peephole connections", "cell_clip": "nn.LSTM has no cell clip",
                 "gate_clip": "nn.LSTM has no gate clip", "projection": "nn.LSTM has no projection",
                 "proj_clip": "nn.LSTM has no projection",
                 "bfloat16": "no CPU kernel of the LSTM operator for bfloat16 (Select CPU operator[LSTM] fail)",
                 "gradients float64": "nn.LSTM refuses a float64 initial state (TypeError: float32 or float16 only)",
                 **{a: "_lstm_cell's gates are ops.Sigmoid" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
                 **{a: "_lstm_cell's activation is ops.Tanh" for a in ("relu", "linear")},
                 "length_semantics repeat": "the seq_length loop outputs zeros at padded steps"},
    )

    def __init__(self):
        import mindspore

        mindspore.set_device("CPU")
        # mindspore.jit unrolls nn.LSTM's seq_length loop into nested calls: its default limit of
        # 1000 ("Exceed function call depth limit 1000") stops it near 129 steps.  20000 compiles
        # 512 steps (measured: 35 s, within the main thread's 8 MiB stack).
        mindspore.set_recursion_limit(20000)
        self._ms = mindspore
        self._modules: dict[tuple, object] = {}
        self._compiled: dict[_Config, tuple] = {}

    # ------------------------------------------------------------------ conversions

    def _tensor(self, array, dtype: str):
        return self._ms.Tensor(np.ascontiguousarray(array, dtype=_NP[dtype]))

    @staticmethod
    def _numpy(tensor) -> np.ndarray:
        return np.asarray(tensor.asnumpy(), dtype=np.float64)

    def _lstm(self, input_size, hidden, layers, bidirectional, dtype):
        """One nn.LSTM per signature, reused: weights are set with ``set_data`` for each case."""
        key = (input_size, hidden, layers, bidirectional, dtype)
        module = self._modules.get(key)
        if module is None:
            module = self._modules[key] = self._ms.nn.LSTM(input_size, hidden, num_layers=layers, batch_first=True,
                                                           bidirectional=bidirectional,
                                                           dtype=getattr(self._ms, dtype))
        return module

    def _load(self, module, native: list[list[dict]], dtype: str) -> None:
        for k, dirs in enumerate(native):
            for d, weights in enumerate(dirs):
                for name, value in weights.items():
                    getattr(module, f"{name}_l{k}" + ("_reverse" if d else "")).set_data(self._tensor(value, dtype))

    def _native(self, case: Case, hidden: int, inputs: int) -> list[list[dict]]:
        """Each layer's and direction's torch-named arrays, padded to ``hidden`` units and
        ``inputs`` features; a reverse-only case gets a zero forward half."""
        h = case.params.hidden_size
        out = []
        for k, dirs in enumerate(case.layers):
            segments = [(case.params.input_size, inputs)] if k == 0 else [(h, hidden)] * case.num_directions
            out.append([PACKING.to_native(pad_params(p, hidden, segments), case.spec.gate_order,
                                          forget_bias=case.spec.forget_bias) for p in dirs])
        if case.direction == "reverse":
            if len(out) != 1:
                raise Unsupported(f"{self.name}: a stack of reverse-only layers (MindSpore has no reverse-only "
                                  f"nn.LSTM; a single one is run as the backward half of a bidirectional layer)")
            out = [[{k: np.zeros_like(v) for k, v in out[0][0].items()}, out[0][0]]]
        return out

    def _states(self, case: Case, batch: int, hidden: int):
        """(h0, c0) stacked (layers * directions, batch, hidden), padded; None without a state."""
        if case.initial_state is None:
            return None
        states = list(case.initial_state)
        if case.direction == "reverse":
            zero = (np.zeros_like(states[0][0]), np.zeros_like(states[0][1]))
            states = [zero, states[0]]
        h0 = np.stack([pad(h, (batch, hidden), np.float64) for h, _ in states])
        c0 = np.stack([pad(c, (batch, hidden), np.float64) for _, c in states])
        return h0, c0

    def _output(self, case: Case, y, h_n, c_n) -> Output:
        b, t, h = case.batch, case.steps, case.params.hidden_size
        y, h_n, c_n = self._numpy(y), self._numpy(h_n), self._numpy(c_n)
        hidden = h_n.shape[-1]
        if case.direction == "reverse":
            return Output(y[:b, :t, hidden:hidden + h], [(h_n[1, :b, :h], c_n[1, :b, :h])])
        halves = np.split(y[:b, :t], 2 if case.direction == "bidirectional" else 1, axis=-1)
        y = np.concatenate([half[..., :h] for half in halves], axis=-1)
        return Output(y, [(h_n[k, :b, :h], c_n[k, :b, :h]) for k in range(h_n.shape[0])])

    def _loader(self, cell):
        """``load(arrays by parameter name, dtype)`` for a cell used by a compiled function.

        A function compiled with mindspore.jit keeps the parameter values it was compiled with:
        ``Parameter.set_data``, ``ops.assign`` or ``assign_value`` called in PyNative mode are not
        seen by its later calls (measured with mindspore 2.10.0; docs/frameworks/mindspore.md);
        an assignment made by compiled code is.  So new weights are assigned by a compiled
        function too, one per cell."""
        ms = self._ms
        params = {p.name: p for p in cell.get_parameters()}
        names = sorted(params)

        def assign(*values):
            for name, value in zip(names, values):
                ms.ops.assign(params[name], value)
            return values[0]

        compiled = ms.jit(assign)

        def load(arrays: dict, dtype: str) -> None:
            if sorted(arrays) != names:
                raise RuntimeError(f"{self.name}: converted weights {sorted(arrays)}, the cell has {names}")
            compiled(*(self._tensor(arrays[n], dtype) for n in names))

        return load

    def _refused(self, exc: TypeError, case: Case):
        """MindSpore's own refusal of a float64 state, as Unsupported (anything else is raised)."""
        if case.dtype == "float64" and "Float32, Float16" in str(exc):
            return Unsupported(f"{self.name}: MindSpore refuses a float64 initial state: "
                               f"{str(exc).splitlines()[0][:300]}")
        return None

    # ------------------------------------------------------------------ the contract

    def run(self, case: Case) -> Output:
        """Without lengths: nn.LSTM in PyNative mode on the exact shapes (the fused kernel).
        With lengths: the seq_length loop, compiled with mindspore.jit on padded shapes."""
        if case.lengths is not None:
            return self._run_lengths(case)
        p, dtype = case.params, case.dtype
        bidirectional = case.direction != "forward"
        module = self._lstm(p.input_size, p.hidden_size, len(case.layers), bidirectional, dtype)
        self._load(module, self._native(case, p.hidden_size, p.input_size), dtype)
        states = self._states(case, case.batch, p.hidden_size)
        hx = None if states is None else tuple(self._tensor(s, dtype) for s in states)
        try:
            y, (h_n, c_n) = module(self._tensor(case.x, dtype), hx)
        except TypeError as exc:
            raise self._refused(exc, case) or exc
        return self._output(case, y, h_n, c_n)

    def _run_lengths(self, case: Case) -> Output:
        dtype = case.dtype
        cfg = _Config("lengths", dtype, len(case.layers), case.direction != "forward", bucket(case.batch, 4),
                      bucket_steps(case.steps), bucket(case.params.input_size, 8), bucket(case.params.hidden_size, 8))
        entry = self._compiled.get(cfg)
        if entry is None:
            # Its own instance: a set_data on a Cell detaches it from the graphs compiled before.
            module = self._ms.nn.LSTM(cfg.inputs, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                                      bidirectional=cfg.bidirectional, dtype=getattr(self._ms, dtype))

            def forward(x, h0, c0, lengths):
                return module(x, (h0, c0), lengths)

            entry = self._compiled[cfg] = (self._ms.jit(forward), self._loader(module))
        fn, load = entry
        load({f"{name}_l{k}" + ("_reverse" if d else ""): value
              for k, dirs in enumerate(self._native(case, cfg.hidden, cfg.inputs))
              for d, weights in enumerate(dirs) for name, value in weights.items()}, dtype)
        count = cfg.layers * (2 if cfg.bidirectional else 1)
        states = self._states(case, cfg.batch, cfg.hidden)
        if states is None:  # the compiled function takes a state: zeros, what nn.LSTM fills in
            states = (np.zeros((count, cfg.batch, cfg.hidden)),) * 2
        lengths = np.ones(cfg.batch, dtype=np.int64)
        lengths[:case.batch] = case.lengths
        try:
            y, (h_n, c_n) = fn(self._tensor(pad(case.x, (cfg.batch, cfg.steps, cfg.inputs), np.float64), dtype),
                               *(self._tensor(s, dtype) for s in states), self._ms.Tensor(lengths))
        except TypeError as exc:
            raise self._refused(exc, case) or exc
        return self._output(case, y, h_n, c_n)

    def run_steps(self, case: Case) -> Output:
        """mindspore.nn.LSTMCell (compiled with mindspore.jit on padded shapes) called once per
        step, (h, c) fed back.  One forward layer without lengths; other cases are Unsupported
        here (rather than falling back to nn.LSTM)."""
        if case.lengths is not None or case.direction != "forward" or len(case.layers) != 1:
            raise Unsupported(f"{self.name}: nn.LSTMCell is one forward layer without lengths")
        if case.dtype == "float64":
            raise Unsupported(f"{self.name}: nn.LSTMCell checks x and hx against float32 / float16")
        dtype, p = case.dtype, case.params
        cfg = _Config("cell", dtype, 1, False, bucket(case.batch, 4), 1, bucket(p.input_size, 8),
                      bucket(p.hidden_size, 8))
        entry = self._compiled.get(cfg)
        if entry is None:
            cell = self._ms.nn.LSTMCell(cfg.inputs, cfg.hidden, dtype=getattr(self._ms, dtype))

            def step(x_t, h, c):
                return cell(x_t, (h, c))

            entry = self._compiled[cfg] = (self._ms.jit(step), self._loader(cell))
        fn, load = entry
        load(PACKING.to_native(pad_params(p, cfg.hidden, [(p.input_size, cfg.inputs)]), case.spec.gate_order,
                               forget_bias=case.spec.forget_bias), dtype)
        shape = (cfg.batch, cfg.hidden)
        h0, c0 = case.initial_state[0] if case.initial_state is not None else (np.zeros(shape),) * 2
        h, c = self._tensor(pad(h0, shape, np.float64), dtype), self._tensor(pad(c0, shape, np.float64), dtype)
        outputs = []
        for t in range(case.steps):
            h, c = fn(self._tensor(pad(case.x[:, t], (cfg.batch, cfg.inputs), np.float64), dtype), h, c)
            outputs.append(self._numpy(h)[:case.batch, :p.hidden_size])
        final = (outputs[-1], self._numpy(c)[:case.batch, :p.hidden_size])
        return Output(np.stack(outputs, axis=1), [final])

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        """mindspore.grad (PyNative) of sum(y*dy) + sum(h_n*dh) + sum(c_n*dc) with respect to x,
        h0, c0 (grad_position) and the layer's four parameters (weights), converted back with
        the packing's ``gradients``."""
        if case.direction != "forward" or len(case.layers) != 1:
            raise Unsupported(f"{self.name}: gradients are implemented for one forward layer")
        ms, dtype, p = self._ms, case.dtype, case.params
        module = self._lstm(p.input_size, p.hidden_size, 1, False, dtype)
        self._load(module, self._native(case, p.hidden_size, p.input_size), dtype)
        names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        weights = [getattr(module, f"{n}_l0") for n in names]
        dy_, dh_, dc_ = (self._tensor(a, dtype) for a in (dy, dh[None], dc[None]))

        def loss(x, h0, c0):
            y, (h_n, c_n) = module(x, (h0, c0))
            return (y * dy_).sum() + (h_n * dh_).sum() + (c_n * dc_).sum()

        h0, c0 = self._states(case, case.batch, p.hidden_size)
        (gx, gh0, gc0), gw = ms.grad(loss, grad_position=(0, 1, 2), weights=weights)(
            self._tensor(case.x, dtype), self._tensor(h0, dtype), self._tensor(c0, dtype))
        out = {"x": self._numpy(gx), "h0": self._numpy(gh0)[0], "c0": self._numpy(gc0)[0]}
        out.update(PACKING.gradients({n: self._numpy(g) for n, g in zip(names, gw)}, p, case.spec.gate_order))
        return out
