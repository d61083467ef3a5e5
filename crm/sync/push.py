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
and queue my fields as edits, or discard mine; see ``outbox.link_create``). Only emails
HubSpot does not have are sent, through batch upsert keyed on email, so a push that was
interrupted after HubSpot acted (kill -9, a dropped connection) never creates a
duplicate when it runs again: the next push reads again and finds it. The one window
left is the read-to-upsert round trip of one batch: a contact created elsewhere with
the same email inside it is updated, as HubSpot has no conditional write; the audit log
then notes that the upsert matched an existing record. Every outcome is stored in one transaction with its cache and audit-log
changes; an edit is never marked done before HubSpot has it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import sqlite_utils

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
from crm.logs import in_run
from crm.store import outbox, records, syncstate
from crm.store.outbox import Outcome
from crm.store.schema import OBJECT_TYPES, open_db

log = logging.getLogger("crm.sync")

BATCH = 100
GONE = "This record no longer exists in HubSpot (deleted or merged)."


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (Unreachable, CircuitOpen, RateLimited)):
        return True
    return isinstance(exc, HubSpotError) and (exc.status_code >= 500 or exc.status_code in (423, 429, 477))


@in_run("push")
def push(settings: Settings, *, by: str | None = None, client: Any = None) -> dict[str, Any]:
    """Send every pending edit and new record to HubSpot.

    Returns:
        ``{"pushed", "failed", "conflicts", "retry", "results"}``; each result is
        ``{record_id, object_type, property, status, message}`` with status one of
        pushed, already, failed, conflict, retry, created.

    Raises:
        SyncBusy: another push is running.
        NotConnected: no usable token (nothing was marked).
    """
    db = open_db(settings.db_path)
    owner = syncstate.new_owner()
    if not syncstate.acquire_lease(db, syncstate.PUSH_LEASE, owner):
        db.close()
        raise SyncBusy("Another push is already sending edits to HubSpot.")
    stop_renewing = threading.Event()
    renewer = threading.Thread(target=_renew, args=(settings, owner, stop_renewing), daemon=True)
    renewer.start()
    own_client = client is None
    results: list[dict[str, Any]] = []
    try:
        if own_client:
            from crm import oauth

            client = oauth.open_client(settings)
        for object_type in OBJECT_TYPES:
            _push_creates(db, client, object_type, by, results)
            _push_updates(db, client, object_type, by, results)
    finally:
        stop_renewing.set()
        renewer.join(timeout=5)
        if own_client and client is not None:
            client.close()
        syncstate.release_lease(db, syncstate.PUSH_LEASE, owner)
        db.close()
    summary: dict[str, Any] = {"pushed": 0, "failed": 0, "conflicts": 0, "retry": 0, "results": results}
    for result in results:
        key = {
            "pushed": "pushed",
            "already": "pushed",
            "created": "pushed",
            "failed": "failed",
            "conflict": "conflicts",
            "retry": "retry",
        }[result["status"]]
        summary[key] += 1
    return summary


def _renew(settings: Settings, owner: str, stop: threading.Event) -> None:
    db = open_db(settings.db_path)
    try:
        while not stop.wait(syncstate.LEASE_TTL_S / 3):
            syncstate.renew_lease(db, syncstate.PUSH_LEASE, owner)
    finally:
        db.close()


def _result(row: dict[str, Any], status: str, message: str | None = None) -> dict[str, Any]:
    return {
        "outbox_id": row["id"],
        "object_type": row["object_type"],
        "record_id": row["record_id"],
        "property": row.get("property"),
        "status": status,
        "message": message,
    }


# -------------------------------------------------------------------------- updates


def _push_updates(
    db: sqlite_utils.Database, client: Any, object_type: str, by: str | None, results: list[dict[str, Any]]
) -> None:
    rows = outbox.pending_updates(db, object_type)
    by_record: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_record.setdefault(row["record_id"], []).append(row)
    ids = list(by_record)
    types = records.property_types(db, object_type)
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        chunk_rows = [row for rid in chunk for row in by_record[rid]]
        props = sorted({row["property"] for row in chunk_rows})
        try:
            remote = {r.id: r for r in client.batch_read(object_type, chunk, properties=props)}
        except NotConnected:
            raise
        except CrmError as exc:
            _retry_all(db, object_type, chunk_rows, exc, by, results)
            continue
        decided: list[Outcome] = []
        to_send: dict[str, list[dict[str, Any]]] = {}
        for rid in chunk:
            record = remote.get(rid)
            for row in by_record[rid]:
                prop_type = types.get(row["property"], "string")
                if record is None:
                    decided.append(Outcome(row["id"], "failed", GONE))
                    results.append(_result(row, "failed", GONE))
                    continue
                theirs = record.properties.get(row["property"])
                if records.same_value(theirs, row["new_value"], prop_type):
                    decided.append(Outcome(row["id"], "already", remote_value=theirs))
                    results.append(_result(row, "already"))
                elif records.same_value(theirs, row["base_value"], prop_type):
                    to_send.setdefault(rid, []).append(row)
                else:
                    decided.append(Outcome(row["id"], "conflict", remote_value=theirs))
                    results.append(
                        _result(row, "conflict", "HubSpot's value changed since this edit was made")
                    )
        if decided:
            outbox.record_outcomes(db, object_type, decided, by=by)
        if to_send:
            _send_updates(db, client, object_type, to_send, remote, by, results)


