"""Keras files, read with h5py (and zipfile) without building the model: Keras 3 ``.keras``
archives and ``.weights.h5``, and Keras 2 / tf.keras ``.h5`` (whole model or weights only).
Written: a Keras 3 ``.weights.h5`` that the matching Keras model loads.

Keras 3 stores a layer's variables by position: ``layers/<layer>/cell/vars/0`` (kernel (D, 4H)),
``1`` (recurrent_kernel (H, 4H)), ``2`` (bias (4H,), absent with use_bias=False), where <layer>
is the snake-case class name numbered per container (``lstm``, ``lstm_1``, ``bidirectional``;
keras/src/saving/saving_lib.py, _save_container_state), and a ``Bidirectional`` layer has
``forward_layer`` and ``backward_layer``.  A ``.keras`` archive adds ``config.json``: the
activations, ``go_backwards``, ``return_sequences``, ``merge_mode``, and the order of the layers,
from which consecutive LSTM layers form one stacked LSTM.  A ``.weights.h5`` alone holds no
topology: each of its LSTM layers is listed on its own, with Keras' default activations (say so
with the .keras file when they differ).

Keras 2 (legacy HDF5) files list their layers in ``layer_names`` (under ``model_weights`` in a
whole-model file, whose ``model_config`` attribute is the configuration) and each layer's arrays
in its ``weight_names`` (``lstm/lstm_cell/kernel:0``).  Keras 2's ``hard_sigmoid`` is
clip(0.2 x + 0.5, 0, 1), Keras 3's clip(x / 6 + 1 / 2, 0, 1): the version in the file decides.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from .. import convert as cv
from .arrays import read_bytes
from .common import ModelFileError, float_array, need

LSTM_CLASSES = {"LSTM", "CuDNNLSTM"}
ACTIVATIONS_3 = {"sigmoid": "sigmoid", "hard_sigmoid": "hard_sigmoid", "tanh": "tanh", "relu": "relu",
                 "linear": "linear"}
ACTIVATIONS_2 = {**ACTIVATIONS_3, "hard_sigmoid": "hard_sigmoid_keras2"}
KERAS_NAMES = ("kernel", "recurrent_kernel", "bias")


def snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: the name of a layer's group in a Keras 3 file."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _h5(path, data: bytes):
    h5py = need("h5py", path, "reading a Keras HDF5 file")
    try:
        return h5py.File(io.BytesIO(data), "r")
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable HDF5 file ({type(exc).__name__}: {str(exc)[:160]}); it is "
                             f"damaged or truncated: save it again with model.save / model.save_weights") from None


def _dataset(group, key: str, path, label: str) -> np.ndarray:
    try:
        item = group[key]
        if item.attrs.get("dtype") == "bfloat16":
            raise ModelFileError(f"{path}: {label}: bfloat16 weights; save them as float32")
        value = item[()]
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{path}: {label}: cannot be read ({type(exc).__name__}: {str(exc)[:160]}); the "
                             f"file is damaged or truncated") from None
    return float_array(value, path, label)


def _is_group(obj) -> bool:
    return hasattr(obj, "keys") and not hasattr(obj, "shape")


# --------------------------------------------------------------------------------------------
# Keras 3: .keras and .weights.h5

def _cell_arrays(group, path, label) -> dict | None:
    """{"kernel", "recurrent_kernel"[, "bias"]} of an LSTM layer's group, or None if it is not one."""
    try:
        cell = group["cell"]["vars"] if "cell" in group and "vars" in group["cell"] else None
    except Exception:
        cell = None
    if cell is None or not _is_group(cell):
        return None
    keys = sorted(cell.keys())
    if keys not in (["0", "1"], ["0", "1", "2"]):
        raise ModelFileError(f"{path}: {label}/cell/vars: expected the variables 0 (kernel), 1 (recurrent_kernel) "
                             f"and 2 (bias) of a Keras LSTMCell, got {keys}")
    return {KERAS_NAMES[int(k)]: _dataset(cell, k, path, f"{label}/cell/vars/{k}") for k in keys}


def _keras3_layers(root, path) -> dict[str, list[dict]]:
    """Every LSTM layer in a Keras 3 weights file: group path -> [forward (, backward)] arrays."""
    found: dict[str, list[dict]] = {}

    def visit(group, label):
        arrays = _cell_arrays(group, path, label)
        if arrays is not None:
            found[label] = [arrays]
            return
        if "forward_layer" in group and "backward_layer" in group:
            fw = _cell_arrays(group["forward_layer"], path, f"{label}/forward_layer")
            bw = _cell_arrays(group["backward_layer"], path, f"{label}/backward_layer")
            if fw is not None and bw is not None:
                found[label] = [fw, bw]
                return
        for key in group.keys():
            try:
                child = group[key]
            except Exception as exc:
                raise ModelFileError(f"{path}: {label}/{key}: cannot be read ({type(exc).__name__}); the file "
                                     f"is damaged") from None
            if _is_group(child) and key != "vars":
                visit(child, f"{label}/{key}" if label else key)

    visit(root, "")
    return found


