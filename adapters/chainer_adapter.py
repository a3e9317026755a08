"""Chainer 7.8.1, run in a CPython 3.8 worker (adapters/workers/chainer_worker.py; ``python -m
conformance setup chainer`` creates its environment: Chainer 7.8.1 is an sdist that builds there).

``ChainerLSTMAdapter`` ("chainer-lstm"): ``chainer.links.LSTM``, the stateful link, called once per
time step.  Convention (chainer/links/rnn/lstm.py, chainer/functions/rnn/lstm.py):

* ``upward`` = Linear(D, 4H) with a bias, ``lateral`` = Linear(H, 4H) without: weights ``upward/W``
  (4H, D), ``upward/b`` (4H), ``lateral/W`` (4H, H), applied as x W^T + b + h W_lat^T (the
  "chainer" entry of ``adapters.packings``).
* **Unit-major** packing: ``F.lstm`` reshapes its (B, 4H) input to (B, H, 4) and takes a, i, f, o
  along the last axis (``_extract_gates``): each unit's four gates side by side, in the order
  a (the candidate g), i, f, o: gate order "gifo", unit-major (``reference.layout``).
* One bias, no run-time forget bias (``forget_bias_init=1`` only initialises the f entries of
  ``upward/b``): a run-time forget bias and a second bias are folded into ``upward/b``.
* State: the link keeps ``h`` and ``c`` between calls; ``set_state(c, h)`` seeds it (c first),
  ``reset_state()`` forgets it.  ``run_stream`` carries it natively ("stateful").
* Ragged batches as Chainer runs them: rows sorted by length (longest first) and each step fed
  only the rows still running; the link keeps the state of the others (``h_rest``, and F.lstm
  copies ``c_prev[batch:]``).  Outputs past a sequence's end do not exist: the worker pads zeros
  (length semantics "zeros"), and the final state is the last valid one.
* Stacks chain links (Chainer's own examples do); there is no backward-only or bidirectional
  link (NStepBiLSTM is the bidirectional one).
* Single steps: ``chainer.links.StatelessLSTM``, ``c, h = link(c, h, x_t)`` with the state fed back.
* Gradients: ``backward()`` of sum(y*dy) + sum(h_T*dh) + sum(c_T*dc) (float32 and float64).

``ChainerNStepAdapter`` ("chainer-nstep"): ``chainer.links.NStepLSTM`` / ``NStepBiLSTM`` on a list
of variable-length sequences (chainer/links/rnn/n_step_rnn.py sorts them itself).  One (H, D) or
(H, H) matrix and one bias per gate and side, ``w0`` ... ``w7``, ``b0`` ... ``b7`` for i, f, a, o
(chainer/functions/rnn/n_step_lstm.py): two biases, gate-major once stacked; the "chainer_nstep"
entry of ``adapters.packings``.  (Its ``_lstm`` stacks the gates with ``stack(axis=1)`` into the
same unit-major a, i, f, o layout for F.lstm, internally.)

``f_lstm``: a native callable (the contract of ``detect`` and ``check``) built on the real
``chainer.functions.lstm`` in the worker: ``python -m conformance detect
adapters.chainer_adapter:f_lstm`` identifies gate order gifo, unit-major.
"""

from __future__ import annotations

import numpy as np

from .base import Capabilities
from .packings import PACKINGS
from .worker_adapter import WorkerAdapter

