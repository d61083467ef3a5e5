"""Helpers for sync tests: comparing the cache with the sandbox's truth, counting requests, polling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from crm.hubspot.models import record_from_wire
from crm.store import values
from crm.store.interactions import ENGAGEMENT_TYPES, LINKED_TYPES, body_key, row_from_record
from crm.store.schema import OBJECT_TYPES

ASSOCIATION_PAIRS = (
    ("contacts", "companies"),
    ("deals", "contacts"),
    ("deals", "companies"),
    ("tickets", "contacts"),
    ("tickets", "companies"),
    ("tickets", "deals"),
)


def crm_requests(stats: dict[str, Any]) -> int:
    """Requests the sandbox served on HubSpot's API (admin calls left out)."""
    return sum(n for route, n in stats["requests"].items() if " /_sandbox/" not in route)


def differences(db: Any, sandbox: Any) -> list[str]:
    """Where the cache differs from the sandbox's truth: records, synced properties, associations."""
    found: list[str] = []
    truth = {t: sandbox.truth(t) for t in OBJECT_TYPES}
    live_ids = {t: {r["id"] for r in truth[t] if not r["archived"]} for t in OBJECT_TYPES}
    for object_type in OBJECT_TYPES:
        types = db.queries.property_types(object_type)
        synced = db.queries.synced_property_names(object_type)
        cursor = db.conn.execute(f"SELECT * FROM {object_type}")
        columns = [c[0] for c in cursor.description]
        cached = {row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}
        cached_live = {i for i, row in cached.items() if not row["archived"]}
        for missing in sorted(live_ids[object_type] - cached_live):
            found.append(f"{object_type} {missing} is live in HubSpot but not in the cache")
        for extra in sorted(cached_live - live_ids[object_type]):
            found.append(f"{object_type} {extra} is live in the cache but not in HubSpot")
        for item in truth[object_type]:
            row = cached.get(item["id"])
            if row is None or item["archived"]:
                continue
            for prop in synced:
                theirs = item["properties"].get(prop)
                mine = values.to_wire(row[prop], types[prop])
                if not values.same_value(theirs, mine, types[prop]):
                    found.append(f"{object_type} {item['id']}.{prop}: HubSpot {theirs!r}, cache {mine!r}")
        for from_type, to_type in ASSOCIATION_PAIRS:
            if from_type != object_type:
                continue
            expected = {
                (item["id"], str(link["id"]), int(type_id))
                for item in truth[from_type]
                if not item["archived"]
                for link in (item.get("associations") or {}).get(to_type, [])
                if str(link["id"]) in live_ids[to_type]
                for type_id in link["types"]
            }
            have = {
                (f, t, int(k))
                for f, t, k in db.conn.execute(
                    "SELECT from_id, to_id, type_id FROM associations WHERE from_type = ? AND to_type = ?",
                    (from_type, to_type),
                ).fetchall()
                if f in live_ids[from_type] and t in live_ids[to_type]
            }
            for item in sorted(expected - have)[:20]:
                found.append(f"association {from_type}->{to_type} {item} missing from the cache")
            for item in sorted(have - expected)[:20]:
                found.append(f"association {from_type}->{to_type} {item} in the cache but not in HubSpot")
    return found


def interaction_differences(db: Any, sandbox: Any) -> list[str]:
    """Where the cached engagements differ from the sandbox's truth: which are live, their
    time, owner, subject and sanitised body, and the records each shows on."""
    found: list[str] = []
    live_records = {t: {r["id"] for r in sandbox.truth(t) if not r["archived"]} for t in LINKED_TYPES}
    for object_type in ENGAGEMENT_TYPES:
        truth = sandbox.truth(object_type)
        cursor = db.conn.execute(
            "SELECT i.id, i.archived, i.occurred_at, i.owner_id, i.subject, b.body FROM interactions i "
            "LEFT JOIN interaction_bodies b ON b.hash = i.body_hash WHERE i.object_type = ?",
            (object_type,),
        )
        cached = {row[0]: row for row in cursor.fetchall()}
        live = {r["id"] for r in truth if not r["archived"]}
        cached_live = {i for i, row in cached.items() if not row[1]}
        found += [f"{object_type} {i} live in HubSpot, not in the cache" for i in sorted(live - cached_live)]
        found += [f"{object_type} {i} live in the cache, not in HubSpot" for i in sorted(cached_live - live)]
        for item in truth:
            if item["archived"] or item["id"] not in cached:
                continue
            expected = row_from_record(object_type, record_from_wire(item))
            _, _, occurred_at, owner_id, subject, body = cached[item["id"]]
            body = body or ""
            if item["properties"].get("hs_call_transcription_id"):
                # A transcribed call's text ends with its transcript (read from its own API).
                if "Transcript\n" not in body:
                    found.append(f"{object_type} {item['id']}: its transcript is missing")
                body = (
                    body.split("\n\nTranscript\n")[0]
                    if "\n\nTranscript\n" in body
                    else body.split("Transcript\n")[0]
                )
            mine = (occurred_at, owner_id, subject, body)
            theirs = (expected.occurred_at, expected.owner_id, expected.subject, expected.body)
            if mine != theirs:
                found.append(f"{object_type} {item['id']}: HubSpot {theirs!r:.200}, cache {mine!r:.200}")
            for to_type in LINKED_TYPES:
                want = {
                    str(link["id"])
                    for link in (item.get("associations") or {}).get(to_type, [])
                    if str(link["id"]) in live_records[to_type]
                }
                have = {
                    r[0]
                    for r in db.conn.execute(
                        "SELECT record_id FROM interaction_links WHERE object_type = ? AND id = ? "
                        "AND record_type = ?",
                        (object_type, item["id"], to_type),
                    ).fetchall()
                    if r[0] in live_records[to_type]
                }
                if want != have:
                    found.append(f"{object_type} {item['id']} -> {to_type}: HubSpot {want}, cache {have}")
    return found


def stored_body_keys_are_their_texts(db: Any) -> bool:
    """Every stored body is kept under the hash of its own text (so each text is stored once)."""
    rows = db.conn.execute("SELECT hash, body FROM interaction_bodies").fetchall()
    return all(key == body_key(text) for key, text in rows) and len(rows) == len({t for _, t in rows})


def wait_for(condition: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        threading.Event().wait(interval)
