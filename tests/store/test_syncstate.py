"""Runs, cursors and the one-sync-at-a-time lease."""

from __future__ import annotations

import subprocess
import sys
import time

from crm.store import syncstate, values


def test_a_second_owner_cannot_take_a_live_lease_but_can_take_an_expired_one(db):
    assert db.syncstate.acquire_lease("sync", "me")
    assert not db.syncstate.acquire_lease("sync", "you")
    db.conn.execute("UPDATE sync_lease SET expires_at = ?", (time.time() - 1,))
    assert db.syncstate.acquire_lease("sync", "you")
    assert not db.syncstate.renew_lease("sync", "me")


def test_a_lease_held_by_a_dead_process_on_this_host_is_free_at_once(db):
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(child.stdout)
    host = syncstate.new_owner().split(":")[0]
    assert db.syncstate.acquire_lease("sync", f"{host}:{dead_pid}:abc", ttl_s=3600)
    assert db.syncstate.acquire_lease("sync", syncstate.new_owner())


def test_start_run_refuses_while_another_run_is_live_and_retires_dead_runs(db):
    first = db.syncstate.start_run(kind="full", trigger="ui", started_by="kim", owner="host-a:1:x")
    assert first is not None
    assert (
        db.syncstate.start_run(kind="incremental", trigger="cli", started_by=None, owner="host-b:2:y") is None
    )
    assert db.syncstate.is_sync_running()
    db.conn.execute("UPDATE sync_lease SET expires_at = 0")
    second = db.syncstate.start_run(kind="incremental", trigger="cli", started_by=None, owner="host-b:2:y")
    assert second is not None
    history = {r["id"]: r for r in db.syncstate.run_history()}
    assert history[first]["state"] == "interrupted" and history[second]["state"] == "running"


def test_progress_heartbeats_are_visible_and_finishing_releases_the_lease(db):
    run_id = db.syncstate.start_run(kind="full", trigger="ui", started_by=None, owner="o")
    assert db.syncstate.heartbeat(
        run_id,
        "o",
        {
            "phase": "records",
            "object_type": "contacts",
            "done": 300,
            "total": 1000,
            "requests": 7,
            "counts": {"records": {"contacts": 300}},
        },
    )
    run = db.syncstate.latest_run()
    assert (run["phase"], run["done"], run["total"], run["counts"]["records"]) == (
        "records",
        300,
        1000,
        {"contacts": 300},
    )
    db.syncstate.finish_run(run_id, "o", state="succeeded", progress={"done": 1000})
    assert db.syncstate.latest_run()["state"] == "succeeded"
    assert not db.syncstate.is_sync_running()


def test_a_run_whose_heartbeat_went_stale_shows_as_interrupted(db):
    run_id = db.syncstate.start_run(kind="full", trigger="ui", started_by=None, owner="o")
    db.conn.execute("UPDATE sync_runs SET heartbeat_at = '2020-01-01T00:00:00.000Z' WHERE id = ?", (run_id,))
    assert db.syncstate.latest_run()["state"] == "interrupted"


def test_a_full_pull_position_is_saved_per_walker_and_cleared_when_complete(db):
    db.syncstate.begin_full_pull(
        "contacts",
        1,
        {"started_at": values.now_iso(), "since_ms": 5, "walkers": [{"after": None, "done": False}] * 2},
    )
    db.syncstate.save_full_position("contacts", 1, "20040", False)
    db.syncstate.save_full_position("contacts", 0, None, True)
    cursor = db.syncstate.get_cursor("contacts")
    assert cursor["full_state"]["walkers"] == [
        {"after": None, "done": True},
        {"after": "20040", "done": False},
    ]
    assert not cursor["full_complete"]
    db.syncstate.complete_full_pull("contacts", modified_since_ms=5)
    cursor = db.syncstate.get_cursor("contacts")
    assert cursor["full_complete"] and cursor["full_state"] is None and cursor["modified_since_ms"] == 5
