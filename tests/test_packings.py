"""Every entry of adapters.packings.PACKINGS reads back exactly what it writes (names, orientation,
gate order, the optional arrays it holds), and refuses a name it does not know."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.packings import PACKINGS
from reference import LSTMParams


def _params(packing, rng) -> LSTMParams:
    d, h, p = 2, 3, 2
    out = h if "projection" not in packing.holds else p
    arrays = {"kernel": rng.normal(size=(d, 4 * h)), "recurrent_kernel": rng.normal(size=(out, 4 * h)),
              "bias": rng.normal(size=4 * h)}
    if "recurrent_bias" in packing.holds:
        arrays["recurrent_bias"] = rng.normal(size=4 * h)
    if "peephole" in packing.holds:
        arrays["peephole"] = rng.normal(size=(3, h))
    if "projection" in packing.holds:
        arrays["projection"] = rng.normal(size=(h, p))
    return LSTMParams(**arrays)


@pytest.mark.parametrize("name", sorted(PACKINGS))
def test_round_trip_is_exact(name):
    packing = PACKINGS[name]
    params = _params(packing, np.random.default_rng(len(name)))
    back = packing.from_native(packing.to_native(params, "ifgo"), "ifgo")
    for field, value in params.arrays().items():
        np.testing.assert_array_equal(getattr(back, field), value, err_msg=f"{name}: {field}")


@pytest.mark.parametrize("name", sorted(PACKINGS))
def test_gradients_come_back_for_every_array(name):
    """Packing.gradients maps native arrays back field by field (the adapters' gradient path)."""
    packing = PACKINGS[name]
    params = _params(packing, np.random.default_rng(1))
    grads = packing.gradients(packing.to_native(params, "ifgo"), params, "ifgo")
    for field, value in params.arrays().items():
        np.testing.assert_array_equal(grads[field], value, err_msg=f"{name}: {field}")


@pytest.mark.parametrize("name", sorted(PACKINGS))
def test_unknown_names_are_refused(name):
    packing = PACKINGS[name]
    arrays = packing.to_native(_params(packing, np.random.default_rng(2)), "ifgo")
    arrays["no_such_array"] = np.zeros(1)
    with pytest.raises(ValueError, match="no_such_array"):
        packing.from_native(arrays, "ifgo")
