"""CRM records in the cache: typed values, upserts from a pull, and the UI's read queries.

Values cross this module in two shapes:

- *wire* strings, as HubSpot sends and takes them (``"1500.00"``, ``"true"``,
  ``"2024-05-01T00:00:00.000Z"``); the outbox stores edits in this shape;
- *column* values, typed for SQLite: REAL for numbers, INTEGER 0/1 for booleans,
  ISO-8601 text for dates (``YYYY-MM-DD``) and datetimes (``...T..:..:..sssZ``, UTC).

``to_column`` and ``to_wire`` convert between them; ``same_value`` compares two wire
values the way HubSpot means them (``"1500.00"`` equals ``"1500"``).

Every write bumps ``cache_version`` (meta table) in the same transaction, so a page can
notice a webhook or sync change by polling one integer.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import pandas as pd
import sqlite_utils

from crm.store.schema import BASE_COLUMNS, OBJECT_TYPES, write

BOOKKEEPING = ("id", "archived", "created_at", "updated_at", "synced_at")
# Last-modified properties (contacts; companies and deals); updatedAt is their value.
_LAST_MODIFIED = ("lastmodifieddate", "hs_lastmodifieddate")
# Ids of records created locally and not yet pushed; never swept as "archived".
LOCAL_ID_PREFIX = "local-"
# Outbox statuses whose local value a pull must not overwrite.
ACTIVE_EDIT_STATUSES = ("pending", "conflict")

_NAME_RE = re.compile(r"^[a-z0-9_]{1,100}$")
_CANONICAL_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_AFFINITY_TYPE = {"REAL": "number", "INTEGER": "bool", "TEXT": "string"}
# The few base properties whose type is known without their definition.
_KNOWN_TYPES = {
    "createdate": "datetime",
    "lastmodifieddate": "datetime",
    "hs_lastmodifieddate": "datetime",
    "closedate": "datetime",
    "amount": "number",
    "numberofemployees": "number",
    "annualrevenue": "number",
}


class RecordLike(Protocol):
    """What ``upsert_records`` needs from a record (``crm.hubspot.Record`` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def properties(self) -> Mapping[str, str | None]: ...
    @property
    def created_at(self) -> str | None: ...
    @property
    def updated_at(self) -> str | None: ...
    @property
    def archived(self) -> bool: ...


@dataclass
class UpsertResult:
    """What one ``upsert_records`` call did."""

    written: int = 0
    conflicts: int = 0
    protected: int = 0


# --------------------------------------------------------------------------- values


def column_affinity(prop_type: str) -> str:
    """The SQLite column type for a HubSpot property type."""
    if prop_type == "number":
        return "REAL"
    if prop_type == "bool":
        return "INTEGER"
    return "TEXT"


def now_iso() -> str:
    """The current UTC time as fixed-width ISO-8601 (sorts as text)."""
    return _iso(dt.datetime.now(dt.UTC))


def _iso(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_datetime(value: Any) -> dt.datetime | None:
    """A UTC datetime from an ISO string, epoch milliseconds, a date or a datetime.

    Returns None for empty input; raises ValueError for anything else unreadable.
    """
    if value is None or value == "":
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value) / 1000, dt.UTC)
    text = str(value).strip()
    if re.fullmatch(r"-?\d{9,}", text):
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def to_epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds of a datetime-like value, None when empty or unreadable."""
    try:
        moment = parse_datetime(value)
    except (ValueError, OverflowError, OSError):
        return None
    return None if moment is None else int(moment.timestamp() * 1000)


def _format_number(number: Decimal) -> str:
    if number == number.to_integral_value():
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")


def to_column(value: str | None, prop_type: str) -> Any:
    """A wire value as stored in its typed column (None for empty)."""
    if value is None or value == "":
        return None
    try:
        if prop_type == "number":
            return float(Decimal(value.strip()))
        if prop_type == "bool":
            lowered = value.strip().lower()
            if lowered in ("true", "1", "yes"):
                return 1
            if lowered in ("false", "0", "no"):
                return 0
            return value
        if prop_type == "datetime":
            if _CANONICAL_ISO.match(value):
                return value  # HubSpot's usual form is already ours
            moment = parse_datetime(value)
            return None if moment is None else _iso(moment)
        if prop_type == "date":
            moment = parse_datetime(value)
            return None if moment is None else moment.date().isoformat()
    except (InvalidOperation, ValueError, OverflowError, OSError):
        # Keep what HubSpot sent rather than lose it; the column shows it as text.
        return value
    return value


def to_wire(value: Any, prop_type: str) -> str | None:
    """A column (or Python) value as HubSpot takes it; None for empty."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):  # pandas' empty cell
        return None
    if value is pd.NaT:
        return None
    if prop_type == "number":
        if isinstance(value, bool):
            return "1" if value else "0"
        try:
            return _format_number(Decimal(str(value).strip()))
        except InvalidOperation:
            return str(value)
    if prop_type == "bool":
        if isinstance(value, str):
            return value.strip().lower() or None
        return "true" if bool(value) else "false"
    if prop_type in ("date", "datetime"):
        try:
            moment = parse_datetime(value)
        except (ValueError, OverflowError, OSError):
            return str(value)
        if moment is None:
            return None
        return moment.date().isoformat() if prop_type == "date" else _iso(moment)
    text = str(value)
    return text if text != "" else None


