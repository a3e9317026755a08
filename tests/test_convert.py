"""`python -m conformance convert`: every pair of frameworks, checked by running the reference with
each side's own convention on its own arrays; exact round trips; refusals; the command line."""

from __future__ import annotations

import itertools
import json
import zlib

import numpy as np
import pytest

from adapters.packings import PACKINGS
from conformance.tools import convert as cv
from conformance.cli import main
from reference import LSTMParams, LSTMSpec, lstm_forward, lstm_stack

FRAMEWORKS = cv.FRAMEWORKS
D, H, P, B, T = 3, 4, 2, 2, 5


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _params(rng, d=D, h=H, *, two_biases=False, peepholes=False, projection=False, dtype=np.float32):
    out = P if projection else h
    arrays = dict(kernel=rng.normal(size=(d, 4 * h)), recurrent_kernel=rng.normal(size=(out, 4 * h)),
                  bias=rng.normal(size=4 * h))
    if two_biases:
        arrays["recurrent_bias"] = rng.normal(size=4 * h)
    if peepholes:
        arrays["peephole"] = rng.normal(size=(3, h))
    if projection:
        arrays["projection"] = rng.normal(size=(h, P))
    return LSTMParams(**{k: v.astype(dtype) for k, v in arrays.items()})


# --- each framework's own convention, written out by hand from its documentation -------------
# (independent of conformance.convert's readers: names, transposes and gate orders spelled out)

def native_run(framework: str, w: dict, x, *, forget_bias=1.0):
    """The reference run with ``framework``'s convention on its single-layer forward arrays."""
    spec = dict(gate_order=PACKINGS[framework].gate_order)
    if framework == "torch":
        params = dict(kernel=w["weight_ih_l0"].T, recurrent_kernel=w["weight_hh_l0"].T,
                      bias=w["bias_ih_l0"], recurrent_bias=w["bias_hh_l0"])
        if "weight_hr_l0" in w:
            params["projection"] = w["weight_hr_l0"].T
    elif framework == "keras":
        params = dict(kernel=w["kernel"], recurrent_kernel=w["recurrent_kernel"], bias=w.get("bias"))
    elif framework == "tf1":
        d = x.shape[2]
        params = dict(kernel=w["kernel"][:d], recurrent_kernel=w["kernel"][d:], bias=w["bias"])
        spec["forget_bias"] = forget_bias
        if "w_i_diag" in w:
            params["peephole"] = np.stack([w["w_i_diag"], w["w_f_diag"], w["w_o_diag"]])
        if "projection/kernel" in w:
            params["projection"] = w["projection/kernel"]
    elif framework == "cntk":
        params = dict(kernel=w["W"], recurrent_kernel=w["H"], bias=w["b"])
        if "Ci" in w:
            params["peephole"] = np.stack([w["Ci"], w["Cf"], w["Co"]])
        if "P" in w:
            params["projection"] = w["P"]
    elif framework == "onnx":
        h = w["R"].shape[2]
        params = dict(kernel=w["W"][0].T, recurrent_kernel=w["R"][0].T, bias=w["B"][0][:4 * h],
                      recurrent_bias=w["B"][0][4 * h:])
        if "P" in w:  # ONNX orders peepholes i, o, f
            pi, po, pf = np.split(w["P"][0], 3)
            params["peephole"] = np.stack([pi, pf, po])
    elif framework == "mxnet":  # gluon: (4H, D) weights as torch, names l<k>_ / r<k>_
        params = dict(kernel=w["l0_i2h_weight"].T, recurrent_kernel=w["l0_h2h_weight"].T,
                      bias=w["l0_i2h_bias"], recurrent_bias=w["l0_h2h_bias"])
        if "l0_h2r_weight" in w:
            params["projection"] = w["l0_h2r_weight"].T
    elif framework == "chainer":  # (4H, D) weights, the 4H axis (H, 4) ordered a, i, f, o
        h = w["lateral/W"].shape[1]

        def gate_major(a):  # rows u * 4 + k (unit u, gate "gifo"[k]) -> rows k * H + u, order gifo
            return a.reshape((h, 4) + a.shape[1:]).swapaxes(0, 1).reshape(a.shape)

        params = dict(kernel=gate_major(w["upward/W"]).T, recurrent_kernel=gate_major(w["lateral/W"]).T,
                      bias=gate_major(w["upward/b"]))
    elif framework == "chainer_nstep":  # w0..w3 (H, D) for i, f, a, o; w4..w7 (H, H); b0..b7
        params = dict(kernel=np.concatenate([w[f"w{j}"].T for j in range(4)], 1),
                      recurrent_kernel=np.concatenate([w[f"w{j}"].T for j in range(4, 8)], 1),
                      bias=np.concatenate([w[f"b{j}"] for j in range(4)]),
                      recurrent_bias=np.concatenate([w[f"b{j}"] for j in range(4, 8)]))
    else:  # flax: one Dense per gate, bias on the recurrent side only
        f = "if_" if framework == "flax_nnx" else "if"
        inputs = [w["ii/kernel"], w[f + "/kernel"], w["ig/kernel"], w["io/kernel"]]
        params = dict(kernel=np.concatenate(inputs, 1),
                      recurrent_kernel=np.concatenate([w[f"h{g}/kernel"] for g in "ifgo"], 1),
                      bias=np.concatenate([w[f"h{g}/bias"] for g in "ifgo"]))
    params = {k: v for k, v in params.items() if v is not None}
    spec["use_peepholes"] = "peephole" in params
    spec["proj_size"] = None if "projection" not in params else params["projection"].shape[1]
    return lstm_forward(x, LSTMParams(**params), LSTMSpec(**spec))


