"""Only crm/store talks to the database: no driver import, no SQL and no PRAGMA elsewhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DRIVERS = ("sqlite3", "sqlite_utils", "psycopg", "psycopg_pool", "psycopg2")
# Statements as the store writes them (keywords in capitals); prose in docstrings and
# messages uses lower case, so it does not trip this.
SQL = re.compile(
    r"\bSELECT\b[\s\S]*?\bFROM\b|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\"?\w+\"?\s+SET\b"
    r"|\bDELETE\s+FROM\b|\bPRAGMA\b|\bCREATE\s+(TABLE|INDEX|TRIGGER)\b|\bALTER\s+TABLE\b"
    r"|\bBEGIN\s+IMMEDIATE\b|\bSAVEPOINT\b",
)


def _app_files() -> list[Path]:
    files = [REPO / "app.py"]
    for folder in ("crm", "ui", "pages"):
        files.extend(sorted((REPO / folder).rglob("*.py")))
    store = REPO / "crm" / "store"
    return [f for f in files if store not in f.parents]


def _problems(path: Path, root: Path = REPO) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in DRIVERS:
                found.append(f"{path.relative_to(root)}:{node.lineno} imports {name}")
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):  # an f-string: its literal parts around the holes
            text = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
        if text is not None:
            match = SQL.search(text)
            if match:
                found.append(f"{path.relative_to(root)}:{node.lineno} has SQL: {match.group(0)[:60]!r}")
    return found


def test_the_boundary_check_sees_sql_and_driver_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        'import sqlite3\nfrom psycopg import sql\nQ = "SELECT id FROM contacts"\n'
        'conn.execute(f"UPDATE {t} SET a = 1")\nP = "PRAGMA busy_timeout = 5"\n'
    )
    assert len(_problems(bad, tmp_path)) == 5
    fine = tmp_path / "fine.py"
    fine.write_text('"""Select a stage from the list; the store updates the row."""\nfrom crm import store\n')
    assert _problems(fine, tmp_path) == []


def test_no_module_outside_the_store_imports_a_database_driver_or_writes_sql():
    problems = [problem for path in _app_files() for problem in _problems(path)]
    assert problems == [], "\n".join(problems)
