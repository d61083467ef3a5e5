"""PostgreSQL under the store: ``PostgresEngine`` (a connection pool) and ``PgConn``.

The only module that imports ``psycopg``. It implements the ``Conn``/``Engine`` protocol
of ``crm.store.engine`` (see docs/CONTRACTS.md), so store modules run the same SQL on
both backends:

- Store SQL uses qmark ``?`` placeholders; ``PgConn`` rewrites them to psycopg's ``%s``
  outside quoted literals, identifiers and comments, and doubles a literal ``%``.
- Connections are in autocommit: a transaction is what ``begin()`` starts (the store's
  ``atomic()`` nests with ``SAVEPOINT``, the same SQL on both databases), so a read never
  holds a transaction open in the pool.
- ``close()`` hands the connection back to the pool (rolled back if a transaction was
  left open), so a request costs no new server process.
- Driver errors leave as ``crm.errors.StoreUnavailable``; messages never carry the
  password of the URL.
- Values travel as SQLite's do: int and bool parameters are sent untyped, so the server
  gives them the column's type (an int id against a text column, True into an INTEGER
  0/1 column), and numeric results (``sum()`` of an integer column) come back as int or
  float, never Decimal.

The first engine for a database migrates it (``crm.store.pg_schema``) while holding a
session advisory lock, so when several app servers and CLI runs start together, one
migrates and the others wait, then find the work done.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg.abc import Buffer
from psycopg.adapt import Dumper, Loader
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from crm.errors import StoreUnavailable
from crm.store.engine import search_parts
from crm.store.pg_schema import (
    CONTACTS_PHRASE_MATCH,
    CONTACTS_PHRASE_PARAMS,
    CONTACTS_SEARCH_MATCH,
    INTERACTION_SEARCH_MATCH,
    PG_MIGRATIONS,
    splits_into_words,
)

SCHEMA_VERSION = len(PG_MIGRATIONS)
# pg_advisory_lock key of the migrations: any fixed bigint, the same in every process.
MIGRATION_LOCK_KEY = 0x43524D5F53544F52  # "CRM_STOR"
CONNECT_TIMEOUT_S = 10.0
POOL_WAIT_S = 30.0
# How long a thread that already holds a connection waits for the pool before opening its own.
NESTED_WAIT_S = 0.5
MAX_SEARCH_WORDS = 12
_AFFINITY = {"REAL": "double precision", "INTEGER": "bigint", "TEXT": "text"}
_EMAIL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Tokens of store SQL that may hold a '?' or '%' that is not a placeholder.
_SQL_TOKENS = re.compile(
    r"""'(?:[^']|'')*'      # a string literal ('' escapes a quote)
      | "(?:[^"]|"")*"      # a quoted identifier
      | --[^\n]*            # a line comment
      | /\*.*?\*/           # a block comment
      | [?%]                # a placeholder, or a percent sign to double
    """,
    re.X | re.S,
)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    params.pop("password", None)
    host, port, dbname, user = (params.get(k) for k in ("host", "port", "dbname", "user"))
    who = f"{user}@" if user else ""
    return f"postgresql://{who}{host or ''}{f':{port}' if port else ''}/{dbname or ''}"


@lru_cache(maxsize=1024)
def qmark_to_pyformat(sql: str) -> str:
    """Rewrite ``?`` placeholders to ``%s`` outside quoted text and comments.

    Store SQL quotes with standard strings ('...', '' for a quote) and double-quoted
    identifiers; E'...' and $$...$$ strings are not recognised (the store has none).

    psycopg reads ``%`` everywhere, inside literals too, so every ``%`` is doubled.
    """

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        return "%s" if token == "?" else token.replace("%", "%%")

    return _SQL_TOKENS.sub(swap, sql)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _unavailable(exc: BaseException, url: str) -> StoreUnavailable:
    # psycopg's messages quote the server, never the password we connected with.
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreUnavailable(f"The PostgreSQL cache {redact(url)} is unavailable: {detail}")


class _UntypedInt(Dumper):
    """Send an int (or bool, as 1/0) untyped, so the server reads it as the column's type.

    SQLite converts a value to the column's affinity; PostgreSQL would refuse ``text = bigint``
    or a boolean in a bigint column. Untyped ("unknown") parameters get the type their place
    in the statement calls for, which is what store SQL written for SQLite expects.
    """

    oid = 0

    def dump(self, obj: Any) -> bytes:
        return str(int(obj)).encode()


class _NumericAsNumber(Loader):
    """numeric results (sum() of a bigint column, avg()) as int or float, as SQLite returns them."""

    def load(self, data: Buffer) -> int | float:
        text = bytes(data).decode()
        return int(text) if text.lstrip("-").isdigit() else float(text)


def _configure(raw: psycopg.Connection[Any]) -> None:
    raw.adapters.register_dumper(int, _UntypedInt)
    raw.adapters.register_dumper(bool, _UntypedInt)
    raw.adapters.register_loader("numeric", _NumericAsNumber)


def search_words(text: str) -> list[str]:
    """The words of the search box as the SQLite search splits them (at most 12)."""
    return re.findall(r"\w+", text.lower())[:MAX_SEARCH_WORDS]


class PgConn:
    """One thread's connection, borrowed from the engine's pool until ``close()``."""

    dialect: Literal["postgresql"] = "postgresql"

    def __init__(self, engine: PostgresEngine, raw: psycopg.Connection[Any], *, wait_s: float | None) -> None:
        self._engine = engine
        self._raw: psycopg.Connection[Any] | None = raw
        self._wait_set = False
        if wait_s is not None:
            self.execute(f"SET lock_timeout = {max(1, int(wait_s * 1000))}")
            self._wait_set = True

    @property
    def raw(self) -> psycopg.Connection[Any]:
        if self._raw is None:
            raise StoreUnavailable("This PostgreSQL cache connection is closed.")
        return self._raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        try:
            return self.raw.execute(qmark_to_pyformat(sql), tuple(params))
        except psycopg.Error as exc:
            raise _unavailable(exc, self._engine.url) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self.raw.cursor() as cursor:
                cursor.executemany(qmark_to_pyformat(sql), [tuple(row) for row in rows])
        except psycopg.Error as exc:
            raise _unavailable(exc, self._engine.url) from exc

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Append ``rows`` to ``table`` with COPY (bulk loads: several times executemany's speed).

        No conflict handling: the rows must be new. Returns how many were written.
        """
        names = ", ".join(_quote(c) for c in columns)
        written = 0
        try:
            with (
                self.raw.cursor() as cursor,
                cursor.copy(f"COPY {_quote(table)} ({names}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
                    written += 1
        except psycopg.Error as exc:
            raise _unavailable(exc, self._engine.url) from exc
        return written

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        """Return the connection to the pool (idempotent); an open transaction is rolled back."""
        raw, self._raw = self._raw, None
        if raw is None:
            return
        try:
            if not raw.closed and raw.info.transaction_status != TransactionStatus.IDLE:
                raw.execute("ROLLBACK")
            if self._wait_set and not raw.closed:
                raw.execute("RESET lock_timeout")
        except psycopg.Error:
            pass  # the pool checks the connection and discards a broken one
        finally:
            self._engine.release(raw)

    def table_columns(self, table: str) -> list[str]:
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def add_column(self, table: str, name: str, affinity: str) -> None:
        """Add a column unless it exists (two processes may learn a property at once)."""
        if affinity not in _AFFINITY:
            raise ValueError(f"unknown column affinity {affinity!r}")
        sql = f"ALTER TABLE {_quote(table)} ADD COLUMN IF NOT EXISTS {_quote(name)} {_AFFINITY[affinity]}"
        try:
            self.raw.execute(sql)
        except (pg_errors.DuplicateColumn, pg_errors.UniqueViolation) as exc:
            # Lost a race to a concurrent ALTER: the column is there, which is all we want,
            # unless the failure aborted the caller's transaction.
            if self.in_transaction:
                raise _unavailable(exc, self._engine.url) from exc
        except psycopg.Error as exc:
            raise _unavailable(exc, self._engine.url) from exc

    def contacts_search(self, text: str) -> tuple[str, list[Any]] | None:
        """The contacts matching the search box: a whole address by its lower(email)
        index, else every word a prefix of a word of the name, email, company or phone
        (or of the phone's digits), through the GIN index of ``crm_contacts_search``."""
        stripped = text.strip()
        if _EMAIL_ADDRESS.match(stripped):
            # lower() on both sides: Python and PostgreSQL lower a few letters differently
            # (Python turns "İ" into two characters).
            return "lower(email) = lower(?)", [stripped]
        words = search_words(text)
        if not words:
            return None
        sql = CONTACTS_SEARCH_MATCH
        params: list[Any] = [words]
        for word in words:
            if splits_into_words(word):
                sql += f" AND {CONTACTS_PHRASE_MATCH}"
                params.extend([word] * CONTACTS_PHRASE_PARAMS)
        # The matches come from the GIN index, then the page is taken from them. Left to
        # itself, the planner walks the page-order index and computes the search expression
        # for each contact it passes until a page is full: thousands of evaluations of the
        # folding functions for a common name (seen at 100,000 contacts). OFFSET 0 keeps the
        # subquery planned on its own, where only the index answers it.
        return f"id IN (SELECT c.id FROM contacts c WHERE {sql} OFFSET 0)", params

    def contacts_search_total(self, text: str) -> int | None:
        """None: the GIN index cannot count without the rows, so the query counts them."""
        return None

    def interactions_search(self, text: str) -> tuple[str, list[Any]] | None:
        words = search_parts(text)
        if not words:
            return None
        return (
            "(i.object_type, i.id) IN (SELECT s.object_type, s.id FROM interactions_search s "
            f"WHERE s.{INTERACTION_SEARCH_MATCH})",
            [words],
        )


class PostgresEngine:
    """One PostgreSQL database for the whole process: migrated once, a pool of connections.

    Args:
        url: ``postgresql://user[:password]@host[:port]/db`` (libpq's URL or key=value form).
        min_size / max_size: connections the pool keeps open / may open.
        connect_timeout_s: how long to keep trying to reach the server at start.
        pool_wait_s: how long ``connect()`` waits for a free connection.
    """

    dialect: Literal["postgresql"] = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        pool_wait_s: float = POOL_WAIT_S,
    ) -> None:
        self.url = url
        self.pool_wait_s = pool_wait_s
        self._closed = False
        self._lock = threading.Lock()
        # Connections each thread holds, and the extra ones opened beside the pool (see connect).
        self._held = threading.local()
        self._extra: set[int] = set()
        try:
            conninfo = make_conninfo(url, connect_timeout=max(1, int(connect_timeout_s)))
        except psycopg.ProgrammingError as exc:
            raise StoreUnavailable(f"CRM_DB is not a usable PostgreSQL URL: {redact(url)}") from exc
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "application_name": "crm"},
            configure=_configure,
            check=ConnectionPool.check_connection,
            open=False,
            name="crm-store",
        )
        self._conninfo = conninfo
        try:
            self.pool.open(wait=True, timeout=connect_timeout_s)
        except PoolTimeout as exc:
            self.pool.close()
            raise StoreUnavailable(
                f"Cannot connect to the PostgreSQL cache {redact(url)} within {connect_timeout_s:g} s "
                "(is the server running, and do the user and database exist?)"
            ) from exc
        try:
            self.version = self._migrate()
        except BaseException:
            self.pool.close()
            raise

    def connect(self, *, wait_s: float | None = None) -> PgConn:
        """Borrow a connection; ``wait_s`` bounds how long a statement waits for a lock.

        A thread that already holds one never waits long for the pool: when none is free
        within ``NESTED_WAIT_S`` it gets a connection of its own, closed when given back. Nested opens happen (a token read
        while the caller's store is open, a webhook batch opening the CRM's API), and with
        every pooled connection held by a thread waiting for its second, no thread could go
        on: ten threads reading their token at once stalled for the pool's whole wait and
        failed. A thread's first connection still waits for the pool, which is what bounds
        the connections a process opens.
        """
        nested = getattr(self._held, "count", 0) > 0
        try:
            raw = self.pool.getconn(
                timeout=min(NESTED_WAIT_S, self.pool_wait_s) if nested else self.pool_wait_s
            )
        except PoolTimeout as exc:
            if not nested:
                raise StoreUnavailable(
                    f"No PostgreSQL connection free within {self.pool_wait_s:g} s for {redact(self.url)}"
                ) from exc
            raw = self._open_extra()
        except psycopg.Error as exc:
            raise _unavailable(exc, self.url) from exc
        self._held.count = getattr(self._held, "count", 0) + 1
        try:
            return PgConn(self, raw, wait_s=wait_s)
        except BaseException:
            self.release(raw)
            raise

    def _open_extra(self) -> psycopg.Connection[Any]:
        """A connection beside the pool for a thread that holds one already (``connect``)."""
        try:
            raw = psycopg.connect(self._conninfo, autocommit=True, application_name="crm")
        except psycopg.Error as exc:
            raise _unavailable(exc, self.url) from exc
        _configure(raw)
        with self._lock:
            self._extra.add(id(raw))
        return raw

    def release(self, raw: psycopg.Connection[Any]) -> None:
        """Take a connection back (``PgConn.close`` calls this)."""
        self._held.count = max(0, getattr(self._held, "count", 0) - 1)
        with self._lock:
            extra = id(raw) in self._extra
            self._extra.discard(id(raw))
        if self._closed or extra:
            raw.close()
        else:
            self.pool.putconn(raw)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.pool.close()

    def _migrate(self) -> int:
        """Apply the missing ``PG_MIGRATIONS`` steps under the migration advisory lock.

        A connection's partition is a schema named by the URL's ``search_path`` option
        (``crm.store.connections``): it is created here, and its migrations take a lock of
        their own, so partitions migrate independently of each other and of the home schema.
        """
        schema = partition_schema(self.url)
        key = migration_lock_key(schema)
        with self.pool.connection() as raw:
            try:
                raw.execute("SELECT pg_advisory_lock(%s)", (key,))
                try:
                    if schema:
                        raw.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
                    return self._migrate_locked(raw)
                finally:
                    if not raw.closed:
                        if raw.info.transaction_status != TransactionStatus.IDLE:
                            raw.execute("ROLLBACK")
                        raw.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except psycopg.Error as exc:
                raise _unavailable(exc, self.url) from exc

    def _migrate_locked(self, raw: psycopg.Connection[Any]) -> int:
        raw.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)"
        )
        raw.execute("INSERT INTO schema_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
        row = raw.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"The PostgreSQL cache {redact(self.url)} has schema version {version}, newer than "
                f"this version of the app knows ({SCHEMA_VERSION}); upgrade the app."
            )
        if version < SCHEMA_VERSION:
            _check_unicode_locale(raw, self.url)
        while version < SCHEMA_VERSION:
            raw.execute("BEGIN")
            step = PG_MIGRATIONS[version]
            if step.strip():
                raw.execute(step)  # several statements: no parameters, simple protocol
            raw.execute("UPDATE schema_version SET version = %s WHERE id = 1", (version + 1,))
            raw.execute("COMMIT")
            version += 1
        return version


