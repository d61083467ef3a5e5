"""The database under the store: the protocol both backends implement, and SQLite's engine.

Store modules talk to a ``Conn`` (one thread's connection) and never to a driver. All
their SQL is the portable subset both SQLite and PostgreSQL accept:

- ``?`` placeholders (the PostgreSQL connection translates them);
- ``INSERT ... ON CONFLICT (...) DO UPDATE / DO NOTHING``, never ``INSERT OR ...``;
- ``RETURNING id`` instead of ``lastrowid``; no ``rowid`` outside SQLite's search index;
- booleans as INTEGER 0/1, timestamps as ISO-8601 TEXT, identifiers in double quotes;
- ``IS [NOT] DISTINCT FROM`` between columns, never ``IS NOT``.

Where the two databases really differ, a ``Conn`` has a hook: the columns of a table,
adding a column, and the contacts search (FTS5 here, tsvector/pg_trgm on PostgreSQL).
PRAGMAs, ``BEGIN IMMEDIATE`` and the migrations live here and nowhere else.

Each ``Conn`` raises ``crm.errors.StoreUnavailable`` in place of its driver's errors, so
no caller imports ``sqlite3`` or ``psycopg`` to catch them.

An ``Engine`` is one database target (a file, or a PostgreSQL URL) for the whole
process: it runs the migrations and hands out connections. ``engine_for`` keeps one per
target.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from crm.errors import StoreUnavailable
from crm.store.schema import MIGRATIONS, SCHEMA_VERSION

Dialect = Literal["sqlite", "postgresql"]

BUSY_TIMEOUT_MS = 30_000
# A contacts search matching more rows than this walks the sort index and tests
# membership; fewer are looked up by rowid (see ``SqliteConn.contacts_search``).
BROAD_MATCH = 2_000
# Words of the search box that reach the index; more add nothing but cost.
MAX_SEARCH_WORDS = 12
_EMAIL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Cursor(Protocol):
    """What ``Conn.execute`` returns (a DB-API cursor)."""

    @property
    def description(self) -> Any: ...
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Conn(Protocol):
    """One thread's connection. All store SQL uses qmark ``?`` placeholders."""

    @property
    def dialect(self) -> Dialect: ...
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    def begin(self) -> None:
        """Start a write transaction (SQLite: ``BEGIN IMMEDIATE``, so writers queue)."""

    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None:
        """Close the connection (PostgreSQL: return it to the pool)."""

    def table_columns(self, table: str) -> list[str]:
        """The table's column names, in table order."""

    def add_column(self, table: str, name: str, affinity: str) -> None:
        """Add a column; ``affinity`` is REAL, INTEGER or TEXT."""

    def contacts_search(self, text: str) -> tuple[str, list[Any]] | None:
        """A WHERE fragment over alias-free ``contacts`` rows matching the search box text
        (a whole address by its email; else name, email, company, phone digits, every word
        a prefix), with its params; None when the text has no word to search for."""

    def contacts_search_total(self, text: str) -> int | None:
        """How many contacts, archived ones included, ``contacts_search`` matches, when the
        search index can say so without visiting the rows; None to have the rows counted."""


class Engine(Protocol):
    """One database target for the whole process: migrated once, hands out connections."""

    @property
    def dialect(self) -> Dialect: ...
    def connect(self, *, wait_s: float | None = None) -> Conn:
        """A new connection for the calling thread.

        Args:
            wait_s: how long a statement waits for another writer's lock before the
                store gives up (default: the engine's own, 30 s on SQLite).
        """

    def close(self) -> None: ...


# --------------------------------------------------------------------------- SQLite


def sqlite_version() -> str:
    """The SQLite library's version (the benchmark reports it)."""
    return sqlite3.sqlite_version


class SqliteConn:
    """A ``Conn`` over one ``sqlite3`` connection (autocommit; transactions are explicit)."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw
        self._last_count: tuple[str, int] = ("", 0)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._raw.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self._raw.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc

    def begin(self) -> None:
        # In WAL mode a deferred transaction that reads and then writes fails at once with
        # "database is locked" if another connection committed in between, whatever the
        # busy timeout; taking the write lock first makes writers queue instead.
        self.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        if self._raw.in_transaction:
            self.execute("ROLLBACK")

    def close(self) -> None:
        self._raw.close()

    def table_columns(self, table: str) -> list[str]:
        return [str(row[1]) for row in self.execute(f"PRAGMA table_info({_quote(table)})").fetchall()]

    def add_column(self, table: str, name: str, affinity: str) -> None:
        if affinity not in ("REAL", "INTEGER", "TEXT"):
            raise ValueError(f"unknown column affinity {affinity!r}")
        self.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(name)} {affinity}")

    def contacts_search(self, text: str) -> tuple[str, list[Any]] | None:
        stripped = text.strip()
        if _EMAIL_ADDRESS.match(stripped):
            # A whole address: the lower(email) index answers at once, where the words of an
            # address ("example", "com") would match much of the portal.
            return "lower(email) = ?", [stripped.lower()]
        expression = fts_expression(text)
        if expression is None:
            return None
        # Many matches: walk the sort index and test membership ("+rowid" keeps SQLite from
        # looking every match up by rowid and sorting them all). Few: look them up by rowid.
        # At 1,000,000 contacts a one-letter search stays near 40 ms either way.
        member = "+rowid" if self._matches(expression) > BROAD_MATCH else "rowid"
        return f"{member} IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ?)", [expression]

    def contacts_search_total(self, text: str) -> int | None:
        # The index counts its matches from its own pages; counting the rows that match
        # would visit every one of them (at 300,000 contacts a one-letter search: 3 ms
        # against 100 ms).
        if _EMAIL_ADDRESS.match(text.strip()):
            return None
        expression = fts_expression(text)
        return 0 if expression is None else self._matches(expression)

    def _matches(self, expression: str) -> int:
        if self._last_count[0] != expression:
            found = self.execute(
                "SELECT count(*) FROM contacts_fts WHERE contacts_fts MATCH ?", (expression,)
            )
            self._last_count = (expression, int(found.fetchone()[0]))
        return self._last_count[1]

    def optimize(self) -> None:
        """After a bulk fill: fold the WAL into the file and refresh the planner's statistics."""
        self.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.execute("PRAGMA optimize")

    def set_wait(self, wait_s: float) -> None:
        self.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")


