"""Edits of a Pipedrive connection's people pushed through the CRM interface to the Pipedrive
sandbox (loopback): three-way conflicts, Pipedrive's refusals, creates that land once, and
pronouns set up in every connected CRM.

The Pipedrive partition is filled by listing persons through ``PipedriveApi`` and storing
them with the store's own record verbs (the real Pipedrive pull is built elsewhere).
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from crm import connections, store
from crm.config import Settings
from crm.crms import provider_for
from crm.errors import InvalidEdit, NeedsReconnect, Unreachable
from crm.interface import CrmApi
from crm.pipedrive.client import ApiToken, PipedriveClient
from crm.pipedrive.provider import PipedriveApi
from crm.sandbox.pipedrive import PipedriveServer
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sandbox.pipedrive.models import Activity, Note
from crm.sync import (
    describe_setup,
    pronouns_property,
    push,
    queue_edits,
    queue_new_contact,
    queue_note,
    queue_task,
    set_up_pronouns_everywhere,
)
from crm.sync.listpull import definition_of
from tests.pgcluster import sqlite_only
from tests.pipedrive_fixtures import reset_company, serve_company

# crm.sync re-exports the function push under the module's name.
push_module = importlib.import_module("crm.sync.push_logged")
COMPANY = {"seed": 7, "persons": 12, "organizations": 3, "deals": 4, "users": 2}


@pytest.fixture(scope="module")
def pd_server() -> Iterator[PipedriveServer]:
    yield from serve_company(COMPANY)


@pytest.fixture
def pd_admin(pd_server: PipedriveServer) -> Iterator[PipedriveAdmin]:
    yield from reset_company(pd_server, COMPANY)


@pytest.fixture
def pd_settings(settings: Settings, pd_admin: PipedriveAdmin) -> Settings:
    """A Pipedrive connection beside the HubSpot home, on the test's backend (``cache_target``)."""
    connections.list_connections(settings)  # the HubSpot portal keeps the home database
    company = str(pd_admin.config()["company_id"])
    conn = connections.add(settings, account_id=company, crm="pipedrive", base_url=pd_admin.url)
    chosen = connections.settings_for(settings, conn)
    assert chosen.db != settings.db
    return chosen


def _open(
    settings: Settings, admin: PipedriveAdmin, client: type[PipedriveClient] = PipedriveClient
) -> PipedriveApi:
    return PipedriveApi(client(admin.url, ApiToken(admin.api_token()), timeout=10, max_retries=1))


@pytest.fixture
def pd_api(pd_settings: Settings, pd_admin: PipedriveAdmin) -> Iterator[PipedriveApi]:
    with _open(pd_settings, pd_admin) as api:
        yield api


def _load(settings: Settings, api: CrmApi) -> list[str]:
    """Store the company's person definitions and persons in the connection's partition."""
    records = []
    cursor = None
    while True:
        page = api.list_page("contacts", properties=[], cursor=cursor)
        records.extend(page.records)
        cursor = page.next_cursor
        if cursor is None:
            break
    # Every Pipedrive field gets a column here (the HubSpot-defined flag means nothing there).
    defs = [definition_of(p) for p in api.properties("contacts")]
    with store.open(settings) as db:
        db.records.save_property_defs("contacts", defs)
        db.records.upsert_records("contacts", records)
    return sorted((r.id for r in records), key=int)


def _person(admin: PipedriveAdmin, person_id: str) -> dict[str, Any]:
    return next(p for p in admin.truth("persons") if str(p["id"]) == person_id)


def _field_key(api: CrmApi, label: str) -> str:
    return next(p.name for p in api.properties("contacts") if p.label == label)


