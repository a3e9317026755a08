"""Facts about MindSpore's LSTM on the CPU, established with mindspore 2.10.0 and recorded in
docs/frameworks/mindspore.md.  Run by `tox -e mindspore`; skipped where mindspore is not
installed.  A failure here means a MindSpore release changed one of them: update the
documentation, the adapter (adapters/mindspore_adapter.py) and
conformance/harness/known_issues.py."""

from __future__ import annotations

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
ms.set_device("CPU")
nn, ops, Tensor = ms.nn, ms.ops, ms.Tensor


def test_cpu_tanh_float32_is_an_approximation_that_exceeds_one():
    """ops.Tanh (float32, CPU) is accurate to ~1e-7 for |x| < 2, off by up to 1e-4 for |x| in
    [4, 5.5] (above 1 at x = 5) and exactly 1 beyond (mindspore-ai/mindspore#348)."""
    x = np.linspace(-10, 10, 20001).astype(np.float32)
    err = np.abs(ops.tanh(Tensor(x)).asnumpy().astype(np.float64) - np.tanh(x.astype(np.float64)))
    assert err[np.abs(x) < 2].max() < 1e-6
    assert err.max() > 5e-5
    assert ops.tanh(Tensor(np.array([5.0], np.float32))).asnumpy()[0] > 1.0
    assert ops.tanh(Tensor(np.array([6.0], np.float32))).asnumpy()[0] == 1.0
    x64 = x.astype(np.float64)
    assert np.abs(ops.tanh(Tensor(x64)).asnumpy() - np.tanh(x64)).max() < 1e-15


def _lstm(dtype=ms.float32):
    lstm = nn.LSTM(2, 3, batch_first=True, dtype=dtype)
    rng = np.random.default_rng(0)
    for p in lstm.get_parameters():
        p.set_data(Tensor(rng.normal(size=p.shape).astype(ms.dtype_to_nptype(dtype))))
    return lstm


def test_float64_runs_only_without_a_state_and_then_in_float32_on_the_fused_path():
    x = Tensor(np.random.default_rng(1).normal(size=(2, 4, 2)))
    lstm = _lstm(ms.float64)
    state = (Tensor(np.zeros((1, 2, 3))), Tensor(np.zeros((1, 2, 3))))
    with pytest.raises(TypeError, match="Float32, Float16"):
        lstm(x, state)
    fused, _ = lstm(x)  # no seq_length: ops.LSTM
    looped, _ = lstm(x, None, Tensor(np.array([4, 4])))  # seq_length: the _lstm_cell loop, float64
    assert fused.dtype == ms.float64
    diff = np.abs(fused.asnumpy() - looped.asnumpy()).max()
    assert 1e-9 < diff < 1e-5  # float32 accuracy in a Float64 tensor


def _compiled_step(cell):
    def step(x, h, c):
        return cell(x, (h, c))

    return ms.jit(step)


def test_jit_compiled_closure_keeps_the_parameters_it_was_compiled_with():
    """In PyNative mode, a function compiled with mindspore.jit that calls a Cell does not see a
    later Parameter.set_data (the PyNative call does); an assignment made by compiled code is
    seen (the adapter loads weights that way, and never calls set_data on such a Cell)."""
    x, z = Tensor(np.ones((1, 2), np.float32)), Tensor(np.zeros((1, 2), np.float32))
    new = Tensor(np.full((8, 2), 3.0, np.float32))
    cell = nn.LSTMCell(2, 2)
    compiled = _compiled_step(cell)
    before = compiled(x, z, z)[0].asnumpy()
    cell.weight_ih.set_data(new)
    np.testing.assert_array_equal(compiled(x, z, z)[0].asnumpy(), before)
    assert not np.allclose(cell(x, (z, z))[0].asnumpy(), before)

    cell = nn.LSTMCell(2, 2)
    compiled = _compiled_step(cell)
    before = compiled(x, z, z)[0].asnumpy()

    def assign(w):
        ops.assign(cell.weight_ih, w)
        return w

    ms.jit(assign)(new)
    after = compiled(x, z, z)[0].asnumpy()
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, cell(x, (z, z))[0].asnumpy(), rtol=1e-6)


def test_names_and_gate_order_are_torchs():
    lstm = nn.LSTM(2, 3, num_layers=2, bidirectional=True)
    names = sorted(p.name for p in lstm.get_parameters())
    assert names == sorted(f"{w}_l{k}{s}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                           for k in (0, 1) for s in ("", "_reverse"))
    cell = nn.LSTMCell(1, 1)
    for p in cell.get_parameters():
        p.set_data(Tensor(np.zeros(p.shape, np.float32)))
    cell.bias_hh.set_data(Tensor(np.array([0.0, 2.0, 0.0, 0.0], np.float32)))  # i, f, g, o
    _, c = cell(Tensor(np.zeros((1, 1), np.float32)), (Tensor(np.zeros((1, 1), np.float32)),
                                                        Tensor(np.ones((1, 1), np.float32))))
    np.testing.assert_allclose(c.asnumpy(), 1 / (1 + np.exp(-2.0)), rtol=1e-6)


def test_no_bfloat16_lstm_kernel_on_the_cpu():
    lstm = nn.LSTM(2, 3, batch_first=True, dtype=ms.bfloat16)
    with pytest.raises(TypeError, match="LSTM"):
        lstm(Tensor(np.ones((1, 2, 2), np.float32)).astype(ms.bfloat16))
