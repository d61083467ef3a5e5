"""HubSpot's webhooks journal: live changes an app polls for instead of receiving webhooks.

Facts and their sources are in docs/JOURNAL_AND_LIMITS_API.md §1; what the docs leave open
is handled permissively there, and the choices made here are listed in that file.

- Journal, local and global (one portal, so the same entries):
  ``GET /webhooks-journal/journal{,-local}/{version}/earliest``, ``…/latest``,
  ``…/offset/{offset}/next``, ``…/batch/earliest/{count}``, ``…/batch/latest/{count}``.
  Each answers ``{currentOffset, expiresAt, url}``; the ``url`` is a short-lived download of
  the entry's JSON file, fetched without a token. ``next`` from the newest offset answers 204;
  from an offset that left retention (or never existed) 404, as HubSpot documents.
- Subscriptions (``/webhooks-journal/subscriptions/{version}``, and the v4 beta path
  ``/webhooks/v4/subscriptions``): list, upsert, delete. Only events matching a subscription
  reach the journal: object type, action, and optionally object ids and property names.
- Snapshots (``POST /webhooks-journal/snapshots/{version}/crm``, status by id): the object's
  requested properties are written to the journal as a ``SNAPSHOT`` event.
- Auth: the client-credentials token (``grant_type=client_credentials``, see oauth.models)
  with the ``developer.webhooks_journal.*`` scopes.

The journal is fed by ``WebhookSender.observers``: every event that would drive a webhook
(creation, property change, deletion, merge, restore, association change, privacy deletion)
is offered to ``Journal.record``, whether or not a webhook URL is set. Entries older than
``config.journal_retention_s`` are gone; ``POST /_sandbox/journal/age`` moves them back in
time so tests need not wait three days.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox import messages as msg
from crm.sandbox.config import SandboxConfig
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.objects.types import iso, resolve_type
from crm.sandbox.wire import authorize, bad_request, read_json, sandbox_state

JOURNAL_READ = "developer.webhooks_journal.read"
SUBSCRIPTIONS_READ = "developer.webhooks_journal.subscriptions.read"
SUBSCRIPTIONS_WRITE = "developer.webhooks_journal.subscriptions.write"
SNAPSHOTS_READ = "developer.webhooks_journal.snapshots.read"
SNAPSHOTS_WRITE = "developer.webhooks_journal.snapshots.write"
JOURNAL_SCOPES = (JOURNAL_READ, SUBSCRIPTIONS_READ, SUBSCRIPTIONS_WRITE, SNAPSHOTS_READ, SNAPSHOTS_WRITE)
# The v4 beta guide's names for the same rights, still accepted.
_BETA = {
    JOURNAL_READ: "webhooks.journal.data.access",
    SUBSCRIPTIONS_READ: "webhooks.journal.subscription.read",
    SUBSCRIPTIONS_WRITE: "webhooks.journal.subscription.manage",
    SNAPSHOTS_READ: "webhooks.journal.snapshot.manage",
    SNAPSHOTS_WRITE: "webhooks.journal.snapshot.manage",
}
JOURNAL_VERSIONS = ("2026-03", "2026-09", "2027-03-beta")
SUBSCRIPTION_TYPES = (
    "OBJECT",
    "ASSOCIATION",
    "EVENT",
    "APP_LIFECYCLE_EVENT",
    "LIST_MEMBERSHIP",
    "GDPR_PRIVACY_DELETION",
)
ACTIONS = (
    "CREATE",
    "UPDATE",
    "DELETE",
    "MERGE",
    "RESTORE",
    "ASSOCIATION_ADDED",
    "ASSOCIATION_REMOVED",
    "SNAPSHOT",
    "APP_INSTALL",
    "APP_UNINSTALL",
    "ADDED_TO_LIST",
    "REMOVED_FROM_LIST",
    "GDPR_DELETE",
)
# Webhook object names to HubSpot object type ids (HUBSPOT_API.md §10).
OBJECT_TYPE_IDS = {
    "contact": "0-1", "company": "0-2", "deal": "0-3", "ticket": "0-5", "product": "0-7", "line_item": "0-8",
    "task": "0-27", "note": "0-46", "meeting": "0-47", "call": "0-48", "email": "0-49",
}  # fmt: skip
_KIND_ACTIONS = {
    "creation": "CREATE",
    "propertyChange": "UPDATE",
    "deletion": "DELETE",
    "restore": "RESTORE",
    "merge": "MERGE",
    "privacyDeletion": "GDPR_DELETE",
}
MAX_BATCH_COUNT = 100
MAX_ENTRIES = 100_000


def _scopes(*names: str) -> list[str]:
    return [scope for name in names for scope in (name, _BETA[name])]


@dataclasses.dataclass
class Subscription:
    id: int
    subscription_type: str
    object_type_id: str
    portal_id: int
    actions: list[str]
    properties: list[str] | None
    object_ids: list[int] | None
    associated_object_type_ids: list[str] | None
    created_at: int
    updated_at: int

    def to_wire(self, app_id: int, user_id: int) -> dict[str, Any]:
        return {
            "id": self.id, "appId": app_id, "subscriptionType": self.subscription_type,
            "objectTypeId": self.object_type_id, "portalId": self.portal_id, "actions": list(self.actions),
            "properties": self.properties, "objectIds": self.object_ids,
            "associatedObjectTypeIds": self.associated_object_type_ids, "listIds": None,
            "actionOverrides": {}, "createdBy": user_id, "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at), "deletedAt": None,
        }  # fmt: skip

    def matches(self, event: Mapping[str, Any], portal_id: int) -> bool:
        if self.portal_id != portal_id or event["action"] not in self.actions:
            return False
        if event["objectTypeId"] != self.object_type_id:
            return False
        if self.object_ids and event["objectId"] not in self.object_ids:
            return False
        if (
            event["action"] == "UPDATE"
            and self.properties
            and event.get("propertyName") not in self.properties
        ):
            return False
        if event["action"].startswith("ASSOCIATION_"):
            wanted = self.associated_object_type_ids
            return self.subscription_type == "ASSOCIATION" and (
                not wanted or event.get("associatedObjectTypeId") in wanted
            )
        if event["action"] == "GDPR_DELETE":
            return self.subscription_type == "GDPR_PRIVACY_DELETION"
        return self.subscription_type == "OBJECT"


@dataclasses.dataclass
class Entry:
    seq: int
    offset: str
    published_ms: int
    events: list[dict[str, Any]]


def journal_event(event: Mapping[str, Any], now: int, portal_id: int, app_id: int) -> dict[str, Any] | None:
    """A bare webhook event (as CRM routes emit it) in the journal's shape; None if it has none."""
    kind_name = str(event.get("subscriptionType", ""))
    obj, _, kind = kind_name.partition(".")
    type_id = str(event.get("objectTypeId") or OBJECT_TYPE_IDS.get(obj, ""))
    if not type_id:
        return None
    if kind == "associationChange":
        action = "ASSOCIATION_REMOVED" if event.get("associationRemoved") else "ASSOCIATION_ADDED"
    else:
        action = _KIND_ACTIONS.get(kind, "")
    if not action:
        return None
    out: dict[str, Any] = {
        "portalId": portal_id, "appId": app_id, "occurredAt": int(event.get("occurredAt") or now),
        "objectTypeId": type_id, "objectId": int(event["objectId"]), "action": action,
        "changeSource": event.get("changeSource", "API"),
        # The webhook name too, so a client can reuse its webhook handling.
        "subscriptionType": kind_name,
    }  # fmt: skip
    for key in (
        "propertyName",
        "propertyValue",
        "primaryObjectId",
        "mergedObjectIds",
        "newObjectId",
        "numberOfPropertiesMoved",
        "associationType",
        "isPrimaryAssociation",
        "fromObjectId",
        "toObjectId",
        "associationRemoved",
        "properties",
    ):
        if key in event:
            out[key] = event[key]
    if action.startswith("ASSOCIATION_"):
        other = str(event.get("associationType", "")).lower().partition("_to_")[2]
        out["associatedObjectId"] = int(event.get("toObjectId") or 0)
        out["associatedObjectTypeId"] = OBJECT_TYPE_IDS.get(other, "")
    return out


