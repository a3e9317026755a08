"""Deliberately broken variants of any adapter, and which property must catch each.

A conformance property earns its keep by failing on a wrong implementation.  ``Mutant(inner,
mutation)`` behaves like ``inner`` with one classic bug: the weights loaded with two gate blocks
swapped or with the other packing (gate-major taken for unit-major), the forget bias dropped, the
state not carried, a clip dropped or moved, outputs of a reverse run in the wrong order, ...  ``CATCHES`` maps every property to the mutations it must
detect; tests/test_mutations.py proves it on the reference backend, and
conformance/suite/test_mutations.py on the backend under test.
"""

from __future__ import annotations

import numpy as np

from adapters.base import Adapter, Case, Output
from reference import LSTMParams
from reference.activations import FAMILIES, NAMED, parse
from reference.gates import permute_gates
from reference.layout import FOUR_H_ARRAYS, permute_params

from .requirements import gated
from .strategies import round_to


def _swap_letters(order: str, a: str, b: str) -> str:
    return order.translate(str.maketrans({a: b, b: a}))


def _map_params(case: Case, fn) -> Case:
    return case.replace(layers=[[fn(p) for p in dirs] for dirs in case.layers])


def _swapped_gates(case: Case) -> Case:
    order = case.spec.gate_order
    wrong = _swap_letters(order, "f", "g")

    def swap(p: LSTMParams) -> LSTMParams:
        arrays = p.arrays()
        for k in FOUR_H_ARRAYS:
            if k in arrays:
                arrays[k] = permute_gates(arrays[k], order, wrong)
        return LSTMParams(**arrays)

    return _map_params(case, swap)


#: The boundaries of the size mutants: bugs of a SIMD or GEMM block past the first 16 units, of a
#: thread partition past batch row 16, of a chunked time loop past step 32.
UNIT_BOUNDARY, ROW_BOUNDARY, STEP_BOUNDARY = 16, 16, 32


def _units_past_swapped(case: Case, first: int = UNIT_BOUNDARY) -> Case:
    """The f and g blocks swapped for units ``first``.. only (every layer and direction)."""
    order = case.spec.gate_order
    f, g = order.index("f"), order.index("g")

    def swap(p: LSTMParams) -> LSTMParams:
        h = p.hidden_size
        if h <= first:
            return p
        arrays = p.arrays()
        for k in FOUR_H_ARRAYS:
            if k in arrays:
                a = np.array(arrays[k], copy=True)
                fa = a[..., f * h + first:(f + 1) * h].copy()
                a[..., f * h + first:(f + 1) * h] = a[..., g * h + first:(g + 1) * h]
                a[..., g * h + first:(g + 1) * h] = fa
                arrays[k] = a
        return LSTMParams(**arrays)

    return _map_params(case, swap)


def _rows_past_offset(case: Case, first: int = ROW_BOUNDARY) -> Case:
    """Batch rows ``first``.. read the input of the row before them (a partition offset by one)."""
    if case.batch <= first:
        return case
    x = np.array(case.x, copy=True)
    x[first:] = case.x[first - 1:-1]
    return case.replace(x=x)


def _steps_past_offset(case: Case, first: int = STEP_BOUNDARY) -> Case:
    """Steps ``first``.. read the input of the step before them (a chunked loop offset by one)."""
    if case.steps <= first:
        return case
    x = np.array(case.x, copy=True)
    x[:, first:] = case.x[:, first - 1:-1]
    return case.replace(x=x)


def _packing_confused(case: Case) -> Case:
    """The weights' 4H axes read with the other packing (gate-major blocks taken for unit-major
    groups): what an adapter that forgets to interleave (or interleaves when it must not) loads."""
    order = case.spec.gate_order
    return _map_params(case, lambda p: permute_params(p, order, order, from_packing="unit-major"))


def _default_params(name: str) -> str:
    """A parameterised activation with its family's default parameters (a converter that drops
    activation_alpha / activation_beta)."""
    act = parse(name)
    return act.family if act.name not in NAMED and act.family in FAMILIES else name


def _arrays(p: LSTMParams, **changes) -> LSTMParams:
    arrays = p.arrays()
    arrays.update(changes)
    return LSTMParams(**{k: v for k, v in arrays.items() if v is not None})


def _spec(case: Case, **changes) -> Case:
    return case.replace(spec=case.spec.replace(**changes))


