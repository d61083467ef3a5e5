"""The registry of connections (table ``connections``) and their partitions.

A connection is one CRM account (a HubSpot portal) the app is connected to. Every other
table of the store lives once per connection, in the connection's own *partition*:

- SQLite: a sibling file of the home cache, ``<stem>.<partition><suffix>``
  (``crm.db`` -> ``crm.hubspot-101.db``), owner-only like the cache;
- PostgreSQL: a schema ``c_<partition with - as _>`` in the home database, selected by
  the URL option ``options=-csearch_path=<schema>``, so the engine, its pool and the
  migrations work unchanged per schema.

So nothing one connection does can touch another's rows, and removing a connection is
dropping its file or schema. The registry itself lives in the HOME database (``CRM_DB``);
every partition carries an (unused) copy of the table, being at the same schema version.

Columns: ``id`` (a slug, ``hubspot-<portal id>`` by default), ``name`` (for people,
unique, editable), ``crm`` ("hubspot"), ``account_id`` (the portal id; unique per CRM),
``target`` (the partition's name; ``""`` means the home database itself: the cache of an
upgraded single-portal install, or the first connection of a new one), ``base_url`` (the
API host of this connection when it is not the configured one: a private-app token added
with ``--base-url``; ``""`` otherwise), ``created_at``.
The partition is stored by name, never as a path or URL, so moving the cache file or
changing the database password changes nothing here, and no password is ever stored.
"""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import UTC, datetime
from typing import Any

from crm.config import PARTITION_ID as ID_PATTERN
from crm.config import partition_schema as schema_name
from crm.config import partition_target
from crm.errors import DuplicateConnection, StoreUnavailable
from crm.store.engine import Cursor, close_engine, is_postgresql
from crm.store.meta import PORTAL_KEY
from crm.store.owner import TableOwner

# Ids are file-name and schema-name safe: lower-case letters, digits and dashes.
# SQLite files beside a database that belong to it.
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


@dataclasses.dataclass(frozen=True)
class Connection:
    """One registered connection (a row of ``connections``)."""

    id: str
    name: str
    crm: str
    account_id: str
    target: str
    created_at: str
    base_url: str = ""

    @property
    def is_home(self) -> bool:
        """Whether its partition is the home database itself (``target == ""``)."""
        return self.target == ""


