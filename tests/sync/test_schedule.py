"""Scheduled sync (CRM_SYNC_INTERVAL): a sync then a push each slot, exactly one process per slot.

One sync per slot among several schedulers rests on the cache's lease: that test runs on both
backends. What a slot runs and when the thread starts it are the scheduler's own logic, on
SQLite only.
"""

from __future__ import annotations

import threading
import time

from crm import store
from crm.config import Settings
from crm.sync import Scheduler, describe_interval, next_run_at, queue_edits
from tests.pgcluster import sqlite_only

INTERVAL = 900


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _scheduled_runs(settings: Settings) -> list[dict]:
    db = store.open(settings)
    try:
        return [r for r in db.syncstate.run_history(limit=50) if r["trigger"] == "schedule"]
    finally:
        db.close()


def _only(result: dict | None):
    """The one connection's part of a slot's result."""
    assert result is not None
    (one,) = result["connections"].values()
    return one


def test_next_run_is_the_next_slot_boundary_for_every_process():
    assert next_run_at(900, 1_000_000.0) == 1_000_800.0
    assert next_run_at(900, 1_000_800.0) == 1_001_700.0
    assert describe_interval(900) == "15 min" and describe_interval(5400) == "1 h 30 min"


@sqlite_only
def test_a_scheduled_tick_syncs_then_pushes_queued_edits(settings: Settings, sandbox):
    clock = FakeClock(1_000 * INTERVAL + 5)
    scheduler = Scheduler(settings, interval_s=INTERVAL, clock=clock)
    first = _only(scheduler.tick())
    assert first.sync["state"] == "succeeded"
    assert first.sync["counts"]["records"]["contacts"] == 40
    contact = next(r for r in sandbox.truth("contacts") if not r["archived"])
    queue_edits(settings, "contacts", {contact["id"]: {"jobtitle": "Scheduled editor"}}, by="kim")

    assert scheduler.tick() is None  # same slot: nothing runs twice
    clock.now += INTERVAL
    second = _only(scheduler.tick())

    assert second.sync["kind"] == "incremental"
    assert second.push["pushed"] == 1
    pushed = next(r for r in sandbox.truth("contacts") if r["id"] == contact["id"])
    assert pushed["properties"]["jobtitle"] == "Scheduled editor"
    assert [r["trigger"] for r in _scheduled_runs(settings)] == ["schedule", "schedule"]


def test_two_schedulers_on_one_cache_run_one_sync_per_tick(settings: Settings, sandbox):
    clock = FakeClock(2_000 * INTERVAL + 1)
    one = Scheduler(settings, interval_s=INTERVAL, clock=clock)
    two = Scheduler(settings, interval_s=INTERVAL, clock=clock)
    results: list[dict | None] = []
    for _ in range(3):
        threads = [threading.Thread(target=lambda s=s: results.append(s.tick())) for s in (one, two)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        clock.now += INTERVAL
    ran = [r for r in results if r is not None]
    assert len(results) == 6 and len(ran) == 3
    assert len(_scheduled_runs(settings)) == 3


@sqlite_only
def test_the_schedule_thread_runs_at_the_slot_boundary(settings: Settings, sandbox):
    start = time.monotonic()
    boundary = 3_000 * INTERVAL
    scheduler = Scheduler(
        settings, interval_s=INTERVAL, clock=lambda: boundary - 0.2 + time.monotonic() - start
    )
    scheduler.start()
    try:
        deadline = time.monotonic() + 60
        while not _scheduled_runs(settings) or _scheduled_runs(settings)[0]["state"] == "running":
            assert time.monotonic() < deadline, "the scheduled sync did not run"
            threading.Event().wait(0.05)
    finally:
        scheduler.stop()
    db = store.open(settings)
    try:
        assert db.syncstate.latest_run()["state"] == "succeeded"
    finally:
        db.close()


def test_while_hubspot_is_not_connected_a_slot_leaves_no_failed_run(sandbox, tmp_path):
    from crm.config import load_settings

    unconnected = load_settings({"CRM_DB": str(tmp_path / "crm.db")}, {}).for_sandbox(sandbox.url)
    result = Scheduler(unconnected, interval_s=INTERVAL, clock=FakeClock(4_000 * INTERVAL)).tick()
    assert result == {"slot": 4_000, "connections": {}}
    assert _scheduled_runs(unconnected) == []
