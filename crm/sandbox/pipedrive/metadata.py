"""API v1 (fields, users, webhooks) and pipelines/stages in v1 and v2 (notes and activities:
``crm.sandbox.pipedrive.interactions``).

v1 collections page with ``start``/``limit`` and answer
``additional_data.pagination.{start, limit, more_items_in_collection, next_start}``.
``POST /api/v1/personFields`` (and organization/deal) creates a custom field with a
40-character hash key; enum and set options get ids (docs/PIPEDRIVE_API.md §5).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox.pipedrive import messages as msg
from crm.sandbox.pipedrive.models import (
    FIELD_PATHS,
    FIELD_TYPES,
    EntityType,
    describe_pipeline,
    describe_stage,
    now_s,
)
from crm.sandbox.pipedrive.webhooks import ACTIONS, OBJECTS
from crm.sandbox.pipedrive.wire import (
    PipedriveHTTPError,
    bad_request,
    not_found,
    offset_page,
    ok,
    principal_of,
    query_int,
    read_json,
    state_of,
)

# ------------------------------------------------------------------------------------------ fields


def _field_routes(path: str, entity: EntityType) -> list[BaseRoute]:
    async def list_fields(request: Request) -> Response:
        state = state_of(request)
        with state.lock:
            fields = [f.describe() for f in state.fields.fields[entity]]
        page, additional = offset_page(request, fields)
        return ok(page, additional)

    async def get_field(request: Request) -> Response:
        state = state_of(request)
        with state.lock:
            field = state.fields.by_id(entity, request.path_params["id"])
            if field is None:
                raise not_found("field")
            return ok(field.describe())

    async def add_field(request: Request) -> Response:
        state = state_of(request)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise bad_request(msg.NOT_AN_OBJECT)
        name, field_type = body.get("name"), body.get("field_type")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise bad_request(msg.FIELD_NAME)
        if field_type not in FIELD_TYPES:
            raise bad_request(msg.FIELD_TYPE.format(choices=", ".join(FIELD_TYPES)))
        labels = _option_labels(body.get("options"))
        if field_type in ("enum", "set") and not labels:
            raise bad_request(msg.FIELD_OPTIONS)
        with state.lock:
            field = state.fields.create_custom(entity, name.strip(), str(field_type), labels, now_s())
            for record in state.records.records[entity].values():
                record.custom.setdefault(field.key, None)
            return ok(field.describe())

    return [
        Route(f"/api/v1/{path}", list_fields, methods=["GET"]),
        Route(f"/api/v1/{path}", add_field, methods=["POST"]),
        Route(f"/api/v1/{path}" + "/{id:int}", get_field, methods=["GET"]),
    ]


def _option_labels(options: Any) -> list[str]:
    """Labels from ``["a", "b"]`` or ``[{"label": "a"}, …]``; 400 for anything else."""
    if options is None:
        return []
    if not isinstance(options, list):
        raise bad_request(msg.FIELD_OPTIONS)
    labels = []
    for option in options:
        label = option.get("label") if isinstance(option, dict) else option
        if not isinstance(label, str) or not label.strip():
            raise bad_request(msg.FIELD_OPTIONS)
        labels.append(label.strip())
    return labels


# ------------------------------------------------------------------------------- users, pipelines


async def list_users(request: Request) -> Response:
    state = state_of(request)
    return ok([u.describe() for u in state.users])


async def get_me(request: Request) -> Response:
    state = state_of(request)
    user = state.user(principal_of(request).user_id)
    if user is None:
        raise not_found("user")
    return ok({**user.describe(state.company()), "is_you": True})


async def get_user(request: Request) -> Response:
    state = state_of(request)
    user = state.user(request.path_params["id"])
    if user is None:
        raise not_found("user")
    return ok(user.describe())


def _pipeline_routes(version: str) -> list[BaseRoute]:
    v2 = version == "v2"

    async def list_pipelines(request: Request) -> Response:
        state = state_of(request)
        ts = state.fields.fields["deals"][0].add_ts
        data = [describe_pipeline(p, ts, v2=v2) for p in state.pipelines]
        return ok(data, {"next_cursor": None} if v2 else None)

    async def get_pipeline(request: Request) -> Response:
        state = state_of(request)
        pipeline = state.pipeline(request.path_params["id"])
        if pipeline is None:
            raise not_found("pipeline")
        return ok(describe_pipeline(pipeline, state.fields.fields["deals"][0].add_ts, v2=v2))

    async def list_stages(request: Request) -> Response:
        state = state_of(request)
        ts = state.fields.fields["deals"][0].add_ts
        wanted = query_int(request, "pipeline_id")
        data = [describe_stage(s, p, ts, v2=v2) for p in state.pipelines for s in p.stages
                if wanted is None or p.id == wanted]  # fmt: skip
        return ok(data, {"next_cursor": None} if v2 else None)

    async def get_stage(request: Request) -> Response:
        state = state_of(request)
        stage = state.stage(request.path_params["id"])
        pipeline = state.pipeline(stage.pipeline_id) if stage else None
        if stage is None or pipeline is None:
            raise not_found("stage")
        return ok(describe_stage(stage, pipeline, state.fields.fields["deals"][0].add_ts, v2=v2))

    return [
        Route(f"/api/{version}/pipelines", list_pipelines, methods=["GET"]),
        Route(f"/api/{version}/pipelines" + "/{id:int}", get_pipeline, methods=["GET"]),
        Route(f"/api/{version}/stages", list_stages, methods=["GET"]),
        Route(f"/api/{version}/stages" + "/{id:int}", get_stage, methods=["GET"]),
    ]


# ---------------------------------------------------------------------------------------- webhooks


async def list_webhooks(request: Request) -> Response:
    state = state_of(request)
    return _webhook_ok([w.describe(state.config.company_id) for w in state.webhooks.listed()])


def _webhook_ok(data: Any, status: int = 200) -> Response:
    """The webhooks API's envelope: ``{"status": "ok", "success": true, "data": …}``."""
    return JSONResponse({"status": "ok", "success": True, "data": data}, status_code=status)


