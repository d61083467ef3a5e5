"""Pulling HubSpot into the cache: full pulls by parallel id ranges, incremental by search.

Full pull (per object type)::

    first list page (limit 1)  -> smallest id
    search, sorted by id desc  -> largest id and the total (progress)
    [min .. max] split into ranges of about RANGE_RECORDS records (the last one
    open-ended, so an estimate that is off only costs speed, never records);
    list walkers and search walkers take ranges from one queue until it is empty.

HubSpot has two budgets per portal: 110 requests per 10 s on ordinary endpoints (a list
page holds 100 records) and a separate 5 searches per second (a search page holds 200).
A list walker pages with the list cursor ``after``, which is the id of the next record
(pages come in id order), and stops when it crosses into the next range. A search
walker asks for the ids in [position, end) in id order (``HubSpotClient.search_id_range``)
and re-anchors every page on the last id it read, so it never pages by offset and never meets the 10,000
result cap. Both save their position as the smallest id not yet read, which is what
the list cursor is, so either kind can resume a range the other started. Taking ranges from a shared queue
keeps both budgets busy until the last range, whatever the id density.

Each walker upserts every page as it arrives (progress is visible at once) and hands its
ids and position to the type's association writer, which reads associations in whole
chunks of ASSOC_CHUNK ids (v4 batch read) and only then saves the positions those pages
reached, so a saved position never claims records or associations that are not
committed, and no walker waits on the burst budget for an association read. An
interrupted full pull resumes from those positions. Only when every range is done are
records that were not seen flagged archived and the incremental cursor set, so a
half-written table never looks complete.

Incremental pull (per object type): ``HubSpotClient.iter_modified_since`` from the
cursor minus OVERLAP_MS, which re-anchors every page on the newest timestamp seen
instead of paging by offset through the whole window, so a record modified mid-walk
hides no other and the 10,000-result cap is walked past (``crm.hubspot.walks``). The
new cursor is the run's start, never later.

Why OVERLAP_MS is 5 minutes: search is eventually consistent (HubSpot gives no figure;
seconds are typical), HubSpot may shift last-modified shortly after a create (one
connector waits 30 s), and our clock is not HubSpot's. Five minutes covers all three
with a wide margin; the cost is re-reading what changed in the five minutes before the
previous run started, which upserts idempotently. Proven in the sandbox with its index lag
on (each write searchable 2.5 to 5 s late, in random order, longer than a run takes):
changes made just before each of several incremental runs, which those runs cannot see,
are all read by a later one (tests/sync/test_index_lag_sync.py), and the same test fails
with no lookback. A record is missed only if search shows it later than OVERLAP_MS after
the run that should have read it started, so the lookback must exceed the index lag plus
the clock skew; HubSpot gives no figure for its lag, seconds are observed
(docs/JOURNAL_AND_LIMITS_API.md §7).

Associations in an incremental pull: HubSpot does not move a record's last-modified when
only its associations change, so re-reading the associations of the changed records never
caught every association change; it costs one v4 read per 1,000 changed records and pair
(20 of the 123 requests of 20,000 changed contacts). When live updates are healthy
(``crm.journal.live_health``: webhooks or the journal bring ``associationChange`` events,
and creations and restores bring their associations) the pull leaves associations to them
(``live_associations``); otherwise it keeps re-reading. The full pull's closing step
always re-reads.

A full pull ends with the same incremental step from its own start, so records changed
or deleted behind the walkers (or while an interrupted pull waited to be resumed) are
current when it finishes. The same step covers search's eventual consistency: a record
changed in the seconds before a search walker reached it may come back stale (or, if
new, not at all), and it is re-read there because it was modified after the cursor.

Interactions (issue 13): tickets are pulled like deals; the five engagement types (notes,
calls, emails, meetings, tasks) go the same way into ``db.interactions``, which has the
same verbs as ``db.records``, with their associations to contacts, companies, deals and
tickets as timeline links. All of them share the one rate limiter of the portal. A type
HubSpot refuses with MISSING_SCOPES (a portal that did not grant ``tickets``) is skipped,
not failed: the others still sync, and the scopes it needs are saved in the meta key
``missing_scopes`` (``{type: [scope, ...]}``) for the pages to say what to grant.

Deletions: search never returns archived records and archiving does not bump
last-modified, so an incremental pull also lists ``archived=true`` (ids only, 100 per
page). That list is HubSpot's recycle bin (90 days), so its cost grows with recent
deletions, not with the portal; webhooks make deletions visible sooner, and a full pull
flags every record it did not see.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from crm import store
from crm.errors import DailyBudgetSpent, DailyLimitReached, HubSpotError, MissingScopes, NotFound
from crm.hubspot import HubSpotClient
from crm.hubspot.errors import required_scopes
from crm.hubspot.models import INLINE_ASSOCIATION_TYPES, Page
from crm.logs import carry
from crm.store import OBJECT_TYPES, Store
from crm.store.interactions import (
    ENGAGEMENT_PROPERTIES,
    ENGAGEMENT_TYPES,
    THREADS,
    format_transcript,
)
from crm.store.values import now_iso
from crm.sync.runstate import ASSOCIATIONS, OVERLAP_MS, Interrupted, Progress, plan_for

log = logging.getLogger("crm.sync")

WALKERS = 4
# Search walkers per type; search's own budget (5/s) is shared by the three types.
SEARCHERS = 3
# Full-pull ranges: about this many records each, never fewer than RANGE_MIN (each range
# costs a partial last page and a partial association chunk).
RANGE_RECORDS = 2_000
RANGE_MIN = 400
TAPER_PIECES = 4
LIST_LIMIT = 100
SEARCH_LIMIT = 200
ASSOC_CHUNK = 1_000
# Types pulled at once (the rest queue). Each holds a connection while its walkers open
# their own, so this bounds a pull's connections (a PostgreSQL pool holds 10 by default);
# the portal's one rate limiter, not this, sets the pace.
TYPES_AT_ONCE = 3
# Threads sending the full pull's opening probes, and reading messages or transcripts
# (one request each, no batch endpoint) side by side.
PROBE_THREADS = 6
FETCH_THREADS = 8
# Every type a pull reads: the record tables, then the engagements.
PULL_TYPES = (*OBJECT_TYPES, *ENGAGEMENT_TYPES)
# The types with pipelines (stages and their open/closed state).
PIPELINE_TYPES = ("deals", "tickets")
MISSING_SCOPES_KEY = "missing_scopes"
# The key under which a refused call-transcripts read is reported (not a pulled type).
TRANSCRIPTS = "transcripts"


class Puller:
    """One pull of every object type, run by ``crm.sync.runner``.

    Args:
        db_path: the cache (a path or URL); every thread opens its own connection.
        client: a ``HubSpotClient`` (thread-safe, shared by all threads).
        stop: set when the run lost its lease; threads stop at the next page.
    """

    def __init__(
        self,
        db_path: str | Path,
        client: HubSpotClient,
        progress: Progress,
        run_id: int,
        *,
        stop: threading.Event | None = None,
        walkers: int = WALKERS,
        searchers: int = SEARCHERS,
        overlap_ms: int = OVERLAP_MS,
        live_associations: bool = False,
    ) -> None:
        self.db_path = db_path
        # Live updates are healthy: an incremental pull does not re-read associations.
        self.live_associations = live_associations
        self.client = client
        self.progress = progress
        self.run_id = run_id
        self.stop = stop or threading.Event()
        self.walkers = max(1, int(walkers))
        # One walker means one sequential list walk (the baseline); no search beside it.
        self.searchers = max(0, int(searchers)) if self.walkers > 1 else 0
        self.overlap_ms = max(0, int(overlap_ms))
        self.started_ms = int(time.time() * 1000)
        # Types HubSpot refused for a missing scope -> the scopes it named.
        self.missing: dict[str, list[str]] = {}
        self._missing_lock = threading.Lock()
        self._writers: set[_AssociationWriter] = set()
        self._probes: dict[str, Future[tuple[Page, tuple[int | None, int | None]]]] = {}

    # ------------------------------------------------------------------ entry

    def run(self, kind: str) -> None:
        """Pull metadata, then every object type concurrently (full or incremental)."""
        self.missing.clear()
        self._check()  # a budget spent before the run starts spends nothing more
        # Every request of the pull, retries included, now waits for the daily budget: the
        # one that would exceed it raises DailyBudgetSpent instead of going out.
        held = self.client.within_daily_budget
        self.client.within_daily_budget = True
        try:
            self._run(kind)
        finally:
            self.client.within_daily_budget = held

    def _run(self, kind: str) -> None:
        # A new full pull of a type starts with two probes (its smallest id; then, if it has
        # records, its largest id and total) that need no metadata: send them while the
        # metadata is read, so the walkers start right after it.
        with store.open(self.db_path) as db:
            fresh = [t for t in PULL_TYPES if self._plan(db, t, kind) == "full"]
        probing = ThreadPoolExecutor(max_workers=PROBE_THREADS, thread_name_prefix="sync-probe")
        self._probes = {t: probing.submit(carry(self._probe), t) for t in fresh}
        try:
            self._pull_types(kind)
        finally:
            probing.shutdown(wait=True, cancel_futures=True)
            self._probes = {}

    def _pull_types(self, kind: str) -> None:
        self.progress.set(phase="metadata")
        self._pull_metadata()
        with store.open(self.db_path) as db:
            plans = {t: self._plan(db, t, kind) for t in PULL_TYPES if t not in self.missing}
            since = db.syncstate.get_cursor(THREADS)["modified_since_ms"]
            plans[THREADS] = "full" if kind == "full" or since is None else "incremental"
        self.progress.set(phase="records", modes=dict(plans))
        with ThreadPoolExecutor(
            max_workers=min(len(plans), TYPES_AT_ONCE), thread_name_prefix="sync-type"
        ) as pool:
            futures = [pool.submit(carry(self._pull_type), t, mode) for t, mode in plans.items()]
            errors = [f.exception() for f in futures]
        # A real failure says more than a pause; a pause says more than a type that stopped
        # because another one paused first.
        errors.sort(key=lambda e: isinstance(e, (DailyBudgetSpent, DailyLimitReached)))
        for error in errors:
            if error is not None:
                raise error
        with store.open(self.db_path) as db:
            db.meta.put(
                MISSING_SCOPES_KEY, json.dumps(self.missing, sort_keys=True) if self.missing else None
            )
        self.progress.set(phase="done", object_type=None)

    def _not_granted(self, object_type: str, error: MissingScopes) -> None:
        """Remember a type HubSpot refused for a missing scope; the pull goes on without it."""
        scopes = required_scopes(error) or ["(HubSpot did not say which)"]
        log.warning("skipping %s: the connection needs one of the scopes %s", object_type, ", ".join(scopes))
        with self._missing_lock:
            self.missing.setdefault(object_type, scopes)

    def _plan(self, db: Store, object_type: str, kind: str) -> str:
        return plan_for(db, object_type, kind)

    def _check(self, *, keep: int = 0) -> None:
        """A checkpoint: stop here if the lease is lost or the daily budget is spent.

        ``keep``: stop while this many requests of the day are still left. Walkers keep
        what the association writers owe for the pages they were handed, so a pause saves
        those pages' positions instead of reading them again the next day.
        """
        if self.stop.is_set():
            raise Interrupted("the sync lost its lease")
        daily = self.client.limits.daily
        left = daily.left()
        if left is not None and left <= keep or daily.spent():
            # Every other thread meets the same answer at its own next checkpoint.
            raise DailyBudgetSpent(pause_message(daily.snapshot()), resume_at=daily.next_reset())

    def _pull_type(self, object_type: str, mode: str) -> None:
        started = time.perf_counter()
        try:
            with store.open(self.db_path) as db:
                if object_type == THREADS:
                    self._pull_threads(db, full=mode != "incremental")
                elif mode == "incremental":
                    self._incremental(db, object_type)
                else:
                    self._full(db, object_type, resume=mode == "resume")
        except MissingScopes as exc:
            self._not_granted(object_type, exc)
        finally:
            self.progress.note("seconds", object_type, round(time.perf_counter() - started, 3))

    # --------------------------------------------------------------- metadata

    def _pull_metadata(self) -> None:
        def definitions(read: Callable[[str], list[dict[str, Any]]], save: str, object_type: str) -> None:
            try:
                found = read(object_type)
            except MissingScopes as exc:
                self._not_granted(object_type, exc)
                return
            with store.open(self.db_path) as db:
                getattr(db.records, save)(object_type, found)

        def owners() -> None:
            found = list(self.client.iter_owners())
            with store.open(self.db_path) as db:
                db.records.save_owners(found)

        # Every definition at once: one round trip before the records start, not four.
        tasks = [(self.client.list_properties, "save_property_defs", t) for t in OBJECT_TYPES]
        tasks += [(self.client.list_pipelines, "save_pipelines", t) for t in PIPELINE_TYPES]
        with ThreadPoolExecutor(max_workers=len(tasks) + 1, thread_name_prefix="sync-meta") as pool:
            futures = [pool.submit(carry(definitions), read, save, t) for read, save, t in tasks]
            futures.append(pool.submit(carry(owners)))
            for future in futures:
                future.result()

    # -------------------------------------------------------------- full pull

    def _full(self, db: Store, object_type: str, *, resume: bool) -> None:
        self.progress.set(object_type=object_type)
        props = pull_properties(db, object_type)
        state = db.syncstate.get_cursor(object_type)["full_state"] if resume else None
        if state is None:
            state = self._new_full_state(object_type)
            db.syncstate.begin_full_pull(object_type, self.run_id, state)
        else:
            db.syncstate.begin_full_pull(object_type, self.run_id, state)
            if "total" in state:
                self.progress.total(object_type, int(state["total"]))
        pending = [i for i, w in enumerate(state["walkers"]) if not w.get("done")]
        owed = [str(i) for i in state.get("owed") or []]
        walk_started = time.perf_counter()
        if pending or owed:
            todo = _RangeQueue(pending)
            # Search needs numeric ids (a single open range means they were not).
            searchers = self.searchers if len(state["walkers"]) > 1 else 0
            kinds = ["list"] * min(self.walkers, len(pending)) + ["search"] * min(searchers, len(pending))
            writer = _AssociationWriter(self, object_type) if ASSOCIATIONS[object_type] else None
            if writer is not None:
                self._writers.add(writer)
                if owed:  # a paused pull saved positions past these; their associations come first
                    writer.add(OWED, owed, None, False)
            errors: list[BaseException | None] = []
            if kinds:
                with ThreadPoolExecutor(
                    max_workers=len(kinds), thread_name_prefix=f"sync-{object_type}"
                ) as pool:
                    futures = [
                        pool.submit(
                            carry(self._take_ranges), object_type, kind, todo, state["walkers"], props, writer
                        )
                        for kind in kinds
                    ]
                    errors = [f.exception() for f in futures]
            failed = next((e for e in errors if e is not None), None)
            if writer is not None:
                self._writers.discard(writer)
                try:
                    # Paused for the daily budget, the walkers left room for what the writer owes.
                    writer.close(flush=failed is None or isinstance(failed, DailyBudgetSpent))
                except BaseException as exc:
                    failed = failed or exc
            if failed is not None:
                raise failed
        self.progress.note("walk_seconds", object_type, round(time.perf_counter() - walk_started, 3))
        self._check()
        gone = writer_for(db, object_type).archive_unseen(object_type, seen_since=state["started_at"])
        self.progress.note("archived", object_type, gone, add=True)
        db.syncstate.complete_full_pull(object_type, modified_since_ms=int(state["since_ms"]))
        # Records changed or deleted behind the walkers (during this pull, or while an
        # interrupted one waited to be resumed) are caught up now, not at the next sync.
        self._incremental(db, object_type, catch_up=True)

    def _owed(self) -> int:
        """Association reads the writers still owe for pages handed to them (plus one each
        for the page a walker may be reading now)."""
        return sum(writer.owed() for writer in list(self._writers))

    def _new_full_state(self, object_type: str) -> dict[str, Any]:
        started_at = now_iso()
        state: dict[str, Any] = {"started_at": started_at, "since_ms": self.started_ms}
        probe = self._probes.pop(object_type, None)
        first, (high, total) = probe.result() if probe is not None else self._probe(object_type)
        if not first.records:
            self.progress.total(object_type, 0)
            state["walkers"] = []
            state["total"] = 0
            return state
        low = first.records[0].id
        if total is not None:
            self.progress.total(object_type, total)
            state["total"] = total
        if not low.isdigit() or high is None or high <= int(low) or self.walkers == 1:
            state["walkers"] = [{"start": None, "end": None, "after": None, "done": False}]
            return state
        bounds = _split(int(low), high, self._range_count(total), taper=self.walkers + self.searchers)
        state["walkers"] = [
            {
                "start": start,
                "end": end,
                # The list cursor is the next record's id, so a range starts at its start.
                "after": None if i == 0 else str(start),
                "done": False,
            }
            for i, (start, end) in enumerate(bounds)
        ]
        return state

    def _probe(self, object_type: str) -> tuple[Page, tuple[int | None, int | None]]:
        """The first list page of one record (the smallest id), and the largest id and total."""
        first = self.client.list_page(object_type, properties=[], limit=1)
        return first, self._largest_id(object_type) if first.records else (None, 0)

    def _range_count(self, total: int | None) -> int:
        """Enough ranges to keep every walker busy to the end, none smaller than RANGE_MIN."""
        threads = self.walkers + self.searchers
        if total is None:
            return threads
        wanted = max(2 * threads, -(-total // RANGE_RECORDS))
        return max(1, min(wanted, -(-total // RANGE_MIN)))

    def _largest_id(self, object_type: str) -> tuple[int | None, int | None]:
        try:
            high, total = self.client.highest_id(object_type)
        except HubSpotError as exc:
            # Without an estimate one walker reads everything: slower, never wrong.
            log.info("largest-id search for %s failed (%s); walking one range", object_type, exc.status_code)
            return None, None
        return high, total

    def _take_ranges(
        self,
        object_type: str,
        kind: str,
        todo: _RangeQueue,
        ranges: list[dict[str, Any]],
        props: Sequence[str],
        writer: _AssociationWriter | None,
    ) -> None:
        walk = self._list_range if kind == "list" else self._search_range
        try:
            with store.open(self.db_path) as db:
                while (index := todo.take()) is not None:
                    walk(db, object_type, index, ranges[index], props, writer)
        except BaseException:
            todo.close()  # the others finish their range and stop: the pull has failed
            raise

    def _list_range(
        self,
        db: Store,
        object_type: str,
        index: int,
        walker: dict[str, Any],
        props: Sequence[str],
        writer: _AssociationWriter | None,
    ) -> None:
        start, end, after = walker.get("start"), walker.get("end"), walker.get("after")
        inline = self._inline_types(object_type) if writer is not None else ()
        while True:
            self._check(keep=self._owed())
            limit = LIST_LIMIT
            if end is not None and after is not None and after.isdigit():
                # No more ids are left in the range than this: a full page would read
                # records of the next range only to drop them.
                limit = max(1, min(LIST_LIMIT, end - int(after)))
            page = self.client.list_page(
                object_type, properties=props, after=after, limit=limit, associations=inline
            )
            mine = [r for r in page.records if _in_range(r.id, start, end)]
            next_after = page.next_after
            crossed = end is not None and (
                any(r.id.isdigit() and int(r.id) >= end for r in page.records)
                or (next_after is not None and next_after.isdigit() and int(next_after) >= end)
            )
            if crossed or next_after == after:
                next_after = None  # (a server that does not advance would loop forever)
            self._keep(
                db, object_type, index, mine, next_after, next_after is None, writer, page if inline else None
            )
            if next_after is None:
                return
            after = next_after

    def _search_range(
        self,
        db: Store,
        object_type: str,
        index: int,
        walker: dict[str, Any],
        props: Sequence[str],
        writer: _AssociationWriter | None,
    ) -> None:
        start, end, after = walker.get("start"), walker.get("end"), walker.get("after")
        # The position is the smallest id not yet read (a list cursor, or one saved here).
        lower = int(after) if after is not None and after.isdigit() else start
        while True:
            self._check(keep=self._owed())
            page = self.client.search_id_range(
                object_type, lower=lower, end=end, properties=props, limit=SEARCH_LIMIT
            )
            mine = [r for r in page.records if _in_range(r.id, start, end)]
            ids = [int(r.id) for r in page.records if r.id.isdigit()]
            done = len(page.records) < SEARCH_LIMIT or page.next_after is None or not ids
            if not done and lower is not None and max(ids) < lower:
                done = True  # a server ignoring the filter would loop forever
            self._keep(db, object_type, index, mine, None if done else str(max(ids) + 1), done, writer)
            if done:
                return
            lower = max(ids) + 1

    def _keep(
        self,
        db: Store,
        object_type: str,
        index: int,
        found: Sequence[Any],
        position: str | None,
        done: bool,
        writer: _AssociationWriter | None,
        inline: Page | None = None,
    ) -> None:
        """Store one page of a range; its position is saved now, or by the association writer.

        A list page that carried its records' associations inline (``inline``) writes them
        here; the writer then only reads those HubSpot could not give inline, and still
        saves the position, in order after the range's earlier pages.
        """
        if writer is not None:
            ids = [r.id for r in found]
            if found:
                self._upsert(db, object_type, found)
                self.progress.add(object_type, len(found))
                if inline is not None:
                    ids = self._write_inline(db, object_type, ids, inline)
            writer.add(index, ids, position, done)
            return
        with db.atomic():
            self._upsert(db, object_type, found)
            db.syncstate.save_full_position(object_type, index, position, done)
        self.progress.add(object_type, len(found))

    def _upsert(self, db: Store, object_type: str, records: Sequence[Any]) -> Any:
        """Write a page of records; calls carry their transcripts (read only when granted)."""
        if object_type != "calls":
            return writer_for(db, object_type).upsert_records(object_type, records)
        skip = TRANSCRIPTS in self.missing
        found = {} if skip else read_transcripts(self.client, records, on_missing=self._not_granted)
        return db.interactions.upsert_records(object_type, records, transcripts=found)

    def _inline_types(self, object_type: str) -> tuple[str, ...]:
        """The to-types a list page can carry inline for this type (all its pairs, or none)."""
        pairs = ASSOCIATIONS[object_type]
        if not pairs or any(p not in INLINE_ASSOCIATION_TYPES or p[1] in self.missing for p in pairs):
            return ()
        return tuple(to_type for _, to_type in pairs)

    def _write_inline(self, db: Store, object_type: str, ids: list[str], page: Page) -> list[str]:
        """Write the associations a list page carried; returns the ids still to be read."""
        complete = [i for i in ids if i not in page.unread]
        if complete:
            for to_type, found in page.associations.items():
                written = writer_for(db, object_type).replace_associations(
                    object_type, to_type, complete, {i: found.get(i, []) for i in complete}
                )
                self.progress.bump("associations", written)
        return [i for i in ids if i in page.unread]

    def _read_associations(self, db: Store, object_type: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        for from_type, to_type in ASSOCIATIONS[object_type]:
            self._check()
            if to_type in self.missing:
                continue  # not granted (e.g. tickets): the links to it cannot be read either
            try:
                found = self.client.read_associations(from_type, to_type, list(ids))
            except MissingScopes as exc:
                self._not_granted(to_type, exc)
                continue
            written = writer_for(db, object_type).replace_associations(from_type, to_type, ids, found)
            self.progress.bump("associations", written)

    # -------------------------------------------------------- incremental pull

    def _incremental(self, db: Store, object_type: str, *, catch_up: bool = False) -> None:
        self.progress.set(object_type=object_type)
        cursor = db.syncstate.get_cursor(object_type)
        since = max(0, int(cursor["modified_since_ms"]) - self.overlap_ms)
        props = pull_properties(db, object_type)
        changed: list[str] = []
        for batch in self.client.iter_modified_since(
            object_type,
            since,
            properties=props,
            on_total=lambda total: self.progress.total(object_type, total, add=catch_up),
        ):
            self._check()
            result = self._upsert(db, object_type, batch)
            self.progress.add(object_type, len(batch))
            self.progress.bump("conflicts", result.conflicts)
            if self.live_associations and not catch_up:
                continue  # webhooks or the journal bring association changes
            changed = list(dict.fromkeys([*changed, *(r.id for r in batch)]))
            # Whole chunks only: a chunk over the client's 1,000-input cap costs two reads.
            while len(changed) >= ASSOC_CHUNK:
                self._read_associations(db, object_type, changed[:ASSOC_CHUNK])
                changed = changed[ASSOC_CHUNK:]
        self._read_associations(db, object_type, changed)
        self._pull_archived(db, object_type)
        self._check()
        db.syncstate.set_modified_since(object_type, self.started_ms)

    # ------------------------------------------------------ conversations inbox

    def _pull_threads(self, db: Store, *, full: bool) -> None:
        """Inbox threads with their messages: all of them (full), or those with a message since
        the cursor less the overlap (incremental); then what was archived.

        A full read flags the threads it did not see; an incremental one lists the archived
        threads (HubSpot purges them 30 days after archiving, so that list stays short).
        """
        self.progress.set(object_type=THREADS)
        started = now_iso()
        channels = self.client.list_channels()
        since = None
        if not full:
            since = max(0, int(db.syncstate.get_cursor(THREADS)["modified_since_ms"] or 0) - self.overlap_ms)
        read = 0
        for page in self.client.iter_threads(changed_since_ms=since):
            self._check()
            with ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="sync-messages") as pool:
                pending = [pool.submit(carry(self.client.list_messages), t["id"]) for t in page]
                messages = [f.result() for f in pending]
            batch = list(zip(page, messages, strict=True))
            db.interactions.upsert_threads(batch, channels)
            self.progress.add(THREADS, len(batch))
            read += len(batch)
        if full:
            gone = db.interactions.archive_unseen(THREADS, seen_since=started)
        else:
            archived = [t["id"] for page in self.client.iter_threads(archived=True) for t in page]
            gone = db.interactions.mark_archived(THREADS, archived)
        self.progress.note("archived", THREADS, gone, add=True)
        self.progress.total(THREADS, read)
        self._check()
        db.syncstate.set_modified_since(THREADS, self.started_ms)

    def _pull_archived(self, db: Store, object_type: str) -> None:
        gone: list[str] = []
        for page in self.client.iter_pages(object_type, properties=[], archived=True):
            self._check()
            gone.extend(r.id for r in page.records)
        gone_now = writer_for(db, object_type).mark_archived(object_type, gone)
        self.progress.note("archived", object_type, gone_now, add=True)


def pause_message(daily: Mapping[str, Any]) -> str:
    """Why a run paused, in words, from a ``DailyBudget.snapshot()``."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(daily["resets_at"])))
    limit, allowance = daily.get("limit"), daily.get("allowance")
    if allowance is not None and int(daily.get("used") or 0) >= int(allowance):
        spent = (
            f"this app's daily budget is spent ({int(daily['used']):,} of {int(allowance):,} requests, "
            f"{float(daily['share']):.0%} of the portal's daily limit of {int(limit or 0):,})"
        )
    else:
        spent = "HubSpot's daily request limit for this portal is spent"
    return f"Paused: {spent}. It resumes after {when}, when the day turns, or at the next sync."


