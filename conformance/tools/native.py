"""Command-line helpers of the tools that take a user's LSTM callable (``check``, ``detect``):
loading ``module:attribute`` or ``path/to/file.py:attribute``.

The contract itself (``Convention``, ``call_native``, the adapter) is
``adapters.callable_adapter``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Callable

from reference.gates import GATE_ORDER_PRESETS
from reference.layout import PRESET_PACKINGS


def presets_with_order(order: str, packing: str = "gate-major") -> list[str]:
    """Names in GATE_ORDER_PRESETS whose order is ``order`` and whose framework packs ``packing``
    (which frameworks pack this way)."""
    return [name for name, value in GATE_ORDER_PRESETS.items()
            if value == order and PRESET_PACKINGS.get(name, "gate-major") == packing]


# ------------------------------------------------------------------------------------------
# Loading

def load_callable(target: str) -> Callable:
    """Import ``module:attribute`` or ``path/to/file.py:attribute`` (the attribute may be dotted).

    Raises ValueError with the reason when the target is malformed, cannot be imported, lacks the
    attribute or is not callable.
    """
    if not isinstance(target, str) or ":" not in target:
        raise ValueError(f"callable: expected MODULE:ATTRIBUTE or path/to/file.py:ATTRIBUTE, got {target!r}")
    location, _, attribute = target.rpartition(":")
    if not location or not attribute:
        raise ValueError(f"callable: expected MODULE:ATTRIBUTE or path/to/file.py:ATTRIBUTE, got {target!r}")
    if location.endswith(".py") or "/" in location or "\\" in location:
        path = Path(location)
        if not path.is_file():
            raise ValueError(f"callable: expected an existing Python file before ':', got {location!r} "
                             f"(no such file)")
        name = "_lstm_native_" + "".join(ch if ch.isalnum() else "_" for ch in str(path.resolve()))
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"callable: cannot import {location!r} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise ValueError(f"callable: importing {location!r} failed: {type(exc).__name__}: {exc}") from exc
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(location)
        except Exception as exc:
            raise ValueError(f"callable: importing module {location!r} failed: "
                             f"{type(exc).__name__}: {exc}") from exc
    obj = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"callable: {location!r} has no attribute {attribute!r}") from None
    if not callable(obj):
        raise ValueError(f"callable: {target!r} is a {type(obj).__name__}, expected a callable "
                         f"(x, h0, c0, kernel, recurrent_kernel, bias) -> (y, h_T, c_T)")
    return obj


def answer(args, result, text: str) -> int:
    """Print ``result`` as one JSON object (``--json``) or as ``text``; return its exit status."""
    if args.json:
        print(json.dumps({"callable": args.callable, **result.to_dict()}, indent=2))
    else:
        print(text)
    return result.exit_code
