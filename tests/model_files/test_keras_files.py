"""Files written by Keras 3 (model.save("x.keras"), model.save_weights("x.weights.h5"), the legacy
model.save("x.h5")): listed with their conventions, converted to torch and ONNX and proven by
``port``; what another framework cannot compute (hard_sigmoid in torch, a reverse-only layer) is
refused; a .weights.h5 written here loads into the matching Keras model."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

if "keras" not in __import__("sys").modules:
    os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras 3 on torch: tox -e ports")
pytest.importorskip("torch", reason="tox -e ports installs torch")
pytest.importorskip("onnxruntime", reason="tox -e ports installs onnxruntime")

from conformance.cli import main  # noqa: E402

from . import runners  # noqa: E402

D, H, B, T = 3, 4, 2, 6
TOL = dict(rtol=1e-5, atol=1e-5)


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.6, size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _predict(model, x):
    return np.asarray(keras.ops.convert_to_numpy(model(x)))


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _randomize(runners.keras_model(D, H, 2, True), 0)
        model.save(folder / "stack.keras")
        model.save_weights(folder / "stack.weights.h5")
        model.save(folder / "stack.h5")  # the legacy HDF5 layout (layer_names / weight_names)
    return folder, model


@pytest.mark.parametrize("name", ["stack.keras", "stack.weights.h5", "stack.h5"])
def test_list_stacked_bidirectional(stacked, capsys, name):
    folder, _ = stacked
    assert main(["convert", "--list", str(folder / name)]) == 0
    out = capsys.readouterr().out
    assert "1 LSTM" in out and "2 layers, bidirectional, input size 3, hidden size 4, float32" in out
    assert "gate order i, f, c, o" in out and "unit_forget_bias only initialises" in out


@pytest.mark.parametrize("name", ["stack.keras", "stack.weights.h5", "stack.h5"])
def test_to_torch_and_onnx_run_like_keras(stacked, tmp_path, name):
    folder, model = stacked
    x = np.random.default_rng(3).normal(size=(B, T, D)).astype(np.float32)
    expected = _predict(model, x)
    assert main(["convert", "--to", "torch", str(folder / name), str(tmp_path / "s.safetensors")]) == 0
    y, _ = runners.torch_file(tmp_path / "s.safetensors", D, H, 2, True)(x)
    np.testing.assert_allclose(y, expected, **TOL)
    assert main(["convert", "--to", "onnx", str(folder / name), str(tmp_path / "s.onnx")]) == 0
    y, _ = runners.onnx_file(tmp_path / "s.onnx")(x)
    np.testing.assert_allclose(y, expected, **TOL)


def test_port_keras_to_torch(stacked, tmp_path, capsys):
    folder, _ = stacked
    code = main(["port", "--to", "torch", str(folder / "stack.keras"), str(tmp_path / "p.safetensors"),
                 "--examples", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "source: keras 3.15.1" in out and "target: torch 2.13.0" in out
    assert "target file vs reference" in out and "verdict: both sides conform and agree" in out


def test_weights_written_here_load_into_the_matching_model(stacked, tmp_path, capsys):
    folder, model = stacked
    out = tmp_path / "back.weights.h5"
    assert main(["convert", "--to", "keras", str(folder / "stack.keras"), str(out)]) == 0
    assert "loads into keras.Sequential([keras.Input((None, 3)), keras.layers.Bidirectional(" in capsys.readouterr().out
    x = np.random.default_rng(4).normal(size=(B, T, D)).astype(np.float32)
    y, _ = runners.keras_file(out, D, H, 2, True)(x)
    np.testing.assert_array_equal(y, _predict(model, x))


def test_conventions_and_refusals(tmp_path, capsys):
    """hard_sigmoid (Keras 3's) and go_backwards: listed; refused by torch; hard_sigmoid kept by ONNX."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _randomize(keras.Sequential([
            keras.Input((None, D)),
            keras.layers.LSTM(H, return_sequences=True, recurrent_activation="hard_sigmoid"),
            keras.layers.Dense(2),
            keras.layers.LSTM(H, return_sequences=True, go_backwards=True)]), 1)
        path = tmp_path / "mixed.keras"
        model.save(path)
    assert main(["convert", "--list", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 LSTMs" in out and "[0] layers/lstm" in out and "[1] layers/lstm_1" in out
    assert "recurrent 'hard_sigmoid' (hard_sigmoid)" in out and "go_backwards=True" in out
    assert main(["convert", "--to", "torch", "--layer", "layers/lstm", str(path), str(tmp_path / "t.safetensors")]) == 3
    assert "hard_sigmoid" in capsys.readouterr().out
    assert main(["convert", "--to", "torch", "--layer", "1", str(path), str(tmp_path / "t.safetensors")]) == 3
    assert "reverse-only" in capsys.readouterr().out
    assert main(["convert", "--to", "onnx", "--layer", "layers/lstm", str(path), str(tmp_path / "h.onnx")]) == 0
    x = np.random.default_rng(5).normal(size=(B, T, D)).astype(np.float32)
    first = keras.Sequential([keras.Input((None, D)), model.layers[0]])
    y, _ = runners.onnx_file(tmp_path / "h.onnx")(x)
    np.testing.assert_allclose(y, _predict(first, x), **TOL)
