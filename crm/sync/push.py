"""Pushing the outbox to the connection's CRM, with field-level three-way conflict detection.

The push talks only to ``crm.interface.CrmApi`` (HubSpot, Pipedrive, any CRM): the API
is ``crms.provider_of(settings).connect(settings)`` unless one is given. For the pending
edits of each object type, 100 records at a time::

    batch read the CRM's current values of the edited fields
      remote == base   -> send (batch update)
      remote == mine   -> done (someone, or an earlier interrupted push, already did it)
      otherwise        -> conflict: both values kept, nothing sent; a person decides

No CRM here has conditional writes, so the read-to-write window is kept short (one
batch). A batch refused as a whole (ValidationFailed raised) is bisected until the bad
inputs stand alone; a lone refused input whose error names some of its properties is
retried without them (a refusal naming none, as Pipedrive's, is a one-field edit's own
message). Refused edits are marked failed with the CRM's message and the cache takes
the CRM's value; transient failures (rate limits after retries, 5xx, timeouts) leave the
edit pending; NotConnected / NeedsReconnect stops the push and leaves the rest queued.

New contacts are first looked up by email (``ReadsByKey``: one batch read per 100
creates in HubSpot, an exact search per email in Pipedrive). A contact the CRM already
has is never written over: if it already holds every value of mine (typically my own
create, made by a push interrupted before it recorded it) the local row is swapped for
it; otherwise the create is held as a decision for a person (link and queue my fields as
edits, or discard mine; see ``Outbox.link_create``). Only emails the CRM does not have
are sent, through batch upsert keyed on email, so a push that was interrupted after the
CRM acted (kill -9, a dropped connection) never creates a duplicate when it runs again:
the next push reads again and finds it. The one window left is the read-to-upsert round
trip of one batch: a contact created elsewhere with the same email inside it is updated;
the audit log then notes that the upsert matched an existing record. Every outcome is
stored in one transaction with its cache and audit-log changes; an edit is never marked
done before the CRM has it. A CRM API without ``ReadsByKey`` gets no creates.

Notes and tasks logged here (``queue_note``, ``queue_task``) need the ``LogsEngagements``
capability (HubSpot's engagements, Pipedrive's notes and task activities; elsewhere they are
refused with a message, to be discarded). HubSpot's create has no idempotency key (docs/INTERACTIONS_API.md §1), so a
retry never trusts itself: each note
or task carries its own ``time`` millisecond, and before sending, the push
searches for an engagement at that millisecond with the same text. Found: the earlier
attempt reached HubSpot, and the local row becomes it. An attempt whose outcome is
unknown (timeout, 5xx, dropped connection) is looked for again only after
SEARCH_SETTLE_S, because search may not show a new object at once; until then it waits.

One ``Pusher`` holds what a push works with (the store, the API, who pushes, the CRM's
words, the results so far); ``push`` takes the lease, opens both, runs it and sums up.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from crm import crms, store
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
from crm.interface import CrmApi, LogsEngagements, ObjectTypeInfo, ReadsByKey, Record, Words, WriteFailure
from crm.logs import in_run
from crm.plaintext import body_text
from crm.store import OBJECT_TYPES, Store, syncstate
from crm.store.interactions import ENGAGEMENT_PROPERTIES, LOGGED_ROLES, queued_roles
from crm.store.outbox import Outcome
from crm.store.values import parse_datetime, same_value

log = logging.getLogger("crm.sync")

BATCH = 100
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
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
# The roles (crm.store.interactions.LOGGED_ROLES) an engagement found in the CRM must share
# with the queued one to be it.
_MATCHED = {"notes": ("note_body",), "tasks": ("task_subject", "task_body")}
# Search may lag a create by seconds (HUBSPOT_API.md); an attempt with an unknown outcome
# is looked for again only after this long.
SEARCH_SETTLE_S = 60.0
# Outbox rows grouped by record id: the fields of one record that go out together.
RowsByRecord = dict[str, list[dict[str, Any]]]


def gone(words: Words) -> str:
    """The message of an edit whose record the CRM no longer has."""
    return f"This record no longer exists in {words.crm} (deleted or merged)."


def exists(words: Words) -> str:
    """The message of a new contact whose email the CRM already has (a person decides)."""
    return f"{words.crm} already has a contact with this email: link to it or discard yours on the Sync page"


@in_run("push")
def push(settings: Settings, *, by: str | None = None, api: CrmApi | None = None) -> dict[str, Any]:
    """Send every pending edit and new record to the connection's CRM.

    ``api``: an opened CRM API to push through (tests, the scheduler); None opens the
    connection's own (``crms.provider_of(settings).connect``) and closes it after.

    Returns:
        ``{"pushed", "failed", "conflicts", "retry", "results"}``; each result is
        ``{record_id, object_type, property, status, message}`` with status one of
        pushed, already, failed, conflict, retry, created.

    Raises:
        SyncBusy: another push is running.
        NotConnected: no usable credentials (nothing was marked; edits stay queued).
    """
    provider = crms.provider_of(settings)
    with store.open(settings) as db:
        owner = syncstate.new_owner()
        if not db.syncstate.acquire_lease(syncstate.PUSH_LEASE, owner):
            raise SyncBusy(f"Another push is already sending edits to {provider.words.crm}.")
        stop_renewing = threading.Event()
        renewer = threading.Thread(target=_renew, args=(settings, owner, stop_renewing), daemon=True)
        renewer.start()
        own_api = api is None
        try:
            if api is None:
                api = provider.connect(settings)
            pusher = Pusher(db, api, by=by, words=provider.words, types=_email_roles(provider.object_types()))
            pusher.run()
        finally:
            stop_renewing.set()
            renewer.join(timeout=5)
            if own_api and api is not None:
                api.close()
            db.syncstate.release_lease(syncstate.PUSH_LEASE, owner)
    return pusher.summary()


def _email_roles(infos: Sequence[ObjectTypeInfo]) -> dict[str, str]:
    """Object type -> the CRM's email property, for the types that have one."""
    return {info.name: info.email for info in infos if info.email}


