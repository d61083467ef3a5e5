"""kill -9 in the middle of ``python -m crm sync`` and ``python -m crm push`` loses nothing."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from crm.store import OBJECT_TYPES, syncstate
from crm.sync import push, queue_edits, queue_new_contact, run_sync
from tests.sync.synchelpers import differences, wait_for

REPO = Path(__file__).resolve().parents[2]


def spawn(settings, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBSPOT_", "CRM_"))}
    env.update(
        HUBSPOT_ACCESS_TOKEN=settings.access_token,
        HUBSPOT_BASE_URL=settings.base_url,
        CRM_DB=settings.db,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "crm", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wrongly_archived(db, sandbox) -> list[str]:
    """Records the cache flags archived although HubSpot still has them."""
    found = []
    for object_type in OBJECT_TYPES:
        live = {r["id"] for r in sandbox.truth(object_type) if not r["archived"]}
        for (record_id,) in db.conn.execute(f"SELECT id FROM {object_type} WHERE archived = 1").fetchall():
            if record_id in live:
                found.append(f"{object_type} {record_id}")
    return found


def test_kill_9_at_random_points_of_a_sync_then_a_normal_sync_equals_the_truth(sandbox, settings, db):
    rng = random.Random(20261122)
    sandbox.configure(latency_ms=120, burst_limit=5000)
    sandbox.reset(seed=17, contacts=1500, companies=150, deals=400, owners=4)
    kills = 0
    for round_no in range(4):
        # HubSpot keeps changing between (and during) the interrupted runs.
        contacts = [r["id"] for r in sandbox.truth("contacts") if not r["archived"]]
        for record_id in rng.sample(contacts, 2):
            sandbox.patch_object("contacts", record_id, {"jobtitle": f"Round {round_no}"})
        sandbox.archive_object("contacts", rng.choice(contacts))
        previous = (db.syncstate.latest_run() or {"id": 0})["id"]
        process = spawn(settings, "sync", *(["--full"] if round_no % 2 == 0 else []))
        target = rng.uniform(0.1, 0.9)

        def kill_point(process=process, previous=previous, target=target) -> str | None:
            if process.poll() is not None:
                return "finished"
            run = db.syncstate.latest_run()
            if (
                run
                and run["id"] > previous
                and run["state"] == "running"
                and run["total"]
                and run["done"] >= target * run["total"]
            ):
                return "kill"
            return None

        if wait_for(kill_point, timeout=90) == "kill":
            process.kill()
            kills += 1
        process.wait(timeout=30)
        # An interrupted run never leaves a table looking complete: nothing live is flagged deleted.
        assert wrongly_archived(db, sandbox) == []
    assert kills >= 2
    run = run_sync(settings)  # the next run takes over the dead run's lease at once
    assert run["state"] == "succeeded"
    assert differences(db, sandbox) == []
    states = [r["state"] for r in db.syncstate.run_history(limit=10)]
    assert states.count("interrupted") == kills


def test_kill_9_during_a_push_loses_no_edit_and_creates_no_duplicate(sandbox, settings, db):
    rng = random.Random(99)
    run_sync(settings, kind="full")
    sandbox.configure(latency_ms=150)
    contacts = [r["id"] for r in sandbox.truth("contacts") if not r["archived"]]
    expected: dict[str, str] = {}
    emails: list[str] = []
    kills = 0
    for round_no in range(3):
        edits = {rid: {"jobtitle": f"Round {round_no} for {rid}"} for rid in rng.sample(contacts, 12)}
        queue_edits(settings, "contacts", edits, by="kim@example.com")
        expected.update({rid: props["jobtitle"] for rid, props in edits.items()})
        for n in range(2):
            emails.append(f"crash-{round_no}-{n}@example.com")
            queue_new_contact(settings, {"email": emails[-1], "firstname": f"Crash {round_no}.{n}"}, by="kim")
        process = spawn(settings, "push")
        wait_for(
            lambda p=process: p.poll() is not None or db.syncstate.lease_holder(syncstate.PUSH_LEASE),
            timeout=30,
        )
        deadline = time.monotonic() + rng.uniform(0.0, 0.9)
        wait_for(lambda p=process, d=deadline: p.poll() is not None or time.monotonic() >= d, timeout=30)
        if process.poll() is None:
            process.kill()
            kills += 1
        process.wait(timeout=30)
    assert kills >= 2
    summary = push(settings, by="kim@example.com")
    assert (summary["failed"], summary["conflicts"], summary["retry"]) == (0, 0, 0)
    assert db.outbox.outbox_counts()["pending"] == 0
    truth = {r["id"]: r["properties"] for r in sandbox.truth("contacts") if not r["archived"]}
    for record_id, title in expected.items():
        assert truth[record_id]["jobtitle"] == title
    for email in emails:
        assert sum((p.get("email") or "").lower() == email for p in truth.values()) == 1, email
    assert db.conn.execute("SELECT count(*) FROM contacts WHERE id LIKE 'local-%'").fetchone()[0] == 0
    assert db.queries.counts()["contacts"] == len(truth)
