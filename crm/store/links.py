"""Links of one person to a record in each connection (table ``links``, home database).

A person created here once may live in several CRMs (a HubSpot contact and a Pipedrive
person). Which record holds the person in each connection is a fact about several
connections at once, so, like the registry of connections, it lives in the HOME database;
a partition carries an empty copy, being at the same schema version.

One row per (person, connection):

- ``person_id``: the local person's id (``person-<hex>``), made here, never a CRM's id;
- ``connection_id``: the connection (``crm.store.connections``);
- ``email``: the person's email as typed (links are found by it, any case);
- ``record_id``: the CRM's record id once known; before the first push, the local id of
  the record queued in that connection's partition (``local-...``);
- ``outbox_id``: the create (or link) waiting in that partition's outbox, None once settled;
- ``status``: ``synced`` (the CRM holds the record), ``pending`` (queued, not pushed yet,
  or pushed and to be retried) or ``error``; ``error`` holds the CRM's message (also kept
  with a pending link whose last push failed for a while);
- ``updated_at``: when the link last changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from crm.store.owner import TableOwner
from crm.store.values import now_iso

LinkState = Literal["synced", "pending", "error"]
LINK_STATES: tuple[LinkState, ...] = ("synced", "pending", "error")
PERSON_PREFIX = "person-"
_COLUMNS = "person_id, connection_id, email, record_id, outbox_id, status, error, updated_at"


@dataclass(frozen=True)
class Link:
    """One person's record in one connection."""

    person_id: str
    connection_id: str
    email: str | None
    record_id: str | None
    outbox_id: int | None
    status: LinkState
    error: str | None
    updated_at: str


def _from_row(row: Sequence[Any]) -> Link:
    person, connection, email, record, outbox, status, error, updated = row
    return Link(
        str(person),
        str(connection),
        None if email is None else str(email),
        None if record is None else str(record),
        None if outbox is None else int(outbox),
        status,
        None if error is None else str(error),
        str(updated),
    )


def new_person_id() -> str:
    """A fresh local person id (no CRM's id: a person may be in none yet)."""
    return f"{PERSON_PREFIX}{uuid.uuid4().hex}"


class Links(TableOwner):
    """The ``links`` table's verbs (meaningful on the home database's handle)."""

    def put(
        self,
        person_id: str,
        connection_id: str,
        *,
        status: LinkState,
        email: str | None = None,
        record_id: str | None = None,
        outbox_id: int | None = None,
        error: str | None = None,
    ) -> Link:
        """Record (or replace) a person's link to one connection; returns it.

        Raises ValueError for a status that is not synced / pending / error.
        """
        if status not in LINK_STATES:
            raise ValueError(f"a link is synced, pending or error, not {status!r}")
        stamp = now_iso()
        with self.db.atomic():
            self.conn.execute(
                "DELETE FROM links WHERE person_id = ? AND connection_id = ?", (person_id, connection_id)
            )
            self.conn.execute(
                f"INSERT INTO links ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (person_id, connection_id, email, record_id, outbox_id, status, error, stamp),
            )
        found = self.get(person_id, connection_id)
        assert found is not None
        return found

    def update(
        self,
        person_id: str,
        connection_id: str,
        *,
        status: LinkState,
        record_id: str | None = None,
        outbox_id: int | None = None,
        error: str | None = None,
    ) -> Link:
        """Change an existing link's state (record id kept when None is given; outbox id
        and error replaced). Raises KeyError: no such link."""
        current = self.get(person_id, connection_id)
        if current is None:
            raise KeyError((person_id, connection_id))
        return self.put(
            person_id,
            connection_id,
            status=status,
            email=current.email,
            record_id=record_id if record_id is not None else current.record_id,
            outbox_id=outbox_id,
            error=error,
        )

    def get(self, person_id: str, connection_id: str) -> Link | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM links WHERE person_id = ? AND connection_id = ?",
            (person_id, connection_id),
        ).fetchone()
        return None if row is None else _from_row(row)

    def of_person(self, person_id: str) -> list[Link]:
        """A person's links, by connection id."""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM links WHERE person_id = ? ORDER BY connection_id", (person_id,)
        ).fetchall()
        return [_from_row(row) for row in rows]

    def of_people(self, person_ids: Sequence[str]) -> dict[str, list[Link]]:
        """The links of several people at once (a page of contacts), by person id."""
        found: dict[str, list[Link]] = {str(p): [] for p in person_ids}
        ids = list(found)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM links WHERE person_id IN ({marks}) ORDER BY person_id, connection_id",
                chunk,
            ).fetchall()
            for row in rows:
                link = _from_row(row)
                found[link.person_id].append(link)
        return found

    def person_by_email(self, email: str) -> str | None:
        """The person linked under this email (any case), or None."""
        row = self.conn.execute(
            "SELECT person_id FROM links WHERE lower(email) = lower(?) ORDER BY updated_at LIMIT 1",
            (email.strip(),),
        ).fetchone()
        return None if row is None else str(row[0])

    def person_of_record(self, connection_id: str, record_id: str) -> str | None:
        """The person a connection's record is linked to, or None."""
        row = self.conn.execute(
            "SELECT person_id FROM links WHERE connection_id = ? AND record_id = ? LIMIT 1",
            (connection_id, str(record_id)),
        ).fetchone()
        return None if row is None else str(row[0])

    def people_of_records(self, connection_id: str, record_ids: Sequence[str]) -> dict[str, str]:
        """Record id -> linked person, for the records of one connection that have one (a page)."""
        found: dict[str, str] = {}
        ids = [str(r) for r in record_ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self.conn.execute(
                f"SELECT record_id, person_id FROM links WHERE connection_id = ? AND record_id IN ({marks})",
                [connection_id, *chunk],
            ).fetchall()
            found.update({str(record): str(person) for record, person in rows})
        return found

    def of_connection(self, connection_id: str, *, status: LinkState | None = None) -> list[Link]:
        """Every link into one connection (of one status), oldest change first."""
        sql = f"SELECT {_COLUMNS} FROM links WHERE connection_id = ?"
        params: list[Any] = [connection_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        rows = self.conn.execute(sql + " ORDER BY updated_at, person_id", params).fetchall()
        return [_from_row(row) for row in rows]

    def people(self, *, email: str | None = None) -> list[str]:
        """Every linked person's id (with this email, any case), by email then id."""
        if email is None:
            rows = self.conn.execute(
                "SELECT DISTINCT person_id, lower(email) FROM links ORDER BY lower(email), person_id"
            ).fetchall()
        else:
            rows = self.conn.execute(
                "SELECT DISTINCT person_id FROM links WHERE lower(email) = lower(?) ORDER BY person_id",
                (email.strip(),),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def forget_connection(self, connection_id: str) -> int:
        """Drop every link into a connection (the connection was removed); returns how many."""
        with self.db.atomic():
            cursor = self.conn.execute("DELETE FROM links WHERE connection_id = ?", (connection_id,))
        return int(cursor.rowcount)
