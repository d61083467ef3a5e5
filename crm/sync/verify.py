"""Reconcile: compare the cache with HubSpot, within a request budget shown beforehand, and repair it.

A sync is trusted because of how it reads; ``verify`` checks the outcome. Per record type
(contacts, companies, deals, tickets) it finds three kinds of difference:

- **missing**: HubSpot has the record, the cache does not (or has it archived);
- **extra**: the cache shows a record HubSpot no longer has (deleted or merged away);
- **stale**: HubSpot's copy was modified after the cached one.

Two depths, both counted in requests before anything is asked (``estimate``):

- *sample* (default): one search page of the RECENT most recently modified records (which
  also gives HubSpot's count; new and changed records are where a sync falls behind) and a
  random SAMPLE of cached records read back by batch read (100 per request), so
  ``1 + ceil(SAMPLE / 100)`` requests per type whatever the portal's size;
- *full*: every id and last-modified time, by search pages of 200 walked by id
  (``HubSpotClient.search_id_range``), so ``ceil(count / 200)`` requests per type.

A budget caps the requests (each one is taken from it before it is made); a check the
budget cut short says so, and reports as *extra* only cached ids inside the id range it
walked. Search is eventually consistent, so a record changed seconds ago may show its old
last-modified: that can hide a difference for a moment, never invent one; an id search
has not indexed yet could look *extra*, which is why ``fix`` reads every extra id back
before removing it.

``fix`` re-reads the missing and stale records by batch read (with their associations,
as the pull does) and flags archived the extra ones HubSpot confirms it no longer has;
one it still returns is re-read instead. Both write through the sync's upserts, so a
field with a pending local edit keeps it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from crm import oauth, store
from crm.config import Settings
from crm.errors import MissingScopes
from crm.hubspot import HubSpotClient, Record
from crm.store import OBJECT_TYPES, Store
from crm.store.values import to_epoch_ms
from crm.sync.pull import ASSOC_CHUNK, pull_properties, writer_for
from crm.sync.runstate import ASSOCIATIONS

log = logging.getLogger(__name__)

VERIFY_TYPES: tuple[str, ...] = tuple(OBJECT_TYPES)
SAMPLE = 200  # cached records per type read back in a sample check
RECENT = 100  # most recently modified HubSpot records per type in a sample check
BATCH = 100  # ids per batch read
PAGE = 200  # records per search page


def supported(settings: Settings) -> bool:
    """Whether the connection's CRM can be verified: the check runs on HubSpot's client (its
    searches by id range and last change), which a CRM offers with its tuned pull
    (``crm.sync.runner.TunedPull``); any other CRM is not offered the check yet."""
    from crm import crms
    from crm.sync.runner import TunedPull

    return isinstance(crms.provider_of(settings), TunedPull)


class BudgetSpent(Exception):
    """The request budget is used up; the check or fix stops where it is."""


class Budget:
    """Requests left; each request is taken before it is made. ``None``: no cap."""

    def __init__(self, limit: int | None) -> None:
        self.limit = None if limit is None else max(0, int(limit))
        self.used = 0

    def take(self) -> None:
        if self.limit is not None and self.used >= self.limit:
            raise BudgetSpent
        self.used += 1


@dataclass
class TypeCheck:
    """What one type's check found."""

    object_type: str
    cached: int
    hubspot: int | None = None  # HubSpot's count (search total)
    checked: int = 0  # records compared
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    complete: bool = False  # every planned request was made
    skipped: str | None = None  # why the type was not checked

    @property
    def differences(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.stale)


@dataclass
class VerifyResult:
    full: bool
    budget: int | None
    estimate: int  # requests planned
    requests: int = 0  # requests made
    types: dict[str, TypeCheck] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(c.complete or c.skipped for c in self.types.values())

    @property
    def clean(self) -> bool:
        """Every check ran to its end and found nothing."""
        return self.complete and not any(c.differences for c in self.types.values())


