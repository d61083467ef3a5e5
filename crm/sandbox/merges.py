"""Merges, GDPR deletion, restore from the recycle bin, and last-modified stamping.

Facts and sources: docs/JOURNAL_AND_LIMITS_API.md §2-§4.

- ``POST /crm/v3/objects/{contacts|companies|deals}/merge`` (and the date-versioned twins)
  with ``{primaryObjectId, objectIdToMerge}``. Contacts and companies merge into a *new*
  record with a new id (HubSpot's current behaviour, ``config.merge_new_id``); deals keep the
  primary's id. The primary's values win, the other fills the gaps; every association of both
  moves to the result (the secondary's primary labels only where the result has none); the
  merged-away ids leave the portal (not even archived) and list in the result's
  ``hs_merged_object_ids``. A single GET or PATCH of a merged-away id answers with the result;
  batch calls do not follow it. Webhook ``{object}.merge`` carries ``primaryObjectId``,
  ``mergedObjectIds``, ``newObjectId`` and ``numberOfPropertiesMoved``.
- ``POST /crm/v3/objects/contacts/gdpr-delete`` with ``{objectId, idProperty?}``: the contact
  and its associations are gone for good (no recycle bin), its email is blocklisted, and
  ``contact.privacyDeletion`` fires. An unknown email is blocklisted all the same (204).
- Restore has no public API; the admin route restores as the UI's recycle bin does (within
  ``config.recycle_bin_days``), bumps last-modified and fires ``{object}.restore``.
- ``POST /_sandbox/stamp`` gives many records one ``hs_lastmodifieddate`` millisecond, to
  test paging past search's 10,000 cap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox import messages as msg
from crm.sandbox.associations import DEFAULT_TYPES, PRIMARY_TYPES, change_events
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.objects.models import Record
from crm.sandbox.objects.routes import write_scopes
from crm.sandbox.objects.types import (
    DEFAULT_PROPERTIES,
    LAST_MODIFIED,
    SINGULAR,
    now_ms,
    parse_time,
    resolve_type,
)
from crm.sandbox.wire import authorize, bad_request, read_json, sandbox_state, versioned

if TYPE_CHECKING:
    from crm.sandbox.state import SandboxState

MERGED_IDS = "hs_merged_object_ids"
NEW_ID_TYPES = ("contacts", "companies")
Events = list[dict[str, Any]]


def _not_found(ident: object) -> SandboxHTTPError:
    return SandboxHTTPError(404, msg.crm_error(f"Object {ident} not found.", msg.OBJECT_NOT_FOUND))


def _ids(value: str | None) -> list[int]:
    return [int(part) for part in (value or "").split(";") if part.strip().isdigit()]


def merge_records(
    state: SandboxState, object_type: str, primary_ident: Any, other_ident: Any, source: str
) -> tuple[Record, Events]:
    """Merge ``other`` into ``primary``; returns the resulting record and the events to emit.

    Callers hold ``state.lock``. Raises SandboxHTTPError: 400 for a bad body or the same id
    twice, 404 when either record is not a live record of ``object_type``.
    """
    objects = state.objects
    if primary_ident in (None, "") or other_ident in (None, ""):
        raise bad_request("primaryObjectId and objectIdToMerge are both required.")
    primary = objects.find(object_type, objects.merge_target(object_type, str(primary_ident)))
    other = objects.find(object_type, objects.merge_target(object_type, str(other_ident)))
    if primary is None:
        raise _not_found(primary_ident)
    if other is None:
        raise _not_found(other_ident)
    if primary.id == other.id:
        raise bad_request("A record cannot be merged into itself.")
    store = objects.types[object_type]
    values: dict[str, str | None] = {}
    moved = 0
    for name in store.columns:
        if name == MERGED_IDS:
            continue
        mine, theirs = store.raw(primary, name), store.raw(other, name)
        if mine is None and theirs is not None:
            moved += 1
        values[name] = mine if mine is not None else theirs
    new_id = object_type in NEW_ID_TYPES and state.config.merge_new_id
    gone = [primary, other] if new_id else [other]
    merged = sorted(
        {*_ids(store.raw(primary, MERGED_IDS)), *_ids(store.raw(other, MERGED_IDS)), *(r.id for r in gone)}
    )
    values[MERGED_IDS] = ";".join(str(i) for i in merged)
    links = _take_links(state, object_type, gone, primary)
    now = now_ms()
    for record in gone:
        objects.remove(object_type, record)
    if new_id:
        winner = objects.create(
            object_type, {k: v for k, v in values.items() if v is not None}, now, created=primary.created
        )
    else:
        winner = primary
        objects.update(object_type, primary, values, now)
        winner.updated = now
    for record in gone:
        objects.merged_into[object_type][record.id] = winner.id
    events: Events = []
    for to_type, to_id, type_ids in links:
        if not objects.types[to_type].records.get(to_id):
            continue
        added = objects.associations.add(object_type, winner.id, to_type, to_id, type_ids)
        events += change_events(object_type, winner.id, to_type, to_id, added, removed=False, source=source)
    events.insert(0, {
        "subscriptionType": f"{SINGULAR[object_type]}.merge", "objectId": winner.id, "changeSource": source,
        "primaryObjectId": primary.id, "mergedObjectIds": [other.id], "newObjectId": winner.id,
        "numberOfPropertiesMoved": moved,
    })  # fmt: skip
    return winner, events


def _take_links(
    state: SandboxState, object_type: str, gone: list[Record], primary: Record
) -> list[tuple[str, int, list[int]]]:
    """Every association of the merged-away records, detached; the primary's come first.

    The secondary's primary labels are dropped where the primary already has one, as
    HubSpot's merge keeps the primary record's primary associations.
    """
    assoc = state.objects.associations
    links: list[tuple[str, int, list[int]]] = []
    ordered = sorted(gone, key=lambda r: r.id != primary.id)
    for to_type in state.objects.types:
        if (object_type, to_type) not in DEFAULT_TYPES:
            continue
        has_primary = any(
            set(t) & PRIMARY_TYPES for t in assoc.targets(object_type, primary.id, to_type).values()
        )
        for record in ordered:
            for to_id, type_ids in list(assoc.targets(object_type, record.id, to_type).items()):
                kept = list(type_ids)
                if record.id != primary.id and has_primary:
                    kept = [t for t in kept if t not in PRIMARY_TYPES]
                links.append((to_type, to_id, kept))
                assoc.remove(object_type, record.id, to_type, to_id)
    return links


def gdpr_delete(state: SandboxState, ident: str, id_property: str | None, source: str) -> Events:
    """Delete a contact for good; callers hold ``state.lock``. 404 unless the id is an email."""
    objects = state.objects
    record = objects.find("contacts", ident, id_property) or objects.find(
        "contacts", ident, id_property, archived=True
    )
    if record is None:
        if id_property == "email":
            objects.blocked_emails.add(ident.strip().lower())
            return []
        raise _not_found(ident)
    email = objects.types["contacts"].raw(record, "email")
    if email:
        objects.blocked_emails.add(email.strip().lower())
    for to_type in objects.types:
        if ("contacts", to_type) in DEFAULT_TYPES:
            for to_id in list(objects.associations.targets("contacts", record.id, to_type)):
                objects.associations.remove("contacts", record.id, to_type, to_id)
    objects.remove("contacts", record)
    return [{"subscriptionType": "contact.privacyDeletion", "objectId": record.id, "changeSource": source}]


def restore(state: SandboxState, object_type: str, ident: str, source: str) -> tuple[Record, Events]:
    """Bring an archived record back from the recycle bin; callers hold ``state.lock``."""
    objects = state.objects
    record = objects.find(object_type, ident, archived=True)
    now = now_ms()
    if record is None or record.archived_at is None:
        raise _not_found(ident)
    if now - record.archived_at > state.config.recycle_bin_days * 86_400_000:
        raise _not_found(ident)
    store = objects.types[object_type]
    for name in objects.key_names(object_type):
        value = store.raw(record, name)
        owner = objects.key_owner(object_type, name, value) if value else None
        if owner is not None and not (object_type == "companies" and name == "domain"):
            raise SandboxHTTPError(
                409,
                msg.crm_error(f"Cannot restore: {name} {value} now belongs to record {owner}.", msg.CONFLICT),
            )
    objects.unarchive(object_type, record, now)
    return record, [
        {
            "subscriptionType": f"{SINGULAR[object_type]}.restore",
            "objectId": record.id,
            "changeSource": source,
        }
    ]


# ------------------------------------------------------------------------------------ CRM routes


def _object_type(request: Request, allowed: tuple[str, ...] | None = None) -> str:
    object_type = resolve_type(str(request.path_params.get("objectType") or ""))
    if object_type is None or (allowed is not None and object_type not in allowed):
        raise bad_request(msg.UNKNOWN_OBJECT_TYPE.format(name=request.path_params.get("objectType")))
    return object_type


def _wire(state: SandboxState, object_type: str, record: Record) -> dict[str, Any]:
    names = state.objects.returned_names(object_type, [*DEFAULT_PROPERTIES[object_type], MERGED_IDS])
    return state.objects.to_wire(object_type, record, names)


async def merge(request: Request) -> Response:
    object_type = _object_type(request)
    authorize(request, write_scopes(object_type))
    state = sandbox_state(request)
    body = await read_json(request)
    with state.lock:
        winner, events = merge_records(
            state, object_type, body.get("primaryObjectId"), body.get("objectIdToMerge"), "API"
        )
        result = _wire(state, object_type, winner)
    state.webhooks.emit(events)
    return JSONResponse(result)


async def gdpr(request: Request) -> Response:
    authorize(request, write_scopes("contacts"))
    state = sandbox_state(request)
    body = await read_json(request)
    ident, id_property = body.get("objectId"), body.get("idProperty")
    if not isinstance(ident, (str, int)) or isinstance(ident, bool) or str(ident) == "":
        raise bad_request("objectId is required.")
    if id_property not in (None, "", "hs_object_id", "email"):
        raise bad_request(f"idProperty must be email or hs_object_id, not {id_property}.")
    with state.lock:
        events = gdpr_delete(state, str(ident), id_property or None, "API")
    state.webhooks.emit(events)
    return Response(status_code=204)


# ---------------------------------------------------------------------------------- admin routes


async def admin_merge(request: Request) -> Response:
    """Merge as a person in HubSpot's UI would (changeSource CRM_UI)."""
    state = sandbox_state(request)
    body = await read_json(request)
    object_type = resolve_type(str(body.get("objectType", "")))
    if object_type is None:
        raise bad_request(msg.UNKNOWN_OBJECT_TYPE.format(name=body.get("objectType")))
    with state.lock:
        winner, events = merge_records(
            state, object_type, body.get("primaryObjectId"), body.get("objectIdToMerge"), "CRM_UI"
        )
        result = state.objects.describe(object_type, winner)
    state.webhooks.emit(events)
    return JSONResponse(result)


