"""The outputs the README prints are what the commands print now.

Every code block of README.md that starts with ``$ python -m conformance ...`` is run; each line
of the block after the command must appear in the command's output, in the same order.  In a
README line, ``...`` stands for anything (a line of just ``...`` for lines left out), and times
("0.25 s") may differ.  A test that would catch a README gone stale, and a stale line it must
catch."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIME = re.compile(r"\d+(\.\d+)? s\b")


def readme_commands(text: str) -> list[tuple[str, list[str]]]:
    """(command, expected lines) of every block that starts with ``$ python -m conformance``."""
    blocks = re.findall(r"```\n\$ (python -m conformance [^\n]*)\n(.*?)```", text, re.S)
    return [(command, [line for line in body.splitlines() if line.strip() and line.strip() != "..."])
            for command, body in blocks]


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


def test_the_readme_has_commands_to_check():
    assert len(COMMANDS) >= 2


@pytest.mark.parametrize("command, expected", COMMANDS, ids=[c.split()[3] for c, _ in COMMANDS])
def test_readme_output_is_current(command, expected, tmp_path):
    """Run where the README's relative paths resolve (examples/), writing into a scratch folder."""
    args = shlex.split(command)[3:]
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    proc = subprocess.run([sys.executable, "-m", "conformance", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    stale = missing_lines(expected, proc.stdout)
    assert not stale, (f"README.md shows lines that `{command}` no longer prints:\n  " + "\n  ".join(stale)
                       + f"\n--- it printed:\n{proc.stdout[-4000:]}")


def test_a_stale_line_is_caught():
    output = "verdict: unique match\n  gate order            igfo\n  20 calls of the callable, 0.31 s\n"
    assert missing_lines(["verdict: unique match", "gate order ... igfo", "20 calls of the callable, 1.09 s"],
                         output) == []
    assert missing_lines(["verdict: unique match", "gate order            ifgo"], output) == [
        "gate order            ifgo"]
    assert missing_lines(["20 calls of the callable, 1.09 s", "verdict: unique match"], output) == [
        "verdict: unique match"]  # order matters
