"""The native-function contract: loading MODULE:ATTR and path.py:ATTR, and the validation of what a
callable returns (nothing the contract forbids is silently accepted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import native_mutants as nm
from adapters.callable_adapter import Convention, NativeError, call_native, pack, reference_callable
from conformance.tools.native import load_callable
from reference import LSTMParams, LSTMSpec, lstm_forward

ROOT = Path(__file__).resolve().parents[1]


def _arrays(d=3, h=2, b=2, t=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(b, t, d)), rng.normal(size=(b, h)), rng.normal(size=(b, h)),
            rng.normal(size=(d, 4 * h)), rng.normal(size=(h, 4 * h)), rng.normal(size=4 * h))


def test_load_module_path_and_dotted(tmp_path, monkeypatch):
    assert load_callable(f"{ROOT / 'examples' / 'numpy_lstm.py'}:tf_lstm").__name__ == "tf_lstm"
    monkeypatch.chdir(ROOT)
    assert load_callable("examples.numpy_lstm:cs231n_lstm").__name__ == "cs231n_lstm"
    (tmp_path / "mine.py").write_text(
        "class Model:\n    @staticmethod\n    def lstm(*a):\n        return a\n")
    assert load_callable(f"{tmp_path / 'mine.py'}:Model.lstm")(1) == (1,)


@pytest.mark.parametrize("target, text", [
    ("no_colon", "expected MODULE:ATTRIBUTE"),
    ("examples/missing.py:f", "no such file"),
    ("examples/numpy_lstm.py:nothing", "has no attribute 'nothing'"),
    ("examples/numpy_lstm.py:np", "is a module, expected a callable"),
    ("json:nothing_here", "has no attribute"),
])
def test_load_errors(target, text, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(ValueError, match=text):
        load_callable(target)


def test_import_error_is_reported(tmp_path):
    (tmp_path / "broken.py").write_text("raise ImportError('needs torch')\n")
    with pytest.raises(ValueError, match="importing .* failed: ImportError: needs torch"):
        load_callable(f"{tmp_path / 'broken.py'}:f")


class _Tensorish:
    """Like a torch tensor that requires grad: np.asarray fails."""

    def detach(self):
        return self

    def __array__(self, *args, **kwargs):
        raise RuntimeError("Can't call numpy() on Tensor that requires grad")


@pytest.mark.parametrize("fn, text", [
    (lambda *a: (_ for _ in ()).throw(KeyError("boom")), "the callable raised KeyError: 'boom'"),
    (lambda *a: np.zeros(3), "returned a ndarray"),
    (lambda *a: (1, 2), "returned 2 values"),
    (lambda x, h, c, *w: (x[..., :2], h, c), None),
    (lambda x, h, c, *w: (x, h, c), "y: expected shape (2, 4, 2), got (2, 4, 3)"),
    (lambda x, h, c, *w: (x[..., :2], h[:, :1], c), "h_T: expected shape (2, 2), got (2, 1)"),
    (lambda x, h, c, *w: (x[..., :2], h, "c"), "c_T: expected a float array"),
    (lambda x, h, c, *w: (_Tensorish(), h, c), "detach it / move it to the CPU"),
])
def test_results_are_validated(fn, text):
    if text is None:
        y, h, c = call_native(fn, *_arrays())
        assert y.dtype == np.float64 and y.shape == (2, 4, 2)
        return
    with pytest.raises(NativeError) as exc:
        call_native(fn, *_arrays())
    assert text in str(exc.value)


def test_inputs_are_copies_in_the_dtype():
    arrays = _arrays()
    kept = [a.copy() for a in arrays]

    def vandal(x, h0, c0, kernel, recurrent_kernel, bias):
        assert x.dtype == np.float32
        for a in (x, h0, c0, kernel, recurrent_kernel, bias):
            a[...] = 0
        return np.zeros(x.shape[:2] + (2,)), h0, c0

    call_native(vandal, *arrays, dtype="float32")
    assert all(np.array_equal(a, b) for a, b in zip(arrays, kept))


def test_convention_validation():
    assert Convention("tf", "(4h, d)", "4h,h").gate_order == "igfo"
    assert Convention("cntk").kernel_layout == "D,4H"
    for kwargs, text in [(dict(gate_order="ifgx"), "gate_order"),
                         (dict(kernel_layout="H,4H"), "kernel_layout"),
                         (dict(recurrent_layout="D,4H"), "recurrent_layout"),
                         (dict(forget_bias=float("nan")), "forget_bias"),
                         (dict(recurrent_activation="tanh"), "recurrent_activation")]:
        with pytest.raises(ValueError, match=text):
            Convention(**kwargs)


@pytest.mark.parametrize("conv", [Convention("onnx", "4H,D", "4H,H", 0.0), Convention("tf1", forget_bias=1.0),
                                  Convention("fogi", "4H,D", "H,4H", -0.7, "hard_sigmoid")])
def test_pack_and_reference_callable_agree_with_the_reference(conv):
    """pack() folds a second bias and the difference of forget biases; the reference callable of the
    convention on the packed arrays computes the reference of the original spec."""
    x, h0, c0, kernel, recurrent, bias = _arrays(seed=3)
    params = LSTMParams(kernel, recurrent, bias, recurrent_bias=bias[::-1].copy())
    spec = LSTMSpec(gate_order="ifgo", forget_bias=0.5, recurrent_activation=conv.recurrent_activation)
    expected, (eh, ec) = lstm_forward(x, params, spec, (h0, c0))
    native = pack(params, "ifgo", conv, spec_forget_bias=0.5)
    y, h, c = call_native(reference_callable(conv), x, h0, c0, *native, dtype="float64")
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c, ec, rtol=1e-12, atol=1e-12)
    assert nm.good  # the mutants module is importable from the tests