def test_edits_of_a_pipedrive_person_reach_pipedrive_the_cache_and_the_audit_log(
    pd_settings, pd_admin, pd_api
):
    first, second = _load(pd_settings, pd_api)[:2]
    linkedin = _field_key(pd_api, "LinkedIn profile")
    queued = queue_edits(
        pd_settings,
        "contacts",
        {
            first: {"email": "ada@example.org", "name": "Ada Lovelace"},
            second: {linkedin: "https://linkedin.example/in/grace"},
        },
        by="kim@example.com",
    )
    assert queued == 3

    summary = push(pd_settings, by="kim@example.com", api=pd_api)

    assert (summary["pushed"], summary["failed"], summary["conflicts"], summary["retry"]) == (3, 0, 0, 0)
    person = _person(pd_admin, first)
    assert person["name"] == "Ada Lovelace"
    assert [e["value"] for e in person["emails"] if e.get("primary")] == ["ada@example.org"]
    assert _person(pd_admin, second)["custom_fields"][linkedin] == "https://linkedin.example/in/grace"
    with store.open(pd_settings) as db:
        assert db.queries.get_record("contacts", first)["name"] == "Ada Lovelace"
        assert db.outbox.outbox_counts()["pending"] == 0
        log = db.outbox.audit_log()
        assert set(log["result"]) == {"pushed"} and set(log["by"]) == {"kim@example.com"}


def test_a_value_changed_in_pipedrive_meanwhile_is_a_conflict_not_an_overwrite(pd_settings, pd_admin, pd_api):
    person = _load(pd_settings, pd_api)[0]
    queue_edits(pd_settings, "contacts", {person: {"name": "Mine"}}, by="kim")
    pd_admin.patch_object("persons", int(person), {"name": "Theirs"})

    (result,) = push(pd_settings, by="kim", api=pd_api)["results"]

    assert result["status"] == "conflict" and "Pipedrive's value changed" in result["message"]
    assert _person(pd_admin, person)["name"] == "Theirs"
    with store.open(pd_settings) as db:
        (conflict,) = db.outbox.rows("contacts")
        assert (conflict["status"], conflict["new_value"], conflict["remote_value"]) == (
            "conflict",
            "Mine",
            "Theirs",
        )


def test_pipedrives_refusal_is_the_fields_message_and_the_edit_stays_in_the_outbox(
    pd_settings, pd_admin, pd_api
):
    person = _load(pd_settings, pd_api)[0]
    before = _person(pd_admin, person)["name"]
    queue_edits(pd_settings, "contacts", {person: {"name": "x" * 300}}, by="kim")

    (result,) = push(pd_settings, by="kim", api=pd_api)["results"]

    assert result["status"] == "failed"
    assert result["message"].startswith("Pipedrive refused name: ") and "255" in result["message"]
    assert _person(pd_admin, person)["name"] == before
    with store.open(pd_settings) as db:
        (edit,) = db.outbox.rows("contacts")
        assert edit["status"] == "failed" and edit["error"] == result["message"]
        assert db.queries.get_record("contacts", person)["name"] == before


class _AnswerLost(PipedriveClient):
    """Pipedrive creates the person, then the connection drops before the answer arrives."""

    def create(self, entity, body):
        super().create(entity, body)
        raise Unreachable("the connection dropped before Pipedrive's answer arrived")


def test_a_person_created_from_the_app_lands_once_even_when_the_answer_was_lost(
    pd_settings, pd_admin, pd_api
):
    _load(pd_settings, pd_api)
    local = queue_new_contact(pd_settings, {"email": "new@example.org", "name": "New Person"}, by="kim")

    with _open(pd_settings, pd_admin, _AnswerLost) as losing:
        (first,) = push(pd_settings, by="kim", api=losing)["results"]
    assert first["status"] == "retry"
    (second,) = push(pd_settings, by="kim", api=pd_api)["results"]
    assert push(pd_settings, by="kim", api=pd_api)["results"] == []

    matches = [
        p
        for p in pd_admin.truth("persons")
        if any(e["value"] == "new@example.org" for e in p.get("emails") or [])
    ]
    assert len(matches) == 1
    assert second["status"] == "created" and second["record_id"] == str(matches[0]["id"])
    with store.open(pd_settings) as db:
        assert db.queries.get_record("contacts", local) is None
        assert db.queries.get_record("contacts", str(matches[0]["id"]))["name"] == "New Person"


