"""Facts about Keras 3's LSTM on the backend this process runs (KERAS_BACKEND), established with
keras 3.15.1 on tensorflow-cpu 2.21.0, jax 0.10.2 and torch 2.13.0 and recorded in
docs/frameworks/keras3.md.  Run by `tox -e keras-tf`, `keras-jax` and `keras-torch`; skipped
where keras is not installed.  A failure here means a Keras release changed one of them: update
the documentation, the adapter (adapters/keras3_adapter.py) and conformance/harness/known_issues.py."""

from __future__ import annotations

import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")
BACKEND = keras.backend.backend()
if BACKEND == "jax":
    import jax

    jax.config.update("jax_enable_x64", True)
ops = keras.ops


def _np(tensor) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(tensor), dtype=np.float64)


def _ones_lstm(units=2, **kwargs):
    return keras.layers.LSTM(units, kernel_initializer="ones", recurrent_initializer="ones",
                             bias_initializer="zeros", unit_forget_bias=False, **kwargs)


def test_hard_sigmoid_is_x_over_6_plus_half():
    x = np.array([-4.0, -3.0, -1.5, 0.0, 1.5, 3.0, 4.0], dtype="float32")
    got = _np(keras.activations.hard_sigmoid(x))
    np.testing.assert_allclose(got, np.clip(x / 6 + 0.5, 0, 1), atol=1e-7)  # reference "hard_sigmoid"
    assert not np.allclose(got, np.clip(0.2 * x + 0.5, 0, 1))  # not Keras 2's "hard_sigmoid_keras2"


def test_unit_forget_bias_only_initialises_the_bias():
    layer = keras.layers.LSTM(2, unit_forget_bias=True)
    layer.build((None, None, 3))
    np.testing.assert_array_equal(_np(layer.cell.bias), [0, 0, 1, 1, 0, 0, 0, 0])  # i, f, c, o


def test_reset_states_takes_no_states_and_states_are_untracked():
    layer = keras.layers.LSTM(2, stateful=True)
    layer.build((1, None, 3))
    with pytest.raises(TypeError):
        layer.reset_states(states=[np.ones((1, 2)), np.ones((1, 2))])
    assert not any(v is s for v in layer.non_trainable_variables for s in layer.states)
    layer.states[0].assign(np.ones((1, 2), "float32"))  # the Keras 3 way to seed the state
    layer.reset_state()
    np.testing.assert_array_equal(_np(layer.states[0]), 0.0)


def _masked(go_backwards: bool, unroll: bool = False):
    x = np.random.default_rng(1).normal(size=(1, 4, 3)).astype("float32")
    mask = np.array([[True, True, False, False]])
    h0 = np.full((1, 2), 0.7, "float32")
    c0 = np.full((1, 2), 0.3, "float32")
    layer = _ones_lstm(return_sequences=True, go_backwards=go_backwards, unroll=unroll)
    return _np(layer(x, mask=mask, initial_state=[h0, c0]))[0]


def test_masked_steps_repeat_the_previous_output():
    y = _masked(go_backwards=False)
    np.testing.assert_array_equal(y[2], y[1])
    np.testing.assert_array_equal(y[3], y[1])


def test_go_backwards_outputs_before_the_first_valid_step():
    """Processed order: the two padded steps come first.  tensorflow and torch output zeros there
    (reference "repeat"); JAX outputs h0 (its scan outputs states[0] at a masked step)."""
    y = _masked(go_backwards=True)
    expected = 0.7 if BACKEND == "jax" else 0.0
    np.testing.assert_allclose(y[:2], expected, atol=1e-7)
    assert np.all(np.abs(y[2:]) > 1e-3)


def test_bidirectional_outputs_zeros_at_masked_steps():
    x = np.random.default_rng(1).normal(size=(1, 4, 3)).astype("float32")
    mask = np.array([[True, True, False, False]])
    y = _np(keras.layers.Bidirectional(_ones_lstm(1, return_sequences=True))(x, mask=mask))[0]
    np.testing.assert_array_equal(y[2:], 0.0)  # a plain LSTM repeats y[1] there
    assert np.all(np.abs(y[:2]) > 1e-3)