def _canonical(value: Any, prop_type: str) -> Any:
    wire = value if isinstance(value, str) or value is None else to_wire(value, prop_type)
    if wire is None or wire == "":
        return None
    if prop_type == "number":
        try:
            return Decimal(wire.strip()).normalize()
        except InvalidOperation:
            return wire
    if prop_type == "bool":
        return wire.strip().lower()
    if prop_type == "datetime":
        ms = to_epoch_ms(wire)
        return wire if ms is None else ms
    if prop_type == "date":
        try:
            moment = parse_datetime(wire)
        except (ValueError, OverflowError, OSError):
            return wire
        return None if moment is None else moment.date()
    if prop_type == "enumeration" and ";" in wire:
        return frozenset(part for part in wire.split(";") if part)
    return wire


def same_value(a: Any, b: Any, prop_type: str = "string") -> bool:
    """Whether two values mean the same to HubSpot (empty and None alike)."""
    return bool(_canonical(a, prop_type) == _canonical(b, prop_type))


# ------------------------------------------------------------------ meta and columns


def cache_version(db: sqlite_utils.Database) -> int:
    """A number that grows with every change to cached records."""
    row = db.execute("SELECT value FROM meta WHERE key = 'cache_version'").fetchone()
    return int(row[0]) if row else 0


def bump_cache_version(conn: Any) -> None:
    """Increment ``cache_version``; call inside the write transaction that changed records."""
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('cache_version', '1') "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
    )


PORTAL_KEY = "cache_portal_id"
# What belongs to one portal. The audit log stays: it is the history of what was pushed.
_PORTAL_TABLES = (
    *OBJECT_TYPES,
    "associations",
    "owners",
    "pipelines",
    "pipeline_stages",
    "property_defs",
    "sync_cursors",
    "outbox",
    "webhook_inbox",
)


def claim_for_portal(conn: Any, portal_id: int) -> bool:
    """Make the cache belong to ``portal_id``, inside the caller's write transaction.

    A cache that holds another portal's records forgets them (and their queued edits,
    which could never be pushed to this portal), so two portals never mix on one screen;
    the next sync is then a full pull. Returns True when something was forgotten.
    """
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (PORTAL_KEY,)).fetchone()
    if row is not None and row[0] == str(portal_id):
        return False
    forget = row is not None
    if forget:
        for table in _PORTAL_TABLES:
            conn.execute(f"DELETE FROM {_q(table)}")
        bump_cache_version(conn)
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (PORTAL_KEY, str(portal_id)),
    )
    return forget


def _check_type(object_type: str) -> str:
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"unknown object type: {object_type!r}")
    return object_type


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_columns(db_or_conn: Any, object_type: str) -> list[str]:
    """The record table's columns, bookkeeping first."""
    conn = db_or_conn.conn if isinstance(db_or_conn, sqlite_utils.Database) else db_or_conn
    rows = conn.execute(f"PRAGMA table_info({_q(_check_type(object_type))})").fetchall()
    return [r[1] for r in rows]


def property_types(db_or_conn: Any, object_type: str) -> dict[str, str]:
    """HubSpot type of every property column of a record table.

    Taken from the stored definitions; columns without one fall back to what their
    SQLite affinity says (REAL is a number, INTEGER a bool, anything else a string).
    """
    conn = db_or_conn.conn if isinstance(db_or_conn, sqlite_utils.Database) else db_or_conn
    rows = conn.execute(f"PRAGMA table_info({_q(_check_type(object_type))})").fetchall()
    defs = dict(
        conn.execute("SELECT name, type FROM property_defs WHERE object_type = ?", (object_type,)).fetchall()
    )
    types: dict[str, str] = {}
    for row in rows:
        name, affinity = row[1], (row[2] or "TEXT").upper()
        if name in BOOKKEEPING:
            continue
        types[name] = defs.get(name) or _KNOWN_TYPES.get(name) or _AFFINITY_TYPE.get(affinity, "string")
    return types


def is_valid_property_name(name: str) -> bool:
    """Whether ``name`` can be a column (HubSpot names are lowercase a-z, 0-9 and _)."""
    return bool(_NAME_RE.match(name)) and name not in BOOKKEEPING