async def admin_gdpr(request: Request) -> Response:
    state = sandbox_state(request)
    body = await read_json(request)
    with state.lock:
        events = gdpr_delete(state, str(body.get("objectId", "")), body.get("idProperty") or None, "CRM_UI")
    state.webhooks.emit(events)
    return Response(status_code=204)


async def admin_restore(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    with state.lock:
        record, events = restore(state, object_type, request.path_params["objectId"], "CRM_UI")
        result = state.objects.describe(object_type, record)
    state.webhooks.emit(events)
    return JSONResponse(result)


async def admin_stamp(request: Request) -> Response:
    """``{objectType, timestamp, ids? | count?}``: give records one last-modified millisecond.

    ``timestamp`` is epoch ms or ISO-8601; ``ids`` names the records, else the first ``count``
    live ones by id. No webhooks fire: this stands in for a bulk import done long ago.
    """
    state = sandbox_state(request)
    body = await read_json(request)
    object_type = resolve_type(str(body.get("objectType", "")))
    if object_type is None:
        raise bad_request(msg.UNKNOWN_OBJECT_TYPE.format(name=body.get("objectType")))
    stamp = parse_time(str(body.get("timestamp", "")))
    if stamp is None:
        raise bad_request("timestamp must be epoch milliseconds or ISO-8601.")
    with state.lock:
        store = state.objects.types[object_type]
        if body.get("ids") is not None:
            maybe = [store.records.get(int(i)) for i in body["ids"] if str(i).isdigit()]
            found = [r for r in maybe if r is not None]
        else:
            count = body.get("count")
            if not isinstance(count, int) or count < 0:
                raise bad_request("give ids or a whole-number count.")
            found = [r for r in (store.records[i] for i in store.order) if r.archived_at is None][:count]
        for record in found:
            record.updated = stamp
            record.stale = None
        state.objects.generation += 1
        state.objects.search_cache.clear()
    return JSONResponse({"stamped": len(found), "property": LAST_MODIFIED[object_type], "timestamp": stamp})


def routes() -> list[BaseRoute]:
    table: list[BaseRoute] = []
    for base in versioned("/crm/v3/objects/{objectType}", "/crm/objects/{version}/{{objectType}}"):
        table.append(Route(base + "/merge", merge, methods=["POST"]))
    for base in versioned("/crm/v3/objects/contacts", "/crm/objects/{version}/contacts"):
        table.append(Route(base + "/gdpr-delete", gdpr, methods=["POST"]))
    table += [
        Route("/_sandbox/merge", admin_merge, methods=["POST"]),
        Route("/_sandbox/gdpr-delete", admin_gdpr, methods=["POST"]),
        Route("/_sandbox/objects/{objectType}/{objectId}/restore", admin_restore, methods=["POST"]),
        Route("/_sandbox/stamp", admin_stamp, methods=["POST"]),
    ]
    return table
