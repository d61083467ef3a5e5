"""Reading records by id order and one by one: list pages and single gets of the objects API.

Cut from the client because it changes with HubSpot's list/get endpoints (paging cursors,
inline associations, URL limits), not with batch writes or search.

Long ``properties`` lists (hundreds of custom properties) would overflow the URL of list
and get calls (HubSpot answers 414). A list page then carries as many properties as fit
in an 8,000-character URL and fetches the rest for the same ids with one ``batch/read``
(POST body): two requests per page of 100 whatever the number of properties, where
chunking the query string would cost one request per chunk from the same burst budget.
"""

from __future__ import annotations

from collections.abc import Sequence

from crm.errors import NotFound
from crm.hubspot import batches
from crm.hubspot.models import (
    Page,
    Record,
    inline_associations_from_wire,
    merge_records,
    next_after,
    record_from_wire,
)
from crm.hubspot.paths import flag, path
from crm.hubspot.transport import Transport

LIST_LIMIT = 100


def list_page(
    transport: Transport,
    object_type: str,
    *,
    properties: Sequence[str],
    after: str | None = None,
    limit: int = LIST_LIMIT,
    archived: bool = False,
    associations: Sequence[str] = (),
) -> Page:
    """One page of records ordered by id; ``next_after`` is None on the last page.

    ``associations`` (to-types) asks HubSpot to carry each record's associations of those
    types inline (``Page.associations``), which costs no request of its own; records whose
    inline lists are incomplete are in ``Page.unread`` (read them with ``read_associations``).
    """
    where = path("list", object_type=object_type)
    params: dict[str, str] = {"limit": str(max(1, min(limit, LIST_LIMIT))), "archived": flag(archived)}
    if after:
        params["after"] = after
    if associations:
        params["associations"] = ",".join(associations)
    in_url, rest = transport.fit_properties(where, params, properties)
    if in_url:
        params["properties"] = ",".join(in_url)
    body = transport.json("GET", "list", where, params=params, kind="list")
    items = body.get("results") or []
    records = [record_from_wire(item) for item in items]
    inline, unread = (
        inline_associations_from_wire(object_type, items, associations) if associations else ({}, set())
    )
    if rest and records:
        extra = {
            r.id: r
            for r in batches.read_chunk(transport, object_type, [r.id for r in records], rest, None, archived)
        }
        records = [merge_records(r, extra[r.id]) if r.id in extra else r for r in records]
    return Page(records, next_after(body), inline, unread)


def get_object(
    transport: Transport,
    object_type: str,
    record_id: str,
    *,
    properties: Sequence[str],
    id_property: str | None = None,
) -> Record:
    """One record by id (or by a unique property).

    Raises:
        NotFound: no such record (or it is archived).
    """
    where = path("object", object_type=object_type, record_id=record_id)
    params: dict[str, str] = {}
    if id_property:
        params["idProperty"] = id_property
    in_url, rest = transport.fit_properties(where, params, properties)
    if rest:
        found = batches.read_chunk(transport, object_type, [record_id], list(properties), id_property, False)
        if not found:
            raise NotFound(
                f"{object_type} {record_id} was not found", status_code=404, category="OBJECT_NOT_FOUND"
            )
        return found[0]
    if in_url:
        params["properties"] = ",".join(in_url)
    return record_from_wire(transport.json("GET", "object", where, params=params, kind="other"))
