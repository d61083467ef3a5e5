"""A note or task is queued by role (time, note_body, task_subject...), not under one CRM's
property names: each CRM's provider names the roles its own way when it is pushed. A row
queued before that (HubSpot's names) is still pushed."""

from __future__ import annotations

import datetime as dt
import json

from crm.store.interactions import LOGGED_ROLES
from crm.sync import push, queue_note, queue_task, run_sync


def _contact(sandbox) -> str:
    return sorted((r["id"] for r in sandbox.truth("contacts") if not r["archived"]), key=int)[0]


def test_a_task_is_queued_by_role_and_reaches_hubspot_under_its_property_names(sandbox, settings, db):
    run_sync(settings, kind="full")
    contact = _contact(sandbox)
    due = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.UTC)
    queue_task(settings, "contacts", contact, subject="Renewal call", due=due, priority="HIGH", by=None)

    [row] = db.outbox.pending_creates("tasks")
    roles = row["payload"]["roles"]
    assert set(roles) <= set(LOGGED_ROLES) and "properties" not in row["payload"]
    assert (roles["task_subject"], roles["time"]) == ("Renewal call", str(int(due.timestamp() * 1000)))
    assert "hs_" not in json.dumps(row["payload"])

    assert [r["status"] for r in push(settings, by=None)["results"]] == ["created"]
    [task] = [t for t in sandbox.truth("tasks") if t["properties"].get("hs_task_subject") == "Renewal call"]
    assert (task["properties"]["hs_task_priority"], task["properties"]["hs_task_status"]) == (
        "HIGH",
        "NOT_STARTED",
    )
    assert [str(a["id"]) for a in task["associations"]["contacts"]] == [contact]


def test_a_note_queued_under_hubspots_names_before_the_roles_is_still_pushed_once(sandbox, settings, db):
    run_sync(settings, kind="full")
    contact = _contact(sandbox)
    local = queue_note(settings, "contacts", contact, "Queued long ago", by=None)
    # The row as the outbox kept it before notes were queued by role.
    [row] = db.outbox.pending_creates("notes")
    old = {
        "properties": {"hs_timestamp": row["payload"]["roles"]["time"], "hs_note_body": "Queued long ago"},
        "links": [["contacts", contact]],
    }
    db.conn.execute("UPDATE outbox SET payload = ? WHERE id = ?", (json.dumps(old), row["id"]))
    assert [r["payload"] for r in db.outbox.pending_creates("notes")] == [old]

    assert [r["status"] for r in push(settings, by=None)["results"]] == ["created"]
    assert push(settings, by=None)["results"] == []
    notes = [n for n in sandbox.truth("notes") if n["properties"].get("hs_note_body") == "Queued long ago"]
    assert len(notes) == 1
    assert notes[0]["properties"]["hs_timestamp"].startswith(
        dt.datetime.fromtimestamp(int(old["properties"]["hs_timestamp"]) / 1000, dt.UTC).strftime(
            "%Y-%m-%dT%H:%M"
        )
    )
    assert [str(a["id"]) for a in notes[0]["associations"]["contacts"]] == [contact]
    first = db.interactions.timeline("contacts", contact).rows[0]
    assert (first["id"], first["pending"]) == (notes[0]["id"], False) and first["id"] != local