def test_pronouns_are_set_up_in_every_connected_crm_that_lacks_them(
    sandbox, settings, pd_settings, pd_admin, pd_api
):
    people = _load(pd_settings, pd_api)

    def open_api(chosen: Settings) -> CrmApi:
        if chosen.crm == "pipedrive":
            return _open(chosen, pd_admin)
        return provider_for(chosen.crm).connect(chosen)

    first = set_up_pronouns_everywhere(settings, open_api=open_api)
    again = set_up_pronouns_everywhere(settings, open_api=open_api)

    assert sorted((r.crm, r.status) for r in first) == [("HubSpot", "created"), ("Pipedrive", "created")]
    assert sorted((r.crm, r.status) for r in again) == [("HubSpot", "already"), ("Pipedrive", "already")]
    key = _field_key(pd_api, "Pronouns")
    assert len(key) == 40 and key != "pronouns"  # Pipedrive names it with a hash key
    with store.open(pd_settings) as db:
        assert pronouns_property(db) == key
        options = {o["label"]: o["value"] for o in db.queries.property_defs("contacts")[key]["options"]}
    with store.open(settings) as db:
        assert pronouns_property(db) == "pronouns"
    # The field is edited and pushed like any other, by its option's Pipedrive id.
    queue_edits(pd_settings, "contacts", {people[0]: {key: options["They/them"]}}, by="kim")
    summary = push(pd_settings, by="kim", api=pd_api)
    assert summary["pushed"] == 1, [(r["status"], r["message"]) for r in summary["results"]]
    assert str(_person(pd_admin, people[0])["custom_fields"][key]) == options["They/them"]


def test_a_token_pipedrive_refuses_stops_the_push_and_keeps_the_edits_queued(pd_settings, pd_admin, pd_api):
    person = _load(pd_settings, pd_api)[0]
    queue_edits(pd_settings, "contacts", {person: {"name": "Waiting"}}, by="kim")
    refused = PipedriveApi(PipedriveClient(pd_admin.url, ApiToken("not-a-token"), timeout=10, max_retries=1))

    with refused, pytest.raises(NeedsReconnect):
        push(pd_settings, by="kim", api=refused)

    with store.open(pd_settings) as db:
        (edit,) = db.outbox.rows("contacts")
        assert (edit["status"], edit["attempts"], edit["error"]) == ("pending", 0, None)
    assert push(pd_settings, by="kim", api=pd_api)["pushed"] == 1
    assert _person(pd_admin, person)["name"] == "Waiting"


def _load_deals(settings: Settings, api: CrmApi) -> list[Any]:
    """The company's deals, their definitions and pipelines, into the connection's partition."""
    page = api.list_page("deals", properties=[], limit=100)
    pipelines = api.pipelines("deals")
    stored = [
        {
            "id": p.id,
            "label": p.label,
            "display_order": p.display_order,
            "stages": [{"id": s.id, "label": s.label, "display_order": s.display_order} for s in p.stages],
        }
        for p in pipelines
    ]
    with store.open(settings) as db:
        db.records.save_property_defs("deals", [definition_of(p) for p in api.properties("deals")])
        db.records.save_pipelines("deals", stored)
        db.records.upsert_records("deals", page.records)
    return pipelines


def test_a_pipedrive_deals_stage_must_be_one_of_its_pipeline_and_is_pushed_when_it_is(
    pd_settings, pd_admin, pd_api
):
    pipelines = _load_deals(pd_settings, pd_api)
    deal = next(d for d in pd_admin.truth("deals") if not d.get("is_deleted"))
    own = next(p for p in pipelines if p.id == str(deal["pipeline_id"]))
    other = next(p for p in pipelines if p.id != own.id)
    elsewhere = next(s.id for s in other.stages if s.id not in {t.id for t in own.stages})
    target = next(s.id for s in own.stages if s.id != str(deal["stage_id"]))

    with pytest.raises(InvalidEdit) as refused:
        queue_edits(pd_settings, "deals", {str(deal["id"]): {"stage_id": elsewhere}}, by="kim")
    assert "is not a stage of pipeline" in refused.value.field_errors[f"{deal['id']}.stage_id"]

    queue_edits(pd_settings, "deals", {str(deal["id"]): {"stage_id": target}}, by="kim")
    assert push(pd_settings, by="kim", api=pd_api)["pushed"] == 1
    assert str(next(d for d in pd_admin.truth("deals") if d["id"] == deal["id"])["stage_id"]) == target


