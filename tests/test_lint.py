"""Static checks, run with the tests: ruff, mypy, and no import cycles in the package.

ruff (rules in pyproject.toml) covers tests/, bench/, fuzz/, wsgi.py and the whole package; mypy covers the
package except NOT_YET (registry_ext/app.py, index/, services/, storage/: about 130 errors, mostly untyped
redis-py returns): once ``mypy registry_ext`` is clean there, empty NOT_YET.
The import-cycle check covers the whole package.
"""
from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE = REPOSITORY / "registry_ext"
NOT_YET = {"app.py", "index", "services", "storage"}
COVERED = sorted(p.name for p in PACKAGE.iterdir()
                 if p.name not in NOT_YET and (p.suffix == ".py" or (p / "__init__.py").is_file()))
PACKAGE_PATHS = [f"registry_ext/{name}" for name in COVERED]


def run_tool(module: str, *args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{module} is not installed: pip install -e '.[test]'")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPOSITORY, capture_output=True, text=True,
                          timeout=300)


def test_ruff_is_clean():
    out = run_tool("ruff", "check", "--no-cache", "registry_ext", "tests", "bench", "fuzz", "wsgi.py")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_is_clean():
    # Modules outside the covered paths are read for their types, their own errors are not reported.
    out = run_tool("mypy", "--follow-imports", "silent", *PACKAGE_PATHS)
    assert out.returncode == 0, out.stdout + out.stderr


def module_name(path: Path) -> str:
    parts = path.relative_to(REPOSITORY).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Package modules ``path`` imports, anywhere in it (a function-level import closes a cycle too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
    return (found & modules) - {name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_package_has_no_import_cycles():
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    graph = {module_name(f): imports_of(f, modules) for f in files}
    # registry_ext/__init__.py's create_app wrappers import the app lazily so that importing any module
    # stays cheap; every module imports the package, so its outgoing edges are not dependencies.
    graph["registry_ext"] = set()
    assert cycles(graph) == []
