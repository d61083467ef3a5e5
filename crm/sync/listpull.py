"""Pulling any CRM into the cache through the CRM interface alone (``crm.interface.CrmApi``).

HubSpot keeps its tuned pull (``crm.sync.pull``: parallel id ranges, search walkers, the
daily budget, engagements); every other CRM, Pipedrive first, is pulled here with nothing
but the interface's calls, so adding a CRM needs no sync code (issue #14).

One run::

    definitions  properties -> property_defs (each adds its column, so values have a place),
                 owners, pipelines and stages (read at once)
    per type     (the provider's ``object_types()``, all at once: one thread per type)
      full         list_page from the saved cursor; each page's records, their associations
                   and the next cursor are committed in one transaction, so an interrupted
                   pull resumes at the first page it did not commit and re-reads none before it;
                   the next page is requested while the current one is written; a CRM that
                   splits a list (``WindowedList``) has its windows walked at once, each with
                   its own saved cursor, then what changed during the walk is read;
                   only a walk that reached the end flags the records it did not see archived
                   and starts the incremental cursor, then catches up like an incremental pull
      incremental  iter_modified_since(cursor - overlap), their associations, then the
                   deletions the CRM lists (``DeletionFeed``), then the cursor moves to the
                   run's start

Why types run at once: each type's walk is one cursor chain (a request waits for the one
before it), so one type at a time keeps a single request in flight, far below a CRM's rate
limit (Pipedrive: 80 requests per token per 2 s, docs/PIPEDRIVE_API.md §6; the bench measured
3 requests/s). Types are independent (own cursor, own resume state, own "flag the unseen"), so
each walks in its own thread with its own store connection. Within a type, a CRM that can
filter its list into disjoint windows (Pipedrive: by update time) gets ``WINDOWS`` walks at
once. There is no limiter here: the client waits out each 429 (``Retry-After``) and retries,
so walkers beyond the budget wait rather than fail, unless a request is refused more often
than the client's retries allow (RateLimited, below). The first type or window to fail stops
the others before their next page; the run fails with that error.

Associations, for the pairs the cache keeps (``crm.sync.runstate.ASSOCIATIONS``: contact ->
company, deal -> contact and company) whose both ends the CRM provides: a CRM implementing
``LinksOnRecords`` (Pipedrive: ``org_id``, ``person_id``) has them on the records of the page
itself, so they cost no request; other pairs are asked of ``CrmApi.associations`` before the
page's transaction (no request inside one). Written with no association type (0).

Deletions: a CRM implementing ``DeletionFeed`` reports what was deleted since the cursor
(Pipedrive: deals only). Anything else deleted (Pipedrive's persons and organizations) is
flagged by the next full pull, which flags every record it did not see, or, sooner, by the
deletion sweep an incremental pull runs when it is due (``crm.sync.sweep``: the type's live
ids walked every CRM_DELETION_SWEEP, within the daily budget); webhooks can be sooner still.
The timeline's feeds are looked at by the same sweep's rules (``crm.sync.listpull_interactions``).

Rate limits and network drops: the implementation's client waits out 429s and retries reads
within its bound, then raises RateLimited / Unreachable; the run fails with that error and
what was committed stays, so the next run resumes a full pull from its saved cursor (within
``RESUME_WITHIN_S``) or re-reads an incremental window from the unchanged cursor.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from crm import store
from crm.interface import (
    CrmApi,
    DeletionFeed,
    LinksOnRecords,
    ListsInteractions,
    ObjectTypeInfo,
    Owner,
    Page,
    Pipeline,
    Property,
    Record,
    WindowedList,
)
from crm.store import Store
from crm.store.values import now_iso
from crm.sync.listpull_interactions import InteractionsPull, interaction_plans
from crm.sync.runstate import ASSOCIATIONS, OVERLAP_MS, Interrupted, Progress, plan_for
from crm.sync.sweep import DeletionSweep, SweepPolicy

log = logging.getLogger("crm.sync")

# Records asked for per list page; the implementation caps it at the CRM's maximum
# (Pipedrive: 500), so a page costs one request whatever the CRM.
PAGE_LIMIT = 500
# Windows a type's full walk is split into when the CRM can (``WindowedList``): with three
# types at once, 12 cursor walks, each about 3 requests/s at 250 ms per request, fill most of
# Pipedrive's 40 requests/s per token without living on 429s.
WINDOWS = 4
# Associations written by this pull carry no CRM association type.
NO_ASSOCIATION_TYPE = 0


class ListPuller:
    """One pull of every object type a CRM provides, through its ``CrmApi``.

    Args:
        db_path: the cache (a path or URL).
        api: the connected CRM (not closed here).
        object_types: the provider's ``object_types()``.
        stop: set when the run lost its lease; the pull stops before its next page.
    """

    def __init__(
        self,
        db_path: str | Path,
        api: CrmApi,
        object_types: Sequence[ObjectTypeInfo],
        progress: Progress,
        run_id: int,
        *,
        stop: threading.Event | None = None,
        overlap_ms: int = OVERLAP_MS,
        page_limit: int = PAGE_LIMIT,
        windows: int = WINDOWS,
        sweep: SweepPolicy | None = None,
    ) -> None:
        self.db_path = db_path
        self.api = api
        self.types = [t.name for t in object_types]
        self.progress = progress
        self.run_id = run_id
        self.stop = stop or threading.Event()
        self.overlap_ms = max(0, int(overlap_ms))
        self.page_limit = max(1, int(page_limit))
        self.windows = max(1, int(windows))
        self.started_ms = int(time.time() * 1000)
        # Set when one type's walk failed: the others stop before their next page.
        self._failed = threading.Event()
        # Deletions no feed reports are looked for by a budgeted sweep (crm.sync.sweep).
        self.sweep = DeletionSweep(
            api, sweep or SweepPolicy(), progress, self._check, page_limit=self.page_limit
        )

    def run(self, kind: str) -> None:
        """Definitions, then each type in full or incrementally (``kind``: "full" or "incremental")."""
        self.progress.set(phase="metadata")
        self._definitions()
        with store.open(self.db_path) as db:
            plans = {t: plan_for(db, t, kind) for t in self.types}
            feeds = interaction_plans(db, self.api, kind)  # notes and activities (pdtimeline)
        # The types are walked side by side: the run names a current type only when there is
        # one (the Sync page shows each type's count from ``modes`` and ``records`` instead).
        only = next(iter(plans)) if len(plans) == 1 else None
        self.progress.set(phase="records", modes=dict(plans), object_type=only)
        with ThreadPoolExecutor(max_workers=max(1, len(plans)), thread_name_prefix="listpull") as pool:
            futures = [pool.submit(self._pull_type, t, mode) for t, mode in plans.items()]
        _raise_first([f.exception() for f in futures])
        # The timeline's feeds once the records are in: beside a type's window walkers they
        # would share the burst limit with a dozen walks and be starved of retries.
        with ThreadPoolExecutor(max_workers=max(1, len(feeds)), thread_name_prefix="listpull-feed") as pool:
            futures = [pool.submit(self._pull_feed, f, mode) for f, mode in feeds.items()]
        _raise_first([f.exception() for f in futures])
        self.progress.set(phase="done", object_type=None)

    def _pull_type(self, object_type: str, mode: str) -> None:
        """One type's pull in its own thread and store connection."""
        started = time.perf_counter()
        try:
            with store.open(self.db_path) as db:
                if mode == "incremental":
                    self._incremental(db, object_type)
                else:
                    self._full(db, object_type, resume=mode == "resume")
        except BaseException:
            self._failed.set()
            raise
        finally:
            self.progress.note("seconds", object_type, round(time.perf_counter() - started, 3))

    def _pull_feed(self, feed: str, mode: str) -> None:
        """One interaction feed (``crm.sync.listpull_interactions``) in its own thread."""
        assert isinstance(self.api, ListsInteractions)
        try:
            InteractionsPull(
                self.db_path, self.api, self.progress, self.run_id, check=self._check,
                sweep=self.sweep, started_ms=self.started_ms, overlap_ms=self.overlap_ms,
            ).pull(feed, mode)  # fmt: skip
        except BaseException:
            self._failed.set()
            raise

    def _check(self) -> None:
        if self.stop.is_set():
            raise Interrupted("the sync lost its lease")
        if self._failed.is_set():
            raise Interrupted("another object type's pull failed")

    # ---------------------------------------------------------------- definitions

    def _definitions(self) -> None:
        # Independent reads, asked at once (one request in flight would cost a latency each).
        with ThreadPoolExecutor(
            max_workers=2 * len(self.types) + 1, thread_name_prefix="listpull-defs"
        ) as pool:
            asked_defs = {t: pool.submit(self.api.properties, t) for t in self.types}
            asked_pipelines = {t: pool.submit(self.api.pipelines, t) for t in self.types}
            asked_owners = pool.submit(self.api.owners)
        defs = {t: [definition_of(p) for p in f.result()] for t, f in asked_defs.items()}
        pipelines = {t: [_pipeline(p) for p in f.result()] for t, f in asked_pipelines.items()}
        owners = [_owner(o) for o in asked_owners.result()]
        with store.open(self.db_path) as db:
            for object_type in self.types:
                db.records.save_property_defs(object_type, defs[object_type])
                if pipelines[object_type]:
                    db.records.save_pipelines(object_type, pipelines[object_type])
            db.records.save_owners(owners)

    # ------------------------------------------------------------------- full pull

    def _full(self, db: Store, object_type: str, *, resume: bool) -> None:
        props = db.queries.synced_property_names(object_type)
        windowed = isinstance(self.api, WindowedList)
        state = db.syncstate.get_cursor(object_type)["full_state"] if resume else None
        walkers = (state or {}).get("walkers") or []
        # A saved walk resumes as it was split (windows need the capability that made them).
        if not walkers or (len(walkers) > 1 and not windowed):
            windows: list[str | None] = [None]
            if isinstance(self.api, WindowedList) and self.windows > 1:
                windows = list(self.api.list_windows(object_type, self.windows)) or [None]
            state = {
                "started_at": now_iso(),
                "since_ms": self.started_ms,
                "walkers": [{"start": w, "end": None, "after": None, "done": False} for w in windows],
            }
        assert state is not None
        db.syncstate.begin_full_pull(object_type, self.run_id, state)
        # The CRM gives no total up front: the records cached so far stand in for the Sync
        # page's progress (none cached: the total grows with what is read).
        cached = len(db.queries.record_stamps(object_type))
        if cached:
            self.progress.total(object_type, cached)
        walk_started = time.perf_counter()
        indexed = list(enumerate(state["walkers"]))
        if len(indexed) == 1:
            self._walk(db, object_type, props, 0, indexed[0][1])
        else:
            self._walk_windows(object_type, props, indexed)
        self.progress.note("walk_seconds", object_type, round(time.perf_counter() - walk_started, 3))
        self._check()
        if len(indexed) > 1:
            # A record edited during the walk moved to a later window, perhaps behind its
            # walker: read what changed since the pull began before flagging the unseen.
            since = max(0, int(state["since_ms"]) - self.overlap_ms)
            for batch in self.api.iter_modified_since(object_type, since, properties=props):
                self._check()
                links = self._links(object_type, batch)
                with db.atomic():
                    self._write(db, object_type, batch, links)
        gone = db.records.archive_unseen(object_type, seen_since=state["started_at"])
        self.progress.note("archived", object_type, gone, add=True)
        db.syncstate.complete_full_pull(object_type, modified_since_ms=int(state["since_ms"]))
        self.sweep.after_full_pull(db, object_type, int(state["since_ms"]))
        # What changed behind the walk (or while an interrupted pull waited) is read now.
        self._incremental(db, object_type)

    def _walk_windows(
        self, object_type: str, props: list[str], walkers: list[tuple[int, dict[str, Any]]]
    ) -> None:
        """Each window's walk in its own thread (positions saved per walker).

        A walker borrows a store connection for each page's transaction only: a PostgreSQL
        pool holds 10, and three types' threads plus their walkers would otherwise wait for
        one another's connections.
        """

        def walk(index: int, walker: dict[str, Any]) -> None:
            try:
                self._walk(None, object_type, props, index, walker)
            except BaseException:
                self._failed.set()
                raise

        pending = [(i, w) for i, w in walkers if not w.get("done")]
        if not pending:
            return
        with ThreadPoolExecutor(
            max_workers=len(pending), thread_name_prefix=f"listpull-{object_type}"
        ) as pool:
            futures = [pool.submit(walk, i, w) for i, w in pending]
        _raise_first([f.exception() for f in futures])

    def _walk(
        self, db: Store | None, object_type: str, props: list[str], index: int, walker: dict[str, Any]
    ) -> None:
        """One cursor walk (the whole type, or one window) from its saved position; each page,
        its associations and the next position are committed together (in ``db``, else in a
        connection opened for the page)."""
        cursor: str | None = walker.get("after")
        done = bool(walker.get("done"))
        window = walker.get("start")

        def read(after: str | None) -> Page:
            if window is not None and isinstance(self.api, WindowedList):
                return self.api.list_window_page(
                    object_type, str(window), properties=props, cursor=after, limit=self.page_limit
                )
            return self.api.list_page(object_type, properties=props, cursor=after, limit=self.page_limit)

        # One helper thread reads the next page while this one writes the current: the cursor
        # chain stays sequential, the cache writes no longer wait between requests.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"listpull-{object_type}-{index}") as ahead:
            pending: Future[Page] | None = None
            try:
                while not done:
                    self._check()
                    page = pending.result() if pending is not None else read(cursor)
                    pending = None
                    following = page.next_cursor
                    # (a CRM that hands back the same cursor would loop forever)
                    done = following is None or following == cursor
                    if not done:
                        pending = ahead.submit(read, following)
                    links = self._links(object_type, page.records)
                    with contextlib.ExitStack() as stack:
                        target = db if db is not None else stack.enter_context(store.open(self.db_path))
                        with target.atomic():
                            self._write(target, object_type, page.records, links)
                            position = None if done else following
                            target.syncstate.save_full_position(object_type, index, position, done)
                    self.progress.add(object_type, len(page.records))
                    cursor = following
            finally:
                _settle(pending)

    # ------------------------------------------------------------ incremental pull

    def _incremental(self, db: Store, object_type: str) -> None:
        cursor = db.syncstate.get_cursor(object_type)
        since = max(0, int(cursor["modified_since_ms"] or 0) - self.overlap_ms)
        props = db.queries.synced_property_names(object_type)
        for batch in self.api.iter_modified_since(object_type, since, properties=props):
            self._check()
            links = self._links(object_type, batch)
            with db.atomic():
                self._write(db, object_type, batch, links)
            self.progress.add(object_type, len(batch))
        listed = self._deletions(db, object_type, since)
        self._check()
        db.syncstate.set_modified_since(object_type, self.started_ms)
        self.sweep.after_incremental(db, object_type, listed=listed, began_ms=self.started_ms)

    def _deletions(self, db: Store, object_type: str, since_ms: int) -> bool:
        """Flag what the CRM lists as deleted since ``since_ms``; False when it lists nothing
        for this type (``DeletionFeed`` absent or None), so a sweep must look."""
        if not isinstance(self.api, DeletionFeed):
            return False
        gone = self.api.deleted_since(object_type, since_ms)
        if gone is None:
            return False
        self._check()
        changed = db.records.mark_archived(object_type, gone)
        self.progress.note("archived", object_type, changed, add=True)
        return True

    # ------------------------------------------------------------------- writing

    def _pairs(self, object_type: str) -> list[tuple[str, str]]:
        return [(a, b) for a, b in ASSOCIATIONS.get(object_type, ()) if b in self.types]

    def _links(
        self, object_type: str, records: Sequence[Record]
    ) -> dict[tuple[str, str], dict[str, list[str]]]:
        """The associations of these records, per pair the cache keeps: from the records'
        own fields where the CRM keeps them there (``LinksOnRecords``), else read before
        writing."""
        if not records:
            return {}
        on_records = self.api.links_on_records(object_type) if isinstance(self.api, LinksOnRecords) else {}
        ids = [r.id for r in records]
        found: dict[tuple[str, str], dict[str, list[str]]] = {}
        for pair in self._pairs(object_type):
            field = on_records.get(pair[1])
            if field is None:
                found[pair] = self.api.associations(pair[0], pair[1], ids)
            else:
                found[pair] = {r.id: _linked(r.properties.get(field)) for r in records}
        return found

    def _write(
        self,
        db: Store,
        object_type: str,
        records: Sequence[Record],
        links: Mapping[tuple[str, str], Mapping[str, Sequence[str]]],
    ) -> None:
        if not records:
            return
        result = db.records.upsert_records(object_type, records)
        self.progress.bump("conflicts", result.conflicts)
        ids = [r.id for r in records]
        for (from_type, to_type), found in links.items():
            written = db.records.replace_associations(
                from_type,
                to_type,
                ids,
                {i: [(str(to), NO_ASSOCIATION_TYPE) for to in found.get(i, ())] for i in ids},
            )
            self.progress.bump("associations", written)


