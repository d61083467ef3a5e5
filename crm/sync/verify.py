"""Reconcile: compare the cache with its CRM, within a request budget shown beforehand, and repair it.

A sync is trusted because of how it reads; ``verify`` checks the outcome. Per record type
(HubSpot: contacts, companies, deals, tickets; any CRM: the types it provides) it finds three
kinds of difference:

- **missing**: the CRM has the record, the cache does not (or has it archived);
- **extra**: the cache shows a record the CRM no longer has (deleted or merged away);
- **stale**: the CRM's copy was modified after the cached one.

HubSpot is checked on its own client (below: its searches by last change and by id range);
every other CRM through the CRM interface alone (``CrmApi``), so a new CRM gets Verify with
no code here:

- *sample*: the first batch of ``iter_modified_since`` from the newest cached change (what
  the CRM changed since the cache last heard: where a sync or a lost webhook falls behind),
  then the same random SAMPLE read back by ``batch_read``: ``1 + ceil(SAMPLE / 100)``
  requests per type; the CRM's count is not known from these;
- *full*: every record by ``list_page`` pages of 200, ``ceil(count / 200)`` requests per
  type; only a walk that reached the end reports *extra* records (a cursor walk, unlike an
  id range, says nothing about the records after where it stopped) and gives the count.
- *fix*: the same reads and writes, with the associations a CRM keeps on its records
  (``LinksOnRecords``: Pipedrive's org_id, person_id) taken from them at no request, others
  asked of ``CrmApi.associations``.

HubSpot's two depths, both counted in requests before anything is asked (``estimate``):

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from crm import crms, oauth, store
from crm.config import Settings
from crm.errors import MissingScopes
from crm.hubspot import HubSpotClient
from crm.hubspot import Record as HubSpotRecord
from crm.interface import CrmApi, LinksOnRecords, Record
from crm.store import OBJECT_TYPES, Store
from crm.store.records import LOCAL_ID_PREFIX
from crm.store.values import to_epoch_ms
from crm.sync.listpull import NO_ASSOCIATION_TYPE
from crm.sync.pull import ASSOC_CHUNK, pull_properties, writer_for
from crm.sync.runstate import ASSOCIATIONS

log = logging.getLogger(__name__)

VERIFY_TYPES: tuple[str, ...] = tuple(OBJECT_TYPES)
SAMPLE = 200  # cached records per type read back in a sample check
RECENT = 100  # most recently modified HubSpot records per type in a sample check
BATCH = 100  # ids per batch read
PAGE = 200  # records per search page


def _tuned(settings: Settings) -> bool:
    """Whether the connection's CRM is checked on HubSpot's client (its searches by id range
    and last change): the CRM with a tuned pull (``crm.sync.runner.TunedPull``); any other
    is checked through the CRM interface."""
    from crm.sync.runner import TunedPull

    return isinstance(crms.provider_of(settings), TunedPull)


def verify_types(settings: Settings) -> tuple[str, ...]:
    """The record types a check covers: HubSpot's four, else those the CRM provides and the
    cache keeps."""
    if _tuned(settings):
        return VERIFY_TYPES
    return tuple(t.name for t in crms.provider_of(settings).object_types() if t.name in OBJECT_TYPES)


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
    in_crm: int | None = None  # the CRM's count (HubSpot: search total; else a full walk's), None: unknown
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
    # Association reads a fix makes per record type and chunk of records (HubSpot: one per
    # pair; a CRM keeping links on its records: only the pairs it does not keep there).
    association_reads: dict[str, int] = field(default_factory=dict)

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
    return {t: _planned(counts.get(t, 0), full=full, sample=sample) for t in verify_types(settings)}


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
        reads = result.association_reads.get(check.object_type, len(ASSOCIATIONS[check.object_type]))
        total += reads * math.ceil(touched / ASSOC_CHUNK)
    return total


# -- the check -----------------------------------------------------------------------------


def verify(
    settings: Settings,
    *,
    full: bool = False,
    sample: int = SAMPLE,
    budget: int | None = None,
    client: HubSpotClient | None = None,
    api: CrmApi | None = None,
) -> VerifyResult:
    """Compare the cache of the connection ``settings`` name with its CRM account (see the
    module docstring); never writes the cache. ``client`` (HubSpot) or ``api`` (any other
    CRM): the caller's, else one is opened for the check and closed after it."""
    planned = estimate(settings, full=full, sample=sample)
    result = VerifyResult(full=full, budget=budget, estimate=sum(planned.values()))
    spend = Budget(budget)
    if api is not None or not _tuned(settings):
        with _api(settings, api) as crm, store.open(settings) as db:
            _verify_any(db, crm, result, spend, verify_types(settings), sample=sample)
        result.requests = spend.used
        return result
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
    check.in_crm = page.total
    cached = db.queries.record_stamps(object_type, ids=[r.id for r in page.records])
    for record in page.records:
        _compare(check, record, cached)
    picked = [i for i in db.queries.record_stamps(object_type, sample=max(0, sample)) if i.isdigit()]
    stamps = db.queries.record_stamps(object_type, ids=picked)
    _read_back(check, picked, stamps, spend, lambda ids: hubspot.batch_read(object_type, ids, properties=[]))


