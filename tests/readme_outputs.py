"""Checking the outputs README.md prints against what the commands print now (used by
tests/test_readme.py here and tests/model_files/test_readme_porter.py in tox -e ports).

Each ``$ python -m conformance ...`` line of a README code block is a command; the lines after it
(up to the next ``$`` line) are its output.  Each must appear in what the command prints, in the
same order.  In a README line, ``...`` stands for anything (a line of just ``...`` for lines left
out), and times ("0.25 s") may differ."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIME = re.compile(r"\d+(\.\d+)? s\b")


def readme_commands(text: str) -> list[tuple[str, list[str]]]:
    """(command, expected lines) of every ``$ python -m conformance ...`` line of the README's code
    blocks; the lines after it, up to the next ``$`` line or the end of the block, are its output."""
    out = []
    for block in re.findall(r"```\n(\$ python -m conformance .*?)```", text, re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, body = chunk.partition("\n")
            out.append((command.strip(), [line for line in body.splitlines()
                                          if line.strip() and line.strip() != "..."]))
    return out


def inputs_of(command: str) -> list[str]:
    """The file arguments of a command that name model files (the README's porter files)."""
    return [a for a in shlex.split(command) if a in PORTER_FILES]


#: Files the porter workflow reads, written by examples/porter_files.py (torch and Keras 3): its
#: commands run in tox -e ports (tests/model_files/test_readme_porter.py), the others here.
PORTER_FILES = {"tagger.pt", "encoder.keras", "partial.pt"}


def pattern(line: str) -> re.Pattern:
    def literal(part: str) -> str:  # the part, with any time ("1.09 s") matching any time
        return r"\d+(\.\d+)? s".join(re.escape(piece) for piece in TIME.split(part)[::2])

    return re.compile(".*".join(literal(part) for part in line.strip().split("...")))


def missing_lines(expected: list[str], output: str) -> list[str]:
    """The expected lines not found in ``output`` in order (each may match a later line only)."""
    lines, position, missing = output.splitlines(), 0, []
    for line in expected:
        regex = pattern(line)
        found = next((k for k in range(position, len(lines)) if regex.search(lines[k].strip())), None)
        if found is None:
            missing.append(line)
        else:
            position = found + 1
    return missing


COMMANDS = readme_commands((ROOT / "README.md").read_text())


def run_readme_command(command: str, expected: list[str], folder: Path) -> None:
    """Run ``command`` in ``folder`` (where the README's relative paths resolve: examples/ is
    linked there) and check that it printed ``expected``."""
    args = shlex.split(command)[3:]
    if not (folder / "examples").exists():
        (folder / "examples").symlink_to(ROOT / "examples")
    proc = subprocess.run([sys.executable, "-m", "conformance", *args], cwd=folder, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    stale = missing_lines(expected, proc.stdout + proc.stderr)
    assert not stale, (f"README.md shows lines that `{command}` no longer prints:\n  " + "\n  ".join(stale)
                       + f"\n--- it printed:\n{(proc.stdout + proc.stderr)[-4000:]}")
