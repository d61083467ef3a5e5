"""Pulling a CRM's notes and activities into the timeline through the CRM interface alone.

A CRM whose connected API implements ``crm.interface.ListsInteractions`` (Pipedrive: notes
and activities) has each of its feeds pulled here, beside the generic pull's object types
(``crm.sync.listpull`` runs each feed in a thread of its own). HubSpot's engagements keep
their tuned pull (``crm.sync.pull``).

One feed::

    full         every live item (``iter_interactions(feed)``), each batch written with its
                 links in one transaction; then the feed's items not seen since the walk
                 began are flagged deleted (``archive_unseen`` per kind), the incremental
                 cursor starts at the walk's start and what changed meanwhile is read
    incremental  ``iter_interactions(feed, since_ms=cursor - overlap)``, then the cursor
                 moves to the run's start

Deletions: a CRM lists no deleted notes or activities (Pipedrive does not), so an
incremental pull cannot see them; the next full pull flags them, webhooks can be sooner.
A full read is not resumed page by page (feeds are small beside the records, and an
offset or cursor saved from a keyed walk would not survive the edits it is walked for):
an interrupted one starts again.

The cursor is the store's ``sync_cursors`` row named ``feed_key(feed)`` (``interactions.notes``),
so it never collides with an object type's.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from crm import store
from crm.interface import CrmApi, ListsInteractions
from crm.store import Store
from crm.store.values import now_iso
from crm.sync.runstate import OVERLAP_MS, Progress, plan_for


def feed_key(feed: str) -> str:
    """The ``sync_cursors`` name of a feed's cursor."""
    return f"interactions.{feed}"


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
    """

    def __init__(
        self,
        db_path: str | Path,
        api: ListsInteractions,
        progress: Progress,
        run_id: int,
        *,
        check: Callable[[], None],
        started_ms: int | None = None,
        overlap_ms: int = OVERLAP_MS,
    ) -> None:
        self.db_path = db_path
        self.api = api
        self.progress = progress
        self.run_id = run_id
        self.check = check
        self.started_ms = int(time.time() * 1000) if started_ms is None else started_ms
        self.overlap_ms = max(0, int(overlap_ms))
        self._kinds = api.interaction_feeds()
        self._lock = threading.Lock()

    def pull(self, feed: str, mode: str) -> None:
        """One feed, in full or incrementally, in its own store connection.

        Its items are counted per kind in the run's records (a run's history shows them), and
        its kinds join the run's modes, so the run's total grows with what the feed reads.
        """
        for kind in self._kinds[feed]:
            self.progress.note("modes", kind, mode)
        with store.open(self.db_path) as db:
            if mode == "incremental":
                self._incremental(db, feed)
            else:
                self._full(db, feed)

    def _full(self, db: Store, feed: str) -> None:
        key = feed_key(feed)
        started_at = now_iso()
        db.syncstate.begin_full_pull(
            key, self.run_id, {"started_at": started_at, "since_ms": self.started_ms, "walkers": []}
        )
        self._read(db, feed, None)
        self.check()
        for kind in self._kinds[feed]:
            gone = db.interactions.archive_unseen(kind, seen_since=started_at)
            self.progress.note("archived", kind, gone, add=True)
        db.syncstate.complete_full_pull(key, modified_since_ms=self.started_ms)
        self._incremental(db, feed)

    def _incremental(self, db: Store, feed: str) -> None:
        key = feed_key(feed)
        since = max(0, int(db.syncstate.get_cursor(key)["modified_since_ms"] or 0) - self.overlap_ms)
        self._read(db, feed, since)
        self.check()
        db.syncstate.set_modified_since(key, self.started_ms)

    def _read(self, db: Store, feed: str, since_ms: int | None) -> None:
        for batch in self.api.iter_interactions(feed, since_ms=since_ms):
            self.check()
            if batch:
                db.interactions.upsert_interactions(batch, kinds=self._kinds[feed])
                for kind, n in Counter(item.kind for item in batch).items():
                    self.progress.add(kind, n)
