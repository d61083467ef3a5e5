"""A Pipedrive connection's Contacts, Companies, Deals and record pages: the same pages,
under Pipedrive's own labels, with its users as owners and its pipelines and stages.

The connection's partition is filled from the Pipedrive sandbox through the CRM interface
(``pipedrive_seed``); the pages then run as a person would see them (AppTest).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pipedrive_seed import seed_pipedrive
from streamlit.testing.v1 import AppTest
from uikit import Portal, plain, rename_the_chosen_record, texts

from crm import store
from crm.crms import provider_for
from crm.export import export_records
from crm.interface import Pipeline, Record
from crm.pipedrive.client import ApiToken
from crm.sandbox.pipedrive import PipedriveServer
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from tests.pipedrive_fixtures import reset_company, serve_company

COMPANY = {"seed": 11, "persons": 30, "organizations": 8, "deals": 24, "users": 3}


@pytest.fixture(scope="module")
def pipedrive_server() -> Iterator[PipedriveServer]:
    yield from serve_company(COMPANY)


@pytest.fixture
def pipedrive(pipedrive_server: PipedriveServer) -> Iterator[PipedriveAdmin]:
    yield from reset_company(pipedrive_server, COMPANY)


@pytest.fixture
def company(portal: Portal, pipedrive: PipedriveAdmin) -> Portal:
    """The app with one connection: the Pipedrive sandbox company, its partition filled
    (``settings`` are the connection's)."""
    return dataclasses.replace(portal, settings=seed_pipedrive(portal.settings, pipedrive))


def _api(admin: PipedriveAdmin, portal: Portal) -> Any:
    return provider_for("pipedrive").open(portal.settings, ApiToken(admin.api_token()), base_url=admin.url)


def _users(admin: PipedriveAdmin, portal: Portal) -> dict[str, str]:
    """The company's users as the pages name them: id -> "name (email)"."""
    with _api(admin, portal) as api:
        return {o.id: f"{o.name} ({o.email})" for o in api.owners()}


def _pipelines(admin: PipedriveAdmin, portal: Portal) -> list[Pipeline]:
    with _api(admin, portal) as api:
        return list(api.pipelines("deals"))


def _options(at: Any, column: str) -> dict[str, str]:
    config = json.loads(at.data_editor[0].proto.columns)[column]["type_config"]["options"]
    return {o["value"]: o["label"] for o in config}


def test_a_pipedrive_connections_people_page_shows_people_with_user_names_and_organizations(
    company: Portal, pipedrive: PipedriveAdmin
) -> None:
    at = company.page("contacts")
    at.run()

    assert not at.exception
    assert [t.value for t in at.title] == ["People"]
    frame = at.data_editor[0].value
    assert {"name", "email", "phone", "org_id", "owner_id"} <= set(frame.columns)
    assert "firstname" not in json.loads(at.data_editor[0].proto.columns)
    people = {str(p["id"]): p for p in pipedrive.truth("persons") if not p.get("is_deleted")}
    assert set(frame.index) <= set(people) and len(frame) == min(50, len(people))
    for rid, row in frame.iterrows():
        assert row["name"] == people[rid]["name"]
        assert row["owner_id"] == str(people[rid]["owner_id"])
    # Owners are Pipedrive's users by name; organizations by their names, not ids.
    assert _options(at, "owner_id") == _users(pipedrive, company)
    orgs = {str(o["id"]): o["name"] for o in pipedrive.truth("organizations") if not o.get("is_deleted")}
    assert _options(at, "org_id") == orgs
    labels = [s.label for s in at.selectbox]
    assert "Organization" in labels and "Owner" in labels
    assert "Lifecycle stage" not in labels
    assert "chosen from Pipedrive's lists" in texts(at)


def test_the_people_search_and_owner_filter_work_on_pipedrives_fields(
    company: Portal, pipedrive: PipedriveAdmin
) -> None:
    people = [p for p in pipedrive.truth("persons") if not p.get("is_deleted")]
    # A plain two-word name (the sandbox also holds hostile ones).
    target = next(p for p in people if p["name"] and all(w.isalpha() for w in p["name"].split()))
    at = company.page("contacts")
    at.run()
    at.text_input(key="contacts_search").input(target["name"]).run()
    assert not at.exception
    assert target["name"] in set(at.data_editor[0].value["name"])
    assert all(target["name"].lower() in n.lower() for n in at.data_editor[0].value["name"])

    at.text_input(key="contacts_search").input("").run()
    owner = str(target["owner_id"])
    at.selectbox(key="contacts_owner").set_value(owner).run()
    assert not at.exception
    shown = at.data_editor[0].value
    assert set(shown["owner_id"]) == {owner}
    assert len(shown) == min(50, sum(1 for p in people if str(p["owner_id"]) == owner))


def test_a_pipedrive_connections_deals_page_shows_its_pipelines_stages_values_and_users(
    company: Portal, pipedrive: PipedriveAdmin
) -> None:
    at = company.page("deals")
    at.run()

    assert not at.exception
    assert [t.value for t in at.title] == ["Deals"]
    frame = at.data_editor[0].value
    deals = {str(d["id"]): d for d in pipedrive.truth("deals") if not d.get("is_deleted")}
    assert set(frame.index) <= set(deals) and len(frame) == min(50, len(deals))
    for rid, row in frame.iterrows():
        assert row["title"] == deals[rid]["title"]
        assert row["stage_id"] == str(deals[rid]["stage_id"])
        assert float(row["value"]) == float(deals[rid]["value"])
    pipelines = _pipelines(pipedrive, company)
    # Several pipelines: a stage is named with its pipeline, as for HubSpot.
    stages = {s.id: f"{s.label} ({p.label})" for p in pipelines for s in p.stages}
    assert len(pipelines) > 1 and _options(at, "stage_id") == stages
    assert _options(at, "pipeline_id") == {p.id: p.label for p in pipelines}
    assert _options(at, "owner_id") == _users(pipedrive, company)
    # The figures go by each deal's status (Pipedrive's won and lost deals keep their stage),
    # one row of them per currency, most deals first, never a sum across currencies.
    assert {d["status"] for d in deals.values()} == {"open", "won", "lost"}
    probability = {s.id: s.probability or 0 for p in pipelines for s in p.stages}
    today = dt.date.today()
    quarter = (today.year, (today.month - 1) // 3)

    def won_now(d: dict[str, Any]) -> bool:
        close = d["expected_close_date"]
        return (
            d["status"] == "won" and bool(close) and (int(close[:4]), (int(close[5:7]) - 1) // 3) == quarter
        )

    by_currency: dict[str, list[dict[str, Any]]] = {}
    for d in deals.values():
        by_currency.setdefault(d["currency"], []).append(d)
    assert len(by_currency) > 1
    order = sorted(by_currency, key=lambda code: (-len(by_currency[code]), code))
    expected = []
    for code in order:
        open_deals = [d for d in by_currency[code] if d["status"] == "open"]
        weighted = sum(float(d["value"] or 0) * probability[str(d["stage_id"])] for d in open_deals)
        expected += [
            ("Open pipeline value", f"{sum(float(d['value'] or 0) for d in open_deals):,.0f} {code}"),
            (
                "Won this quarter",
                f"{sum(float(d['value'] or 0) for d in by_currency[code] if won_now(d)):,.0f} {code}",
            ),
            ("Weighted forecast", f"{weighted:,.0f} {code}"),
        ]
    assert [(m.label, m.value) for m in at.metric] == expected
    every_open = sum(float(d["value"] or 0) for d in deals.values() if d["status"] == "open")
    assert not any(m.value.startswith(f"{every_open:,.0f}") for m in at.metric)
    # The chart shows one currency at a time, the most common first; another can be picked.
    assert at.session_state["deals_chart_currency"] == order[0]
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["layer"][0]["encoding"]["x"]["title"] == f"Amount ({order[0]})"
    at.session_state["deals_chart_currency"] = order[1]
    at.run()
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert not at.exception and spec["layer"][0]["encoding"]["x"]["title"] == f"Amount ({order[1]})"

    # One pipeline: only its deals, and only its stages to choose from.
    renewals = next(p for p in pipelines if p.label == "Renewals")
    at.selectbox(key="deals_pipeline").set_value(renewals.id).run()
    assert not at.exception
    shown = at.data_editor[0].value
    assert set(shown["pipeline_id"]) == {renewals.id}
    assert len(shown) == sum(1 for d in deals.values() if str(d["pipeline_id"]) == renewals.id)
    assert at.selectbox(key=f"deals_stage_{renewals.id}").options == [
        "Any stage",
        *(s.label for s in renewals.stages),
    ]


def test_a_deal_naming_no_currency_counts_in_the_companys_default_currency_only(
    company: Portal, pipedrive: PipedriveAdmin
) -> None:
    deals = [d for d in pipedrive.truth("deals") if not d.get("is_deleted") and d["status"] == "open"]
    moved = next(d for d in deals if d["currency"] != "USD" and float(d["value"] or 0) > 0)
    with store.open(company.settings) as db:  # as a CRM that lets a deal name no currency would store it
        db.records.upsert_records(
            "deals", [Record(str(moved["id"]), "deals", {"currency": None}, None, moved["update_time"])]
        )
    at = company.page("deals")
    at.run()

    assert not at.exception
    # The sandbox's user default currency is USD: the deal joins the dollars, and leaves its own.
    opened = {m.value.rsplit(" ", 1)[1]: m.value for m in at.metric if m.label == "Open pipeline value"}
    for code in opened:
        total = sum(
            float(d["value"] or 0) for d in deals if (d["currency"] if d is not moved else "USD") == code
        )
        assert opened[code] == f"{total:,.0f} {code}"
    assert "no currency" not in " ".join(m.value for m in at.metric)


def test_a_pipedrive_connections_organizations_and_deal_record_pages_use_its_words(
    company: Portal, pipedrive: PipedriveAdmin
) -> None:
    at = company.page("companies")
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Organizations"]
    orgs = {str(o["id"]): o for o in pipedrive.truth("organizations") if not o.get("is_deleted")}
    table = at.dataframe[0].value
    assert set(table.index) == set(orgs)
    assert {"name", "contacts", "deals"} <= set(table.columns)

    deal = next(d for d in pipedrive.truth("deals") if not d.get("is_deleted") and d["org_id"])
    at = company.page("record")
    at.query_params.update({"type": "deals", "id": str(deal["id"])})
    at.run()
    assert not at.exception
    assert plain_title(at) == deal["title"]
    values = dict(zip(at.dataframe[0].value["Name"], at.dataframe[0].value["Value"], strict=True))
    stages = {s.id: f"{s.label} ({p.label})" for p in _pipelines(pipedrive, company) for s in p.stages}
    assert values["stage_id"] == stages[str(deal["stage_id"])]
    assert values["owner_id"] == _users(pipedrive, company)[str(deal["owner_id"])]
    assert values["org_id"] == orgs[str(deal["org_id"])]["name"]
    assert [s.value for s in at.subheader][:3] == ["Properties", "People", "Organizations"]
    (button,) = at.get("link_button")
    assert button.proto.label == "Open in Pipedrive"
    assert button.url == f"https://sandbox-company.pipedrive.com/deal/{deal['id']}"


def plain_title(at: Any) -> str:
    return plain(at.title[0].value)


def test_the_export_of_a_pipedrive_connections_deals_has_its_columns_and_labels(
    portal: Portal, pipedrive: PipedriveAdmin
) -> None:
    part = seed_pipedrive(portal.settings, pipedrive)
    out = io.StringIO()
    count = export_records(part, "deals", out, fmt="json")

    rows = {row["id"]: row for row in json.loads(out.getvalue())}
    deals = {str(d["id"]): d for d in pipedrive.truth("deals") if not d.get("is_deleted")}
    assert count == len(deals) and set(rows) == set(deals)
    pipelines = _pipelines(pipedrive, portal)
    stages = {s.id: f"{s.label} ({p.label})" for p in pipelines for s in p.stages}
    users = _users(pipedrive, portal)
    for rid, row in rows.items():
        assert list(row)[:4] == ["id", "title", "pipeline_id", "stage_id"]
        assert row["stage_id"] == stages[str(deals[rid]["stage_id"])]
        assert row["owner_id"] == users[str(deals[rid]["owner_id"])]
        assert row["title"] == deals[rid]["title"]


def test_search_everything_finds_pipedrive_people_and_deals_by_their_names(
    company: Portal, pipedrive: PipedriveAdmin
) -> None:
    person = next(
        p
        for p in pipedrive.truth("persons")
        if not p.get("is_deleted") and p["name"] and all(w.isalpha() for w in p["name"].split())
    )
    at = company.page("search")
    at.run()
    at.text_input(key="search_text").input(person["name"]).run()

    assert not at.exception
    assert "People (" in " ".join(s.value for s in at.subheader)
    links = [link for link in at.get("page_link") if link.proto.query_string]
    assert any(f"id={person['id']}" in link.proto.query_string and link.proto.label for link in links)
    assert person["name"] in [plain(link.proto.label) for link in links]
    assert "Tickets" not in " ".join(s.value for s in at.subheader)


def test_a_stage_and_value_edited_in_the_pipedrive_deals_grid_are_queued_under_pipedrives_names(
    company: Portal, pipedrive: PipedriveAdmin
) -> None:
    at = company.page("deals")
    at.run()
    frame = at.data_editor[0].value
    rid = str(frame.index[0])
    pipeline = next(p for p in _pipelines(pipedrive, company) if p.id == frame.iloc[0]["pipeline_id"])
    target = next(s.id for s in pipeline.stages if s.id != frame.iloc[0]["stage_id"])
    key = at.data_editor[0].key
    at.session_state[key] = {
        "edited_rows": {0: {"stage_id": target, "value": 4321}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()

    assert not at.exception
    with store.open(company.settings) as db:
        queued = db.outbox.edits_frame(statuses=("pending",))
    assert sorted(zip(queued["record_id"], queued["property"], queued["new_value"], strict=True)) == [
        (rid, "stage_id", target),
        (rid, "value", "4321"),
    ]


def _nav_titles_script() -> None:
    import streamlit as st

    from ui.runtime import nav_titles

    st.json(nav_titles())


def test_the_sidebar_names_a_pipedrive_connections_pages_in_its_words_and_has_no_tickets(
    company: Portal,
) -> None:
    at = AppTest.from_function(_nav_titles_script, default_timeout=60)
    at.secrets.update(company.secrets)
    at.run()

    assert not at.exception
    assert at.json[0].value == json.dumps(
        {"contacts": "People", "companies": "Organizations", "deals": "Deals"}
    )


def test_a_pipedrive_connections_sync_page_says_when_deleted_people_notes_and_activities_were_last_looked_for(
    company: Portal,
) -> None:
    at = company.page("sync")
    at.run()

    assert not at.exception
    captions = [plain(c.value) for c in at.caption]
    for what in ("people", "notes", "activities"):
        assert any(
            c.startswith(f"Deleted {what} last looked for ") and "by a full pull" in c for c in captions
        )
    assert any(c.startswith("Deleted deals: Pipedrive lists them; last asked ") for c in captions)


def test_the_open_a_person_picker_follows_a_live_rename_and_keeps_the_choice(company: Portal) -> None:
    at = company.page("contacts")
    at.run()
    # The browser was shown the old name as the choice: it must be sent the new one.
    picker, rid = rename_the_chosen_record(at, company.settings, "contacts", 3, {"name": "Renamed Person"})
    assert (picker.value, picker.proto.raw_value) == (rid, f"Renamed Person · #{rid}")
    assert f"Renamed Person · #{rid}" in picker.options


def test_a_pipedrive_persons_timeline_shows_its_notes_and_activities_newest_first_as_plain_text(
    company: Portal, pipedrive: PipedriveAdmin
) -> None:
    """Notes are HTML at Pipedrive: the timeline shows their words, never their markup."""
    person = 4  # the seed logs a note and an activity on every third person
    note = next(n for n in pipedrive.truth("notes") if n["person_id"] == person)
    activity = next(a for a in pipedrive.truth("activities") if a["person_id"] == person)
    users = {k: v.split(" (")[0] for k, v in _users(pipedrive, company).items()}
    at = company.page("record")
    at.query_params.update({"type": "contacts", "id": str(person)})
    at.run()

    assert not at.exception
    lines = [plain(e.label) for e in at.expander if not plain(e.label).startswith("Changes waiting")]
    # The activity is due a week after the note was added: it comes first, under its kind.
    kind = {"call": "Call", "meeting": "Meeting", "lunch": "Meeting", "email": "Email"}.get(
        activity["type"], "Task"
    )
    assert len(lines) == 2 and lines[0].startswith(f"{kind} · "), lines
    assert activity["subject"] in lines[0] and users[str(activity["owner_id"])] in lines[0]
    assert lines[1].startswith("Note") and f"Call notes #{person}: follow up next week." in lines[1]
    assert users[str(note["user_id"])] in lines[1]
    assert "<" not in "".join(lines) and "<b>" not in texts(at)
    assert f"{activity['type']} · " in texts(at) and f"due {activity['due_date']} 10:00" in texts(at)
