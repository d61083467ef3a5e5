"""Scheduled sync: every ``CRM_SYNC_INTERVAL``, an incremental sync and then a push of queued edits.

For deployments that HubSpot's webhooks cannot reach (no public HTTPS URL). Times are
slots aligned to the epoch (every 15 minutes means :00, :15, :30, :45 UTC), so every
app process agrees on when the next run is. At each slot boundary every process's
scheduler wakes and tries to claim the slot in the cache (``syncstate.claim_slot``);
exactly one wins and runs, the others go back to sleep. The sync itself still takes the
sync lease, so a sync someone started by hand at that moment makes the scheduled one a
no-op rather than a second run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from crm import store
from crm.config import Settings
from crm.errors import CrmError, SyncBusy
from crm.logs import run_context
from crm.store import syncstate

log = logging.getLogger("crm.sync.schedule")


def next_run_at(interval_s: int, now: float) -> float:
    """The epoch second of the next scheduled run after ``now``."""
    return (int(now // interval_s) + 1) * float(interval_s)


def describe_interval(interval_s: int) -> str:
    """``interval_s`` in words, as the Sync page shows it: "15 min", "1 h 30 min", "90 s"."""
    days, rest = divmod(interval_s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")) if n]
    return " ".join(parts) or "0 s"


class Scheduler:
    """Runs the scheduled sync and push for one cache; one per process (the app starts it).

    ``tick`` does one slot's work (tests drive it with their own clock); ``start`` runs a
    daemon thread that sleeps until each slot boundary and ticks.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        interval_s: int | None = None,
        clock: Callable[[], float] = time.time,
        client_factory: Callable[[Settings], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.interval_s = interval_s or settings.sync_interval_s
        if self.interval_s <= 0:
            raise ValueError("a schedule needs an interval greater than zero")
        self.clock = clock
        self._client_factory = client_factory
        self._owner = syncstate.new_owner()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def next_run_at(self) -> float:
        return next_run_at(self.interval_s, self.clock())

    def tick(self) -> dict[str, Any] | None:
        """Run this slot's sync and push if no process has claimed the slot yet.

        Returns ``{"slot", "sync", "push"}`` (the finished run and the push summary, each
        None when skipped, e.g. while HubSpot is not connected) or None when another
        process (or an earlier tick) had the slot. Lines carry the run id ``schedule-<slot>``.
        Never raises for HubSpot or sync problems: they are logged and end up in the run row.
        """
        slot = int(self.clock() // self.interval_s)
        with store.open(self.settings) as db:
            if not db.syncstate.claim_slot(syncstate.SCHEDULE_SLOT, slot, self._owner):
                return None
        with run_context("schedule", f"schedule-{slot}"):
            return self._run_slot(slot)

    def _run_slot(self, slot: int) -> dict[str, Any]:
        from crm.oauth import connection_info
        from crm.sync.push import push
        from crm.sync.runner import run_sync

        result: dict[str, Any] = {"slot": slot, "sync": None, "push": None}
        status = connection_info(self.settings).status
        if status != "connected":
            # No failed run row every slot while nobody has connected HubSpot yet.
            log.info("HubSpot is %s; this slot's scheduled sync is skipped", status.replace("_", " "))
            return result
        log.info("scheduled sync and push (every %s)", describe_interval(self.interval_s))
        client = self._client_factory(self.settings) if self._client_factory else None
        try:
            try:
                result["sync"] = run_sync(
                    self.settings,
                    kind="incremental",
                    trigger="schedule",
                    started_by="schedule",
                    client=client,
                )
            except SyncBusy:
                log.info("a sync is already running; this slot's scheduled sync is skipped")
            except CrmError as exc:
                log.warning("scheduled sync failed: %s", exc)
                return result
            with run_context("push"):
                try:
                    summary = push(self.settings, by="schedule", api=_as_api(client))
                except SyncBusy:
                    log.info("a push is already running; this slot's scheduled push is skipped")
                except CrmError as exc:
                    log.warning("scheduled push failed: %s", exc)
                else:
                    result["push"] = summary
                    log.info(
                        "push: %s sent, %s refused, %s conflicts, %s to retry",
                        summary["pushed"],
                        summary["failed"],
                        summary["conflicts"],
                        summary["retry"],
                    )
        finally:
            if client is not None:
                client.close()
        return result

    def start(self) -> None:
        """Start the background thread (once); it ticks at every slot boundary until ``stop``."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="sync-schedule", daemon=True)
        self._thread.start()
        log.info(
            "scheduled sync every %s; next at %s UTC",
            describe_interval(self.interval_s),
            time.strftime("%H:%M:%S", time.gmtime(self.next_run_at())),
        )

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(max(0.0, self.next_run_at() - self.clock())):
            try:
                self.tick()
            except Exception:  # a broken cache must not end the schedule for good
                log.exception("scheduled sync could not run")


def _as_api(client: Any) -> Any:
    """The push's CRM API over a test's client: a CrmApi as is, a HubSpotClient wrapped."""
    from crm.hubspot.provider import HubSpotApi
    from crm.interface import CrmApi

    if client is None or isinstance(client, CrmApi):
        return client
    return HubSpotApi(client)
