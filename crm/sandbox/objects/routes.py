"""CRM object routes: list, read, create, update, archive, batch and search.

Served under ``/crm/v3/objects/{objectType}`` and the date-versioned twins
``/crm/objects/{version}/{objectType}``, with the same handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox import messages as msg
from crm.sandbox.associations import DEFAULT_TYPES, change_events
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.objects.models import Record
from crm.sandbox.objects.search import run_search
from crm.sandbox.objects.types import (
    DEFAULT_PROPERTIES,
    EMAIL_CONTENT,
    EMAIL_CONTENT_SCOPE,
    ENGAGEMENT_TYPES,
    READ_SCOPES,
    SINGULAR,
    TYPE_IDS,
    WRITE_SCOPES,
    iso,
    now_ms,
    resolve_type,
)
from crm.sandbox.objects.validation import clean_values, derive_values, missing_required
from crm.sandbox.wire import (
    authorize,
    bad_request,
    query_bool,
    query_int,
    query_list,
    read_json,
    sandbox_state,
    versioned,
)

if TYPE_CHECKING:
    from crm.sandbox.oauth.models import AuthContext
    from crm.sandbox.state import SandboxState

MAX_BATCH = 100
Events = list[dict[str, Any]]


# ------------------------------------------------------------------------------------- helpers


def _object_type(request: Request) -> str:
    object_type = resolve_type(request.path_params["objectType"])
    if object_type is None:
        raise bad_request(msg.UNKNOWN_OBJECT_TYPE.format(name=request.path_params["objectType"]))
    return object_type


def read_scopes(object_type: str) -> list[str]:
    return list(READ_SCOPES[object_type])


def write_scopes(object_type: str) -> list[str]:
    return list(WRITE_SCOPES[object_type])


def _redactor(object_type: str, ctx: AuthContext) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function blanking an email's content when the token lacks ``sales-email-read``.

    HubSpot redacts rather than refuses (docs/INTERACTIONS_API.md §2, Emails); other types pass as they are.
    """
    if object_type != "emails" or EMAIL_CONTENT_SCOPE in ctx.scopes:
        return lambda body: body

    def redact(body: dict[str, Any]) -> dict[str, Any]:
        properties = body.get("properties", {})
        history = body.get("propertiesWithHistory", {})
        for name in EMAIL_CONTENT:
            if name in properties:
                properties[name] = None
            if name in history:
                history[name] = []
        return body

    return redact


def _event_type(object_type: str, kind: str) -> dict[str, Any]:
    """The subscription type of an object event: classic (``ticket.creation``) or, for
    engagements, which have none, the generic ``object.*`` with ``objectTypeId`` (docs/INTERACTIONS_API.md §7)."""
    if object_type in ENGAGEMENT_TYPES:
        return {"subscriptionType": f"object.{kind}", "objectTypeId": TYPE_IDS[object_type]}
    return {"subscriptionType": f"{SINGULAR[object_type]}.{kind}"}


def _not_found() -> SandboxHTTPError:
    return SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))


def _names(request: Request, object_type: str) -> list[str]:
    state = sandbox_state(request)
    wanted = query_list(request, "properties") or list(DEFAULT_PROPERTIES[object_type])
    return state.objects.returned_names(object_type, wanted)


def _response_names(request: Request, object_type: str, given: dict[str, Any]) -> list[str]:
    state = sandbox_state(request)
    return state.objects.returned_names(object_type, list(DEFAULT_PROPERTIES[object_type]) + list(given))


def _id_property(request: Request, object_type: str, name: str | None) -> str | None:
    if not name or name == "hs_object_id":
        return None
    if name not in sandbox_state(request).objects.key_names(object_type):
        raise bad_request(msg.UNKNOWN_ID_PROPERTY.format(name=name))
    return name


def _inputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise bad_request(msg.NO_INPUTS)
    if len(inputs) > MAX_BATCH:
        raise bad_request(msg.TOO_MANY_INPUTS.format(limit=MAX_BATCH, count=len(inputs)))
    return [i if isinstance(i, dict) else {} for i in inputs]