_WHY_NOT = {
    **{a: "chainer.functions.lstm's gates are always the sigmoid" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
    **{a: "chainer.functions.lstm has a fixed tanh" for a in ("relu", "linear")},
    "bfloat16": "numpy (Chainer's CPU arrays) has no bfloat16",
    "peepholes": "Chainer's LSTMs have no peepholes",
    **{f: "Chainer's LSTMs have no clip" for f in ("cell_clip", "gate_clip", "proj_clip")},
    **{f: "Chainer's LSTMs have no projection" for f in ("projection", "proj_clip")},
}


class _ChainerAdapter(WorkerAdapter):
    framework = "chainer"
    worker_env = "chainer"
    api_name = "lstm"


class ChainerLSTMAdapter(_ChainerAdapter):
    name = "chainer-lstm"
    api = "chainer.links.LSTM (stateful link, one call per step), links.StatelessLSTM for single steps"
    native_gate_order = "chainer"
    packing = PACKINGS["chainer"]
    native_step_op = True  # links.StatelessLSTM (chainer_worker.py, op "steps")
    native_stream_op = True  # the link's own state, then reset_state() (op "stream")
    bias_convention = "one bias upward/b; a forget bias and a second bias are folded into it"
    weight_orientation = "upward/W (4H, D), lateral/W (4H, H), upward/b (4H,); 4H axis unit-major (H, 4): a, i, f, o"
    capabilities = Capabilities(
        dtypes=("float32", "float64", "float16"),
        recurrent_activations=("sigmoid",),
        activations=("tanh",),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "lengths", "empty_sequences",
                            "layers", "step", "stateful", "gradients"}),
        length_semantics="zeros",
        max_layers=3,
        why_not={**_WHY_NOT,
                 "reverse": "chainer.links.LSTM steps forward only (NStepBiLSTM has the backward direction)",
                 "bidirectional": "chainer.links.LSTM has one direction (chainer-nstep tests NStepBiLSTM)"},
    )


class ChainerNStepAdapter(_ChainerAdapter):
    name = "chainer-nstep"
    api = "chainer.links.NStepLSTM / NStepBiLSTM on a list of variable-length sequences"
    api_name = "nstep"
    native_gate_order = "ifgo"
    packing = PACKINGS["chainer_nstep"]
    bias_convention = "two biases per gate (b0..b3 input side, b4..b7 recurrent side); a forget bias is folded into b1"
    weight_orientation = "w0..w3 (H, D) for i, f, a, o; w4..w7 (H, H); b0..b7 (H,) per layer and direction"
    capabilities = Capabilities(
        dtypes=("float32", "float64", "float16"),
        recurrent_activations=("sigmoid",),
        activations=("tanh",),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "lengths", "bidirectional", "layers",
                            "gradients"}),
        length_semantics="zeros",
        max_layers=3,
        why_not={**_WHY_NOT,
                 "reverse": "NStepLSTM runs forward and NStepBiLSTM both directions: no backward-only layer",
                 "empty_sequences": "NStepLSTM fails on a sequence of length 0 (IndexError: tuple index out of "
                                    "range, chainer/functions/rnn/n_step_lstm.py, n_step_lstm_base; cf. "
                                    "chainer/chainer#5697)",
                 "step": "NStepLSTM runs whole sequences (chainer-lstm tests StatelessLSTM's single steps)",
                 "stateful": "NStepLSTM keeps no state between calls"},
    )


class ChainerFunctionLSTM:
    """A native LSTM callable, ``(x, h0, c0, kernel, recurrent_kernel, bias) -> (y, h_T, c_T)``,
    computed by the real Chainer in the worker: per step ``F.linear(x_t, kernel, bias) +
    F.linear(h, recurrent_kernel)`` then ``F.lstm`` (chainer_worker.py, op "flstm").  The arrays
    are passed as they come, so ``detect`` sees exactly how F.lstm splits its input."""

    def __init__(self):
        self._adapter = None

    def __call__(self, x, h0, c0, kernel, recurrent_kernel, bias):
        if self._adapter is None:
            self._adapter = ChainerLSTMAdapter()
        arrays = {"x": x, "h0": h0, "c0": c0, "kernel": kernel, "recurrent_kernel": recurrent_kernel, "bias": bias}
        dtype = np.asarray(x).dtype
        out = self._adapter.call({"op": "flstm", "dtype": str(dtype)},
                                 {k: np.asarray(v, dtype) for k, v in arrays.items()})
        return out["y"], out["h"], out["c"]

    def close(self):
        if self._adapter is not None:
            self._adapter.close()


#: ``python -m conformance detect adapters.chainer_adapter:f_lstm`` (after ``setup chainer``).
f_lstm = ChainerFunctionLSTM()