_SEARCH_PATH_OPTION = re.compile(r"-c\s*search_path\s*=\s*([A-Za-z0-9_]+)")


def partition_schema(url: str) -> str:
    """The schema a URL's ``options=-csearch_path=...`` selects, or "" (the default schema)."""
    try:
        options = conninfo_to_dict(url).get("options") or ""
    except psycopg.ProgrammingError:
        return ""
    found = _SEARCH_PATH_OPTION.search(str(options))
    return found.group(1) if found else ""


def migration_lock_key(schema: str) -> int:
    """The advisory lock of one schema's migrations (the home schema keeps the historic key)."""
    if not schema:
        return MIGRATION_LOCK_KEY
    return MIGRATION_LOCK_KEY + zlib.crc32(schema.encode())


def drop_schema(url: str, schema: str) -> None:
    """Drop a partition's schema and everything in it (``crm.store.connections.drop_partition``)."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_S)) as raw:
            raw.execute(f"DROP SCHEMA IF EXISTS {_quote(schema)} CASCADE")
    except psycopg.Error as exc:
        raise _unavailable(exc, url) from exc


def _check_unicode_locale(raw: psycopg.Connection[Any], url: str) -> None:
    """The search folds case with lower(): refuse a database whose LC_CTYPE cannot."""
    row = raw.execute("SELECT current_setting('server_encoding')").fetchone()
    encoding = str(row[0]) if row else "?"
    lowers = False
    if encoding == "UTF8":
        # À Σ Ж by code point, so the check does not depend on the client's encoding.
        row = raw.execute(
            "SELECT lower(chr(192) || chr(931) || chr(1046)) = chr(224) || chr(963) || chr(1078)"
        ).fetchone()
        lowers = bool(row and row[0])
    if not lowers:
        raise StoreUnavailable(
            f"The PostgreSQL database {redact(url)} cannot lower-case non-ASCII text "
            f"(encoding {encoding}); create it with ENCODING 'UTF8' and a UTF-8 locale, e.g. "
            "CREATE DATABASE crm ENCODING 'UTF8' LOCALE 'C.UTF-8' TEMPLATE template0."
        )