class _Writer(Protocol):
    """What the pull writes through: ``db.records`` or ``db.interactions``."""

    def upsert_records(
        self, object_type: str, records: Iterable[Any], *, synced_at: str | None = None
    ) -> Any: ...
    def mark_archived(self, object_type: str, ids: Iterable[str]) -> int: ...
    def archive_unseen(self, object_type: str, *, seen_since: str) -> int: ...
    def replace_associations(
        self,
        from_type: str,
        to_type: str,
        from_ids: Iterable[str],
        found: Mapping[str, Sequence[tuple[str, int]]],
    ) -> int: ...


def read_transcripts(
    client: Any, calls: Sequence[Any], *, on_missing: Callable[[str, MissingScopes], None]
) -> dict[str, str]:
    """Call id -> transcript text, for the calls that name a transcript (``hs_call_transcription_id``).

    The transcripts API needs OAuth and ``crm.extensions_calling_transcripts.read``; a
    refusal for a missing scope is reported once (``on_missing("transcripts", error)``); a
    call whose transcript HubSpot no longer has is shown without one. The reads go side by
    side (FETCH_THREADS), as there is no batch read of transcripts.
    """
    wanted = {
        str(call.id): str(transcript_id)
        for call in calls
        if (transcript_id := (call.properties or {}).get("hs_call_transcription_id")) and not call.archived
    }

    def one(transcript_id: str) -> str | MissingScopes | None:
        try:
            return str(format_transcript(client.get_transcript(transcript_id)))
        except MissingScopes as exc:
            return exc
        except NotFound:
            return None

    if not wanted:
        return {}
    # One request per transcript (there is no batch read): side by side, not one by one.
    with ThreadPoolExecutor(
        max_workers=min(FETCH_THREADS, len(wanted)), thread_name_prefix="sync-transcripts"
    ) as pool:
        pending = {call_id: pool.submit(carry(one), tid) for call_id, tid in wanted.items()}
        results = {call_id: f.result() for call_id, f in pending.items()}
    refused = next((r for r in results.values() if isinstance(r, MissingScopes)), None)
    if refused is not None:
        on_missing(TRANSCRIPTS, refused)
    return {call_id: text for call_id, text in results.items() if isinstance(text, str)}


