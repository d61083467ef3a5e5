"""Pushing the outbox to HubSpot, with field-level three-way conflict detection.

For the pending edits of each object type, 100 records at a time::

    batch read HubSpot's current values of the edited fields
      remote == base   -> send (batch update of up to 100 records)
      remote == mine   -> done (someone, or an earlier interrupted push, already did it)
      otherwise        -> conflict: both values kept, nothing sent; a person decides

HubSpot has no conditional writes, so the read-to-write window is kept short (one
batch). A batch refused as a whole (400) is bisected until the bad inputs stand alone;
a lone refused input whose error names some of its properties is retried without them.
Refused edits are marked failed with HubSpot's message and the cache takes HubSpot's
value; transient failures (429 after retries, 5xx, timeouts) leave the edit pending
for the next push.

New contacts are first looked up by email (one batch read per 100 creates). A contact
HubSpot already has is never written over: if it already holds every value of mine
(typically my own create, made by a push interrupted before it recorded it) the local
row is swapped for it; otherwise the create is held as a decision for a person (link
and queue my fields as edits, or discard mine; see ``Outbox.link_create``). Only emails
HubSpot does not have are sent, through batch upsert keyed on email, so a push that was
interrupted after HubSpot acted (kill -9, a dropped connection) never creates a
duplicate when it runs again: the next push reads again and finds it. The one window
left is the read-to-upsert round trip of one batch: a contact created elsewhere with
the same email inside it is updated, as HubSpot has no conditional write; the audit log
then notes that the upsert matched an existing record. Every outcome is stored in one transaction with its cache and audit-log
changes; an edit is never marked done before HubSpot has it.

Notes and tasks logged here (``queue_note``, ``queue_task``) are created with their
association to the record they were logged on. HubSpot's create has no idempotency key
(docs/INTERACTIONS_API.md §1), so a retry never trusts itself: each note or task carries
its own ``hs_timestamp`` millisecond, and before sending, the push searches for an
engagement at that millisecond with the same text. Found: the earlier attempt reached
HubSpot, and the local row becomes it. An attempt whose outcome is unknown (timeout,
5xx, dropped connection) is looked for again only after SEARCH_SETTLE_S, because search
may not show a new object at once; until then it waits, pending.

One ``Pusher`` holds what a push works with (the store, the client, who pushes, the
results so far); ``push`` takes the lease, opens both, runs it and sums up.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from crm import store
from crm.config import Settings
from crm.errors import (
    CircuitOpen,
    CrmError,
    HubSpotError,
    NotConnected,
    NotFound,
    RateLimited,
    SyncBusy,
    Unreachable,
    ValidationFailed,
)
from crm.hubspot import HubSpotClient, Record
from crm.hubspot.models import ENGAGEMENT_ASSOCIATION_TYPES
from crm.logs import in_run
from crm.plaintext import body_text
from crm.store import OBJECT_TYPES, Store, syncstate
from crm.store.interactions import ENGAGEMENT_PROPERTIES
from crm.store.outbox import Outcome
from crm.store.values import parse_datetime, same_value

log = logging.getLogger("crm.sync")

BATCH = 100
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
GONE = "This record no longer exists in HubSpot (deleted or merged)."
EXISTS = "HubSpot already has a contact with this email: link to it or discard yours on the Sync page"
_SUMMARY_KEY = {
    "pushed": "pushed",
    "already": "pushed",
    "created": "pushed",
    "failed": "failed",
    "conflict": "conflicts",
    "retry": "retry",
}
# Engagements staff can log from a record page, and what identifies one besides its time.
LOGGED_TYPES = ("notes", "tasks")
_MATCHED = {"notes": ("hs_note_body",), "tasks": ("hs_task_subject", "hs_task_body")}
# Search may lag a create by seconds (HUBSPOT_API.md); an attempt with an unknown outcome
# is looked for again only after this long.
SEARCH_SETTLE_S = 60.0
# Outbox rows grouped by record id: the fields of one record that go out together.
RowsByRecord = dict[str, list[dict[str, Any]]]


@in_run("push")
def push(settings: Settings, *, by: str | None = None, client: HubSpotClient | None = None) -> dict[str, Any]:
    """Send every pending edit and new record to HubSpot.

    Returns:
        ``{"pushed", "failed", "conflicts", "retry", "results"}``; each result is
        ``{record_id, object_type, property, status, message}`` with status one of
        pushed, already, failed, conflict, retry, created.

    Raises:
        SyncBusy: another push is running.
        NotConnected: no usable token (nothing was marked).
    """
    with store.open(settings) as db:
        owner = syncstate.new_owner()
        if not db.syncstate.acquire_lease(syncstate.PUSH_LEASE, owner):
            raise SyncBusy("Another push is already sending edits to HubSpot.")
        stop_renewing = threading.Event()
        renewer = threading.Thread(target=_renew, args=(settings, owner, stop_renewing), daemon=True)
        renewer.start()
        own_client = client is None
        try:
            if client is None:
                from crm import oauth

                client = oauth.open_client(settings)
            pusher = Pusher(db, client, by=by)
            pusher.run()
        finally:
            stop_renewing.set()
            renewer.join(timeout=5)
            if own_client and client is not None:
                client.close()
            db.syncstate.release_lease(syncstate.PUSH_LEASE, owner)
    return pusher.summary()


def _renew(settings: Settings, owner: str, stop: threading.Event) -> None:
    with store.open(settings) as db:
        while not stop.wait(syncstate.LEASE_TTL_S / 3):
            db.syncstate.renew_lease(syncstate.PUSH_LEASE, owner)


class Pusher:
    """One push: the outbox of every object type to HubSpot, outcomes back into the store."""

    def __init__(self, db: Store, client: HubSpotClient, *, by: str | None) -> None:
        self.db = db
        self.client = client
        self.by = by
        self.results: list[dict[str, Any]] = []

    def run(self) -> None:
        """Creates first (an edit of a new record waits in its create), then field edits;
        then notes and tasks logged on records."""
        for object_type in OBJECT_TYPES:
            self.push_creates(object_type)
            self.push_updates(object_type)
        for object_type in LOGGED_TYPES:
            self.push_engagements(object_type)

    def summary(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "pushed": 0,
            "failed": 0,
            "conflicts": 0,
            "retry": 0,
            "results": self.results,
        }
        for result in self.results:
            found[_SUMMARY_KEY[result["status"]]] += 1
        return found

    def _note(self, row: dict[str, Any], status: str, message: str | None = None, **extra: Any) -> None:
        self.results.append({**_result(row, status, message), **extra})

    # ---------------------------------------------------------------------- updates

    def push_updates(self, object_type: str) -> None:
        """Pending field edits, 100 records at a time: read HubSpot's values, then decide or send."""
        by_record: RowsByRecord = {}
        for row in self.db.outbox.pending_updates(object_type):
            by_record.setdefault(row["record_id"], []).append(row)
        ids = list(by_record)
        for start in range(0, len(ids), BATCH):
            self._push_update_batch(object_type, {rid: by_record[rid] for rid in ids[start : start + BATCH]})

    def _push_update_batch(self, object_type: str, by_record: RowsByRecord) -> None:
        rows = [row for record_rows in by_record.values() for row in record_rows]
        props = sorted({row["property"] for row in rows})
        try:
            remote = {r.id: r for r in self.client.batch_read(object_type, list(by_record), properties=props)}
        except NotConnected:
            raise
        except CrmError as exc:
            self._retry_all(object_type, rows, exc)
            return
        types = self.db.queries.property_types(object_type)
        decided: list[Outcome] = []
        to_send: RowsByRecord = {}
        for rid, record_rows in by_record.items():
            record = remote.get(rid)
            for row in record_rows:
                if record is None:
                    decided.append(Outcome(row["id"], "failed", GONE))
                    self._note(row, "failed", GONE)
                    continue
                prop_type = types.get(row["property"], "string")
                theirs = record.properties.get(row["property"])
                if same_value(theirs, row["new_value"], prop_type):
                    decided.append(Outcome(row["id"], "already", remote_value=theirs))
                    self._note(row, "already")
                elif same_value(theirs, row["base_value"], prop_type):
                    to_send.setdefault(rid, []).append(row)
                else:
                    decided.append(Outcome(row["id"], "conflict", remote_value=theirs))
                    self._note(row, "conflict", "HubSpot's value changed since this edit was made")
        if decided:
            self.db.outbox.record_outcomes(object_type, decided, by=self.by)
        if to_send:
            self._send_updates(object_type, to_send, remote)

    def _send_updates(self, object_type: str, to_send: RowsByRecord, remote: dict[str, Record]) -> None:
        inputs = [
            {"id": rid, "properties": {row["property"]: row["new_value"] for row in rows}}
            for rid, rows in to_send.items()
        ]
        try:
            answer = self.client.batch_update(object_type, inputs)
        except NotConnected:
            raise
        except ValidationFailed as exc:
            if len(inputs) > 1:
                # Refused as a whole: halve until the bad inputs stand alone.
                ids = list(to_send)
                middle = len(ids) // 2
                for part in (ids[:middle], ids[middle:]):
                    self._send_updates(object_type, {rid: to_send[rid] for rid in part}, remote)
                return
            self._refused_alone(object_type, to_send, remote, exc)
            return
        except CrmError as exc:
            if _is_transient(exc):
                self._retry_all(object_type, [r for rows in to_send.values() for r in rows], exc)
                return
            self._fail_rows(object_type, to_send, remote, str(exc), None)
            return
        done = {r.id: r for r in answer.records}
        for rid, record in done.items():
            rows = to_send.get(rid)
            if not rows:
                continue
            outcomes = [
                Outcome(
                    row["id"],
                    "pushed",
                    remote_value=record.properties.get(row["property"], row["new_value"]),
                    cache_value=record.properties.get(row["property"], row["new_value"]),
                    set_cache=row["property"] in record.properties,
                    sent=row["new_value"],
                    check_sent=True,
                )
                for row in rows
            ]
            self.db.outbox.record_outcomes(object_type, outcomes, by=self.by, record=record)
            for row in rows:
                self._note(row, "pushed")
        missing = {rid: rows for rid, rows in to_send.items() if rid not in done}
        if missing:
            self._settle_missing(object_type, missing, remote, answer.errors)

    def _settle_missing(
        self,
        object_type: str,
        missing: RowsByRecord,
        remote: dict[str, Record],
        errors: Sequence[HubSpotError],
    ) -> None:
        """Records a batch update did not return: HubSpot's per-input errors say why."""
        for error in errors:
            for rid in _error_ids(error) & set(missing):
                rows = missing.pop(rid)
                if isinstance(error, NotFound):
                    self._fail_rows(object_type, {rid: rows}, remote, GONE, None)
                else:
                    self._refused_alone(object_type, {rid: rows}, remote, error)
        if not missing:
            return
        if errors:
            self._fail_rows(object_type, missing, remote, str(errors[0]), errors[0].field_errors)
            return
        message = "HubSpot did not confirm this update; it will be checked on the next push"
        self._retry_all(object_type, [r for rows in missing.values() for r in rows], CrmError(message))

    def _refused_alone(
        self, object_type: str, to_send: RowsByRecord, remote: dict[str, Record], exc: HubSpotError
    ) -> None:
        """One record's update was refused: fail the fields HubSpot named, resend the rest."""
        ((rid, rows),) = to_send.items()
        named = {row["property"] for row in rows} & set(exc.field_errors)
        if named and len(named) < len(rows):
            bad = {rid: [row for row in rows if row["property"] in named]}
            self._fail_rows(object_type, bad, remote, str(exc), exc.field_errors)
            self._send_updates(
                object_type, {rid: [row for row in rows if row["property"] not in named]}, remote
            )
            return
        self._fail_rows(object_type, to_send, remote, str(exc), exc.field_errors)

    def _retry_all(self, object_type: str, rows: Sequence[dict[str, Any]], exc: CrmError) -> None:
        message = f"Not sent yet, will retry: {exc}"
        self.db.outbox.record_outcomes(
            object_type, [Outcome(r["id"], "retry", message) for r in rows], by=self.by
        )
        for row in rows:
            self._note(row, "retry", message)

    def _fail_rows(
        self,
        object_type: str,
        rows_by_record: RowsByRecord,
        remote: dict[str, Record],
        message: str,
        field_errors: dict[str, str] | None,
    ) -> None:
        outcomes = []
        for rid, rows in rows_by_record.items():
            record = remote.get(rid)
            for row in rows:
                detail = (field_errors or {}).get(row["property"])
                text = f"HubSpot refused {row['property']}: {detail}" if detail else message
                theirs = record.properties.get(row["property"]) if record is not None else None
                # A refused edit will never be sent: the cache goes back to HubSpot's value.
                outcomes.append(
                    Outcome(
                        row["id"],
                        "failed",
                        text,
                        remote_value=theirs,
                        cache_value=theirs,
                        set_cache=record is not None,
                    )
                )
                self._note(row, "failed", text)
        self.db.outbox.record_outcomes(object_type, outcomes, by=self.by)

    # ---------------------------------------------------------------------- creates

    def push_creates(self, object_type: str) -> None:
        """Pending new records: contacts HubSpot does not have yet are upserted by email."""
        rows = self.db.outbox.pending_creates(object_type)
        if not rows:
            return
        if object_type != "contacts":
            # Only contacts have an idempotent create (upsert on email); HubSpot's plain
            # create could duplicate on a retry, so other types are not created from here.
            message = "Only new contacts can be created from the dashboard"
            for row in rows:
                self.db.outbox.fail_create(row["id"], message, by=self.by, retry=False)
                self._note(row, "failed", message)
            return
        for start in range(0, len(rows), BATCH):
            new = self._hold_existing(rows[start : start + BATCH])
            if new:
                self._upsert_contacts(new)

    def _hold_existing(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Read HubSpot by email (one request) and return the creates whose email it does not have.

        A match holding all my values is my own earlier create (or an identical one), so
        the local row simply becomes it; any other match is held for a person to decide.
        A failed read sends nothing: the creates stay pending for the next push.
        """
        props = sorted({*self.db.queries.synced_property_names("contacts"), "email"})
        emails = [_email(row) for row in rows]
        try:
            found = self.client.batch_read(
                "contacts", [e for e in emails if e], properties=props, id_property="email"
            )
        except NotConnected:
            raise
        except CrmError as exc:
            message = f"Not sent yet, will retry: {exc}"
            for row in rows:
                self.db.outbox.fail_create(row["id"], message, by=self.by, retry=True)
                self._note(row, "retry", message)
            return []
        by_email: dict[str, Record] = {}
        for contact in found:
            # A read by email may match a contact's secondary address (hs_additional_emails, when synced).
            extra = str(contact.properties.get("hs_additional_emails") or "").split(";")
            for address in (*extra, str(contact.properties.get("email") or "")):
                if address.strip():
                    by_email[address.strip().lower()] = contact
        types = self.db.queries.property_types("contacts")
        new: list[dict[str, Any]] = []
        for row, email in zip(rows, emails, strict=True):
            record = by_email.get(email.lower()) if email else None
            if record is None:
                new.append(row)
            elif _holds_all(record.properties, row["payload"], types):
                self.db.outbox.complete_create(row["id"], record, by=self.by, existed=True)
                self._note(row, "created", record_id=record.id)
            else:
                self.db.outbox.hold_create(row["id"], record)
                self._note(row, "conflict", EXISTS, record_id=row["record_id"])
        return new

    def _upsert_contacts(self, rows: list[dict[str, Any]]) -> None:
        inputs = [{"id": _email(row), "properties": row["payload"]} for row in rows]
        try:
            answer = self.client.batch_upsert("contacts", inputs, id_property="email")
        except NotConnected:
            raise
        except ValidationFailed as exc:
            if len(rows) > 1:
                middle = len(rows) // 2
                self._upsert_contacts(rows[:middle])
                self._upsert_contacts(rows[middle:])
                return
            self.db.outbox.fail_create(rows[0]["id"], str(exc), by=self.by, retry=False)
            self._note(rows[0], "failed", str(exc))
            return
        except CrmError as exc:
            transient = _is_transient(exc)
            message = f"Not sent yet, will retry: {exc}" if transient else str(exc)
            for row in rows:
                self.db.outbox.fail_create(row["id"], message, by=self.by, retry=transient)
                self._note(row, "retry" if transient else "failed", message)
            return
        by_email = {str(r.properties.get("email") or "").strip().lower(): r for r in answer.records}
        if len(answer.records) == len(rows) and not all(by_email.get(i["id"].lower()) for i in inputs):
            by_email = {i["id"].lower(): r for i, r in zip(inputs, answer.records, strict=True)}
        full = self._read_created([r.id for r in answer.records])
        created_ids = set(getattr(answer, "created_ids", []) or [])
        for row, item in zip(rows, inputs, strict=True):
            record = by_email.get(item["id"].lower())
            if record is None:
                message = str(answer.errors[0]) if answer.errors else "HubSpot did not confirm this contact"
                transient = not answer.errors
                self.db.outbox.fail_create(row["id"], message, by=self.by, retry=transient)
                self._note(row, "retry" if transient else "failed", message)
                continue
            self.db.outbox.complete_create(
                row["id"],
                full.get(record.id, record),
                by=self.by,
                existed=bool(created_ids) and record.id not in created_ids,
            )
            self._note(row, "created", record_id=record.id)

    # ------------------------------------------------------------------ notes, tasks

    def push_engagements(self, object_type: str) -> None:
        """Pending notes or tasks: look for an earlier attempt first, else create with associations."""
        for row in self.db.outbox.pending_creates(object_type):
            payload = row["payload"]
            properties: dict[str, Any] = dict(payload.get("properties") or {})
            links = [(str(t), str(i)) for t, i in payload.get("links") or []]
            try:
                if row["attempts"]:
                    waited = time.time() - (parse_datetime(row["updated_at"]) or _EPOCH).timestamp()
                    if waited < SEARCH_SETTLE_S:
                        self._note(
                            row, "retry", "An earlier attempt may have reached HubSpot; looking again soon"
                        )
                        continue
                found = [
                    r
                    for r in self.client.find_by_timestamp(
                        object_type,
                        int(properties["hs_timestamp"]),
                        properties=ENGAGEMENT_PROPERTIES[object_type],
                    )
                    if _same_engagement(object_type, r, properties)
                ]
                if found:
                    self.db.outbox.complete_engagement(row["id"], found[0], by=self.by, existed=True)
                    self._note(row, "created", "HubSpot already had it from an earlier attempt")
                    continue
                associations = [
                    (record_id, ENGAGEMENT_ASSOCIATION_TYPES[(object_type, record_type)])
                    for record_type, record_id in links
                ]
                result = self.client.batch_create(
                    object_type, [{"properties": properties, "associations": associations}]
                )
            except CrmError as exc:
                # Sent or not, nobody knows: the next push looks for it before sending again.
                transient = _is_transient(exc) or not isinstance(exc, HubSpotError)
                self.db.outbox.fail_create(row["id"], str(exc), by=self.by, retry=transient)
                self._note(row, "retry" if transient else "failed", str(exc))
                continue
            if result.errors or not result.records:
                message = str(result.errors[0]) if result.errors else "HubSpot created nothing"
                self.db.outbox.fail_create(row["id"], message, by=self.by, retry=False)
                self._note(row, "failed", message)
                continue
            created = self._read_engagement(object_type, result.records[0])
            self.db.outbox.complete_engagement(row["id"], created, by=self.by, existed=False)
            self._note({**row, "record_id": created.id}, "created")

    def _read_engagement(self, object_type: str, created: Record) -> Record:
        """The create answer may carry only some properties: read the new engagement in full."""
        try:
            found = self.client.batch_read(
                object_type, [created.id], properties=ENGAGEMENT_PROPERTIES[object_type]
            )
        except CrmError as exc:
            log.info("could not re-read a created %s (%s); keeping the create answer", object_type, exc)
            return created
        return found[0] if found else created

    def _read_created(self, ids: list[str]) -> dict[str, Record]:
        """The upsert answer may carry only some properties: read the new records in full."""
        if not ids:
            return {}
        try:
            props = self.db.queries.synced_property_names("contacts")
            return {r.id: r for r in self.client.batch_read("contacts", ids, properties=props)}
        except CrmError as exc:
            log.info("could not re-read created contacts (%s); keeping the upsert answer", exc)
            return {}


def _same_engagement(object_type: str, theirs: Record, mine: dict[str, Any]) -> bool:
    """Whether an engagement found in HubSpot is the one ``mine`` (its properties) describes."""
    for prop in _MATCHED[object_type]:
        if body_text(theirs.properties.get(prop)) != body_text(mine.get(prop)):
            return False
    return True


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (Unreachable, CircuitOpen, RateLimited)):
        return True
    return isinstance(exc, HubSpotError) and (exc.status_code >= 500 or exc.status_code in (423, 429, 477))


def _result(row: dict[str, Any], status: str, message: str | None = None) -> dict[str, Any]:
    return {
        "outbox_id": row["id"],
        "object_type": row["object_type"],
        "record_id": row["record_id"],
        "property": row.get("property"),
        "status": status,
        "message": message,
    }


def _error_ids(error: HubSpotError) -> set[str]:
    context = (error.body or {}).get("context") or {}
    found: set[str] = set()
    for key in ("ids", "id", "objectWriteTraceId"):
        value = context.get(key)
        if isinstance(value, list):
            found.update(str(v) for v in value)
        elif value is not None:
            found.add(str(value))
    return found


def _email(row: dict[str, Any]) -> str:
    return str(row["payload"].get("email") or "").strip()


def _holds_all(theirs: dict[str, str | None], mine: dict[str, Any], types: dict[str, str]) -> bool:
    for prop, value in mine.items():
        if prop == "email":
            if str(theirs.get(prop) or "").strip().lower() != str(value).strip().lower():
                return False
        elif not same_value(theirs.get(prop), value, types.get(prop, "string")):
            return False
    return True