class Journal:
    """Entries (one per change that matched a subscription) and subscriptions; thread-safe."""

    def __init__(self, config: SandboxConfig, *, clock: Any = time.time) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._secret = secrets.token_bytes(32)
        self._event_ids = itertools.count(1)
        self.entries: list[Entry] = []
        self.subscriptions: dict[int, Subscription] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}
        self._seq = itertools.count(1)
        self._subscription_ids = itertools.count(1)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def reset(self) -> None:
        with self._lock:
            self.entries.clear()
            self.subscriptions.clear()
            self.snapshots.clear()

    # --- writing --------------------------------------------------------------------------

    def record(self, events: list[dict[str, Any]]) -> None:
        """Offer emitted events; those matching a subscription become one journal entry."""
        now = self.now_ms()
        cfg = self.config
        with self._lock:
            if not self.subscriptions:
                return
            kept = []
            for event in events:
                shaped = journal_event(event, now, cfg.portal_id, cfg.app_id)
                if shaped is None:
                    continue
                for sub in self.subscriptions.values():
                    if sub.matches(shaped, cfg.portal_id):
                        kept.append({**shaped, "eventId": next(self._event_ids), "subscriptionId": sub.id})
            if kept:
                self._append(kept, now)

    def append(self, events: list[dict[str, Any]]) -> None:
        """Write events as they are (snapshots), bypassing subscriptions."""
        with self._lock:
            self._append([{**e, "eventId": next(self._event_ids)} for e in events], self.now_ms())

    def _append(self, events: list[dict[str, Any]], now: int) -> None:
        self._purge(now)
        self.entries.append(Entry(next(self._seq), str(uuid.uuid4()), now, events))
        if len(self.entries) > MAX_ENTRIES:
            del self.entries[0]

    def _purge(self, now: int) -> None:
        horizon = now - int(self.config.journal_retention_s * 1000)
        drop = 0
        while drop < len(self.entries) and self.entries[drop].published_ms < horizon:
            drop += 1
        if drop:
            del self.entries[:drop]

    def age(self, seconds: float) -> None:
        """Move every entry ``seconds`` into the past (tests of retention)."""
        with self._lock:
            for entry in self.entries:
                entry.published_ms -= int(seconds * 1000)

    # --- reading --------------------------------------------------------------------------

    def earliest(self, count: int = 1) -> list[Entry]:
        with self._lock:
            self._purge(self.now_ms())
            return self.entries[:count]

    def latest(self, count: int = 1) -> list[Entry]:
        with self._lock:
            self._purge(self.now_ms())
            return self.entries[-count:] if self.entries else []

    def after(self, offset: str) -> Entry | None:
        """The entry after ``offset``; None when it is the newest. KeyError when gone or unknown."""
        with self._lock:
            self._purge(self.now_ms())
            for position, entry in enumerate(self.entries):
                if entry.offset == offset:
                    return self.entries[position + 1] if position + 1 < len(self.entries) else None
            raise KeyError(offset)

    def find(self, offset: str) -> Entry | None:
        with self._lock:
            self._purge(self.now_ms())
            return next((e for e in self.entries if e.offset == offset), None)

    # --- download URLs --------------------------------------------------------------------

    def sign(self, offset: str, expires_ms: int) -> str:
        return hmac.new(self._secret, f"{offset}:{expires_ms}".encode(), hashlib.sha256).hexdigest()

    def pointer(self, entry: Entry, base_url: str) -> dict[str, Any]:
        """``{currentOffset, expiresAt, url}``: what the journal endpoints answer for an entry."""
        expires = self.now_ms() + int(self.config.journal_url_ttl_s * 1000)
        url = (
            f"{base_url.rstrip('/')}/_journal-files/{entry.offset}?expires={expires}&signature="
            + self.sign(entry.offset, expires)
        )
        return {"currentOffset": entry.offset, "expiresAt": iso(expires), "url": url}

    # --- subscriptions --------------------------------------------------------------------

    def upsert(self, body: dict[str, Any]) -> Subscription:
        """Create or update (same type, portal and object type) a subscription; ValueError when invalid."""
        sub_type = body.get("subscriptionType", "OBJECT")
        if sub_type not in SUBSCRIPTION_TYPES:
            raise ValueError(f"subscriptionType must be one of {', '.join(SUBSCRIPTION_TYPES)}")
        portal_id = body.get("portalId")
        if not isinstance(portal_id, int) or isinstance(portal_id, bool):
            raise ValueError("portalId is required and must be a number")
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions or any(a not in ACTIONS for a in actions):
            raise ValueError(f"actions must be a non-empty list of {', '.join(ACTIONS)}")
        object_type_id = body.get("objectTypeId")
        if not isinstance(object_type_id, str) or not object_type_id:
            raise ValueError("objectTypeId is required, e.g. 0-1 for contacts")
        resolved = resolve_type(object_type_id)
        if resolved is not None:
            object_type_id = OBJECT_TYPE_IDS[
                {"contacts": "contact", "companies": "company", "deals": "deal"}[resolved]
            ]
        lists = {}
        for key in ("properties", "objectIds", "associatedObjectTypeIds"):
            value = body.get(key)
            if value is not None and not isinstance(value, list):
                raise ValueError(f"{key} must be a list")
            lists[key] = value or None
        object_ids = [int(i) for i in lists["objectIds"]] if lists["objectIds"] else None
        now = self.now_ms()
        with self._lock:
            for sub in self.subscriptions.values():
                if (sub.subscription_type, sub.portal_id, sub.object_type_id) == (
                    sub_type,
                    portal_id,
                    object_type_id,
                ):
                    sub.actions, sub.properties, sub.object_ids = (
                        list(actions),
                        lists["properties"],
                        object_ids,
                    )
                    sub.associated_object_type_ids = lists["associatedObjectTypeIds"]
                    sub.updated_at = now
                    return sub
            sub = Subscription(
                next(self._subscription_ids),
                sub_type,
                object_type_id,
                portal_id,
                list(actions),
                lists["properties"],
                object_ids,
                lists["associatedObjectTypeIds"],
                now,
                now,
            )
            self.subscriptions[sub.id] = sub
            return sub

    def delete(self, subscription_id: int) -> bool:
        with self._lock:
            return self.subscriptions.pop(subscription_id, None) is not None


