"""Owners: the portal's users that records can be assigned to, paged like HubSpot.

``GET /crm/v3/owners`` (also with a trailing slash, which the official SDK sends) and
``GET /crm/v3/owners/{ownerId}?idProperty=id|userId``, plus ``/crm/owners/{version}``.
"""

from __future__ import annotations

import bisect
import dataclasses
import zlib
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox import messages as msg
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.objects.types import iso
from crm.sandbox.wire import authorize, query_bool, query_int, sandbox_state, versioned

OWNER_SCOPES = ["crm.objects.owners.read", "automation"]


@dataclasses.dataclass
class Owner:
    id: str
    email: str
    first_name: str
    last_name: str
    user_id: int
    team: str
    created: int
    updated: int
    archived: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "type": "PERSON",
            "firstName": self.first_name,
            "lastName": self.last_name,
            # Archived owners lose their userId (HUBSPOT_API.md §5).
            "userId": None if self.archived else self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": iso(self.created),
            "updatedAt": iso(self.updated),
            "archived": self.archived,
            "teams": [
                {"id": str(zlib.crc32(self.team.encode()) % 10_000_000), "name": self.team, "primary": True}
            ],
        }


class Owners:
    def __init__(self) -> None:
        self.by_id: dict[str, Owner] = {}

    def reset(self, owners: list[Owner]) -> None:
        self.by_id = {o.id: o for o in sorted(owners, key=lambda o: int(o.id))}

    def is_active(self, owner_id: str) -> bool:
        owner = self.by_id.get(owner_id)
        return owner is not None and not owner.archived

    def active_ids(self) -> list[str]:
        return [o.id for o in self.by_id.values() if not o.archived]


async def get_page(request: Request) -> Response:
    authorize(request, OWNER_SCOPES)
    state = sandbox_state(request)
    limit = query_int(request, "limit", 100, maximum=500)
    archived = query_bool(request, "archived")
    email = (request.query_params.get("email") or "").strip().lower()
    after = request.query_params.get("after")
    with state.lock:
        owners = [o for o in state.owners.by_id.values() if o.archived == archived]
    if email:
        owners = [o for o in owners if o.email.lower() == email]
    start = 0
    if after:
        try:
            start = bisect.bisect_left([int(o.id) for o in owners], int(after))
        except ValueError:
            start = len(owners)
    page = owners[start : start + limit]
    body: dict[str, Any] = {"results": [o.to_wire() for o in page]}
    if start + limit < len(owners):
        next_id = owners[start + limit].id
        body["paging"] = {
            "next": {"after": next_id, "link": f"{request.url.path}?after={next_id}&limit={limit}"}
        }
    return JSONResponse(body)


async def get_by_id(request: Request) -> Response:
    authorize(request, OWNER_SCOPES)
    state = sandbox_state(request)
    wanted = request.path_params["ownerId"]
    by_user = request.query_params.get("idProperty", "id") == "userId"
    archived = query_bool(request, "archived")
    with state.lock:
        for owner in state.owners.by_id.values():
            key = str(owner.user_id) if by_user else owner.id
            if key == wanted and owner.archived == archived:
                return JSONResponse(owner.to_wire())
    raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))


def routes() -> list[BaseRoute]:
    table: list[BaseRoute] = []
    for p in versioned("/crm/v3/owners", "/crm/owners/{version}"):
        table += [
            Route(p, get_page, methods=["GET"]),
            Route(p + "/", get_page, methods=["GET"]),
            Route(p + "/{ownerId}", get_by_id, methods=["GET"]),
        ]
    return table