def _config_layers(config: dict, prefix: str = "") -> list[tuple[str, dict]]:
    """(weights path, layer config) of every layer of a Keras 3 model config, in model order."""
    out, used = [], {}
    layers = config.get("config", {}).get("layers", []) if isinstance(config.get("config"), dict) else []
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        name = snake_case(str(layer.get("class_name", "")))
        used[name] = used.get(name, -1) + 1
        label = f"{prefix}layers/{name}" + (f"_{used[name]}" if used[name] else "")
        out.append((label, layer))
        if layer.get("class_name") in ("Sequential", "Functional", "Model"):
            out += _config_layers(layer, label + "/")
    return out


def _inner_config(layer: dict) -> dict:
    """The LSTM config of an LSTM or Bidirectional(LSTM) layer config ({} otherwise)."""
    cls, cfg = layer.get("class_name"), layer.get("config") or {}
    if cls in LSTM_CLASSES:
        return cfg
    if cls == "Bidirectional" and isinstance(cfg.get("layer"), dict) and cfg["layer"].get("class_name") in LSTM_CLASSES:
        return cfg["layer"].get("config") or {}
    return {}


def _model(path, name, directions: list[dict], cfg: dict, layer_cfg: dict, *, keras2: bool) -> cv.Model:
    """One LSTM layer (one or two directions) as a one-layer Model with its conventions."""
    table = ACTIVATIONS_2 if keras2 else ACTIVATIONS_3
    version = "Keras 2" if keras2 else "Keras 3"
    conventions = [f"{version} LSTM: gate order i, f, c, o; kernel (D, 4H), recurrent_kernel (H, 4H), one bias; "
                   f"no run-time forget bias (unit_forget_bias only initialises the bias)"]
    refusal = ""
    recurrent, activation = "sigmoid", "tanh"
    if cfg:
        got = {}
        for key, default in (("recurrent_activation", "hard_sigmoid" if keras2 else "sigmoid"),
                             ("activation", "tanh")):
            value = cfg.get(key, default)
            value = value.get("config", value) if isinstance(value, dict) else value
            if value not in table:
                refusal = refusal or f"its {key} {value!r} has no equivalent in the reference"
                got[key] = None
            else:
                got[key] = table[value]
        recurrent, activation = got["recurrent_activation"] or "sigmoid", got["activation"] or "tanh"
        conventions.append(f"activations: recurrent {cfg.get('recurrent_activation', recurrent)!r} "
                           f"({recurrent}), {cfg.get('activation', activation)!r}")
        if cfg.get("go_backwards") and len(directions) == 1:
            conventions.append("go_backwards=True: a reverse-only layer whose outputs are in processed order")
        if not cfg.get("return_sequences", False):
            conventions.append("return_sequences=False: the model uses the last output only")
        if cfg.get("stateful"):
            conventions.append("stateful=True: the state is carried across batches")
        if cfg.get("time_major"):
            conventions.append("time_major=True: X is (T, B, D)")
    else:
        conventions.append("activations: not recorded in a weights file; Keras' defaults assumed (recurrent "
                           f"{'hard_sigmoid (Keras 2)' if keras2 else 'sigmoid'}, tanh): convert the whole-model "
                           f"file to read them")
        if keras2:
            recurrent = "hard_sigmoid_keras2"
    merge = (layer_cfg.get("config") or {}).get("merge_mode", "concat") if len(directions) == 2 else None
    if merge is not None:
        conventions.append(f"Bidirectional(merge_mode={merge!r}): outputs aligned to input steps; "
                           f"padded steps output zeros")
        if merge != "concat":
            refusal = refusal or (f"Bidirectional(merge_mode={merge!r}) combines the directions in a way no other "
                                  f"framework's LSTM does (only 'concat' converts)")
    layer = []
    for d, arrays in enumerate(directions):
        try:
            layer.append(cv.PACKINGS["keras"].from_native(arrays, cv.CANONICAL))
        except ValueError as exc:
            raise ModelFileError(f"{path}: {name}: {exc}") from None
    model = cv.Model([layer], 0.0, [], name=name, framework="keras", recurrent_activation=recurrent,
                     activation=activation, reverse=bool(cfg.get("go_backwards")) and len(directions) == 1,
                     conventions=conventions, refusal=refusal)
    return model