@dataclass
class FixResult:
    fetched: dict[str, int] = field(default_factory=dict)  # missing or stale records re-read
    removed: dict[str, int] = field(default_factory=dict)  # extra records flagged archived
    kept: dict[str, int] = field(default_factory=dict)  # "extra" records HubSpot still has
    requests: int = 0
    complete: bool = True  # False: the budget ran out first


# -- estimates -----------------------------------------------------------------------------


def estimate(settings: Settings, *, full: bool = False, sample: int = SAMPLE) -> dict[str, int]:
    """Requests a check will make per type, from the cached counts (read before any request)."""
    with store.open(settings) as db:
        counts = db.queries.counts()
    return {t: _planned(counts.get(t, 0), full=full, sample=sample) for t in VERIFY_TYPES}


def _planned(cached: int, *, full: bool, sample: int) -> int:
    if full:
        # The count is the cache's: HubSpot may hold more (those are what a full check finds).
        return max(1, math.ceil(cached / PAGE))
    return 1 + math.ceil(min(max(0, sample), cached) / BATCH)


def estimate_fix(result: VerifyResult) -> int:
    """Requests ``fix`` will make for what ``result`` found."""
    total = 0
    for check in result.types.values():
        reread = len(check.missing) + len(check.stale)
        total += math.ceil(reread / BATCH) + math.ceil(len(check.extra) / BATCH)
        touched = reread + len(check.extra)
        total += len(ASSOCIATIONS[check.object_type]) * math.ceil(touched / ASSOC_CHUNK)
    return total


# -- the check -----------------------------------------------------------------------------


def verify(
    settings: Settings,
    *,
    full: bool = False,
    sample: int = SAMPLE,
    budget: int | None = None,
    client: HubSpotClient | None = None,
) -> VerifyResult:
    """Compare the cache of the connection ``settings`` name with its CRM account (see the
    module docstring); never writes the cache."""
    planned = estimate(settings, full=full, sample=sample)
    result = VerifyResult(full=full, budget=budget, estimate=sum(planned.values()))
    spend = Budget(budget)
    with _client(settings, client) as hubspot, store.open(settings) as db:
        counts = db.queries.counts()
        for object_type in VERIFY_TYPES:
            check = TypeCheck(object_type, cached=counts.get(object_type, 0))
            result.types[object_type] = check
            try:
                if full:
                    _check_all(db, hubspot, check, spend)
                else:
                    _check_sample(db, hubspot, check, spend, sample)
                check.complete = True
            except BudgetSpent:
                log.info("verify: the budget of %s requests ran out in %s", budget, object_type)
            except MissingScopes as exc:
                check.skipped = f"not granted: {exc}"
    result.requests = spend.used
    return result


def _check_sample(db: Store, hubspot: HubSpotClient, check: TypeCheck, spend: Budget, sample: int) -> None:
    object_type = check.object_type
    spend.take()
    page = hubspot.recently_modified(object_type, limit=RECENT)
    check.hubspot = page.total
    cached = db.queries.record_stamps(object_type, ids=[r.id for r in page.records])
    for record in page.records:
        _compare(check, record, cached)
    picked = [i for i in db.queries.record_stamps(object_type, sample=max(0, sample)) if i.isdigit()]
    stamps = db.queries.record_stamps(object_type, ids=picked)
    for chunk in _chunks(picked, BATCH):
        spend.take()
        found = {r.id: r for r in hubspot.batch_read(object_type, chunk, properties=[])}
        for record_id in chunk:
            if record_id in found:
                _compare(check, found[record_id], stamps)
            else:
                _note(check.extra, record_id)
                check.checked += 1