# ------------------------------------------------------------------------------------------ routes


def _journal(request: Request) -> Journal:
    journal: Journal = sandbox_state(request).journal
    return journal


def _check_version(request: Request) -> None:
    version = request.path_params.get("version")
    if version is not None and version not in JOURNAL_VERSIONS:
        raise SandboxHTTPError(404, msg.crm_error(msg.UNKNOWN_PATH, msg.OBJECT_NOT_FOUND))


def _portal_filter(request: Request) -> bool:
    """False when ``installPortalId`` names another portal (nothing of it is in this journal)."""
    raw = request.query_params.get("installPortalId")
    if raw in (None, ""):
        return True
    try:
        return int(raw) == sandbox_state(request).config.portal_id
    except ValueError:
        raise bad_request("installPortalId must be a number") from None


def _pointer_response(request: Request, entries: list[Entry]) -> Response:
    if not entries or not _portal_filter(request):
        return Response(status_code=204)
    return JSONResponse(_journal(request).pointer(entries[0], str(request.base_url)))


async def earliest(request: Request) -> Response:
    _check_version(request)
    authorize(request, _scopes(JOURNAL_READ))
    return _pointer_response(request, _journal(request).earliest())


async def latest(request: Request) -> Response:
    _check_version(request)
    authorize(request, _scopes(JOURNAL_READ))
    return _pointer_response(request, _journal(request).latest())


