"""Deals (figures, pipeline chart, edits), Companies (counts) and the record detail page."""

from __future__ import annotations

import json

import pandas as pd
from uikit import Portal, plain

from crm import store


def _db(portal: Portal):
    return store.open(portal.settings)


def test_deals_page_shows_figures_and_the_pipeline_chart_in_stage_order(synced: Portal) -> None:
    at = synced.page("deals")
    at.run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert labels == ["Open pipeline value", "Won this quarter", "Weighted forecast"]
    # The sandbox's deals name no currency: they are in the portal's (its account info: USD).
    assert all(m.value.endswith(" USD") for m in at.metric)
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    db = _db(synced)
    try:
        default = db.queries.pipelines()[0]
        expected_order = list(db.queries.deal_stage_summary(default["id"])["stage"])
    finally:
        db.close()
    sort_orders = [layer["encoding"]["y"]["sort"] for layer in spec["layer"]]
    assert sort_orders == [expected_order, expected_order]
    # Every stage gets a band tall enough for its name, however many stages the pipeline has
    # (a fixed height shared with the axes squeezed five stages until every other name was dropped).
    assert spec["height"] == {"step": 34}
    assert len(at.data_editor[0].value) == 15


def test_deals_side_by_side_draws_every_pipeline(synced: Portal) -> None:
    at = synced.page("deals")
    at.run()
    at.get("button_group")[0].set_value("__all__").run()
    assert not at.exception
    chart = next(el for el in at.get("vega_lite_chart"))
    spec = json.loads(chart.proto.spec)
    db = _db(synced)
    try:
        assert len(spec["hconcat"]) == len(db.queries.pipelines())
    finally:
        db.close()


def test_deal_stage_edit_is_queued_and_a_bad_amount_is_refused(synced: Portal) -> None:
    at = synced.page("deals")
    at.run()
    frame = at.data_editor[0].value
    rid = str(frame.index[0])
    stages = json.loads(at.data_editor[0].proto.columns)["dealstage"]["type_config"]["options"]
    db = _db(synced)
    try:
        pipeline = next(p for p in db.queries.pipelines() if p["id"] == frame.iloc[0]["pipeline"])
    finally:
        db.close()
    target = next(s["id"] for s in pipeline["stages"] if s["id"] != frame.iloc[0]["dealstage"])
    assert target in [o["value"] for o in stages]
    key = at.data_editor[0].key
    at.session_state[key] = {
        "edited_rows": {0: {"dealstage": target, "closedate": "2027-03-04"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception
    db = _db(synced)
    try:
        queued = db.outbox.edits_frame(statuses=("pending",))
    finally:
        db.close()
    assert sorted(zip(queued["record_id"], queued["property"], strict=True)) == [
        (rid, "closedate"),
        (rid, "dealstage"),
    ]

    key = at.data_editor[0].key
    at.session_state[key] = {"edited_rows": {1: {"amount": "lots"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert "Amount: must be a number" in plain(at.error[0].value)


def test_companies_show_counts_of_associated_contacts_and_deals(synced: Portal) -> None:
    at = synced.page("companies")
    at.run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert len(frame) == 10
    db = _db(synced)
    try:
        expected = db.queries.company_counts(list(frame.index.astype(str)))
    finally:
        db.close()
    shown = frame[["contacts", "deals"]].astype(int)
    shown.index = shown.index.astype(str)
    pd.testing.assert_frame_equal(shown, expected.loc[shown.index], check_names=False)
    assert frame["contacts"].sum() > 0


def test_companies_search_narrows_the_list(synced: Portal) -> None:
    at = synced.page("companies")
    at.run()
    name = str(at.dataframe[0].value["name"].iloc[-1])
    at.text_input(key="companies_search").input(name).run()
    assert name in set(at.dataframe[0].value["name"])
    assert len(at.dataframe[0].value) < 10


def test_record_page_shows_a_contact_with_its_company_deals_and_link(synced: Portal) -> None:
    truth = [r for r in synced.sandbox.truth("contacts") if r.get("associations", {}).get("companies")]
    contact = truth[0]
    at = synced.page("record")
    at.query_params.update({"type": "contacts", "id": str(contact["id"])})
    at.run()
    assert not at.exception
    props = at.dataframe[0].value
    assert contact["properties"]["email"] in set(props["Value"])
    assert [s.value for s in at.subheader] == ["Properties", "Companies", "Deals", "Tickets", "Activity"]
    companies = at.dataframe[1].value
    assert {str(i) for i in companies.index} == {
        str(c["id"]) if isinstance(c, dict) else str(c) for c in contact["associations"]["companies"]
    }
    assert [b.url for b in at.get("link_button")] == [
        f"https://app.hubspot.com/contacts/62515/record/0-1/{contact['id']}"
    ]


def test_record_page_of_a_hostile_contact_escapes_the_title(synced: Portal) -> None:
    hostile = next(
        r
        for r in synced.sandbox.truth("contacts")
        if r["properties"].get("firstname") == "<script>alert(1)</script>"
    )
    at = synced.page("record")
    at.query_params.update({"type": "contacts", "id": str(hostile["id"])})
    at.run()
    assert not at.exception
    title = at.title[0].value
    assert "<script>" not in title and "\\<script\\>" in title
    assert plain(title).startswith("<script>alert(1)</script>")
    assert [m.value for m in at.markdown if m.allow_html] == []


def test_record_page_for_an_unknown_record_says_so(synced: Portal) -> None:
    at = synced.page("record")
    at.query_params.update({"type": "deals", "id": "999999"})
    at.run()
    assert not at.exception
    assert "not in the cache" in plain(at.warning[0].value)
    at.query_params.update({"type": "nonsense", "id": "<b>"})
    at.run()
    assert "No record chosen" in plain(at.warning[0].value)


def test_selecting_a_company_opens_its_record(synced: Portal) -> None:
    at = synced.page("companies")
    at.run()
    frame = at.dataframe[0].value
    key = at.dataframe[0].key
    at.session_state[key] = {"selection": {"rows": [2], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.query_params == {"type": "companies", "id": str(frame.index[2]), "connection": "hubspot-62515"}
    assert [s.value for s in at.subheader] == ["Properties", "Contacts", "Deals", "Tickets", "Activity"]