def fts_expression(text: str) -> str | None:
    """An FTS5 query for the contacts index: every word of ``text`` as a prefix, ANDed."""
    tokens = re.findall(r"\w+", text.lower())
    if not tokens:
        return None
    return " ".join(f'"{token}"*' for token in tokens[:MAX_SEARCH_WORDS])


class SqliteEngine:
    """A cache file. Connections are per thread (sqlite3's rule), cheap, and closed by the caller."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._migrate_lock = threading.Lock()

    def connect(self, *, wait_s: float | None = None) -> SqliteConn:
        """Open a connection, upgrading the file first if it is behind (or new).

        The schema version is checked on every connect (one PRAGMA): the file may have
        been replaced since, and another process may be the one that upgrades it.
        """
        try:
            raw = _connect(self.path)
        except (sqlite3.Error, OSError) as exc:
            raise _unavailable(exc) from exc
        conn = SqliteConn(raw)
        try:
            with self._migrate_lock:
                migrate(conn)
            if wait_s is not None:
                conn.set_wait(wait_s)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        """Nothing is pooled: every connection is closed by its ``Store``."""


def _connect(path: Path) -> sqlite3.Connection:
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only from the first byte: the cache holds encrypted tokens and every record.
        # SQLite gives the -wal and -shm files the database file's permissions.
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    # isolation_level=None: transactions are begun explicitly (``SqliteConn.begin``).
    raw = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=True
    )
    try:
        raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _use_wal(raw)
        raw.execute("PRAGMA synchronous = NORMAL")
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute("PRAGMA temp_store = MEMORY")
    except BaseException:
        raw.close()
        raise
    return raw


_wal_lock = threading.Lock()


def _use_wal(raw: sqlite3.Connection) -> None:
    """Put the file in WAL mode once; later connections find it there and change nothing.

    Switching needs an exclusive lock, and SQLite answers "database is locked" at once
    (without waiting out the busy timeout) when two connections race to switch a new file,
    as a CLI sync and its progress watcher do on a fresh cache. Within a process the switch
    is serialised; across processes a refused switch is retried for a bounded time.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    with _wal_lock:
        while True:
            try:
                if str(raw.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                    raw.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def migrate(conn: SqliteConn) -> int:
    """Apply missing migrations, one ``BEGIN IMMEDIATE`` transaction per step; return the version.

    The version lives in ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes a cache from
    version ``i`` to ``i + 1``, so an older cache file is upgraded in place the first
    time any process opens it.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    while version < SCHEMA_VERSION:
        conn.begin()
        try:
            # Another process may have migrated while we waited for the write lock.
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) == version:
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    return version


def schema_version(conn: Conn) -> int:
    """The schema version of an open SQLite cache (tests check upgrades with it)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _statements(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _unavailable(exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"The cache database is unavailable: {exc}")


# ------------------------------------------------------------------------- targets

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def is_postgresql(target: str) -> bool:
    """Whether a ``CRM_DB`` value names a PostgreSQL database rather than a SQLite file."""
    return target.startswith(("postgresql://", "postgres://"))


def engine_for(target: str | Path) -> Engine:
    """The process's engine for a target: a ``postgresql://`` URL, else a SQLite path."""
    key = str(target)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _new_engine(key)
        return engine


def _new_engine(target: str) -> Engine:
    if is_postgresql(target):
        from crm.store import pg

        engine: Engine = pg.PostgresEngine(target)
        return engine
    return SqliteEngine(target)


def close_engines() -> None:
    """Close every engine this process opened (PostgreSQL pools); tests and shutdown."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.close()


def close_engine(target: str | Path) -> None:
    """Close and forget this process's engine for one target (a removed connection's partition)."""
    with _engines_lock:
        engine = _engines.pop(str(target), None)
    if engine is not None:
        engine.close()