def _renew(settings: Settings, owner: str, stop: threading.Event) -> None:
    with store.open(settings) as db:
        while not stop.wait(syncstate.LEASE_TTL_S / 3):
            db.syncstate.renew_lease(syncstate.PUSH_LEASE, owner)


class Pusher:
    """One push: the outbox of every object type to the CRM, outcomes back into the store.

    Talks only to ``crm.interface.CrmApi``; creates need the ``ReadsByKey`` capability
    (the check before creating), notes and tasks ``LogsEngagements``.
    """

    def __init__(
        self,
        db: Store,
        api: CrmApi,
        *,
        by: str | None,
        words: Words | None = None,
        types: Mapping[str, str] | None = None,
    ) -> None:
        self.db = db
        self.api = api
        self.by = by
        self.words = words or crms.provider_for(None).words
        # Object type -> the property new records are matched on (a contact's email).
        self.keys = dict(types) if types is not None else {"contacts": "email"}
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
        """Pending field edits, 100 records at a time: read the CRM's values, then decide or send."""
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
            remote = {r.id: r for r in self.api.batch_read(object_type, list(by_record), properties=props)}
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
                    decided.append(Outcome(row["id"], "failed", gone(self.words)))
                    self._note(row, "failed", gone(self.words))
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
                    self._note(row, "conflict", f"{self.words.crm}'s value changed since this edit was made")
        if decided:
            self.db.outbox.record_outcomes(object_type, decided, by=self.by)
        if to_send:
            self._send_updates(object_type, to_send, remote)

    def _send_updates(self, object_type: str, to_send: RowsByRecord, remote: dict[str, Record]) -> None:
        updates = {rid: {row["property"]: row["new_value"] for row in rows} for rid, rows in to_send.items()}
        try:
            answer = self.api.batch_update(object_type, updates)
        except NotConnected:
            raise
        except ValidationFailed as exc:
            if len(updates) > 1:
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
            self._settle_missing(object_type, missing, remote, answer.failures)

    def _settle_missing(
        self,
        object_type: str,
        missing: RowsByRecord,
        remote: dict[str, Record],
        failures: Sequence[WriteFailure],
    ) -> None:
        """Records a batch update did not return: the CRM's per-input failures say why."""
        unplaced: list[CrmError] = []
        for failure in failures:
            error = failure.error
            if isinstance(error, NotConnected):
                raise error  # the edits not yet settled stay queued
            rows = missing.pop(str(failure.ref), None) if failure.ref is not None else None
            if rows is None:
                if isinstance(error, CrmError):
                    unplaced.append(error)
                continue
            rid = str(failure.ref)
            if isinstance(error, NotFound):
                self._fail_rows(object_type, {rid: rows}, remote, gone(self.words), None)
            elif isinstance(error, CrmError) and _is_transient(error):
                self._retry_all(object_type, rows, error)
            elif isinstance(error, CrmError):
                self._refused_alone(object_type, {rid: rows}, remote, error)
            else:
                self._fail_rows(object_type, {rid: rows}, remote, str(error), None)
        if not missing:
            return
        if unplaced:
            self._fail_rows(object_type, missing, remote, str(unplaced[0]), _field_errors(unplaced[0]))
            return
        message = f"{self.words.crm} did not confirm this update; it will be checked on the next push"
        self._retry_all(object_type, [r for rows in missing.values() for r in rows], CrmError(message))

    def _refused_alone(
        self, object_type: str, to_send: RowsByRecord, remote: dict[str, Record], exc: CrmError
    ) -> None:
        """One record's update was refused: fail the fields the CRM named, resend the rest.

        A refusal naming no field (Pipedrive's 400 says it in words) of a one-field update
        is that field's message.
        """
        ((rid, rows),) = to_send.items()
        field_errors = _field_errors(exc)
        if not field_errors and len(rows) == 1:
            field_errors = {rows[0]["property"]: str(exc)}
        named = {row["property"] for row in rows} & set(field_errors)
        if named and len(named) < len(rows):
            bad = {rid: [row for row in rows if row["property"] in named]}
            self._fail_rows(object_type, bad, remote, str(exc), field_errors)
            self._send_updates(
                object_type, {rid: [row for row in rows if row["property"] not in named]}, remote
            )
            return
        self._fail_rows(object_type, to_send, remote, str(exc), field_errors)

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
                text = f"{self.words.crm} refused {row['property']}: {detail}" if detail else message
                theirs = record.properties.get(row["property"]) if record is not None else None
                # A refused edit will never be sent: the cache goes back to the CRM's value.
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
        """Pending new records: contacts the CRM does not have yet are upserted by email."""
        rows = self.db.outbox.pending_creates(object_type)
        if not rows:
            return
        key = self.keys.get(object_type)
        if object_type != "contacts" or key is None or not isinstance(self.api, ReadsByKey):
            # Only contacts have an idempotent create (upsert on email, checked by a keyed
            # read first); a plain create could duplicate on a retry, so others wait.
            message = "Only new contacts can be created from the dashboard"
            for row in rows:
                self.db.outbox.fail_create(row["id"], message, by=self.by, retry=False)
                self._note(row, "failed", message)
            return
        for start in range(0, len(rows), BATCH):
            new = self._hold_existing(self.api, key, rows[start : start + BATCH])
            if new:
                self._upsert_contacts(key, new)

    def _hold_existing(self, api: ReadsByKey, key: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Read the CRM by email (one request in HubSpot) and return the creates whose email it does not have.

        A match holding all my values is my own earlier create (or an identical one), so
        the local row simply becomes it; any other match is held for a person to decide.
        A failed read sends nothing: the creates stay pending for the next push.
        """
        props = sorted({*self.db.queries.synced_property_names("contacts"), key})
        emails = [_email(row, key) for row in rows]
        try:
            found = api.read_by_key("contacts", [e for e in emails if e], key=key, properties=props)
        except NotConnected:
            raise
        except CrmError as exc:
            message = f"Not sent yet, will retry: {exc}"
            for row in rows:
                self.db.outbox.fail_create(row["id"], message, by=self.by, retry=True)
                self._note(row, "retry", message)
            return []
        by_email = {value.strip().lower(): record for value, record in found.items()}
        types = self.db.queries.property_types("contacts")
        new: list[dict[str, Any]] = []
        for row, email in zip(rows, emails, strict=True):
            record = by_email.get(email.lower()) if email else None
            if record is None:
                new.append(row)
            elif _holds_all(record.properties, row["payload"], types, key):
                self.db.outbox.complete_create(row["id"], record, by=self.by, existed=True)
                self._note(row, "created", record_id=record.id)
            else:
                self.db.outbox.hold_create(row["id"], record)
                self._note(row, "conflict", exists(self.words), record_id=row["record_id"])
        return new

    def _upsert_contacts(self, key: str, rows: list[dict[str, Any]]) -> None:
        inputs = [{**row["payload"], key: _email(row, key)} for row in rows]
        try:
            answer = self.api.batch_upsert("contacts", inputs, key=key)
        except NotConnected:
            raise
        except ValidationFailed as exc:
            if len(rows) > 1:
                middle = len(rows) // 2
                self._upsert_contacts(key, rows[:middle])
                self._upsert_contacts(key, rows[middle:])
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
        by_email = {str(r.properties.get(key) or "").strip().lower(): r for r in answer.records}
        if len(answer.records) == len(rows) and not all(by_email.get(str(i[key]).lower()) for i in inputs):
            by_email = {str(i[key]).lower(): r for i, r in zip(inputs, answer.records, strict=True)}
        refused = {str(f.ref).strip().lower(): f.error for f in answer.failures if f.ref is not None}
        full = self._read_created([r.id for r in answer.records])
        created_ids = set(answer.created_ids)
        for row, item in zip(rows, inputs, strict=True):
            email = str(item[key]).lower()
            record = by_email.get(email)
            if record is None:
                error = refused.get(email) or (answer.failures[0].error if answer.failures else None)
                if isinstance(error, NotConnected):
                    raise error
                # No answer for it (or a transient one): the next push reads by email first.
                transient = error is None or (isinstance(error, CrmError) and _is_transient(error))
                message = (
                    str(error) if error is not None else f"{self.words.crm} did not confirm this contact"
                )
                if transient and error is not None:
                    message = f"Not sent yet, will retry: {message}"
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
        rows = self.db.outbox.pending_creates(object_type)
        if rows and not isinstance(self.api, LogsEngagements):
            # Refused, not left pending: it would never go, and a person can discard it.
            message = f"Notes and tasks cannot be sent to {self.words.crm} from the dashboard yet"
            for row in rows:
                self.db.outbox.fail_create(row["id"], message, by=self.by, retry=False)
                self._note(row, "failed", message)
            return
        for row in rows:
            assert isinstance(self.api, LogsEngagements)
            self._push_engagement(self.api, object_type, row)

    def _push_engagement(self, api: LogsEngagements, object_type: str, row: dict[str, Any]) -> None:
        payload = row["payload"]
        roles = queued_roles(payload)  # a row queued by role, or an older one by HubSpot's names
        links = [(str(t), str(i)) for t, i in payload.get("links") or []]
        try:
            if row["attempts"]:
                waited = time.time() - (parse_datetime(row["updated_at"]) or _EPOCH).timestamp()
                if waited < SEARCH_SETTLE_S:
                    message = f"An earlier attempt may have reached {self.words.crm}; looking again soon"
                    self._note(row, "retry", message)
                    return
            found = [
                r
                for r in api.find_logged(
                    object_type,
                    int(roles.get("time") or 0),
                    properties=ENGAGEMENT_PROPERTIES[object_type],
                    links=links,
                    since_ms=_queued_ms(row),
                )
                if _same_engagement(object_type, r, roles)
            ]
            if found:
                self.db.outbox.complete_engagement(row["id"], found[0], by=self.by, existed=True)
                self._note(row, "created", f"{self.words.crm} already had it from an earlier attempt")
                return
            result = api.create_logged(object_type, roles, links)
        except CrmError as exc:
            # Sent or not, nobody knows: the next push looks for it before sending again.
            transient = _is_transient(exc) or not isinstance(exc, HubSpotError)
            self.db.outbox.fail_create(row["id"], str(exc), by=self.by, retry=transient)
            self._note(row, "retry" if transient else "failed", str(exc))
            return
        if result.failures or not result.records:
            message = (
                str(result.failures[0].error) if result.failures else f"{self.words.crm} created nothing"
            )
            self.db.outbox.fail_create(row["id"], message, by=self.by, retry=False)
            self._note(row, "failed", message)
            return
        created = self._read_engagement(object_type, result.records[0])
        self.db.outbox.complete_engagement(row["id"], created, by=self.by, existed=False)
        self._note({**row, "record_id": created.id}, "created")

    def _read_engagement(self, object_type: str, created: Record) -> Record:
        """The create answer may carry only some properties: read the new engagement in full."""
        try:
            found = self.api.batch_read(
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
            return {r.id: r for r in self.api.batch_read("contacts", ids, properties=props)}
        except CrmError as exc:
            log.info("could not re-read created contacts (%s); keeping the upsert answer", exc)
            return {}


def _same_engagement(object_type: str, theirs: Record, mine: Mapping[str, str | None]) -> bool:
    """Whether an engagement found in the CRM (the cache's properties) is the one ``mine``
    (its queued roles) describes."""
    for role in _MATCHED[object_type]:
        if body_text(theirs.properties.get(LOGGED_ROLES[role])) != body_text(mine.get(role)):
            return False
    return True


def _queued_ms(row: Mapping[str, Any]) -> int | None:
    """When an outbox row was queued (epoch ms): no attempt to send it can be older."""
    queued = parse_datetime(row.get("created_at"))
    return None if queued is None else int(queued.timestamp() * 1000)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (Unreachable, CircuitOpen, RateLimited)):
        return True
    return isinstance(exc, HubSpotError) and (exc.status_code >= 500 or exc.status_code in (423, 429, 477))


def _field_errors(exc: BaseException) -> dict[str, str]:
    """The per-property reasons a refusal carries ({} when it names none)."""
    found = getattr(exc, "field_errors", None)
    return dict(found) if isinstance(found, dict) else {}


def _result(row: dict[str, Any], status: str, message: str | None = None) -> dict[str, Any]:
    return {
        "outbox_id": row["id"],
        "object_type": row["object_type"],
        "record_id": row["record_id"],
        "property": row.get("property"),
        "status": status,
        "message": message,
    }


def _email(row: dict[str, Any], key: str = "email") -> str:
    return str(row["payload"].get(key) or "").strip()


def _holds_all(
    theirs: Mapping[str, str | None], mine: dict[str, Any], types: dict[str, str], key: str = "email"
) -> bool:
    for prop, value in mine.items():
        if prop == key:
            if str(theirs.get(prop) or "").strip().lower() != str(value).strip().lower():
                return False
        elif not same_value(theirs.get(prop), value, types.get(prop, "string")):
            return False
    return True
