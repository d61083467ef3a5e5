"""Writes of CRM data to the cache: records, associations, owners, pipelines, property definitions.

Tables owned here: ``contacts``, ``companies``, ``deals`` (one column per synced
property; ``crm.store.schema`` describes them), ``associations``, ``owners``,
``pipelines``, ``pipeline_stages`` and ``property_defs``. Values arrive as wire strings
and are stored typed (``crm.store.values``); the reads behind the pages are in
``crm.store.queries``.

Every write of records bumps ``cache_version`` in the same transaction, so a page can
notice a webhook or sync change by polling one integer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from crm.store.owner import TableOwner
from crm.store.schema import BASE_COLUMNS, BOOKKEEPING, OBJECT_TYPES
from crm.store.values import column_affinity, is_valid_property_name, now_iso, to_column

# Ids of records created locally and not yet pushed; never swept as "archived".
LOCAL_ID_PREFIX = "local-"
# What belongs to one portal besides the record tables (see ``Meta.claim_for_portal``).
_PORTAL_TABLES = (*OBJECT_TYPES, "associations", "owners", "pipelines", "pipeline_stages", "property_defs")
# Statements bind at most this many ids at once (SQLite's old default limit was 999).
ID_CHUNK = 500


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


def check_type(object_type: str) -> str:
    """``object_type`` if it names a record table; raises ValueError otherwise."""
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"unknown object type: {object_type!r}")
    return object_type


def quote(name: str) -> str:
    """An identifier in double quotes (both databases read it so)."""
    return '"' + name.replace('"', '""') + '"'


def marks(count: int) -> str:
    """``?, ?, ...`` for ``count`` parameters."""
    return ", ".join("?" * count)


def is_synced(object_type: str, definition: Mapping[str, Any]) -> bool:
    """Whether the cache keeps a column for a property definition."""
    name = str(definition.get("name"))
    if definition.get("archived") or not is_valid_property_name(name):
        return False
    # What the app shows (BASE_COLUMNS) plus every custom property of the portal.
    return not definition.get("hubspot_defined") or name in BASE_COLUMNS[object_type]


class Records(TableOwner):
    """Writes of records and of the portal's metadata."""

    # ------------------------------------------------------------- property defs

    def ensure_columns(self, object_type: str, wanted: Mapping[str, str]) -> list[str]:
        """Add a column for each property in ``wanted`` (name -> HubSpot type) that lacks one.

        Returns the names added.
        """
        with self.db.atomic():
            existing = set(self.conn.table_columns(check_type(object_type)))
            added = []
            for name, prop_type in wanted.items():
                if name in existing or not is_valid_property_name(name):
                    continue
                self.conn.add_column(object_type, name, column_affinity(prop_type))
                added.append(name)
        return added

    def save_property_defs(self, object_type: str, defs: Sequence[Mapping[str, Any]]) -> None:
        """Store a type's property definitions (as ``HubSpotClient.list_properties`` gives them).

        Definitions no longer listed are flagged archived; columns for the properties we
        sync are added (see ``is_synced``).
        """
        check_type(object_type)
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
        with self.db.atomic():
            self.conn.executemany(
                """INSERT INTO property_defs (object_type, name, label, type, field_type, group_name,
                     options, read_only, calculated, hubspot_defined, has_unique_value, archived)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (object_type, name) DO UPDATE SET label = excluded.label,
                     type = excluded.type, field_type = excluded.field_type,
                     group_name = excluded.group_name, options = excluded.options,
                     read_only = excluded.read_only, calculated = excluded.calculated,
                     hubspot_defined = excluded.hubspot_defined,
                     has_unique_value = excluded.has_unique_value, archived = excluded.archived""",
                rows,
            )
            names = [r[1] for r in rows]
            if names:
                self.conn.execute(
                    f"UPDATE property_defs SET archived = 1 WHERE object_type = ? "
                    f"AND name NOT IN ({marks(len(names))})",
                    (object_type, *names),
                )
            wanted = {
                d["name"]: d.get("type") or "string"
                for d in defs
                if d.get("name") and is_synced(object_type, d)
            }
            self.ensure_columns(object_type, wanted)

    # ------------------------------------------------------------------ upserts

    def upsert_records(
        self, object_type: str, records: Iterable[RecordLike], *, synced_at: str | None = None
    ) -> UpsertResult:
        """Write records from HubSpot into the cache, in one transaction.

        Only properties present in a record's ``properties`` are written (absent means "not
        requested"; None means "empty in HubSpot"), and only those that have a column. A
        field with an edit waiting in the outbox keeps its local value; if HubSpot's value
        moved away from the edit's base, the edit becomes a conflict. To commit something
        else with the records (a pull's resume position), call this inside ``db.atomic()``.
        """
        check_type(object_type)
        result = UpsertResult()
        batch = {r.id: r for r in records}  # the last copy of a record wins
        if not batch:
            return result
        synced_at = synced_at or now_iso()
        with self.db.atomic():
            types = self.db.queries.property_types(object_type)
            protected = self.db.outbox.active_edits(object_type, list(batch))
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
                    if self.db.outbox.reconcile(edit, record.properties.get(prop), types[prop]):
                        result.conflicts += 1
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
                self._upsert_rows(object_type, [*BOOKKEEPING, *columns], rows)
                result.written += len(rows)
            self.db.meta.bump_cache_version()
        return result

    def _upsert_rows(self, object_type: str, names: list[str], rows: list[list[Any]]) -> None:
        table = quote(object_type)
        # A page read before a webhook fetch (or by a slow walker) must not put older data
        # back. HubSpot's updatedAt is ISO-8601 UTC in one format, so text order is time
        # order. The record was still seen, so synced_at moves either way (a full pull
        # flags what it did not see as deleted).
        fresh = (
            f"(excluded.updated_at IS NULL OR {table}.updated_at IS NULL "
            f"OR excluded.updated_at >= {table}.updated_at)"
        )
        updates = ", ".join(
            f"{quote(n)} = excluded.{quote(n)}"
            if n == "synced_at"
            else f"{quote(n)} = CASE WHEN {fresh} THEN excluded.{quote(n)} ELSE {table}.{quote(n)} END"
            for n in names[1:]
        )
        self.conn.executemany(
            f"INSERT INTO {table} ({', '.join(quote(n) for n in names)}) VALUES ({marks(len(names))}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}",
            rows,
        )

    def mark_archived(self, object_type: str, ids: Iterable[str], *, synced_before: str | None = None) -> int:
        """Flag cached records as archived (deleted in the CRM); returns how many changed.

        ``synced_before``: only records last written before then, never one created here and
        not pushed yet (a deletion sweep's guess, which a write since it began overrules).
        """
        check_type(object_type)
        id_list = list(dict.fromkeys(ids))
        changed = 0
        if not id_list:
            return 0
        stamp = now_iso()
        guard, guarded = "", []
        if synced_before is not None:
            guard = " AND id NOT LIKE ? AND (synced_at IS NULL OR synced_at < ?)"
            guarded = [LOCAL_ID_PREFIX + "%", synced_before]
        with self.db.atomic():
            for start in range(0, len(id_list), ID_CHUNK):
                chunk = id_list[start : start + ID_CHUNK]
                changed += self.conn.execute(
                    f"UPDATE {quote(object_type)} SET archived = 1, synced_at = ? "
                    f"WHERE archived = 0 AND id IN ({marks(len(chunk))}){guard}",
                    (stamp, *chunk, *guarded),
                ).rowcount
            if changed:
                self.db.meta.bump_cache_version()
        return changed

    def archive_unseen(self, object_type: str, *, seen_since: str) -> int:
        """After a complete full pull: flag records not seen since ``seen_since`` as archived.

        Locally created records that were never pushed are left alone.
        """
        check_type(object_type)
        with self.db.atomic():
            changed = int(
                self.conn.execute(
                    f"UPDATE {quote(object_type)} SET archived = 1 WHERE archived = 0 "
                    "AND id NOT LIKE ? AND (synced_at IS NULL OR synced_at < ?)",
                    (LOCAL_ID_PREFIX + "%", seen_since),
                ).rowcount
            )
            if changed:
                self.db.meta.bump_cache_version()
        return changed

    def set_local_values(self, object_type: str, record_id: str, values: Mapping[str, Any]) -> None:
        """Write column values of one record (an edit shown before HubSpot has it)."""
        if not values:
            return
        assignments = ", ".join(f"{quote(name)} = ?" for name in values)
        with self.db.atomic():
            self.conn.execute(
                f"UPDATE {quote(check_type(object_type))} SET {assignments} WHERE id = ?",
                (*values.values(), record_id),
            )
            self.db.meta.bump_cache_version()

    def lock(self, object_type: str, record_id: str) -> None:
        """Hold one record's row until the caller's transaction ends (edits of it queue up
        one after another across processes; SQLite's write lock already does this)."""
        self.conn.execute(f"UPDATE {quote(check_type(object_type))} SET id = id WHERE id = ?", (record_id,))

    def insert_local(
        self, object_type: str, record_id: str, values: Mapping[str, Any], *, stamp: str
    ) -> None:
        """Add a record created here (not yet in HubSpot) under its local id."""
        names = ["id", "archived", "created_at", "updated_at", *values]
        with self.db.atomic():
            self.conn.execute(
                f"INSERT INTO {quote(check_type(object_type))} ({', '.join(quote(n) for n in names)}) "
                f"VALUES ({marks(len(names))})",
                (record_id, 0, stamp, stamp, *values.values()),
            )
            self.db.meta.bump_cache_version()

    def delete_record(self, object_type: str, record_id: str) -> None:
        """Remove one cached record (a local one that was pushed, or whose creation was dropped)."""
        with self.db.atomic():
            self.conn.execute(f"DELETE FROM {quote(check_type(object_type))} WHERE id = ?", (record_id,))
            self.db.meta.bump_cache_version()

    def merge_away(self, object_type: str, losers: Iterable[str], winner: str) -> int:
        """Follow a HubSpot merge: the losers' rows go, their associations move to ``winner``.

        HubSpot gives a merged contact or company a new id and both old ids point to it
        (docs/JOURNAL_AND_LIMITS_API.md §2), so every cached trace of a loser is re-pointed:
        associations from and to it become the winner's (duplicates dropped), then its row is
        deleted. Queued edits are the outbox's to re-point (``db.outbox.repoint_edits``).
        Returns how many loser rows were removed.
        """
        table = quote(check_type(object_type))
        gone = [i for i in dict.fromkeys(losers) if i != winner]
        if not gone:
            return 0
        removed = 0
        with self.db.atomic():
            for start in range(0, len(gone), ID_CHUNK):
                chunk = gone[start : start + ID_CHUNK]
                where = f"IN ({marks(len(chunk))})"
                for end in ("from", "to"):
                    self.conn.execute(
                        f"INSERT INTO associations (from_type, from_id, to_type, to_id, type_id) "
                        f"SELECT from_type, {'?' if end == 'from' else 'from_id'}, to_type, "
                        f"{'?' if end == 'to' else 'to_id'}, type_id FROM associations "
                        f"WHERE {end}_type = ? AND {end}_id {where} ON CONFLICT DO NOTHING",
                        (winner, object_type, *chunk),
                    )
                    self.conn.execute(
                        f"DELETE FROM associations WHERE {end}_type = ? AND {end}_id {where}",
                        (object_type, *chunk),
                    )
                removed += self.conn.execute(f"DELETE FROM {table} WHERE id {where}", chunk).rowcount
            self.db.meta.bump_cache_version()
        return removed

    def purge(self, object_type: str, ids: Iterable[str]) -> int:
        """Remove records and every association to or from them (a GDPR deletion).

        Unlike ``mark_archived`` nothing is kept: HubSpot deleted the person for good.
        Returns how many rows were removed.
        """
        table = quote(check_type(object_type))
        id_list = list(dict.fromkeys(ids))
        removed = 0
        if not id_list:
            return 0
        with self.db.atomic():
            for start in range(0, len(id_list), ID_CHUNK):
                chunk = id_list[start : start + ID_CHUNK]
                where = f"IN ({marks(len(chunk))})"
                for end in ("from", "to"):
                    self.conn.execute(
                        f"DELETE FROM associations WHERE {end}_type = ? AND {end}_id {where}",
                        (object_type, *chunk),
                    )
                removed += self.conn.execute(f"DELETE FROM {table} WHERE id {where}", chunk).rowcount
            self.db.meta.bump_cache_version()
        return removed

    def forget_portal(self) -> None:
        """Delete every record and the portal's metadata (the cache now serves another portal)."""
        with self.db.atomic():
            for table in _PORTAL_TABLES:
                self.conn.execute(f"DELETE FROM {quote(table)}")

    # ------------------------------------------------------- associations, owners

    def replace_associations(
        self,
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
        with self.db.atomic():
            for start in range(0, len(ids), ID_CHUNK):
                chunk = ids[start : start + ID_CHUNK]
                self.conn.execute(
                    f"DELETE FROM associations WHERE from_type = ? AND to_type = ? "
                    f"AND from_id IN ({marks(len(chunk))})",
                    (from_type, to_type, *chunk),
                )
            self.conn.executemany(
                "INSERT INTO associations (from_type, from_id, to_type, to_id, type_id) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
            self.db.meta.bump_cache_version()
        return len(rows)

    def save_owners(self, owners: Sequence[Mapping[str, Any]]) -> None:
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
        with self.db.atomic():
            self.conn.executemany(
                """INSERT INTO owners (id, email, first_name, last_name, user_id, type, teams, archived)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET email = excluded.email,
                     first_name = excluded.first_name, last_name = excluded.last_name,
                     user_id = excluded.user_id, type = excluded.type, teams = excluded.teams,
                     archived = excluded.archived""",
                rows,
            )
            ids = [r[0] for r in rows]
            if ids:
                self.conn.execute(f"UPDATE owners SET archived = 1 WHERE id NOT IN ({marks(len(ids))})", ids)
            else:
                self.conn.execute("UPDATE owners SET archived = 1")

    def save_pipelines(self, object_type: str, items: Sequence[Mapping[str, Any]]) -> None:
        """Store a type's pipelines and their stages (as ``list_pipelines`` gives them)."""
        with self.db.atomic():
            self.conn.execute("DELETE FROM pipeline_stages WHERE object_type = ?", (object_type,))
            self.conn.execute("DELETE FROM pipelines WHERE object_type = ?", (object_type,))
            for p in items:
                self.conn.execute(
                    "INSERT INTO pipelines (object_type, id, label, display_order, archived) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        object_type,
                        str(p["id"]),
                        p.get("label") or str(p["id"]),
                        int(p.get("display_order") or 0),
                        int(bool(p.get("archived"))),
                    ),
                )
                self.conn.executemany(
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