#: Mutations of the case the inner adapter receives (a wrong conversion or a wrong option).
CASE_MUTATIONS = {
    "swapped_gates": _swapped_gates,
    "gate_packing_confused": _packing_confused,
    "forget_bias_dropped": lambda c: _spec(c, forget_bias=0.0),
    "state_ignored": lambda c: c.replace(initial_state=None),
    "lengths_ignored": lambda c: c.replace(lengths=None),
    "peepholes_reordered": lambda c: _map_params(
        c, lambda p: _arrays(p, peephole=np.asarray(p.peephole)[[0, 2, 1]])),
    "cell_clip_dropped": lambda c: _spec(c, cell_clip=None),
    "cell_clip_as_gate_clip": lambda c: _spec(c, cell_clip=None, gate_clip=c.spec.cell_clip),
    "gate_clip_dropped": lambda c: _spec(c, gate_clip=None),
    "proj_clip_dropped": lambda c: _spec(c, proj_clip=None),
    "projection_columns_reversed": lambda c: _map_params(
        c, lambda p: _arrays(p, projection=np.asarray(p.projection)[:, ::-1].copy())),
    "recurrent_bias_dropped": lambda c: _map_params(c, lambda p: _arrays(p, recurrent_bias=None)),
    "hard_sigmoid_variant_swapped": lambda c: _spec(c, recurrent_activation={
        "hard_sigmoid": "hard_sigmoid_keras2", "hard_sigmoid_keras2": "hard_sigmoid"}.get(
            c.spec.recurrent_activation, c.spec.recurrent_activation)),
    "activation_to_tanh": lambda c: _spec(c, activation="tanh"),
    "directions_swapped": lambda c: c.replace(layers=[dirs[::-1] for dirs in c.layers]),
    # The published specs' variants.
    "coupling_dropped": lambda c: _spec(c, coupled_gates=None),
    "coupling_reversed": lambda c: _spec(c, coupled_gates={
        "input_from_forget": "forget_from_input", "forget_from_input": "input_from_forget"}.get(
            c.spec.coupled_gates, c.spec.coupled_gates)),
    "activation_clip_as_gate_clip": lambda c: _spec(c, activation_clip=None, gate_clip=c.spec.activation_clip),
    "layer_norm_gates_swapped": lambda c: _map_params(c, lambda p: _arrays(
        p, layer_norm=None if p.layer_norm is None else permute_gates(
            p.layer_norm, c.spec.gate_order, _swap_letters(c.spec.gate_order, "f", "g")))),
    "projection_bias_dropped": lambda c: _map_params(c, lambda p: _arrays(p, projection_bias=None)),
    "activation_params_default": lambda c: _spec(c, **{
        k: _default_params(getattr(c.spec, k)) for k in ("recurrent_activation", "activation", "cell_activation")
        if getattr(c.spec, k) is not None}),
    "cell_activation_dropped": lambda c: _spec(c, cell_activation=None),
    "backward_activations_ignored": lambda c: _spec(c, backward_activations=None),
    # Right on small shapes, wrong past a size boundary (a case at scale must reach it).
    "units_past_16_swapped": _units_past_swapped,
    "batch_rows_past_16_offset": _rows_past_offset,
    "steps_past_32_offset": _steps_past_offset,
}

#: The mutations that only a case past a size boundary shows.
SIZE_MUTATIONS = ("units_past_16_swapped", "batch_rows_past_16_offset", "steps_past_32_offset")


def _flip_reverse(case: Case, out: Output) -> Output:
    if case.direction == "reverse":
        return Output(np.ascontiguousarray(np.asarray(out.y)[:, ::-1]), out.final)
    return out


def _drift(case: Case, out: Output) -> Output:
    # Right at the first step, then a relative error growing by 2e-4 a step.
    factor = 1.0 + 2e-4 * np.arange(case.steps)[None, :, None]
    final_factor = 1.0 + 2e-4 * (case.steps - 1)
    return Output(np.asarray(out.y) * factor,
                  [(np.asarray(h) * final_factor, np.asarray(c) * final_factor) for h, c in out.final])


#: Mutations of what the inner adapter returned.
OUTPUT_MUTATIONS = {
    "finals_reordered": lambda case, out: Output(out.y, list(out.final)[::-1]),
    "reverse_output_flipped": _flip_reverse,
    "float32_rounding": lambda case, out: Output(
        round_to(out.y, "float32"), [(round_to(h, "float32"), round_to(c, "float32")) for h, c in out.final]),
    "drift": _drift,
}

#: Mutations of the stateful paths: steps and streams.
STATE_MUTATIONS = ("steps_state_not_fed", "stream_state_dropped", "stream_reset_ignored")
GRADIENT_MUTATIONS = ("gradient_blocks_swapped",)

MUTATIONS = (tuple(CASE_MUTATIONS) + tuple(OUTPUT_MUTATIONS) + STATE_MUTATIONS + GRADIENT_MUTATIONS)