def ensure_columns(conn: Any, object_type: str, wanted: Mapping[str, str]) -> list[str]:
    """Add a column for each property in ``wanted`` (name -> HubSpot type) that lacks one.

    Call inside a write transaction. Returns the names added.
    """
    existing = set(table_columns(conn, object_type))
    added = []
    for name, prop_type in wanted.items():
        if name in existing or not is_valid_property_name(name):
            continue
        conn.execute(f"ALTER TABLE {_q(object_type)} ADD COLUMN {_q(name)} {column_affinity(prop_type)}")
        added.append(name)
    return added


# ----------------------------------------------------------------- property defs


def save_property_defs(
    db: sqlite_utils.Database, object_type: str, defs: Sequence[Mapping[str, Any]]
) -> None:
    """Store a type's property definitions (as ``HubSpotClient.list_properties`` gives them).

    Definitions no longer listed are flagged archived; columns for the properties we
    sync are added (see ``synced_property_names``).
    """
    _check_type(object_type)
    rows = [
        (
            object_type,
            d["name"],
            d.get("label"),
            d.get("type") or "string",
            d.get("field_type"),
            d.get("group_name"),
            json.dumps(d.get("options") or []),
            int(bool(d.get("read_only"))),
            int(bool(d.get("calculated"))),
            int(bool(d.get("hubspot_defined"))),
            int(bool(d.get("has_unique_value"))),
            int(bool(d.get("archived"))),
        )
        for d in defs
        if d.get("name")
    ]
    with write(db) as conn:
        conn.executemany(
            """INSERT INTO property_defs (object_type, name, label, type, field_type, group_name,
                 options, read_only, calculated, hubspot_defined, has_unique_value, archived)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(object_type, name) DO UPDATE SET label = excluded.label,
                 type = excluded.type, field_type = excluded.field_type,
                 group_name = excluded.group_name, options = excluded.options,
                 read_only = excluded.read_only, calculated = excluded.calculated,
                 hubspot_defined = excluded.hubspot_defined,
                 has_unique_value = excluded.has_unique_value, archived = excluded.archived""",
            rows,
        )
        names = [r[1] for r in rows]
        if names:
            conn.execute(
                f"UPDATE property_defs SET archived = 1 WHERE object_type = ? "
                f"AND name NOT IN ({','.join('?' * len(names))})",
                (object_type, *names),
            )
        wanted = {
            d["name"]: d.get("type") or "string" for d in defs if d.get("name") and _is_synced(object_type, d)
        }
        ensure_columns(conn, object_type, wanted)


def _is_synced(object_type: str, definition: Mapping[str, Any]) -> bool:
    name = str(definition.get("name"))
    if definition.get("archived") or not is_valid_property_name(name):
        return False
    # What the app shows (BASE_COLUMNS) plus every custom property of the portal.
    return not definition.get("hubspot_defined") or name in BASE_COLUMNS[object_type]


def synced_property_names(db: sqlite_utils.Database, object_type: str) -> list[str]:
    """The HubSpot properties a pull requests for ``object_type``: one per property column."""
    return [c for c in table_columns(db, object_type) if c not in BOOKKEEPING]


def property_defs(db: sqlite_utils.Database, object_type: str) -> dict[str, dict[str, Any]]:
    """Stored property definitions by name (options parsed; flags as bools)."""
    cursor = db.execute(
        "SELECT * FROM property_defs WHERE object_type = ? ORDER BY name", (_check_type(object_type),)
    )
    columns = [c[0] for c in cursor.description]
    result: dict[str, dict[str, Any]] = {}
    for row in cursor.fetchall():
        item = dict(zip(columns, row, strict=True))
        item["options"] = json.loads(item["options"] or "[]")
        for flag in ("read_only", "calculated", "hubspot_defined", "has_unique_value", "archived"):
            item[flag] = bool(item[flag])
        result[item["name"]] = item
    return result


# ------------------------------------------------------------------------ upserts


