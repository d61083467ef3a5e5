"""HubSpot's CRM search endpoint: one page of results, and the lookups built on one page.

Cut from the client because search changes for its own reasons (its own rate budget of
5 per second, the 200-result page, the 10,000-result cap, the filter and sort shapes);
the walks past the cap are in ``crm.hubspot.walks``, written against ``search``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm.hubspot.models import Record, SearchPage, next_after, record_from_wire
from crm.hubspot.paths import path
from crm.hubspot.transport import Transport
from crm.hubspot.walks import Search

SEARCH_LIMIT = 200
SEARCH_RESULT_CAP = 10_000
_FILTER_KEYS = {"property_name": "propertyName", "high_value": "highValue"}


def search(
    transport: Transport,
    object_type: str,
    *,
    filter_groups: Sequence[dict[str, Any]] = (),
    sorts: Sequence[Any] = (),
    properties: Sequence[str] = (),
    limit: int = SEARCH_LIMIT,
    after: str | None = None,
    query: str | None = None,
) -> SearchPage:
    """One page of search results (search budget: 5 per second per portal).

    Filters take HubSpot's keys or snake_case (``property_name``, ``high_value``);
    a sort is ``"name"``, ``"-name"`` (descending) or a dict.
    """
    body: dict[str, Any] = {
        "filterGroups": [_filter_group(g) for g in filter_groups],
        "sorts": [_sort(s) for s in sorts],
        "properties": list(dict.fromkeys(properties)),
        "limit": max(1, min(limit, SEARCH_LIMIT)),
    }
    if after:
        body["after"] = str(after)
    if query:
        body["query"] = query
    data = transport.json("POST", "search", path("search", object_type=object_type), json=body, kind="search")
    records = [record_from_wire(item) for item in data.get("results") or []]
    return SearchPage(records, int(data.get("total") or 0), next_after(data))


def find_by_timestamp(
    search: Search, object_type: str, timestamp_ms: int, *, properties: Sequence[str]
) -> list[Record]:
    """Engagements whose ``hs_timestamp`` is exactly ``timestamp_ms`` (at most 200).

    How a retried note or task create checks whether the first attempt reached HubSpot:
    creates have no idempotency key (docs/INTERACTIONS_API.md §1), so the push gives
    each one its own millisecond and compares the text of what it finds.
    """
    page = search(
        object_type,
        filter_groups=[
            {"filters": [{"propertyName": "hs_timestamp", "operator": "EQ", "value": str(timestamp_ms)}]}
        ],
        properties=properties,
        limit=SEARCH_LIMIT,
    )
    return page.records


def _filter_group(group: dict[str, Any]) -> dict[str, Any]:
    filters = group.get("filters", [])
    return {"filters": [{_FILTER_KEYS.get(k, k): v for k, v in f.items()} for f in filters]}


def _sort(sort: Any) -> dict[str, str]:
    if isinstance(sort, str):
        descending = sort.startswith("-")
        return {"propertyName": sort.lstrip("-"), "direction": "DESCENDING" if descending else "ASCENDING"}
    name = sort.get("propertyName") or sort.get("property_name")
    return {"propertyName": str(name), "direction": str(sort.get("direction", "ASCENDING")).upper()}