def _retry_all(
    db: sqlite_utils.Database,
    object_type: str,
    rows: Sequence[dict[str, Any]],
    exc: CrmError,
    by: str | None,
    results: list[dict[str, Any]],
) -> None:
    message = f"Not sent yet, will retry: {exc}"
    outbox.record_outcomes(db, object_type, [Outcome(r["id"], "retry", message) for r in rows], by=by)
    results.extend(_result(r, "retry", message) for r in rows)


def _send_updates(
    db: sqlite_utils.Database,
    client: Any,
    object_type: str,
    to_send: dict[str, list[dict[str, Any]]],
    remote: dict[str, Any],
    by: str | None,
    results: list[dict[str, Any]],
) -> None:
    inputs = [
        {"id": rid, "properties": {row["property"]: row["new_value"] for row in rows}}
        for rid, rows in to_send.items()
    ]
    try:
        answer = client.batch_update(object_type, inputs)
    except NotConnected:
        raise
    except ValidationFailed as exc:
        if len(inputs) > 1:
            # Refused as a whole: halve until the bad inputs stand alone.
            ids = list(to_send)
            middle = len(ids) // 2
            for part in (ids[:middle], ids[middle:]):
                _send_updates(
                    db, client, object_type, {rid: to_send[rid] for rid in part}, remote, by, results
                )
            return
        _refused_alone(db, client, object_type, to_send, remote, exc, by, results)
        return
    except CrmError as exc:
        if _is_transient(exc):
            _retry_all(db, object_type, [r for rows in to_send.values() for r in rows], exc, by, results)
            return
        _fail_rows(db, object_type, to_send, remote, str(exc), None, by, results)
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
        outbox.record_outcomes(db, object_type, outcomes, by=by, record=record)
        results.extend(_result(row, "pushed") for row in rows)
    missing = {rid: rows for rid, rows in to_send.items() if rid not in done}
    if not missing:
        return
    for error in answer.errors:
        for rid in _error_ids(error) & set(missing):
            rows = missing.pop(rid)
            if isinstance(error, NotFound):
                _fail_rows(db, object_type, {rid: rows}, remote, GONE, None, by, results)
            else:
                _refused_alone(db, client, object_type, {rid: rows}, remote, error, by, results)
    if missing:
        if answer.errors:
            _fail_rows(
                db,
                object_type,
                missing,
                remote,
                str(answer.errors[0]),
                answer.errors[0].field_errors,
                by,
                results,
            )
        else:
            message = "HubSpot did not confirm this update; it will be checked on the next push"
            _retry_all(
                db,
                object_type,
                [r for rows in missing.values() for r in rows],
                CrmError(message),
                by,
                results,
            )


def _refused_alone(
    db: sqlite_utils.Database,
    client: Any,
    object_type: str,
    to_send: dict[str, list[dict[str, Any]]],
    remote: dict[str, Any],
    exc: HubSpotError,
    by: str | None,
    results: list[dict[str, Any]],
) -> None:
    """One record's update was refused: fail the fields HubSpot named, resend the rest."""
    ((rid, rows),) = to_send.items()
    named = {row["property"] for row in rows} & set(exc.field_errors)
    if named and len(named) < len(rows):
        bad = {rid: [row for row in rows if row["property"] in named]}
        _fail_rows(db, object_type, bad, remote, str(exc), exc.field_errors, by, results)
        rest = {rid: [row for row in rows if row["property"] not in named]}
        _send_updates(db, client, object_type, rest, remote, by, results)
        return
    _fail_rows(db, object_type, to_send, remote, str(exc), exc.field_errors, by, results)