async def next_entry(request: Request) -> Response:
    _check_version(request)
    authorize(request, _scopes(JOURNAL_READ))
    offset = request.path_params["offset"]
    try:
        entry = _journal(request).after(offset)
    except KeyError:
        raise SandboxHTTPError(
            404,
            msg.crm_error(
                f"Journal offset {offset} has expired or does not exist.",
                msg.OBJECT_NOT_FOUND,
                context={"offset": [offset]},
            ),
        ) from None
    return _pointer_response(request, [entry] if entry is not None else [])


def _count(request: Request) -> int:
    try:
        count = int(request.path_params["count"])
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_BATCH_COUNT:
        raise bad_request(f"count must be between 1 and {MAX_BATCH_COUNT}")
    return count


def _batch(request: Request, entries: list[Entry], started: int) -> Response:
    journal = _journal(request)
    if not _portal_filter(request):
        entries = []
    base = str(request.base_url)
    return JSONResponse(
        {
            "status": "COMPLETE",
            "results": [journal.pointer(e, base) for e in entries],
            "startedAt": iso(started),
            "completedAt": iso(journal.now_ms()),
        }
    )


async def batch_earliest(request: Request) -> Response:
    _check_version(request)
    authorize(request, _scopes(JOURNAL_READ))
    started = _journal(request).now_ms()
    return _batch(request, _journal(request).earliest(_count(request)), started)


