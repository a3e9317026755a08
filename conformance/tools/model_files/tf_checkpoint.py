"""TensorFlow checkpoints, read with ``tf.train.load_checkpoint`` (TensorFlow needed: tox -e tf).

TF1 ``LSTMCell`` / ``BasicLSTMCell`` variables: ``<scope>/lstm_cell/kernel`` (D + H, 4H) and
``bias``, with ``w_i_diag`` ... and ``projection/kernel``; ``MultiRNNCell`` layers under
``cell_<k>/``, a bidirectional layer under ``fw/`` and ``bw/`` (the tf1 packing; the cell adds
forget_bias, 1.0 by default, at run time: ``--forget-bias`` says otherwise).  Keras variables of
an object-based checkpoint (``model.save_weights`` in TF format, ``tf.train.Checkpoint``):
``<path>/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE``, ``recurrent_kernel``, ``bias``, with
``forward_layer/`` and ``backward_layer/`` for a Bidirectional layer.  Optimizer slots are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import convert as cv
from .common import ModelFileError, float_array, models_from_arrays, need

TF1_VARIABLE = re.compile(r"^(.*?)(?:basic_)?lstm_cell/(kernel|bias|w_i_diag|w_f_diag|w_o_diag|projection/kernel)$")
KERAS_VARIABLE = re.compile(r"^(.*?)(?:(forward_layer|backward_layer)/)?cell/(kernel|recurrent_kernel|bias)"
                            r"/\.ATTRIBUTES/VARIABLE_VALUE$")


def _prefix(path: Path) -> str:
    if path.is_dir():
        return str(path)  # load_checkpoint finds the latest checkpoint of a directory
    text = str(path)
    return text[:-len(".index")] if text.endswith(".index") else text


def read(path, *, forget_bias=None) -> list[cv.Model]:
    path = Path(path)
    tf = need("tensorflow", path, "reading a TensorFlow checkpoint")
    try:
        reader = tf.train.load_checkpoint(_prefix(path))
        shapes = reader.get_variable_to_shape_map()
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable TensorFlow checkpoint ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); give the checkpoint prefix "
                             f"(model.ckpt for model.ckpt.index) or its directory") from None

    def value(name):
        try:
            return float_array(reader.get_tensor(name), path, name)
        except ModelFileError:
            raise
        except Exception as exc:
            raise ModelFileError(f"{path}: {name}: cannot be read ({type(exc).__name__}); the checkpoint is "
                                 f"damaged") from None

    tf1: dict[str, dict] = {}
    keras: dict[str, dict] = {}
    for name in sorted(shapes):
        if "OPTIMIZER_SLOT" in name or "/Adam" in name or "/Momentum" in name:
            continue
        m = KERAS_VARIABLE.match(name)
        if m:
            direction = {"forward_layer": "forward/", "backward_layer": "backward/"}.get(m.group(2), "")
            key = f"layer0/{direction}{m.group(3)}" if direction else m.group(3)
            keras.setdefault(m.group(1), {})[key] = value(name)
            continue
        m = TF1_VARIABLE.match(name)
        if m:
            scope = m.group(1)
            layer = re.search(r"cell_(\d+)/", scope)
            direction = re.search(r"(?:^|/)(fw|bw)/", scope)
            base = re.sub(r"(?:^|/)(fw|bw)/", "/", re.sub(r"(multi_rnn_cell/)?cell_\d+/", "", scope)).strip("/")
            key = f"layer{int(layer.group(1)) if layer else 0}/"
            if direction:
                key += {"fw": "forward/", "bw": "backward/"}[direction.group(1)]
            tf1.setdefault(base, {})[key + m.group(2)] = value(name)
    models = []
    for base, arrays in tf1.items():
        if all(k.startswith("layer0/") and k.count("/") == 1 for k in arrays):
            arrays = {k[len("layer0/"):]: v for k, v in arrays.items()}
        for model in models_from_arrays(arrays, "tf1", path, forget_bias=forget_bias):
            model.name = base or "rnn"
            model.conventions = [f"TF1 LSTMCell variables: fused kernel (D + H, 4H) on concat([x, h]); gate order "
                                 f"i, j, f, o; the cell adds forget_bias={model.forget_bias:g} at run time"]
            models.append(model)
    for base, arrays in keras.items():
        for model in models_from_arrays(arrays, "keras", path):
            model.name = base.rstrip("/") or "lstm"
            model.conventions = ["Keras LSTM variables (object-based checkpoint): kernel (D, 4H), recurrent_kernel "
                                 "(H, 4H), one bias; gate order i, f, c, o; activations are not recorded in a "
                                 "checkpoint (Keras' defaults assumed)"]
            models.append(model)
    if not models:
        raise ModelFileError(f"{path}: holds no LSTM variables (no lstm_cell/kernel, no cell/kernel among "
                             f"{len(shapes)} variables)")
    return models
