"""The conformance matrix as the report shows it: the result files of a results directory, read by
the one reader, and the names, letters and counts every view of it (terminal, Markdown, HTML)
uses."""

from __future__ import annotations

import math
from pathlib import Path

from ..harness.results import STATUSES, ResultFile, ResultFileError, read_result_file

LETTERS = {"pass": "P", "fail": "F", "unsupported": "U", "expected-failure": "X", "not-set-up": "N", None: "."}
LEGEND = ("P pass   F fail   U unsupported (the backend cannot express it)   "
          "X expected failure (a documented known issue)   N not set up on this machine   . not run")
STATUS_WORDS = {"pass": "pass", "fail": "fail", "unsupported": "unsupported", "expected-failure": "known",
                "not-set-up": "not set up"}
_FIRST = ("forward_parity",)


class ReportError(ValueError):
    """No usable result file, or an unreadable one (exit status 3)."""


def load_results(directory: Path) -> list[ResultFile]:
    """Every ``*.json`` result file in ``directory`` (sorted by backend), read by the one reader
    (``conformance.harness.results``); a file it cannot read is a ReportError naming it."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ReportError(f"results directory {directory}: not found (run tox, which writes "
                          f"results/<backend>.json, or give the directory)")
    results = []
    for path in sorted(directory.glob("*.json")):
        try:
            results.append(read_result_file(path))
        except ResultFileError as exc:
            raise ReportError(str(exc)) from None
    results.sort(key=lambda r: r.backend)
    return results


def property_names(results: list[ResultFile], section: str = "properties") -> list[str]:
    names = set()
    for r in results:
        names |= set(getattr(r, section))
    return [n for n in _FIRST if n in names] + sorted(names - set(_FIRST))


def display_name(name: str) -> str:
    """A property's name, or a golden case's name without the "golden_" of its result row."""
    return name[len("golden_"):] if name.startswith("golden_") else name


def counts_text(result: ResultFile, section: str = "properties") -> str:
    """"20 pass, 0 fail, 6 unsupported, 1 known" (every status that occurs, pass and fail always)."""
    c = result.counts(section)
    parts = [f"{c['pass']} pass", f"{c['fail']} fail"]
    parts += [f"{c[s]} {STATUS_WORDS[s]}" for s in STATUSES if s not in ("pass", "fail") and c[s]]
    return ", ".join(parts)


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, (int, float)):
        return f"{value:.3g}"
    return str(value)


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary before ``limit`` characters, with an ellipsis."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


SIZE_KEYS = ("input_size", "hidden_size", "batch", "steps")


def sizes_reached(result: ResultFile) -> tuple[dict, int]:
    """The largest input size, hidden size, batch and steps compared over every property of a
    backend (rows' "largest"), and how many comparisons were of cases drawn at scale."""
    largest = {k: 0 for k in SIZE_KEYS}
    at_scale = 0
    for row in result.properties.values():
        for k in SIZE_KEYS:
            largest[k] = max(largest[k], int((row.get("largest") or {}).get(k, 0)))
        at_scale += int(row.get("at_scale") or 0)
    return largest, at_scale


def produced(result: ResultFile) -> dict[str, int]:
    """What the backend ran (``Output.produced``: a converter's product), summed over its
    properties: product -> compared outputs."""
    out: dict[str, int] = {}
    for row in result.properties.values():
        for what, n in (row.get("produced") or {}).items():
            out[what] = out.get(what, 0) + int(n)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
