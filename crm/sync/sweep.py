"""Finding records deleted in a CRM that lists no deletions: a budgeted sweep of live ids.

An incremental pull reads what changed since its cursor; a deleted record does not change,
it disappears. A CRM that lists its deletions (``crm.interface.DeletionFeed``: Pipedrive's
deals) tells the pull; for a type it lists none of (Pipedrive's persons and organizations,
docs/PIPEDRIVE_API.md §3) the cache kept the record until the next full pull or a webhook,
up to a day for a cache without webhooks. The sweep closes that gap at a bounded cost.

When an incremental pull finished a type whose deletions no feed reported, and the sweep is
due (its last complete look for deletions, a sweep or a full pull, began ``interval_s`` ago
or more; ``Settings.deletion_sweep_s``, CRM_DELETION_SWEEP), it:

1. estimates its cost: one list request per ``page_limit`` (500) live records cached, at
   least one: ``ceil(n / 500)`` requests, 20 per 10,000 records (a CRM that hands a cursor to
   an empty last page costs one more). It is skipped, and says so in the sync state and the
   log, when the day's allowance left is smaller: ``daily`` in the API's ``rate_gauges``
   (``ReportsUsage``) where the CRM reports one, else CRM_DAILY_LIMIT times CRM_DAILY_BUDGET
   less what this app's sync runs sent today (UTC), else (no limit known) never;
2. walks the type's live list from the start by one cursor chain, keeping only ids. One
   chain, not ``WindowedList``'s windows at once: the CRM's paging guarantee (every record
   that existed for the whole walk is listed once) holds for one chain; a window by update
   time would lose a record edited into a window already walked, and a sweep of 20 requests
   gains little from running them at once;
3. only after the walk reached its end, flags archived the cached records it did not see,
   except those written to the cache since the sweep began (a record created or changed
   meanwhile, which a webhook or this app's push wrote) and those created here and not
   pushed yet. Then it records when it began.

A sweep that stops part-way (network drop, rate limit past the client's retries, the lease
lost) flags nothing: the error goes up as any pull error does, the last look stays as it
was, so the next incremental pull finds the sweep still due and walks again from the start.

The timeline's feeds (``crm.sync.listpull_interactions``: Pipedrive's notes and activities,
of which it lists no deleted ones either) are looked at under these same rules: ``may_look``
(due, affordable, else noted skipped) and ``looked`` (the look recorded) are shared, keyed by
the feed's ``feed_key``; only the walk differs (the feed read in full, see that module's
reasons), so a feed's look shows beside the types' in ``looked_for_lines``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crm.config import Settings
from crm.interface import CrmApi, ObjectTypeInfo, ReportsUsage
from crm.store import Store
from crm.store.values import now_iso
from crm.sync.runstate import FEED_PREFIX, Progress

log = logging.getLogger("crm.sync")

# How deletions were last looked for (``SyncState.sweep_of``'s ``how``).
SWEPT = "sweep"
FULL_PULL = "full pull"
LISTED = "listed"


@dataclass(frozen=True)
class SweepPolicy:
    """How often a sweep may run and what a day allows (from ``Settings``).

    ``interval_s`` 0: never. ``daily_limit`` 0: unknown (then only a limit the CRM reports
    stops a sweep). ``daily_share``: the share of the day's limit this app may spend.
    """

    interval_s: int = 0
    daily_limit: int = 0
    daily_share: float = 1.0

    @classmethod
    def of(cls, settings: Settings) -> SweepPolicy:
        return cls(settings.deletion_sweep_s, settings.daily_limit, settings.daily_budget)


def sweep_cost(records: int, page_limit: int) -> int:
    """List requests one sweep of ``records`` live records costs (at least one)."""
    return max(1, math.ceil(max(0, records) / max(1, page_limit)))


class DeletionSweep:
    """One pull's sweeps, one type at a time (called from each type's thread).

    Args:
        api: the connected CRM.
        policy: how often and within what budget.
        progress: the run's counters (flagged records add to ``archived``).
        check: raises when the pull must stop (lease lost, another type failed).
        page_limit: records asked for per list page.
    """

    def __init__(
        self,
        api: CrmApi,
        policy: SweepPolicy,
        progress: Progress,
        check: Callable[[], None],
        *,
        page_limit: int,
    ) -> None:
        self.api = api
        self.policy = policy
        self.progress = progress
        self.check = check
        self.page_limit = max(1, page_limit)

    def after_full_pull(self, db: Store, object_type: str, began_ms: int) -> None:
        """A complete full pull flagged every record it did not see: a look for deletions."""
        db.syncstate.record_sweep(object_type, began_ms, how=FULL_PULL)

    def due(self, db: Store, object_type: str, now_ms: int | None = None) -> bool:
        """Whether a sweep of ``object_type`` is due (never when the policy has no interval)."""
        if self.policy.interval_s <= 0:
            return False
        looked = db.syncstate.sweep_of(object_type)["looked_ms"]
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return looked is None or now - looked >= self.policy.interval_s * 1000

    def allowance(self, db: Store) -> int | None:
        """Requests the day still allows this app, or None when no limit is known."""
        gauges = self.api.rate_gauges() if isinstance(self.api, ReportsUsage) else {}
        daily = gauges.get("daily") or {}
        if daily.get("limit"):
            return int(float(daily["limit"]) * self.policy.daily_share - float(daily.get("used", 0)))
        if self.policy.daily_limit > 0:
            midnight = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00.000Z")
            spent = db.syncstate.requests_since(midnight)
            return int(self.policy.daily_limit * self.policy.daily_share) - spent
        return None

    def may_look(self, db: Store, name: str, cached: int) -> bool:
        """Whether a look for deletions of ``name`` (a type, or a timeline feed's key) runs now:
        it is due and the day's allowance affords its cost, one list request per
        ``page_limit`` of the ``cached`` live items. A due look the allowance cannot afford is
        noted skipped (the Sync page and ``status`` say why) and logged; it stays due."""
        if not self.due(db, name):
            return False
        cost = sweep_cost(cached, self.page_limit)
        left = self.allowance(db)
        if left is not None and cost > left:
            why = f"the daily budget has {max(0, left)} requests left; a sweep needs {cost}"
            db.syncstate.note_sweep_skipped(name, why)
            log.info("deletion sweep of %s skipped: %s", name, why)
            return False
        return True

    def looked(self, db: Store, name: str, began_ms: int) -> None:
        """A look for deletions of ``name`` that began at ``began_ms`` reached its end and
        flagged what it did not see (call in the transaction that flagged them)."""
        db.syncstate.record_sweep(name, began_ms, how=SWEPT)

    def after_incremental(self, db: Store, object_type: str, *, listed: bool, began_ms: int) -> int | None:
        """After an incremental pull of ``object_type`` that began at ``began_ms``: where the
        CRM listed its deletions (``listed``) that was the look; else sweep if due and
        affordable. The records flagged; None when no sweep ran (listed, not due, or skipped
        for the budget)."""
        if listed:
            db.syncstate.record_sweep(object_type, began_ms, how=LISTED)
            return None
        if not self.may_look(db, object_type, len(db.queries.record_stamps(object_type))):
            return None
        swept_ms, swept = int(time.time() * 1000), now_iso()
        seen = self._live_ids(object_type)
        self.check()
        with db.atomic():
            unseen = [i for i in db.queries.record_stamps(object_type) if i not in seen]
            flagged = db.records.mark_archived(object_type, unseen, synced_before=swept)
            self.looked(db, object_type, swept_ms)
        self.progress.note("archived", object_type, flagged, add=True)
        log.info("deletion sweep of %s: %d live, %d flagged deleted", object_type, len(seen), flagged)
        return flagged

    def _live_ids(self, object_type: str) -> set[str]:
        """Every live id of the type, by one cursor chain from the start to the end."""
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            self.check()
            page = self.api.list_page(object_type, properties=[], cursor=cursor, limit=self.page_limit)
            seen.update(r.id for r in page.records)
            # (a CRM that hands back the same cursor would loop forever)
            if page.next_cursor is None or page.next_cursor == cursor:
                return seen
            cursor = page.next_cursor


def looked_for_lines(
    db: Store, types: Sequence[ObjectTypeInfo], crm: str, interval_s: int, *, now: float | None = None
) -> list[str]:
    """When each type's deletions were last looked for, in the CRM's words, for the Sync page
    and ``status`` ([] for a CRM whose pull keeps no such record: HubSpot's tuned pull); then
    each timeline feed's (``crm.sync.listpull_interactions``), named as the CRM names the feed
    ("notes", "activities")."""
    looks = db.syncstate.sweeps()
    moment = time.time() if now is None else now
    labels = [(info.name, info.label.lower()) for info in types]
    labels += [(name, name[len(FEED_PREFIX) :]) for name in looks if name.startswith(FEED_PREFIX)]
    lines: list[str] = []
    for name, label in labels:
        look = looks.get(name)
        line = None if look is None else _looked_line(look, label, crm, interval_s, moment)
        if line is not None:
            lines.append(line)
    return lines


def _looked_line(look: dict[str, Any], label: str, crm: str, interval_s: int, moment: float) -> str | None:
    looked_ms = look["looked_ms"]
    if looked_ms is None:
        # A due sweep skipped before any look was recorded (a cache fully pulled before
        # sweeps existed): the skip is the news, and the sweep stays due.
        if not look["skipped_at"]:
            return None
        line, due = f"Deleted {label} never looked for yet", moment
    elif look["how"] == LISTED:
        return f"Deleted {label}: {crm} lists them; last asked {_clock(looked_ms / 1000)}."
    else:
        how = "a full pull" if look["how"] == FULL_PULL else f"a sweep of {crm}'s list"
        line = f"Deleted {label} last looked for {_clock(looked_ms / 1000)}, by {how}"
        due = looked_ms / 1000 + interval_s
    if interval_s > 0:
        line += f"; next sweep {'due now' if due <= moment else 'due ' + _clock(due)}"
    else:
        line += "; sweeps are off (CRM_DELETION_SWEEP)"
    if look["skipped_at"]:
        line += f"; skipped at {look['skipped_at'][:16].replace('T', ' ')} UTC: {look['skipped_why']}"
    return line + "."


def _clock(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch_s))
