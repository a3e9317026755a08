"""PyTorch: ``torch.nn.LSTM`` (whole sequences, packed sequences, stacks, both directions),
``torch.nn.LSTMCell`` (one step at a time) and autograd (gradients).

Convention (torch/nn/modules/rnn.py, docs of ``nn.LSTM``): gate order i, f, g, o; weights
stored transposed, ``weight_ih_l{k}`` (4H, D) and ``weight_hh_l{k}`` (4H, P); two biases
``bias_ih`` + ``bias_hh`` that are simply added; ``proj_size`` adds ``weight_hr_l{k}`` (P, H) and
h_t = W_hr (o * tanh(c_t)) with no clip; h_n / c_n are indexed layer * num_directions + direction.
Weights are converted with the "torch" entry of ``adapters.packings`` only.

What the adapter does on top of torch, and nothing else:

* a run-time forget bias (TF LSTMCell's ``forget_bias``) is *folded* into ``bias_ih`` (the
  packing's ``forget_bias``) -- torch has no such option;
* a case without ``recurrent_bias`` loads zeros into ``bias_hh`` (``nn.LSTM(bias=True)`` always
  has both);
* ``reverse`` (a reverse-only layer) is run as the *backward half of a bidirectional*
  ``nn.LSTM``: the forward half gets zero weights and its outputs are discarded.  torch has no
  reverse-only LSTM, but its bidirectional layer computes the reverse scan natively -- including
  the per-sequence reversal within each length of a packed sequence -- so the adapter never
  flips time steps itself; outputs are aligned to input steps (torch's convention);
* per-sequence lengths go through ``torch.nn.utils.rnn.pack_padded_sequence`` (enforce_sorted=
  False) and ``pad_packed_sequence(total_length=T)``: padded outputs are zeros and h_n / c_n are
  each sequence's last valid state.  ``pack_padded_sequence`` rejects a length of 0
  (Unsupported).

Not expressible in torch (reported unsupported, with the reasons in ``Capabilities.why_not``):
peepholes, cell_clip, gate_clip, proj_clip (the projection has no clip), any recurrent activation
but sigmoid, any activation but tanh, a sequence of length 0.

``torch-time-major`` (:class:`TorchTimeMajorAdapter`) is the same adapter with
``batch_first=False``: the sequence is handed to torch as (T, B, D).

``torch-cuda`` and ``torch-cuda-tf32`` (:class:`TorchCudaAdapter`, :class:`TorchCudaTF32Adapter`)
are the same adapter on the first CUDA device, where ``nn.LSTM`` runs cuDNN's RNN kernels (and its
persistent kernels for float16 at some sizes, aten/src/ATen/native/cudnn/RNN.cpp
``use_persist_common_heuristics``).  ``torch-cuda`` asks for IEEE float32 products
(``torch.backends.cudnn.allow_tf32 = False``; cuDNN's ``CUDNN_FMA_MATH``), ``torch-cuda-tf32``
sets PyTorch's default (True) before each call, under which cuDNN may round float32 operands of
its matrix products to TF32's 10-bit significand on Ampere and later GPUs (docs/source/notes/cuda.rst, "TensorFloat-32";
pytorch/pytorch#40737 made the flag cover RNNs).  Without a CUDA device both report "not set up".
"""

from __future__ import annotations

import numpy as np

from reference.layout import join_gates, split_gates
from reference.spec import LSTMParams, LSTMSpec

from .base import Adapter, Capabilities, Case, Output, Unsupported
from .packings import PACKINGS

_DTYPES = ("float32", "float64", "float16", "bfloat16")
PACKING = PACKINGS["torch"]


def _native_params(params: LSTMParams, spec: LSTMSpec) -> dict[str, np.ndarray]:
    """torch layer parameters (suffix-free names) with the run-time forget bias folded."""
    return PACKING.to_native(params, spec.gate_order, forget_bias=spec.forget_bias)


def _native_hidden(hidden_size: int, proj_size: int | None) -> int:
    """The hidden size given to nn.LSTM: torch refuses proj_size >= hidden_size (ValueError
    "proj_size has to be smaller than hidden_size" in nn.RNNBase.__init__), so such a case runs
    with proj_size + 1 units, the extra ones inert (see :func:`_pad_hidden`)."""
    return max(hidden_size, proj_size + 1) if proj_size else hidden_size