def _read_back(
    check: TypeCheck,
    picked: Sequence[str],
    stamps: dict[str, str | None],
    spend: Budget,
    read: Callable[[list[str]], Sequence[HubSpotRecord | Record]],
) -> None:
    """Sampled cached records read back (``read``: one request per BATCH ids): each compared,
    or extra when the CRM returns nothing for it."""
    for chunk in _chunks(picked, BATCH):
        spend.take()
        found = {r.id: r for r in read(chunk)}
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
            if check.in_crm is None:
                check.in_crm = page.total
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


def _compare(check: TypeCheck, record: HubSpotRecord | Record, cached: dict[str, str | None]) -> None:
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
    api: CrmApi | None = None,
) -> FixResult:
    """Repair what ``result`` found: re-read missing and stale records (and their
    associations), flag archived the extra ones the CRM confirms are gone."""
    outcome = FixResult()
    spend = Budget(budget)
    if api is not None or not _tuned(settings):
        with _api(settings, api) as crm, store.open(settings) as db:
            try:
                for check in result.types.values():
                    _fix_any(db, crm, check, spend, outcome, list(result.types))
            except BudgetSpent:
                outcome.complete = False
        outcome.requests = spend.used
        return outcome
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


# -- any CRM, through the CRM interface --------------------------------------------------------


def _verify_any(
    db: Store, api: CrmApi, result: VerifyResult, spend: Budget, types: Sequence[str], *, sample: int
) -> None:
    counts = db.queries.counts()
    for object_type in types:
        check = TypeCheck(object_type, cached=counts.get(object_type, 0))
        result.types[object_type] = check
        result.association_reads[object_type] = len(_asked_pairs(api, object_type, types))
        try:
            if result.full:
                _walk_any(db, api, check, spend)
            else:
                _sample_any(db, api, check, spend, sample)
            check.complete = True
        except BudgetSpent:
            log.info("verify: the budget of %s requests ran out in %s", result.budget, object_type)


def _sample_any(db: Store, api: CrmApi, check: TypeCheck, spend: Budget, sample: int) -> None:
    object_type = check.object_type
    stamps_all = db.queries.record_stamps(object_type)
    newest = max((to_epoch_ms(s) or 0 for s in stamps_all.values()), default=0)
    spend.take()
    changed = api.iter_modified_since(object_type, newest, properties=[])
    try:
        recent = next(changed, [])
    finally:
        close = getattr(changed, "close", None)
        if close is not None:
            close()
    for record in recent:
        _compare(check, record, stamps_all)
    picked = [
        i
        for i in db.queries.record_stamps(object_type, sample=max(0, sample))
        if not i.startswith(LOCAL_ID_PREFIX)
    ]
    _read_back(check, picked, stamps_all, spend, lambda ids: api.batch_read(object_type, ids, properties=[]))