def _holds(framework, feature):
    return feature in PACKINGS[framework].holds


@pytest.mark.parametrize("src, dst", list(itertools.product(FRAMEWORKS, FRAMEWORKS)))
def test_every_pair_computes_the_same(src, dst):
    rng = _rng(src, dst)
    options = dict(two_biases=_holds(src, "recurrent_bias") and _holds(dst, "recurrent_bias"),
                   peepholes=_holds(src, "peephole") and _holds(dst, "peephole"),
                   projection=_holds(src, "projection") and _holds(dst, "projection"))
    model = cv.Model([[_params(rng, **options)]])
    source = cv.write(model, src)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    converted, notes = cv.convert(source, src, dst)
    y_src, (h_src, c_src) = native_run(src, source, x)
    y_dst, (h_dst, c_dst) = native_run(dst, converted, x)
    # float32 arrays: a folded forget bias costs at most one rounding of the bias.
    tol = 0 if (src == "tf1") == (dst == "tf1") else 1e-5
    np.testing.assert_allclose(y_dst, y_src, rtol=tol, atol=tol)
    np.testing.assert_allclose(c_dst, c_src, rtol=tol, atol=tol)
    assert all(v.dtype == np.float32 for v in converted.values())


@pytest.mark.parametrize("src, dst", list(itertools.product(FRAMEWORKS, FRAMEWORKS)))
def test_round_trips_are_exact(src, dst):
    """A -> B -> A gives back identical arrays whenever B can hold what A has (no bias sum and no
    forget-bias fold on the way)."""
    rng = _rng("round", src, dst)
    options = dict(two_biases=_holds(src, "recurrent_bias") and _holds(dst, "recurrent_bias"),
                   peepholes=_holds(src, "peephole") and _holds(dst, "peephole"),
                   projection=_holds(src, "projection") and _holds(dst, "projection"))
    source = cv.write(cv.Model([[_params(rng, **options)]]), src)
    if _holds(src, "recurrent_bias") and not _holds(dst, "recurrent_bias"):
        for key in source:  # one bias only, so that nothing needs summing
            if key.startswith("bias_hh") or key == "B":
                source[key][..., source[key].shape[-1] // 2 if key == "B" else 0:] = 0
    fb = 0.0 if (src == "tf1") != (dst == "tf1") else 1.0  # no fold on the way: exact
    there, _ = cv.convert(source, src, dst, forget_bias=fb)
    back, _ = cv.convert(there, dst, src, forget_bias=fb)
    assert sorted(back) == sorted(source)
    for key in source:
        assert np.array_equal(back[key], source[key]), key


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_stacked_bidirectional(framework):
    """Two bidirectional layers through every framework's names and back to torch."""
    rng = _rng("stack", framework)
    layers = [[_params(rng, D), _params(rng, D)], [_params(rng, 2 * H), _params(rng, 2 * H)]]
    torch_names = cv.write(cv.Model(layers), "torch")
    assert "weight_ih_l1_reverse" in torch_names
    there, _ = cv.convert(torch_names, "torch", framework, forget_bias=0.0)
    back = cv.read(there, framework, forget_bias=0.0)
    x = rng.normal(size=(B, T, D))
    expected, _ = lstm_stack(x, [tuple(d) for d in layers], LSTMSpec())
    actual, _ = lstm_stack(x, [tuple(d) for d in back.layers], LSTMSpec())
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


def test_names_of_layers_and_directions():
    layers = [[_params(_rng(1), D), _params(_rng(2), D)], [_params(_rng(3), 2 * H), _params(_rng(4), 2 * H)]]
    keras = cv.write(cv.Model(layers), "keras")
    assert "layer1/backward/recurrent_kernel" in keras and "kernel" not in keras
    onnx = cv.write(cv.Model(layers), "onnx")
    assert onnx["layer0/W"].shape == (2, 4 * H, D) and onnx["layer1/B"].shape == (2, 8 * H)
    flax = cv.write(cv.Model([[_params(_rng(5))]]), "flax")
    assert sorted(flax) == sorted([f"i{g}/kernel" for g in "ifgo"] + [f"h{g}/{k}" for g in "ifgo"
                                                                       for k in ("kernel", "bias")])
    assert "if_/kernel" in cv.write(cv.Model([[_params(_rng(5))]]), "flax_nnx")


def test_tf1_forget_bias_is_folded():
    rng = _rng("fb")
    tf1 = cv.write(cv.Model([[_params(rng, dtype=np.float64)]], forget_bias=1.0), "tf1", forget_bias=1.0)
    keras, notes = cv.convert(tf1, "tf1", "keras", forget_bias=1.0)
    assert any("added 1 to the forget block" in n for n in notes)
    f = slice(H, 2 * H)  # keras ifgo: f is the second block; tf1 igfo: f is the third
    np.testing.assert_array_equal(keras["bias"][f], tf1["bias"][2 * H:3 * H] + 1.0)
    back, notes = cv.convert(keras, "keras", "tf1", forget_bias=2.5)
    assert any("subtracted 2.5" in n for n in notes)
    x = rng.normal(size=(B, T, D))
    np.testing.assert_allclose(native_run("tf1", back, x, forget_bias=2.5)[0], native_run("tf1", tf1, x)[0],
                               rtol=1e-12, atol=1e-12)


def test_torch_prefix_and_two_biases():
    model = cv.Model([[_params(_rng("pre"), two_biases=True)]])
    state = {f"encoder.lstm.{k}": v for k, v in cv.write(model, "torch").items()}
    keras, notes = cv.convert(state, "torch", "keras")
    assert any("stripped the key prefix 'encoder.lstm.'" in n for n in notes)
    assert any("summed the two biases" in n for n in notes)
    back, _ = cv.convert(keras, "keras", "torch")
    np.testing.assert_array_equal(back["bias_hh_l0"], 0)


@pytest.mark.parametrize("src, dst, options, text", [
    ("tf1", "torch", dict(peepholes=True), "cannot hold"),
    ("cntk", "keras", dict(projection=True), "output projection"),
    ("onnx", "flax", dict(peepholes=True), "peepholes"),
    ("torch", "onnx", dict(projection=True), "projection"),
])
def test_what_cannot_be_held_is_refused(src, dst, options, text):
    source = cv.write(cv.Model([[_params(_rng(src), **options)]]), src)
    with pytest.raises(ValueError, match=text):
        cv.convert(source, src, dst)


def test_bad_input_is_named():
    keras = cv.write(cv.Model([[_params(_rng("bad"))]]), "keras")
    with pytest.raises(ValueError, match="unexpected names for keras: \\['extra'\\]"):
        cv.convert({**keras, "extra": np.zeros(3)}, "keras", "torch")
    with pytest.raises(ValueError, match="expected an array named 'recurrent_kernel'"):
        cv.convert({"kernel": keras["kernel"]}, "keras", "torch")
    with pytest.raises(ValueError, match="--from: expected one of"):
        cv.convert(keras, "caffe", "torch")
    with pytest.raises(ValueError, match="--input-size: expected the input size of the weights, 3, got 5"):
        cv.convert(keras, "keras", "torch", input_size=5)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        cv.convert({**keras, "recurrent_kernel": keras["recurrent_kernel"][:, :-4]}, "keras", "cntk")


# --- command line ----------------------------------------------------------------------------

def test_cli_files(tmp_path, capsys):
    source = cv.write(cv.Model([[_params(_rng("cli"), two_biases=True)]]), "torch")
    src_path, out_path = tmp_path / "torch.npz", tmp_path / "tf1.npz"
    np.savez(src_path, **source)
    assert main(["convert", "--from", "torch", "--to", "tf1", str(src_path), str(out_path)]) == 0
    out = capsys.readouterr().out
    assert "summed the two biases" in out and "subtracted 1 " in out and "kernel (7, 16)" in out
    with np.load(out_path, allow_pickle=False) as data:
        assert sorted(data.files) == ["bias", "kernel"]
    assert main(["convert", "--from", "tf1", "--to", "cntk", str(out_path), str(tmp_path / "c.npz"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["arrays"] == {"W": [3, 16], "H": [4, 16], "b": [16]}


def test_cli_refuses_pickles_and_missing_files(tmp_path, capsys):
    path = tmp_path / "objects.npz"
    np.savez(path, kernel=np.array([{"a": 1}], dtype=object))
    assert main(["convert", "--from", "keras", "--to", "torch", str(path), str(tmp_path / "o.npz")]) == 3
    assert "without pickle" in capsys.readouterr().out
    assert main(["convert", "--from", "keras", "--to", "torch", str(tmp_path / "none.npz"),
                 str(tmp_path / "o.npz")]) == 3
    assert main(["convert", "--from", "keras", str(path), str(tmp_path / "o.npz")]) == 3
    assert "needs --to" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["convert", "--from", "keras", "--no-such-option", str(path)])
    assert exc.value.code == 3


# --- issue 14: nothing invented, floating types written, one clear line for bad files ----------

def _torch_npz(tmp_path, drop=()):
    state = {k: v for k, v in cv.write(cv.Model([[_params(_rng("i14"), two_biases=True)]]), "torch").items()
             if k not in drop}
    path = tmp_path / "torch.npz"
    np.savez(path, **state)
    return path


def test_a_missing_bias_is_never_invented(tmp_path, capsys):
    path = _torch_npz(tmp_path, drop=("bias_hh_l0",))
    assert main(["convert", "--from", "torch", "--to", "tf1", str(path), str(tmp_path / "o.npz")]) == 3
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "'bias_hh_l0', not found" in out and "--absent bias_hh" in out
    assert main(["convert", "--from", "torch", "--to", "tf1", "--absent", "bias_hh_l0", str(path),
                 str(tmp_path / "o.npz")]) == 0
    out = capsys.readouterr().out
    assert "bias_hh_l0 is absent (--absent bias_hh_l0): taken as zero" in out and "summed" not in out
    with np.load(tmp_path / "o.npz", allow_pickle=False) as data, np.load(path, allow_pickle=False) as src:
        # tf1's one bias is bias_ih alone (igfo from ifgo), with tf1's forget bias 1 taken out
        b = src["bias_ih_l0"].astype(np.float64)
        H4 = b.size // 4
        expected = np.concatenate([b[:H4], b[2 * H4:3 * H4], b[H4:2 * H4] - 1.0, b[3 * H4:]])
        np.testing.assert_allclose(data["bias"], expected, rtol=1e-6)


def test_tf1_without_its_bias_is_an_error(tmp_path, capsys):
    tf1 = cv.write(cv.Model([[_params(_rng("tf1b"))]]), "tf1")
    path = tmp_path / "tf1.npz"
    np.savez(path, kernel=tf1["kernel"])
    assert main(["convert", "--from", "tf1", "--to", "keras", str(path), str(tmp_path / "k.npz")]) == 3
    assert "'bias', not found" in capsys.readouterr().out


def test_integer_weights_are_written_as_floats(tmp_path, capsys):
    rng = _rng("ints")
    path = tmp_path / "ints.npz"
    bias = np.zeros(16, np.int64)
    bias[4:8] = 1  # keras ifgo: the forget block
    np.savez(path, kernel=rng.integers(-2, 3, size=(3, 16)), recurrent_kernel=rng.integers(-2, 3, size=(4, 16)),
             bias=bias)
    out_path = tmp_path / "tf1.npz"
    assert main(["convert", "--from", "keras", "--to", "tf1", "--forget-bias", "0.5", str(path), str(out_path)]) == 0
    out = capsys.readouterr().out
    assert "converted integer arrays to float32" in out and "as tf1 (float32)" in out
    with np.load(out_path, allow_pickle=False) as data:
        assert data["bias"].dtype == np.float32 and data["kernel"].dtype == np.float32
        np.testing.assert_array_equal(data["bias"][8:12], 0.5)  # tf1 igfo: f is the third block; 1 - 0.5


def test_mixed_dtypes_are_named(tmp_path, capsys):
    keras = cv.write(cv.Model([[_params(_rng("mixed"))]]), "keras")
    path = tmp_path / "mixed.npz"
    np.savez(path, **{**keras, "bias": keras["bias"].astype(np.float64)})
    assert main(["convert", "--from", "keras", "--to", "torch", str(path), str(tmp_path / "t.npz")]) == 0
    out = capsys.readouterr().out
    assert "mixed float32/float64" in out and "as torch (mixed float32/float64)" in out


@pytest.mark.parametrize("kind", ["directory", "missing directory", "unwritable"])
def test_output_that_cannot_be_written(tmp_path, capsys, kind):
    path = _torch_npz(tmp_path)
    if kind == "directory":
        out = tmp_path
    elif kind == "missing directory":
        out = tmp_path / "no" / "such" / "o.npz"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        out = locked / "o.npz"
        out.mkdir()  # a directory where the file should go: unwritable for root too
    code = main(["convert", "--from", "torch", "--to", "keras", str(path), str(out)])
    text = capsys.readouterr().out
    assert code == 3 and text.count("\n") == 1 and text.startswith("error: OUT: ") and "Traceback" not in text


@pytest.mark.parametrize("content, words", [
    (b"\x93NUMPY", "is a .npy file (one unnamed array)"),
    (b"kernel,recurrent_kernel\n1,2\n", "a text file"),
    (b"\x00\x01\x02garbage", "not an .npz file"),
])
def test_files_that_are_not_npz(tmp_path, capsys, content, words):
    path = tmp_path / "in.npz"
    if content == b"\x93NUMPY":
        np.save(tmp_path / "in.npy", np.zeros(3))
        path = tmp_path / "in.npy"
        path = path.rename(tmp_path / "weights.npz")
    else:
        path.write_bytes(content)
    assert main(["convert", "--from", "keras", "--to", "torch", str(path), str(tmp_path / "o.npz")]) == 3
    out = capsys.readouterr().out
    assert words in out and str(path) in out and out.count("\n") == 1 and "pickled" not in out


def test_npy_by_its_own_name(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.zeros(3))
    assert main(["convert", "--from", "keras", "--to", "torch", str(tmp_path / "w.npy"), str(tmp_path / "o.npz")]) == 3
    out = capsys.readouterr().out
    assert "cannot tell the format from the name" in out and "TypeError" not in out


def test_list_an_npz(tmp_path, capsys):
    path = _torch_npz(tmp_path)
    assert main(["convert", "--list", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 LSTM (npz)" in out and "torch, 1 layer, unidirectional, input size 3, hidden size 4, two biases" in out
    assert main(["convert", "--list", "--json", str(path)]) == 0
    listed = json.loads(capsys.readouterr().out)["lstms"][0]
    assert listed["biases"] == 2 and listed["hidden_size"] == 4 and listed["dtype"] == "float32"


@pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is not None,
                    reason="what a machine without torch is told (tox -e reference has no torch)")
def test_pt_without_torch_says_how_to_export(tmp_path, capsys):
    import zipfile

    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:  # the layout of torch.save, never opened here
        archive.writestr("model/data.pkl", b"\x80\x02}q\x00.")
    assert main(["convert", "--list", str(path)]) == 3
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "torch is not installed here" in out
    assert "tox -e ports" in out and "safetensors.torch" in out and "weights_only=True" in out