def _pad_hidden(weights: dict[str, np.ndarray], hidden: int) -> dict[str, np.ndarray]:
    """Append inert hidden units up to ``hidden``: zero rows in every gate block of the weights
    and biases (so z = 0: g = tanh(0) = 0 and, from c0 = 0, c stays exactly 0 and the unit's
    o * tanh(c) is exactly 0) and zero columns in weight_hr (so nothing reaches h).  Blocks are
    split and joined with reference.layout in torch's gate order."""
    out = {}
    for name, value in weights.items():
        if name == "weight_hr":
            out[name] = np.pad(value, ((0, 0), (0, hidden - value.shape[1])))
            continue
        blocks = split_gates(value, "torch", axis=0)
        extra = hidden - blocks["i"].shape[0]
        widths = [(0, extra)] + [(0, 0)] * (value.ndim - 1)
        out[name] = join_gates({g: np.pad(b, widths) for g, b in blocks.items()}, "torch", axis=0)
    return out


def _unpad_hidden(weights: dict[str, np.ndarray], hidden: int) -> dict[str, np.ndarray]:
    """Inverse of :func:`_pad_hidden` (drops the inert units' rows and columns)."""
    out = {}
    for name, value in weights.items():
        if value is None:
            out[name] = None
        elif name == "weight_hr":
            out[name] = value[:, :hidden].copy()
        else:
            blocks = split_gates(value, "torch", axis=0)
            out[name] = join_gates({g: b[:hidden] for g, b in blocks.items()}, "torch", axis=0)
    return out