def _active_edits(conn: Any, object_type: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.extend(
            conn.execute(
                f"""SELECT id, record_id, property, new_value, base_value, remote_value, status
                    FROM outbox WHERE object_type = ? AND op = 'update'
                    AND status IN ({",".join("?" * len(ACTIVE_EDIT_STATUSES))})
                    AND record_id IN ({",".join("?" * len(chunk))})""",
                (object_type, *ACTIVE_EDIT_STATUSES, *chunk),
            ).fetchall()
        )
    return found


def upsert_records(
    db: sqlite_utils.Database,
    object_type: str,
    records: Iterable[RecordLike],
    *,
    synced_at: str | None = None,
    extra_sql: Sequence[tuple[str, Sequence[Any]]] = (),
) -> UpsertResult:
    """Write records from HubSpot into the cache in one transaction.

    Only properties present in a record's ``properties`` are written (absent means "not
    requested"; None means "empty in HubSpot"), and only those that have a column. A
    field with an edit waiting in the outbox keeps its local value; if HubSpot's value
    moved away from the edit's base, the edit becomes a conflict.

    Args:
        extra_sql: statements run in the same transaction (a pull's resume cursor), so
            records and the position that claims them are committed together.
    """
    _check_type(object_type)
    batch = list(records)
    result = UpsertResult()
    if not batch and not extra_sql:
        return result
    with write(db) as conn:
        write_records(conn, object_type, batch, synced_at=synced_at or now_iso(), result=result)
        for sql, params in extra_sql:
            conn.execute(sql, params)
    return result


def write_records(
    conn: Any,
    object_type: str,
    records: Iterable[RecordLike],
    *,
    synced_at: str,
    result: UpsertResult | None = None,
) -> UpsertResult:
    """``upsert_records`` inside the caller's write transaction."""
    result = result or UpsertResult()
    batch = {r.id: r for r in records}  # the last copy of a record wins
    if not batch:
        return result
    types = property_types(conn, object_type)
    edits = _active_edits(conn, object_type, list(batch))
    protected: dict[tuple[str, str], tuple[Any, ...]] = {(e[1], e[2]): e for e in edits}
    groups: dict[tuple[str, ...], list[list[Any]]] = {}
    for record in batch.values():
        keep = []
        for prop in record.properties:
            if prop not in types:
                continue
            edit = protected.get((record.id, prop))
            if edit is None:
                keep.append(prop)
                continue
            result.protected += 1
            _reconcile_edit(conn, edit, record.properties.get(prop), types[prop], result)
        columns = tuple(keep)
        values = [
            record.id,
            int(bool(record.archived)),
            record.created_at,
            record.updated_at,
            synced_at,
            *(to_column(record.properties.get(p), types[p]) for p in columns),
        ]
        groups.setdefault(columns, []).append(values)
    for columns, rows in groups.items():
        names = [*BOOKKEEPING, *columns]
        table = _q(object_type)
        # A page read before a webhook fetch (or by a slow walker) must not put older data
        # back. HubSpot's updatedAt is ISO-8601 UTC in one format, so text order is time
        # order. The record was still seen, so synced_at moves either way (a full pull
        # flags what it did not see as deleted).
        fresh = (
            f"(excluded.updated_at IS NULL OR {table}.updated_at IS NULL "
            f"OR excluded.updated_at >= {table}.updated_at)"
        )
        updates = ", ".join(
            f"{_q(n)} = excluded.{_q(n)}"
            if n == "synced_at"
            else f"{_q(n)} = CASE WHEN {fresh} THEN excluded.{_q(n)} ELSE {table}.{_q(n)} END"
            for n in names[1:]
        )
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(_q(n) for n in names)}) "
            f"VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT(id) DO UPDATE SET {updates}",
            rows,
        )
        result.written += len(rows)
    bump_cache_version(conn)
    return result


def _reconcile_edit(
    conn: Any, edit: tuple[Any, ...], remote: str | None, prop_type: str, result: UpsertResult
) -> None:
    outbox_id, _record_id, _prop, new_value, base_value, remote_value, status = edit
    if status == "pending":
        if same_value(remote, base_value, prop_type) or same_value(remote, new_value, prop_type):
            return
        conn.execute(
            "UPDATE outbox SET status = 'conflict', remote_value = ?, updated_at = ? WHERE id = ?",
            (remote, now_iso(), outbox_id),
        )
        result.conflicts += 1
    elif status == "conflict" and not same_value(remote, remote_value, prop_type):
        conn.execute(
            "UPDATE outbox SET remote_value = ?, updated_at = ? WHERE id = ?",
            (remote, now_iso(), outbox_id),
        )


def mark_archived(db: sqlite_utils.Database, object_type: str, ids: Iterable[str]) -> int:
    """Flag cached records as archived (deleted in HubSpot); returns how many changed."""
    _check_type(object_type)
    id_list = list(dict.fromkeys(ids))
    changed = 0
    if not id_list:
        return 0
    stamp = now_iso()
    with write(db) as conn:
        for start in range(0, len(id_list), 500):
            chunk = id_list[start : start + 500]
            changed += conn.execute(
                f"UPDATE {_q(object_type)} SET archived = 1, synced_at = ? "
                f"WHERE archived = 0 AND id IN ({','.join('?' * len(chunk))})",
                (stamp, *chunk),
            ).rowcount
        if changed:
            bump_cache_version(conn)
    return changed


def archive_unseen(db: sqlite_utils.Database, object_type: str, *, seen_since: str) -> int:
    """After a complete full pull: flag records not seen since ``seen_since`` as archived.

    Locally created records that were never pushed are left alone.
    """
    _check_type(object_type)
    with write(db) as conn:
        changed = int(
            conn.execute(
                f"UPDATE {_q(object_type)} SET archived = 1 WHERE archived = 0 "
                f"AND id NOT LIKE '{LOCAL_ID_PREFIX}%' AND (synced_at IS NULL OR synced_at < ?)",
                (seen_since,),
            ).rowcount
        )
        if changed:
            bump_cache_version(conn)
    return changed


