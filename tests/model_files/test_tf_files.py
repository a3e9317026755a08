"""Files written by TensorFlow 2.21 and tf_keras (Keras 2), in `tox -e tf`: a TF1 Saver checkpoint of
a compat.v1 MultiRNNCell of LSTMCells, a Keras 2 object-based checkpoint (save_weights in TF
format) and a Keras 2 .h5 with hard_sigmoid; each read, and the reference on the weights read
agrees with what TensorFlow computed (the TF1 cell's run-time forget bias of 1 included)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow", reason="TensorFlow checkpoints need TensorFlow: tox -e tf")
tf_keras = pytest.importorskip("tf_keras", reason="tox -e tf installs tf_keras")

from conformance.cli import main  # noqa: E402
from conformance.tools.model_files import read_models  # noqa: E402
from reference import lstm_stack  # noqa: E402

D, H, B, T = 3, 4, 2, 5
TOL = dict(rtol=1e-5, atol=1e-5)


def _x(seed=0):
    return np.random.default_rng(seed).normal(size=(B, T, D)).astype(np.float32)


def _reference(model, x):
    layers = [tuple(d) if len(d) == 2 else d[0] for d in model.layers]
    return lstm_stack(x.astype(np.float64), layers, model.spec())[0]


def test_tf1_saver_checkpoint(tmp_path, capsys):
    x = _x()
    graph = tf.Graph()
    with graph.as_default():
        inputs = tf.compat.v1.placeholder(tf.float32, [None, None, D])
        cells = [tf.compat.v1.nn.rnn_cell.LSTMCell(H) for _ in range(2)]
        y, _ = tf.compat.v1.nn.dynamic_rnn(tf.compat.v1.nn.rnn_cell.MultiRNNCell(cells), inputs, dtype=tf.float32)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for k, v in enumerate(tf.compat.v1.global_variables()):
                session.run(v.assign(np.random.default_rng(k).normal(scale=0.6, size=v.shape).astype(np.float32)))
            expected = session.run(y, {inputs: x})
            tf.compat.v1.train.Saver().save(session, str(tmp_path / "model.ckpt"))
    assert main(["convert", "--list", str(tmp_path / "model.ckpt")]) == 0
    out = capsys.readouterr().out
    assert "[0] rnn: tf1, 2 layers, unidirectional, input size 3, hidden size 4, float32" in out
    assert "forget_bias=1 at run time" in out
    _, (model,) = read_models(tmp_path / "model.ckpt.index")
    np.testing.assert_allclose(_reference(model, x), expected, **TOL)
    # to Keras names: the run-time forget bias is folded into the bias
    assert main(["convert", "--to", "keras", str(tmp_path / "model.ckpt"), str(tmp_path / "k.npz")]) == 0
    assert "added 1 to the forget block of the bias" in capsys.readouterr().out
    _, (keras_model,) = read_models(tmp_path / "k.npz", framework="keras")
    np.testing.assert_allclose(_reference(keras_model, x), expected, **TOL)


def _keras2_model(**options):
    model = tf_keras.Sequential([tf_keras.Input((None, D)),
                                 tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(H, return_sequences=True,
                                                                                    **options))])
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(scale=0.6, size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def test_keras2_object_checkpoint(tmp_path, capsys):
    model = _keras2_model()
    x = _x(2)
    model.save_weights(str(tmp_path / "weights"), save_format="tf")
    assert main(["convert", "--list", str(tmp_path / "weights")]) == 0
    assert "keras, 1 layer, bidirectional, input size 3, hidden size 4" in capsys.readouterr().out
    _, (read,) = read_models(tmp_path / "weights")
    np.testing.assert_allclose(_reference(read, x), model.predict(x, verbose=0), **TOL)


def test_keras2_h5_with_hard_sigmoid(tmp_path, capsys):
    """Keras 2's hard_sigmoid is 0.2 x + 0.5 (not Keras 3's x / 6 + 1/2): read as such."""
    model = _keras2_model(recurrent_activation="hard_sigmoid")
    x = _x(3)
    model.save(str(tmp_path / "model.h5"))
    assert main(["convert", "--list", str(tmp_path / "model.h5")]) == 0
    out = capsys.readouterr().out
    assert "recurrent 'hard_sigmoid' (hard_sigmoid_keras2)" in out and "Keras 2" in out
    _, (read,) = read_models(tmp_path / "model.h5")
    assert read.recurrent_activation == "hard_sigmoid_keras2"
    np.testing.assert_allclose(_reference(read, x), model.predict(x, verbose=0), **TOL)
    assert main(["convert", "--to", "torch", str(tmp_path / "model.h5"), str(tmp_path / "t.npz")]) == 3
    assert "hard_sigmoid_keras2" in capsys.readouterr().out
