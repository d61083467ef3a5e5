"""Scheduled sync: every ``CRM_SYNC_INTERVAL``, an incremental sync and then a push of queued
edits, for every connection (HubSpot portals and Pipedrive companies alike).

For deployments that the CRMs' webhooks cannot reach (no public HTTPS URL). Times are
slots aligned to the epoch (every 15 minutes means :00, :15, :30, :45 UTC), so every
app process agrees on when the next run is. At each slot boundary every process's
scheduler wakes and tries to claim the slot in the home database
(``syncstate.claim_slot``); exactly one wins and runs, the others go back to sleep.

The winner serves every connection in the registry (read again each slot, so one added
since is served too), one thread each, as *Sync all* does: each connection's sync and
push run on its own partition under its own leases (a sync someone started by hand at
that moment makes the scheduled one a no-op rather than a second run) and within its own
account's rate limits; a connection that is not connected is skipped, and one whose CRM
fails or is unreachable is logged and recorded without stopping the others. The slot
ends when every connection's work has.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm import store
from crm.config import Settings
from crm.errors import CrmError, SyncBusy
from crm.logs import carry, run_context
from crm.store import syncstate
from crm.store.connections import Connection

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


@dataclass
class ConnectionSlot:
    """What one slot did for one connection.

    ``sync``: the finished run row; ``push``: the push summary; ``skipped``: why nothing ran
    (its status, "not connected", "needs reconnect", or "a sync is already running");
    ``error``: the CRM's or the network's error that ended its work this slot.
    """

    connection: Connection
    sync: dict[str, Any] | None = None
    push: dict[str, Any] | None = None
    skipped: str | None = None
    error: str | None = None


class Scheduler:
    """Runs the scheduled sync and push of every connection; one per process (the app starts it).

    ``tick`` does one slot's work (tests drive it with their own clock); ``start`` runs a
    daemon thread that sleeps until each slot boundary and ticks.

    Args:
        settings: the app's settings (the home database holds the registry and the slots).
        client_factory: builds the client of one connection's Settings (tests): a
            HubSpotClient or a ``CrmApi``; default: each run opens the connection's own.
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
        """Run this slot's sync and push of every connection if no process claimed the slot yet.

        Returns ``{"slot": n, "connections": {connection id: ConnectionSlot}}`` (in registry
        order), or None when another process (or an earlier tick) had the slot. Lines carry
        the run id ``schedule-<slot>``. Never raises for a CRM's or a connection's problems:
        they are logged, kept in the connection's ``ConnectionSlot`` and its run row.
        """
        slot = int(self.clock() // self.interval_s)
        with store.open(self.settings.home) as db:
            if not db.syncstate.claim_slot(syncstate.SCHEDULE_SLOT, slot, self._owner):
                return None
        with run_context("schedule", f"schedule-{slot}"):
            return self._run_slot(slot)

    def _run_slot(self, slot: int) -> dict[str, Any]:
        from crm import connections as registry

        slots = {conn.id: ConnectionSlot(conn) for conn in registry.list_connections(self.settings)}
        if slots:
            log.info(
                "scheduled sync and push of %d connection(s) (every %s)",
                len(slots),
                describe_interval(self.interval_s),
            )
        threads = [
            threading.Thread(target=carry(self._serve), args=(one,), name=f"schedule:{one.connection.id}")
            for one in slots.values()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {"slot": slot, "connections": slots}

    def _serve(self, one: ConnectionSlot) -> None:
        """One connection's sync then push; whatever goes wrong stays in ``one``."""
        try:
            self._sync_and_push(one)
        except Exception as exc:  # one connection's bug must not end the others' slot
            one.error = one.error or f"{type(exc).__name__}: {exc}"
            log.exception("scheduled sync of connection %s could not run", one.connection.id)

    def _sync_and_push(self, one: ConnectionSlot) -> None:
        from crm import crms
        from crm.oauth import connection_info
        from crm.sync.push import push
        from crm.sync.runner import run_sync, split_client

        conn = one.connection
        chosen = self.settings.for_connection(conn)
        words = crms.provider_of(chosen).words
        status = connection_info(chosen).status
        if status != "connected":
            # No failed run row every slot for a connection nobody has connected (yet, or again).
            one.skipped = status.replace("_", " ")
            log.info("%s connection %s is %s; its scheduled sync is skipped", words.crm, conn.id, one.skipped)
            return
        client, api = split_client(self._client_factory(chosen)) if self._client_factory else (None, None)
        try:
            try:
                one.sync = run_sync(
                    chosen,
                    kind="incremental",
                    trigger="schedule",
                    started_by="schedule",
                    client=client,
                    api=api,
                )
            except SyncBusy:
                one.skipped = "a sync is already running"
                log.info("connection %s is syncing already; its scheduled sync is skipped", conn.id)
            except CrmError as exc:
                one.error = f"{type(exc).__name__}: {exc}"
                log.warning("scheduled sync of connection %s failed: %s", conn.id, exc)
                return
            with run_context("push"):
                try:
                    summary = push(chosen, by="schedule", api=api if api is not None else _as_api(client))
                except SyncBusy:
                    log.info("connection %s is pushing already; its scheduled push is skipped", conn.id)
                except CrmError as exc:
                    one.error = f"{type(exc).__name__}: {exc}"
                    log.warning("scheduled push of connection %s failed: %s", conn.id, exc)
                else:
                    one.push = summary
                    log.info(
                        "push of connection %s: %s sent, %s refused, %s conflicts, %s to retry",
                        conn.id,
                        summary["pushed"],
                        summary["failed"],
                        summary["conflicts"],
                        summary["retry"],
                    )
        finally:
            if client is not None:
                client.close()
            if api is not None:
                api.close()

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
