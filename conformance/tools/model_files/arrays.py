"""Files of named arrays: .npz, .safetensors, a PyTorch .pt / .pth state_dict, a Flax .msgpack.

None of them is ever unpickled: .npz goes through ``np.load(allow_pickle=False)``, .safetensors
through the safetensors package (a JSON header and raw bytes), .msgpack through msgpack with
only Flax's ndarray extension decoded, and .pt only through PyTorch's allow-listed loader
``torch.load(..., weights_only=True)`` when torch is installed: a .pt holding anything but
tensors and plain containers is refused.  Without torch a .pt is refused with the command that
exports it to .safetensors.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np

from .. import convert as cv
from .common import FLAX_CELL, TORCH_NAME, ModelFileError, float_array, guess_framework, need, where

ZIP_MAGIC = b"PK\x03\x04"
NPY_MAGIC = b"\x93NUMPY"


def read_bytes(path: Path, what: str) -> bytes:
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, expected {what}")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file (expected {what})") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc}); check the path and its "
                             f"permissions") from None


# --------------------------------------------------------------------------------------------
# .npz

def load_npz(path) -> dict[str, np.ndarray]:
    """Named arrays of an .npz file, never unpickled; a .npy, a text file or a damaged archive
    gets its own message."""
    path = Path(path)
    data = read_bytes(path, "an .npz file (np.savez)")
    if data.startswith(NPY_MAGIC):
        raise ModelFileError(f"{path}: is a .npy file (one unnamed array); convert reads named arrays: save "
                             f"them with np.savez(OUT, kernel=..., ...) under the framework's names")
    if not data.startswith(ZIP_MAGIC):
        kind = "a text file" if _is_text(data) else "not an .npz file"
        raise ModelFileError(f"{path}: {kind} (an .npz is a zip archive written by np.savez); give an .npz, "
                             f"or a model file with its own extension (.safetensors, .pt, .keras, .onnx, ...)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            out = {}
            for key in archive.files:
                try:
                    out[key] = archive[key]
                except ValueError as exc:
                    if "pickle" in str(exc):
                        raise ModelFileError(f"{path}: {key}: holds pickled (object) data; arrays are read "
                                             f"only without pickle: save plain numeric arrays") from None
                    raise
            return out
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{path}: is a damaged .npz archive ({type(exc).__name__}: {exc}); write it "
                             f"again with np.savez") from None


def _is_text(data: bytes) -> bool:
    head = data[:512]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(head) and b"\x00" not in head


def npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# .safetensors

SAFETENSORS_DTYPES = {"F16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "BOOL"}


def load_safetensors(path) -> tuple[dict[str, np.ndarray], dict]:
    """(named arrays, metadata) of a .safetensors file, through the safetensors package."""
    path = Path(path)
    data = read_bytes(path, "a .safetensors file")
    header = _safetensors_header(path, data)
    unsupported = {k: v.get("dtype") for k, v in header.items() if k != "__metadata__"
                   and isinstance(v, dict) and str(v.get("dtype")) not in SAFETENSORS_DTYPES}
    if unsupported:
        key, dtype = next(iter(unsupported.items()))
        raise ModelFileError(f"{where(path, key)}: dtype {dtype!r} cannot be read as NumPy (bfloat16 and 8-bit "
                             f"floats have no NumPy type); save the weights as float32 (tensor.float())")
    st = need("safetensors.numpy", path, "reading a .safetensors file")
    try:
        arrays = st.load(data)
    except Exception as exc:  # the package's SafetensorError and friends
        raise ModelFileError(f"{path}: is not a valid .safetensors file ({type(exc).__name__}: {exc}); write it "
                             f"again with safetensors' save_file") from None
    metadata = header.get("__metadata__") or {}
    return {k: float_array(v, path, k) for k, v in arrays.items()}, metadata


def _safetensors_header(path: Path, data: bytes) -> dict:
    """The JSON header (8-byte little-endian length, then JSON), checked before the package
    reads the file, so that a damaged file is named with what is wrong."""
    if len(data) < 8:
        raise ModelFileError(f"{path}: truncated: {len(data)} bytes, shorter than a .safetensors header")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ModelFileError(f"{path}: truncated or not a .safetensors file: its header claims {size} bytes, the "
                             f"file has {len(data) - 8} after the length")
    try:
        header = json.loads(data[8:8 + size])
    except (ValueError, UnicodeDecodeError):
        raise ModelFileError(f"{path}: not a .safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: not a .safetensors file (its header is not a JSON object)")
    return header


def safetensors_bytes(arrays: dict, metadata: dict | None = None) -> bytes:
    st = need("safetensors.numpy", "OUT", "writing a .safetensors file")
    return st.save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=metadata)


def named_framework(arrays: dict, framework: str | None, path) -> tuple[dict, str]:
    """The framework whose names ``arrays`` has (``--from``, else guessed) and the arrays, with
    a Flax tree's "." separators turned into "/"."""
    if framework:
        name = cv._framework(framework, "--from")
        if name in ("flax", "flax_nnx"):
            arrays = _slashes(arrays)
        return arrays, name
    try:
        return arrays, guess_framework(arrays, path)
    except ModelFileError:
        flat = _slashes(arrays)
        if flat and all(FLAX_CELL.match(k) for k in flat):
            return flat, guess_framework(flat, path)
        raise


def _slashes(arrays: dict) -> dict:
    return {k.replace(".", "/"): v for k, v in arrays.items()}