def test_a_new_person_whose_email_is_someones_second_address_is_held_for_a_decision(
    pd_settings, pd_admin, pd_api
):
    person = _load(pd_settings, pd_api)[0]
    before = _person(pd_admin, person)
    primary = next(e for e in before["emails"] if e.get("primary"))
    second = {"value": "second@example.org", "primary": False, "label": "home"}
    pd_admin.patch_object("persons", int(person), {"emails": [primary, second]})
    count = len(pd_admin.truth("persons"))
    queue_new_contact(pd_settings, {"email": "second@example.org", "name": "Someone Else"}, by="kim")

    (result,) = push(pd_settings, by="kim", api=pd_api)["results"]

    assert (
        result["status"] == "conflict"
        and "Pipedrive already has a contact with this email" in result["message"]
    )
    assert len(pd_admin.truth("persons")) == count
    assert _person(pd_admin, person)["name"] == before["name"]


def test_a_connection_that_cannot_set_up_pronouns_is_reported_and_the_others_go_on(
    sandbox, settings, pd_settings
):
    def open_api(chosen: Settings) -> CrmApi:
        if chosen.crm == "pipedrive":
            raise NeedsReconnect("Pipedrive refused the credentials: token revoked")
        return provider_for(chosen.crm).connect(chosen)

    results = {r.crm: r for r in set_up_pronouns_everywhere(settings, open_api=open_api)}

    assert results["HubSpot"].status == "created" and results["HubSpot"].property == "pronouns"
    assert results["Pipedrive"].status == "failed" and "token revoked" in (results["Pipedrive"].message or "")
    assert describe_setup(results["Pipedrive"]).endswith(
        "(Pipedrive): Pipedrive refused the credentials: token revoked"
    )
    with store.open(pd_settings) as db:
        assert pronouns_property(db) is None


def test_an_email_edit_replaces_the_primary_address_and_keeps_the_others(pd_settings, pd_admin, pd_api):
    person = _load(pd_settings, pd_api)[0]
    primary = next(e for e in _person(pd_admin, person)["emails"] if e.get("primary"))
    second = {"value": "home@example.org", "primary": False, "label": "home"}
    pd_admin.patch_object("persons", int(person), {"emails": [primary, second]})
    queue_edits(pd_settings, "contacts", {person: {"email": "changed@example.org"}}, by="kim")

    assert push(pd_settings, by="kim", api=pd_api)["pushed"] == 1

    emails = {(e["value"], e["primary"]) for e in _person(pd_admin, person)["emails"]}
    assert emails == {("changed@example.org", True), ("home@example.org", False)}


class _NoteAnswerLost(PipedriveClient):
    """Pipedrive adds the note, then the connection drops before the answer arrives."""

    def add_note(self, body):
        super().add_note(body)
        raise Unreachable("the connection dropped before Pipedrive's answer arrived")


def test_a_note_and_a_task_logged_on_a_pipedrive_person_land_once_on_its_timeline(
    pd_settings, pd_admin, pd_api, monkeypatch
):
    """Pipedrive has no idempotency key: a note whose answer was lost is found among the
    newest notes by its text before anything is sent again."""
    monkeypatch.setattr(push_module, "SEARCH_SETTLE_S", 0.0)
    person = _load(pd_settings, pd_api)[0]
    queue_note(pd_settings, "contacts", person, "Called about the <renewal>", by="kim")
    due = dt.datetime(2027, 1, 5, 9, 30, tzinfo=dt.UTC)
    queue_task(
        pd_settings, "contacts", person, subject="Send the quote", due=due, notes="Two options", by="kim"
    )

    with _open(pd_settings, pd_admin, _NoteAnswerLost) as losing:
        first = {r["object_type"]: r["status"] for r in push(pd_settings, by="kim", api=losing)["results"]}
    assert first == {"notes": "retry", "tasks": "created"}
    (second,) = push(pd_settings, by="kim", api=pd_api)["results"]
    assert push(pd_settings, by="kim", api=pd_api)["results"] == []

    notes = [
        n for n in pd_admin.truth("notes") if n["person_id"] == int(person) and "renewal" in n["content"]
    ]
    tasks = [a for a in pd_admin.truth("activities") if a["subject"] == "Send the quote"]
    assert len(notes) == 1 and second["status"] == "created" and "earlier attempt" in second["message"]
    assert len(tasks) == 1 and (tasks[0]["type"], tasks[0]["due_date"], tasks[0]["due_time"]) == (
        "task", "2027-01-05", "09:30",
    )  # fmt: skip
    with store.open(pd_settings) as db:
        page = db.interactions.timeline("contacts", person)
    shown = {(r["object_type"], r["id"]): r for r in page.rows}
    assert not any(r["pending"] for r in page.rows)
    assert shown[("tasks", str(tasks[0]["id"]))]["subject"] == "Send the quote"
    assert shown[("notes", str(notes[0]["id"]))]["preview"] == "Called about the <renewal>"


