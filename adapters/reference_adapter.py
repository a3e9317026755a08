"""The reference itself as a backend: every capability, float64 arithmetic.

It is what the suite's own tests run (``tox -e reference``) and the base of the deliberately
broken variants in ``conformance.mutants`` that prove each property can fail.
"""

from __future__ import annotations


from reference import lstm_forward, lstm_stack
from reference.activations import EVERY_ACTIVATION, EVERY_RECURRENT

from .base import FEATURES, Adapter, Capabilities, Case, Output


def reference_output(case: Case, *, reverse_time_order: str = "aligned") -> Output:
    """What the reference computes for ``case`` (the expected value of every property)."""
    if case.direction == "bidirectional" or len(case.layers) > 1:
        layers = [tuple(dirs) if case.direction == "bidirectional" else dirs[0] for dirs in case.layers]
        y, finals = lstm_stack(case.x, layers, case.spec, case.initial_state, lengths=case.lengths)
        return Output(y, list(finals))
    state = None if case.initial_state is None else case.initial_state[0]
    y, final = lstm_forward(case.x, case.params, case.spec, state, lengths=case.lengths,
                            reverse=case.direction == "reverse", time_order=reverse_time_order)
    return Output(y, [final])


class ReferenceAdapter(Adapter):
    name = "reference"
    framework = "numpy"
    api = "reference.lstm_forward"
    native_gate_order = "ifgo"
    bias_convention = "bias and optional recurrent_bias"
    capabilities = Capabilities(
        dtypes=("float32", "float64", "float16", "bfloat16"),
        recurrent_activations=EVERY_RECURRENT,
        activations=EVERY_ACTIVATION,
        features=frozenset(FEATURES) - {"step", "stateful"},
        length_semantics="zeros",
        reverse_time_order="aligned",
        max_layers=3,
    )

    def run(self, case: Case) -> Output:
        return reference_output(case, reverse_time_order=self.capabilities.reverse_time_order)

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        from reference.backward import lstm_backward

        state = None if case.initial_state is None else case.initial_state[0]
        return lstm_backward(case.x, case.params, case.spec, state, dy=dy, dh_T=dh, dc_T=dc,
                             lengths=case.lengths, reverse=case.direction == "reverse",
                             time_order=self.capabilities.reverse_time_order)


