"""Unit-major (interleaved) packing: the 4H axis as (H, 4), each unit's four gates side by side, as
Chainer's F.lstm splits it.  The layout math (exact round trips, the definition element by element),
the packings table (Chainer, MXNet and its flat vector), detect, check and convert, each with the
gate-major / unit-major confusion as a deliberately broken variant that must be caught."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from adapters.callable_adapter import Convention, reference_callable
from adapters.packings import PACKINGS, mxnet_flat_params, mxnet_unflat_params
from conformance.cli import main
from conformance.tools import convert as cv
from conformance.tools.check import check
from conformance.tools.detect import detect
from conformance.tools.native import load_callable
from reference import ALL_GATE_ORDERS, LSTMParams, LSTMSpec, lstm_forward
from reference import layout
from reference.gates import GATE_ORDER_PRESETS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "numpy_lstm.py"
CHAINER = Convention("chainer", "4H,D", "4H,H", packing="unit-major")


def _rng(*key):
    return np.random.default_rng(abs(hash(repr(key))) % 2 ** 32)


def _params(rng, d=3, h=5, out=None):
    return LSTMParams(kernel=rng.normal(size=(d, 4 * h)), recurrent_kernel=rng.normal(size=(out or h, 4 * h)),
                      bias=rng.normal(size=4 * h))


# --- reference.layout ------------------------------------------------------------------------

def unit_major_by_definition(array, order):
    """Element u * 4 + k of the result is gate order[k] of unit u, read from a gate-major "ifgo"
    array (block k * H + u): the definition, written out with loops."""
    hidden = array.shape[-1] // 4
    out = np.empty_like(array)
    for u in range(hidden):
        for k, gate in enumerate(order):
            out[..., u * 4 + k] = array[..., "ifgo".index(gate) * hidden + u]
    return out


@pytest.mark.parametrize("hidden", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("order", ["ifgo", "gifo", "iofg", "ogfi"])
def test_unit_major_is_the_definition(hidden, order):
    array = np.arange(2 * 4 * hidden, dtype=np.float64).reshape(2, 4 * hidden)
    packed = layout.repack_gates(array, "ifgo", order, to_packing="unit-major")
    np.testing.assert_array_equal(packed, unit_major_by_definition(array, order))
    back = layout.repack_gates(packed, order, "ifgo", from_packing="unit-major")
    np.testing.assert_array_equal(back, array)


def test_every_order_and_packing_round_trips_exactly():
    rng = _rng("round")
    array = rng.normal(size=(3, 4 * 6)).astype(np.float32)
    for a, b in itertools.product(ALL_GATE_ORDERS, repeat=2):
        for pa, pb in itertools.product(layout.GATE_PACKINGS, repeat=2):
            there = layout.repack_gates(array, a, b, from_packing=pa, to_packing=pb)
            back = layout.repack_gates(there, b, a, from_packing=pb, to_packing=pa)
            assert back.dtype == array.dtype and np.array_equal(back, array), (a, b, pa, pb)


def test_any_axis():
    rng = _rng("axis")
    weight = rng.normal(size=(4 * 3, 5))  # PyTorch / Chainer orientation: the 4H axis first
    np.testing.assert_array_equal(layout.to_unit_major(weight, axis=0), layout.to_unit_major(weight.T).T)
    np.testing.assert_array_equal(layout.to_gate_major(layout.to_unit_major(weight, axis=0), axis=0), weight)


def test_hidden_size_1_is_the_same_array_and_4_is_an_involution():
    """H = 1: the packings coincide (detect cannot tell them apart).  H = 4: the (4, 4) transpose is
    its own inverse, so to_unit_major == to_gate_major there; a swap of the two directions is only
    seen with other sizes, which the tests below use."""
    a1 = np.arange(4.0)
    np.testing.assert_array_equal(layout.to_unit_major(a1), a1)
    a4 = np.arange(16.0)
    np.testing.assert_array_equal(layout.to_unit_major(a4), layout.to_gate_major(a4))
    a3 = np.arange(12.0)
    assert not np.array_equal(layout.to_unit_major(a3), layout.to_gate_major(a3))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"packing: expected one of \['gate-major', 'unit-major'\], got 'blocked'"):
        layout.resolve_packing("blocked")
    assert layout.resolve_packing("Unit_Major") == "unit-major"
    with pytest.raises(ValueError, match="to_packing: expected one of"):
        layout.repack_gates(np.zeros(8), "ifgo", "ifgo", to_packing="interleaved")
    with pytest.raises(ValueError, match=r"expected axis 0 to have size 4H .* got 6"):
        layout.to_unit_major(np.zeros(6))
    with pytest.raises(ValueError, match="axis 2 out of range"):
        layout.to_unit_major(np.zeros((4, 8)), axis=2)


def test_split_and_join_gates_know_the_packing():
    rng = _rng("split")
    z = rng.normal(size=(2, 12))
    blocks = layout.split_gates(z, "gifo", packing="unit-major")
    np.testing.assert_array_equal(blocks["g"], z.reshape(2, 3, 4)[:, :, 0])
    np.testing.assert_array_equal(blocks["o"], z.reshape(2, 3, 4)[:, :, 3])
    np.testing.assert_array_equal(layout.join_gates(blocks, "gifo", packing="unit-major"), z)


def test_permuted_params_compute_the_same():
    """The reference on unit-major weights re-packed gate-major computes what it computes on the
    original weights; without the re-pack (the confusion) it does not."""
    rng = _rng("function")
    params = _params(rng)
    x = rng.normal(size=(2, 4, 3))
    expected, _ = lstm_forward(x, params, LSTMSpec(gate_order="ifgo"))
    packed = layout.permute_params(params, "ifgo", "gifo", to_packing="unit-major")
    back = layout.permute_params(packed, "gifo", "gifo", from_packing="unit-major")
    np.testing.assert_allclose(lstm_forward(x, back, LSTMSpec(gate_order="gifo"))[0], expected, rtol=1e-12)
    confused, _ = lstm_forward(x, packed, LSTMSpec(gate_order="gifo"))
    assert np.max(np.abs(confused - expected)) > 0.05


# --- the packings table ----------------------------------------------------------------------

def test_chainer_packing_matches_the_stand_in():
    """PACKINGS["chainer"] loads reference weights so that the stand-in of Chainer's L.LSTM
    (examples/numpy_lstm.py, written from chainer's source) computes the reference's output."""
    fn = load_callable(f"{EXAMPLES}:chainer_lstm")
    rng = _rng("chainer")
    params = _params(rng, d=3, h=5)
    x, h0, c0 = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    spec = LSTMSpec(gate_order="ifgo", forget_bias=0.7)
    expected, (h, c) = lstm_forward(x, params, spec, (h0, c0))
    native = PACKINGS["chainer"].to_native(params, "ifgo", forget_bias=0.7)
    assert sorted(native) == ["lateral/W", "upward/W", "upward/b"] and native["upward/W"].shape == (20, 3)
    y, h_t, c_t = fn(x, h0, c0, native["upward/W"], native["lateral/W"], native["upward/b"])
    np.testing.assert_allclose(y, expected, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(c_t, c, rtol=2e-5, atol=2e-5)
    # The confusion: the same table entry packing gate-major.
    wrong = dataclasses.replace(PACKINGS["chainer"], gate_packing="gate-major").to_native(params, "ifgo",
                                                                                          forget_bias=0.7)
    y_wrong, _, _ = fn(x, h0, c0, wrong["upward/W"], wrong["lateral/W"], wrong["upward/b"])
    assert np.max(np.abs(y_wrong - expected)) > 0.05


def test_chainer_nstep_names_each_gate():
    rng = _rng("nstep")
    params = dataclasses.replace(_params(rng, d=3, h=2), recurrent_bias=rng.normal(size=8))
    native = PACKINGS["chainer_nstep"].to_native(params, "ifgo")
    # n_step_lstm's docstring: W0 / W4 input gate, W1 / W5 forget gate, W2 / W6 cell input (a),
    # W3 / W7 output gate; each (H, D) or (H, H), applied as x W^T.
    np.testing.assert_array_equal(native["w1"], params.kernel[:, 2:4].T)
    np.testing.assert_array_equal(native["w6"], params.recurrent_kernel[:, 4:6].T)
    np.testing.assert_array_equal(native["b7"], params.recurrent_bias[6:8])
    back = PACKINGS["chainer_nstep"].from_native(native, "ifgo")
    for name in ("kernel", "recurrent_kernel", "bias", "recurrent_bias"):
        np.testing.assert_array_equal(getattr(back, name), getattr(params, name))


@pytest.mark.parametrize("layers, dirs, proj", [(1, 1, None), (2, 2, None), (3, 1, 2), (2, 2, 3)])
def test_mxnet_flat_vector(layers, dirs, proj):
    """The fused RNN operator's vector: every weight (per layer, per direction: i2h, h2h, h2r),
    then every bias (i2h, h2h), as gluon.rnn.LSTM's _forward_kernel concatenates them; its size
    is GetRnnParamSize of src/operator/rnn-inl.h; the inverse is exact."""
    d, h = 3, 4
    out = proj or h
    rng = _rng("flat", layers, dirs, proj)
    native = []
    for k in range(layers):
        row = []
        for _ in range(dirs):
            p = _params(rng, d=d if k == 0 else out * dirs, h=h, out=out)
            if proj:
                p = dataclasses.replace(p, projection=rng.normal(size=(h, proj)))
            row.append(PACKINGS["mxnet"].to_native(p, "ifgo"))
        native.append(row)
    flat = mxnet_flat_params(native)
    size1 = (d + out + 2) * 4 * h * dirs
    size2 = (out * dirs + out + 2) * 4 * h * dirs
    expected_size = size1 + (layers - 1) * size2 + (out * h * layers * dirs if proj else 0)
    assert flat.shape == (expected_size,)
    by_hand = []
    for kind in ("weight", "bias"):
        for k in range(layers):
            for j in range(dirs):
                for g in ("i2h", "h2h", "h2r"):
                    if g == "h2r" and (kind == "bias" or not proj):
                        continue
                    by_hand.append(native[k][j][f"{g}_{kind}"].ravel())
    np.testing.assert_array_equal(flat, np.concatenate(by_hand))
    back = mxnet_unflat_params(flat, input_size=d, hidden_size=h, num_layers=layers, num_directions=dirs,
                               projection_size=proj)
    for k, j in itertools.product(range(layers), range(dirs)):
        assert sorted(back[k][j]) == sorted(native[k][j])
        for name, value in native[k][j].items():
            np.testing.assert_array_equal(back[k][j][name], value)
    with pytest.raises(ValueError, match=f"flat: expected a vector of {expected_size} elements"):
        mxnet_unflat_params(flat[:-1], input_size=d, hidden_size=h, num_layers=layers, num_directions=dirs,
                            projection_size=proj)


def test_the_chainer_preset_is_unit_major():
    assert GATE_ORDER_PRESETS["chainer"] == "gifo" and layout.PRESET_PACKINGS == {"chainer": "unit-major"}
    assert PACKINGS["chainer"].gate_packing == "unit-major"
    assert all(p.gate_packing == "gate-major" for name, p in PACKINGS.items() if name != "chainer")


# --- detect ----------------------------------------------------------------------------------

def _found(result):
    c = result.best.convention
    return (c.gate_order, c.packing, c.kernel_layout, c.recurrent_layout, c.forget_bias, c.recurrent_activation)


def test_detect_identifies_the_chainer_stand_in():
    result = detect(load_callable(f"{EXAMPLES}:chainer_lstm"))
    assert result.status == "unique", result.reason
    assert _found(result) == ("gifo", "unit-major", "4H,D", "4H,H", 0.0, "sigmoid")
    data = result.to_dict()
    assert data["packing"] == "unit-major" and data["packing_determined"] and data["presets"] == ["chainer"]
    assert "--packing unit-major" in data["check_command_options"]


@pytest.mark.parametrize("conv", [
    Convention("ifgo", packing="unit-major"),
    Convention("gifo", "4H,D", "H,4H", 1.0, "hard_sigmoid", packing="unit-major"),
    Convention("gifo", "4H,D", "4H,H"),  # gate-major gifo is not Chainer: told apart
    Convention("oigf", "D,4H", "4H,H", -0.5, "hard_sigmoid_keras2", packing="unit-major"),
], ids=lambda c: f"{c.gate_order}-{c.packing}")
def test_detect_tells_the_packings_apart(conv):
    for hidden in (2, 3, 5):
        result = detect(reference_callable(conv), input_size=4, hidden_size=hidden)
        assert result.status == "unique", result.reason
        assert _found(result) == (conv.gate_order, conv.packing, conv.kernel_layout, conv.recurrent_layout,
                                  conv.forget_bias, conv.recurrent_activation)


def test_detect_with_hidden_size_1_says_the_packing_cannot_be_told():
    result = detect(load_callable(f"{EXAMPLES}:chainer_lstm"), input_size=3, hidden_size=1)
    assert result.status == "ambiguous" and result.exit_code == 2
    assert not result.packing_determined
    assert "hidden size 1" in result.reason and "--hidden-size 2" in result.reason
    data = result.to_dict()
    assert data["packing"] is None and data["packing_determined"] is False
    assert data["gate_order"] == "gifo" and data["forget_bias"] == 0.0
    assert "chainer" in data["presets"] or data["presets"] == []


def test_detect_cli_json_carries_the_packing(capsys):
    assert main(["detect", f"{EXAMPLES}:chainer_lstm", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["gate_order"], data["packing"], data["unique"]) == ("gifo", "unit-major", True)
    assert main(["detect", f"{EXAMPLES}:torch_lstm", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["packing"] == "gate-major"
    assert main(["detect", f"{EXAMPLES}:chainer_lstm"]) == 0
    out = capsys.readouterr().out
    assert "packing               unit-major" in out and "--packing unit-major" in out


# --- check -----------------------------------------------------------------------------------

def test_check_accepts_a_unit_major_claim():
    report = check(load_callable(f"{EXAMPLES}:chainer_lstm"), CHAINER, max_examples=20)
    assert report.ok, "\n".join(r.get("message", "") for r in report.rows)
    assert report.to_dict()["convention"]["packing"] == "unit-major"


@pytest.mark.parametrize("fn, claim", [
    (f"{EXAMPLES}:chainer_lstm", dataclasses.replace(CHAINER, packing="gate-major")),
    (reference_callable(Convention("gifo", "4H,D", "4H,H")), CHAINER),
], ids=["unit-major-claimed-gate-major", "gate-major-claimed-unit-major"])
def test_check_catches_the_packing_confusion(fn, claim):
    fn = load_callable(fn) if isinstance(fn, str) else fn
    report = check(fn, claim, max_examples=30, only=["forward_parity"])
    assert not report.ok
    assert "counterexample" in report.rows[0]["message"]


def test_check_cli_packing_option(capsys):
    options = ["--gate-order", "chainer", "--kernel-layout", "4H,D", "--recurrent-layout", "4H,H",
               "--max-examples", "5", "--property", "forward_parity"]
    assert main(["check", f"{EXAMPLES}:chainer_lstm", *options, "--packing", "unit-major"]) == 0
    assert "gate order gifo unit-major" in capsys.readouterr().out
    assert main(["check", f"{EXAMPLES}:chainer_lstm", *options]) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["check", f"{EXAMPLES}:chainer_lstm", *options, "--packing", "interleaved"])
    assert info.value.code == 3
    assert "--packing unit-major" in CHAINER.cli_options()


# --- convert ---------------------------------------------------------------------------------

def test_convert_to_chainer_and_back():
    from test_convert import native_run

    rng = _rng("convert")
    model = cv.Model([[_params(rng, d=3, h=4)]])
    torch = cv.write(model, "torch")
    chainer, _ = cv.convert(torch, "torch", "chainer")
    x = rng.normal(size=(2, 5, 3))
    np.testing.assert_allclose(native_run("chainer", chainer, x)[0], native_run("torch", torch, x)[0], rtol=1e-12)
    back, _ = cv.convert(chainer, "chainer", "torch")
    for key in torch:
        assert np.array_equal(back[key], torch[key]), key


def test_convert_catches_the_packing_confusion(monkeypatch):
    """convert with a "chainer" entry that forgets the interleave writes weights that compute
    something else: the every-pair test of tests/test_convert.py fails on it."""
    from test_convert import native_run

    monkeypatch.setitem(PACKINGS, "chainer", dataclasses.replace(PACKINGS["chainer"], gate_packing="gate-major"))
    rng = _rng("convert-confused")
    torch = cv.write(cv.Model([[_params(rng, d=3, h=4)]]), "torch")
    chainer, _ = cv.convert(torch, "torch", "chainer")
    x = rng.normal(size=(2, 5, 3))
    assert np.max(np.abs(native_run("chainer", chainer, x)[0] - native_run("torch", torch, x)[0])) > 0.05
