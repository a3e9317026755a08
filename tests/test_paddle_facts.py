"""Facts about PaddlePaddle's LSTM, established with paddlepaddle 3.3.1 (CPU) and recorded in
docs/frameworks/paddle.md.  Run by `tox -e paddle`; skipped where paddle is not installed.  A
failure here means a Paddle release changed one of them: update the documentation, the adapter
(adapters/paddle_adapter.py) and conformance/harness/known_issues.py."""

from __future__ import annotations

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")
paddle.set_device("cpu")


def _ones(layer, value=0.5):
    for p in layer.parameters():
        p.set_value(paddle.full(p.shape, value, dtype=p.dtype))
    return layer


def test_proj_size_binds_the_flat_names_to_the_wrong_parameters():
    """RNNBase.__init__ zips four names per cell with the cells' parameters, five per cell with
    proj_size (weight_ho): every flat name after the first cell's four is off by one, in
    attributes and state_dict alike (Paddle issue #70245)."""
    lstm = paddle.nn.LSTM(3, 4, num_layers=2, direction="bidirect", proj_size=2)
    assert lstm.weight_ih_l0_reverse is lstm[0].cell_fw.weight_ho
    assert list(lstm.weight_ih_l0_reverse.shape) == [4, 2]
    assert lstm.weight_ih_l0_reverse is not lstm[0].cell_bw.weight_ih
    assert "weight_ih_l0_reverse" in lstm.state_dict() and "0.cell_bw.weight_ih" in lstm.state_dict()
    plain = paddle.nn.LSTM(3, 4, num_layers=2, direction="bidirect")
    assert plain.weight_ih_l0_reverse is plain[0].cell_bw.weight_ih


def test_lstmcell_with_proj_size_cannot_start_from_its_own_zero_state():
    """LSTMCell.state_shape is ((hidden_size,), (proj_size,)): h and c swapped, so the zero state
    it makes for itself has h of width H where weight_hh expects P."""
    cell = paddle.nn.LSTMCell(3, 4, proj_size=2)
    assert cell.state_shape == ((4,), (2,))
    with pytest.raises(ValueError, match="matmul"):
        cell(paddle.ones([2, 3]))
    h, c = paddle.zeros([2, 2]), paddle.zeros([2, 4])
    y, (h1, c1) = cell(paddle.ones([2, 3]), (h, c))
    assert list(y.shape) == [2, 2] and list(c1.shape) == [2, 4]


def _padded_output(proj_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch of one sequence of length 1 in 3 steps: (outputs at the padded steps, the one-step
    output of the cell from the state after step 0 on the padding input of step 1)."""
    lstm = _ones(paddle.nn.LSTM(2, 3, proj_size=proj_size), 0.3)
    x = paddle.to_tensor(np.array([[[1.0, -1.0], [2.0, 0.5], [-3.0, 1.0]]], np.float32))
    y, (h, c) = lstm(x, None, paddle.to_tensor(np.array([1], np.int64)))
    cell = lstm[0].cell
    _, (h0, c0) = cell(x[:, 0], (paddle.zeros([1, proj_size or 3]), paddle.zeros([1, 3])))
    step, _ = cell(x[:, 1], (h0, c0))
    return y.numpy()[0, 1:], step.numpy()[0]


def test_padded_outputs_are_zeros_without_proj_size_and_a_cell_step_with_it():
    """The fused rnn kernel (no proj_size) outputs zeros past a sequence's length; the Python loop
    (_rnn_dynamic_graph, taken with proj_size) outputs the cell's output computed from the held
    state on the padding input (a known issue of the "paddle" backend)."""
    padded, _ = _padded_output(0)
    np.testing.assert_array_equal(padded, 0.0)
    padded, step = _padded_output(2)
    assert np.abs(padded).max() > 0.1
    np.testing.assert_allclose(padded[0], step, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_no_half_precision_lstm_on_the_cpu(dtype):
    previous = paddle.get_default_dtype()
    paddle.set_default_dtype(dtype)
    try:
        with pytest.raises(RuntimeError, match="coalesce_tensor"):
            paddle.nn.LSTM(2, 3)
        cell = paddle.nn.LSTMCell(2, 3)
    finally:
        paddle.set_default_dtype(previous)
    with pytest.raises(RuntimeError, match="matmul"):
        cell(paddle.ones([1, 2], dtype=dtype))


def test_gate_order_is_ifgo_with_two_biases():
    """LSTMCell.forward splits the gates as i, f, g, o; with everything zero but the forget block
    of bias_hh, c_1 = sigmoid(b_f) * c_0."""
    cell = _ones(paddle.nn.LSTMCell(1, 1), 0.0)
    cell.bias_hh.set_value(paddle.to_tensor(np.array([0.0, 2.0, 0.0, 0.0], np.float32)))
    _, (_, c) = cell(paddle.zeros([1, 1]), (paddle.zeros([1, 1]), paddle.ones([1, 1])))
    np.testing.assert_allclose(c.numpy(), 1 / (1 + np.exp(-2.0)), rtol=1e-6)