#: property -> the mutations it must catch.
CATCHES: dict[str, tuple[str, ...]] = {
    "forward_parity": ("swapped_gates", "gate_packing_confused"),
    "initial_state": ("state_ignored", "swapped_gates"),
    "state_transfer": ("state_ignored",),
    "step_by_step": ("steps_state_not_fed",),
    "streaming": ("stream_state_dropped", "stream_reset_ignored"),
    "lengths": ("lengths_ignored",),
    "zero_length": ("lengths_ignored", "state_ignored"),
    "reverse": ("reverse_output_flipped",),
    "bidirectional": ("directions_swapped",),
    "stacked": ("finals_reordered",),
    "peepholes": ("peepholes_reordered",),
    "cell_clip": ("cell_clip_dropped", "cell_clip_as_gate_clip"),
    "gate_clip": ("gate_clip_dropped",),
    "projection": ("projection_columns_reversed",),
    "proj_clip": ("proj_clip_dropped",),
    "hard_sigmoid": ("hard_sigmoid_variant_swapped", "swapped_gates"),
    "hard_sigmoid_keras2": ("hard_sigmoid_variant_swapped", "swapped_gates"),
    "forget_bias": ("forget_bias_dropped",),
    "recurrent_bias": ("recurrent_bias_dropped",),
    "activation_relu": ("activation_to_tanh",),
    "activation_linear": ("activation_to_tanh",),
    "dtype_float64": ("float32_rounding",),
    "dtype_float16": ("swapped_gates",),
    "dtype_bfloat16": ("swapped_gates",),
    "long_sequence": ("drift",),
    "option_combinations": ("swapped_gates",),
    "gradients": ("gradient_blocks_swapped",),
    "cifg": ("coupling_dropped", "coupling_reversed"),
    "input_forget": ("coupling_dropped", "coupling_reversed"),
    "activation_clip": ("activation_clip_as_gate_clip",),
    "layer_norm": ("layer_norm_gates_swapped",),
    "projection_bias": ("projection_bias_dropped",),
    "onnx_activations": ("activation_params_default", "cell_activation_dropped"),
    "backward_activations": ("backward_activations_ignored",),
    "scale": ("swapped_gates",) + SIZE_MUTATIONS,
}

#: Mutations that need the inner adapter to express something extra (else they are not applied):
#: the mutated case must be one the backend can run.
NEEDS = {
    "cell_clip_as_gate_clip": lambda caps: "gate_clip" in caps.features,
    "activation_clip_as_gate_clip": lambda caps: "gate_clip" in caps.features,
    "coupling_reversed": lambda caps: {"cifg", "input_forget"} <= caps.features,
    "cell_activation_dropped": lambda caps: "cell_activation" in caps.features,
    # Only a parameterised activation has parameters to drop.
    "activation_params_default": lambda caps: any(a.endswith("(*)") for a in caps.recurrent_activations
                                                  + caps.activations),
    "hard_sigmoid_variant_swapped": lambda caps: {"hard_sigmoid", "hard_sigmoid_keras2"}
    <= set(caps.recurrent_activations),
}


class Mutant(Adapter):
    """``inner`` with one deliberate bug named by ``mutation`` (see MUTATIONS)."""

    def __init__(self, inner: Adapter, mutation: str):
        if mutation not in MUTATIONS:
            raise ValueError(f"mutation: expected one of {sorted(MUTATIONS)}, got {mutation!r}")
        # The mutated case reaches the inner adapter through the gate too: a mutation it cannot
        # express is Unsupported, as for the adapter itself.
        self.inner = gated(inner)
        self.mutation = mutation
        self.name = f"{inner.name}+{mutation}"
        self.framework = inner.framework
        self.api = f"{inner.api} (mutant: {mutation})"
        self.native_gate_order = inner.native_gate_order
        self.capabilities = inner.capabilities

    def version(self) -> str:
        return self.inner.version()

    def size_plan(self, plan):
        return self.inner.size_plan(plan)

    def _case(self, case: Case) -> Case:
        fn = CASE_MUTATIONS.get(self.mutation)
        return fn(case) if fn else case

    def _out(self, case: Case, out: Output) -> Output:
        fn = OUTPUT_MUTATIONS.get(self.mutation)
        return fn(case, out) if fn else out

    def run(self, case: Case) -> Output:
        return self._out(case, self.inner.run(self._case(case)))

    def run_steps(self, case: Case) -> Output:
        if self.mutation == "steps_state_not_fed":
            outputs, final = [], None
            for t in range(case.steps):
                out = self.inner.run(case.replace(x=case.x[:, t:t + 1], initial_state=None))
                outputs.append(out.y)
                final = out.final
            return Output(np.concatenate(outputs, axis=1), final)
        return self._out(case, self.inner.run_steps(self._case(case)))

    def run_stream(self, case: Case, chunks):
        if self.mutation == "stream_state_dropped":
            outputs, start = [], 0
            for k, n in enumerate(chunks):
                state = case.initial_state if k == 0 else None
                outputs.append(self.inner.run(case.replace(x=case.x[:, start:start + n], initial_state=state)))
                start += n
            after = self.inner.run(case.replace(x=case.x[:, :chunks[0]], initial_state=None))
            return outputs, after
        if self.mutation == "stream_reset_ignored":
            outputs, _ = self.inner.run_stream(case, chunks)
            after = self.inner.run(case.replace(x=case.x[:, :chunks[0]], initial_state=outputs[-1].final))
            return outputs, after
        outputs, after = self.inner.run_stream(self._case(case), chunks)
        return [self._out(case, o) for o in outputs], after

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        grads = dict(self.inner.gradients(self._case(case), dy, dh, dc))
        if self.mutation == "gradient_blocks_swapped":
            order = case.spec.gate_order
            grads["kernel"] = permute_gates(grads["kernel"], order, _swap_letters(order, "f", "g"))
        return grads

    def close(self) -> None:
        pass


def applicable(adapter: Adapter, mutation: str) -> bool:
    need = NEEDS.get(mutation)
    return need is None or need(adapter.capabilities)
