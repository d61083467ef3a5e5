"""Pulling a CRM's notes and activities into the timeline through the CRM interface alone.

A CRM whose connected API implements ``crm.interface.ListsInteractions`` (Pipedrive: notes
and activities) has each of its feeds pulled here, beside the generic pull's object types
(``crm.sync.listpull`` runs each feed in a thread of its own). HubSpot's engagements keep
their tuned pull (``crm.sync.pull``).

One feed::

    full         every live item (``iter_interactions(feed)``), each batch written with its
                 links in one transaction; then the feed's items not seen since the walk
                 began are flagged deleted (``archive_unseen`` per kind), which counts as a
                 look for deletions; the incremental cursor starts at the walk's start and
                 what changed meanwhile is read
    incremental  ``iter_interactions(feed, since_ms=cursor - overlap)``, then the cursor
                 moves to the run's start; or, when a look for deletions is due, the look
                 (below) in its place

Deletions: a CRM lists no deleted notes or activities (Pipedrive does not), so a read by
modified time cannot see them. The feeds are looked at under the record sweep's rules
(``crm.sync.sweep``: due every CRM_DELETION_SWEEP since the last complete look, a full read
or a look; skipped, and noted so, when the day's allowance cannot afford it). The look is
the feed read in full, then its items not seen since the look began flagged deleted,
because that is the cheapest correct one: a feed lists whole items or nothing (there is no
cheaper list of ids), so a walk for ids costs the same requests as the full read, one per
page of live items; the full read also carries the incremental read's work (an item
changed before or during the walk is listed with its latest values), so the cursor moves
to the run's start as after an incremental read, and no extra request is spent. Its cost is
estimated as the records' sweep's: one request per ``page_limit`` (500: Pipedrive pages
notes and activities by 500) of the feed's live cached items, at least one. Unlike a full
pull it leaves the feed's cursor complete: a look cut part-way (network drop, rate limit
past the client's retries, the lease lost) raises, flags nothing and records nothing, so the
next incremental pull finds it still due, within the budget again; it does not become a full
read the budget is not asked about. An item written to the cache since the look began (a
webhook's read-back, a push) is never flagged (``archive_unseen`` spares rows synced since),
nor one created here and not pushed yet (a local id). Webhooks can be sooner still.

A full read is not resumed page by page (feeds are small beside the records, and an
offset or cursor saved from a keyed walk would not survive the edits it is walked for):
an interrupted one starts again.

The cursor is the store's ``sync_cursors`` row named ``feed_key(feed)`` (``interactions.notes``),
so it never collides with an object type's; the feed's last look is kept under the same name
(``SyncState.sweep_of``), which the Sync page and ``status`` show as "Deleted notes ...".
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from crm import store
from crm.interface import CrmApi, ListsInteractions
from crm.store import Store
from crm.store.values import now_iso
from crm.sync.runstate import OVERLAP_MS, Progress, feed_key, plan_for
from crm.sync.sweep import DeletionSweep

log = logging.getLogger("crm.sync")


def interaction_plans(db: Store, api: CrmApi, kind: str) -> dict[str, str]:
    """``{feed: "full" | "incremental"}`` for each of the API's feeds ({} without the capability).

    A full read that was interrupted (``plan_for``'s "resume") starts again in full.
    """
    if not isinstance(api, ListsInteractions):
        return {}
    plans = {}
    for feed in api.interaction_feeds():
        mode = plan_for(db, feed_key(feed), kind)
        plans[feed] = "incremental" if mode == "incremental" else "full"
    return plans


class InteractionsPull:
    """One run's pull of a CRM's interaction feeds (``pull`` runs one feed; thread-safe).

    Args:
        check: raises ``Interrupted`` when the run must stop (lost lease, a sibling failed).
        sweep: the run's deletion sweep: when a feed's look for deletions is due and what
            the day affords (shared with the object types).
    """

    def __init__(
        self,
        db_path: str | Path,
        api: ListsInteractions,
        progress: Progress,
        run_id: int,
        *,
        check: Callable[[], None],
        sweep: DeletionSweep,
        started_ms: int | None = None,
        overlap_ms: int = OVERLAP_MS,
    ) -> None:
        self.db_path = db_path
        self.api = api
        self.progress = progress
        self.run_id = run_id
        self.check = check
        self.sweep = sweep
        self.started_ms = int(time.time() * 1000) if started_ms is None else started_ms
        self.overlap_ms = max(0, int(overlap_ms))
        self._kinds = api.interaction_feeds()
        self._lock = threading.Lock()

    def pull(self, feed: str, mode: str) -> None:
        """One feed, in full or incrementally (or by a look for deletions, when one is due and
        affordable), in its own store connection.

        Its items are counted per kind in the run's records (a run's history shows them), and
        its kinds join the run's modes, so the run's total grows with what the feed reads.
        """
        for kind in self._kinds[feed]:
            self.progress.note("modes", kind, mode)
        with store.open(self.db_path) as db:
            if mode != "incremental":
                self._full(db, feed)
            elif self._may_look(db, feed):
                self._look(db, feed)
            else:
                self._incremental(db, feed)

    def _full(self, db: Store, feed: str) -> None:
        key = feed_key(feed)
        began_ms, started_at = int(time.time() * 1000), now_iso()
        db.syncstate.begin_full_pull(
            key, self.run_id, {"started_at": started_at, "since_ms": self.started_ms, "walkers": []}
        )
        self._read(db, feed, None)
        self.check()
        with db.atomic():
            self._flag_unseen(db, feed, started_at)
            self.sweep.after_full_pull(db, key, began_ms)
        db.syncstate.complete_full_pull(key, modified_since_ms=self.started_ms)
        self._incremental(db, feed)

    def _incremental(self, db: Store, feed: str) -> None:
        key = feed_key(feed)
        since = max(0, int(db.syncstate.get_cursor(key)["modified_since_ms"] or 0) - self.overlap_ms)
        self._read(db, feed, since)
        self.check()
        db.syncstate.set_modified_since(key, self.started_ms)

    def _may_look(self, db: Store, feed: str) -> bool:
        """Whether the feed's look for deletions runs now (due and affordable; a due one the
        day cannot afford is noted skipped)."""
        counts = db.interactions.counts()
        cached = sum(counts.get(kind, 0) for kind in self._kinds[feed])
        return self.sweep.may_look(db, feed_key(feed), cached)

    def _look(self, db: Store, feed: str) -> None:
        """The feed read in full in place of the incremental read; only once it reached its
        end are the items not seen since it began flagged and the look recorded (together),
        then the cursor moves as an incremental read's would."""
        key = feed_key(feed)
        began_ms, began = int(time.time() * 1000), now_iso()
        self._read(db, feed, None)
        self.check()
        with db.atomic():
            flagged = self._flag_unseen(db, feed, began)
            self.sweep.looked(db, key, began_ms)
        db.syncstate.set_modified_since(key, self.started_ms)
        log.info("deletion sweep of %s: %d flagged deleted", feed, flagged)

    def _flag_unseen(self, db: Store, feed: str, since: str) -> int:
        """Flag the feed's items not written since ``since`` (a walk's start) deleted."""
        flagged = 0
        for kind in self._kinds[feed]:
            gone = db.interactions.archive_unseen(kind, seen_since=since)
            self.progress.note("archived", kind, gone, add=True)
            flagged += gone
        return flagged

    def _read(self, db: Store, feed: str, since_ms: int | None) -> None:
        for batch in self.api.iter_interactions(feed, since_ms=since_ms):
            self.check()
            if batch:
                db.interactions.upsert_interactions(batch, kinds=self._kinds[feed])
                for kind, n in Counter(item.kind for item in batch).items():
                    self.progress.add(kind, n)
