"""API v2 persons, organizations and deals: list with cursor paging, get, create, patch, delete, search.

List: ``cursor``/``limit`` (max 500), ``updated_since`` (inclusive) and ``updated_until``
(exclusive; both UNCERTAIN at Pipedrive), ``ids``, ``owner_id``, ``org_id``, deal filters,
``sort_by`` id/update_time/add_time and ``sort_direction``. A deal list's ``status`` takes several
values, comma-separated; ``deleted`` lists deals deleted in the last 30 days (with ``is_deleted``
true), which is how a pull learns of deleted deals. The cursor carries the sort and
the last key, so a record edited mid-walk under ``sort_by=update_time`` moves to the end,
where the walk still finds it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox.pipedrive import messages as msg
from crm.sandbox.pipedrive.models import ENTITY_TYPES, SINGULAR, EntityType, Record, iso, now_s, render
from crm.sandbox.pipedrive.state import PipedriveState
from crm.sandbox.pipedrive.validation import Invalid, clean
from crm.sandbox.pipedrive.wire import (
    bad_request,
    decode_cursor,
    encode_cursor,
    not_found,
    ok,
    principal_of,
    query_choice,
    query_int,
    query_limit,
    query_time,
    read_json,
    state_of,
)

SORT_KEYS = ("id", "update_time", "add_time")
DEAL_STATUSES = ("open", "won", "lost", "deleted", "all_not_deleted")
# Pipedrive purges deleted records after 30 days; until then ``status=deleted`` lists deals.
DELETED_KEPT_S = 30 * 86_400
SEARCH_FIELDS: dict[EntityType, tuple[str, ...]] = {
    "persons": ("name", "email", "phone", "notes", "custom_fields"),
    "organizations": ("name", "address", "notes", "custom_fields"),
    "deals": ("title", "notes", "custom_fields"),
}


def _sort_value(record: Record, sort_by: str) -> int:
    return record.id if sort_by == "id" else record.update_ts if sort_by == "update_time" else record.add_ts


def _in_order(
    state: PipedriveState,
    entity: EntityType,
    sort_by: str,
    reverse: bool,
    after: tuple[int, int] | None,
    *,
    with_deleted: bool = False,
) -> Iterator[Record]:
    """Live records (and, ``with_deleted``, those deleted in the last 30 days) in the page
    order, starting after the cursor's key.

    By id (the default and the full pull's order) this bisects into the id list, so a page
    costs its own size, not the company's; other sorts sort the live records.
    """
    records = state.records.records[entity]

    def shown(record: Record) -> bool:
        return not record.is_deleted or (with_deleted and record.update_ts >= now_s() - DELETED_KEPT_S)

    if sort_by == "id":
        order = state.records.order[entity]
        if reverse:
            end = bisect.bisect_left(order, after[1]) if after else len(order)
            positions: Iterable[int] = range(end - 1, -1, -1)
        else:
            positions = range(bisect.bisect_right(order, after[1]) if after else 0, len(order))
        for position in positions:
            record = records[order[position]]
            if shown(record):
                yield record
        return
    keyed = sorted(((_sort_value(r, sort_by), r.id), r) for r in records.values() if shown(r))
    if reverse:
        keyed.reverse()
    for key, record in keyed:
        if after is None or (key > after if not reverse else key < after):
            yield record


def _filters(request: Request, entity: EntityType) -> list[tuple[str, Any]]:
    checks: list[tuple[str, Any]] = []
    for name in ("owner_id", "org_id", "person_id", "pipeline_id", "stage_id"):
        if name in ("person_id", "pipeline_id", "stage_id") and entity != "deals":
            continue
        if name == "org_id" and entity == "organizations":
            continue
        value = query_int(request, name)
        if value is not None:
            checks.append((name, value))
    return checks


def _deal_statuses(request: Request, entity: EntityType) -> set[str] | None:
    """A deal list's ``status``: comma-separated, None for every live deal (``all_not_deleted``).

    ``deleted`` lists deals deleted up to 30 days ago (docs/PIPEDRIVE_API.md §3).
    """
    raw = request.query_params.get("status") if entity == "deals" else None
    if not raw:
        return None
    wanted = {part.strip() for part in raw.split(",") if part.strip()}
    if not wanted or not wanted <= set(DEAL_STATUSES):
        raise bad_request(msg.BAD_CHOICE.format(name="status", choices=", ".join(DEAL_STATUSES)))
    return None if wanted == {"all_not_deleted"} else wanted


def _status_matches(record: Record, statuses: set[str] | None) -> bool:
    if record.is_deleted:
        return statuses is not None and "deleted" in statuses
    if statuses is None or "all_not_deleted" in statuses:
        return True
    return record.values.get("status") in statuses


def change_event(state: PipedriveState, entity: EntityType, record: Record, old: dict[str, Any],
                 old_custom: dict[str, Any], *, user_id: int, source: str) -> None:  # fmt: skip
    """Fire ``change.<entity>`` with ``previous`` holding the changed attributes' old values."""
    previous = {k: v for k, v in old.items() if record.values.get(k) != v}
    changed_custom = {k: v for k, v in old_custom.items() if record.custom.get(k) != v}
    if changed_custom:
        previous["custom_fields"] = changed_custom
    if not previous:
        return
    data = render(entity, record, state.fields)
    state.webhooks.emit(
        "change", SINGULAR[entity], record.id, data, previous, user_id=user_id, change_source=source
    )


def apply_update(state: PipedriveState, entity: EntityType, record: Record, body: Any, *, user_id: int,
                 source: str) -> dict[str, Any]:  # fmt: skip
    """Validate and apply an update (API or admin); bumps update_time and fires the webhook.

    Raises Invalid for a body Pipedrive would refuse.
    """
    with state.lock:
        values, custom = clean(state, entity, body, record)
        old = {k: record.values.get(k) for k in values}
        old_custom = {k: record.custom.get(k) for k in custom}
        record.values.update(values)
        record.custom.update(custom)
        if old != {k: record.values.get(k) for k in values} or old_custom != {
            k: record.custom.get(k) for k in custom
        }:
            record.update_ts = max(now_s(), record.update_ts)
        result = render(entity, record, state.fields)
    change_event(state, entity, record, old, old_custom, user_id=user_id, source=source)
    return result


def delete_record(
    state: PipedriveState, entity: EntityType, record: Record, *, user_id: int, source: str
) -> None:
    with state.lock:
        record.is_deleted = True
        record.update_ts = max(now_s(), record.update_ts)
        data = render(entity, record, state.fields)
    state.webhooks.emit(
        "delete", SINGULAR[entity], record.id, data, None, user_id=user_id, change_source=source
    )


def _routes_for(entity: EntityType) -> list[BaseRoute]:
    label = SINGULAR[entity]

    def _record(state: PipedriveState, request: Request) -> Record:
        record = state.records.live(entity, request.path_params["id"])
        if record is None:
            raise not_found(label)
        return record

    async def list_records(request: Request) -> Response:
        state = state_of(request)
        limit = query_limit(request)
        sort_by = query_choice(request, "sort_by", SORT_KEYS, "id")
        direction = query_choice(request, "sort_direction", ("asc", "desc"), "asc")
        since, until = query_time(request, "updated_since"), query_time(request, "updated_until")
        checks = _filters(request, entity)
        statuses = _deal_statuses(request, entity)
        with_deleted = statuses is not None and "deleted" in statuses
        only_custom = _custom_keys(request)
        ids_raw = request.query_params.get("ids")
        ids: set[int] | None = None
        if ids_raw:
            try:
                ids = {int(part) for part in ids_raw.split(",") if part.strip()}
            except ValueError:
                raise bad_request(msg.BAD_ID.format(name="ids")) from None
        cursor = decode_cursor(request)
        after: tuple[int, int] | None = None
        if cursor is not None:
            key = cursor.get("k")
            if (
                cursor.get("s") != sort_by
                or cursor.get("d") != direction
                or not (isinstance(key, list) and len(key) == 2 and all(isinstance(v, int) for v in key))
            ):
                raise bad_request(msg.BAD_CURSOR)
            after = (key[0], key[1])
        with state.lock:
            page = []
            for r in _in_order(state, entity, sort_by, direction == "desc", after, with_deleted=with_deleted):
                if (
                    (since is None or r.update_ts >= since) and (until is None or r.update_ts < until)
                    and (ids is None or r.id in ids) and all(r.values.get(name) == value for name, value in checks)
                    and _status_matches(r, statuses)
                ):  # fmt: skip
                    page.append(r)
                    if len(page) > limit:
                        break
            more = len(page) > limit
            page = page[:limit]
            data = [render(entity, r, state.fields, only_custom) for r in page]
        next_cursor = None
        if more:
            last = page[-1]
            next_cursor = encode_cursor(
                {"s": sort_by, "d": direction, "k": [_sort_value(last, sort_by), last.id]}
            )
        return ok(data, {"next_cursor": next_cursor})

    async def get_record(request: Request) -> Response:
        state = state_of(request)
        with state.lock:
            return ok(render(entity, _record(state, request), state.fields, _custom_keys(request)))

    async def create_record(request: Request) -> Response:
        state = state_of(request)
        body = await read_json(request)
        user_id = principal_of(request).user_id
        with state.lock:
            try:
                values, custom = clean(state, entity, body, None)
            except Invalid as exc:
                raise bad_request(str(exc)) from None
            values.setdefault("owner_id", user_id)
            values.setdefault("visible_to", 3)
            values.setdefault("label_ids", [])
            if entity == "persons":
                values.setdefault("emails", [])
                values.setdefault("phones", [])
            ts = now_s()
            add_ts = min(values.pop("add_time", ts), ts)
            full_custom = {f.key: None for f in state.fields.custom(entity)} | custom
            record = state.records.add(entity, values, full_custom, add_ts, ts)
            data = render(entity, record, state.fields)
        state.webhooks.emit("create", label, record.id, data, None, user_id=user_id, change_source="api")
        return ok(data)

    async def update_record(request: Request) -> Response:
        state = state_of(request)
        body = await read_json(request)
        with state.lock:
            record = _record(state, request)
        try:
            data = apply_update(
                state, entity, record, body, user_id=principal_of(request).user_id, source="api"
            )
        except Invalid as exc:
            raise bad_request(str(exc)) from None
        return ok(data)

    async def delete(request: Request) -> Response:
        state = state_of(request)
        with state.lock:
            record = _record(state, request)
        delete_record(state, entity, record, user_id=principal_of(request).user_id, source="api")
        return ok({"id": record.id})

    async def search(request: Request) -> Response:
        return _search(request, entity)

    base = f"/api/v2/{entity}"
    return [
        Route(base, list_records, methods=["GET"]),
        Route(base, create_record, methods=["POST"]),
        Route(f"{base}/search", search, methods=["GET"]),
        Route(base + "/{id:int}", get_record, methods=["GET"]),
        Route(base + "/{id:int}", update_record, methods=["PATCH"]),
        Route(base + "/{id:int}", delete, methods=["DELETE"]),
    ]


def _custom_keys(request: Request) -> set[str] | None:
    raw = request.query_params.get("custom_fields")
    return {k.strip() for k in raw.split(",") if k.strip()} if raw else None


def _search(request: Request, entity: EntityType) -> JSONResponse:
    """Token-prefix and substring search; UNCERTAIN ranking (exact 1.0, prefix 0.5, substring 0.25)."""
    state = state_of(request)
    term = (request.query_params.get("term") or "").strip()
    exact = (request.query_params.get("exact_match") or "").lower() == "true"
    if len(term) < (1 if exact else 2):
        raise bad_request(msg.TERM_TOO_SHORT)
    allowed = SEARCH_FIELDS[entity]
    raw_fields = request.query_params.get("fields")
    fields = tuple(f.strip() for f in raw_fields.split(",")) if raw_fields else allowed
    for name in fields:
        if name not in allowed:
            raise bad_request(msg.BAD_CHOICE.format(name="fields", choices=", ".join(allowed)))
    limit = query_limit(request)
    cursor = decode_cursor(request)
    offset = cursor.get("o", 0) if cursor else 0
    if not isinstance(offset, int) or offset < 0:
        raise bad_request(msg.BAD_CURSOR)
    org_filter = query_int(request, "organization_id")
    person_filter = query_int(request, "person_id") if entity == "deals" else None
    needle = term.casefold()
    with state.lock:
        scored: list[tuple[float, Record, list[str]]] = []
        for record in state.records.all_live(entity):
            if org_filter is not None and record.values.get("org_id") != org_filter:
                continue
            if person_filter is not None and record.values.get("person_id") != person_filter:
                continue
            best, matched_custom = 0.0, []
            for name, text in _searchable(state, entity, record, fields):
                score = _score(text.casefold(), needle, exact)
                if score and name == "custom_fields":
                    matched_custom.append(text)
                best = max(best, score)
            if best:
                scored.append((best, record, matched_custom))
        scored.sort(key=lambda item: (-item[0], item[1].id))
        page = scored[offset : offset + limit]
        items = [
            {"result_score": score, "item": _search_item(state, entity, r, custom)}
            for score, r, custom in page
        ]
    next_cursor = encode_cursor({"o": offset + limit}) if len(scored) > offset + limit else None
    return ok({"items": items}, {"next_cursor": next_cursor})


def _searchable(
    state: PipedriveState, entity: EntityType, record: Record, fields: tuple[str, ...]
) -> list[tuple[str, str]]:
    values = record.values
    out: list[tuple[str, str]] = []
    for name in fields:
        if name in ("name", "title", "address", "notes") and isinstance(values.get(name), str):
            out.append((name, values[name]))
        elif name == "email":
            out += [(name, e["value"]) for e in values.get("emails") or []]
        elif name == "phone":
            out += [(name, p["value"]) for p in values.get("phones") or []]
        elif name == "custom_fields":
            for field in state.fields.custom(entity):
                value = record.custom.get(field.key)
                if isinstance(value, str) and field.field_type in (
                    "varchar",
                    "text",
                    "varchar_auto",
                    "phone",
                ):
                    out.append((name, value))
    return out


def _score(text: str, needle: str, exact: bool) -> float:
    if text == needle:
        return 1.0
    if exact:
        return 0.0
    if text.startswith(needle) or any(word.startswith(needle) for word in text.split()):
        return 0.5
    return 0.25 if needle in text else 0.0


def _search_item(
    state: PipedriveState, entity: EntityType, record: Record, custom: list[str]
) -> dict[str, Any]:
    values = record.values
    item: dict[str, Any] = {"id": record.id, "type": SINGULAR[entity], "visible_to": values.get("visible_to"),
                            "owner": {"id": values.get("owner_id")}, "custom_fields": custom, "notes": [],
                            "update_time": iso(record.update_ts)}  # fmt: skip
    org = state.records.live("organizations", values["org_id"]) if values.get("org_id") else None
    org_ref = (
        {"id": org.id, "name": org.values["name"], "address": org.values.get("address")} if org else None
    )
    if entity == "persons":
        item.update(name=values["name"], phones=[p["value"] for p in values.get("phones") or []],
                    emails=[e["value"] for e in values.get("emails") or []], organization=org_ref)  # fmt: skip
    elif entity == "organizations":
        item.update(name=values["name"], address=values.get("address"))
    else:
        person = state.records.live("persons", values["person_id"]) if values.get("person_id") else None
        stage = state.stage(values["stage_id"])
        item.update(title=values["title"], value=values.get("value"), currency=values.get("currency"),
                    status=values.get("status"), stage={"id": stage.id, "name": stage.name} if stage else None,
                    person={"id": person.id, "name": person.values["name"]} if person else None,
                    organization=org_ref)  # fmt: skip
    return item


def routes() -> list[BaseRoute]:
    table: list[BaseRoute] = []
    for entity in ENTITY_TYPES:
        table += _routes_for(entity)
    return table
