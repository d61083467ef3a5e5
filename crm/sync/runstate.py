"""What every pull shares, whichever CRM it reads: the run's progress counters, the stop
signal, how a run plans each type, the lookback and the association pairs the cache keeps.

HubSpot's tuned pull (``crm.sync.pull``) and the generic pull through the CRM interface
(``crm.sync.listpull``) both build on it, and neither imports the other: the generic pull
depends on the CRM interface and the store, not on HubSpot's tuned pull.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from crm.store import Store
from crm.store.interactions import ENGAGEMENT_TYPES, LINKED_TYPES
from crm.store.values import to_epoch_ms

# How far before the previous run's start an incremental pull looks (crm.sync.pull's
# docstring gives the reasons).
OVERLAP_MS = 5 * 60_000
# A full pull interrupted longer ago than this starts over instead of resuming.
RESUME_WITHIN_S = 24 * 3600
# A timeline feed's rows in ``sync_cursors`` (its cursor, its last look for deletions) are
# named with this prefix, so they never collide with an object type's.
FEED_PREFIX = "interactions."
# The associations the cache keeps, read from the side named first.
ASSOCIATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "contacts": (("contacts", "companies"),),
    "companies": (),
    "deals": (("deals", "contacts"), ("deals", "companies")),
    "tickets": (("tickets", "contacts"), ("tickets", "companies"), ("tickets", "deals")),
    **{t: tuple((t, to) for to in LINKED_TYPES) for t in ENGAGEMENT_TYPES},
}


def feed_key(feed: str) -> str:
    """The ``sync_cursors`` name of a timeline feed's cursor (``interactions.notes``)."""
    return FEED_PREFIX + feed


class Interrupted(Exception):
    """The run lost its lease (or was asked to stop); nothing after this point is saved."""


class Progress:
    """Counters of one run, shared by its threads and written out by the heartbeat."""

    def __init__(self, stats: Callable[[], dict[str, Any]] | None = None) -> None:
        self._lock = threading.Lock()
        self._stats = stats
        self.phase = "starting"
        self.object_type: str | None = None
        self.done: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self.archived: dict[str, int] = {}
        self.modes: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.walk_seconds: dict[str, float] = {}
        self.associations = 0
        self.conflicts = 0
        self.resume_at: float | None = None
        self._gauges: Callable[[], dict[str, Any]] | None = None

    def set(self, **fields: Any) -> None:
        with self._lock:
            for key, value in fields.items():
                setattr(self, key, value)

    def add(self, object_type: str, n: int) -> None:
        with self._lock:
            self.done[object_type] = self.done.get(object_type, 0) + n

    def total(self, object_type: str, n: int, *, add: bool = False) -> None:
        """The records a type is expected to have (search's total); ``add`` for a catch-up."""
        with self._lock:
            self.totals[object_type] = n + (self.totals.get(object_type, 0) if add else 0)

    def count_requests(self, stats: Callable[[], dict[str, Any]]) -> None:
        """Report request, retry and 429 counts from ``stats`` (the client's ``stats.snapshot``)."""
        self._stats = stats

    def watch_budgets(self, gauges: Callable[[], dict[str, Any]]) -> None:
        """Report the burst, search and daily budgets from ``gauges`` (``PortalLimits.gauges``)."""
        self._gauges = gauges

    def bump(self, name: str, n: int) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def note(self, name: str, object_type: str, value: float | str, *, add: bool = False) -> None:
        """Set (or add to) one type's entry of a per-type table: archived, seconds,
        walk_seconds (numbers), modes (a mode)."""
        with self._lock:
            table: dict[str, Any] = getattr(self, name)
            table[object_type] = (table.get(object_type, 0) + value) if add else value

    def snapshot(self) -> dict[str, Any]:
        """The fields of a ``sync_runs`` row."""
        stats = self._stats() if self._stats else {}
        budgets = self._gauges() if self._gauges else None
        with self._lock:
            # Types queued or still counting add what they have read so far, so the total is
            # known (and grows) while some types wait their turn (TYPES_AT_ONCE).
            total = (
                sum(self.totals.values())
                + sum(self.done.get(t, 0) for t in self.modes if t not in self.totals)
                if self.modes
                else None
            )
            return {
                "phase": self.phase,
                "object_type": self.object_type,
                "done": sum(self.done.values()),
                "total": total,
                "requests": int(stats.get("requests", 0)),
                "retries": int(stats.get("retries", 0)),
                "rate_limited": int(stats.get("rate_limited", 0)),
                "counts": {
                    "records": dict(self.done),
                    "expected": dict(self.totals),
                    "archived": dict(self.archived),
                    "modes": dict(self.modes),
                    "seconds": dict(self.seconds),
                    "walk_seconds": dict(self.walk_seconds),
                    "associations": self.associations,
                    "conflicts": self.conflicts,
                    "requests_by_kind": stats.get("by_kind", {}),
                    **({"budgets": budgets} if budgets is not None else {}),
                    **({"resume_at": self.resume_at} if self.resume_at is not None else {}),
                },
            }


def plan_for(db: Store, object_type: str, kind: str) -> str:
    """How a run pulls one type: "resume" (a full pull interrupted less than RESUME_WITHIN_S
    ago), "full" (asked for, or the type never had a complete one) or "incremental"."""
    cursor = db.syncstate.get_cursor(object_type)
    state = cursor["full_state"]
    if state:
        started_ms = to_epoch_ms(state.get("started_at")) or 0
        if time.time() - started_ms / 1000 < RESUME_WITHIN_S:
            return "resume"
    if kind == "full" or not cursor["full_complete"] or cursor["modified_since_ms"] is None:
        return "full"
    return "incremental"
