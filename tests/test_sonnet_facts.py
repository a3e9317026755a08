"""Facts about dm-sonnet 2's LSTM on TensorFlow 2, established with dm-sonnet 2.0.2 and
tensorflow-cpu 2.21.0 and recorded in docs/frameworks/sonnet.md.  Run by `tox -e sonnet`;
skipped where sonnet is not installed.  A failure here means a release changed one of them:
update the documentation, the adapter (adapters/sonnet_adapter.py) and
conformance/harness/known_issues.py."""

from __future__ import annotations

import numpy as np
import pytest

snt = pytest.importorskip("sonnet")
import tensorflow as tf  # noqa: E402


def test_forget_bias_is_added_to_b_at_creation_and_not_at_run_time():
    """Sonnet 2 adds forget_bias to b's forget block once (LSTM._initialize); with every weight
    and b zero, c1 = sigmoid(0) * c0 = 0.5 (TF's LSTMCell and Haiku would give sigmoid(1))."""
    core = snt.LSTM(1, forget_bias=2.5)
    state = snt.LSTMState(tf.zeros([1, 1]), tf.ones([1, 1]))
    core(tf.zeros([1, 1]), state)
    np.testing.assert_array_equal(core.b.numpy(), [0.0, 2.5, 0.0, 0.0])  # i, f, g, o
    for v in core.variables:
        v.assign(tf.zeros_like(v))
    _, new = core(tf.zeros([1, 1]), state)
    np.testing.assert_allclose(new.cell.numpy(), 0.5, rtol=1e-6)


def test_dynamic_unroll_repeats_the_previous_output_past_a_length():
    core = snt.LSTM(2)
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 2, 3)), tf.float32)  # time-major
    y, _ = snt.dynamic_unroll(core, x, core.initial_state(2), sequence_length=tf.constant([2, 0]))
    y = y.numpy()
    np.testing.assert_array_equal(y[2:, 0], np.stack([y[1, 0], y[1, 0]]))  # repeated
    np.testing.assert_array_equal(y[:, 1], 0.0)  # length 0: zeros, the first previous output


def test_unrolled_lstm_is_blocklstmv2_on_the_cpu():
    """Float32 and half only, and its gradients disagree with snt.LSTM's on the same weights (the
    V1 gradient TensorFlow registers for BlockLSTMV2)."""
    with pytest.raises(tf.errors.InvalidArgumentError, match="BlockLSTMV2"):
        snt.UnrolledLSTM(2, dtype=tf.float64)(tf.zeros([3, 1, 2], tf.float64),
                                                snt.LSTMState(tf.zeros([1, 2], tf.float64), tf.zeros([1, 2], tf.float64)))
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(4, 2, 3)), tf.float32)
    state = snt.LSTMState(tf.zeros([2, 2]), tf.zeros([2, 2]))
    unrolled, core = snt.UnrolledLSTM(2), snt.LSTM(2)
    unrolled(x, state)
    core(x[0], state)
    for a, b in ((unrolled.input_to_hidden, core.input_to_hidden), (unrolled.hidden_to_hidden, core.hidden_to_hidden),
                 (unrolled.b, core.b)):
        value = rng.normal(size=a.shape).astype(np.float32)
        a.assign(value)
        b.assign(value)
    with tf.GradientTape(persistent=True) as tape:
        y_unrolled, _ = unrolled(x, state)
        y_core, _ = snt.dynamic_unroll(core, x, state)
        loss_unrolled, loss_core = tf.reduce_sum(y_unrolled), tf.reduce_sum(y_core)
    np.testing.assert_allclose(y_unrolled.numpy(), y_core.numpy(), rtol=1e-5, atol=1e-6)
    g_unrolled = tape.gradient(loss_unrolled, unrolled.input_to_hidden).numpy()
    g_core = tape.gradient(loss_core, core.input_to_hidden).numpy()
    assert np.abs(g_unrolled - g_core).max() > 1e-2