async def batch_latest(request: Request) -> Response:
    _check_version(request)
    authorize(request, _scopes(JOURNAL_READ))
    started = _journal(request).now_ms()
    return _batch(request, _journal(request).latest(_count(request)), started)


async def download(request: Request) -> Response:
    """The entry's JSON file at its pre-signed URL: no token, but the signature and expiry count."""
    journal = _journal(request)
    offset = request.path_params["offset"]
    try:
        expires = int(request.query_params.get("expires", ""))
    except ValueError:
        expires = 0
    signature = request.query_params.get("signature", "")
    if not hmac.compare_digest(signature, journal.sign(offset, expires)) or expires < journal.now_ms():
        return JSONResponse(
            {"message": "Request has expired or its signature does not match."}, status_code=403
        )
    entry = journal.find(offset)
    if entry is None:
        return JSONResponse({"message": "The journal entry no longer exists."}, status_code=404)
    return JSONResponse(
        {
            "offset": entry.offset,
            "publishedAt": iso(entry.published_ms),
            "portalId": sandbox_state(request).config.portal_id,
            "journalEvents": entry.events,
        }
    )


async def list_subscriptions(request: Request) -> Response:
    _check_version(request)
    authorize(request, _scopes(SUBSCRIPTIONS_READ, SUBSCRIPTIONS_WRITE))
    state = sandbox_state(request)
    portal = request.query_params.get("portalId")
    subs = [s for s in state.journal.subscriptions.values() if portal in (None, "", str(s.portal_id))]
    return JSONResponse({"results": [s.to_wire(state.config.app_id, state.config.user_id) for s in subs]})


async def create_subscription(request: Request) -> Response:
    _check_version(request)
    authorize(request, _scopes(SUBSCRIPTIONS_WRITE))
    state = sandbox_state(request)
    try:
        sub = state.journal.upsert(await read_json(request))
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return JSONResponse(sub.to_wire(state.config.app_id, state.config.user_id))


async def delete_subscription(request: Request) -> Response:
    _check_version(request)
    authorize(request, _scopes(SUBSCRIPTIONS_WRITE))
    try:
        found = _journal(request).delete(int(request.path_params["subscriptionId"]))
    except ValueError:
        found = False
    if not found:
        raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
    return Response(status_code=204)


