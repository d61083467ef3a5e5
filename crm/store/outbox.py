"""Local edits waiting for the connection's CRM (the outbox), conflicts, and the audit log of pushes.

An edit is one outbox row per changed property (``op='update'``), or one row per new
record (``op='create'``, properties in ``payload``). Values are the CRM's wire strings. Each row
carries the base value it was made against, who made it and when; the cache shows the
edited value from the moment the edit is queued, in the same transaction.

Statuses::

    pending    waiting to be pushed (transient failures stay here, with ``error``)
    conflict   the CRM changed the field since the base; ``remote_value`` holds theirs.
               For a create: the CRM already has a contact with this email, so a person
               decides (link or discard); ``remote_value`` holds that record as JSON
    failed     the CRM refused the value (``error`` is its message); cache shows the CRM's
    pushed     the CRM has the value (also when it already had it)
    discarded  dropped by a person (or a conflict resolved as "keep theirs")
    linked     a create turned into edits of the contact the CRM already had
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from crm.store.interactions import ENGAGEMENT_TYPES, cache_properties, check_engagement
from crm.store.owner import TableOwner
from crm.store.records import ID_CHUNK, LOCAL_ID_PREFIX, RecordLike, check_type, marks, quote
from crm.store.values import now_iso, same_value, to_column, to_wire

# Outbox statuses whose local value a pull must not overwrite.
ACTIVE_EDIT_STATUSES = ("pending", "conflict")
# An active edit as ``active_edits`` hands it to a pull:
# (id, record_id, property, new_value, base_value, remote_value, status).
ActiveEdit = tuple[Any, ...]

_LABEL_SQL = {
    "contacts": "trim(coalesce(r.firstname, '') || ' ' || coalesce(r.lastname, '')) || "
    "CASE WHEN r.email IS NOT NULL THEN ' <' || r.email || '>' ELSE '' END",
    "companies": "coalesce(r.name, r.domain, o.record_id)",
    "deals": "coalesce(r.dealname, o.record_id)",
    "tickets": "coalesce(r.subject, o.record_id)",
}
_AUDIT_INSERT = (
    "INSERT INTO audit_log (at, object_type, record_id, property, old_value, new_value, by, "
    "outbox_id, result, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass
class Outcome:
    """What a push learnt about one outbox row."""

    outbox_id: int
    status: Literal["pushed", "already", "failed", "conflict", "retry"]
    message: str | None = None
    remote_value: str | None = None
    # The cache's new value for the field (wire string), when it should change.
    cache_value: str | None = None
    set_cache: bool = False
    # The value the push sent: if the edit changed meanwhile it stays pending, with
    # what HubSpot now holds as its new base.
    sent: str | None = None
    check_sent: bool = False


class NotInCache(LookupError):
    """An edit names a record the cache does not hold."""


@dataclass(frozen=True)
class _Snapshot:
    """HubSpot's record as ``hold_create`` stored it, in the shape ``upsert_records`` takes."""

    id: str
    properties: Mapping[str, str | None]
    created_at: str | None
    updated_at: str | None
    archived: bool = False


def existing_record(row: Mapping[str, Any]) -> tuple[str, dict[str, str | None]]:
    """HubSpot's id and values of the contact a held create matched (from ``remote_value``)."""
    snapshot = json.loads(row.get("remote_value") or "{}")
    return str(snapshot.get("id") or ""), dict(snapshot.get("properties") or {})


def is_local_id(record_id: str) -> bool:
    """Whether ``record_id`` names a record created here and not yet pushed."""
    return str(record_id).startswith(LOCAL_ID_PREFIX)


def same_as_base(row: Mapping[str, Any], remote: str | None, prop_type: str) -> bool:
    """Whether HubSpot's current value equals the edit's base."""
    return same_value(remote, row.get("base_value"), prop_type)