def _check_all(db: Store, hubspot: HubSpotClient, check: TypeCheck, spend: Budget) -> None:
    object_type = check.object_type
    cached = db.queries.record_stamps(object_type)
    seen: set[str] = set()
    lower: int | None = None
    walked_below: float = 0  # every id under this was walked (math.inf once the walk ended)
    try:
        while True:
            spend.take()
            page = hubspot.search_id_range(object_type, lower=lower, end=None, properties=[], limit=PAGE)
            if check.hubspot is None:
                check.hubspot = page.total
            for record in page.records:
                seen.add(record.id)
                _compare(check, record, cached)
            ids = [int(r.id) for r in page.records if r.id.isdigit()]
            if len(page.records) < PAGE or page.next_after is None or not ids:
                walked_below = math.inf
                break
            if lower is not None and max(ids) < lower:
                break  # a server ignoring the filter would loop forever
            lower = walked_below = max(ids) + 1
    finally:
        # Only the walked id range can say what HubSpot no longer has.
        walked = [i for i in cached if i.isdigit() and i not in seen and int(i) < walked_below]
        for record_id in sorted(walked, key=int):
            _note(check.extra, record_id)
            check.checked += 1


def _compare(check: TypeCheck, record: Record, cached: dict[str, str | None]) -> None:
    check.checked += 1
    if record.id not in cached:
        _note(check.missing, record.id)
        return
    theirs = to_epoch_ms(record.updated_at)
    mine = to_epoch_ms(cached[record.id])
    if theirs is not None and (mine is None or theirs > mine):
        _note(check.stale, record.id)


def _note(found: list[str], record_id: str) -> None:
    if record_id not in found:
        found.append(record_id)


# -- the repair ----------------------------------------------------------------------------


def fix(
    settings: Settings,
    result: VerifyResult,
    *,
    budget: int | None = None,
    client: HubSpotClient | None = None,
) -> FixResult:
    """Repair what ``result`` found: re-read missing and stale records (and their
    associations), flag archived the extra ones HubSpot confirms are gone."""
    outcome = FixResult()
    spend = Budget(budget)
    with _client(settings, client) as hubspot, store.open(settings) as db:
        try:
            for check in result.types.values():
                _fix_type(db, hubspot, check, spend, outcome)
        except BudgetSpent:
            outcome.complete = False
    outcome.requests = spend.used
    return outcome


def _fix_type(db: Store, hubspot: HubSpotClient, check: TypeCheck, spend: Budget, outcome: FixResult) -> None:
    object_type = check.object_type
    writer = writer_for(db, object_type)
    props = pull_properties(db, object_type)
    touched: list[str] = []
    gone: list[str] = []
    for chunk in _chunks([*check.missing, *check.stale], BATCH):
        spend.take()
        records = hubspot.batch_read(object_type, chunk, properties=props)
        writer.upsert_records(object_type, records)
        returned = {r.id for r in records}
        gone += [i for i in chunk if i not in returned]
        touched += sorted(returned)
        outcome.fetched[object_type] = outcome.fetched.get(object_type, 0) + len(records)
    for chunk in _chunks(check.extra, BATCH):
        spend.take()
        still = hubspot.batch_read(object_type, chunk, properties=props)
        if still:
            writer.upsert_records(object_type, still)
            touched += [r.id for r in still]
            outcome.kept[object_type] = outcome.kept.get(object_type, 0) + len(still)
        returned = {r.id for r in still}
        gone += [i for i in chunk if i not in returned]
    if gone:
        outcome.removed[object_type] = outcome.removed.get(object_type, 0) + writer.mark_archived(
            object_type, gone
        )
    for chunk in _chunks(touched, ASSOC_CHUNK):
        for from_type, to_type in ASSOCIATIONS[object_type]:
            spend.take()
            found = hubspot.read_associations(from_type, to_type, chunk)
            writer.replace_associations(from_type, to_type, chunk, found)


# -- helpers -------------------------------------------------------------------------------


class _client:
    """The caller's client, or one opened (and closed) here."""

    def __init__(self, settings: Settings, client: HubSpotClient | None) -> None:
        self._settings, self._given = settings, client
        self._opened: HubSpotClient | None = None

    def __enter__(self) -> HubSpotClient:
        if self._given is not None:
            return self._given
        opened = self._opened = oauth.open_client(self._settings)
        return opened

    def __exit__(self, *exc: Any) -> None:
        if self._opened is not None:
            self._opened.close()


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
