"""The package's shape, as its contributors rely on it: small modules and functions, and
imports between its modules that never go round in a circle -- counting the imports made
inside functions and for the type checker, which a move of code can turn into real ones."""

from __future__ import annotations

import ast
from pathlib import Path

import compat_plugin

PACKAGE = Path(compat_plugin.__file__).parent
MODULES = {path.stem: ast.parse(path.read_text(encoding="utf-8"))
           for path in sorted(PACKAGE.glob("*.py"))}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 45  # "about forty": a docstring and a comment may tip one over


def _imported(tree: ast.Module) -> set[str]:
    """The package's modules ``tree`` imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module)
            else:  # from . import x
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("compat_plugin."):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
    return found & set(MODULES)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph``, if it has any."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return None
        for imported in sorted(graph[module]):
            found = visit(imported, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    return next(filter(None, (visit(module, []) for module in sorted(graph))), None)


def test_no_module_is_longer_than_four_hundred_lines() -> None:
    long = {name: tree.body[-1].end_lineno for name, tree in MODULES.items()
            if (tree.body[-1].end_lineno or 0) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_is_much_longer_than_forty_lines() -> None:
    long = [f"{name}.{node.name}: {node.end_lineno - node.lineno + 1}"  # type: ignore[operator]
            for name, tree in MODULES.items() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]  # type: ignore[operator]
    assert long == []


def test_no_import_cycle_among_the_modules() -> None:
    graph = {name: _imported(tree) - {name} for name, tree in MODULES.items()}
    assert "_store" in graph["_entries"]  # the graph is read at all
    assert _cycle(graph) is None


def test_a_cycle_is_found_where_there_is_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