async def add_webhook(request: Request) -> Response:
    state = state_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request(msg.NOT_AN_OBJECT)
    url = body.get("subscription_url")
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad_request(msg.WEBHOOK_URL)
    action, entity = body.get("event_action"), body.get("event_object")
    if action not in ACTIONS:
        raise bad_request(msg.BAD_CHOICE.format(name="event_action", choices=", ".join(ACTIONS)))
    if entity not in OBJECTS:
        raise bad_request(msg.BAD_CHOICE.format(name="event_object", choices=", ".join(OBJECTS)))
    version = str(body.get("version") or "2.0")
    if version != "2.0":
        raise bad_request(msg.WEBHOOK_VERSION)
    auth_user, auth_password = body.get("http_auth_user"), body.get("http_auth_password")
    for name, value in (("http_auth_user", auth_user), ("http_auth_password", auth_password)):
        if value is not None and not isinstance(value, str):
            raise bad_request(msg.WRONG_TYPE.format(name=name, detail="must be a string"))
    principal = principal_of(request)
    user_id = body.get("user_id") or principal.user_id
    if not isinstance(user_id, int) or state.user(user_id) is None:
        raise bad_request(msg.NO_SUCH_REF.format(name="user_id", entity="user", id=user_id))
    hook = state.webhooks.register(
        user_id, str(url), str(action), str(entity), auth_user, auth_password, version, now_s()
    )
    if hook is None:
        raise PipedriveHTTPError(422, msg.error(msg.WEBHOOK_LIMIT))
    return _webhook_ok(hook.describe(state.config.company_id), status=201)


async def delete_webhook(request: Request) -> Response:
    state = state_of(request)
    if not state.webhooks.remove(request.path_params["id"]):
        raise not_found("webhook")
    return _webhook_ok({"id": request.path_params["id"]})


def routes() -> list[BaseRoute]:
    table: list[BaseRoute] = []
    for path, entity in FIELD_PATHS.items():
        table += _field_routes(path, entity)
    table += _pipeline_routes("v1") + _pipeline_routes("v2")
    table += [
        Route("/api/v1/users", list_users, methods=["GET"]),
        Route("/api/v1/users/me", get_me, methods=["GET"]),
        Route("/api/v1/users/{id:int}", get_user, methods=["GET"]),
        Route("/api/v1/webhooks", list_webhooks, methods=["GET"]),
        Route("/api/v1/webhooks", add_webhook, methods=["POST"]),
        Route("/api/v1/webhooks/{id:int}", delete_webhook, methods=["DELETE"]),
    ]
    return table
