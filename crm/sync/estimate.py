"""What a full pull will cost before it starts: requests, and minutes at HubSpot's rate limits.

The Sync page shows it beside *Full re-sync*, with the daily budget left, so a person can
see that a re-sync of a large portal will pause for the day before pressing the button.

The model follows ``crm.sync.pull``: each type costs a first list page and a largest-id
search (its ranges), its records on list pages (100 each, the burst budget) and search
pages (200 each, the search budget) in the proportion that keeps both budgets busy until
the same moment, its associations in chunks of 1,000 ids per pair, and a catch-up search
and archived-list page at the end. Inbox threads are read one list page per 100 and one
request per thread for its messages. Metadata is six requests (three property lists, two
pipeline lists, the owners).

Measured full pulls run at 80-90% of the bound the two budgets set (docs/PERFORMANCE.md),
so the minutes shown are the bound's divided by EFFICIENCY.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crm import crms
from crm.config import Settings
from crm.hubspot.limits import DEFAULT_BURST, DEFAULT_BURST_WINDOW_S, DEFAULT_SEARCH, DEFAULT_SEARCH_WINDOW_S
from crm.store.interactions import INTERACTION_TYPES, THREADS
from crm.sync.pull import ASSOC_CHUNK, LIST_LIMIT, PULL_TYPES, SEARCH_LIMIT
from crm.sync.runstate import ASSOCIATIONS

EFFICIENCY = 0.85
METADATA_REQUESTS = 6


@dataclass(frozen=True)
class Estimate:
    """A full pull's expected cost."""

    records: int
    requests: int
    burst_requests: int
    search_requests: int
    seconds: float  # expected wall time (the bound's, divided by EFFICIENCY)
    counted_from: str  # "the last full pull" or "the cache"

    @property
    def minutes(self) -> float:
        return self.seconds / 60


def estimate_full_pull(
    totals: Mapping[str, int],
    *,
    burst_per_s: float = DEFAULT_BURST / DEFAULT_BURST_WINDOW_S,
    search_per_s: float = DEFAULT_SEARCH / DEFAULT_SEARCH_WINDOW_S,
    counted_from: str = "the cache",
) -> Estimate:
    """The cost of a full pull of ``totals`` (records per type, as ``PULL_TYPES`` names them)."""
    burst = float(METADATA_REQUESTS)
    search = 0.0
    paged = 0  # records read on list or search pages
    for object_type in (*PULL_TYPES, THREADS):
        n = max(0, int(totals.get(object_type) or 0))
        if object_type == THREADS:
            burst += 1 + math.ceil(n / LIST_LIMIT) + n  # channels, thread pages, each thread's messages
            continue
        burst += 2  # first list page (the smallest id); the archived list in the catch-up
        search += 2  # largest id and total; the catch-up search
        if n == 0:
            continue
        paged += n
        burst += math.ceil(n / ASSOC_CHUNK) * len(ASSOCIATIONS.get(object_type, ()))
    # Split the records so both budgets finish together (list pages at burst_per_s,
    # search pages at search_per_s), then the slower side sets the time.
    # (burst + L/100) / b == (search + (paged - L)/200) / s, solved for L:
    b, s = burst_per_s, search_per_s
    list_share = (b * search + b * paged / SEARCH_LIMIT - s * burst) / (s / LIST_LIMIT + b / SEARCH_LIMIT)
    on_list = min(max(list_share, 0.0), float(paged))
    burst_total = burst + on_list / LIST_LIMIT
    search_total = search + (paged - on_list) / SEARCH_LIMIT
    bound_s = max(burst_total / burst_per_s, search_total / search_per_s)
    return Estimate(
        records=sum(max(0, int(totals.get(t) or 0)) for t in (*PULL_TYPES, THREADS)),
        requests=math.ceil(burst_total) + math.ceil(search_total),
        burst_requests=math.ceil(burst_total),
        search_requests=math.ceil(search_total),
        seconds=bound_s / EFFICIENCY,
        counted_from=counted_from,
    )


def expected_totals(runs: list[dict[str, Any]], cached: Mapping[str, int]) -> tuple[dict[str, int], str]:
    """Records per type a full pull would read: HubSpot's totals as the newest run that
    counted them saw them (``counts["expected"]``), else what the cache holds."""
    for run in runs:
        expected = (run.get("counts") or {}).get("expected") or {}
        if expected:
            return {str(t): int(n) for t, n in expected.items()}, "the last sync's totals"
    return {t: int(n) for t, n in cached.items() if t in (*PULL_TYPES, THREADS)}, "the cache"


def budgets_counted(settings: Settings) -> bool:
    """Whether the connection's sync counts its requests against budgets this module models.

    Only a CRM with a tuned pull (``crm.sync.runner.TunedPull``: HubSpot's ``crm.sync.pull``)
    does: its runs write the burst, search and daily budgets, and ``estimate_full_pull``
    models that pull. The generic pull (``crm.sync.listpull``, Pipedrive's) counts no
    requests and waits out the CRM's own limits, so pages say no estimate exists for it.
    """
    from crm.sync.runner import TunedPull

    return isinstance(crms.provider_of(settings), TunedPull)


def measured_full_pull(runs: list[dict[str, Any]], records_now: int) -> Estimate | None:
    """A full pull's cost as the newest finished full run of this connection measured it, scaled
    to the records cached now; None before any full run counted its requests.

    For a CRM whose pull this module does not model (``budgets_counted`` False: Pipedrive's,
    read one page after another at whatever pace its rate limit allows), what the last full
    run took is the only honest figure: its requests (``ReportsUsage``) and its wall time.
    """
    for run in runs:
        if run.get("kind") != "full" or run.get("state") != "succeeded" or not run.get("requests"):
            continue
        # Records only, as ``records_now`` counts them: the notes and activities a run also
        # reads (by kind) are not among the records cached now.
        counted = (run.get("counts") or {}).get("records") or {}
        read = sum(int(n or 0) for t, n in counted.items() if t not in INTERACTION_TYPES)
        scale = records_now / read if read and records_now else 1.0
        requests = math.ceil(int(run["requests"]) * scale)
        return Estimate(
            records=records_now or read,
            requests=requests,
            burst_requests=requests,
            search_requests=0,
            seconds=float(run.get("duration_s") or 0.0) * scale,
            counted_from="the last full re-sync",
        )
    return None