def _raise_first(outcomes: Sequence[BaseException | None]) -> None:
    """Raise the error that stopped the work, not the Interrupted its siblings raised on
    seeing it (nothing when every part succeeded)."""
    errors = [e for e in outcomes if e is not None]
    first = next((e for e in errors if not isinstance(e, Interrupted)), errors[0] if errors else None)
    if first is not None:
        raise first


def _linked(value: str | None) -> list[str]:
    """The other record's id a link field holds (none when empty)."""
    return [] if value is None or value.strip() == "" else [value.strip()]


def _settle(pending: Future[Any] | None) -> None:
    """Wait for a read ahead that will not be used (the walk stopped or failed), so no request
    outlives the walk; its result or error is dropped (the next run reads that page again)."""
    if pending is not None:
        pending.cancel()
        try:
            pending.result()
        except Exception:  # noqa: BLE001 - the page is read again by whoever resumes
            log.debug("a read-ahead page was dropped", exc_info=True)


# Neutral value type -> the store's field type (what validation and the grid read: a
# several-option field is an enumeration whose field type is "checkbox").
_FIELD_TYPES = {
    "string": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "bool": "booleancheckbox",
    "enumeration": "select",
    "multi": "checkbox",
}


def definition_of(prop: Property) -> dict[str, Any]:
    """A neutral property as the store keeps definitions (the shape ``save_property_defs``
    takes); every one gets a column (``hubspot_defined`` False: it is not one of the
    HubSpot properties the cache leaves out)."""
    return {
        "name": prop.name,
        "label": prop.label,
        "type": "enumeration" if prop.type in ("enumeration", "multi") else prop.type,
        "field_type": _FIELD_TYPES.get(prop.type, "text"),
        "group_name": prop.group,
        "options": [
            {"value": o.value, "label": o.label, "display_order": o.display_order, "hidden": o.hidden}
            for o in prop.options
        ],
        "read_only": prop.read_only,
        "calculated": False,
        "hubspot_defined": False,
        "has_unique_value": prop.unique,
        "archived": False,
    }


def _owner(owner: Owner) -> dict[str, Any]:
    first, _, last = owner.name.partition(" ")
    return {
        "id": owner.id,
        "email": owner.email,
        "first_name": first or None,
        "last_name": last or None,
        "archived": owner.archived,
    }


def _pipeline(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "id": pipeline.id,
        "label": pipeline.label,
        "display_order": pipeline.display_order,
        "archived": False,
        "stages": [
            {
                "id": s.id,
                "label": s.label,
                "display_order": s.display_order,
                "probability": s.probability,
                "is_closed": s.is_closed,
            }
            for s in pipeline.stages
        ],
    }
