"""Model files: every LSTM a checkpoint or model file holds, read into ``convert.Model`` (the
reference packing, with its path in the file and the conventions its framework implies), and
written back in a target framework's own format.

One module per format family: ``arrays`` (.npz, .safetensors, .pt / .pth, Flax .msgpack),
``keras_file`` (.keras, .weights.h5, Keras 2 .h5), ``onnx_file`` (.onnx), ``tf_checkpoint``
(TensorFlow checkpoints).  The packing knowledge (names, gate orders, orientations, biases) is
``adapters.packings``'s, through ``convert``; framework and format packages are imported only
when a file needs them, and a missing one is a clear error naming the package and the tox env.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapters.packings import PACKINGS

from .. import convert as cv
from .common import ModelFileError, models_from_arrays, output_paths


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]
    description: str
    #: The frameworks whose weights this format is written for ((): read only).
    writes: tuple[str, ...] = ()
    #: Whether one file holds several LSTMs (else one file each).
    holds_many: bool = False


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("npz", (".npz",), "named arrays (np.savez) under any framework's names (--from says whose)",
           cv.FRAMEWORKS),
    Format("safetensors", (".safetensors",), "named arrays: a torch state_dict (nn.LSTM names, several LSTMs "
           "by key prefix) or a Flax tree (names joined with '/' or '.')", cv.FRAMEWORKS, holds_many=True),
    Format("pt", (".pt", ".pth"), "a torch.save state_dict, read only through torch.load(weights_only=True)"),
    Format("keras", (".keras",), "a Keras 3 model archive (config.json + model.weights.h5)"),
    Format("weights.h5", (".weights.h5",), "Keras 3 weights (h5py); written for the matching keras.Sequential",
           ("keras",)),
    Format("h5", (".h5", ".hdf5"), "a Keras 2 / tf.keras HDF5 model or weights file (h5py)"),
    Format("onnx", (".onnx",), "an ONNX model: every LSTM node; written as one graph of the whole stack",
           ("onnx",)),
    Format("msgpack", (".msgpack",), "a Flax state tree (flax.serialization.to_bytes)", ("flax", "flax_nnx"),
           holds_many=True),
    Format("tf-checkpoint", (".index", ".ckpt"), "a TensorFlow checkpoint (tf.train.load_checkpoint): TF1 "
           "LSTMCell variables, Keras LSTM variables; needs TensorFlow (tox -e tf)"),
)}


def detect_format(path, override: str | None = None, *, argument: str = "--format") -> Format:
    if override:
        key = override.lower().lstrip(".")
        aliases = {"pth": "pt", "keras3": "keras", "weights_h5": "weights.h5", "hdf5": "h5", "ckpt": "tf-checkpoint",
                   "checkpoint": "tf-checkpoint", "tf_checkpoint": "tf-checkpoint"}
        key = aliases.get(key, key)
        if key not in FORMATS:
            raise ModelFileError(f"{argument}: expected one of {', '.join(FORMATS)}, got {override!r}")
        return FORMATS[key]
    name = Path(path).name.lower()
    for fmt in sorted(FORMATS.values(), key=lambda f: -max(len(e) for e in f.extensions)):
        if any(name.endswith(ext) for ext in fmt.extensions):
            return fmt
    if Path(path).is_dir() or Path(str(path) + ".index").is_file():
        return FORMATS["tf-checkpoint"]
    known = ", ".join(e for f in FORMATS.values() for e in f.extensions)
    raise ModelFileError(f"{path}: cannot tell the format from the name (known: {known}); pass {argument}")


def read_models(path, *, format: str | None = None, framework: str | None = None,
                forget_bias: float | None = None, absent=()) -> tuple[Format, list[cv.Model]]:
    """Every LSTM in the file at ``path``."""
    from . import arrays as af

    fmt = detect_format(path, format)
    if fmt.name in ("npz", "safetensors", "pt", "msgpack"):
        notes = []
        if fmt.name == "npz":
            named = af.load_npz(path)
        elif fmt.name == "safetensors":
            named, _ = af.load_safetensors(path)
        elif fmt.name == "pt":
            named = af.load_torch(path)
            if framework not in (None, "torch", "pytorch"):
                raise ModelFileError(f"{path}: a .pt file holds a torch state_dict; --from {framework} does not apply")
        else:
            named = af.load_msgpack(path)
        if not named:
            raise ModelFileError(f"{path}: holds no arrays")
        named, fw = af.named_framework(named, framework, path)
        if fw == "torch" and fmt.name != "npz":
            named, notes = af.lstm_tensors(named, path)
        models = models_from_arrays(named, fw, path, forget_bias=forget_bias, absent=absent)
        for model in models:
            model.notes[:0] = notes
            model.conventions.append(packing_conventions(fw))
    elif fmt.name in ("keras", "weights.h5", "h5"):
        from . import keras_file

        models = keras_file.read_keras3(path, None)
    elif fmt.name == "onnx":
        from . import onnx_file

        models = onnx_file.read(path, None)
    else:
        from . import tf_checkpoint

        models = tf_checkpoint.read(path, forget_bias=forget_bias)
    if framework and fmt.name not in ("npz", "safetensors", "pt", "msgpack"):
        expected = cv._framework(framework, "--from")
        if any(m.framework != expected for m in models):
            raise ModelFileError(f"{path}: a {fmt.name} file holds {models[0].framework} weights; --from {framework} "
                                 f"does not apply (leave it out)")
    for model in models:
        try:
            cv._validate(model)
        except ValueError as exc:
            raise ModelFileError(f"{path}: {model.name or 'the LSTM'}: {exc}") from None
    return fmt, models


def packing_conventions(framework: str) -> str:
    """What a framework's names imply, in words, from its PACKINGS entry."""
    p = PACKINGS[framework]
    text = (f"{framework} names: gate order {', '.join(p.gate_order)}; "
            f"{'two biases (added)' if p.two_biases else 'one bias'}")
    if p.runtime_forget_bias:
        text += f"; the cell adds forget_bias={p.runtime_forget_bias:g} at run time (--forget-bias)"
    return text