def test_tanh_of_float64():
    """keras.ops.tanh casts to result_type(x.dtype, float), which maps float64 to float32 on
    every backend but tensorflow; torch's tanh does not cast."""
    x = ops.convert_to_tensor(np.array([0.3]), dtype="float64")
    y = keras.ops.tanh(x)
    if BACKEND == "jax":
        assert keras.backend.standardize_dtype(y.dtype) == "float32"
        assert abs(_np(y)[0] - np.tanh(0.3)) > 1e-9
    else:
        assert keras.backend.standardize_dtype(y.dtype) == "float64"
        assert abs(_np(y)[0] - np.tanh(0.3)) < 1e-15


def test_predict_carries_the_state_of_a_stateful_lstm():
    """TF and torch: model.predict carries a stateful layer's state from call to call.  JAX: it
    does not; layer.states are not among the model's non-trainable variables, so the jitted
    predict step reads them as constants and drops the layer's assignments."""
    model = keras.Sequential([keras.Input(batch_shape=(1, 2, 3)), keras.layers.LSTM(2, stateful=True)])
    x = np.ones((1, 2, 3), "float32")
    first, second = model.predict(x, verbose=0), model.predict(x, verbose=0)
    state = _np(model.layers[0].states[0])
    if BACKEND == "jax":
        np.testing.assert_array_equal(first, second)
        np.testing.assert_array_equal(state, 0.0)
    else:
        assert not np.allclose(first, second)
        np.testing.assert_allclose(state, second, rtol=1e-6)
    model.layers[0].reset_state()
    eager_first, eager_second = _np(model(x)), _np(model(x))  # eager calls carry it everywhere
    assert not np.allclose(eager_first, eager_second)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_default_orthogonal_initializer_in_half_precision(dtype):
    """The orthogonal recurrent_initializer (a QR decomposition) cannot build a half-precision
    layer on CPU: TF bfloat16, JAX and torch float16 and bfloat16.  glorot_uniform can."""
    x = np.ones((1, 3, 2), "float32")
    fails = BACKEND in ("jax", "torch") or dtype == "bfloat16"
    if fails:
        if BACKEND == "tensorflow":
            import tensorflow as tf

            error, message = tf.errors.InvalidArgumentError, "bfloat16 is not in the list of allowed"
        else:
            error, message = NotImplementedError, "Unsupported dtype|geqrf_cpu"
        with pytest.raises(error, match=message):
            keras.layers.LSTM(2, dtype=dtype)(x)
    else:
        keras.layers.LSTM(2, dtype=dtype)(x)
    keras.layers.LSTM(2, dtype=dtype, recurrent_initializer="glorot_uniform")(x)


def test_backend_matches_the_environment():
    expected = os.environ.get("KERAS_BACKEND")
    if expected:
        assert BACKEND == expected


def test_unroll_with_a_mask_and_go_backwards():
    """``unroll=True`` takes the Python-loop branch of backend.rnn.  JAX: that branch starts the
    previous output at zeros (conforming), unlike its lax.scan branch (h0).  torch: the branch
    crashes, ``torch.flip(mask_list, dims=mask_list.shape)`` on the tuple from torch.unbind
    (keras/src/backend/torch/rnn.py).  tensorflow: identical to the scan."""
    if BACKEND == "torch":
        with pytest.raises(AttributeError, match="'tuple' object has no attribute 'shape'"):
            _masked(go_backwards=True, unroll=True)
        return
    y = _masked(go_backwards=True, unroll=True)
    np.testing.assert_array_equal(y[:2], 0.0)
    np.testing.assert_allclose(y[2:], _masked(go_backwards=True)[2:], rtol=1e-5)
