"""What a portal is and how its records are defined: properties, pipelines, owners, account.

Cut from the client because these are separate HubSpot APIs (properties, pipelines,
owners, account info) read once per sync or page, not per record, and they change with
those APIs only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crm.hubspot.models import (
    account_from_wire,
    next_after,
    owner_from_wire,
    pipeline_from_wire,
    property_from_wire,
    property_to_wire,
)
from crm.hubspot.paths import PATHS, flag, path
from crm.hubspot.transport import Transport

OWNERS_LIMIT = 100


def list_properties(transport: Transport, object_type: str) -> list[dict[str, Any]]:
    """Every property definition of the object type, in snake_case."""
    body = transport.json("GET", "properties", path("properties", object_type=object_type), kind="other")
    return [property_from_wire(item) for item in body.get("results") or []]


def create_property(transport: Transport, object_type: str, definition: dict[str, Any]) -> dict[str, Any]:
    """Create a property (snake_case or HubSpot keys).

    Raises:
        AlreadyExists: a property with that name exists (409).
    """
    body = transport.json(
        "POST",
        "properties",
        path("properties", object_type=object_type),
        json=property_to_wire(definition),
        kind="other",
    )
    return property_from_wire(body)


def list_pipelines(transport: Transport, object_type: str) -> list[dict[str, Any]]:
    """Pipelines with their stages, ordered by display order."""
    body = transport.json("GET", "pipelines", path("pipelines", object_type=object_type), kind="other")
    pipelines = [pipeline_from_wire(item) for item in body.get("results") or []]
    return sorted(pipelines, key=lambda p: (p["display_order"] or 0, p["label"] or ""))


def iter_owners(transport: Transport, *, include_archived: bool = False) -> Iterator[dict[str, Any]]:
    """Every active owner (then the archived ones when asked), page by page."""
    for archived in (False, True) if include_archived else (False,):
        after: str | None = None
        while True:
            params = {"limit": str(OWNERS_LIMIT), "archived": flag(archived)}
            if after:
                params["after"] = after
            body = transport.json("GET", "owners", PATHS["owners"], params=params, kind="other")
            for item in body.get("results") or []:
                yield owner_from_wire(item)
            cursor = next_after(body)
            if cursor is None or cursor == after:
                break
            after = cursor


def account_info(transport: Transport) -> dict[str, Any]:
    """portal_id, ui_domain, time_zone, currency (and a few more) of the portal."""
    return account_from_wire(transport.json("GET", "account", PATHS["account"], kind="other"))
