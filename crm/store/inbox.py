"""The webhook inbox and the webhook counters (tables ``webhook_inbox`` and ``meta``).

HubSpot delivers at least once and in no particular order, so every accepted event is
stored under its natural key ``(portal_id, subscription_id, event_id)`` (``eventId`` alone
is not unique) and a redelivery is a no-op. An event is *pending* until processing marks
it processed; a failed attempt bumps ``attempts`` and records the error, so nothing is
lost and a retry can pick it up.

Another CRM's events (Pipedrive's, neutral: ``crm.webhooks.neutral_row``) are keyed by the
receiver and stored through ``add_keyed`` in the same table, under (account id, webhook id,
63 bits of the event id's SHA-256).

Counters live in ``meta`` under ``webhooks.*`` keys: they survive pruning of old inbox
rows. Refused requests are not counted here but in memory (``crm.webhooks.Refusals``), so
a flood of forged requests never writes to the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from crm.store.owner import TableOwner

PREFIX = "webhooks."
LAST_EVENT_AT = PREFIX + "last_event_at"
LAST_ERROR = PREFIX + "last_error"

EventKey = tuple[int, int, int]
# An INTEGER column holds a signed 64-bit number (SQLite and PostgreSQL's BIGINT); a bigger
# Python int fails the insert.
_MAX_INTEGER = 2**63 - 1


@dataclass(frozen=True)
class InboxEvent:
    """One stored event: its key, and HubSpot's payload as delivered."""

    key: EventKey
    subscription_type: str
    object_id: str | None
    occurred_at: int | None
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class KeyedEvent:
    """An event to store under a key its CRM's receiver made (``Inbox.add_keyed``)."""

    key: EventKey
    subscription_type: str
    object_id: str | None
    occurred_at: int | None
    payload: dict[str, Any]


def event_key(event: dict[str, Any]) -> EventKey | None:
    """The dedupe key of a delivered event, or None when it lacks one that fits an INTEGER."""
    try:
        key = (int(event["portalId"]), int(event["subscriptionId"]), int(event["eventId"]))
    except (KeyError, TypeError, ValueError):
        return None
    return key if all(0 <= part <= _MAX_INTEGER for part in key) else None


def _is_integer(value: Any) -> bool:
    """An int (not a bool) that an INTEGER column can store."""
    return isinstance(value, int) and not isinstance(value, bool) and -_MAX_INTEGER <= value <= _MAX_INTEGER


