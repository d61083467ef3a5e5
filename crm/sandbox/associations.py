"""Associations between records (HubSpot-defined types only) and the v4 associations API.

Batch: ``POST /crm/v4/associations/{from}/{to}/batch/{read,create,associate/default,archive,labels/archive}``
and ``GET …/labels``; single record: ``GET /crm/v4/objects/{t}/{id}/associations/{toType}``,
``PUT …/associations/default/{toType}/{toId}``, ``PUT|DELETE …/associations/{toType}/{toId}``.
Also under ``/crm/associations/{version}/…`` and ``/crm/objects/{version}/…``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox import messages as msg
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.objects.types import (
    ENGAGEMENT_TYPES,
    READ_SCOPES,
    SINGULAR,
    TYPE_IDS,
    WRITE_SCOPES,
    iso,
    now_ms,
    resolve_type,
)
from crm.sandbox.wire import authorize, bad_request, read_json, read_json_any, sandbox_state, versioned

# (from, to) -> (unlabeled type id, primary type id or None); HUBSPOT_API.md §6 and
# docs/INTERACTIONS_API.md §4 for tickets and engagements.
DEFAULT_TYPES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("contacts", "companies"): (279, 1),
    ("companies", "contacts"): (280, 2),
    ("deals", "contacts"): (3, None),
    ("contacts", "deals"): (4, None),
    ("deals", "companies"): (341, 5),
    ("companies", "deals"): (342, 6),
    ("tickets", "contacts"): (16, None),
    ("contacts", "tickets"): (15, None),
    ("tickets", "companies"): (339, 26),
    ("companies", "tickets"): (340, 25),
    ("tickets", "deals"): (28, None),
    ("deals", "tickets"): (27, None),
}
# Engagement -> (contact, company, deal, ticket) type ids; the reverse direction is one less.
_ENGAGEMENT_IDS = {
    "notes": (202, 190, 214, 228),
    "calls": (194, 182, 206, 220),
    "emails": (198, 186, 210, 224),
    "meetings": (200, 188, 212, 226),
    "tasks": (204, 192, 216, 230),
}
for _engagement, _ids in _ENGAGEMENT_IDS.items():
    for _other, _forward in zip(("contacts", "companies", "deals", "tickets"), _ids, strict=True):
        DEFAULT_TYPES[(_engagement, _other)] = (_forward, None)
        DEFAULT_TYPES[(_other, _engagement)] = (_forward - 1, None)
REVERSE: dict[int, int] = {}
for (_from, _to), _types in DEFAULT_TYPES.items():
    _back = DEFAULT_TYPES[(_to, _from)]
    for _mine, _theirs in zip(_types, _back, strict=True):
        if _mine is not None and _theirs is not None:
            REVERSE[_mine] = _theirs
PRIMARY_TYPES = frozenset({1, 2, 5, 6, 25, 26})
MAX_READ_INPUTS = 1000
MAX_CREATE_INPUTS = 2000
_TUPLES: dict[tuple[int, ...], tuple[int, ...]] = {}


def _shared(type_ids: tuple[int, ...]) -> tuple[int, ...]:
    """One tuple object per distinct type-id set: millions of edges share a handful of tuples."""
    return _TUPLES.setdefault(type_ids, type_ids)


def label_of(type_id: int) -> str | None:
    return "Primary" if type_id in PRIMARY_TYPES else None


def v3_type_name(from_type: str, to_type: str, type_id: int) -> str:
    base = f"{SINGULAR[from_type]}_to_{SINGULAR[to_type]}"
    unlabeled, primary = DEFAULT_TYPES[(from_type, to_type)]
    # v3 names the primary (or only) type plainly and the extra unlabeled one with a suffix.
    return base + "_unlabeled" if type_id == unlabeled and primary is not None else base


class AssociationStore:
    """Edges in both directions: ``edges[(from, to)][from_id]`` holds ``{to_id: (type ids, ...)}``.

    Most records have exactly one association of a kind (a contact's company), so a lone
    edge is stored as the tuple ``(to_id, type_ids)`` and grows into a dict on the second;
    at 200,000 contacts that saves about a hundred megabytes.
    """

    def __init__(self) -> None:
        self.edges: dict[tuple[str, str], dict[int, Any]] = {p: {} for p in DEFAULT_TYPES}
        self.generation = 0

    def targets(self, from_type: str, from_id: int, to_type: str) -> dict[int, tuple[int, ...]]:
        pair = self.edges.get((from_type, to_type))
        row = pair.get(from_id) if pair is not None else None
        if row is None:
            return {}
        if isinstance(row, tuple):
            return {row[0]: row[1]}
        return dict(row)

    def add(self, from_type: str, from_id: int, to_type: str, to_id: int, type_ids: list[int]) -> list[int]:
        """Associate with ``type_ids`` (a primary type brings the unlabeled one); returns new forward ids."""
        unlabeled, primary = DEFAULT_TYPES[(from_type, to_type)]
        wanted = set(type_ids) | {unlabeled}
        if primary is not None and primary in wanted:
            self._demote_primary(from_type, from_id, to_type, keep=to_id)
        current = self.targets(from_type, from_id, to_type).get(to_id, ())
        added = sorted(wanted - set(current))
        if added:
            merged = tuple(sorted(set(current) | wanted))
            self._set(from_type, from_id, to_type, to_id, merged)
            self._set(to_type, to_id, from_type, from_id, tuple(sorted(REVERSE[t] for t in merged)))
        return added

    def _demote_primary(self, from_type: str, from_id: int, to_type: str, *, keep: int) -> None:
        _, primary = DEFAULT_TYPES[(from_type, to_type)]
        for other, type_ids in self.targets(from_type, from_id, to_type).items():
            if other != keep and primary in type_ids:
                self.remove(from_type, from_id, to_type, other, [t for t in type_ids if t == primary])

    def remove(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_ids: list[int] | None = None
    ) -> list[int]:
        """Drop ``type_ids`` (all when None; the unlabeled type takes the rest with it); returns removed ids."""
        current = self.targets(from_type, from_id, to_type).get(to_id)
        if not current:
            return []
        unlabeled, _ = DEFAULT_TYPES[(from_type, to_type)]
        doomed = set(current) if type_ids is None or unlabeled in type_ids else set(type_ids) & set(current)
        remaining = tuple(t for t in current if t not in doomed)
        self._set(from_type, from_id, to_type, to_id, remaining)
        self._set(to_type, to_id, from_type, from_id, tuple(sorted(REVERSE[t] for t in remaining)))
        return sorted(doomed)

    def _set(self, from_type: str, from_id: int, to_type: str, to_id: int, type_ids: tuple[int, ...]) -> None:
        self.generation += 1
        pair = self.edges[(from_type, to_type)]
        row = pair.get(from_id)
        if isinstance(row, tuple):
            row = {row[0]: row[1]}
        if type_ids:
            shared = _shared(type_ids)
            if row is None or (len(row) == 1 and to_id in row):
                pair[from_id] = (to_id, shared)
                return
            row[to_id] = shared
            pair[from_id] = row
        elif row is not None:
            row.pop(to_id, None)
            if not row:
                del pair[from_id]
            elif len(row) == 1:
                ((only, only_types),) = row.items()
                pair[from_id] = (only, only_types)
            else:
                pair[from_id] = row

    def v3_names(self, from_type: str, to_type: str, type_ids: tuple[int, ...]) -> list[str]:
        return [v3_type_name(from_type, to_type, t) for t in type_ids]


def association_event(
    from_type: str,
    from_id: int,
    to_type: str,
    to_id: int,
    type_ids: list[int],
    *,
    removed: bool,
    source: str = "API",
) -> dict[str, Any]:
    """One associationChange webhook event (HUBSPOT_API.md §9.2).

    Engagements have no classic subscription type, so theirs is the generic
    ``object.associationChange`` carrying ``objectTypeId`` (docs/INTERACTIONS_API.md §7).
    """
    engagement = from_type in ENGAGEMENT_TYPES
    event: dict[str, Any] = {
        "subscriptionType": "object.associationChange"
        if engagement
        else f"{SINGULAR[from_type]}.associationChange",
        "objectId": from_id,
        "associationType": f"{SINGULAR[from_type]}_TO_{SINGULAR[to_type]}".upper(),
        "fromObjectId": from_id,
        "toObjectId": to_id,
        "associationRemoved": removed,
        "isPrimaryAssociation": any(t in PRIMARY_TYPES for t in type_ids),
        "changeSource": source,
    }
    if engagement:
        event["objectTypeId"] = TYPE_IDS[from_type]
    return event


def change_events(
    from_type: str,
    from_id: int,
    to_type: str,
    to_id: int,
    type_ids: list[int],
    *,
    removed: bool,
    source: str = "API",
) -> list[dict[str, Any]]:
    """Both directions of one association change, as HubSpot notifies subscribers of either side."""
    if not type_ids:
        return []
    return [
        association_event(from_type, from_id, to_type, to_id, type_ids, removed=removed, source=source),
        association_event(
            to_type, to_id, from_type, from_id, [REVERSE[t] for t in type_ids], removed=removed, source=source
        ),
    ]


def type_specs(type_ids: tuple[int, ...] | list[int]) -> list[dict[str, Any]]:
    return [{"category": "HUBSPOT_DEFINED", "typeId": t, "label": label_of(t)} for t in type_ids]


def parse_types(from_type: str, to_type: str, raw: Any) -> list[int]:
    """Type ids from ``[{associationCategory, associationTypeId}]``; 400 for anything not HubSpot-defined here."""
    allowed = {t for t in DEFAULT_TYPES[(from_type, to_type)] if t is not None}
    if not isinstance(raw, list) or not raw:
        raise bad_request(msg.ASSOCIATION_BAD_TYPE.format(type_id=None, from_=from_type, to=to_type))
    type_ids = []
    for spec in raw:
        type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
        try:
            type_id = int(type_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            type_id = None
        if type_id not in allowed:
            raise bad_request(msg.ASSOCIATION_BAD_TYPE.format(type_id=type_id, from_=from_type, to=to_type))
        type_ids.append(type_id)
    return type_ids


# ---------------------------------------------------------------------------------------- routes


def _pair(request: Request, *, write: bool) -> tuple[str, str]:
    names = (request.path_params["fromObjectType"], request.path_params["toObjectType"])
    from_type, to_type = resolve_type(names[0]), resolve_type(names[1])
    if from_type is None or to_type is None:
        raise bad_request(msg.UNKNOWN_OBJECT_TYPE.format(name=names[0] if from_type is None else names[1]))
    _check_scopes(request, from_type, to_type, write=write)
    if (from_type, to_type) not in DEFAULT_TYPES:
        raise bad_request(msg.ASSOCIATION_BAD_TYPE.format(type_id=None, from_=from_type, to=to_type))
    return from_type, to_type


def _check_scopes(request: Request, from_type: str, to_type: str, *, write: bool) -> None:
    ctx = authorize(request)
    auth = sandbox_state(request).auth
    table = WRITE_SCOPES if write else READ_SCOPES
    for object_type in dict.fromkeys((from_type, to_type)):
        auth.require_scopes(ctx, any_of=list(table[object_type]))


def _inputs(body: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad_request(msg.NO_INPUTS)
    if len(inputs) > limit:
        raise bad_request(msg.TOO_MANY_INPUTS.format(limit=limit, count=len(inputs)))
    return [i if isinstance(i, dict) else {} for i in inputs]


def _ident(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    return "" if value is None else str(value)


def _envelope(started: int, results: list[Any], errors: list[dict[str, Any]]) -> tuple[dict[str, Any], int]:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    body["startedAt"] = iso(started)
    body["completedAt"] = iso(now_ms())
    return body, 207 if errors else 200


def _batch_error(
    message: str, category: str, context: dict[str, list[str]], sub_category: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }
    if sub_category:
        error["subCategory"] = sub_category
    return error


def _page_of(
    targets: dict[int, tuple[int, ...]], after: str | None, size: int
) -> tuple[list[dict[str, Any]], str | None]:
    ids = list(targets)
    start = 0
    if after:
        try:
            cursor = int(after)
        except ValueError:
            raise bad_request(msg.INVALID_AFTER) from None
        start = next((i for i, to_id in enumerate(ids) if to_id >= cursor), len(ids))
    chunk = ids[start : start + size]
    rows = [{"toObjectId": to_id, "associationTypes": type_specs(targets[to_id])} for to_id in chunk]
    following = str(ids[start + size]) if start + size < len(ids) else None
    return rows, following


async def batch_read(request: Request) -> Response:
    from_type, to_type = _pair(request, write=False)
    state = sandbox_state(request)
    body = await read_json(request)
    inputs = _inputs(body, MAX_READ_INPUTS)
    started = now_ms()
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with state.lock:
        size = state.config.association_page_size
        for item in inputs:
            ident = _ident(item)
            record = state.objects.find(from_type, ident)
            targets = state.objects.live_targets(from_type, record.id, to_type) if record else {}
            if not targets:
                errors.append(
                    _batch_error(
                        msg.NO_ASSOCIATIONS.format(to=SINGULAR[to_type], from_=SINGULAR[from_type], id=ident),
                        msg.OBJECT_NOT_FOUND,
                        {
                            "fromObjectId": [ident],
                            "fromObjectType": [SINGULAR[from_type]],
                            "toObjectType": [SINGULAR[to_type]],
                        },
                        msg.NO_ASSOCIATIONS_SUBCATEGORY,
                    )
                )
                continue
            rows, following = _page_of(targets, item.get("after"), size)
            result: dict[str, Any] = {"from": {"id": ident}, "to": rows}
            if following is not None:
                result["paging"] = {"next": {"after": following}}
            results.append(result)
    payload, status = _envelope(started, results, errors)
    return JSONResponse(payload, status_code=status)


def _pair_result(
    from_type: str, from_id: int, to_type: str, to_id: int, type_ids: tuple[int, ...] | list[int]
) -> dict[str, Any]:
    return {
        "fromObjectTypeId": TYPE_IDS[from_type],
        "fromObjectId": from_id,
        "toObjectTypeId": TYPE_IDS[to_type],
        "toObjectId": to_id,
        "labels": [label for t in type_ids if (label := label_of(t))],
    }


async def batch_create(request: Request) -> Response:
    from_type, to_type = _pair(request, write=True)
    state = sandbox_state(request)
    body = await read_json(request)
    inputs = _inputs(body, MAX_CREATE_INPUTS)
    started = now_ms()
    plans = []
    errors: list[dict[str, Any]] = []
    with state.lock:
        for item in inputs:
            type_ids = parse_types(from_type, to_type, item.get("types"))
            source = state.objects.find(from_type, _ident(item.get("from")))
            target = state.objects.find(to_type, _ident(item.get("to")))
            if source is None or target is None:
                missing = _ident(item.get("from")) if source is None else _ident(item.get("to"))
                errors.append(_batch_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND, {"ids": [missing]}))
                continue
            plans.append((source.id, target.id, type_ids))
        if errors and not plans:
            raise SandboxHTTPError(
                400, msg.crm_error(errors[0]["message"], msg.VALIDATION_ERROR, context=errors[0]["context"])
            )
        events: list[dict[str, Any]] = []
        results = []
        for from_id, to_id, type_ids in plans:
            added = state.objects.associations.add(from_type, from_id, to_type, to_id, type_ids)
            events += change_events(from_type, from_id, to_type, to_id, added, removed=False)
            current = state.objects.associations.targets(from_type, from_id, to_type).get(to_id, ())
            results.append(_pair_result(from_type, from_id, to_type, to_id, current))
    state.webhooks.emit(events)
    payload, _ = _envelope(started, results, errors)
    return JSONResponse(payload, status_code=207 if errors else 201)


async def batch_associate_default(request: Request) -> Response:
    from_type, to_type = _pair(request, write=True)
    state = sandbox_state(request)
    body = await read_json(request)
    inputs = _inputs(body, MAX_CREATE_INPUTS)
    started = now_ms()
    unlabeled, _ = DEFAULT_TYPES[(from_type, to_type)]
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    with state.lock:
        for item in inputs:
            source = state.objects.find(from_type, _ident(item.get("from")))
            target = state.objects.find(to_type, _ident(item.get("to")))
            if source is None or target is None:
                missing = _ident(item.get("from")) if source is None else _ident(item.get("to"))
                errors.append(_batch_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND, {"ids": [missing]}))
                continue
            added = state.objects.associations.add(from_type, source.id, to_type, target.id, [unlabeled])
            events += change_events(from_type, source.id, to_type, target.id, added, removed=False)
            results.append(
                {
                    "from": {"id": str(source.id)},
                    "to": {"id": str(target.id)},
                    "associationSpec": {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": unlabeled,
                    },
                }
            )
    state.webhooks.emit(events)
    payload, status = _envelope(started, results, errors)
    return JSONResponse(payload, status_code=status)


async def batch_archive(request: Request) -> Response:
    from_type, to_type = _pair(request, write=True)
    state = sandbox_state(request)
    body = await read_json(request)
    inputs = _inputs(body, MAX_CREATE_INPUTS)
    events: list[dict[str, Any]] = []
    with state.lock:
        for item in inputs:
            source = state.objects.find(from_type, _ident(item.get("from")))
            if source is None:
                continue
            targets = item.get("to") or []
            for target in targets if isinstance(targets, list) else [targets]:
                try:
                    to_id = int(_ident(target))
                except ValueError:
                    continue
                removed = state.objects.associations.remove(from_type, source.id, to_type, to_id)
                events += change_events(from_type, source.id, to_type, to_id, removed, removed=True)
    state.webhooks.emit(events)
    return Response(status_code=204)


async def batch_archive_labels(request: Request) -> Response:
    from_type, to_type = _pair(request, write=True)
    state = sandbox_state(request)
    body = await read_json(request)
    inputs = _inputs(body, MAX_CREATE_INPUTS)
    events: list[dict[str, Any]] = []
    with state.lock:
        for item in inputs:
            type_ids = parse_types(from_type, to_type, item.get("types"))
            source = state.objects.find(from_type, _ident(item.get("from")))
            try:
                to_id = int(_ident(item.get("to")))
            except ValueError:
                continue
            if source is None:
                continue
            removed = state.objects.associations.remove(from_type, source.id, to_type, to_id, type_ids)
            events += change_events(from_type, source.id, to_type, to_id, removed, removed=True)
    state.webhooks.emit(events)
    return Response(status_code=204)


async def get_labels(request: Request) -> Response:
    from_type, to_type = _pair(request, write=False)
    type_ids = [t for t in DEFAULT_TYPES[(from_type, to_type)] if t is not None]
    return JSONResponse({"results": type_specs(sorted(type_ids))})


def _record_pair(request: Request, *, write: bool) -> tuple[str, str, Any]:
    from_type = resolve_type(request.path_params["objectType"])
    to_type = resolve_type(request.path_params["toObjectType"])
    if from_type is None or to_type is None:
        name = request.path_params["objectType" if from_type is None else "toObjectType"]
        raise bad_request(msg.UNKNOWN_OBJECT_TYPE.format(name=name))
    _check_scopes(request, from_type, to_type, write=write)
    if (from_type, to_type) not in DEFAULT_TYPES:
        raise bad_request(msg.ASSOCIATION_BAD_TYPE.format(type_id=None, from_=from_type, to=to_type))
    state = sandbox_state(request)
    record = state.objects.find(from_type, request.path_params["objectId"])
    if record is None:
        raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
    return from_type, to_type, record


async def get_page(request: Request) -> Response:
    state = sandbox_state(request)
    with state.lock:
        from_type, to_type, record = _record_pair(request, write=False)
        try:
            limit = max(1, min(int(request.query_params.get("limit", 500)), 500))
        except ValueError:
            raise bad_request(msg.INVALID_LIMIT) from None
        targets = state.objects.live_targets(from_type, record.id, to_type)
        rows, following = _page_of(targets, request.query_params.get("after"), limit)
    body: dict[str, Any] = {"results": rows}
    if following is not None:
        body["paging"] = {"next": {"after": following, "link": None}}
    return JSONResponse(body)


def _target(request: Request, to_type: str) -> Any:
    state = sandbox_state(request)
    target = state.objects.find(to_type, request.path_params["toObjectId"])
    if target is None:
        raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
    return target


async def create_default(request: Request) -> Response:
    state = sandbox_state(request)
    started = now_ms()
    with state.lock:
        from_type, to_type, record = _record_pair(request, write=True)
        target = _target(request, to_type)
        unlabeled, _ = DEFAULT_TYPES[(from_type, to_type)]
        added = state.objects.associations.add(from_type, record.id, to_type, target.id, [unlabeled])
    state.webhooks.emit(change_events(from_type, record.id, to_type, target.id, added, removed=False))
    payload, status = _envelope(
        started,
        [
            {
                "from": {"id": str(record.id)},
                "to": {"id": str(target.id)},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": unlabeled},
            }
        ],
        [],
    )
    return JSONResponse(payload, status_code=status)


async def create_labelled(request: Request) -> Response:
    state = sandbox_state(request)
    raw = await read_json_any(request)
    with state.lock:
        from_type, to_type, record = _record_pair(request, write=True)
        target = _target(request, to_type)
        type_ids = parse_types(from_type, to_type, raw)
        added = state.objects.associations.add(from_type, record.id, to_type, target.id, type_ids)
        current = state.objects.associations.targets(from_type, record.id, to_type).get(target.id, ())
    state.webhooks.emit(change_events(from_type, record.id, to_type, target.id, added, removed=False))
    return JSONResponse(_pair_result(from_type, record.id, to_type, target.id, current))


async def archive_one(request: Request) -> Response:
    state = sandbox_state(request)
    with state.lock:
        from_type, to_type, record = _record_pair(request, write=True)
        try:
            to_id = int(request.path_params["toObjectId"])
        except ValueError:
            return Response(status_code=204)
        removed = state.objects.associations.remove(from_type, record.id, to_type, to_id)
    state.webhooks.emit(change_events(from_type, record.id, to_type, to_id, removed, removed=True))
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    table: list[BaseRoute] = []
    for p in versioned("/crm/v4/associations", "/crm/associations/{version}"):
        pair = p + "/{fromObjectType}/{toObjectType}"
        table += [
            Route(pair + "/batch/read", batch_read, methods=["POST"]),
            Route(pair + "/batch/create", batch_create, methods=["POST"]),
            Route(pair + "/batch/associate/default", batch_associate_default, methods=["POST"]),
            Route(pair + "/batch/archive", batch_archive, methods=["POST"]),
            Route(pair + "/batch/labels/archive", batch_archive_labels, methods=["POST"]),
            Route(pair + "/labels", get_labels, methods=["GET"]),
        ]
    for p in versioned("/crm/v4/objects", "/crm/objects/{version}"):
        one = p + "/{objectType}/{objectId}/associations"
        table += [
            Route(one + "/default/{toObjectType}/{toObjectId}", create_default, methods=["PUT"]),
            Route(one + "/{toObjectType}", get_page, methods=["GET"]),
            Route(one + "/{toObjectType}/{toObjectId}", create_labelled, methods=["PUT"]),
            Route(one + "/{toObjectType}/{toObjectId}", archive_one, methods=["DELETE"]),
        ]
    return table
