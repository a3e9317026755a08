"""Files written by PyTorch (torch.save, safetensors.torch.save_file, torch.onnx.export), listed,
converted to every format both frameworks can run, and each file run by its own framework's
loader: a 2-layer bidirectional LSTM inside a model, several LSTMs in one state_dict, a .pt of
arbitrary objects (refused: never unpickled), a missing bias (an error unless --absent)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch files need torch: tox -e ports")
safetensors_torch = pytest.importorskip("safetensors.torch", reason="tox -e ports installs safetensors")
pytest.importorskip("onnxruntime", reason="tox -e ports installs onnxruntime")

from conformance.cli import main  # noqa: E402

from . import runners  # noqa: E402

D, H, LAYERS, B, T = 3, 4, 2, 2, 6
TOL = dict(rtol=1e-5, atol=1e-5)


class Tagger(torch.nn.Module):
    """A whole model: an LSTM and a head (the head is not an LSTM and is left out)."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(D, H, num_layers=LAYERS, bidirectional=True)
        self.head = torch.nn.Linear(2 * H, 5)


def _module(seed=0):
    torch.manual_seed(seed)
    model = Tagger()
    with torch.no_grad():  # biases of every gate block distinct (a permutation bug must show)
        for name, p in model.lstm.named_parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return model


