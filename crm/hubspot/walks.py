"""Walks over HubSpot's search API: what changed since a moment, and records by id.

Search pages by offset and stops at 10,000 results per query. Both walks here avoid deep
offsets by re-anchoring each query on the last value they read, so they never meet the
cap, and both are written against a ``search`` function (``HubSpotClient.search``), so
the filter and sort dicts, HubSpot's wire names, stay in ``crm.hubspot``.

Modified since (``modified_since``): each query starts at the newest last-modified
timestamp seen so far (``GTE``), skipping the records already read at that timestamp but
one. Plain offset paging skips a record whenever another record in the window is
modified while we walk (it moves to the end and everything after it shifts down by
one); here, if the one record kept is not the first result, the group at the anchor
changed meanwhile and the anchor is re-read from its start. So nothing is skipped, few
records are read twice, and the offset stays small. A millisecond holding more records
than search can page is walked by id.

By id (``id_range_page``): one page of records whose ``hs_object_id`` is in
``[lower, end)``, ascending; a caller re-anchors on the last id it read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from crm.hubspot.models import LAST_MODIFIED, Record, SearchPage, iso_to_ms

ID_PROPERTY = "hs_object_id"


class Search(Protocol):
    """``HubSpotClient.search``, or a stand-in with its signature."""

    def __call__(
        self,
        object_type: str,
        *,
        filter_groups: Sequence[dict[str, Any]] = ...,
        sorts: Sequence[Any] = ...,
        properties: Sequence[str] = ...,
        limit: int = ...,
        after: str | None = ...,
    ) -> SearchPage: ...


def modified_since(
    search: Search,
    object_type: str,
    since_ms: int,
    properties: Sequence[str],
    *,
    limit: int,
    cap: int,
    on_total: Callable[[int], None] | None = None,
) -> Iterator[list[Record]]:
    """Records modified at or after ``since_ms``, one batch per search page, each record
    at most once per version (a record modified again during the walk comes again).

    Batches may be empty (a page of records already read): the caller gets control after
    every request, to stop a walk. ``on_total`` receives the first page's total (how many
    records the window held when the walk began).
    """
    prop = LAST_MODIFIED[object_type]
    wanted = list(dict.fromkeys([*properties, prop]))
    sorts = [{"propertyName": prop, "direction": "ASCENDING"}]
    lower, skip, expect_first = since_ms, 0, None
    seen: dict[str, int] = {}
    first = True
    while True:
        page = search(
            object_type,
            filter_groups=[{"filters": [{"propertyName": prop, "operator": "GTE", "value": str(lower)}]}],
            sorts=sorts,
            properties=wanted,
            limit=limit,
            after=str(skip) if skip else None,
        )
        found = page.records
        if expect_first is not None and (not found or found[0].id != expect_first):
            skip, expect_first = 0, None
            continue
        if first and on_total is not None:
            on_total(page.total)
        first = False
        stamps = {r.id: _modified_ms(r, prop, lower) for r in found}
        fresh = [r for r in found if seen.get(r.id) != stamps[r.id]]
        seen.update(stamps)
        yield fresh
        # HubSpot drops the next link at the result cap although more match: the total says so.
        more = page.next_after is not None or skip + len(found) < page.total
        if not more or len(found) < limit:
            return
        top = max(stamps.values())
        if top > lower:
            lower, skip = top, sum(1 for ms in stamps.values() if ms == top) - 1
        else:
            skip += len(found) - 1
        expect_first = found[-1].id
        if skip + limit >= cap:
            # More records in one millisecond than search can page: walk it by id.
            yield from _one_millisecond(search, object_type, prop, lower, wanted, seen, limit)
            lower, skip, expect_first = lower + 1, 0, None


def _one_millisecond(
    search: Search,
    object_type: str,
    prop: str,
    ms: int,
    wanted: list[str],
    seen: dict[str, int],
    limit: int,
) -> Iterator[list[Record]]:
    last_id = 0
    while True:
        page = search(
            object_type,
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": prop, "operator": "EQ", "value": str(ms)},
                        {"propertyName": ID_PROPERTY, "operator": "GT", "value": str(last_id)},
                    ]
                }
            ],
            sorts=[{"propertyName": ID_PROPERTY, "direction": "ASCENDING"}],
            properties=wanted,
            limit=limit,
        )
        fresh = [r for r in page.records if seen.get(r.id) != ms]
        for record in page.records:
            seen[record.id] = ms
        yield fresh
        ids = [int(r.id) for r in page.records if r.id.isdigit()]
        # Each query starts after the last id read, so a full page means "look again".
        if len(page.records) < limit or not ids or max(ids) <= last_id:
            return
        last_id = max(ids)


def id_range_page(
    search: Search,
    object_type: str,
    *,
    lower: int | None,
    end: int | None,
    properties: Sequence[str],
    limit: int,
) -> SearchPage:
    """Records with ``lower <= id < end`` (either bound optional), ascending by id, one page."""
    filters: list[dict[str, str]] = []
    if lower is not None:
        filters.append({"propertyName": ID_PROPERTY, "operator": "GTE", "value": str(lower)})
    if end is not None:
        filters.append({"propertyName": ID_PROPERTY, "operator": "LT", "value": str(end)})
    return search(
        object_type,
        filter_groups=[{"filters": filters}] if filters else [],
        sorts=[{"propertyName": ID_PROPERTY, "direction": "ASCENDING"}],
        properties=properties,
        limit=limit,
    )


def recently_modified(
    search: Search, object_type: str, *, properties: Sequence[str], limit: int
) -> SearchPage:
    """The ``limit`` most recently modified records, newest first, and the type's total."""
    prop = LAST_MODIFIED[object_type]
    return search(
        object_type,
        sorts=[{"propertyName": prop, "direction": "DESCENDING"}],
        properties=list(dict.fromkeys([*properties, prop])),
        limit=limit,
    )


def highest_id(search: Search, object_type: str) -> tuple[int | None, int]:
    """The largest numeric record id (None when there is none or it is not a number) and the total."""
    page = search(
        object_type,
        sorts=[{"propertyName": ID_PROPERTY, "direction": "DESCENDING"}],
        properties=[ID_PROPERTY],
        limit=1,
    )
    high = page.records[0].id if page.records else None
    return (int(high) if high and high.isdigit() else None), page.total


def _modified_ms(record: Record, prop: str, default: int) -> int:
    return iso_to_ms(record.properties.get(prop)) or iso_to_ms(record.updated_at) or default
