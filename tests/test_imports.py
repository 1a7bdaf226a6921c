"""The project's modules import one another one way: no module reaches itself through its imports.

Read with `ast`, not by importing: an import inside a function counts as much as one at the top
of a module, since a function-level import only hides a circle until the function runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("backends", "dailies", "app.py", "worker.py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    files: list[Path] = []
    for source in SOURCES:
        top = ROOT / source
        files.extend(sorted(top.rglob("*.py")) if top.is_dir() else [top])
    return {module_name(path): path for path in files}


def imported(tree: ast.Module, name: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The project modules a module imports anywhere in its body (`TYPE_CHECKING` blocks too)."""
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: climb from this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule pkg.sub; `from pkg import name`, pkg itself.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            # `import a.b.c` names a.b.c; the longest project module it names is the edge.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {
        name: set(imported(ast.parse(path.read_text()), name, path.name == "__init__.py", known))
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports (its modules in order, the first repeated at the end), else None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, steps = [start], [iter(sorted(graph[start]))]
        while steps:
            step = next(steps[-1], None)
            if step is None:
                steps.pop()
                done.add(path.pop())
            elif step in path:
                return [*path[path.index(step) :], step]
            elif step not in done:
                path.append(step)
                steps.append(iter(sorted(graph[step])))
    return None


def test_no_import_cycle() -> None:
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, "modules that import one another: " + " -> ".join(cycle or [])


def test_the_walk_sees_imports_inside_functions_and_finds_their_circle() -> None:
    known = {"pkg", "pkg.a", "pkg.b"}
    a = ast.parse("from pkg import b\n")
    b = ast.parse("def late():\n    from . import a\n    import pkg.a.missing\n")
    graph = {
        "pkg": set(),
        "pkg.a": set(imported(a, "pkg.a", False, known)),
        "pkg.b": set(imported(b, "pkg.b", False, known)),
    }
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
