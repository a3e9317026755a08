"""What every model-file reader and writer shares: the one error type, lazy imports of the
format packages with a clear message, guarded array checks, and named arrays -> LSTMs.

Bad input gets one line: what was wrong, in which file (and key), and what to do.  Every reader
raises :class:`ModelFileError` (a ValueError: ``convert`` exits 3 with the message) for anything
the file holds that it cannot read, never another exception: the readers are fuzzed
(tests/model_files/test_fuzz_readers.py).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np

from .. import convert as cv

#: package -> (what to install, where it is installed in this project).
PACKAGES = {
    "safetensors": ("pip install safetensors", "tox -e ports"),
    "h5py": ("pip install h5py", "tox -e ports"),
    "onnx": ("pip install onnx==1.23.2", "tox -e ports or tox -e onnxruntime"),
    "onnxruntime": ("pip install onnxruntime==1.31.1", "tox -e ports or tox -e onnxruntime"),
    "torch": ("pip install torch==2.13.0", "tox -e ports or tox -e torch"),
    "msgpack": ("pip install msgpack", "tox -e ports or tox -e flax"),
    "tensorflow": ("pip install tensorflow-cpu==2.21.0", "tox -e tf"),
}


class ModelFileError(ValueError):
    """A model file that cannot be read or written: the message names the file (and key) and says
    what to do, on one line (line breaks from names in the file are escaped)."""

    def __init__(self, message: str):
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))


def need(package: str, path, purpose: str):
    """Import ``package`` or say which package or tox env provides it."""
    try:
        return importlib.import_module(package)
    except ImportError:
        install, env = PACKAGES.get(package, (f"pip install {package}", "tox -e ports"))
        raise ModelFileError(f"{path}: {purpose} needs the {package} package, which is not installed here: "
                             f"{install}, or run this in {env}") from None


def where(path, key: str | None = None) -> str:
    """``path: key`` for a message (a key that is not printable is quoted, so that the message
    stays one line)."""
    if key is None or key == "":
        return f"{path}" if key is None else f"{path}: ''"
    return f"{path}: " + (key if str(key).isprintable() else repr(key))


def float_array(value, path, key: str) -> np.ndarray:
    """A real, finite-shaped floating array; integers become float32 later (``convert.floating``)
    with a note, anything else is refused by name."""
    try:
        a = np.asarray(value)
    except Exception as exc:  # a reader's lazy array that fails to materialise
        raise ModelFileError(f"{where(path, key)}: could not be read ({type(exc).__name__}: {exc}); the file "
                             f"is damaged or truncated: write it again") from None
    if a.dtype.kind not in "fiub":
        raise ModelFileError(f"{where(path, key)}: expected a floating-point array, got dtype {a.dtype}; "
                             f"store the weights as float16, float32 or float64")
    return a


# --------------------------------------------------------------------------------------------
# Named arrays (npz, safetensors, a torch state_dict, a Flax tree) -> one Model per LSTM

TORCH_NAME = re.compile(r"^(.*?)(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
FLAX_CELL = re.compile(r"^(.*?)(ii|if|if_|ig|io|hi|hf|hg|ho)/(kernel|bias)$")


def guess_framework(arrays: dict, path) -> str:
    """torch when every name is a state_dict name of nn.LSTM; flax / flax_nnx for a Flax
    LSTMCell tree; otherwise ask for --from."""
    keys = list(arrays)
    if any(TORCH_NAME.match(k) for k in keys):
        return "torch"  # a whole model's state_dict: its other tensors are not LSTM weights
    if keys and all(FLAX_CELL.match(k) for k in keys):
        return "flax_nnx" if any(FLAX_CELL.match(k).group(2) == "if_" for k in keys) else "flax"
    raise ModelFileError(f"{path}: cannot tell whose names these are ({', '.join(sorted(keys)[:6])}"
                         f"{', ...' if len(keys) > 6 else ''}): pass --from FRAMEWORK")


def models_from_arrays(arrays: dict, framework: str, path, *, forget_bias=None, absent=()) -> list[cv.Model]:
    """Named arrays of ``framework`` -> one Model per LSTM.  A torch state_dict with several key
    prefixes ("encoder.lstm.", "decoder.") holds one LSTM per prefix; a Flax tree one per cell
    path, a forward_rnn / backward_rnn pair (``nn.Bidirectional``) or ``layer<k>/forward|backward/``
    cells (this tool's own layout) making one LSTM.  Other frameworks' names hold one LSTM."""
    framework = cv._framework(framework, "--from")
    if framework == "torch":
        groups: dict[str, dict] = {}
        for key, value in arrays.items():
            m = TORCH_NAME.match(key)
            prefix = m.group(1) if m else ""
            groups.setdefault(prefix, {})[key] = value
        return [_read(group, framework, path, prefix.rstrip("."), forget_bias, absent, strip=prefix)
                for prefix, group in groups.items()]
    if framework in ("flax", "flax_nnx"):
        return _flax_models(arrays, framework, path, forget_bias, absent)
    return [_read(arrays, framework, path, "", forget_bias, absent)]


def _read(arrays: dict, framework: str, path, name: str, forget_bias, absent, *, strip: str = "") -> cv.Model:
    if strip:
        arrays = {k[len(strip):]: v for k, v in arrays.items()}
    try:
        model = cv.read(arrays, framework, forget_bias=forget_bias, absent=absent)
    except ModelFileError:
        raise
    except ValueError as exc:
        text = str(exc)
        if text.startswith("weights: "):
            text = text[len("weights: "):]
        raise ModelFileError(f"{path}{f' ({name})' if name else ''}: {text}") from None
    model.name = name
    if strip:
        model.notes = [n for n in model.notes if not n.startswith("stripped the key prefix")]
    return model


def _flax_models(arrays: dict, framework: str, path, forget_bias, absent) -> list[cv.Model]:
    cells: dict[str, dict] = {}
    for key, value in arrays.items():
        m = FLAX_CELL.match(key)
        if not m:
            raise ModelFileError(f"{where(path, key)}: not a name of a Flax LSTMCell's parameters (expected "
                                 f"<path>/ii/kernel ... <path>/ho/bias)")
        cells.setdefault(m.group(1), {})[f"{m.group(2)}/{m.group(3)}"] = value
    own = re.compile(r"^(.*?)layer(\d+)/(?:(forward|backward)/)?$")
    pairs = re.compile(r"^(.*?)(forward_rnn|backward_rnn)/(?:cell/)?$")
    grouped: dict[str, dict] = {}
    for prefix, names in cells.items():
        m, p = own.match(prefix), pairs.match(prefix)
        if m:
            base, inner = m.group(1), prefix[len(m.group(1)):]
        elif p:
            base = p.group(1)
            inner = f"layer0/{'forward' if p.group(2) == 'forward_rnn' else 'backward'}/"
        else:
            base, inner = prefix, ""
        grouped.setdefault(base, {}).update({inner + k: v for k, v in names.items()})
    return [_read(group, framework, path, base.rstrip("/"), forget_bias, absent)
            for base, group in grouped.items()]


def output_paths(path: Path, models: list[cv.Model], holds_many: bool) -> list[tuple[Path, list[cv.Model]]]:
    """Where each model goes: all in ``path`` when the format holds several LSTMs, else one file
    each, ``OUT`` with the LSTM's name before the suffix (``model.encoder.onnx``)."""
    if holds_many or len(models) == 1:
        return [(path, models)]
    out = []
    for k, model in enumerate(models):
        tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.name).strip("._") or f"lstm{k}"
        suffixes = "".join(path.suffixes[-2:]) if path.name.endswith(".weights.h5") else path.suffix
        out.append((path.with_name(path.name[:len(path.name) - len(suffixes)] + f".{tag}{suffixes}"), [model]))
    return out
