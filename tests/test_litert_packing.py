"""The "litert" packing holds what LiteRT's fused LSTM ops take beyond the weights: layer-norm
coefficients per gate and a projection bias (no framework needed), and a packing that cannot hold
them refuses them instead of dropping them."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.packings import PACKINGS
from reference import LSTMParams
from reference.gates import permute_gates


def _params(order: str, hidden=3, inputs=2, proj=2) -> LSTMParams:
    rng = np.random.default_rng(5)
    return LSTMParams(kernel=rng.normal(size=(inputs, 4 * hidden)), recurrent_kernel=rng.normal(size=(proj, 4 * hidden)),
                      bias=rng.normal(size=4 * hidden), projection=rng.normal(size=(hidden, proj)),
                      projection_bias=rng.normal(size=proj), layer_norm=rng.normal(size=4 * hidden))


@pytest.mark.parametrize("order", ["ifgo", "onnx", "tf"])
def test_layer_norm_and_projection_bias_round_trip(order):
    params = _params(order)
    native = PACKINGS["litert"].to_native(params, order)
    ifgo = permute_gates(params.layer_norm, order, "ifgo")
    for k, gate in enumerate(("input", "forget", "cell", "output")):
        np.testing.assert_array_equal(native[f"{gate}_layer_norm_coefficients"], ifgo[3 * k:3 * k + 3])
    np.testing.assert_array_equal(native["projection_bias"], params.projection_bias)
    back = PACKINGS["litert"].from_native(native, order)
    for name, value in params.arrays().items():
        np.testing.assert_array_equal(getattr(back, name), value, err_msg=name)


def test_some_but_not_all_layer_norm_coefficients_are_refused():
    native = PACKINGS["litert"].to_native(_params("ifgo"), "ifgo")
    del native["cell_layer_norm_coefficients"]
    with pytest.raises(ValueError, match="layer-norm coefficients of all four gates or none"):
        PACKINGS["litert"].from_native(native, "ifgo")


@pytest.mark.parametrize("extra, what", [("layer_norm", "layer-norm coefficients"),
                                         ("projection_bias", "a projection bias")])
def test_a_packing_without_them_refuses_them(extra, what):
    params = _params("ifgo")
    arrays = {k: v for k, v in params.arrays().items() if k in ("kernel", "recurrent_kernel", "bias", "projection")}
    arrays[extra] = getattr(params, extra)
    with pytest.raises(ValueError, match=f"the weights have {what}, which torch's LSTM cannot hold "
                                         f"\\(frameworks with {what}: litert\\)"):
        PACKINGS["torch"].to_native(LSTMParams(**arrays), "ifgo")
