"""Edge cases of the incremental walk that the sandbox cannot stage on cue.

A scripted search (records in memory, HubSpot's GTE/EQ/GT filters, one ascending sort,
offset paging) lets a test change records between two pages, exactly where the walk is
most fragile. Everything else is tested against the sandbox over loopback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm.hubspot import Record, SearchPage
from crm.hubspot.walks import modified_since
from crm.store.values import to_column
from crm.sync.pull import SEARCH_LIMIT, _in_range, _split

T0 = 1_767_225_600_000  # 2026-01-01, epoch ms


def iso(ms: int) -> str:
    return to_column(str(ms), "datetime")


class ScriptedSearch:
    """Just enough of HubSpotClient.search for ``crm.hubspot.walks.modified_since``."""

    def __init__(self, stamps: dict[str, int]) -> None:
        self.stamps = dict(stamps)
        self.calls = 0
        self.between_pages: Callable[[ScriptedSearch], None] | None = None

    def search(
        self,
        object_type: str,
        *,
        filter_groups: Any,
        sorts: Any,
        properties: Any,
        limit: int,
        after: str | None = None,
    ) -> SearchPage:
        if self.calls and self.between_pages:
            self.between_pages(self)
        self.calls += 1
        rows = list(self.stamps.items())
        for f in filter_groups[0]["filters"]:
            value = int(f["value"])
            key = (lambda r: r[1]) if f["propertyName"] == "lastmodifieddate" else (lambda r: int(r[0]))
            op = {"GTE": lambda a, b: a >= b, "EQ": lambda a, b: a == b, "GT": lambda a, b: a > b}[
                f["operator"]
            ]
            rows = [r for r in rows if op(key(r), value)]
        by_id = sorts[0]["propertyName"] == "hs_object_id"
        rows.sort(key=(lambda r: int(r[0])) if by_id else (lambda r: (r[1], int(r[0]))))
        start = int(after or 0)
        page = rows[start : start + limit]
        more = start + limit < len(rows) and start + limit < 10_000
        records = [Record(i, {"lastmodifieddate": iso(ms)}, None, None) for i, ms in page]
        return SearchPage(records, len(rows), str(start + limit) if more else None)


def walk(client: ScriptedSearch) -> list[str]:
    batches = modified_since(client.search, "contacts", T0, [], limit=SEARCH_LIMIT, cap=10_000)
    return [r.id for batch in batches for r in batch]


def test_every_change_is_read_once_when_pages_share_timestamps():
    # Bulk updates give a hundred records the same millisecond.
    client = ScriptedSearch({str(10_000 + n): T0 + n // 100 for n in range(1_050)})
    seen = walk(client)
    assert sorted(seen) == sorted(client.stamps) and len(seen) == len(set(seen))
    assert client.calls <= 1_050 // (SEARCH_LIMIT - 1) + 2


def test_a_record_changed_at_the_anchor_mid_walk_does_not_hide_its_neighbours():
    client = ScriptedSearch({str(10_000 + n): T0 + n // 300 for n in range(900)})

    def edit_one_at_the_anchor(search: ScriptedSearch) -> None:
        if search.calls == 2:  # the anchor group is half read: move one of its records on
            search.stamps["10250"] = T0 + 9_999

    client.between_pages = edit_one_at_the_anchor
    seen = set(walk(client))
    assert seen == set(client.stamps)


def test_a_millisecond_with_more_records_than_search_can_page_is_walked_by_id():
    client = ScriptedSearch({str(10_000 + n): T0 + 5_000 for n in range(10_450)})
    seen = walk(client)
    assert len(seen) == len(set(seen)) == 10_450


def test_id_ranges_cover_every_id_once_and_the_last_is_open_ended():
    for taper in (0, 3):
        ranges = _split(10_001, 10_400, 4, taper=taper)
        assert ranges[0][0] == 10_001 and ranges[-1][1] is None
        owners = [
            [i for i, (s, e) in enumerate(ranges) if _in_range(str(n), s, e)] for n in range(10_001, 10_600)
        ]
        assert all(len(o) == 1 for o in owners)
    # Ranges are whole search pages (200 ids), and the ones walkers take last are a
    # fifth of the size of the first.
    ranges = _split(1, 100_000, 50, taper=7)
    sizes = [e - s for s, e in ranges if e is not None]
    assert all(size % 200 == 0 for size in sizes)
    assert sizes[0] == 2_000 and sizes[-1] == 400 and sizes.count(400) == 7 * 5 - 1
    assert ranges[-1] == (99_601, None)


def test_a_walk_that_lands_exactly_on_the_result_cap_still_reads_everything():
    # 150 records, then 10,300 sharing the next millisecond: the offset inside that
    # millisecond reaches 9,800, where a page would end at exactly 10,000 results.
    stamps = {str(10_000 + n): T0 for n in range(150)}
    stamps.update({str(20_000 + n): T0 + 1 for n in range(10_300)})
    client = ScriptedSearch(stamps)
    seen = walk(client)
    assert len(seen) == len(set(seen)) == len(stamps)