def lstm_tensors(arrays: dict, path) -> tuple[dict, list[str]]:
    """The tensors of a whole model's state_dict that belong to nn.LSTM modules, and a note
    naming the others (a model holds more than its LSTMs: they are left out, and said so)."""
    keep = {k: v for k, v in arrays.items() if TORCH_NAME.match(k)}
    other = sorted(set(arrays) - set(keep))
    if not keep:
        raise ModelFileError(f"{path}: holds no nn.LSTM weights (no key like weight_ih_l0 among "
                             f"{', '.join(other[:6])}{', ...' if len(other) > 6 else ''})")
    notes = [f"left out {len(other)} tensors that are not nn.LSTM weights: {', '.join(other[:5])}"
             f"{', ...' if len(other) > 5 else ''}"] if other else []
    return keep, notes


# --------------------------------------------------------------------------------------------
# .pt / .pth

def load_torch(path) -> dict[str, np.ndarray]:
    """A state_dict saved with torch.save, through ``torch.load(weights_only=True)`` only.  A
    checkpoint dict that nests the state_dict ({"model": ..., "epoch": 3}) is flattened with "."."""
    path = Path(path)
    read_bytes(path, "a .pt file (torch.save of a state_dict)")
    try:
        import torch
    except ImportError:
        raise ModelFileError(
            f"{path}: a .pt file is a pickle, which this project reads only through PyTorch's allow-listed "
            f"loader torch.load(..., weights_only=True), and torch is not installed here: run this in "
            f"tox -e ports (or pip install torch==2.13.0), or export the state_dict to .safetensors where "
            f"torch is: python -c \"import torch, safetensors.torch as st; "
            f"st.save_file(torch.load('{path}', weights_only=True), '{path.with_suffix('.safetensors')}')\"") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines() if line.strip()]
        text = next((line for line in lines if "Unsupported global" in line or "Unpickler error" in line),
                    lines[0] if lines else type(exc).__name__)
        text = text.split(" Please use", 1)[0]
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or "Unpickler" in str(exc):
            raise ModelFileError(f"{path}: refused: it holds objects other than tensors, and a .pt is read only "
                                 f"through torch.load(weights_only=True) ({text[:200]}); save the "
                                 f"state_dict instead: torch.save(model.state_dict(), PATH)") from None
        raise ModelFileError(f"{path}: not a readable torch.save file ({type(exc).__name__}: {text[:200]}); "
                             f"save it again with torch.save(model.state_dict(), PATH)") from None
    flat: dict[str, np.ndarray] = {}

    def walk(value, prefix):
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu()
            if t.dtype == torch.bfloat16:
                t = t.float()
            flat[prefix.rstrip(".")] = t.numpy()
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{prefix}{key}.")

    walk(obj, "")
    if not flat:
        raise ModelFileError(f"{path}: holds no tensors (torch.load gave a {type(obj).__name__}); save the "
                             f"state_dict: torch.save(model.state_dict(), PATH)")
    return {k: float_array(v, path, k) for k, v in flat.items()}


# --------------------------------------------------------------------------------------------
# .msgpack (flax.serialization)

_NDARRAY_EXT = 1  # flax.serialization._MsgpackExtType.ndarray


def load_msgpack(path) -> dict[str, np.ndarray]:
    """A Flax state tree written by ``flax.serialization.to_bytes`` / ``msgpack_serialize``,
    flattened with "/"; only ndarray leaves of real dtypes are decoded."""
    path = Path(path)
    data = read_bytes(path, "a .msgpack file (flax.serialization.to_bytes)")
    msgpack = need("msgpack", path, "reading a Flax .msgpack file")

    def ext_hook(code, payload):
        if code != _NDARRAY_EXT:
            raise ModelFileError(f"{path}: holds a msgpack extension of type {code}, not a Flax ndarray")
        shape, dtype, buffer = msgpack.unpackb(payload, raw=False)
        dtype = np.dtype(dtype)
        if dtype.kind not in "fiub":
            raise ModelFileError(f"{path}: holds an array of dtype {dtype}; expected float weights")
        return np.frombuffer(buffer, dtype=dtype).reshape(shape).copy()

    try:
        tree = msgpack.unpackb(data, ext_hook=ext_hook, raw=False, strict_map_key=False)
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{path}: not a valid Flax .msgpack file ({type(exc).__name__}: {exc}); write it "
                             f"again with flax.serialization.to_bytes") from None
    flat: dict[str, np.ndarray] = {}

    def walk(value, prefix):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{prefix}{key}/")
        elif isinstance(value, np.ndarray):
            flat[prefix.rstrip("/")] = value
        elif value is not None:
            raise ModelFileError(f"{where(path, prefix.rstrip('/'))}: expected an array or a dict of them, got "
                                 f"a {type(value).__name__}")

    walk(tree, "")
    if not flat:
        raise ModelFileError(f"{path}: holds no arrays")
    if "params" in {k.split("/", 1)[0] for k in flat} and all(k.startswith("params/") for k in flat):
        flat = {k[len("params/"):]: v for k, v in flat.items()}
    return flat


def msgpack_bytes(arrays: dict) -> bytes:
    """``arrays`` (names with "/") as the nested tree Flax's ``msgpack_restore`` gives back."""
    msgpack = need("msgpack", "OUT", "writing a Flax .msgpack file")
    tree: dict = {}
    for key, value in arrays.items():
        node = tree
        *parents, leaf = key.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = np.ascontiguousarray(value)

    def default(obj):
        if isinstance(obj, np.ndarray):
            return msgpack.ExtType(_NDARRAY_EXT, msgpack.packb((obj.shape, obj.dtype.name, obj.tobytes("C")),
                                                               use_bin_type=True))
        raise TypeError(type(obj).__name__)

    return msgpack.packb(tree, default=default, strict_types=True, use_bin_type=True)