class TorchLSTMAdapter(Adapter):
    """torch.nn.LSTM with ``batch_first=True``; torch.nn.LSTMCell for ``run_steps``."""

    name = "torch"
    framework = "torch"
    api = "torch.nn.LSTM(batch_first=True), torch.nn.LSTMCell, torch.autograd"
    native_gate_order = "torch"
    bias_convention = "two biases b_ih + b_hh (zeros in b_hh without recurrent_bias); forget bias folded into b_ih"
    weight_orientation = "weight_ih (4H, D), weight_hh (4H, P), weight_hr (P, H)"
    capabilities = Capabilities(
        dtypes=_DTYPES,
        recurrent_activations=("sigmoid",),
        activations=("tanh",),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "projection", "lengths",
                            "reverse", "bidirectional", "layers", "step", "gradients"}),
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
        gradient_dtypes=("float32", "float64"),
        why_not={"peepholes": "nn.LSTM has no peephole connections",
                 "cell_clip": "nn.LSTM has no cell_clip", "gate_clip": "nn.LSTM has no gate_clip",
                 "proj_clip": "nn.LSTM's projection (proj_size) has no clip",
                 "empty_sequences": "pack_padded_sequence rejects a length of 0",
                 **{a: "nn.LSTM's gates use sigmoid only" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
                 **{a: "nn.LSTM uses tanh only" for a in ("relu", "linear")},
                 "length_semantics repeat": "pad_packed_sequence pads with zeros"},
    )
    batch_first = True

    def __init__(self):
        import torch

        self._torch = torch
        # Framework call overhead dominates for these tiny shapes; intra-op threads only add
        # synchronisation (measured on 2 cores: 0.4 ms per nn.LSTM call with 1 thread, 7 ms with 2).
        torch.set_num_threads(1)
        self._modules: dict[tuple, object] = {}
        self._cells: dict[tuple, object] = {}

    # ------------------------------------------------------------------ conversions

    #: Where modules and tensors live ("cpu", or "cuda" in the CUDA adapters).
    device = "cpu"

    def _tdtype(self, dtype: str):
        return getattr(self._torch, dtype)

    def _tensor(self, array, dtype: str):
        # float32 first: numpy has no bfloat16; the values are exact in ``dtype`` already.
        staging = np.float64 if dtype == "float64" else np.float32
        t = self._torch.from_numpy(np.ascontiguousarray(array, dtype=staging))
        return t.to(device=self.device, dtype=self._tdtype(dtype))

    @staticmethod
    def _numpy(tensor) -> np.ndarray:
        import torch

        return tensor.detach().to(torch.float64).cpu().numpy()

    # ------------------------------------------------------------------ modules

    def _module(self, input_size, hidden_size, proj_size, layers, bidirectional, dtype):
        """One nn.LSTM per shape signature, reused: new weights are copied in for each case."""
        key = (input_size, hidden_size, proj_size, layers, bidirectional, dtype)
        module = self._modules.get(key)
        if module is None:
            module = self._torch.nn.LSTM(input_size, hidden_size, num_layers=layers, bias=True,
                                         batch_first=self.batch_first, bidirectional=bidirectional,
                                         proj_size=proj_size, dtype=self._tdtype(dtype), device=self.device)
            self._modules[key] = module
        return module

    def _load(self, module, layers: list[list[dict]], dtype: str) -> None:
        """Copy native weights in: ``layers[k][d]`` is the packing's named arrays for layer k, direction d."""
        with self._torch.no_grad():
            for k, dirs in enumerate(layers):
                for d, weights in enumerate(dirs):
                    suffix = f"_l{k}" + ("_reverse" if d else "")
                    for name, value in weights.items():
                        getattr(module, name + suffix).copy_(self._tensor(value, dtype))

    def _prepare(self, case: Case, *, zero_state: bool = False):
        """(module, x, (h0, c0) or None, reverse_only) for ``case``, weights loaded.

        ``zero_state``: explicit zero tensors instead of None when the case has no state."""
        spec, dtype = case.spec, case.dtype
        p0 = case.params
        hidden = _native_hidden(p0.hidden_size, spec.proj_size)
        native = [[_native_params(p, spec) for p in dirs] for dirs in case.layers]
        if hidden != p0.hidden_size:
            native = [[_pad_hidden(w, hidden) for w in dirs] for dirs in native]
        num_layers = len(case.layers)
        reverse_only = case.direction == "reverse"
        if reverse_only:
            if num_layers != 1:
                raise Unsupported(f"{self.name}: a stack of reverse-only layers (torch has no "
                                  f"reverse-only nn.LSTM; a single one is run as the backward half "
                                  f"of a bidirectional layer)")
            zero = {k: np.zeros_like(v) for k, v in native[0][0].items()}
            native = [[zero, native[0][0]]]
        module = self._module(p0.input_size, hidden, spec.proj_size or 0, num_layers,
                              case.direction != "forward", dtype)
        self._load(module, native, dtype)
        x = case.x if self.batch_first else np.swapaxes(case.x, 0, 1)
        x = self._tensor(x, dtype)
        states = case.initial_state
        if states is None and zero_state:
            states = [(np.zeros((case.batch, p0.output_size)), np.zeros((case.batch, p0.hidden_size)))
                      ] * (num_layers * case.num_directions)
        state = None
        if states is not None:
            hs = [np.asarray(h) for h, _ in states]
            cs = [np.pad(np.asarray(c), ((0, 0), (0, hidden - p0.hidden_size))) for _, c in states]
            if reverse_only:
                hs, cs = [np.zeros_like(hs[0]), hs[0]], [np.zeros_like(cs[0]), cs[0]]
            state = (self._tensor(np.stack(hs), dtype), self._tensor(np.stack(cs), dtype))
        return module, x, state, reverse_only

    def _forward(self, case: Case, module, x, state, lengths=None):
        """(y batch-major, h_n, c_n) of ``module`` on ``x``; ``lengths``: a tensor instead of
        ``case.lengths`` (an exported model takes them as an input)."""
        torch = self._torch
        if lengths is None and case.lengths is not None:
            lengths = torch.as_tensor(np.asarray(case.lengths, dtype=np.int64))
        if lengths is None:
            y, (h_n, c_n) = module(x, state)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=self.batch_first,
                                                             enforce_sorted=False)
            out, (h_n, c_n) = module(packed, state)
            y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=self.batch_first,
                                                          total_length=x.shape[1 if self.batch_first else 0])
        if not self.batch_first:
            y = y.transpose(0, 1)
        return y, h_n, c_n[..., :case.params.hidden_size]

    def _output(self, case: Case, y, h_n, c_n, reverse_only: bool) -> Output:
        """The Output of ``_forward``'s results (tensors or arrays): a reverse-only case keeps the
        backward half of the bidirectional layer it ran as."""
        y, h_n, c_n = (self._numpy(self._torch.as_tensor(a)) for a in (y, h_n, c_n))
        if reverse_only:
            return Output(y[..., case.params.output_size:], [(h_n[1], c_n[1])])
        return Output(y, [(h_n[k], c_n[k]) for k in range(h_n.shape[0])])

    # ------------------------------------------------------------------ the contract

    def run(self, case: Case) -> Output:
        module, x, state, reverse_only = self._prepare(case)
        with self._torch.inference_mode():
            y, h_n, c_n = self._forward(case, module, x, state)
        return self._output(case, y, h_n, c_n, reverse_only)

    def run_steps(self, case: Case) -> Output:
        """torch.nn.LSTMCell driven one step at a time, (h, c) fed back into each call.

        LSTMCell has no projection, no lengths, one layer and one direction: other cases are
        Unsupported here (rather than silently falling back to nn.LSTM)."""
        if case.spec.proj_size:
            raise Unsupported(f"{self.name}: nn.LSTMCell has no projection (proj_size)")
        if case.lengths is not None or case.direction != "forward" or len(case.layers) != 1:
            raise Unsupported(f"{self.name}: nn.LSTMCell is one forward layer without lengths")
        torch, dtype, p = self._torch, case.dtype, case.params
        key = (p.input_size, p.hidden_size, dtype)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = torch.nn.LSTMCell(p.input_size, p.hidden_size, bias=True,
                                                        dtype=self._tdtype(dtype), device=self.device)
        weights = _native_params(p, case.spec)
        with torch.no_grad():
            for name, value in weights.items():
                getattr(cell, name).copy_(self._tensor(value, dtype))
        x = self._tensor(case.x, dtype)
        state = None
        if case.initial_state is not None:
            h0, c0 = case.initial_state[0]
            state = (self._tensor(h0, dtype), self._tensor(c0, dtype))
        outputs = []
        with torch.inference_mode():
            for t in range(case.steps):
                state = cell(x[:, t], state)
                outputs.append(state[0])
            y = torch.stack(outputs, dim=1)
        return Output(self._numpy(y), [(self._numpy(state[0]), self._numpy(state[1]))])

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        """torch.autograd.grad of sum(y*dy) + sum(h_n*dh) + sum(c_n*dc) with respect to x, h0,
        c0 and the layer's parameters, converted back with the packing's ``gradients``.
        Without recurrent_bias the reference bias gradient is that of b_ih (b_hh is a zero
        stand-in); a folded forget bias is a constant and does not change any gradient."""
        if case.direction != "forward" or len(case.layers) != 1:
            raise Unsupported(f"{self.name}: gradients are implemented for one forward layer")
        torch, dtype, p = self._torch, case.dtype, case.params
        module, x, state, _ = self._prepare(case, zero_state=True)
        x = x.detach().requires_grad_(True)
        h0, c0 = (s.detach().requires_grad_(True) for s in state)
        names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
        if case.spec.proj_size:
            names.append("weight_hr_l0")
        weights = [getattr(module, n) for n in names]
        with torch.enable_grad():
            y, h_n, c_n = self._forward(case, module, x, (h0, c0))
            loss = ((y * self._tensor(dy, dtype)).sum() + (h_n[0] * self._tensor(dh, dtype)).sum()
                    + (c_n[0] * self._tensor(dc, dtype)).sum())
            grads = torch.autograd.grad(loss, [x, h0, c0, *weights])
        gx, gh0, gc0, *gw = (self._numpy(g) for g in grads)
        native = _unpad_hidden(dict(zip((n.removesuffix("_l0") for n in names), gw)), p.hidden_size)
        out = {"x": gx if self.batch_first else np.swapaxes(gx, 0, 1), "h0": gh0[0],
               "c0": gc0[0, :, :p.hidden_size]}
        out.update(PACKING.gradients(native, p, case.spec.gate_order))
        return out