def writer_for(db: Store, object_type: str) -> _Writer:
    """Where records of ``object_type`` are written: ``db.interactions`` for engagements and
    inbox threads, else ``db.records``."""
    return db.interactions if object_type in (*ENGAGEMENT_TYPES, THREADS) else db.records


def pull_properties(db: Store, object_type: str) -> list[str]:
    """What a pull asks HubSpot for: an engagement's fixed list, a record table's columns."""
    if object_type in ENGAGEMENT_TYPES:
        return list(ENGAGEMENT_PROPERTIES[object_type])
    return db.queries.synced_property_names(object_type)


class _RangeQueue:
    """The ranges of one type not yet taken by a walker, in id order."""

    def __init__(self, indices: Sequence[int]) -> None:
        self._lock = threading.Lock()
        self._pending = list(indices)

    def take(self) -> int | None:
        with self._lock:
            return self._pending.pop(0) if self._pending else None

    def close(self) -> None:
        with self._lock:
            self._pending.clear()


# The range index of what a paused pull owed (``full_state["owed"]``): ids with no position.
OWED = -1


class _AssociationWriter:
    """Reads the associations of a full pull's records in whole chunks, then saves positions.

    Walkers hand over each page's ids and position and go on reading: an association read
    waits for the burst budget, and a search walker must not wait with it. Chunks are cut
    from pages of all ranges, so every read but the last carries (nearly) ASSOC_CHUNK ids.
    A position is saved only in the transaction after its records' associations are in.

    When the daily budget stops a read (the walkers keep room for what the writer owes, but
    requests already in flight on other threads can take it), the ids still waiting are
    saved as owed (``SyncState.owe_associations``) in the transaction that saves their
    positions, and the resumed pull reads those associations first (range ``OWED``): a
    pause never costs reading the records again.
    """

    def __init__(self, puller: Puller, object_type: str) -> None:
        self.puller, self.object_type = puller, object_type
        self.error: BaseException | None = None
        # The daily budget stopped a read: from then on the writer reads nothing and owes.
        self.paused: DailyBudgetSpent | DailyLimitReached | None = None
        self._queue: queue.Queue[tuple[int, list[str], str | None, bool] | None] = queue.Queue()
        self._discard = False
        self._owed_lock = threading.Lock()
        self._handed = 0  # ids handed over whose associations are not read yet
        self._thread = threading.Thread(
            target=carry(self._run), name=f"sync-{object_type}-assoc", daemon=True
        )
        self._thread.start()

    def add(self, index: int, ids: list[str], position: str | None, done: bool) -> None:
        """Hand over a stored page; raises the writer's error, or the pause once it met one
        (after taking the page: a paused writer owes what it is handed, so the page a walker
        had in flight is kept, not read again)."""
        if self.error is not None:
            raise self.error
        with self._owed_lock:
            self._handed += len(ids)
        self._queue.put((index, ids, position, done))
        if self.paused is not None:
            raise self.paused

    def owed(self) -> int:
        """Requests still needed for what was handed over: the chunks' reads of every pair."""
        with self._owed_lock:
            chunks = -(-self._handed // ASSOC_CHUNK) + 1
        return chunks * len(ASSOCIATIONS[self.object_type])

    def close(self, *, flush: bool) -> None:
        """Wait for what was handed over (dropped without ``flush``); raise the writer's error."""
        self._discard = not flush
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            with store.open(self.puller.db_path) as db:
                self._drain(db)
        except BaseException as exc:  # handed to the walkers and to close()
            self.error = exc

    def _drain(self, db: Store) -> None:
        pending: list[tuple[int, list[str], str | None, bool]] = []
        waiting = 0
        while True:
            item = self._queue.get()
            closing = item is None
            if item is not None:
                pending.append(item)
                waiting += len(item[1])
            if closing and self._discard:
                return
            if self.paused is None:
                pending = self._save_read(db, pending)
            while pending and self.paused is None and (waiting >= ASSOC_CHUNK or closing):
                chunk: list[tuple[int, list[str], str | None, bool]] = []
                size = 0
                while pending and (not chunk or size + len(pending[0][1]) <= ASSOC_CHUNK):
                    chunk.append(pending.pop(0))
                    size += len(chunk[-1][1])
                waiting -= size
                try:
                    self._flush(db, chunk)
                except (DailyBudgetSpent, DailyLimitReached) as exc:
                    pending[:0] = chunk
                    self.paused = exc
                with self._owed_lock:
                    self._handed -= size
            if self.paused is not None and pending:
                # Nothing is read any more: what waits, and what walkers still hand over, is owed.
                self._owe(db, pending)
                pending, waiting = [], 0
            if closing:
                if self.paused is not None:
                    raise self.paused
                return

    def _save_read(
        self, db: Store, pending: list[tuple[int, list[str], str | None, bool]]
    ) -> list[tuple[int, list[str], str | None, bool]]:
        """Save at once the positions of pages with nothing left to read (their associations
        came inline), unless an earlier page of the same range still waits for a read;
        returns what still waits."""
        waits: set[int] = set()
        ready: dict[int, tuple[str | None, bool]] = {}
        rest: list[tuple[int, list[str], str | None, bool]] = []
        for entry in pending:
            index, ids, position, done = entry
            if ids or index in waits:
                waits.add(index)
                rest.append(entry)
            else:
                ready[index] = (position, done)
        if ready:
            with db.atomic():
                for index, (position, done) in ready.items():
                    db.syncstate.save_full_position(self.object_type, index, position, done)
        return rest

    def _flush(self, db: Store, chunk: list[tuple[int, list[str], str | None, bool]]) -> None:
        self.puller._read_associations(db, self.object_type, [i for _, ids, _, _ in chunk for i in ids])
        settled = [i for index, ids, _, _ in chunk if index == OWED for i in ids]
        with db.atomic():
            db.syncstate.settle_associations(self.object_type, settled)
            self._save_positions(db, chunk)

    def _owe(self, db: Store, entries: list[tuple[int, list[str], str | None, bool]]) -> None:
        """Save positions past records whose associations were not read, and owe those reads."""
        with db.atomic():
            db.syncstate.owe_associations(self.object_type, [i for _, ids, _, _ in entries for i in ids])
            self._save_positions(db, entries)

    def _save_positions(self, db: Store, entries: list[tuple[int, list[str], str | None, bool]]) -> None:
        latest = {index: (position, done) for index, _, position, done in entries if index != OWED}
        for index, (position, done) in latest.items():
            db.syncstate.save_full_position(self.object_type, index, position, done)


def _split(low: int, high: int, parts: int, *, taper: int = 0) -> list[tuple[int, int | None]]:
    """About ``parts`` ranges covering ``[low, high]``; the last one is open-ended.

    Ranges span a multiple of SEARCH_LIMIT ids (two list pages, one search page) where
    they can, so where ids are dense no range ends in a part-filled page. The last
    ``taper`` ranges are cut smaller (TAPER_PIECES, still whole pages): walkers take
    ranges in order, so when the queue runs dry each is on a small range and they
    finish together instead of one walker paging alone through a whole range at the end.
    """
    align = SEARCH_LIMIT
    step = max(1, -(-(high - low + 1) // parts))
    if step > align:
        step = -(-step // align) * align
    starts = [low + i * step for i in range(parts) if low + i * step <= high]
    ends = [*starts[1:], high + 1]
    for s, e in list(zip(starts, ends, strict=True))[max(0, len(starts) - taper) :]:
        piece = max(align, (e - s) // TAPER_PIECES // align * align)
        starts.extend(range(s + piece, e, piece))
    starts = sorted(set(starts))
    return [(s, starts[i + 1] if i + 1 < len(starts) else None) for i, s in enumerate(starts)]


def _in_range(record_id: str, start: int | None, end: int | None) -> bool:
    if start is None and end is None:
        return True
    if not record_id.isdigit():
        return start is None
    value = int(record_id)
    return (start is None or value >= start) and (end is None or value < end)
