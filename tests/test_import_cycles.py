"""No import cycles between jupyter_llm's modules (module-level imports, as Python runs them).

A cycle works only while the import order happens to suit it, and it hides which module
depends on which: the layers go engine <- pool <- server, and the kernel beside the server.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jupyter_llm

ROOT = Path(jupyter_llm.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["jupyter_llm", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The jupyter_llm modules ``name`` imports when it is itself imported."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    # Every import, also those in functions and under TYPE_CHECKING: a deferred import is a
    # dependency all the same, only hidden from the import system.
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.level and node.module else node.module
            target = target or base
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules
            found.update(submodules)
            if len(submodules) < len(node.names):  # names defined in the module itself
                found.add(target)
    return {m for m in found if m in modules and m != name}


def test_no_module_imports_itself_through_others() -> None:
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {name: _imports(path, name, set(paths)) for name, path in paths.items()}
    cycles = []
    for start in graph:
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            here, trail = stack.pop()
            for nxt in graph[here]:
                if nxt == start:
                    cycles.append(" -> ".join([*trail, start]))
                elif nxt not in seen and not start.startswith(nxt + "."):
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    assert not cycles, "\n".join(cycles)