def _inputs(seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    state = [(rng.uniform(-1, 1, size=(B, H)).astype(np.float32), rng.normal(scale=3, size=(B, H)).astype(np.float32))
             for _ in range(LAYERS * 2)]
    return x, state


def _torch_run(lstm, x, state=None):
    init = None
    if state is not None:
        init = tuple(torch.from_numpy(np.stack([s[j] for s in state])) for j in (0, 1))
    with torch.no_grad():
        y, (h, c) = lstm(torch.from_numpy(x.transpose(1, 0, 2)), init)  # batch_first=False
    return y.numpy().transpose(1, 0, 2), list(zip(h.numpy(), c.numpy()))


def _close(a, b):
    (ya, fa), (yb, fb) = a, b
    np.testing.assert_allclose(ya, yb, **TOL)
    if fa is not None and fb is not None:
        for (ha, ca), (hb, cb) in zip(fa, fb):
            np.testing.assert_allclose(ha, hb, **TOL)
            np.testing.assert_allclose(ca, cb, **TOL)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("torch")
    model = _module()
    torch.save(model.state_dict(), folder / "tagger.pt")
    safetensors_torch.save_file(model.state_dict(), str(folder / "tagger.safetensors"))
    return folder, model


@pytest.mark.parametrize("name", ["tagger.pt", "tagger.safetensors"])
def test_list(saved, capsys, name):
    folder, _ = saved
    assert main(["convert", "--list", str(folder / name)]) == 0
    out = capsys.readouterr().out
    assert "1 LSTM" in out
    assert "[0] lstm: torch, 2 layers, bidirectional, input size 3, hidden size 4, two biases, float32" in out
    assert "left out 2 tensors that are not nn.LSTM weights: head.bias, head.weight" in out
    assert "gate order i, f, g, o" in out


@pytest.mark.parametrize("name", ["tagger.pt", "tagger.safetensors"])
def test_to_onnx_runs_in_onnxruntime_like_torch(saved, tmp_path, capsys, name):
    folder, model = saved
    out = tmp_path / "tagger.onnx"
    assert main(["convert", "--to", "onnx", str(folder / name), str(out)]) == 0
    assert f"wrote {out} as onnx (float32)" in capsys.readouterr().out
    x, state = _inputs()
    run = runners.onnx_file(out)
    _close(run(x, state), _torch_run(model.lstm, x, state))
    _close(run(x), _torch_run(model.lstm, x))


def test_port_pt_to_onnx(saved, tmp_path, capsys):
    folder, _ = saved
    assert main(["port", "--to", "onnx", str(folder / "tagger.pt"), str(tmp_path / "t.onnx"), "--examples", "2"]) == 0
    out = capsys.readouterr().out
    assert "target file vs reference" in out and "verdict: both sides conform and agree" in out
    for kind in ("zero state", "initial state", "lengths", "long sequence"):
        assert f"{kind}" in out
    assert "FAIL" not in out


FORMATS = {"torch": ".safetensors", "onnx": ".onnx", "keras": ".weights.h5", "flax": ".msgpack"}


def _runner(framework, path):
    if framework == "torch":
        return runners.torch_file(path, D, H, LAYERS, True)
    if framework == "onnx":
        return runners.onnx_file(path)
    if framework == "keras":
        pytest.importorskip("keras", reason="tox -e ports installs Keras 3")
        return runners.keras_file(path, D, H, LAYERS, True)
    pytest.importorskip("flax", reason="tox -e ports installs Flax")
    return runners.flax_file(path, D, H, LAYERS, True)


@pytest.mark.parametrize("a, b", list(itertools.product(FORMATS, FORMATS)))
def test_every_pair_of_formats(saved, tmp_path, a, b):
    """torch's file -> A -> B, each file run by its own framework: A like torch, B like A."""
    folder, model = saved
    path_a, path_b = tmp_path / f"a{FORMATS[a]}", tmp_path / f"b{FORMATS[b]}"
    assert main(["convert", "--to", a, str(folder / "tagger.safetensors"), str(path_a)]) == 0
    assert main(["convert", "--to", b, str(path_a), str(path_b)]) == 0
    x, state = _inputs(seed=len(a) + 7 * len(b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_a, run_b = _runner(a, path_a), _runner(b, path_b)
        with_state = "keras" not in (a, b)
        expected = _torch_run(model.lstm, x, state if with_state else None)
        got_a = run_a(x, state if with_state else None)
        got_b = run_b(x, state if with_state else None)
    _close(got_a, expected)
    _close(got_b, got_a)


def test_exported_onnx_file_is_read(saved, tmp_path, capsys):
    """torch.onnx.export writes one LSTM node per layer with Transpose / Reshape between them: read
    as one stack, converted back to torch and run like the exported graph runs in ONNX Runtime."""
    import onnxruntime as ort

    _, model = saved
    exported = tmp_path / "exported.onnx"
    x, _ = _inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.lstm, (torch.from_numpy(x.transpose(1, 0, 2)),), str(exported), dynamo=False,
                          input_names=["input"], output_names=["output", "h_n", "c_n"],
                          dynamic_axes={"input": {0: "T", 1: "B"}})
    assert main(["convert", "--list", str(exported)]) == 0
    assert "2 layers, bidirectional, input size 3, hidden size 4, two biases, float32" in capsys.readouterr().out
    back = tmp_path / "back.safetensors"
    assert main(["convert", "--to", "torch", str(exported), str(back)]) == 0
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    y, h, c = session.run(None, {"input": x.transpose(1, 0, 2)})
    got = runners.torch_file(back, D, H, LAYERS, True)(x)
    _close(got, (y.transpose(1, 0, 2), list(zip(h, c))))


def test_several_lstms_in_one_state_dict(tmp_path, capsys):
    torch.manual_seed(3)
    net = torch.nn.ModuleDict({"encoder": torch.nn.LSTM(D, H), "decoder": torch.nn.LSTM(H, 2, num_layers=2)})
    path = tmp_path / "seq2seq.pt"
    torch.save(net.state_dict(), path)
    assert main(["convert", "--list", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 LSTMs" in out and "[0] encoder: torch, 1 layer" in out and "[1] decoder: torch, 2 layers" in out
    out_path = tmp_path / "both.safetensors"
    assert main(["convert", "--to", "torch", str(path), str(out_path)]) == 0
    restored = torch.nn.ModuleDict({"encoder": torch.nn.LSTM(D, H), "decoder": torch.nn.LSTM(H, 2, num_layers=2)})
    restored.load_state_dict(safetensors_torch.load_file(str(out_path)), strict=True)
    for key, value in net.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
    # one of them, and one file per LSTM for a format that holds one
    assert main(["convert", "--to", "onnx", "--layer", "decoder", str(path), str(tmp_path / "dec.onnx")]) == 0
    assert main(["convert", "--to", "onnx", str(path), str(tmp_path / "s.onnx")]) == 0
    assert (tmp_path / "s.encoder.onnx").is_file() and (tmp_path / "s.decoder.onnx").is_file()
    x = np.random.default_rng(0).normal(size=(B, T, H)).astype(np.float32)
    _close(runners.onnx_file(tmp_path / "dec.onnx")(x), _torch_run(net["decoder"], x))
    capsys.readouterr()
    assert main(["convert", "--to", "onnx", "--layer", "nope", str(path), str(tmp_path / "n.onnx")]) == 3
    assert "holds no LSTM named 'nope' (it holds 'encoder', 'decoder')" in capsys.readouterr().out


class Payload:
    """Not a tensor: torch.load(weights_only=True) must refuse to rebuild it."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_pt_with_arbitrary_objects_is_refused(tmp_path, capsys):
    path = tmp_path / "objects.pt"
    torch.save({"lstm.weight_ih_l0": torch.zeros(16, 3), "payload": Payload()}, path)
    assert main(["convert", "--list", str(path)]) == 3
    out = capsys.readouterr().out
    assert "this must never run" not in out
    assert out.count("\n") == 1 and "refused: it holds objects other than tensors" in out
    assert "weights_only=True" in out and "torch.save(model.state_dict(), PATH)" in out


def test_missing_bias_is_an_error_unless_absent(tmp_path, capsys):
    """Issue 14: a torch file missing bias_hh_l0 is never converted with an invented zero bias."""
    torch.manual_seed(5)
    lstm = torch.nn.LSTM(D, H)
    state = {k: v for k, v in lstm.state_dict().items() if k != "bias_hh_l0"}
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    assert main(["convert", "--to", "keras", str(path), str(tmp_path / "k.weights.h5")]) == 3
    out = capsys.readouterr().out
    assert "'bias_hh_l0', not found" in out and "--absent bias_hh" in out and "summed" not in out
    assert main(["convert", "--to", "keras", "--absent", "bias_hh", str(path), str(tmp_path / "k.weights.h5")]) == 0
    out = capsys.readouterr().out
    assert "bias_hh_l0 is absent (--absent bias_hh): taken as zero" in out and "summed" not in out


def test_no_bias_at_all_is_torch_bias_false(tmp_path, capsys):
    torch.manual_seed(6)
    lstm = torch.nn.LSTM(D, H, bias=False)
    path = tmp_path / "nobias.safetensors"
    safetensors_torch.save_file(lstm.state_dict(), str(path))
    out_path = tmp_path / "nobias.onnx"
    assert main(["convert", "--to", "onnx", str(path), str(out_path)]) == 0
    assert "no biases (nn.LSTM(bias=False))" in capsys.readouterr().out
    x = np.random.default_rng(2).normal(size=(B, T, D)).astype(np.float32)
    _close(runners.onnx_file(out_path)(x), _torch_run(lstm, x))


def test_convert_verify_is_port(saved, tmp_path, capsys):
    folder, _ = saved
    assert main(["convert", "--verify", "--to", "keras", str(folder / "tagger.safetensors"),
                 str(tmp_path / "v.weights.h5")]) == 0
    out = capsys.readouterr().out
    assert "source vs target" in out and "verdict: both sides conform and agree" in out


def test_port_catches_a_wrong_conversion(saved, tmp_path, capsys, monkeypatch):
    """A writer that swaps two gate blocks of the last layer: each file alone runs like the
    reference on its own weights, but source vs target diverges, and port exits 1 saying where."""
    from conformance.tools.model_files import onnx_file
    from reference import LSTMParams
    from reference.gates import permute_gates

    folder, _ = saved
    write = onnx_file.write

    def swapped(model, **kwargs):
        p = model.layers[-1][0]
        bad = LSTMParams(kernel=permute_gates(p.kernel, "ifgo", "figo"), recurrent_kernel=p.recurrent_kernel,
                         bias=p.bias, recurrent_bias=p.recurrent_bias)
        layers = [list(d) for d in model.layers]
        layers[-1][0] = bad
        return write(type(model)(layers, model.forget_bias, name=model.name, framework=model.framework), **kwargs)

    monkeypatch.setattr(onnx_file, "write", swapped)
    code = main(["port", "--to", "onnx", str(folder / "tagger.pt"), str(tmp_path / "bad.onnx"), "--examples", "1"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "source vs target" in out and "FAIL" in out and "first diverging step: t=0" in out
    assert "target vs reference       1 examples" in out and "check(s) failed" in out
