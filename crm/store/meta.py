"""Small facts about the cache (table ``meta``): its version counter and whose portal it holds.

``cache_version`` grows with every change to cached records (each write bumps it in
the same transaction), so a page notices a webhook or a sync by polling one integer.
Other modules keep counters and flags here under their own key prefixes (``webhooks.*``,
the private-app fingerprint) through ``get`` / ``put`` / ``bump``.
"""

from __future__ import annotations

import json
from typing import Any

from crm.store.owner import TableOwner

CACHE_VERSION = "cache_version"
PORTAL_KEY = "cache_portal_id"


class Meta(TableOwner):
    """Keys and values of the ``meta`` table."""

    def get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def get_prefixed(self, prefix: str) -> dict[str, str | None]:
        """Every key starting with ``prefix``, with its value."""
        rows = self.conn.execute("SELECT key, value FROM meta WHERE key LIKE ?", (prefix + "%",)).fetchall()
        return {str(key): value for key, value in rows}

    def put(self, key: str, value: str | None) -> None:
        """Set a key (None deletes it)."""
        with self.db.atomic():
            if value is None:
                self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                self.conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    def bump(self, key: str, by: int = 1) -> None:
        """Add ``by`` to an integer counter (created at ``by``)."""
        if not by:
            return
        with self.db.atomic():
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) "
                "+ CAST(excluded.value AS INTEGER) AS TEXT)",
                (key, str(by)),
            )

    def add_note(self, key: str, note: dict[str, Any], *, keep: int = 20) -> None:
        """Put ``note`` first in the short list of notes under ``key`` (the newest ``keep`` stay)."""
        with self.db.atomic():
            notes = [note, *self.notes(key)][:keep]
            self.put(key, json.dumps(notes, separators=(",", ":")))

    def notes(self, key: str) -> list[dict[str, Any]]:
        """The notes under ``key``, newest first (empty when none or unreadable)."""
        try:
            value = json.loads(self.get(key) or "[]")
        except ValueError:
            return []
        return [n for n in value if isinstance(n, dict)] if isinstance(value, list) else []

    def cache_version(self) -> int:
        """A number that grows with every change to cached records."""
        value = self.get(CACHE_VERSION)
        return int(value) if value else 0

    def bump_cache_version(self) -> None:
        """Count one change to cached records; call inside the transaction that made it."""
        self.bump(CACHE_VERSION)

    def claim_for_portal(self, portal_id: int) -> bool:
        """Make the cache belong to ``portal_id``.

        A cache that holds another portal's records forgets them (and their queued edits,
        which could never be pushed to this portal), so two portals never mix on one
        screen; the next sync is then a full pull. The audit log stays: it is the history
        of what was pushed. Returns True when something was forgotten.
        """
        with self.db.atomic():
            current = self.get(PORTAL_KEY)
            if current == str(portal_id):
                return False
            forget = current is not None
            if forget:
                self.db.records.forget_portal()
                self.db.interactions.forget_portal()
                self.db.syncstate.forget_cursors()
                self.db.outbox.forget_edits()
                self.db.inbox.forget_events()
                self.bump_cache_version()
            self.put(PORTAL_KEY, str(portal_id))
        return forget

    def ping(self) -> bool:
        """True when the cache answers a query."""
        return bool(tuple(self.conn.execute("SELECT 1").fetchone() or ()) == (1,))
