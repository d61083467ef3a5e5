"""Notes (API v1) and activities (API v1 and v2): what a timeline is made of.

v1 notes: list (``start``/``limit`` paging, ``person_id``/``org_id``/``deal_id``/``user_id``,
``updated_since`` inclusive, ``sort`` as ``"update_time ASC, id ASC"``), get, add, update
(PUT), delete. v1 activities: list and add. v2 activities: list (cursor paging,
``updated_since`` inclusive / ``updated_until`` exclusive, ``sort_by`` id/update_time/add_time/
due_date, ``sort_direction``, ``ids``, ``owner_id``/``person_id``/``org_id``/``deal_id``,
``done``), get, patch, delete. Deleted ones are listed by none of them (kept for
``/_sandbox/truth/notes|activities``). Every change fires ``<action>.note`` /
``<action>.activity`` webhooks (docs/PIPEDRIVE_API.md §9).

``change_note`` / ``change_activity`` / ``delete_item`` also serve the
admin API (an edit as if in Pipedrive's UI).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from crm.sandbox.pipedrive import messages as msg
from crm.sandbox.pipedrive.models import Activity, Note, now_s
from crm.sandbox.pipedrive.state import PipedriveState
from crm.sandbox.pipedrive.wire import (
    PipedriveHTTPError,
    bad_request,
    decode_cursor,
    encode_cursor,
    not_found,
    offset_page,
    ok,
    principal_of,
    query_choice,
    query_int,
    query_limit,
    query_time,
    read_json,
    state_of,
)

NOTE_SORT_FIELDS = ("id", "user_id", "deal_id", "person_id", "org_id", "content", "add_time", "update_time")
ACTIVITY_SORT_KEYS = ("id", "update_time", "add_time", "due_date")
_REFS = (("person_id", "persons"), ("org_id", "organizations"), ("deal_id", "deals"))
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLOCK = re.compile(r"^\d{2}:\d{2}(:\d{2})?$")


def _ref(state: PipedriveState, body: dict[str, Any], name: str, kind: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not state.exists(kind, value):
        raise bad_request(msg.NO_SUCH_REF.format(name=name, entity=kind.rstrip("s"), id=value))
    return value


def _note_sort(request: Request) -> list[tuple[str, bool]]:
    """``sort`` as (field, descending) pairs; id ascending when absent."""
    raw = request.query_params.get("sort") or ""
    found: list[tuple[str, bool]] = []
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        name, _, way = part.partition(" ")
        way = way.strip().upper() or "ASC"
        if name not in NOTE_SORT_FIELDS or way not in ("ASC", "DESC"):
            raise bad_request(msg.BAD_CHOICE.format(name="sort", choices=", ".join(NOTE_SORT_FIELDS)))
        found.append((name, way == "DESC"))
    return found or [("id", False)]


def _note_value(note: Note, name: str) -> Any:
    value = {"add_time": note.add_ts, "update_time": note.update_ts}.get(name, getattr(note, name, None))
    return (0, "") if value is None else (1, value)


# ------------------------------------------------------------------------------------------ notes


async def list_notes(request: Request) -> Response:
    state = state_of(request)
    filters = {name: query_int(request, name) for name in ("person_id", "org_id", "deal_id", "user_id")}
    since = query_time(request, "updated_since")
    order = _note_sort(request)
    with state.lock:
        notes = [n for n in state.notes if not n.is_deleted and (since is None or n.update_ts >= since)
                 and all(value is None or getattr(n, name) == value for name, value in filters.items())]  # fmt: skip
        for name, descending in reversed(order):
            notes.sort(key=lambda n, name=name: _note_value(n, name), reverse=descending)  # type: ignore[misc]
        page, additional = offset_page(request, [n.describe() for n in notes])
    return ok(page, additional)


def _note(state: PipedriveState, request: Request) -> Note:
    note_id = request.path_params["id"]
    note = next((n for n in state.notes if n.id == note_id and not n.is_deleted), None)
    if note is None:
        raise not_found("note")
    return note


async def get_note(request: Request) -> Response:
    state = state_of(request)
    with state.lock:
        return ok(_note(state, request).describe())


async def add_note(request: Request) -> Response:
    state = state_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request(msg.NOT_AN_OBJECT)
    content = body.get("content")
    if not isinstance(content, str) or not content.strip():
        raise bad_request(msg.REQUIRED.format(name="content"))
    user_id = principal_of(request).user_id
    with state.lock:
        author = body.get("user_id")
        if author is not None:
            if isinstance(author, bool) or not isinstance(author, int) or state.user(author) is None:
                raise bad_request(msg.NO_SUCH_REF.format(name="user_id", entity="user", id=author))
            user_id = author
        refs = {name: _ref(state, body, name, kind) for name, kind in _REFS}
        if not any(refs.values()):
            raise bad_request(msg.REQUIRED.format(name="person_id, org_id or deal_id"))
        ts = now_s()
        note = Note(
            len(state.notes) + 1, content, user_id, refs["person_id"], refs["org_id"], refs["deal_id"], ts, ts
        )
        state.notes.append(note)
        data = note.describe()
    state.webhooks.emit("create", "note", note.id, data, None, user_id=user_id, change_source="api")
    return ok(data, status=201)


def change_note(state: PipedriveState, note: Note, body: Any, *, user_id: int, source: str) -> dict[str, Any]:
    """Apply a v1 note update (``content``, links); update_time moves, ``change.note`` fires."""
    if not isinstance(body, dict):
        raise bad_request(msg.NOT_AN_OBJECT)
    content = body.get("content", note.content)
    if not isinstance(content, str) or not content.strip():
        raise bad_request(msg.REQUIRED.format(name="content"))
    with state.lock:
        refs = {
            name: _ref(state, body, name, kind) if name in body else getattr(note, name)
            for name, kind in _REFS
        }
        before = note.describe()
        note.content = content
        note.person_id, note.org_id, note.deal_id = refs["person_id"], refs["org_id"], refs["deal_id"]
        note.last_update_user_id = user_id
        note.update_ts = max(now_s(), note.update_ts)
        data = note.describe()
    previous = {k: v for k, v in before.items() if data.get(k) != v and k != "update_time"}
    state.webhooks.emit("change", "note", note.id, data, previous, user_id=user_id, change_source=source)
    return data


def delete_item(state: PipedriveState, item: Note | Activity, *, user_id: int, source: str) -> None:
    """Delete a note or an activity (kept for the truth); ``delete.note|activity`` fires."""
    with state.lock:
        item.is_deleted = True
        item.update_ts = max(now_s(), item.update_ts)
        data = item.describe() if isinstance(item, Note) else item.describe_v2()
    entity = "note" if isinstance(item, Note) else "activity"
    state.webhooks.emit("delete", entity, item.id, data, None, user_id=user_id, change_source=source)


async def update_note(request: Request) -> Response:
    state = state_of(request)
    body = await read_json(request)
    note = _note(state, request)
    return ok(change_note(state, note, body, user_id=principal_of(request).user_id, source="api"))


async def remove_note(request: Request) -> Response:
    state = state_of(request)
    delete_item(state, _note(state, request), user_id=principal_of(request).user_id, source="api")
    return ok(True)


# ------------------------------------------------------------------------------------- activities


async def list_activities_v1(request: Request) -> Response:
    state = state_of(request)
    filters = {name: query_int(request, name) for name in ("person_id", "org_id", "deal_id", "user_id")}
    with state.lock:
        items = [a.describe() for a in state.activities if not a.is_deleted
                 and all(value is None or getattr(a, name) == value for name, value in filters.items())]  # fmt: skip
        page, additional = offset_page(request, items)
    return ok(page, additional)


def _activity_values(state: PipedriveState, body: dict[str, Any], current: Activity | None) -> dict[str, Any]:
    """The attributes a v1 add or v2 patch sets, checked as Pipedrive would (400 otherwise)."""
    values: dict[str, Any] = {}
    for name in ("subject", "type", "note", "duration", "due_date", "due_time"):
        if name in body:
            value = body[name]
            if value is not None and not isinstance(value, str):
                raise bad_request(msg.WRONG_TYPE.format(name=name, detail="must be a string"))
            value = value or ""
            if name == "due_date" and value and not _DAY.match(value):
                raise bad_request(msg.WRONG_TYPE.format(name=name, detail="must be YYYY-MM-DD"))
            if name in ("due_time", "duration") and value and not _CLOCK.match(value):
                raise bad_request(msg.WRONG_TYPE.format(name=name, detail="must be HH:MM"))
            values[name] = value[:5] if name in ("due_time", "duration") else value
    if "subject" in values and not values["subject"].strip():
        raise bad_request(msg.REQUIRED.format(name="subject"))
    if "done" in body:
        done = body["done"]
        if done not in (True, False, 0, 1):
            raise bad_request(msg.WRONG_TYPE.format(name="done", detail="must be a boolean"))
        values["done"] = bool(done)
    for name, kind in _REFS:
        if name in body:
            values[name] = _ref(state, body, name, kind)
    owner = body.get("owner_id", body.get("user_id"))
    if owner is not None:
        if isinstance(owner, bool) or not isinstance(owner, int) or state.user(owner) is None:
            raise bad_request(msg.NO_SUCH_REF.format(name="owner_id", entity="user", id=owner))
        values["user_id"] = owner
    if "participants" in body:
        people = body["participants"] or []
        if not isinstance(people, list):
            raise bad_request(msg.WRONG_TYPE.format(name="participants", detail="must be a list"))
        ids = [p.get("person_id") if isinstance(p, dict) else None for p in people]
        for person in ids:
            if isinstance(person, bool) or not isinstance(person, int) or not state.exists("persons", person):
                raise bad_request(msg.NO_SUCH_REF.format(name="participants", entity="person", id=person))
        values["participants"] = ids
    return values


async def add_activity(request: Request) -> Response:
    state = state_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request(msg.NOT_AN_OBJECT)
    if not isinstance(body.get("subject"), str) or not body["subject"].strip():
        raise bad_request(msg.REQUIRED.format(name="subject"))
    user_id = principal_of(request).user_id
    with state.lock:
        values = _activity_values(state, body, None)
        ts = now_s()
        activity = Activity(
            len(state.activities) + 1, values["subject"], values.get("type") or "task",
            values.get("user_id", user_id), values.get("done", False), values.get("due_date", ""),
            values.get("due_time", ""), values.get("person_id"), values.get("org_id"), values.get("deal_id"),
            values.get("note", ""), ts, ts, duration=values.get("duration", ""),
            participants=values.get("participants", []), done_ts=ts if values.get("done") else None,
        )  # fmt: skip
        state.activities.append(activity)
        data = activity.describe()
    state.webhooks.emit("create", "activity", activity.id, activity.describe_v2(), None, user_id=user_id,
                        change_source="api")  # fmt: skip
    return ok(data, status=201)


def _activity(state: PipedriveState, request: Request) -> Activity:
    activity_id = request.path_params["id"]
    found = next((a for a in state.activities if a.id == activity_id and not a.is_deleted), None)
    if found is None:
        raise not_found("activity")
    return found


def _sort_key(activity: Activity, sort_by: str) -> list[Any]:
    value: Any = {"id": activity.id, "update_time": activity.update_ts, "add_time": activity.add_ts}.get(
        sort_by, f"{activity.due_date} {activity.due_time}"
    )
    return [value, activity.id]


async def list_activities(request: Request) -> Response:
    """API v2: cursor paging; the cursor carries the sort and the last key (edits move on)."""
    state = state_of(request)
    limit = query_limit(request)
    sort_by = query_choice(request, "sort_by", ACTIVITY_SORT_KEYS, "id")
    direction = query_choice(request, "sort_direction", ("asc", "desc"), "asc")
    since, until = query_time(request, "updated_since"), query_time(request, "updated_until")
    checks = {name: query_int(request, name) for name in ("owner_id", "person_id", "org_id", "deal_id")}
    done_raw = request.query_params.get("done")
    if done_raw not in (None, "", "true", "false", "1", "0"):
        raise bad_request(msg.WRONG_TYPE.format(name="done", detail="must be a boolean"))
    done = None if done_raw in (None, "") else done_raw in ("true", "1")
    ids: set[int] | None = None
    if request.query_params.get("ids"):
        try:
            ids = {int(p) for p in str(request.query_params["ids"]).split(",") if p.strip()}
        except ValueError:
            raise bad_request(msg.BAD_ID.format(name="ids")) from None
    cursor = decode_cursor(request)
    after: list[Any] | None = None
    if cursor is not None:
        after = cursor.get("k")
        if (
            cursor.get("s") != sort_by
            or cursor.get("d") != direction
            or not isinstance(after, list)
            or len(after) != 2
        ):
            raise bad_request(msg.BAD_CURSOR)
    with state.lock:
        chosen = [
            a for a in state.activities
            if not a.is_deleted and (since is None or a.update_ts >= since) and (until is None or a.update_ts < until)
            and (ids is None or a.id in ids) and (done is None or a.done == done)
            and all(v is None or (a.user_id if k == "owner_id" else getattr(a, k)) == v for k, v in checks.items())
        ]  # fmt: skip
        chosen.sort(key=lambda a: _sort_key(a, sort_by), reverse=direction == "desc")
        if after is not None:
            chosen = [a for a in chosen if (_sort_key(a, sort_by) > after) == (direction == "asc")
                      and _sort_key(a, sort_by) != after]  # fmt: skip
        page = chosen[:limit]
        data = [a.describe_v2() for a in page]
    following = None
    if len(chosen) > limit:
        following = encode_cursor({"s": sort_by, "d": direction, "k": _sort_key(page[-1], sort_by)})
    return ok(data, {"next_cursor": following})


async def get_activity(request: Request) -> Response:
    state = state_of(request)
    with state.lock:
        return ok(_activity(state, request).describe_v2())


def change_activity(
    state: PipedriveState, activity: Activity, body: Any, *, user_id: int, source: str
) -> dict[str, Any]:
    """Apply a v2 activity patch; update_time moves, ``change.activity`` fires (v2 shape)."""
    if not isinstance(body, dict):
        raise bad_request(msg.NOT_AN_OBJECT)
    with state.lock:
        values = _activity_values(state, body, activity)
        before = activity.describe_v2()
        for name, value in values.items():
            setattr(activity, name, value)
        if values.get("done") and not activity.done_ts:
            activity.done_ts = now_s()
        activity.update_ts = max(now_s(), activity.update_ts)
        data = activity.describe_v2()
    previous = {k: v for k, v in before.items() if data.get(k) != v and k != "update_time"}
    state.webhooks.emit(
        "change", "activity", activity.id, data, previous, user_id=user_id, change_source=source
    )
    return data


async def patch_activity(request: Request) -> Response:
    state = state_of(request)
    body = await read_json(request)
    activity = _activity(state, request)
    return ok(change_activity(state, activity, body, user_id=principal_of(request).user_id, source="api"))


async def remove_activity(request: Request) -> Response:
    state = state_of(request)
    activity = _activity(state, request)
    delete_item(state, activity, user_id=principal_of(request).user_id, source="api")
    return ok({"id": activity.id})


def truth(state: PipedriveState, kind: str) -> list[dict[str, Any]]:
    """Every note (v1 shape, ``is_deleted`` added) or activity (v2 shape), deleted ones too."""
    with state.lock:
        if kind == "notes":
            return [{**n.describe(), "is_deleted": n.is_deleted} for n in state.notes]
        return [a.describe_v2() for a in state.activities]


def find(state: PipedriveState, kind: str, item_id: int) -> Note | Activity:
    """A live note or activity for the admin API; 404 otherwise."""
    items: list[Any] = state.notes if kind == "notes" else state.activities
    found = next((i for i in items if i.id == item_id and not i.is_deleted), None)
    if found is None:
        raise PipedriveHTTPError(404, msg.error(msg.NOT_FOUND.format(entity=kind.rstrip("s").capitalize())))
    return found  # type: ignore[no-any-return]


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/notes", list_notes, methods=["GET"]),
        Route("/api/v1/notes", add_note, methods=["POST"]),
        Route("/api/v1/notes/{id:int}", get_note, methods=["GET"]),
        Route("/api/v1/notes/{id:int}", update_note, methods=["PUT"]),
        Route("/api/v1/notes/{id:int}", remove_note, methods=["DELETE"]),
        Route("/api/v1/activities", list_activities_v1, methods=["GET"]),
        Route("/api/v1/activities", add_activity, methods=["POST"]),
        Route("/api/v2/activities", list_activities, methods=["GET"]),
        Route("/api/v2/activities/{id:int}", get_activity, methods=["GET"]),
        Route("/api/v2/activities/{id:int}", patch_activity, methods=["PATCH"]),
        Route("/api/v2/activities/{id:int}", remove_activity, methods=["DELETE"]),
    ]
