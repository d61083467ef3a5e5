"""The store handle: one open connection and the verbs that own the tables.

    with store.open(settings) as db:          # a connection for this thread
        with db.atomic():                     # one write transaction
            db.outbox.queue_updates(...)      # nested atomic() blocks are savepoints
            db.records.set_local_values(...)

A ``Store`` belongs to the thread that opened it (sqlite3's rule; a pooled PostgreSQL
connection is no different) and is closed when the ``with`` ends (``close()`` does the
same for the rare holder that cannot use a ``with``, such as a test fixture). Open one
per unit of work: it is cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from crm.store.auth import Auth
from crm.store.connections import Connections
from crm.store.engine import Conn, engine_for
from crm.store.inbox import Inbox
from crm.store.interactions import Interactions
from crm.store.links import Links
from crm.store.meta import Meta
from crm.store.outbox import Outbox
from crm.store.queries import Queries
from crm.store.records import Records
from crm.store.syncstate import SyncState

if TYPE_CHECKING:
    from crm.config import Settings


class Store:
    """An open cache: ``atomic()`` and the verbs, grouped by the module that owns each table.

    Attributes:
        records: writes of records, associations, owners, pipelines, property definitions.
        interactions: engagements (notes, calls, emails, meetings, tasks), their bodies and
            timeline links, and the timeline query.
        queries: the reads behind the pages (DataFrames and dicts).
        outbox: local edits, conflicts and the audit log.
        syncstate: sync runs, cursors and leases.
        auth: OAuth states, connect tickets, the connection row and tokens.
        inbox: webhook events and their counters.
        meta: small facts: the cache version, the portal the cache belongs to.
        connections: the registry of connections (used on the home database).
        links: one person's record in each connection (used on the home database).
    """

    def __init__(self, conn: Conn) -> None:
        # The connection is for crm.store's own modules; callers use the verbs.
        self.conn = conn
        self._depth = 0
        self._closed = False
        self.records = Records(self)
        self.interactions = Interactions(self)
        self.queries = Queries(self)
        self.outbox = Outbox(self)
        self.syncstate = SyncState(self)
        self.auth = Auth(self)
        self.inbox = Inbox(self)
        self.meta = Meta(self)
        self.connections = Connections(self)
        self.links = Links(self)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.conn.dialect

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A transaction: all of the block is written, or none of it.

        The outermost block takes the write lock up front (SQLite ``BEGIN IMMEDIATE``), so
        writers queue instead of failing; a nested block is a savepoint, so its failure
        undoes only its own part (if the caller catches the exception).
        """
        depth = self._depth
        if depth == 0:
            self.conn.begin()
        else:
            self.conn.execute(f"SAVEPOINT s{depth}")
        self._depth = depth + 1
        try:
            yield
        except BaseException:
            self._depth = depth
            if depth == 0:
                self.conn.rollback()
            else:
                self.conn.execute(f"ROLLBACK TO SAVEPOINT s{depth}")
                self.conn.execute(f"RELEASE SAVEPOINT s{depth}")
            raise
        self._depth = depth
        if depth == 0:
            self.conn.commit()
        else:
            self.conn.execute(f"RELEASE SAVEPOINT s{depth}")

    def close(self) -> None:
        """Close the connection (PostgreSQL: back to the pool); closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def target_of(where: Settings | str | Path) -> str:
    """The database a ``store.open`` argument names: a ``postgresql://`` URL or a SQLite path."""
    target = str(where if isinstance(where, (str, Path)) else where.db)
    # A URL that went through Path lost one slash of "//" (Settings keeps CRM_DB as a Path).
    for scheme in ("postgresql:/", "postgres:/"):
        if target.startswith(scheme) and not target.startswith(scheme + "/"):
            return scheme + "/" + target[len(scheme) :]
    return target


def open(where: Settings | str | Path, *, wait_s: float | None = None) -> Store:  # noqa: A001
    """The cache for one unit of work: ``with store.open(settings) as db:``, closed when the block ends.

    Args:
        where: Settings (its ``CRM_DB``), a SQLite path, or a ``postgresql://`` URL.
        wait_s: how long a statement waits for another writer before giving up (the
            webhook route waits less than HubSpot's timeout).

    Raises:
        StoreUnavailable: the database cannot be opened (or upgraded).
    """
    return Store(engine_for(target_of(where)).connect(wait_s=wait_s))
