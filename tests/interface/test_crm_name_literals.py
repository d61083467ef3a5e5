"""No `if crm == "pipedrive"` outside the providers: pages, ui, the sync and the connection
layer ask the connection's provider (``crm.crms``) what differs, so a third CRM is one entry
in the registry, not a hunt for comparisons (issue #15)."""

from __future__ import annotations

import ast
from pathlib import Path

from crm import crms

REPO = Path(__file__).resolve().parents[2]
CHECKED = ("pages", "ui", "crm/sync", "crm/bench", "crm/oauth", "crm/__main__.py")
_OPS = (ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot)


def _names_in(node: ast.expr) -> set[str]:
    """The CRM names ``node`` spells as literals (a string, or a tuple/list/set of them)."""
    values = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    known = set(crms.names())
    return {v.value.lower() for v in values if isinstance(v, ast.Constant) and str(v.value).lower() in known}


def _crm_comparisons(source: str) -> list[tuple[int, str]]:
    """(line, CRM name) of each comparison in ``source`` against a CRM's name as a literal."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(isinstance(op, _OPS) for op in node.ops):
            for side in (node.left, *node.comparators):
                found += [(node.lineno, name) for name in sorted(_names_in(side))]
    return sorted(found)


def test_the_check_sees_a_comparison_with_a_crm_name_but_not_other_strings() -> None:
    source = (
        'if crm == "pipedrive":\n    pass\nok = settings.crm != "HubSpot"\n'
        'x = crm in ("hubspot", "other")\ny = {"hubspot": 1}\nz = mode == "private_app"\n'
    )
    assert _crm_comparisons(source) == [(1, "pipedrive"), (3, "hubspot"), (4, "hubspot")]


def test_no_page_ui_sync_or_connection_module_compares_a_crm_name_to_a_literal() -> None:
    paths = []
    for entry in CHECKED:
        path = REPO / entry
        paths += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    problems = [
        f"{path.relative_to(REPO)}:{line} compares with {name!r}"
        for path in paths
        for line, name in _crm_comparisons(path.read_text(encoding="utf-8"))
    ]
    assert problems == [], "\n".join(problems)