def _walk_any(db: Store, api: CrmApi, check: TypeCheck, spend: Budget) -> None:
    """Every record by cursor; only a walk that reached the end names what the CRM no longer has."""
    object_type = check.object_type
    cached = db.queries.record_stamps(object_type)
    seen: set[str] = set()
    cursor: str | None = None
    while True:
        spend.take()
        page = api.list_page(object_type, properties=[], cursor=cursor, limit=PAGE)
        for record in page.records:
            seen.add(record.id)
            _compare(check, record, cached)
        if page.next_cursor is None or page.next_cursor == cursor:
            break
        cursor = page.next_cursor
    check.in_crm = len(seen)
    for record_id in sorted(i for i in cached if i not in seen and not i.startswith(LOCAL_ID_PREFIX)):
        _note(check.extra, record_id)
        check.checked += 1


def _asked_pairs(api: CrmApi, object_type: str, types: Sequence[str]) -> list[tuple[str, str]]:
    """The type's associations the cache keeps that the CRM does not keep on its records
    (each a read per chunk of records)."""
    on_records = api.links_on_records(object_type) if isinstance(api, LinksOnRecords) else {}
    return [(a, b) for a, b in ASSOCIATIONS.get(object_type, ()) if b in types and b not in on_records]


def _fix_any(
    db: Store, api: CrmApi, check: TypeCheck, spend: Budget, outcome: FixResult, types: Sequence[str]
) -> None:
    """Re-read what is missing or stale, read back what looks gone (archived only when the CRM
    returns nothing), then rewrite the associations of every record read."""
    object_type = check.object_type
    props = db.queries.synced_property_names(object_type)
    on_records = api.links_on_records(object_type) if isinstance(api, LinksOnRecords) else {}
    pairs = [(a, b) for a, b in ASSOCIATIONS.get(object_type, ()) if b in types]
    read: list[Record] = []
    gone: list[str] = []
    for chunk in _chunks([*check.missing, *check.stale], BATCH):
        spend.take()
        records = api.batch_read(object_type, chunk, properties=props)
        db.records.upsert_records(object_type, records)
        read += records
        gone += [i for i in chunk if i not in {r.id for r in records}]
        outcome.fetched[object_type] = outcome.fetched.get(object_type, 0) + len(records)
    for chunk in _chunks(check.extra, BATCH):
        spend.take()
        still = api.batch_read(object_type, chunk, properties=props)
        if still:
            db.records.upsert_records(object_type, still)
            read += still
            outcome.kept[object_type] = outcome.kept.get(object_type, 0) + len(still)
        gone += [i for i in chunk if i not in {r.id for r in still}]
    if gone:
        outcome.removed[object_type] = outcome.removed.get(object_type, 0) + db.records.mark_archived(
            object_type, gone
        )
    for start in range(0, len(read), ASSOC_CHUNK):
        chunk_records = read[start : start + ASSOC_CHUNK]
        ids = [r.id for r in chunk_records]
        for from_type, to_type in pairs:
            link = on_records.get(to_type)
            if link is not None:
                values = {r.id: r.properties.get(link) for r in chunk_records}
                found = {i: [str(v)] if v not in (None, "") else [] for i, v in values.items()}
            else:
                spend.take()
                found = api.associations(from_type, to_type, ids)
            db.records.replace_associations(
                from_type,
                to_type,
                ids,
                {i: [(str(to), NO_ASSOCIATION_TYPE) for to in found.get(i, ())] for i in ids},
            )


# -- helpers -------------------------------------------------------------------------------


class _api:
    """The caller's connected API, or one opened for the connection (and closed) here."""

    def __init__(self, settings: Settings, api: CrmApi | None) -> None:
        self._settings, self._given = settings, api
        self._opened: CrmApi | None = None

    def __enter__(self) -> CrmApi:
        if self._given is not None:
            return self._given
        opened = self._opened = crms.provider_of(self._settings).connect(self._settings)
        return opened

    def __exit__(self, *exc: Any) -> None:
        if self._opened is not None:
            self._opened.close()


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