def set_local_values(conn: Any, object_type: str, record_id: str, values: Mapping[str, Any]) -> None:
    """Write column values of one record (inside the caller's write transaction)."""
    if not values:
        return
    assignments = ", ".join(f"{_q(name)} = ?" for name in values)
    conn.execute(
        f"UPDATE {_q(_check_type(object_type))} SET {assignments} WHERE id = ?",
        (*values.values(), record_id),
    )
    bump_cache_version(conn)


def replace_associations(
    db: sqlite_utils.Database,
    from_type: str,
    to_type: str,
    from_ids: Iterable[str],
    found: Mapping[str, Sequence[tuple[str, int]]],
) -> int:
    """Make the cache's ``from_type`` -> ``to_type`` associations of ``from_ids`` equal ``found``.

    Returns the number of association rows written.
    """
    ids = list(dict.fromkeys(from_ids))
    rows = [
        (from_type, from_id, to_type, str(to_id), int(type_id))
        for from_id in ids
        for to_id, type_id in found.get(from_id, ())
    ]
    with write(db) as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            conn.execute(
                f"DELETE FROM associations WHERE from_type = ? AND to_type = ? "
                f"AND from_id IN ({','.join('?' * len(chunk))})",
                (from_type, to_type, *chunk),
            )
        conn.executemany(
            "INSERT OR IGNORE INTO associations (from_type, from_id, to_type, to_id, type_id) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        bump_cache_version(conn)
    return len(rows)


def save_owners(db: sqlite_utils.Database, owners: Sequence[Mapping[str, Any]]) -> None:
    """Store the portal's owners; owners no longer listed are flagged archived."""
    rows = [
        (
            str(o["id"]),
            o.get("email"),
            o.get("first_name"),
            o.get("last_name"),
            o.get("user_id"),
            o.get("type"),
            json.dumps(o.get("teams") or []),
            int(bool(o.get("archived"))),
        )
        for o in owners
    ]
    with write(db) as conn:
        conn.executemany(
            """INSERT INTO owners (id, email, first_name, last_name, user_id, type, teams, archived)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET email = excluded.email,
                 first_name = excluded.first_name, last_name = excluded.last_name,
                 user_id = excluded.user_id, type = excluded.type, teams = excluded.teams,
                 archived = excluded.archived""",
            rows,
        )
        ids = [r[0] for r in rows]
        if ids:
            conn.execute(f"UPDATE owners SET archived = 1 WHERE id NOT IN ({','.join('?' * len(ids))})", ids)
        else:
            conn.execute("UPDATE owners SET archived = 1")


def save_pipelines(db: sqlite_utils.Database, object_type: str, items: Sequence[Mapping[str, Any]]) -> None:
    """Store a type's pipelines and their stages (as ``list_pipelines`` gives them)."""
    with write(db) as conn:
        conn.execute("DELETE FROM pipeline_stages WHERE object_type = ?", (object_type,))
        conn.execute("DELETE FROM pipelines WHERE object_type = ?", (object_type,))
        for p in items:
            conn.execute(
                "INSERT INTO pipelines (object_type, id, label, display_order, archived) VALUES (?, ?, ?, ?, ?)",
                (
                    object_type,
                    str(p["id"]),
                    p.get("label") or str(p["id"]),
                    int(p.get("display_order") or 0),
                    int(bool(p.get("archived"))),
                ),
            )
            conn.executemany(
                """INSERT INTO pipeline_stages (object_type, pipeline_id, id, label, display_order,
                     probability, is_closed, archived) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    (
                        object_type,
                        str(p["id"]),
                        str(s["id"]),
                        s.get("label") or str(s["id"]),
                        int(s.get("display_order") or 0),
                        None if s.get("probability") is None else float(s["probability"]),
                        int(bool(s.get("is_closed"))),
                        int(bool(s.get("archived"))),
                    )
                    for s in p.get("stages") or []
                ],
            )


# --------------------------------------------------------------------------- reads


def _frame(db: sqlite_utils.Database, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    cursor = db.execute(sql, list(params))
    columns = [c[0] for c in cursor.description]
    return pd.DataFrame.from_records(cursor.fetchall(), columns=columns)


def _typed(frame: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    for name, prop_type in types.items():
        if name not in frame.columns:
            continue
        if prop_type == "number":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Float64")
        elif prop_type == "bool":
            frame[name] = frame[name].map({1: True, 0: False}).astype("boolean")
        elif prop_type == "datetime":
            frame[name] = pd.to_datetime(frame[name], utc=True, errors="coerce", format="ISO8601")
        elif prop_type == "date":
            frame[name] = pd.to_datetime(frame[name], errors="coerce", format="ISO8601").dt.date
    for name in ("created_at", "updated_at", "synced_at"):
        if name in frame.columns:
            frame[name] = pd.to_datetime(frame[name], utc=True, errors="coerce", format="ISO8601")
    if "archived" in frame.columns:
        frame["archived"] = frame["archived"].astype(bool)
    return frame


_BROAD_MATCH = 2_000
_EMAIL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SEARCH_COLUMNS = {
    "companies": ("name", "domain", "phone", "city"),
    "deals": ("dealname",),
}


def search_expression(text: str) -> str | None:
    """An FTS5 query for the contacts index: every word of ``text`` as a prefix, ANDed."""
    tokens = re.findall(r"\w+", text.lower())
    if not tokens:
        return None
    return " ".join(f'"{token}"*' for token in tokens[:12])


def query_records(
    db: sqlite_utils.Database,
    object_type: str,
    *,
    search: str | None = None,
    filters: Mapping[str, Any] | None = None,
    sort: str | None = None,
    descending: bool = False,
    offset: int = 0,
    limit: int = 100,
    columns: Sequence[str] | None = None,
    include_archived: bool = False,
) -> tuple[pd.DataFrame, int]:
    """One page of cached records, filtered, searched and sorted in SQL.

    Args:
        search: contacts: words matched as prefixes of first/last name, email, company
            and phone (digits also match without punctuation); companies: name,
            domain, phone, city; deals: deal name (substring).
        filters: column -> value (``=``), list/tuple/set (``IN``), None (``IS NULL``) or
            ``{"min": a, "max": b}`` (a range, either end optional). Special keys:
            ``associated_company`` (contacts/deals linked to that company id),
            ``associated_contact`` (deals linked to that contact id).
        sort: a column name; default most recently updated first.

    Returns:
        The page as a DataFrame indexed by id (numbers Float64, booleans boolean,
        datetimes UTC Timestamps, dates ``datetime.date``) and the total matching count.

    Raises ValueError for an unknown object type, column or filter.
    """
    _check_type(object_type)
    types = property_types(db, object_type)
    known = set(table_columns(db, object_type))
    where: list[str] = []
    params: list[Any] = []
    if not include_archived:
        where.append("archived = 0")
    fts: str | None = None
    matches = 0
    if search and search.strip():
        if object_type == "contacts" and _EMAIL_ADDRESS.match(search.strip()):
            # A whole address: the lower(email) index answers at once, where the words
            # of an address ("example", "com") would match much of the portal.
            where.append("lower(email) = ?")
            params.append(search.strip().lower())
        elif object_type == "contacts":
            fts = search_expression(search)
            if fts is None:
                where.append("0")
            else:
                matches = int(
                    db.execute(
                        "SELECT count(*) FROM contacts_fts WHERE contacts_fts MATCH ?", (fts,)
                    ).fetchone()[0]
                )
        else:
            _search_clause(object_type, search.strip(), where, params)
    for key, value in (filters or {}).items():
        _filter_clause(object_type, key, value, known, where, params)

    if sort is not None and sort not in known:
        raise ValueError(f"cannot sort {object_type} by unknown column {sort!r}")
    # HubSpot's updatedAt is the record's last-modified property, so sorting by the
    # indexed bookkeeping column gives the same order without scanning the whole table
    # (at 1,000,000 contacts: a page in ~40 ms instead of ~200 ms, a search in ~15 ms).
    order_col = "updated_at" if sort is None or sort in _LAST_MODIFIED else sort
    direction = "DESC" if (descending if sort else True) else "ASC"
    # Empty values last either way (DESC puts NULLs last by itself); the index still serves it.
    nulls = " NULLS LAST" if direction == "ASC" else ""
    order_sql = f" ORDER BY {_q(order_col)} {direction}{nulls}, id {direction}"
    wanted = list(dict.fromkeys(["id", *(columns or [c for c in table_columns(db, object_type)])]))
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise ValueError(f"unknown {object_type} columns: {unknown}")
    select = ", ".join(_q(c) for c in wanted)

    page_where, count_where = list(where), list(where)
    page_params, count_params = list(params), list(params)
    if fts is not None:
        # Many matches: walk the sort index and test membership ("+rowid" keeps SQLite
        # from looking every match up by rowid and sorting them all). Few matches: look
        # them up by rowid. At 1,000,000 contacts a one-letter search stays near 40 ms.
        member = "+rowid" if matches > _BROAD_MATCH else "rowid"
        page_where.append(f"{member} IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ?)")
        count_where.append("rowid IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ?)")
        page_params.append(fts)
        count_params.append(fts)
    page_sql = (" WHERE " + " AND ".join(page_where)) if page_where else ""
    sql = f"SELECT {select} FROM {_q(object_type)}{page_sql}{order_sql} LIMIT ? OFFSET ?"
    frame = _frame(db, sql, [*page_params, max(0, int(limit)), max(0, int(offset))])
    if fts is not None and not filters:
        # The index already counted the matches; only archived ones need subtracting.
        total = matches
        if not include_archived:
            total -= int(
                db.execute(
                    "SELECT count(*) FROM contacts WHERE archived = 1 AND "
                    "+rowid IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ?)",
                    (fts,),
                ).fetchone()[0]
            )
    else:
        count_sql = (" WHERE " + " AND ".join(count_where)) if count_where else ""
        total = int(
            db.execute(f"SELECT count(*) FROM {_q(object_type)}{count_sql}", count_params).fetchone()[0]
        )
    frame = _typed(frame, types).set_index("id")
    frame.index = frame.index.astype(str)
    return frame, total


def _search_clause(object_type: str, text: str, where: list[str], params: list[Any]) -> None:
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    cols = _SEARCH_COLUMNS[object_type]
    where.append("(" + " OR ".join(f"{_q(c)} LIKE ? ESCAPE '\\'" for c in cols) + ")")
    params.extend([pattern] * len(cols))


def _filter_clause(
    object_type: str, key: str, value: Any, known: set[str], where: list[str], params: list[Any]
) -> None:
    if key in ("associated_company", "associated_contact"):
        to_type = "companies" if key == "associated_company" else "contacts"
        where.append(
            "id IN (SELECT from_id FROM associations WHERE from_type = ? AND to_type = ? AND to_id = ?)"
        )
        params.extend([object_type, to_type, str(value)])
        return
    if key not in known:
        raise ValueError(f"cannot filter {object_type} by unknown column {key!r}")
    column = _q(key)
    if value is None:
        where.append(f"{column} IS NULL")
    elif isinstance(value, Mapping):
        if value.get("min") is not None:
            where.append(f"{column} >= ?")
            params.append(value["min"])
        if value.get("max") is not None:
            where.append(f"{column} <= ?")
            params.append(value["max"])
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if not items:
            where.append("0")
            return
        where.append(f"{column} IN ({','.join('?' * len(items))})")
        params.extend(items)
    else:
        where.append(f"{column} = ?")
        params.append(value)


def get_record(db: sqlite_utils.Database, object_type: str, record_id: str) -> dict[str, Any] | None:
    """One cached record as stored (column values), or None if it is not cached."""
    cursor = db.execute(f"SELECT * FROM {_q(_check_type(object_type))} WHERE id = ?", (str(record_id),))
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([c[0] for c in cursor.description], row, strict=True))


def get_values(
    db_or_conn: Any, object_type: str, ids: Sequence[str], properties: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Column values of some properties of some records, by id."""
    conn = db_or_conn.conn if isinstance(db_or_conn, sqlite_utils.Database) else db_or_conn
    cols = ", ".join(_q(p) for p in ["id", *properties])
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        for row in conn.execute(
            f"SELECT {cols} FROM {_q(_check_type(object_type))} WHERE id IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall():
            found[row[0]] = dict(zip(properties, row[1:], strict=True))
    return found


def associated_records(
    db: sqlite_utils.Database, object_type: str, record_id: str, to_type: str
) -> pd.DataFrame:
    """Cached ``to_type`` records associated with one record (either direction stored)."""
    _check_type(object_type)
    _check_type(to_type)
    sql = f"""SELECT t.* FROM {_q(to_type)} t WHERE t.archived = 0 AND t.id IN (
                SELECT to_id FROM associations WHERE from_type = ? AND from_id = ? AND to_type = ?
                UNION
                SELECT from_id FROM associations WHERE to_type = ? AND to_id = ? AND from_type = ?)
              ORDER BY t.id"""
    frame = _frame(db, sql, [object_type, str(record_id), to_type, object_type, str(record_id), to_type])
    frame = _typed(frame, property_types(db, to_type)).set_index("id")
    frame.index = frame.index.astype(str)
    return frame


def owners_frame(db: sqlite_utils.Database, *, include_archived: bool = False) -> pd.DataFrame:
    """Owners indexed by id, with a display ``name`` (full name, else email)."""
    frame = _frame(
        db,
        "SELECT id, email, first_name, last_name, user_id, type, archived FROM owners"
        + ("" if include_archived else " WHERE archived = 0")
        + " ORDER BY lower(coalesce(first_name, '')), lower(coalesce(last_name, '')), id",
    )
    names = (frame["first_name"].fillna("") + " " + frame["last_name"].fillna("")).str.strip()
    frame["name"] = names.where(names != "", frame["email"].fillna(frame["id"]))
    frame["archived"] = frame["archived"].astype(bool)
    return frame.set_index("id")


def pipelines(db: sqlite_utils.Database, object_type: str = "deals") -> list[dict[str, Any]]:
    """Pipelines in display order, each with its ``stages`` in display order."""
    result = []
    for pid, label, order, archived in db.execute(
        "SELECT id, label, display_order, archived FROM pipelines WHERE object_type = ? "
        "ORDER BY display_order, label",
        (object_type,),
    ).fetchall():
        stages = [
            {
                "id": sid,
                "label": slabel,
                "display_order": sorder,
                "probability": prob,
                "is_closed": bool(closed),
                "archived": bool(sarch),
            }
            for sid, slabel, sorder, prob, closed, sarch in db.execute(
                "SELECT id, label, display_order, probability, is_closed, archived FROM pipeline_stages "
                "WHERE object_type = ? AND pipeline_id = ? ORDER BY display_order, label",
                (object_type, pid),
            ).fetchall()
        ]
        result.append(
            {"id": pid, "label": label, "display_order": order, "archived": bool(archived), "stages": stages}
        )
    return result


def deal_stage_summary(db: sqlite_utils.Database, pipeline_id: str) -> pd.DataFrame:
    """Deals per stage of one pipeline, in the pipeline's stage order (empty stages included)."""
    return _frame(
        db,
        """SELECT s.id AS stage_id, s.label AS stage, s.display_order, count(d.id) AS count,
                  coalesce(sum(d.amount), 0.0) AS amount, s.probability
           FROM pipeline_stages s
           LEFT JOIN deals d ON d.pipeline = s.pipeline_id AND d.dealstage = s.id AND d.archived = 0
           WHERE s.object_type = 'deals' AND s.pipeline_id = ? AND s.archived = 0
           GROUP BY s.id ORDER BY s.display_order, s.label""",
        [pipeline_id],
    )


def _quarter_bounds(today: dt.date) -> tuple[str, str]:
    first_month = 3 * ((today.month - 1) // 3) + 1
    start = dt.date(today.year, first_month, 1)
    end = dt.date(today.year + (first_month == 10), (first_month + 2) % 12 + 1, 1)
    return start.isoformat(), end.isoformat()


def deal_figures(db: sqlite_utils.Database, *, today: dt.date) -> dict[str, float]:
    """Open pipeline value, won this quarter (by close date) and the probability-weighted forecast."""
    start, end = _quarter_bounds(today)
    row = db.execute(
        """SELECT
             coalesce(sum(CASE WHEN s.is_closed = 0 THEN d.amount END), 0.0),
             coalesce(sum(CASE WHEN s.is_closed = 1 AND s.probability >= 1.0
                               AND d.closedate >= ? AND d.closedate < ? THEN d.amount END), 0.0),
             coalesce(sum(CASE WHEN s.is_closed = 0 THEN d.amount * coalesce(s.probability, 0) END), 0.0)
           FROM deals d JOIN pipeline_stages s
             ON s.object_type = 'deals' AND s.pipeline_id = d.pipeline AND s.id = d.dealstage
           WHERE d.archived = 0""",
        (start, end),
    ).fetchone()
    return {
        "open_value": float(row[0]),
        "won_this_quarter": float(row[1]),
        "weighted_forecast": float(row[2]),
    }


def company_counts(db: sqlite_utils.Database, company_ids: Sequence[str]) -> pd.DataFrame:
    """Associated (non-archived) contacts and deals per company, indexed by company id."""
    ids = [str(i) for i in company_ids]
    frame = pd.DataFrame({"contacts": 0, "deals": 0}, index=pd.Index(ids, name="id"))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for from_type in ("contacts", "deals"):
            for company_id, n in db.execute(
                f"""SELECT a.to_id, count(DISTINCT a.from_id) FROM associations a
                    JOIN {from_type} r ON r.id = a.from_id AND r.archived = 0
                    WHERE a.to_type = 'companies' AND a.from_type = ? AND a.to_id IN ({marks})
                    GROUP BY a.to_id""",
                (from_type, *chunk),
            ).fetchall():
                frame.loc[company_id, from_type] = int(n)
    return frame.astype(int)


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    """Cached, non-archived records per object type, plus owners."""
    result = {
        t: int(db.execute(f"SELECT count(*) FROM {t} WHERE archived = 0").fetchone()[0]) for t in OBJECT_TYPES
    }
    result["owners"] = int(db.execute("SELECT count(*) FROM owners WHERE archived = 0").fetchone()[0])
    return result


def rebuild_search_index(db: sqlite_utils.Database) -> None:
    """Rebuild the contacts search index from the contacts table (after a VACUUM, say)."""
    from crm.store.schema import contacts_fts_rebuild_sql

    with write(db) as conn:
        for statement in contacts_fts_rebuild_sql():
            conn.execute(statement)