class _TaskAnswerLost(PipedriveClient):
    """Pipedrive adds the task, then the connection drops before the answer arrives."""

    def add_activity(self, body):
        super().add_activity(body)
        raise Unreachable("the connection dropped before Pipedrive's answer arrived")


DUE = dt.datetime(2027, 1, 5, 9, 30, tzinfo=dt.UTC)


def _busy_note(state, n: int, person: int, at: int) -> Note:
    return Note(len(state.notes) + 1, f"Busy day #{n}", state.users[0].id, person, None, None, at, at)


def _busy_task(state, n: int, person: int, at: int) -> Activity:
    day, time_of_day = DUE.strftime("%Y-%m-%d"), DUE.strftime("%H:%M")
    return Activity(
        len(state.activities) + 1, f"Busy task #{n}", "task", state.users[0].id, False, day, time_of_day,
        person, None, None, "", at, at,
    )  # fmt: skip


@sqlite_only  # the push is the subject, not the store
@pytest.mark.parametrize("object_type", ["notes", "tasks"])
def test_a_retried_note_or_task_is_found_on_its_person_however_many_the_company_added_since(
    pd_server, pd_settings, pd_admin, pd_api, monkeypatch, object_type
):
    """A late retry in a busy company: more than 500 notes (tasks due at the same minute)
    added elsewhere after the lost attempt do not hide it, because it is looked for among
    its person's own."""
    monkeypatch.setattr(push_module, "SEARCH_SETTLE_S", 0.0)
    people = _load(pd_settings, pd_api)
    person, elsewhere = people[0], people[1]
    if object_type == "notes":
        queue_note(pd_settings, "contacts", person, "Agreed on the pilot", by="kim")
    else:
        queue_task(pd_settings, "contacts", person, subject="Agreed on the pilot", due=DUE, by="kim")
    losing_client = _NoteAnswerLost if object_type == "notes" else _TaskAnswerLost
    with _open(pd_settings, pd_admin, losing_client) as losing:
        assert [r["status"] for r in push(pd_settings, by="kim", api=losing)["results"]] == ["retry"]

    # Colleagues add 501 on someone else a minute later (put straight into the company:
    # 501 API calls would only slow the test down).
    later = int(dt.datetime.now(dt.UTC).timestamp()) + 60
    state = pd_server.state
    with state.lock:
        for n in range(501):
            if object_type == "notes":
                state.notes.append(_busy_note(state, n, int(elsewhere), later))
            else:
                state.activities.append(_busy_task(state, n, int(elsewhere), later))

    (second,) = push(pd_settings, by="kim", api=pd_api)["results"]

    truth = pd_admin.truth("notes" if object_type == "notes" else "activities")
    mine = [r for r in truth if "Agreed on the pilot" in (r.get("content") or r.get("subject") or "")]
    assert len(mine) == 1
    assert second["status"] == "created" and "earlier attempt" in second["message"]
    with store.open(pd_settings) as db:
        page = db.interactions.timeline("contacts", person)
    assert [(r["object_type"], r["id"], r["pending"]) for r in page.rows] == [
        (object_type, str(mine[0]["id"]), False)
    ]
