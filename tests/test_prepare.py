"""``reference.lstm.prepare`` re-packs the gate blocks into WORK_ORDER with a fancy index for small
layers and with four block copies from ``_BLOCK_COPY_FROM`` units on (the copy dominated wide
forwards): both give exactly ``permute_gates``'s arrays, C-ordered, for every gate order."""

from __future__ import annotations

import numpy as np
import pytest

from reference import ALL_GATE_ORDERS, LSTMParams, LSTMSpec
from reference.gates import permute_gates
from reference.lstm import _BLOCK_COPY_FROM, WORK_ORDER, prepare


@pytest.mark.parametrize("hidden", [1, 5, _BLOCK_COPY_FROM - 1, _BLOCK_COPY_FROM, 33, 129])
def test_prepare_repacks_exactly_for_every_gate_order(hidden):
    rng = np.random.default_rng(hidden)
    params = LSTMParams(kernel=rng.normal(size=(3, 4 * hidden)), recurrent_kernel=rng.normal(size=(hidden, 4 * hidden)),
                        bias=rng.normal(size=4 * hidden))
    for order in ALL_GATE_ORDERS:
        prep = prepare(params, LSTMSpec(gate_order=order))
        for name in ("kernel", "recurrent_kernel"):
            got = getattr(prep, name)
            assert got.flags.c_contiguous, (order, name)
            assert np.array_equal(got, permute_gates(getattr(params, name), order, WORK_ORDER)), (order, name)
        assert np.array_equal(prep.bias, permute_gates(params.bias, order, WORK_ORDER)), order