class Outbox(TableOwner):
    """The ``outbox`` and ``audit_log`` tables."""

    # ------------------------------------------------------------------ queueing

    def queue_updates(
        self,
        object_type: str,
        changes: Mapping[str, Mapping[str, str | None]],
        *,
        by: str | None,
    ) -> int:
        """Apply validated edits to the cache and queue them, all in one transaction.

        Args:
            changes: record id -> property -> new wire value (None clears the field).

        Returns the number of outbox rows created or changed (an edit back to the base
        value drops the pending edit instead). Raises NotInCache (nothing written) if a
        record is unknown.
        """
        stamp = now_iso()
        touched = 0
        with self.db.atomic():
            types = self.db.queries.property_types(object_type)
            for record_id, props in changes.items():
                if not props:
                    continue
                record_id = str(record_id)
                self.db.records.lock(object_type, record_id)
                current = self.db.queries.get_values(object_type, [record_id], list(props)).get(record_id)
                if current is None:
                    raise NotInCache(f"{object_type} {record_id} is not in the cache")
                if is_local_id(record_id):
                    touched += self._merge_into_create(object_type, record_id, props, stamp)
                    self.db.records.set_local_values(
                        object_type,
                        record_id,
                        {p: to_column(v, types.get(p, "string")) for p, v in props.items()},
                    )
                    continue
                columns: dict[str, Any] = {}
                for prop, new_value in props.items():
                    prop_type = types.get(prop, "string")
                    if self._queue_one(
                        object_type, record_id, prop, new_value, current[prop], prop_type, by, stamp
                    ):
                        touched += 1
                        columns[prop] = to_column(new_value, prop_type)
                self.db.records.set_local_values(object_type, record_id, columns)
        return touched

    def _queue_one(
        self,
        object_type: str,
        record_id: str,
        prop: str,
        new_value: str | None,
        cached: Any,
        prop_type: str,
        by: str | None,
        stamp: str,
    ) -> bool:
        active = self.conn.execute(
            "SELECT id, base_value, status FROM outbox WHERE object_type = ? AND record_id = ? "
            "AND property = ? AND op = 'update' AND status IN ('pending', 'conflict') "
            "ORDER BY id DESC LIMIT 1",
            (object_type, record_id, prop),
        ).fetchone()
        if active is not None:
            outbox_id, base_value, status = active
            if status == "pending" and same_value(new_value, base_value, prop_type):
                self.conn.execute(
                    "UPDATE outbox SET status = 'discarded', new_value = ?, error = NULL, "
                    "updated_at = ? WHERE id = ?",
                    (new_value, stamp, outbox_id),
                )
            else:
                self.conn.execute(
                    "UPDATE outbox SET new_value = ?, created_by = coalesce(?, created_by), "
                    "updated_at = ? WHERE id = ?",
                    (new_value, by, stamp, outbox_id),
                )
            return True
        base_value = to_wire(cached, prop_type)
        if same_value(new_value, base_value, prop_type):
            return False
        self.conn.execute(
            "INSERT INTO outbox (object_type, record_id, op, property, new_value, base_value, "
            "status, created_by, created_at, updated_at) "
            "VALUES (?, ?, 'update', ?, ?, ?, 'pending', ?, ?, ?)",
            (object_type, record_id, prop, new_value, base_value, by, stamp, stamp),
        )
        return True

    def _merge_into_create(
        self, object_type: str, local_id: str, props: Mapping[str, str | None], stamp: str
    ) -> int:
        row = self.conn.execute(
            # A create waiting for a link-or-discard decision still takes edits: they are
            # what the decision shows as mine.
            "SELECT id, payload FROM outbox WHERE object_type = ? AND record_id = ? AND op = 'create' "
            "AND status IN ('pending', 'conflict')",
            (object_type, local_id),
        ).fetchone()
        if row is None:
            raise NotInCache(
                f"{object_type} {local_id} was created here but is no longer waiting to be pushed"
            )
        payload = json.loads(row[1] or "{}")
        payload.update({k: v for k, v in props.items()})
        self.conn.execute(
            "UPDATE outbox SET payload = ?, updated_at = ? WHERE id = ?", (json.dumps(payload), stamp, row[0])
        )
        return 1

    def queue_create(self, object_type: str, properties: Mapping[str, str | None], *, by: str | None) -> str:
        """Add a new record to the cache under a local id and queue its creation; returns the id."""
        local_id = f"{LOCAL_ID_PREFIX}{uuid.uuid4().hex}"
        stamp = now_iso()
        payload = {k: v for k, v in properties.items() if v is not None and v != ""}
        with self.db.atomic():
            types = self.db.queries.property_types(check_type(object_type))
            columns = {k: to_column(v, types[k]) for k, v in payload.items() if k in types}
            self.db.records.insert_local(object_type, local_id, columns, stamp=stamp)
            self.conn.execute(
                "INSERT INTO outbox (object_type, record_id, op, payload, status, created_by, created_at, "
                "updated_at) VALUES (?, ?, 'create', ?, 'pending', ?, ?, ?)",
                (object_type, local_id, json.dumps(payload), by, stamp, stamp),
            )
        return local_id

    def queue_engagement(
        self,
        object_type: str,
        roles: Mapping[str, str],
        links: Sequence[tuple[str, str]],
        *,
        by: str | None,
    ) -> str:
        """Queue a note or task to create in the CRM, logged on ``links`` ``[(record type, id)]``.

        ``roles`` name its parts neutrally (``crm.store.interactions.LOGGED_ROLES``' keys); the
        row keeps them as ``{"roles", "links"}`` (``queued_roles`` reads older rows too). It
        shows at once on those records' timelines under a local id (marked pending) and is
        swapped for the CRM's engagement when pushed (``complete_engagement``). Returns the
        local id.
        """
        check_engagement(object_type)
        local_id = f"{LOCAL_ID_PREFIX}{uuid.uuid4().hex}"
        stamp = now_iso()
        payload = {"roles": dict(roles), "links": [list(link) for link in links]}
        shown = cache_properties(roles)
        with self.db.atomic():
            self.db.interactions.insert_local(object_type, local_id, shown, links, stamp=stamp)
            self.conn.execute(
                "INSERT INTO outbox (object_type, record_id, op, payload, status, created_by, created_at, "
                "updated_at) VALUES (?, ?, 'create', ?, 'pending', ?, ?, ?)",
                (object_type, local_id, json.dumps(payload, ensure_ascii=False), by, stamp, stamp),
            )
        return local_id

    def complete_engagement(
        self, outbox_id: int, record: RecordLike, *, by: str | None, existed: bool
    ) -> None:
        """A queued note or task is in HubSpot as ``record``: the local one becomes it, links kept."""

        def swap(object_type: str, local_id: str, payload: str, stamp: str) -> None:
            links = [(str(t), str(i)) for t, i in json.loads(payload or "{}").get("links") or []]
            self.db.interactions.delete_local(object_type, local_id)
            self.db.interactions.upsert_records(object_type, [record], synced_at=stamp)
            self.db.interactions.set_links(object_type, record.id, links)

        detail = "found in HubSpot from an earlier attempt" if existed else None
        self._settle_create(outbox_id, "pushed", by=by, detail=detail, record_id=record.id, swap=swap)

    def _settle_create(
        self,
        outbox_id: int,
        status: Literal["pushed", "failed"],
        *,
        by: str | None,
        detail: str | None,
        record_id: str | None = None,
        swap: Callable[[str, str, str, str], None] | None = None,
    ) -> None:
        """A pending create is settled, with its audit line ("created" or "failed"), in one transaction.

        Pushed: the CRM has it as ``record_id``, and ``swap(object_type, local_id, payload,
        stamp)`` puts the CRM's record in place of the local one (records and engagements
        live in different tables). Failed: ``detail`` is the CRM's refusal, kept as the
        row's error. A row no longer pending (settled meanwhile) is left alone.
        """
        stamp = now_iso()
        with self.db.atomic():
            pending = self._pending_create(outbox_id)
            if pending is None:
                return
            object_type, local_id, payload = pending
            if swap is not None:
                swap(object_type, local_id, payload, stamp)
            settled_id = record_id or local_id
            self.conn.execute(
                "UPDATE outbox SET status = ?, record_id = ?, error = ?, attempts = attempts + 1, "
                "updated_at = ? WHERE id = ?",
                (status, settled_id, detail if status == "failed" else None, stamp, outbox_id),
            )
            self._audit(
                at=stamp,
                object_type=object_type,
                record_id=settled_id,
                new=payload,
                by=by,
                outbox_id=outbox_id,
                result="created" if status == "pushed" else "failed",
                detail=detail,
            )

    # ------------------------------------------------------------- pull side

    def active_edits(self, object_type: str, ids: Sequence[str]) -> dict[tuple[str, str], ActiveEdit]:
        """Pending and conflicting field edits of some records, by (record id, property)."""
        found: dict[tuple[str, str], ActiveEdit] = {}
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            for edit in self.conn.execute(
                f"""SELECT id, record_id, property, new_value, base_value, remote_value, status
                    FROM outbox WHERE object_type = ? AND op = 'update'
                    AND status IN ({marks(len(ACTIVE_EDIT_STATUSES))})
                    AND record_id IN ({marks(len(chunk))})""",
                (object_type, *ACTIVE_EDIT_STATUSES, *chunk),
            ).fetchall():
                found[(edit[1], edit[2])] = tuple(edit)
        return found

    def reconcile(self, edit: ActiveEdit, remote: str | None, prop_type: str) -> bool:
        """A pull read HubSpot's value of a field with an active edit; True if it became a conflict.

        A pending edit whose base HubSpot moved away from (to something other than the
        edit's own value) is a conflict; an open conflict follows HubSpot's latest value.
        """
        outbox_id, _record_id, _prop, new_value, base_value, remote_value, status = edit
        if status == "pending":
            if same_value(remote, base_value, prop_type) or same_value(remote, new_value, prop_type):
                return False
            self.conn.execute(
                "UPDATE outbox SET status = 'conflict', remote_value = ?, updated_at = ? WHERE id = ?",
                (remote, now_iso(), outbox_id),
            )
            return True
        if status == "conflict" and not same_value(remote, remote_value, prop_type):
            self.conn.execute(
                "UPDATE outbox SET remote_value = ?, updated_at = ? WHERE id = ?",
                (remote, now_iso(), outbox_id),
            )
        return False

    def forget_edits(self) -> None:
        """Drop every queued edit (the cache now serves another portal; the audit log stays)."""
        self.conn.execute("DELETE FROM outbox")

    # ------------------------------------------------------------- push side

    def pending_updates(self, object_type: str) -> list[dict[str, Any]]:
        """Pending field edits of HubSpot records, oldest first."""
        return self._rows(
            "SELECT * FROM outbox WHERE object_type = ? AND op = 'update' AND status = 'pending' "
            "AND record_id NOT LIKE ? ORDER BY id",
            (object_type, LOCAL_ID_PREFIX + "%"),
        )

    def pending_creates(self, object_type: str) -> list[dict[str, Any]]:
        """Pending record creations, oldest first, with ``payload`` parsed."""
        rows = self._rows(
            "SELECT * FROM outbox WHERE object_type = ? AND op = 'create' AND status = 'pending' ORDER BY id",
            (object_type,),
        )
        for row in rows:
            row["payload"] = json.loads(row["payload"] or "{}")
        return rows

    def record_outcomes(
        self,
        object_type: str,
        outcomes: Sequence[Outcome],
        *,
        by: str | None,
        record: RecordLike | None = None,
    ) -> int:
        """Store what a push learnt, with the cache and audit log changes, in one transaction.

        An outcome applies only while its row is still pending with the value the push
        sent; an edit changed meanwhile stays pending for the next push. ``record`` (what
        HubSpot returned for the record) refreshes its other fields too. Returns the rows changed.
        """
        stamp = now_iso()
        changed = 0
        with self.db.atomic():
            types = self.db.queries.property_types(object_type)
            for outcome in outcomes:
                if self._record_outcome(object_type, outcome, types, by, stamp):
                    changed += 1
            if record is not None:
                self.db.records.upsert_records(object_type, [record], synced_at=stamp)
        return changed

    def _record_outcome(
        self, object_type: str, outcome: Outcome, types: Mapping[str, str], by: str | None, stamp: str
    ) -> bool:
        row = self.conn.execute(
            "SELECT record_id, property, new_value, base_value, status FROM outbox WHERE id = ?",
            (outcome.outbox_id,),
        ).fetchone()
        if row is None or row[4] != "pending":
            return False
        record_id, prop, new_value, base_value, _status = row
        if outcome.check_sent and new_value != outcome.sent:
            self.conn.execute(
                "UPDATE outbox SET base_value = ?, updated_at = ? WHERE id = ?",
                (outcome.sent, stamp, outcome.outbox_id),
            )
            return False
        if outcome.status == "retry":
            self._retry_later(outcome.outbox_id, outcome.message, stamp)
            return True
        if outcome.status == "conflict":
            self.conn.execute(
                "UPDATE outbox SET status = 'conflict', remote_value = ?, attempts = attempts + 1, "
                "updated_at = ? WHERE id = ?",
                (outcome.remote_value, stamp, outcome.outbox_id),
            )
            return True
        status = "failed" if outcome.status == "failed" else "pushed"
        self.conn.execute(
            "UPDATE outbox SET status = ?, error = ?, remote_value = ?, attempts = attempts + 1, "
            "updated_at = ? WHERE id = ?",
            (status, outcome.message, outcome.remote_value, stamp, outcome.outbox_id),
        )
        if outcome.set_cache and prop:
            self.db.records.set_local_values(
                object_type, record_id, {prop: to_column(outcome.cache_value, types.get(prop, "string"))}
            )
        self._audit(
            at=stamp,
            object_type=object_type,
            record_id=record_id,
            prop=prop,
            old=base_value,
            new=new_value,
            by=by,
            outbox_id=outcome.outbox_id,
            result=outcome.status,
            detail=outcome.message,
        )
        return True

    def complete_create(self, outbox_id: int, record: RecordLike, *, by: str | None, existed: bool) -> None:
        """A queued creation reached HubSpot as ``record``: swap the local row for it."""

        def swap(object_type: str, local_id: str, payload: str, stamp: str) -> None:
            self._adopt(object_type, local_id, record, stamp)

        detail = "matched an existing record by email" if existed else None
        self._settle_create(outbox_id, "pushed", by=by, detail=detail, record_id=record.id, swap=swap)

    def _pending_create(self, outbox_id: int) -> tuple[str, str, str] | None:
        """(object type, record id, payload) of a create still pending, else None (settled meanwhile)."""
        row = self.conn.execute(
            "SELECT object_type, record_id, payload FROM outbox WHERE id = ? AND status = 'pending'",
            (outbox_id,),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2] or ""))

    def _adopt(self, object_type: str, local_id: str, record: RecordLike, stamp: str) -> None:
        """The CRM's ``record`` replaces a record created here: in the cache, and in every
        outbox row that named its local id (edits made after the create follow it)."""
        self.db.records.delete_record(object_type, local_id)
        self.db.records.upsert_records(object_type, [record], synced_at=stamp)
        self.conn.execute(
            "UPDATE outbox SET record_id = ? WHERE object_type = ? AND record_id = ?",
            (record.id, object_type, local_id),
        )

    def fail_create(self, outbox_id: int, message: str, *, by: str | None, retry: bool) -> None:
        """A queued creation was refused (``retry=False``) or could not be sent (``retry=True``)."""
        if retry:
            with self.db.atomic():
                self._retry_later(outbox_id, message, now_iso())
            return
        self._settle_create(outbox_id, "failed", by=by, detail=message)

    def hold_create(self, outbox_id: int, record: RecordLike) -> bool:
        """HubSpot already has a contact with this create's email: keep the create for a decision.

        The row becomes a ``conflict`` (nothing is sent) with HubSpot's record, as read,
        in ``remote_value``, so the Sync page can show its values next to mine. Returns
        whether the row was still pending (a row changed meanwhile is left alone).
        """
        snapshot = {
            "id": str(record.id),
            "properties": dict(record.properties),
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
        with self.db.atomic():
            cursor = self.conn.execute(
                "UPDATE outbox SET status = 'conflict', remote_value = ?, error = NULL, attempts = attempts + 1, "
                "updated_at = ? WHERE id = ? AND op = 'create' AND status = 'pending'",
                (json.dumps(snapshot), now_iso(), outbox_id),
            )
            return bool(cursor.rowcount)

    # ------------------------------------------------------------- resolution

    def resolve_conflict(
        self, outbox_id: int, keep: Literal["mine", "theirs"], *, by: str | None
    ) -> dict[str, Any]:
        """Settle a conflict: "mine" re-queues the edit against HubSpot's value as the new base;
        "theirs" drops the edit and puts HubSpot's value in the cache.

        Returns the outbox row as it was. Raises LookupError if it is not a conflict.
        """
        if keep not in ("mine", "theirs"):
            raise ValueError("keep must be 'mine' or 'theirs'")
        stamp = now_iso()
        with self.db.atomic():
            row = self._edit(outbox_id)
            if row["status"] != "conflict":
                raise LookupError(f"edit {outbox_id} is not a conflict (it is {row['status']})")
            if row["op"] == "create":
                raise LookupError(
                    f"edit {outbox_id} is a new record: link it to HubSpot's contact or discard it"
                )
            object_type, record_id, prop = row["object_type"], row["record_id"], row["property"]
            if keep == "mine":
                self.conn.execute(
                    "UPDATE outbox SET status = 'pending', base_value = remote_value, error = NULL, "
                    "updated_at = ? WHERE id = ?",
                    (stamp, outbox_id),
                )
            else:
                prop_type = self.db.queries.property_types(object_type).get(prop, "string")
                self._discard(outbox_id, stamp)
                self.db.records.set_local_values(
                    object_type, record_id, {prop: to_column(row["remote_value"], prop_type)}
                )
            self._audit(
                at=stamp,
                object_type=object_type,
                record_id=record_id,
                prop=prop,
                old=row["remote_value"],
                new=row["new_value"],
                by=by,
                outbox_id=outbox_id,
                result=f"conflict: kept {keep}",
            )
        return row

    def link_create(self, outbox_id: int, *, by: str | None) -> dict[str, int]:
        """Settle a held create as "link to the existing contact and apply my non-empty fields as edits".

        In one transaction the local row goes, the cache takes HubSpot's record (as read
        when the create was held), other outbox rows follow the new id, and each of my
        non-empty fields that differs from HubSpot's becomes an update edit.

        The base of each such edit is *empty*, not HubSpot's current value. The base is
        what an edit was made against, and mine was typed into a new, blank contact:
        nobody saw HubSpot's value when choosing it. With an empty base the usual
        three-way rules stay honest: a field empty in HubSpot (remote == base) is filled
        by the next push; a field HubSpot already holds with my value is dropped; a field
        where HubSpot has another value (remote != base, != mine) is a conflict a person
        decides. With HubSpot's current value as the base, the push would see
        remote == base and overwrite that value unseen, which is exactly what this
        decision exists to prevent. Fields that already differ in the stored record are
        made conflicts at once; the rest are rechecked against HubSpot's value at push time.

        A field of that contact with an edit already waiting (it was pulled and edited
        here meanwhile) keeps that edit; mine for it is dropped. Returns
        ``{"pending": n, "conflict": m}``. Raises LookupError if the row is not a held create.
        """
        stamp = now_iso()
        with self.db.atomic():
            row = self._edit(outbox_id)
            if row["op"] != "create" or row["status"] != "conflict":
                raise LookupError(f"edit {outbox_id} is not a new record waiting for a decision")
            object_type, local_id = row["object_type"], row["record_id"]
            record_id, theirs = existing_record(row)
            snapshot = json.loads(row["remote_value"])
            types = self.db.queries.property_types(object_type)
            self._adopt(
                object_type,
                local_id,
                _Snapshot(record_id, theirs, snapshot.get("created_at"), snapshot.get("updated_at")),
                stamp,
            )
            queued = {"pending": 0, "conflict": 0}
            mine: dict[str, Any] = {}
            for prop, value in json.loads(row["payload"] or "{}").items():
                prop_type = types.get(prop, "string")
                if prop not in types or value is None or value == "":
                    continue
                current = theirs.get(prop)
                if same_value(current, value, prop_type) or (
                    prop == "email" and str(current or "").strip().lower() == str(value).strip().lower()
                ):
                    continue
                waiting = self.conn.execute(
                    "SELECT 1 FROM outbox WHERE object_type = ? AND record_id = ? AND property = ? "
                    "AND op = 'update' AND status IN ('pending', 'conflict')",
                    (object_type, record_id, prop),
                ).fetchone()
                if waiting is not None:
                    continue
                status = "pending" if same_value(current, None, prop_type) else "conflict"
                self.conn.execute(
                    "INSERT INTO outbox (object_type, record_id, op, property, new_value, base_value, "
                    "remote_value, status, created_by, created_at, updated_at) "
                    "VALUES (?, ?, 'update', ?, ?, NULL, ?, ?, ?, ?, ?)",
                    (
                        object_type,
                        record_id,
                        prop,
                        value,
                        current if status == "conflict" else None,
                        status,
                        row["created_by"],
                        row["created_at"],
                        stamp,
                    ),
                )
                queued[status] += 1
                mine[prop] = to_column(value, prop_type)
            self.db.records.set_local_values(object_type, record_id, mine)
            self.conn.execute(
                "UPDATE outbox SET status = 'linked', record_id = ?, updated_at = ? WHERE id = ?",
                (record_id, stamp, outbox_id),
            )
            self._audit(
                at=stamp,
                object_type=object_type,
                record_id=record_id,
                new=row["payload"],
                by=by,
                outbox_id=outbox_id,
                result="linked",
                detail=f"HubSpot already had this email; linked to contact {record_id} instead of creating one: "
                f"{queued['pending']} field(s) queued, {queued['conflict']} conflict(s) to decide",
            )
        return queued

    def discard_edit(self, outbox_id: int, *, by: str | None) -> None:
        """Drop a pending, failed or conflicting edit; the cache goes back to HubSpot's value."""
        stamp = now_iso()
        with self.db.atomic():
            row = self._edit(outbox_id)
            if row["status"] not in ("pending", "conflict", "failed"):
                raise LookupError(f"edit {outbox_id} is already {row['status']}")
            self._discard(outbox_id, stamp)
            object_type, record_id, prop = row["object_type"], row["record_id"], row["property"]
            if row["op"] == "create" and object_type in ENGAGEMENT_TYPES:
                if is_local_id(record_id):
                    self.db.interactions.delete_local(object_type, record_id)
            elif row["op"] == "create":
                if row["status"] != "failed" or is_local_id(record_id):
                    self.db.records.delete_record(object_type, record_id)
            elif row["status"] != "failed":
                theirs = row["remote_value"] if row["status"] == "conflict" else row["base_value"]
                prop_type = self.db.queries.property_types(object_type).get(prop, "string")
                self.db.records.set_local_values(object_type, record_id, {prop: to_column(theirs, prop_type)})
            detail = None
            if row["op"] == "create" and row["status"] == "conflict":
                existing_id, _ = existing_record(row)
                detail = (
                    f"HubSpot already had this email (contact {existing_id}); the new contact made here "
                    "was discarded and HubSpot's was left unchanged"
                )
            self._audit(
                at=stamp,
                object_type=object_type,
                record_id=record_id,
                prop=prop,
                old=row["base_value"],
                new=row["new_value"] if row["op"] != "create" else row["payload"],
                by=by,
                outbox_id=outbox_id,
                result="discarded",
                detail=detail,
            )

    # ------------------------------------------------------------ merges, GDPR

    def repoint_edits(self, object_type: str, losers: Sequence[str], winner: str, *, note: str) -> int:
        """Move the queued edits of merged-away records to the record they were merged into.

        Pending and conflicting field edits of ``losers`` now name ``winner`` and the
        winner's cached row shows their values. Their base stays what the person edited
        against, so a push (or the next read of the winner) still notices when the merged
        record holds something else, and asks. When the winner already has an edit of the
        same field, the later edit stays and the earlier one is discarded. Every moved or
        dropped edit gets an audit line carrying ``note``. Returns how many edits moved.
        """
        gone = [i for i in dict.fromkeys(losers) if i != winner]
        if not gone:
            return 0
        stamp = now_iso()
        moved = 0
        with self.db.atomic():
            # As queuing does: an edit queued for the winner meanwhile waits for this to finish.
            self.db.records.lock(object_type, winner)
            rows = self._rows(
                f"SELECT * FROM outbox WHERE object_type = ? AND op = 'update' "
                f"AND status IN ({marks(len(ACTIVE_EDIT_STATUSES))}) "
                f"AND record_id IN ({marks(len(gone))}, ?) ORDER BY id DESC",
                (object_type, *ACTIVE_EDIT_STATUSES, *gone, winner),
            )
            kept: set[str] = set()
            types = self.db.queries.property_types(object_type)
            for row in rows:  # newest first: the first edit of a field is the one kept
                prop = str(row["property"])
                if prop in kept:
                    self._discard(int(row["id"]), stamp)
                    result, detail = "discarded", f"{note}; a later edit of the same field was kept"
                else:
                    kept.add(prop)
                    if row["record_id"] == winner:
                        continue
                    self.conn.execute(
                        "UPDATE outbox SET record_id = ?, updated_at = ? WHERE id = ?",
                        (winner, stamp, row["id"]),
                    )
                    self.db.records.set_local_values(
                        object_type, winner, {prop: to_column(row["new_value"], types.get(prop, "string"))}
                    )
                    moved += 1
                    result, detail = "re-pointed", f"{note}; the edit now applies to {winner}"
                self._audit(
                    at=stamp,
                    object_type=object_type,
                    record_id=str(row["record_id"]),
                    prop=prop,
                    old=row["base_value"],
                    new=row["new_value"],
                    by=None,
                    outbox_id=int(row["id"]),
                    result=result,
                    detail=detail,
                )
        return moved

    def forget_record(self, object_type: str, ids: Sequence[str], *, note: str) -> int:
        """Drop every edit of some records and the values their audit lines carry (GDPR deletion).

        The audit log keeps that an edit happened (when, by whom, which field, the outcome)
        but no longer what was written: old and new values become empty and ``note`` says
        why. Returns how many outbox rows were deleted.
        """
        id_list = list(dict.fromkeys(ids))
        if not id_list:
            return 0
        deleted = 0
        with self.db.atomic():
            for start in range(0, len(id_list), ID_CHUNK):
                chunk = id_list[start : start + ID_CHUNK]
                where = f"object_type = ? AND record_id IN ({marks(len(chunk))})"
                # Audit lines of these edits, also those written while the record had a local id.
                self.conn.execute(
                    f"UPDATE audit_log SET old_value = NULL, new_value = NULL, detail = ? WHERE ({where}) "
                    f"OR outbox_id IN (SELECT id FROM outbox WHERE {where})",
                    (note, object_type, *chunk, object_type, *chunk),
                )
                deleted += self.conn.execute(
                    f"DELETE FROM outbox WHERE {where}", (object_type, *chunk)
                ).rowcount
        return deleted

    def _audit(
        self,
        *,
        at: str,
        object_type: str,
        record_id: str | None,
        by: str | None,
        outbox_id: int,
        result: str,
        prop: str | None = None,
        old: str | None = None,
        new: str | None = None,
        detail: str | None = None,
    ) -> None:
        """One line of the audit log: what happened to an edit, by whom, with HubSpot's word."""
        self.conn.execute(
            _AUDIT_INSERT, (at, object_type, record_id, prop, old, new, by, outbox_id, result, detail)
        )

    def _retry_later(self, outbox_id: int, message: str | None, stamp: str) -> None:
        """An attempt that may succeed later: a pending row stays pending, counted, with why
        (a row settled meanwhile is left alone)."""
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, error = ?, updated_at = ? WHERE id = ? "
            "AND status = 'pending'",
            (message, stamp, outbox_id),
        )

    def _discard(self, outbox_id: int, stamp: str) -> None:
        self.conn.execute(
            "UPDATE outbox SET status = 'discarded', updated_at = ? WHERE id = ?", (stamp, outbox_id)
        )

    def _edit(self, outbox_id: int) -> dict[str, Any]:
        row = self.get_edit(outbox_id)
        if row is None:
            raise LookupError(f"no edit {outbox_id}")
        return row

    # ------------------------------------------------------------------ reads

    def get_edit(self, outbox_id: int) -> dict[str, Any] | None:
        """One outbox row by id (``payload`` as stored), or None: what became of a create
        another module is following (``crm.sync.links``)."""
        rows = self._rows("SELECT * FROM outbox WHERE id = ?", (int(outbox_id),))
        return rows[0] if rows else None

    def create_id(self, object_type: str, record_id: str) -> int | None:
        """The outbox id of the create of a record queued here (its local id), or None."""
        row = self.conn.execute(
            "SELECT id FROM outbox WHERE object_type = ? AND record_id = ? AND op = 'create' ORDER BY id DESC",
            (object_type, record_id),
        ).fetchone()
        return None if row is None else int(row[0])

    def edits_frame(
        self,
        *,
        statuses: Sequence[str] = ("pending", "conflict", "failed"),
        object_type: str | None = None,
        limit: int = 500,
    ) -> pd.DataFrame:
        """Outbox rows in the given statuses, newest first, with a readable ``record_label``.

        Columns: id, object_type, record_id, record_label, op, property, new_value (mine),
        base_value, remote_value (HubSpot's, for conflicts), status, error, attempts,
        created_by, created_at, updated_at, payload.
        """
        frames = []
        for table, label in _LABEL_SQL.items():
            if object_type and table != object_type:
                continue
            cursor = self.conn.execute(
                f"""SELECT o.id, o.object_type, o.record_id, {label} AS record_label, o.op, o.property,
                     o.new_value, o.base_value, o.remote_value, o.status, o.error, o.attempts, o.created_by,
                     o.created_at, o.updated_at, o.payload
                    FROM outbox o LEFT JOIN {quote(table)} r ON r.id = o.record_id
                    WHERE o.object_type = ? AND o.status IN ({marks(len(statuses))})
                    ORDER BY o.id DESC LIMIT ?""",
                (table, *statuses, int(limit)),
            )
            frames.append(
                pd.DataFrame.from_records(cursor.fetchall(), columns=[c[0] for c in cursor.description])
            )
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if not frame.empty:
            frame = frame.sort_values("id", ascending=False).head(int(limit)).reset_index(drop=True)
        return frame

    def conflicts_frame(self, object_type: str | None = None) -> pd.DataFrame:
        """Open conflicts: ``new_value`` is mine, ``remote_value`` HubSpot's, ``base_value`` the base."""
        return self.edits_frame(statuses=("conflict",), object_type=object_type)

    def outbox_counts(self) -> dict[str, int]:
        """Edits per status (pending, conflict, failed, pushed, discarded), zeros included."""
        result = {s: 0 for s in ("pending", "conflict", "failed", "pushed", "discarded")}
        for status, n in self.conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall():
            result[str(status)] = int(n)
        return result

    def audit_log(self, *, limit: int = 200, object_type: str | None = None) -> pd.DataFrame:
        """Pushed, refused, resolved and discarded edits, newest first."""
        where = " WHERE object_type = ?" if object_type else ""
        params: list[Any] = [object_type] if object_type else []
        cursor = self.conn.execute(
            f"SELECT * FROM audit_log{where} ORDER BY id DESC LIMIT ?", [*params, int(limit)]
        )
        return pd.DataFrame.from_records(cursor.fetchall(), columns=[c[0] for c in cursor.description])

    def rows(self, object_type: str | None = None) -> list[dict[str, Any]]:
        """Every outbox row (of one type), oldest first: what tests and a cache migration read."""
        if object_type is None:
            return self._rows("SELECT * FROM outbox ORDER BY id")
        return self._rows("SELECT * FROM outbox WHERE object_type = ? ORDER BY id", (object_type,))

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, list(params))
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
