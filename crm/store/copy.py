"""Copy a SQLite cache into a PostgreSQL one (``python -m crm migrate-cache``).

Everything a cache holds moves, row for row: records (with the columns of the portal's
own properties), associations, owners, pipelines, property definitions, queued edits and
conflicts, the audit log, sync runs and cursors, webhook events, OAuth states, the
connection and its tokens (still encrypted: the ciphertext is bound to its portal and
kind, not to the database, so the same ``CRM_SECRET_KEY`` opens it) and small facts.
SQLite's search index is not copied; PostgreSQL's is an index over the contacts rows.

Several connections (``crm.store.connections``): every connection the home cache's
registry names with a partition of its own (a sibling SQLite file) is copied into that
partition's PostgreSQL schema, the same way, before the home database. Each database is
copied in one transaction of its own: a failure leaves the home database (and so the
registry) as it was, but partitions copied before it stay; ``force`` replaces them on the
next run.

Ids keep their values (PostgreSQL's id columns are numbered "by default", so the copy
can set them); afterwards each id sequence moves past the largest copied id, so the next
edit or run gets a fresh one. The copy is one transaction: a failure leaves the target
as it was. A target that already holds rows is refused unless ``force`` (its rows are
then replaced).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crm.config import partition_target
from crm.errors import StoreUnavailable
from crm.store.engine import SqliteConn, SqliteEngine, is_postgresql
from crm.store.handle import Store
from crm.store.handle import open as open_store
from crm.store.values import column_affinity

log = logging.getLogger(__name__)

BATCH_ROWS = 2_000
# SQLite's own bookkeeping and its FTS5 indexes (PostgreSQL has its own, filled as rows arrive).
_NOT_COPIED = ("sqlite_", "contacts_fts", "interactions_fts")


class TargetNotEmpty(StoreUnavailable):
    """The PostgreSQL database already holds a cache; ``force`` replaces it."""


@dataclasses.dataclass
class CopyReport:
    """Rows copied per table, and the columns added for the portal's own properties."""

    rows: dict[str, int] = dataclasses.field(default_factory=dict)
    columns_added: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # Each connection's own partition, by partition name (the home database is this report).
    partitions: dict[str, CopyReport] = dataclasses.field(default_factory=dict)

    @property
    def total(self) -> int:
        """Rows copied in all: the home database and every partition."""
        return sum(self.rows.values()) + sum(p.total for p in self.partitions.values())


def copy_sqlite_to_postgresql(source: str | Path, target: str, *, force: bool = False) -> CopyReport:
    """Copy the SQLite cache at ``source`` into the PostgreSQL database ``target``.

    The source is upgraded to the current schema first (as opening it anywhere would);
    the target is created at the current schema if it is new.

    Raises:
        StoreUnavailable: the source is not a SQLite file, a database cannot be opened,
            or a row does not fit (the target is left unchanged).
        TargetNotEmpty: the target holds rows and ``force`` is not set.
    """
    if is_postgresql(str(source)):
        raise StoreUnavailable("migrate-cache copies from a SQLite file; the source is a PostgreSQL URL")
    if not is_postgresql(target):
        raise StoreUnavailable("migrate-cache copies into PostgreSQL: --to takes a postgresql:// URL")
    path = Path(source)
    if not path.is_file():
        raise StoreUnavailable(f"There is no SQLite cache at {path}")
    src = SqliteEngine(path).connect()
    try:
        partitions = _partitions(src)
        report = CopyReport()
        for partition in partitions:
            report.partitions[partition] = _copy_partition(path, target, partition, force=force)
        with open_store(target) as dst:
            home = _copy(src, dst, force=force)
        report.rows, report.columns_added = home.rows, home.columns_added
        return report
    finally:
        src.close()


def _partitions(src: SqliteConn) -> list[str]:
    """The partitions the home cache's registry names (none before the registry existed)."""
    if "connections" not in _source_tables(src):
        return []
    rows = src.execute("SELECT target FROM connections WHERE target <> '' ORDER BY created_at, id").fetchall()
    return [str(r[0]) for r in rows]


