"""The README's porter workflow prints what the commands print now: the model files it reads are
written by torch and Keras 3 (examples/porter_files.py), then every README command that reads them
runs and its output is compared with the README's (tests/readme_outputs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="tox -e ports installs torch")
pytest.importorskip("keras", reason="tox -e ports installs Keras 3")

from readme_outputs import COMMANDS, ROOT, inputs_of, run_readme_command  # noqa: E402

PORTER = [(c, e) for c, e in COMMANDS if inputs_of(c)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import porter_files
    finally:
        sys.path.pop(0)
    path = tmp_path_factory.mktemp("porter")
    porter_files.write(path)
    return path


def test_the_porter_workflow_is_in_the_readme():
    assert {f for c, _ in PORTER for f in inputs_of(c)} == {"tagger.pt", "encoder.keras", "partial.pt"}


@pytest.mark.parametrize("command, expected", PORTER, ids=[c.split()[3] + "-" + inputs_of(c)[0] for c, _ in PORTER])
def test_porter_readme_output_is_current(command, expected, folder):
    run_readme_command(command, expected, folder)