def _envelope(started: int, results: list[Any], errors: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    body["startedAt"] = iso(started)
    body["completedAt"] = iso(now_ms())
    return body


def _batch_error(body: dict[str, Any], **context: list[str]) -> dict[str, Any]:
    """A per-input error of a 207 in the shape of the SDK's StandardError (every field present)."""
    return {
        "status": "error",
        "category": body["category"],
        "message": body["message"],
        "context": {**body.get("context", {}), **context},
        "errors": body.get("errors", []),
        "links": {},
    }


def _emit(request: Request, events: Events) -> None:
    if events:
        sandbox_state(request).webhooks.emit(events)


def _conflict(
    request: Request,
    object_type: str,
    values: dict[str, str | None],
    record_id: int | None,
    claimed: dict[tuple[str, str], int] | None = None,
) -> dict[str, Any] | None:
    """The 409 body when a value of an identifying property belongs to another record."""
    state = sandbox_state(request)
    for name in state.objects.key_names(object_type):
        if object_type == "companies" and name == "domain":
            continue  # Company domains identify records but need not be unique.
        value = values.get(name)
        if not value:
            continue
        owner = state.objects.key_owner(object_type, name, value)
        if owner is None and claimed is not None:
            owner = claimed.get((name, value.lower()))
        if owner is not None and owner != record_id:
            if object_type == "contacts" and name == "email":
                return msg.crm_error(msg.CONTACT_EXISTS.format(id=owner), msg.CONFLICT)
            return msg.crm_error(
                msg.INVALID_ID_PROPERTY_VALUE.format(kind=SINGULAR[object_type], name=name, value=value),
                msg.CONFLICT,
            )
    return None


def _association_plans(request: Request, from_type: str, raw: Any) -> list[tuple[str, int, list[int]]]:
    """Associations given on create, as (to type, to id, type ids); 400 when one is invalid."""
    if not raw:
        return []
    if not isinstance(raw, list):
        raise bad_request(msg.ASSOCIATION_BAD_TYPE.format(type_id=None, from_=from_type, to="?"))
    state = sandbox_state(request)
    plans = []
    for item in raw:
        item = item if isinstance(item, dict) else {}
        to = item.get("to")
        to_ident = str(to.get("id") if isinstance(to, dict) else to)
        type_ids: list[int] = []
        to_type = None
        for spec in item.get("types") or []:
            try:
                type_id = int(spec.get("associationTypeId"))
            except (AttributeError, TypeError, ValueError):
                type_id = -1
            candidates = [p[1] for p, ids in DEFAULT_TYPES.items() if p[0] == from_type and type_id in ids]
            if not candidates or (to_type is not None and candidates[0] != to_type):
                raise bad_request(msg.ASSOCIATION_BAD_TYPE.format(type_id=type_id, from_=from_type, to="?"))
            to_type = candidates[0]
            type_ids.append(type_id)
        if to_type is None:
            raise bad_request(msg.ASSOCIATION_BAD_TYPE.format(type_id=None, from_=from_type, to="?"))
        target = state.objects.find(to_type, to_ident)
        if target is None:
            raise bad_request(msg.ASSOCIATION_TARGET_MISSING.format(to=SINGULAR[to_type], id=to_ident))
        plans.append((to_type, target.id, type_ids))
    return plans


def _prepare_create(
    request: Request,
    object_type: str,
    item: dict[str, Any],
    claimed: dict[tuple[str, str], int] | None = None,
) -> tuple[dict[str, str | None], list[tuple[str, int, list[int]]]]:
    """Validate one create; raises SandboxHTTPError with the status and body HubSpot would send."""
    state = sandbox_state(request)
    values, problems = clean_values(state, object_type, item.get("properties"))
    if problems:
        raise SandboxHTTPError(400, msg.property_errors(problems))
    if object_type == "deals" and not values.get("pipeline"):
        values["pipeline"] = "default"
    derive_values(object_type, values, None)
    missing = missing_required(object_type, values)
    if missing:
        raise bad_request(missing)
    conflict = _conflict(request, object_type, values, None, claimed)
    if conflict:
        raise SandboxHTTPError(409, conflict)
    plans = _association_plans(request, object_type, item.get("associations"))
    return values, plans


def _create(
    request: Request,
    object_type: str,
    values: dict[str, str | None],
    plans: list[tuple[str, int, list[int]]],
    now: int,
    events: Events,
) -> Record:
    state = sandbox_state(request)
    record = state.objects.create(object_type, values, now)
    events.append(
        {
            **_event_type(object_type, "creation"),
            "objectId": record.id,
            "changeSource": "API",
            "changeFlag": "NEW",
        }
    )
    for to_type, to_id, type_ids in plans:
        added = state.objects.associations.add(object_type, record.id, to_type, to_id, type_ids)
        events += change_events(object_type, record.id, to_type, to_id, added, removed=False)
    return record


def property_events(object_type: str, record_id: int, changed: dict[str, str | None], source: str) -> Events:
    """One propertyChange event per changed property (HUBSPOT_API.md §9.2)."""
    return [
        {
            **_event_type(object_type, "propertyChange"),
            "objectId": record_id,
            "propertyName": name,
            "propertyValue": value if value is not None else "",
            "changeSource": source,
        }
        for name, value in changed.items()
    ]


def deletion_event(object_type: str, record_id: int, source: str) -> dict[str, Any]:
    return {
        **_event_type(object_type, "deletion"),
        "objectId": record_id,
        "changeSource": source,
        "changeFlag": "DELETED",
    }


def _prepare_update(
    request: Request,
    object_type: str,
    record: Record,
    raw: Any,
    claimed: dict[tuple[str, str], int] | None = None,
) -> dict[str, str | None]:
    state = sandbox_state(request)
    values, problems = clean_values(state, object_type, raw, existing=record)
    if problems:
        raise SandboxHTTPError(400, msg.property_errors(problems))
    conflict = _conflict(request, object_type, values, record.id, claimed)
    if conflict:
        raise SandboxHTTPError(409, conflict)
    return values


# -------------------------------------------------------------------------------- single records


async def get_page(request: Request) -> Response:
    object_type = _object_type(request)
    redact = _redactor(object_type, authorize(request, read_scopes(object_type)))
    state = sandbox_state(request)
    history = query_list(request, "propertiesWithHistory")
    # propertiesWithHistory lowers the page size (HUBSPOT_API.md §2.2).
    limit = query_int(request, "limit", 10, maximum=50 if history else 100)
    raw_after = request.query_params.get("after")
    try:
        after = int(raw_after) if raw_after else None
    except ValueError:
        raise bad_request(msg.INVALID_AFTER) from None
    archived = query_bool(request, "archived")
    associations = [t for t in (resolve_type(a) for a in query_list(request, "associations")) if t]
    with state.lock:
        names = _names(request, object_type)
        history = state.objects.defined_names(object_type, history)
        records, next_id = state.objects.page(object_type, after, limit, archived=archived)
        results = [
            redact(state.objects.to_wire(object_type, r, names, associations=associations, history=history))
            for r in records
        ]
    body: dict[str, Any] = {"results": results}
    # The last page has no ``paging`` key at all: the official SDK's fetch_all relies on it.
    if next_id is not None:
        link = f"{request.url.scheme}://{request.url.netloc}{request.url.path}?limit={limit}&after={next_id}"
        body["paging"] = {"next": {"after": str(next_id), "link": link}}
    return JSONResponse(body)


async def get_by_id(request: Request) -> Response:
    object_type = _object_type(request)
    redact = _redactor(object_type, authorize(request, read_scopes(object_type)))
    state = sandbox_state(request)
    associations = [t for t in (resolve_type(a) for a in query_list(request, "associations")) if t]
    with state.lock:
        id_property = _id_property(request, object_type, request.query_params.get("idProperty"))
        # A merged-away id answers with the record it was merged into (HubSpot's merge changelog).
        ident = (
            request.path_params["objectId"]
            if id_property
            else state.objects.merge_target(object_type, request.path_params["objectId"])
        )
        record = state.objects.find(object_type, ident, id_property, archived=query_bool(request, "archived"))
        if record is None:
            raise _not_found()
        history = state.objects.defined_names(object_type, query_list(request, "propertiesWithHistory"))
        body = redact(
            state.objects.to_wire(
                object_type, record, _names(request, object_type), associations=associations, history=history
            )
        )
    return JSONResponse(body)


async def create(request: Request) -> Response:
    object_type = _object_type(request)
    authorize(request, write_scopes(object_type))
    state = sandbox_state(request)
    body = await read_json(request)
    events: Events = []
    with state.lock:
        values, plans = _prepare_create(request, object_type, body)
        record = _create(request, object_type, values, plans, now_ms(), events)
        result = state.objects.to_wire(object_type, record, _response_names(request, object_type, values))
    _emit(request, events)
    return JSONResponse(result, status_code=201)


async def update(request: Request) -> Response:
    object_type = _object_type(request)
    authorize(request, write_scopes(object_type))
    state = sandbox_state(request)
    body = await read_json(request)
    with state.lock:
        id_property = _id_property(request, object_type, request.query_params.get("idProperty"))
        ident = (
            request.path_params["objectId"]
            if id_property
            else state.objects.merge_target(object_type, request.path_params["objectId"])
        )
        record = state.objects.find(object_type, ident, id_property)
        if record is None:
            raise _not_found()
        values = _prepare_update(request, object_type, record, body.get("properties"))
        changed = state.objects.update(object_type, record, values, now_ms())
        result = state.objects.to_wire(object_type, record, _response_names(request, object_type, values))
    _emit(request, property_events(object_type, record.id, changed, "API"))
    return JSONResponse(result)


async def archive(request: Request) -> Response:
    object_type = _object_type(request)
    authorize(request, write_scopes(object_type))
    state = sandbox_state(request)
    events: Events = []
    with state.lock:
        record = state.objects.find(object_type, request.path_params["objectId"])
        if record is not None:
            state.objects.archive(object_type, record, now_ms())
            events.append(deletion_event(object_type, record.id, "API"))
    _emit(request, events)
    return Response(status_code=204)


# ----------------------------------------------------------------------------------------- batch


def _missing_error(state: SandboxState, object_type: str, missing: list[str]) -> dict[str, Any]:
    """One OBJECT_NOT_FOUND batch error naming every id that matched no record."""
    message = msg.BATCH_READ_MISSING.format(kind=state.objects.kind(object_type))
    return _batch_error(msg.crm_error(message, msg.OBJECT_NOT_FOUND), ids=missing)


def _claim(
    state: SandboxState,
    object_type: str,
    values: dict[str, str | None],
    claimed: dict[tuple[str, str], int],
    owner: int,
) -> None:
    """Reserve the unique values (e.g. email) a batch input sets, for ``owner`` (-1: a record to create)."""
    for name in state.objects.key_names(object_type):
        if values.get(name):
            claimed[(name, str(values[name]).lower())] = owner


def _traced(item: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """``result`` carrying its input's objectWriteTraceId, when it had one."""
    if item.get("objectWriteTraceId") not in (None, ""):
        result["objectWriteTraceId"] = str(item["objectWriteTraceId"])
    return result


def _partial_allowed(inputs: list[dict[str, Any]]) -> bool:
    """HubSpot answers a batch in part (207) only if every input has its own objectWriteTraceId."""
    traces = [i.get("objectWriteTraceId") for i in inputs]
    return all(t not in (None, "") for t in traces) and len({str(t) for t in traces}) == len(traces)


async def batch_read(request: Request) -> Response:
    object_type = _object_type(request)
    redact = _redactor(object_type, authorize(request, read_scopes(object_type)))
    state = sandbox_state(request)
    body = await read_json(request)
    inputs = _inputs(body)
    started = now_ms()
    archived = query_bool(request, "archived")
    with state.lock:
        id_property = _id_property(request, object_type, body.get("idProperty"))
        wanted = body.get("properties")
        names = state.objects.returned_names(
            object_type,
            [str(n) for n in wanted]
            if isinstance(wanted, list) and wanted
            else list(DEFAULT_PROPERTIES[object_type]),
        )
        history_raw = body.get("propertiesWithHistory")
        history = state.objects.defined_names(object_type, [str(n) for n in history_raw or []])
        results, missing, seen = [], [], set()
        for item in inputs:
            ident = str(item.get("id", ""))
            record = state.objects.find(object_type, ident, id_property, archived=archived)
            if record is None:
                missing.append(ident)
            elif record.id not in seen:
                seen.add(record.id)
                results.append(redact(state.objects.to_wire(object_type, record, names, history=history)))
        errors = [_missing_error(state, object_type, missing)] if missing else []
    return JSONResponse(_envelope(started, results, errors), status_code=207 if errors else 200)


async def batch_create(request: Request) -> Response:
    object_type = _object_type(request)
    authorize(request, write_scopes(object_type))
    state = sandbox_state(request)
    body = await read_json(request)
    inputs = _inputs(body)
    partial = _partial_allowed(inputs)
    started = now_ms()
    events: Events = []
    with state.lock:
        plans: list[tuple[dict[str, Any], dict[str, str | None], list[tuple[str, int, list[int]]]]] = []
        errors: list[dict[str, Any]] = []
        claimed: dict[tuple[str, str], int] = {}
        for item in inputs:
            try:
                values, associations = _prepare_create(request, object_type, item, claimed)
            except SandboxHTTPError as exc:
                if not partial:
                    raise
                errors.append(_batch_error(exc.body, objectWriteTraceId=[str(item["objectWriteTraceId"])]))
                continue
            _claim(state, object_type, values, claimed, -1)
            plans.append((item, values, associations))
        now = now_ms()
        results = []
        for item, values, associations in plans:
            record = _create(request, object_type, values, associations, now, events)
            result = state.objects.to_wire(object_type, record, _response_names(request, object_type, values))
            results.append(_traced(item, result))
    _emit(request, events)
    return JSONResponse(_envelope(started, results, errors), status_code=207 if errors else 201)


def _duplicate_check(idents: list[str]) -> None:
    seen: set[str] = set()
    duplicates = []
    for ident in idents:
        if ident in seen and ident not in duplicates:
            duplicates.append(ident)
        seen.add(ident)
    if duplicates:
        raise bad_request(msg.DUPLICATE_IDS.format(ids=duplicates))


async def batch_update(request: Request) -> Response:
    object_type = _object_type(request)
    authorize(request, write_scopes(object_type))
    state = sandbox_state(request)
    body = await read_json(request)
    inputs = _inputs(body)
    partial = _partial_allowed(inputs)
    _duplicate_check([str(i.get("id", "")).lower() for i in inputs])
    started = now_ms()
    events: Events = []
    with state.lock:
        plans: list[tuple[dict[str, Any], Record, dict[str, str | None]]] = []
        errors: list[dict[str, Any]] = []
        missing: list[str] = []
        claimed: dict[tuple[str, str], int] = {}
        for item in inputs:
            ident = str(item.get("id", ""))
            id_property = _id_property(request, object_type, item.get("idProperty") or body.get("idProperty"))
            record = state.objects.find(object_type, ident, id_property)
            if record is None:
                missing.append(ident)
                continue
            try:
                values = _prepare_update(request, object_type, record, item.get("properties"), claimed)
            except SandboxHTTPError as exc:
                if not partial:
                    raise
                errors.append(_batch_error(exc.body, objectWriteTraceId=[str(item["objectWriteTraceId"])]))
                continue
            _claim(state, object_type, values, claimed, record.id)
            plans.append((item, record, values))
        if missing:
            # Unknown ids do not sink the batch: they come back as one OBJECT_NOT_FOUND error.
            errors.append(_missing_error(state, object_type, missing))
        now = now_ms()
        results = []
        for item, record, values in plans:
            changed = state.objects.update(object_type, record, values, now)
            events += property_events(object_type, record.id, changed, "API")
            result = state.objects.to_wire(object_type, record, _response_names(request, object_type, values))
            results.append(_traced(item, result))
    _emit(request, events)
    return JSONResponse(_envelope(started, results, errors), status_code=207 if errors else 200)


async def batch_upsert(request: Request) -> Response:
    object_type = _object_type(request)
    authorize(request, write_scopes(object_type))
    state = sandbox_state(request)
    body = await read_json(request)
    inputs = _inputs(body)
    _duplicate_check([str(i.get("id", "")).strip().lower() for i in inputs])
    started = now_ms()
    events: Events = []
    with state.lock:
        # Upserts are all or nothing (HUBSPOT_API.md §2.5): validate every input first.
        plans: list[tuple[dict[str, Any], Record | None, dict[str, str | None], Any]] = []
        claimed: dict[tuple[str, str], int] = {}
        for item in inputs:
            ident = str(item.get("id", "")).strip()
            id_property = _id_property(request, object_type, item.get("idProperty") or body.get("idProperty"))
            if id_property is None:
                raise bad_request(
                    msg.UNKNOWN_ID_PROPERTY.format(name=item.get("idProperty") or "hs_object_id")
                )
            record = state.objects.find(object_type, ident, id_property)
            if record is not None:
                values = _prepare_update(request, object_type, record, item.get("properties"), claimed)
                plans.append((item, record, values, None))
            else:
                properties = dict(item.get("properties") or {})
                properties.setdefault(id_property, ident)
                values, associations = _prepare_create(
                    request, object_type, {"properties": properties}, claimed
                )
                plans.append((item, None, values, associations))
            _claim(state, object_type, values, claimed, record.id if record else -1)
        now = now_ms()
        results = []
        for item, existing, values, associations in plans:
            if existing is None:
                record = _create(request, object_type, values, associations, now, events)
            else:
                record = existing
                changed = state.objects.update(object_type, record, values, now)
                events += property_events(object_type, record.id, changed, "API")
            result = state.objects.to_wire(object_type, record, _response_names(request, object_type, values))
            result["new"] = existing is None
            results.append(_traced(item, result))
    _emit(request, events)
    return JSONResponse(_envelope(started, results, []))


async def batch_archive(request: Request) -> Response:
    object_type = _object_type(request)
    authorize(request, write_scopes(object_type))
    state = sandbox_state(request)
    body = await read_json(request)
    inputs = _inputs(body)
    events: Events = []
    with state.lock:
        now = now_ms()
        for item in inputs:
            record = state.objects.find(object_type, str(item.get("id", "")))
            if record is not None:
                state.objects.archive(object_type, record, now)
                events.append(deletion_event(object_type, record.id, "API"))
    _emit(request, events)
    return Response(status_code=204)


async def search(request: Request) -> Response:
    object_type = _object_type(request)
    redact = _redactor(object_type, authorize(request, read_scopes(object_type)))
    state = sandbox_state(request)
    body = await read_json(request)
    with state.lock:
        result = run_search(state, object_type, body, now_ms())
    result["results"] = [redact(r) for r in result["results"]]
    return JSONResponse(result)


def routes() -> list[BaseRoute]:
    table: list[BaseRoute] = []
    for p in versioned("/crm/v3/objects", "/crm/objects/{version}"):
        t = p + "/{objectType}"
        table += [
            Route(t + "/batch/read", batch_read, methods=["POST"]),
            Route(t + "/batch/create", batch_create, methods=["POST"]),
            Route(t + "/batch/update", batch_update, methods=["POST"]),
            Route(t + "/batch/upsert", batch_upsert, methods=["POST"]),
            Route(t + "/batch/archive", batch_archive, methods=["POST"]),
            Route(t + "/search", search, methods=["POST"]),
            Route(t, get_page, methods=["GET"]),
            Route(t, create, methods=["POST"]),
            Route(t + "/{objectId}", get_by_id, methods=["GET"]),
            Route(t + "/{objectId}", update, methods=["PATCH"]),
            Route(t + "/{objectId}", archive, methods=["DELETE"]),
        ]
    return table