def _copy_partition(home: Path, target: str, partition: str, *, force: bool) -> CopyReport:
    source = Path(partition_target(str(home), partition))
    if not source.is_file():
        raise StoreUnavailable(
            f"The registry names the connection cache {source.name}, which is not there; "
            "remove that connection (python -m crm disconnect NAME --remove) or restore the file"
        )
    src = SqliteEngine(source).connect()
    try:
        with open_store(partition_target(target, partition)) as dst:
            return _copy(src, dst, force=force)
    finally:
        src.close()


def _copy(src: SqliteConn, dst: Store, *, force: bool) -> CopyReport:
    tables = _source_tables(src)
    target_types = _target_column_types(dst)
    missing = [t for t in tables if t not in target_types]
    if missing:
        raise StoreUnavailable(
            f"The PostgreSQL cache has no table {', '.join(missing)}; is it older than the app?"
        )
    report = CopyReport()
    with dst.atomic():
        filled = [t for t in tables if dst.conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone()]
        if filled and not force:
            raise TargetNotEmpty(
                f"The PostgreSQL cache already holds data (tables {', '.join(filled)}); "
                "use --force to replace it"
            )
        for table in filled:
            dst.conn.execute(f'DELETE FROM "{table}"')
        for table in tables:
            added = _add_property_columns(src, dst, table, target_types[table])
            if added:
                report.columns_added[table] = added
                target_types[table].update(_target_column_types(dst, table)[table])
            report.rows[table] = _copy_table(src, dst, table, target_types[table])
        _move_sequences_past_copied_ids(dst)
    log.info("Copied %d rows into PostgreSQL (%d tables)", report.total, len(report.rows))
    return report


def _source_tables(src: SqliteConn) -> list[str]:
    rows = src.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
    return [str(r[0]) for r in rows if not str(r[0]).startswith(_NOT_COPIED)]


def _target_column_types(dst: Store, table: str | None = None) -> dict[str, dict[str, str]]:
    sql = (
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    )
    params: list[Any] = []
    if table is not None:
        sql += " AND table_name = ?"
        params.append(table)
    types: dict[str, dict[str, str]] = {}
    for name, column, data_type in dst.conn.execute(sql, params).fetchall():
        types.setdefault(str(name), {})[str(column)] = str(data_type)
    return types


def _add_property_columns(src: SqliteConn, dst: Store, table: str, have: dict[str, str]) -> list[str]:
    """Columns the source's records table has for the portal's own properties, added to the target."""
    extra = [c for c in src.table_columns(table) if c not in have]
    if not extra:
        return []
    defined = dict(
        src.execute("SELECT name, type FROM property_defs WHERE object_type = ?", (table,)).fetchall()
    )
    for column in extra:
        dst.conn.add_column(table, column, column_affinity(str(defined.get(column) or "string")))
    return extra


def _copy_table(src: SqliteConn, dst: Store, table: str, types: dict[str, str]) -> int:
    columns = src.table_columns(table)
    quoted = ", ".join(f'"{c}"' for c in columns)
    insert = f'INSERT INTO "{table}" ({quoted}) VALUES ({", ".join("?" for _ in columns)})'
    kinds = [types[c] for c in columns]
    copied = 0
    for batch in _batches(src, f'SELECT {quoted} FROM "{table}"'):
        dst.conn.executemany(insert, [[_fit(v, k) for v, k in zip(row, kinds, strict=True)] for row in batch])
        copied += len(batch)
    return copied


def _batches(src: SqliteConn, sql: str) -> Iterator[list[tuple[Any, ...]]]:
    cursor = src.execute(sql)
    while batch := cursor.fetchmany(BATCH_ROWS):
        yield batch


def _fit(value: Any, data_type: str) -> Any:
    """A SQLite value as the PostgreSQL column takes it (SQLite lets a column hold any type)."""
    if value is None:
        return None
    if data_type == "text":
        return value if isinstance(value, str) else str(value)
    if data_type in ("bigint", "integer", "smallint"):
        return int(value)
    if data_type in ("double precision", "real", "numeric"):
        return float(value)
    return value


def _move_sequences_past_copied_ids(dst: Store) -> None:
    rows = dst.conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ).fetchall()
    for table, column in rows:
        dst.conn.execute(
            f'SELECT setval(pg_get_serial_sequence(?, ?), coalesce((SELECT max("{column}") FROM "{table}"), 0) + 1, false)',
            (f'"{table}"', str(column)),
        )
