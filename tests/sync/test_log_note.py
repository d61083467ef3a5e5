"""Notes and tasks logged on a record: queued, shown at once as pending, pushed once with their association.

Each starts on a copy of a cache synced once per session and backend from the small portal
(``synced``, tests/sync/conftest.py): the sync is not their subject.
"""

from __future__ import annotations

import datetime as dt
import importlib

import pytest

from crm.errors import InvalidEdit, Unreachable
from crm.hubspot import HubSpotClient, StaticToken
from crm.hubspot.provider import HubSpotApi
from crm.sync import push, queue_note, queue_task, run_sync

# The module, not the function crm.sync re-exports under the same name.
push_module = importlib.import_module("crm.sync.push_logged")


def _contact(sandbox) -> str:
    return sorted((r["id"] for r in sandbox.truth("contacts") if not r["archived"]), key=int)[0]


def _notes_with(sandbox, text: str) -> list[dict]:
    return [
        n
        for n in sandbox.truth("notes")
        if not n["archived"] and text in (n["properties"].get("hs_note_body") or "")
    ]


def test_a_logged_note_shows_as_pending_then_reaches_hubspot_with_its_association(
    sandbox, settings, db, synced
):
    contact = _contact(sandbox)
    local = queue_note(
        settings, "contacts", contact, "Called <Ada> & agreed\nrenewal", by="staff@example.com"
    )
    first = db.interactions.timeline("contacts", contact).rows[0]
    assert (first["id"], first["pending"], first["preview"]) == (local, True, "Called <Ada> & agreed")
    assert db.interactions.body("notes", local) == "Called <Ada> & agreed\nrenewal"

    result = push(settings, by="staff@example.com")
    assert [r["status"] for r in result["results"]] == ["created"]
    [note] = _notes_with(sandbox, "agreed")
    assert note["properties"]["hs_note_body"] == "Called &lt;Ada&gt; &amp; agreed<br>renewal"
    assert [str(a["id"]) for a in note["associations"]["contacts"]] == [contact]
    assert 202 in note["associations"]["contacts"][0]["types"]
    first = db.interactions.timeline("contacts", contact).rows[0]
    assert (first["id"], first["pending"]) == (note["id"], False)
    assert db.interactions.body("notes", note["id"]) == "Called <Ada> & agreed\nrenewal"
    assert db.interactions.get("notes", local) is None
    # A later full pull sees the same note: nothing doubles.
    run_sync(settings, kind="full")
    assert [r["id"] for r in db.interactions.timeline("contacts", contact, search="agreed").rows] == [
        note["id"]
    ]


class _AnswerLost(HubSpotClient):
    """HubSpot creates the note, then the connection drops before the answer arrives."""

    def batch_create(self, object_type, inputs):
        super().batch_create(object_type, inputs)
        raise Unreachable("the connection dropped before HubSpot's answer arrived")


def test_a_create_whose_answer_was_lost_is_found_not_sent_twice(sandbox, settings, db, monkeypatch, synced):
    contact = _contact(sandbox)
    queue_note(settings, "contacts", contact, "Timeout witness", by=None)
    with _AnswerLost(settings, StaticToken(settings.access_token)) as losing:
        result = push(settings, by=None, api=HubSpotApi(losing))
    assert [r["status"] for r in result["results"]] == ["retry"]
    assert len(_notes_with(sandbox, "Timeout witness")) == 1  # HubSpot has it; we do not know
    assert db.interactions.timeline("contacts", contact).rows[0]["pending"] is True

    # Too soon to trust search: the note waits.
    assert [r["status"] for r in push(settings, by=None)["results"]] == ["retry"]
    monkeypatch.setattr(push_module, "SEARCH_SETTLE_S", 0.0)
    assert [r["status"] for r in push(settings, by=None)["results"]] == ["created"]
    [note] = _notes_with(sandbox, "Timeout witness")
    assert db.interactions.timeline("contacts", contact).rows[0]["id"] == note["id"]
    assert push(settings, by=None)["results"] == []


def test_a_task_is_created_due_when_asked_with_its_priority(sandbox, settings, db, synced):
    company = sorted(r["id"] for r in sandbox.truth("companies") if not r["archived"])[0]
    due = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    queue_task(
        settings,
        "companies",
        company,
        subject="Send the quote",
        due=due,
        notes="v2 pricing",
        priority="HIGH",
        by=None,
    )
    assert db.interactions.timeline("companies", company, types=["tasks"]).rows[0]["pending"] is True
    assert [r["status"] for r in push(settings, by=None)["results"]] == ["created"]
    [task] = [t for t in sandbox.truth("tasks") if t["properties"].get("hs_task_subject") == "Send the quote"]
    assert task["properties"]["hs_task_priority"] == "HIGH"
    assert task["properties"]["hs_task_status"] == "NOT_STARTED"
    assert [str(a["id"]) for a in task["associations"]["companies"]] == [company]
    row = db.interactions.timeline("companies", company, types=["tasks"]).rows[0]
    assert row["occurred_at"].startswith("2026-03-02T09:30") and row["subject"] == "Send the quote"


def test_an_empty_note_or_an_unknown_record_is_refused_and_nothing_is_queued(sandbox, settings, db, synced):
    with pytest.raises(InvalidEdit) as refused:
        queue_note(settings, "contacts", _contact(sandbox), "   \n ", by=None)
    assert set(refused.value.field_errors) == {"body"}
    with pytest.raises(InvalidEdit) as refused:
        queue_note(settings, "contacts", "999999999", "hello", by=None)
    assert set(refused.value.field_errors) == {"record"}
    with pytest.raises(InvalidEdit) as refused:
        queue_task(settings, "contacts", _contact(sandbox), subject="", due=dt.datetime(2026, 1, 1), by=None)
    assert set(refused.value.field_errors) == {"subject", "due"}
    assert db.outbox.outbox_counts().get("pending", 0) == 0