def _fail_rows(
    db: sqlite_utils.Database,
    object_type: str,
    rows_by_record: dict[str, list[dict[str, Any]]],
    remote: dict[str, Any],
    message: str,
    field_errors: dict[str, str] | None,
    by: str | None,
    results: list[dict[str, Any]],
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
            results.append(_result(row, "failed", text))
    outbox.record_outcomes(db, object_type, outcomes, by=by)


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


# -------------------------------------------------------------------------- creates


def _push_creates(
    db: sqlite_utils.Database, client: Any, object_type: str, by: str | None, results: list[dict[str, Any]]
) -> None:
    rows = outbox.pending_creates(db, object_type)
    if not rows:
        return
    if object_type != "contacts":
        # Only contacts have an idempotent create (upsert on email); HubSpot's plain
        # create could duplicate on a retry, so other types are not created from here.
        for row in rows:
            outbox.fail_create(
                db, row["id"], "Only new contacts can be created from the dashboard", by=by, retry=False
            )
            results.append(_result(row, "failed", "Only new contacts can be created from the dashboard"))
        return
    for start in range(0, len(rows), BATCH):
        new = _hold_existing(db, client, rows[start : start + BATCH], by, results)
        if new:
            _upsert_contacts(db, client, new, by, results)


EXISTS = "HubSpot already has a contact with this email: link to it or discard yours on the Sync page"


def _hold_existing(
    db: sqlite_utils.Database,
    client: Any,
    rows: list[dict[str, Any]],
    by: str | None,
    results: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Read HubSpot by email (one request) and return the creates whose email it does not have.

    A match holding all my values is my own earlier create (or an identical one), so
    the local row simply becomes it; any other match is held for a person to decide.
    A failed read sends nothing: the creates stay pending for the next push.
    """
    props = sorted({*records.synced_property_names(db, "contacts"), "email"})
    emails = [_email(row) for row in rows]
    try:
        found = client.batch_read("contacts", [e for e in emails if e], properties=props, id_property="email")
    except NotConnected:
        raise
    except CrmError as exc:
        message = f"Not sent yet, will retry: {exc}"
        for row in rows:
            outbox.fail_create(db, row["id"], message, by=by, retry=True)
            results.append(_result(row, "retry", message))
        return []
    by_email: dict[str, Any] = {}
    for record in found:
        # A read by email may match a contact's secondary address (hs_additional_emails, when synced).
        extra = str(record.properties.get("hs_additional_emails") or "").split(";")
        for address in (*extra, str(record.properties.get("email") or "")):
            if address.strip():
                by_email[address.strip().lower()] = record
    types = records.property_types(db, "contacts")
    new: list[dict[str, Any]] = []
    for row, email in zip(rows, emails, strict=True):
        record = by_email.get(email.lower()) if email else None
        if record is None:
            new.append(row)
        elif _holds_all(record.properties, row["payload"], types):
            outbox.complete_create(db, row["id"], record, by=by, existed=True)
            result = _result(row, "created")
            result["record_id"] = record.id
            results.append(result)
        else:
            outbox.hold_create(db, row["id"], record)
            result = _result(row, "conflict", EXISTS)
            result["record_id"] = row["record_id"]
            results.append(result)
    return new


def _email(row: dict[str, Any]) -> str:
    return str(row["payload"].get("email") or "").strip()


def _holds_all(theirs: dict[str, str | None], mine: dict[str, Any], types: dict[str, str]) -> bool:
    for prop, value in mine.items():
        if prop == "email":
            if str(theirs.get(prop) or "").strip().lower() != str(value).strip().lower():
                return False
        elif not records.same_value(theirs.get(prop), value, types.get(prop, "string")):
            return False
    return True


def _upsert_contacts(
    db: sqlite_utils.Database,
    client: Any,
    rows: list[dict[str, Any]],
    by: str | None,
    results: list[dict[str, Any]],
) -> None:
    inputs = [
        {"id": str(row["payload"].get("email", "")).strip(), "properties": row["payload"]} for row in rows
    ]
    try:
        answer = client.batch_upsert("contacts", inputs, id_property="email")
    except NotConnected:
        raise
    except ValidationFailed as exc:
        if len(rows) > 1:
            middle = len(rows) // 2
            _upsert_contacts(db, client, rows[:middle], by, results)
            _upsert_contacts(db, client, rows[middle:], by, results)
            return
        outbox.fail_create(db, rows[0]["id"], str(exc), by=by, retry=False)
        results.append(_result(rows[0], "failed", str(exc)))
        return
    except CrmError as exc:
        transient = _is_transient(exc)
        for row in rows:
            message = f"Not sent yet, will retry: {exc}" if transient else str(exc)
            outbox.fail_create(db, row["id"], message, by=by, retry=transient)
            results.append(_result(row, "retry" if transient else "failed", message))
        return
    by_email = {str(r.properties.get("email") or "").strip().lower(): r for r in answer.records}
    if len(answer.records) == len(rows) and not all(by_email.get(i["id"].lower()) for i in inputs):
        by_email = {i["id"].lower(): r for i, r in zip(inputs, answer.records, strict=True)}
    # The upsert answer may carry only some properties: read the new records in full.
    created = [r.id for r in answer.records]
    full = {}
    if created:
        try:
            props = records.synced_property_names(db, "contacts")
            full = {r.id: r for r in client.batch_read("contacts", created, properties=props)}
        except CrmError as exc:
            log.info("could not re-read created contacts (%s); keeping the upsert answer", exc)
    created_ids = set(getattr(answer, "created_ids", []) or [])
    for row, item in zip(rows, inputs, strict=True):
        record = by_email.get(item["id"].lower())
        if record is None:
            message = str(answer.errors[0]) if answer.errors else "HubSpot did not confirm this contact"
            transient = not answer.errors
            outbox.fail_create(db, row["id"], message, by=by, retry=transient)
            results.append(_result(row, "retry" if transient else "failed", message))
            continue
        outbox.complete_create(
            db,
            row["id"],
            full.get(record.id, record),
            by=by,
            existed=bool(created_ids) and record.id not in created_ids,
        )
        result = _result(row, "created")
        result["record_id"] = record.id
        results.append(result)
