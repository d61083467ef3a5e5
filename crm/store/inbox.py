"""The webhook inbox and the webhook counters (tables ``webhook_inbox`` and ``meta``).

HubSpot delivers at least once and in no particular order, so every accepted event is
stored under its natural key ``(portal_id, subscription_id, event_id)`` (``eventId`` alone
is not unique) and a redelivery is a no-op. An event is *pending* until processing marks
it processed; a failed attempt bumps ``attempts`` and records the error, so nothing is
lost and a retry can pick it up.

Counters live in ``meta`` under ``webhooks.*`` keys: they survive pruning of old inbox
rows and let the UI say how many requests were refused and why.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from crm.store.schema import write

PREFIX = "webhooks."
REJECTED_PREFIX = PREFIX + "rejected."
LAST_EVENT_AT = PREFIX + "last_event_at"
LAST_ERROR = PREFIX + "last_error"

EventKey = tuple[int, int, int]


@dataclass(frozen=True)
class InboxEvent:
    """One stored event: its key, and HubSpot's payload as delivered."""

    key: EventKey
    subscription_type: str
    object_id: str | None
    occurred_at: int | None
    payload: dict[str, Any]
    attempts: int


def event_key(event: dict[str, Any]) -> EventKey | None:
    """The dedupe key of a delivered event, or None when it lacks one."""
    try:
        return (int(event["portalId"]), int(event["subscriptionId"]), int(event["eventId"]))
    except (KeyError, TypeError, ValueError):
        return None


def add_events(
    db: sqlite_utils.Database, events: Sequence[dict[str, Any]], *, received_at: str, received_ts: float
) -> int:
    """Store events not seen before; return how many were new.

    ``received_ts`` (epoch seconds) becomes ``webhooks.last_event_at``. Events without a
    dedupe key are skipped: they could never be told apart from a redelivery.
    """
    new = 0
    with write(db) as conn:
        for event in events:
            key = event_key(event)
            if key is None:
                continue
            object_id = event.get("objectId")
            occurred = event.get("occurredAt")
            cursor = conn.execute(
                "INSERT OR IGNORE INTO webhook_inbox (portal_id, subscription_id, event_id, "
                "subscription_type, object_id, occurred_at, payload, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *key,
                    str(event.get("subscriptionType") or ""),
                    None if object_id is None else str(object_id),
                    occurred if isinstance(occurred, int) else None,
                    json.dumps(event, separators=(",", ":")),
                    received_at,
                ),
            )
            new += cursor.rowcount
        _bump(conn, PREFIX + "received", new)
        _bump(conn, PREFIX + "duplicates", len(events) - new)
        _set(conn, LAST_EVENT_AT, repr(received_ts))
    return new


def count_rejection(db: sqlite_utils.Database, reason: str) -> None:
    """Count one refused webhook request under ``reason``."""
    with write(db) as conn:
        _bump(conn, REJECTED_PREFIX + reason, 1)


def pending_events(db: sqlite_utils.Database, *, max_attempts: int, limit: int = 500) -> list[InboxEvent]:
    """Unprocessed events that still have attempts left, oldest occurrence first."""
    rows = db.conn.execute(
        "SELECT portal_id, subscription_id, event_id, subscription_type, object_id, occurred_at, "
        "payload, attempts FROM webhook_inbox "
        "WHERE processed_at IS NULL AND attempts < ? "
        "ORDER BY occurred_at, received_at, event_id LIMIT ?",
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


def mark_processed(db: sqlite_utils.Database, keys: Iterable[EventKey], *, at: str) -> int:
    """Mark events processed; return how many changed (one already processed is left alone)."""
    changed = 0
    with write(db) as conn:
        for key in keys:
            changed += conn.execute(
                "UPDATE webhook_inbox SET processed_at = ?, error = NULL "
                "WHERE portal_id = ? AND subscription_id = ? AND event_id = ? AND processed_at IS NULL",
                (at, *key),
            ).rowcount
        _bump(conn, PREFIX + "processed", changed)
    return changed


def mark_failed(db: sqlite_utils.Database, keys: Iterable[EventKey], error: str) -> None:
    """Record a failed attempt for each event; they stay pending while attempts remain."""
    with write(db) as conn:
        for key in keys:
            conn.execute(
                "UPDATE webhook_inbox SET attempts = attempts + 1, error = ? "
                "WHERE portal_id = ? AND subscription_id = ? AND event_id = ? AND processed_at IS NULL",
                (error, *key),
            )
        _set(conn, LAST_ERROR, error)


def clear_last_error(db: sqlite_utils.Database) -> None:
    """Forget the last processing error, after a round that succeeded."""
    with write(db) as conn:
        conn.execute("DELETE FROM meta WHERE key = ?", (LAST_ERROR,))


def prune(db: sqlite_utils.Database, *, processed_before: str) -> int:
    """Delete events processed before ``processed_before`` (ISO-8601); return how many.

    Keep them longer than HubSpot keeps retrying (24 h), or a late redelivery would be
    taken for a new event.
    """
    with write(db) as conn:
        return conn.execute(
            "DELETE FROM webhook_inbox WHERE processed_at IS NOT NULL AND processed_at < ?",
            (processed_before,),
        ).rowcount


def status(db: sqlite_utils.Database, *, max_attempts: int) -> dict[str, Any]:
    """Counters and inbox figures for ``crm.webhooks.live_status``."""
    meta = dict(db.conn.execute("SELECT key, value FROM meta WHERE key LIKE ?", (PREFIX + "%",)).fetchall())
    pending, failed = db.conn.execute(
        "SELECT COALESCE(SUM(attempts < ?), 0), COALESCE(SUM(attempts >= ?), 0) "
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
        "rejected": {
            key.removeprefix(REJECTED_PREFIX): int(value or 0)
            for key, value in sorted(meta.items())
            if key.startswith(REJECTED_PREFIX)
        },
    }


def _bump(conn: sqlite3.Connection, key: str, by: int) -> None:
    if by:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
            (key, by),
        )


def _set(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