class Inbox(TableOwner):
    """The webhook_inbox table, and the webhook counters it keeps in meta."""

    def add_events(self, events: Sequence[dict[str, Any]], *, received_at: str, received_ts: float) -> int:
        """Store HubSpot events not seen before; return how many were new.

        ``received_ts`` (epoch seconds) becomes ``webhooks.last_event_at``. Events without a
        dedupe key are skipped: they could never be told apart from a redelivery.
        """
        rows: list[KeyedEvent] = []
        for event in events:
            key = event_key(event)
            if key is None:
                continue
            object_id = event.get("objectId")
            occurred = event.get("occurredAt")
            rows.append(
                KeyedEvent(
                    key=key,
                    subscription_type=str(event.get("subscriptionType") or ""),
                    object_id=None if object_id is None else str(object_id),
                    occurred_at=occurred if _is_integer(occurred) else None,
                    payload=event,
                )
            )
        return self.add_keyed(rows, offered=len(events), received_at=received_at, received_ts=received_ts)

    def add_keyed(
        self, rows: Sequence[KeyedEvent], *, offered: int | None = None, received_at: str, received_ts: float
    ) -> int:
        """Store events keyed by the caller (any CRM's); return how many were new.

        ``offered``: how many events the delivery had (default ``len(rows)``); the ones not
        stored count as duplicates. Keys outside the INTEGER range are skipped.
        """
        new = 0
        with self.db.atomic():
            for row in rows:
                if not all(0 <= part <= _MAX_INTEGER for part in row.key):
                    continue
                cursor = self.conn.execute(
                    "INSERT INTO webhook_inbox (portal_id, subscription_id, event_id, "
                    "subscription_type, object_id, occurred_at, payload, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        *row.key,
                        row.subscription_type,
                        row.object_id,
                        row.occurred_at if _is_integer(row.occurred_at) else None,
                        json.dumps(row.payload, separators=(",", ":")),
                        received_at,
                    ),
                )
                new += cursor.rowcount
            self.db.meta.bump(PREFIX + "received", new)
            self.db.meta.bump(PREFIX + "duplicates", (len(rows) if offered is None else offered) - new)
            self.db.meta.put(LAST_EVENT_AT, repr(received_ts))
        return new

    def pending_events(self, *, max_attempts: int, limit: int = 500) -> list[InboxEvent]:
        """Unprocessed events that still have attempts left, oldest occurrence first."""
        rows = self.conn.execute(
            "SELECT portal_id, subscription_id, event_id, subscription_type, object_id, occurred_at, "
            "payload, attempts FROM webhook_inbox "
            "WHERE processed_at IS NULL AND attempts < ? "
            "ORDER BY occurred_at NULLS FIRST, received_at, event_id LIMIT ?",
            (max_attempts, limit),
        ).fetchall()
        return [
            InboxEvent(
                key=(row[0], row[1], row[2]),
                subscription_type=row[3],
                object_id=row[4],
                occurred_at=row[5],
                payload=json.loads(row[6]),
                attempts=row[7],
            )
            for row in rows
        ]

    def mark_processed(self, keys: Iterable[EventKey], *, at: str) -> int:
        """Mark events processed; return how many changed (one already processed is left alone)."""
        changed = 0
        with self.db.atomic():
            for key in keys:
                changed += self.conn.execute(
                    "UPDATE webhook_inbox SET processed_at = ?, error = NULL "
                    "WHERE portal_id = ? AND subscription_id = ? AND event_id = ? AND processed_at IS NULL",
                    (at, *key),
                ).rowcount
            self.db.meta.bump(PREFIX + "processed", changed)
        return changed

    def mark_failed(self, keys: Iterable[EventKey], error: str) -> None:
        """Record a failed attempt for each event; they stay pending while attempts remain."""
        with self.db.atomic():
            for key in keys:
                self.conn.execute(
                    "UPDATE webhook_inbox SET attempts = attempts + 1, error = ? "
                    "WHERE portal_id = ? AND subscription_id = ? AND event_id = ? AND processed_at IS NULL",
                    (error, *key),
                )
            self.db.meta.put(LAST_ERROR, error)

    def clear_last_error(self) -> None:
        """Forget the last processing error, after a round that succeeded."""
        with self.db.atomic():
            self.db.meta.put(LAST_ERROR, None)

    def forget_events(self) -> None:
        """Drop every stored event (the cache now serves another portal)."""
        self.conn.execute("DELETE FROM webhook_inbox")

    def forget_objects(self, prefix: str, object_ids: Sequence[str]) -> int:
        """Drop processed events about some objects (a GDPR deletion: payloads carry values).

        ``prefix`` is the event name's object part (``contact``); returns how many went.
        """
        ids = list(dict.fromkeys(object_ids))
        if not ids:
            return 0
        with self.db.atomic():
            return int(
                self.conn.execute(
                    f"DELETE FROM webhook_inbox WHERE processed_at IS NOT NULL AND subscription_type LIKE ? "
                    f"AND object_id IN ({', '.join('?' for _ in ids)})",
                    (prefix + ".%", *ids),
                ).rowcount
            )

    def prune(self, *, processed_before: str) -> int:
        """Delete events processed before ``processed_before`` (ISO-8601); return how many.

        Keep them longer than HubSpot keeps retrying (24 h), or a late redelivery would be
        taken for a new event.
        """
        with self.db.atomic():
            return self.conn.execute(
                "DELETE FROM webhook_inbox WHERE processed_at IS NOT NULL AND processed_at < ?",
                (processed_before,),
            ).rowcount

    def status(self, *, max_attempts: int) -> dict[str, Any]:
        """Counters and inbox figures for ``crm.webhooks.live_status``."""
        meta = self.db.meta.get_prefixed(PREFIX)
        pending, failed = self.conn.execute(
            "SELECT COALESCE(SUM(CASE WHEN attempts < ? THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN attempts >= ? THEN 1 ELSE 0 END), 0) "
            "FROM webhook_inbox WHERE processed_at IS NULL",
            (max_attempts, max_attempts),
        ).fetchone()
        last_event = meta.get(LAST_EVENT_AT)
        return {
            "received": int(meta.get(PREFIX + "received") or 0),
            "duplicates": int(meta.get(PREFIX + "duplicates") or 0),
            "processed": int(meta.get(PREFIX + "processed") or 0),
            "pending": int(pending),
            "failed": int(failed),
            "last_event_at": float(last_event) if last_event else None,
            "last_error": meta.get(LAST_ERROR),
        }
