"""The outputs the README prints are what the commands print now (tests/readme_outputs.py says how
they are compared).  The porter workflow's commands read model files that torch and Keras write:
they run in tox -e ports (tests/model_files/test_readme_porter.py); every other command runs here.
A test that would catch a README gone stale, and a stale line it must catch."""

from __future__ import annotations

import pytest

from readme_outputs import COMMANDS, inputs_of, missing_lines, run_readme_command

HERE = [(c, e) for c, e in COMMANDS if not inputs_of(c)]


def test_the_readme_has_commands_to_check():
    assert len(HERE) >= 3 and len(COMMANDS) - len(HERE) >= 4


@pytest.mark.parametrize("command, expected", HERE, ids=[c.split()[3] for c, _ in HERE])
def test_readme_output_is_current(command, expected, tmp_path):
    run_readme_command(command, expected, tmp_path)


def test_a_stale_line_is_caught():
    output = "verdict: unique match\n  gate order            igfo\n  20 calls of the callable, 0.31 s\n"
    assert missing_lines(["verdict: unique match", "gate order ... igfo", "20 calls of the callable, 1.09 s"],
                         output) == []
    assert missing_lines(["verdict: unique match", "gate order            ifgo"], output) == [
        "gate order            ifgo"]
    assert missing_lines(["20 calls of the callable, 1.09 s", "verdict: unique match"], output) == [
        "verdict: unique match"]  # order matters