def select(models: list[cv.Model], layer: str | None, path) -> list[cv.Model]:
    """All the LSTMs, or the one named by ``--layer`` (its name, or its number in the list)."""
    if layer is None:
        return models
    for k, model in enumerate(models):
        if layer in (model.name, str(k)) or model.name.split("+")[0] == layer:
            return [model]
    names = ", ".join(repr(m.name or str(k)) for k, m in enumerate(models))
    raise ModelFileError(f"--layer: {path} holds no LSTM named {layer!r} (it holds {names}); convert --list "
                         f"{path} lists them")


@dataclass
class Written:
    path: Path
    framework: str
    models: list[cv.Model]
    arrays: dict  # name -> shape
    dtype: str
    notes: list[str]


def write_models(path, models: list[cv.Model], framework: str, *, format: str | None = None,
                 forget_bias: float | None = None) -> list[Written]:
    """Write ``models`` for ``framework`` in the format of ``path`` (or ``format``)."""
    from . import arrays as af

    framework = cv._framework(framework, "--to")
    if Path(path).is_dir():
        write_bytes(path, b"")  # the one message for a directory given as OUT
    fmt = detect_format(path, format, argument="--to-format")
    if framework not in fmt.writes:
        can = ", ".join(f.extensions[0] for f in FORMATS.values() if framework in f.writes)
        what = "read only" if not fmt.writes else "written for " + ", ".join(fmt.writes)
        raise ModelFileError(f"{path}: a {fmt.name} file cannot be written for {framework} ({fmt.name} is "
                             f"{what}); {framework} is written as {can}")
    fb = cv._forget_bias(framework, forget_bias)
    out = []
    many = fmt.holds_many and (framework == "torch" or fmt.name == "msgpack")
    for target, group in output_paths(Path(path), models, many):
        notes, shapes, dtypes, named = [], {}, [], {}
        for model in group:
            try:
                arrays, model_notes = cv.convert_model(model, framework, forget_bias=forget_bias)
            except ValueError as exc:
                if len(models) < 2:
                    raise
                others = ", ".join(repr(m.name) for m in models if m is not model)
                raise ModelFileError(f"{exc} (the file holds other LSTMs too: convert one of them with --layer "
                                     f"NAME: {others})") from None
            notes += [f"{model.name}: {n}" if len(group) > 1 else n for n in model_notes]
            prefix = ""
            if len(group) > 1:
                prefix = model.name.replace("+", "_") + ("." if framework == "torch" else "/")
            named.update((prefix + k, v) for k, v in arrays.items())
        if fmt.name in ("npz", "safetensors", "msgpack"):
            if fmt.name == "npz":
                data = af.npz_bytes(named)
            elif fmt.name == "safetensors":
                data = af.safetensors_bytes(named, {"format": "pt" if framework == "torch" else framework})
            else:
                data = af.msgpack_bytes(named)
            shapes = {k: tuple(np.shape(v)) for k, v in named.items()}
            dtypes = list(named.values())
        elif fmt.name == "onnx":
            from . import onnx_file

            data, shapes = onnx_file.write(group[0], forget_bias=fb)
            dtypes = [np.zeros(0, np.float32)]
            if any(np.asarray(a).dtype != np.float32 for a in group[0].arrays()):
                notes.append(f"cast {group[0].dtype()} to float32 (ONNX Runtime's LSTM runs float32)")
        else:
            from . import keras_file

            data, shapes = keras_file.write(group[0], forget_bias=fb)
            dtypes = list(named.values())
            notes.append(f"loads into {keras_file.matching_model(group[0])}")
        write_bytes(target, data)
        out.append(Written(target, framework, group, shapes, cv.dtype_name(dtypes), notes))
    return out


def write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path``, or one clear line saying why it cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"OUT: {path} is a directory; give a file name in it (e.g. "
                             f"{path / 'model'}{path.suffix or '.npz'})")
    if not path.parent.is_dir():
        raise ModelFileError(f"OUT: {path}: the directory {path.parent} does not exist; create it first")
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise ModelFileError(f"OUT: {path} cannot be written ({exc.strerror or exc}); choose a writable "
                             f"location") from None