class TorchTimeMajorAdapter(TorchLSTMAdapter):
    """The same as :class:`TorchLSTMAdapter` with ``nn.LSTM(batch_first=False)``: x is (T, B, D)."""

    name = "torch-time-major"
    api = "torch.nn.LSTM(batch_first=False), torch.nn.LSTMCell, torch.autograd"
    batch_first = False


class TorchCudaAdapter(TorchLSTMAdapter):
    """:class:`TorchLSTMAdapter` on the first CUDA device (cuDNN), with IEEE float32 products:
    what ``nn.LSTM`` computes on a GPU once TF32 is turned off."""

    name = "torch-cuda"
    api = "torch.nn.LSTM(batch_first=True) on CUDA (cuDNN), torch.backends.cudnn.allow_tf32 = False"
    device = "cuda"
    #: The value given to torch.backends.cudnn.allow_tf32 before each call: set every time, since
    #: both CUDA backends run in one process (tox -e torch-cuda) and the flag is global.
    allow_tf32 = False

    def setup_problem(self) -> str | None:
        if not self._torch.cuda.is_available():
            return (f"{self.name} needs a CUDA device and a CUDA build of torch (torch "
                    f"{self._torch.__version__}: torch.cuda.is_available() is False); run it on a GPU "
                    f"machine: pytest conformance/suite --backend {self.name}")
        return None

    def version(self) -> str:
        torch = self._torch
        if not torch.cuda.is_available():
            return f"{torch.__version__}, no CUDA device"
        return (f"{torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
                f"{torch.cuda.get_device_name(0)}")

    def _precision(self):
        self._torch.backends.cudnn.allow_tf32 = self.allow_tf32

    def run(self, case: Case) -> Output:
        self._precision()
        return super().run(case)

    def run_steps(self, case: Case) -> Output:
        self._precision()
        return super().run_steps(case)

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        self._precision()
        return super().gradients(case, dy, dh, dc)


class TorchCudaTF32Adapter(TorchCudaAdapter):
    """:class:`TorchCudaAdapter` under PyTorch's defaults: cuDNN may compute float32 products in
    TF32 (``torch.backends.cudnn.allow_tf32`` is True by default)."""

    name = "torch-cuda-tf32"
    api = "torch.nn.LSTM(batch_first=True) on CUDA (cuDNN), PyTorch's default precision (TF32 allowed)"
    allow_tf32 = True  # PyTorch's default
