"""CNTK 2.7: ``cntk.layers.Recurrence(cntk.layers.LSTM(...))``, run in a CPython 3.6 worker
(adapters/workers/cntk_worker.py; ``python -m conformance setup cntk`` creates its environment).

Convention (cntk/layers/blocks.py, ``_RecurrentBlock``, CNTK 2.7):

* Parameters ``W`` (D, 4H), ``H`` (P, 4H), ``b`` (4H): row vectors, ``proj4 = b + x @ W + h @ H``,
  sliced along the last axis as i (``it_proj``), g (``bit_proj``), f (``ft_proj``), o (``ot_proj``):
  gate order igfo, preset "cntk" (the "cntk" entry of ``adapters.packings``).  One bias, no forget
  bias: a run-time forget bias and a second bias are *folded* into ``b`` by this adapter.
* Peepholes ``Ci``, ``Cf``, ``Co`` (H each), elementwise: i and f see c_{t-1}, o sees c_t
  (``peep(ot_proj, Sct(ct), Co)``): the reference's peephole rows i, f, o.
* Projection: ``LSTM(shape=P, cell_shape=H)`` adds ``P`` (H, P), h_t = (o * act(c_t)) @ P, and
  ``H`` becomes (P, 4H).
* ``activation`` replaces tanh for both the candidate and the cell output; the gate activation
  is always the logistic sigmoid.
* Self-stabilization (``enable_self_stabilization``) is not part of the reference: it is passed
  False explicitly, and the worker refuses a network in which stabilizer parameters appear.
* Initial state: zeros through ``Recurrence``'s default; a given state through ``Recurrence(
  initial_state=(Constant, Constant))`` when every batch row holds the same state (a CNTK constant
  has no batch axis) and otherwise through ``RecurrenceFrom(cell)(h0, c0, x)`` with the state as
  data (the captioning-decoder case).
* ``go_backwards=True`` aligns its outputs with the input steps (output t is the state after
  reading steps T-1..t): reverse_time_order "aligned"; the final state is the output at step 0.
* Ragged batches are native variable-length sequences: outputs past a sequence's length do not
  exist in CNTK, so they are padded with zeros (length semantics "zeros", padding done by the
  worker); the final state is the last element of each sequence (``sequence.last``, or
  ``sequence.first`` backwards).  A sequence of length 0 cannot exist: Unsupported.
* float64: the whole construction runs under ``default_options(dtype=np.float64)``.
* Bidirectional is the CNTK idiom ``splice(Recurrence(fw)(x), Recurrence(bw, go_backwards=True)
  (x))``; stacking chains Recurrence layers.
* Gradients: ``Function.grad`` of sum(y*dy) + sum(last(h)*dh) + sum(last(c)*dc) with respect to
  x, h0, c0 (RecurrenceFrom inputs) and the Parameters.
* Step-by-step: a one-step graph ``LSTM(...)(h_prev, c_prev, x_t)`` on non-sequence inputs,
  evaluated by the worker with each returned state fed back (one round trip for the whole loop).
"""

from __future__ import annotations

import numpy as np

from .base import Capabilities, Case
from .packings import PACKINGS
from .worker_adapter import WorkerAdapter


class CNTKAdapter(WorkerAdapter):
    name = "cntk"
    framework = "cntk"
    api = "cntk.layers.Recurrence(cntk.layers.LSTM) / RecurrenceFrom"
    native_gate_order = "cntk"
    bias_convention = "one bias b; a forget bias and a second bias are folded into it by the adapter"
    weight_orientation = "W (D, 4H), H (H or P, 4H), b (4H,), Ci/Cf/Co (H,), P (H, P)"
    worker_env = "cntk"
    packing = PACKINGS["cntk"]
    native_step_op = True  # the one-step graph (cntk_worker.py, op "steps")
    capabilities = Capabilities(
        dtypes=("float32", "float64"),  # float16: not on the CPU (see the worker)
        recurrent_activations=("sigmoid",),
        activations=("tanh", "relu", "linear"),
        features=frozenset({"initial_state", "forget_bias", "recurrent_bias", "peepholes",
                            "projection", "lengths", "reverse", "bidirectional", "layers", "step",
                            "gradients"}),
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
        why_not={"empty_sequences": "a CNTK sequence cannot have length 0",
                 "float16": "no float16 LSTM on the CPU", "bfloat16": "no bfloat16 in CNTK",
                 **{a: "the gates always use the sigmoid" for a in ("hard_sigmoid", "hard_sigmoid_keras2")},
                 "cell_clip": "layers.LSTM has no cell clip", "gate_clip": "layers.LSTM has no gate clip",
                 "proj_clip": "layers.LSTM's projection has no clip"},
    )

    def case_meta(self, case: Case) -> dict:
        meta = super().case_meta(case)
        if case.initial_state is not None and all(
                np.all(h == h[:1]) and np.all(c == c[:1]) for h, c in case.initial_state):
            meta["state"] = "constant"  # every row the same: a CNTK Constant expresses it
        return meta

