"""The layers of the project import one way (docs/architecture.md):

    reference  <-  adapters  <-  conformance.harness  <-  conformance.golden  <-  conformance.tools
                                                                               <-  conformance.suite

and ``report`` and ``convert`` run without Hypothesis installed (a CI report job installs only
NumPy).  A test that reads every module's imports, and a broken layering it must catch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> the project packages it must not import.
FORBIDDEN = {
    "reference": ("adapters", "conformance"),
    "adapters": ("conformance",),
    "conformance.harness": ("conformance.golden", "conformance.tools", "conformance.suite"),
    "conformance.golden": ("conformance.tools", "conformance.suite"),
    "conformance.tools": ("conformance.suite",),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)
    return out


def violations(files) -> list[str]:
    found = []
    for path in files:
        name = module_name(path)
        for package, forbidden in FORBIDDEN.items():
            if name == package or name.startswith(package + "."):
                for imported in imports(path):
                    if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                        found.append(f"{name} imports {imported}")
    return found


def project_files():
    return [p for top in ("reference", "adapters", "conformance") for p in sorted((ROOT / top).rglob("*.py"))
            if "workers" not in p.parts]


def test_imports_go_one_way():
    assert violations(project_files()) == []


def test_a_broken_layering_is_caught():
    bad = ROOT / "conformance" / "harness" / "_layering_probe.py"
    try:
        bad.write_text("from ..tools import report\nfrom conformance.golden import store\n")
        assert sorted(violations([bad])) == [f"conformance.harness._layering_probe imports {m}" for m in (
            "conformance.golden", "conformance.golden.store", "conformance.tools", "conformance.tools.report")]
    finally:
        bad.unlink()


@pytest.mark.parametrize("command", [
    ["report", "--help"], ["convert", "--help"], ["check", "--help"], ["detect", "--help"],
])
def test_the_tools_start_without_hypothesis(command):
    """Hypothesis blocked (as on a machine without it): the command line and report / convert
    still import; check and detect need it only when they run."""
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import conformance.tools.report, conformance.tools.convert\n"
            "from conformance.cli import main\n"
            f"sys.exit(main({command!r}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


@pytest.mark.parametrize("command", ["report", "convert", "check", "detect", "setup", "port"])
def test_every_help_is_plain_text_and_states_the_exit_statuses(command):
    """-h prints no reST markup (``x``) and no Python tuple repr, and says the exit statuses."""
    proc = subprocess.run([sys.executable, "-m", "conformance", command, "-h"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "``" not in proc.stdout and "('" not in proc.stdout
    assert "exit status: 0" in " ".join(proc.stdout.split()) and "3 a usage, setup or input error" in \
        " ".join(proc.stdout.split())