def default_id(crm: str, account_id: str) -> str:
    """The slug a new connection gets: ``hubspot-123`` (anything unsafe becomes a dash)."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{crm}-{account_id}".lower()).strip("-")
    return slug[:60] or "connection"


def default_name(crm: str, account_id: str, account_name: str | None = None) -> str:
    """A new connection's display name in the CRM's own words (``crm.crms.words_for``):
    "HubSpot · Acme (portal 123)", "Pipedrive · Acme (company 7)"; no account name:
    "HubSpot (portal 123)". A CRM the app does not know keeps its name, capitalised."""
    # Imported here: the registry sits below the CRM providers, which it only asks for words.
    from crm.crms import words_for

    try:
        words = words_for(crm)
        label, what = words.crm, words.account_label(account_id)
    except KeyError:
        label, what = crm.capitalize(), f"account {account_id}"
    middle = f" · {account_name.strip()}" if account_name and account_name.strip() else ""
    return f"{label}{middle} ({what})"


def drop_partition(home: str, partition: str) -> None:
    """Delete a partition's database: its SQLite file (with -wal/-shm) or PostgreSQL schema.

    The process's engine for it is closed first. The home database (``""``) is never
    dropped; ``Connections.clear_home_partition`` empties its connection tables instead.
    """
    if not partition:
        raise ValueError("the home database is not dropped; clear it instead")
    target = partition_target(home, partition)
    close_engine(target)
    if is_postgresql(home):
        from crm.store import pg

        pg.drop_schema(home, schema_name(partition))
        return
    for companion in _SQLITE_COMPANIONS:
        try:
            os.remove(target + companion)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreUnavailable(f"Could not remove the connection's cache file: {exc}") from exc


def _connection(cursor: Cursor) -> Connection | None:
    row = cursor.fetchone()
    return None if row is None else _from_row(row)


def _from_row(row: Any) -> Connection:
    id_, name, crm, account_id, target, created_at, base_url = row
    return Connection(
        str(id_),
        str(name),
        str(crm),
        str(account_id),
        str(target or ""),
        str(created_at),
        str(base_url or ""),
    )


_COLUMNS = "id, name, crm, account_id, target, created_at, base_url"


class Connections(TableOwner):
    """The registry verbs (meaningful on the home database's handle)."""

    def list(self) -> list[Connection]:
        """Every connection, oldest first."""
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM connections ORDER BY created_at, id").fetchall()
        return [_from_row(row) for row in rows]

    def get(self, connection_id: str) -> Connection | None:
        return _connection(
            self.conn.execute(f"SELECT {_COLUMNS} FROM connections WHERE id = ?", (connection_id,))
        )

    def by_name(self, name: str) -> Connection | None:
        """The connection with this name, compared without regard to case or outer spaces."""
        wanted = name.strip().casefold()
        return next((c for c in self.list() if c.name.casefold() == wanted), None)

    def by_account(self, crm: str, account_id: str | int) -> Connection | None:
        """The connection of one CRM account (a HubSpot portal), or None."""
        return _connection(
            self.conn.execute(
                f"SELECT {_COLUMNS} FROM connections WHERE crm = ? AND account_id = ?", (crm, str(account_id))
            )
        )

    def home_is_free(self) -> bool:
        """Whether a new connection may take the home database as its partition: no
        connection uses it and it holds no portal's records or tokens."""
        taken = self.conn.execute("SELECT 1 FROM connections WHERE target = ''").fetchone()
        if taken is not None:
            return False
        return self.db.meta.get(PORTAL_KEY) is None and not self.db.auth.read_tokens()

    def adopt_home(self) -> Connection | None:
        """Register the home database's portal as its connection if it holds one that no
        connection claims (a cache a private-app token filled before any connection was
        registered, as migration 6 does for caches from before). Returns the new connection."""
        if self.conn.execute("SELECT 1 FROM connections WHERE target = ''").fetchone() is not None:
            return None
        portal = self.db.meta.get(PORTAL_KEY)
        if not portal:
            row = self.db.auth.read_connection()
            portal = str(row["portal_id"]) if row and row.get("portal_id") else None
        if not portal or portal == "0" or self.by_account("hubspot", portal) is not None:
            return None
        conn, created = self.ensure(
            crm="hubspot", account_id=portal, name=default_name("hubspot", portal), target=""
        )
        return conn if created else None

    def add(
        self,
        *,
        crm: str,
        account_id: str | int,
        name: str,
        connection_id: str | None = None,
        target: str | None = None,
        base_url: str = "",
    ) -> Connection:
        """Register a connection.

        Args:
            connection_id: its slug (default ``<crm>-<account id>``).
            target: its partition's name; None: the home database when that is free
                (``home_is_free``: a new install's first connection lives where a single
                connection always did), else a partition named after the id.
            base_url: its API host when not the configured one ("" = the configured one).

        Raises:
            DuplicateConnection: the id, the name or the account is registered already.
            ValueError: the id is not a slug (lower-case letters, digits, dashes).
        """
        connection_id = connection_id or default_id(crm, str(account_id))
        if not ID_PATTERN.match(connection_id):
            raise ValueError(f"a connection id is lower-case letters, digits and dashes: {connection_id!r}")
        name = name.strip()
        if not name:
            raise ValueError("a connection needs a name")
        with self.db.atomic():
            if self.get(connection_id) is not None or self.by_account(crm, account_id) is not None:
                raise DuplicateConnection(
                    f"{crm} account {account_id} is connected already ({connection_id})."
                )
            if self.by_name(name) is not None:
                raise DuplicateConnection(f"Another connection is already called {name!r}.")
            if target is None:
                target = "" if self.home_is_free() else connection_id
            created = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
            self.conn.execute(
                f"INSERT INTO connections ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (connection_id, name, crm, str(account_id), target, created, base_url.rstrip("/")),
            )
        found = self.get(connection_id)
        assert found is not None
        return found

    def ensure(
        self, *, crm: str, account_id: str | int, name: str, base_url: str = "", target: str | None = None
    ) -> tuple[Connection, bool]:
        """The connection of an account, registered first if new: ``(connection, created)``.

        A new one gets ``name``, or ``name (2)``... when that is taken (connecting never
        fails for want of a name; it can be renamed). One transaction: two callbacks for the
        same new portal register it once.
        """
        with self.db.atomic():
            found = self.by_account(crm, account_id)
            if found is not None:
                return found, False
            taken = {c.name.casefold() for c in self.list()}
            unique, n = name.strip() or default_name(crm, str(account_id)), 1
            base = unique
            while unique.casefold() in taken:
                n += 1
                unique = f"{base} ({n})"
            return self.add(
                crm=crm, account_id=account_id, name=unique, base_url=base_url, target=target
            ), True

    def rename(self, connection_id: str, name: str) -> Connection:
        """Give a connection another display name.

        Raises:
            DuplicateConnection: another connection has that name.
            KeyError: no such connection.
            ValueError: the name is empty.
        """
        name = name.strip()
        if not name:
            raise ValueError("a connection needs a name")
        with self.db.atomic():
            other = self.by_name(name)
            if other is not None and other.id != connection_id:
                raise DuplicateConnection(f"Another connection is already called {name!r}.")
            cursor = self.conn.execute("UPDATE connections SET name = ? WHERE id = ?", (name, connection_id))
            if cursor.rowcount != 1:
                raise KeyError(connection_id)
        found = self.get(connection_id)
        assert found is not None
        return found

    def set_base_url(self, connection_id: str, base_url: str) -> Connection:
        """Change a connection's API host (a reconnect that Pipedrive answered with another
        ``api_domain``). Raises KeyError: no such connection."""
        with self.db.atomic():
            cursor = self.conn.execute(
                "UPDATE connections SET base_url = ? WHERE id = ?", (base_url.rstrip("/"), connection_id)
            )
            if cursor.rowcount != 1:
                raise KeyError(connection_id)
        found = self.get(connection_id)
        assert found is not None
        return found

    def remove(self, connection_id: str) -> bool:
        """Delete a connection's row (its partition is dropped by the caller); True if it was there."""
        with self.db.atomic():
            cursor = self.conn.execute("DELETE FROM connections WHERE id = ?", (connection_id,))
        return cursor.rowcount == 1

    def clear_home_partition(self) -> None:
        """Empty the home database of its connection's data (the removal of a connection
        whose partition is the home): records, interactions, cursors, queued edits and
        conflicts, webhook events, tokens, the connection row and the portal it belonged
        to. The registry, OAuth states, sync history and the audit log stay."""
        with self.db.atomic():
            self.db.records.forget_portal()
            self.db.interactions.forget_portal()
            self.db.syncstate.forget_cursors()
            self.db.outbox.forget_edits()
            self.db.inbox.forget_events()
            self.db.auth.delete_tokens()
            self.db.auth.delete_connection()
            self.db.meta.put(PORTAL_KEY, None)
            self.db.meta.bump_cache_version()