def _stack(models: list[tuple[cv.Model, dict]], path) -> list[cv.Model]:
    """Consecutive layers form one stacked LSTM when the earlier returns sequences and feeds the
    later (``follows``), with the same directions and activations."""
    out: list[cv.Model] = []
    for model, info in models:
        last = out[-1] if out else None
        if (last is not None and info.get("follows") and len(last.layers[0]) == len(model.layers[0])
                and not last.reverse and not model.reverse and not last.refusal and not model.refusal
                and (last.recurrent_activation, last.activation) == (model.recurrent_activation, model.activation)
                and model.layers[0][0].input_size == last.layers[-1][0].output_size * len(last.layers[0])):
            last.layers.append(model.layers[0])
            last.name += f"+{model.name}"
        else:
            out.append(model)
    for model in out:
        if len(model.layers) > 1:
            model.conventions.append(f"{len(model.layers)} layers stacked: each returns sequences into the next")
    return out


def read_keras3(path, options) -> list[cv.Model]:
    path = Path(path)
    data = read_bytes(path, "a Keras file")
    config = None
    if path.suffix == ".keras" or data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
                if "model.weights.h5" not in names:
                    raise ModelFileError(f"{path}: expected model.weights.h5 in the .keras archive, found "
                                         f"{names[:6]}; save it again with model.save('x.keras')")
                weights = archive.read("model.weights.h5")
                config = json.loads(archive.read("config.json")) if "config.json" in names else None
        except ModelFileError:
            raise
        except Exception as exc:
            raise ModelFileError(f"{path}: not a readable .keras archive ({type(exc).__name__}: {str(exc)[:160]}); "
                                 f"save it again with model.save('x.keras')") from None
        data = weights
    try:
        with _h5(path, data) as root:
            if "layer_names" in root.attrs or "model_weights" in root:
                return _read_legacy(root, path)
            found = _keras3_layers(root, path)
    except ModelFileError:
        raise
    except Exception as exc:  # h5py's errors on a damaged file (RuntimeError, KeyError, OSError, ...)
        raise ModelFileError(f"{path}: a damaged HDF5 file ({type(exc).__name__}: {str(exc)[:160]}); save it again "
                             f"with model.save / model.save_weights") from None
    if not found:
        raise ModelFileError(f"{path}: holds no Keras LSTM layer (no group with cell/vars 0, 1, 2)")
    layer_configs = dict(_config_layers(config)) if isinstance(config, dict) else {}
    ordered = [label for label, _ in _config_layers(config)] if layer_configs else []
    labels = [label for label in ordered if label in found] + sorted(set(found) - set(ordered), key=_natural)
    entries, previous, previous_cfg = [], None, {}
    for n, label in enumerate(labels):
        layer_cfg = layer_configs.get(label, {})
        cfg = _inner_config(layer_cfg) if layer_cfg else {}
        if layer_configs:
            index = ordered.index(label) if label in ordered else -1
            follows = (previous is not None and index == previous + 1 and _same_container(ordered[previous], label)
                       and bool(previous_cfg.get("return_sequences")) and _feeds(config, ordered, previous, index))
            previous, previous_cfg = (index if index >= 0 else None), cfg
        else:
            follows = n > 0 and _numbered_after(labels[n - 1], label)
        entries.append((_model(path, label, found[label], cfg, layer_cfg, keras2=False), {"follows": follows}))
    models = _stack(entries, path)
    if not layer_configs:
        for model in models:
            if len(model.layers) > 1:
                model.conventions.append("stacked because the layers are numbered in sequence and each one's input "
                                         "is the output of the one before; a .weights.h5 holds no topology: "
                                         "convert the .keras file if they are separate LSTMs")
    return models


def _numbered_after(a: str, b: str) -> bool:
    """``layers/lstm`` then ``layers/lstm_1`` (Keras numbers layers of one class in model order)."""
    def split(label):
        m = re.match(r"^(.*?)(?:_(\d+))?$", label)
        return m.group(1), int(m.group(2) or 0)
    (base_a, k_a), (base_b, k_b) = split(a), split(b)
    return base_a == base_b and k_b == k_a + 1


def _natural(label: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", label)]


def _same_container(a: str, b: str) -> bool:
    return a.rsplit("/", 1)[0] == b.rsplit("/", 1)[0]


def _feeds(config: dict, ordered: list[str], previous: int, index: int) -> bool:
    """In a Sequential, adjacent layers feed each other; in a Functional model the later layer's
    inbound node must be the earlier layer's output."""
    layers = {label: layer for label, layer in _config_layers(config)}
    later = layers[ordered[index]]
    inbound = later.get("inbound_nodes")
    if not inbound:
        return True  # Sequential
    earlier = (layers[ordered[previous]].get("config") or {}).get("name")
    text = json.dumps(inbound)
    return earlier is not None and f'"keras_history": ["{earlier}"' in text


# --------------------------------------------------------------------------------------------
# Keras 2 (and Keras 3's legacy .h5): layer_names / weight_names

def _attr_list(value) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in np.atleast_1d(value)]


