"""Facts about dm-haiku's hk.LSTM and Equinox's eqx.nn.LSTMCell, established with dm-haiku
0.0.17, equinox 0.13.8 and jax 0.10.2 and recorded in docs/frameworks/haiku.md and
docs/frameworks/equinox.md.  Run by `tox -e haiku-equinox`; skipped where they are not
installed.  A failure here means a release changed one of them: update the documentation, the
adapters (adapters/haiku_adapter.py, adapters/equinox_adapter.py) and adapters/packings.py."""

from __future__ import annotations

import numpy as np
import pytest

hk = pytest.importorskip("haiku")
eqx = pytest.importorskip("equinox")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402


def _hk_step(w, b, x, h, c):
    step = hk.without_apply_rng(hk.transform(lambda x, s: hk.LSTM(w.shape[1] // 4)(x, s)))
    params = {"lstm/linear": {"w": jnp.asarray(w), "b": jnp.asarray(b)}}
    return step.apply(params, jnp.asarray(x), hk.LSTMState(jnp.asarray(h), jnp.asarray(c)))


def test_hk_lstm_adds_one_to_the_forget_gate_at_run_time_not_to_b():
    """All weights and biases zero, c0 = 1: c1 = sigmoid(0 + 1) * 1, not sigmoid(0) = 0.5.  The
    parameter b that init creates is zeros: nothing is added "after initialization" (the class
    docstring's words); the +1 is in __call__."""
    _, state = _hk_step(np.zeros((2, 4)), np.zeros(4), np.zeros((1, 1)), np.zeros((1, 1)), np.ones((1, 1)))
    np.testing.assert_allclose(np.asarray(state.cell), 1 / (1 + np.exp(-1.0)), rtol=1e-6)
    init = hk.transform(lambda x, s: hk.LSTM(3)(x, s)).init(
        jax.random.PRNGKey(0), jnp.zeros((1, 2)), hk.LSTMState(jnp.zeros((1, 3)), jnp.zeros((1, 3))))
    np.testing.assert_array_equal(np.asarray(init["lstm/linear"]["b"]), 0.0)
    assert init["lstm/linear"]["w"].shape == (2 + 3, 12)  # fused over concat([x, h])


def test_hk_lstm_gate_order_is_igfo():
    """A bias of 3 in the third block (f in i, g, f, o) with c0 = 1: c1 = sigmoid(3 + 1)."""
    b = np.zeros(4)
    b[2] = 3.0
    _, state = _hk_step(np.zeros((2, 4)), b, np.zeros((1, 1)), np.zeros((1, 1)), np.ones((1, 1)))
    np.testing.assert_allclose(np.asarray(state.cell), 1 / (1 + np.exp(-4.0)), rtol=1e-6)


def test_eqx_lstmcell_is_unbatched_ifgo_one_bias_column_vectors():
    cell = eqx.nn.LSTMCell(2, 1, key=jax.random.PRNGKey(0))
    assert cell.weight_ih.shape == (4, 2) and cell.weight_hh.shape == (4, 1) and cell.bias.shape == (4,)
    cell = eqx.tree_at(lambda m: (m.weight_ih, m.weight_hh, m.bias), cell,
                       (jnp.zeros((4, 2)), jnp.zeros((4, 1)), jnp.array([0.0, 2.0, 0.0, 0.0])))
    h, c = cell(jnp.zeros(2), (jnp.zeros(1), jnp.ones(1)))
    np.testing.assert_allclose(np.asarray(c), 1 / (1 + np.exp(-2.0)), rtol=1e-6)
    with pytest.raises(TypeError, match="dot_general"):
        cell(jnp.zeros((3, 2)), (jnp.zeros((3, 1)), jnp.zeros((3, 1))))  # no batch axis: vmap it