async def create_snapshots(request: Request) -> Response:
    """Write each requested object's properties to the journal as a SNAPSHOT event."""
    _check_version(request)
    authorize(request, _scopes(SNAPSHOTS_WRITE))
    state = sandbox_state(request)
    body = await read_json(request)
    wanted = body.get("snapshotRequests")
    if not isinstance(wanted, list) or not wanted:
        raise bad_request("snapshotRequests must be a non-empty list")
    journal = state.journal
    now = journal.now_ms()
    results, events = [], []
    with state.lock:
        for item in wanted:
            item = item if isinstance(item, dict) else {}
            status_id = str(uuid.uuid4())
            object_type = resolve_type(str(item.get("objectTypeId", "")))
            record = state.objects.find(object_type, str(item.get("objectId"))) if object_type else None
            ok = record is not None and item.get("portalId") == state.config.portal_id
            if ok and object_type is not None and record is not None:
                names = state.objects.defined_names(
                    object_type, [str(p) for p in item.get("properties") or []]
                )
                events.append({
                    "portalId": state.config.portal_id, "appId": state.config.app_id, "occurredAt": now,
                    "objectTypeId": str(item["objectTypeId"]), "objectId": record.id, "action": "SNAPSHOT",
                    "changeSource": "API", "snapshotStatusId": status_id,
                    "properties": {n: state.objects.value(object_type, record, n) for n in names},
                })  # fmt: skip
            status = {
                "snapshotStatusId": status_id,
                "status": "SUCCESS" if ok else "FAILED",
                "objectId": item.get("objectId"),
                "objectTypeId": item.get("objectTypeId"),
                "portalId": item.get("portalId"),
                "createdAt": iso(now),
                "updatedAt": iso(now),
            }
            journal.snapshots[status_id] = status
            results.append(
                {
                    "snapshotStatusId": status_id,
                    "objectId": item.get("objectId"),
                    "objectTypeId": item.get("objectTypeId"),
                    "portalId": item.get("portalId"),
                }
            )
    if events:
        journal.append(events)
    return JSONResponse({"results": results})


async def snapshot_status(request: Request) -> Response:
    _check_version(request)
    authorize(request, _scopes(SNAPSHOTS_READ, SNAPSHOTS_WRITE))
    status = _journal(request).snapshots.get(request.path_params["statusId"])
    if status is None:
        raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
    return JSONResponse(status)


async def age_journal(request: Request) -> Response:
    """Admin: ``{"seconds": n}`` moves every entry n seconds back (past retention if n is large)."""
    body = await read_json(request)
    seconds = body.get("seconds")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        raise bad_request(msg.ADMIN_UNKNOWN_SETTING.format(detail="seconds must be a number, 0 or more"))
    journal = _journal(request)
    journal.age(float(seconds))
    return JSONResponse({"entries": len(journal.earliest(MAX_ENTRIES))})


async def dump_journal(request: Request) -> Response:
    """Admin: every entry still in retention, with its events."""
    entries = _journal(request).earliest(MAX_ENTRIES)
    return JSONResponse(
        {
            "results": [
                {"offset": e.offset, "publishedAt": iso(e.published_ms), "events": e.events} for e in entries
            ]
        }
    )


def routes() -> list[BaseRoute]:
    table: list[BaseRoute] = []
    for journal_path in (
        "/webhooks-journal/journal/{version}",
        "/webhooks-journal/journal-local/{version}",
        "/webhooks/v4/journal",
    ):
        table += [
            Route(journal_path + "/earliest", earliest, methods=["GET"]),
            Route(journal_path + "/latest", latest, methods=["GET"]),
            Route(journal_path + "/offset/{offset}/next", next_entry, methods=["GET"]),
            Route(journal_path + "/batch/earliest/{count}", batch_earliest, methods=["GET"]),
            Route(journal_path + "/batch/latest/{count}", batch_latest, methods=["GET"]),
        ]
    for subs_path in ("/webhooks-journal/subscriptions/{version}", "/webhooks/v4/subscriptions"):
        table += [
            Route(subs_path, list_subscriptions, methods=["GET"]),
            Route(subs_path, create_subscription, methods=["POST"]),
            Route(subs_path + "/{subscriptionId}", delete_subscription, methods=["DELETE"]),
        ]
    for snap_path in ("/webhooks-journal/snapshots/{version}/crm", "/webhooks/v4/snapshots/crm"):
        table += [
            Route(snap_path, create_snapshots, methods=["POST"]),
            Route(snap_path + "/status/{statusId}", snapshot_status, methods=["GET"]),
        ]
    table += [
        Route("/_journal-files/{offset}", download, methods=["GET"]),
        Route("/_sandbox/journal", dump_journal, methods=["GET"]),
        Route("/_sandbox/journal/age", age_journal, methods=["POST"]),
    ]
    return table
