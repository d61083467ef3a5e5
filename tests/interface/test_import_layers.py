"""The import graph of ``crm`` has no cycles: a module that needs a second reason to change is
split into modules that import one way (``crm.hubspot.client`` over its area modules over
``crm.hubspot.transport``; ``crm.oauth``'s parts over ``crm.oauth.connection``). Imports inside
functions are the codebase's way to sit above a layer on purpose, so only module-level imports
are counted."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _module_names(root: Path) -> dict[str, Path]:
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _imports(source: str, known: set[str]) -> set[str]:
    """The known modules ``source`` imports at module level. ``from pkg import sub`` counts as
    an import of ``pkg.sub`` only (Python runs ``pkg/__init__`` first whatever the order)."""
    found: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            found |= subs
            if node.module in known and len(subs) < len(node.names):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names} & known
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import one another, directly or not (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_check_finds_modules_that_import_each_other_through_a_third() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_crm_imports_itself_back_through_others() -> None:
    modules = _module_names(REPO / "crm")
    known = set(modules)
    graph = {
        name: _imports(path.read_text(encoding="utf-8"), known) - {name} for name, path in modules.items()
    }
    assert _cycles(graph) == []