def _read_legacy(root, path) -> list[cv.Model]:
    weights = root["model_weights"] if "model_weights" in root else root
    try:
        layer_names = _attr_list(weights.attrs["layer_names"])
    except Exception:
        raise ModelFileError(f"{path}: a Keras HDF5 file without a readable layer_names attribute; save it again "
                             f"with model.save / model.save_weights") from None
    version = str(root.attrs.get("keras_version", weights.attrs.get("keras_version", "2")))
    version = version.decode() if isinstance(version, bytes) else version
    keras2 = not version.startswith("3")
    config = {}
    if "model_config" in root.attrs:
        try:
            raw = root.attrs["model_config"]
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        except Exception:
            raise ModelFileError(f"{path}: model_config: not valid JSON; save the model again") from None
    by_name = {}
    for layer in (config.get("config") or {}).get("layers", []) if isinstance(config, dict) else []:
        if isinstance(layer, dict):
            by_name[(layer.get("config") or {}).get("name")] = layer
    entries = []
    for position, name in enumerate(layer_names):
        if name not in weights:
            raise ModelFileError(f"{path}: {name}: listed in layer_names but missing from the file")
        group = weights[name]
        names = _attr_list(group.attrs.get("weight_names", []))
        directions: dict[int, dict] = {}
        for weight in names:
            leaf = weight.rsplit("/", 1)[-1].split(":")[0]
            if leaf not in KERAS_NAMES:
                break
            d = 1 if "backward" in weight else 0
            directions.setdefault(d, {})[leaf] = _dataset(group, weight, path, f"{name}/{weight}")
        else:
            if not directions or "recurrent_kernel" not in directions.get(0, {}):
                continue
            layer_cfg = by_name.get(name, {})
            cfg = _inner_config(layer_cfg) if layer_cfg else {}
            if layer_cfg and not cfg:
                continue  # another recurrent layer (GRU) with the same variable names
            previous = entries[-1][1]["position"] if entries else None
            follows = previous == position - 1 and bool(config) and bool(entries[-1][1]["cfg"].get("return_sequences"))
            entries.append((_model(path, name, [directions[d] for d in sorted(directions)], cfg, layer_cfg,
                                   keras2=keras2),
                            {"cfg": cfg, "follows": follows, "position": position}))
    if not entries:
        raise ModelFileError(f"{path}: holds no Keras LSTM layer (no layer with kernel, recurrent_kernel and bias)")
    models = _stack(entries, path)
    for model in models:
        model.conventions.insert(0, f"Keras {version} HDF5 file")
    return models


# --------------------------------------------------------------------------------------------
# Writing a Keras 3 .weights.h5

def matching_model(model: cv.Model) -> str:
    """The Keras code that builds the model a written .weights.h5 loads into."""
    p = model.layers[0][0]
    options = "return_sequences=True"
    if model.layers[0][0].bias is None:
        options += ", use_bias=False"
    if (model.recurrent_activation, model.activation) != ("sigmoid", "tanh"):
        options += f", recurrent_activation={model.recurrent_activation!r}, activation={model.activation!r}"
    if model.reverse:
        options += ", go_backwards=True"
    layer = f"keras.layers.LSTM({p.hidden_size}, {options})"
    if model.bidirectional:
        layer = f"keras.layers.Bidirectional({layer})"
    layers = ", ".join([f"keras.Input((None, {p.input_size}))"] + [layer] * len(model.layers))
    return f"keras.Sequential([{layers}])"


def write(model: cv.Model, *, forget_bias: float = 0.0) -> tuple[bytes, dict]:
    """A Keras 3 .weights.h5 for :func:`matching_model` (written with h5py: no Keras needed)."""
    h5py = need("h5py", "OUT", "writing a Keras .weights.h5 file")
    cv.refuse_options(model, "keras")
    buffer = io.BytesIO()
    shapes = {}
    kind = "bidirectional" if model.bidirectional else "lstm"
    with h5py.File(buffer, "w") as root:
        for k, layer in enumerate(model.layers):
            label = f"layers/{kind}" + (f"_{k}" if k else "")
            subs = ["forward_layer", "backward_layer"] if model.bidirectional else [""]
            for sub, p in zip(subs, layer):
                native = cv._to_native("keras", p, model.forget_bias - forget_bias)
                group = root.create_group("/".join(filter(None, (label, sub, "cell", "vars"))))
                group.attrs["name"] = "lstm_cell"
                for index, name in enumerate(KERAS_NAMES):
                    if name in native:
                        group.create_dataset(str(index), data=np.asarray(native[name]))
                        shapes[f"{'/'.join(filter(None, (label, sub)))}/{name}"] = tuple(np.shape(native[name]))
        root.create_group("vars").attrs["name"] = "sequential"
    return buffer.getvalue(), shapes
