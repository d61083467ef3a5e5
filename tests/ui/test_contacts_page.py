"""The Contacts page: empty states, search and paging in SQL, inline edits, new contacts, push."""

from __future__ import annotations

import json

import pytest
from uikit import Portal, plain, rename_the_chosen_record, texts, wait_until

from crm import store, sync
from crm.hubspot import HubSpotClient, StaticToken


def _outbox(portal: Portal, statuses=("pending",)):
    db = store.open(portal.settings)
    try:
        return db.outbox.edits_frame(statuses=statuses)
    finally:
        db.close()


def _truth(portal: Portal, record_id: str) -> dict:
    return next(r for r in portal.sandbox.truth("contacts") if str(r["id"]) == str(record_id))


def _seed_edit(at, rows: dict) -> str:
    key = at.data_editor[0].key
    at.session_state[key] = {"edited_rows": rows, "added_rows": [], "deleted_rows": []}
    return key


def test_not_connected_leads_to_the_connect_page(portal: Portal) -> None:
    at = portal.page("contacts")
    at.run()
    assert not at.exception
    assert "Connect a HubSpot portal" in texts(at)
    assert [link.label for link in at.get("page_link")] == ["Connect HubSpot"]
    assert len(at.data_editor) == 0


def test_connected_but_never_synced_offers_sync_now(connected: Portal) -> None:
    at = connected.page("contacts")
    at.run()
    assert "nothing has been synced yet" in texts(at)
    at.button(key="contacts_sync_now").click().run()
    assert not at.exception
    target = connected.settings

    def finished() -> bool:
        db = store.open(target)
        try:
            run = db.syncstate.latest_run()
            return run is not None and run["state"] != "running"
        finally:
            db.close()

    wait_until(finished, what="the sync started from the Contacts page")
    at.switch_page("pages/contacts.py").run()
    assert len(at.data_editor[0].value) == 40


def test_synced_contacts_are_listed_with_https_links_to_hubspot(synced: Portal) -> None:
    at = synced.page("contacts")
    at.run()
    assert not at.exception
    frame = at.data_editor[0].value
    assert len(frame) == 40
    assert "40 contacts · page 1 of 1" in texts(at)
    assert all(
        link == f"https://app.hubspot.com/contacts/62515/record/0-1/{rid}"
        for rid, link in frame["hubspot"].items()
    )
    # Owner and stage are picked from labels; the grid stores HubSpot's values.
    columns = json.loads(at.data_editor[0].proto.columns)
    owner_options = columns["hubspot_owner_id"]["type_config"]["options"]
    assert all(o["value"].isdigit() and "@" in o["label"] for o in owner_options)
    assert {"value": "lead", "label": "Lead"} in columns["lifecyclestage"]["type_config"]["options"]


def test_search_and_filters_page_in_sql(synced: Portal) -> None:
    target = synced.sandbox.truth("contacts")[20]["properties"]
    at = synced.page("contacts")
    at.run()
    at.text_input(key="contacts_search").input(target["email"]).run()
    frame = at.data_editor[0].value
    assert list(frame["email"]) == [target["email"]]

    at.text_input(key="contacts_search").input("").run()
    at.selectbox(key="contacts_size").select(25).run()
    assert len(at.data_editor[0].value) == 25
    pagination = at.get("pagination")[0]
    assert pagination.num_pages == 2
    pagination.select(2).run()
    assert len(at.data_editor[0].value) == 15
    assert "page 2 of 2" in texts(at)

    owner = target["hubspot_owner_id"]
    at.selectbox(key="contacts_owner").set_value(owner).run()
    assert set(at.data_editor[0].value["hubspot_owner_id"]) == {owner}


def test_a_valid_edit_is_queued_at_once_and_push_sends_it_to_hubspot(synced: Portal) -> None:
    at = synced.page("contacts")
    at.run()
    rid = str(at.data_editor[0].value.index[0])
    _seed_edit(at, {0: {"jobtitle": "Head of Testing"}})
    at.run()
    assert not at.exception
    queued = _outbox(synced)
    assert list(zip(queued["record_id"], queued["property"], queued["new_value"], strict=True)) == [
        (rid, "jobtitle", "Head of Testing")
    ]
    assert "1 change waiting to be pushed" in texts(at)
    frame = at.data_editor[0].value
    assert frame.loc[rid, "jobtitle"] == "Head of Testing"
    assert frame.loc[rid, "status"] == "✎ pending push"

    at.button(key="contacts_push").click().run()
    assert not at.exception
    assert "Pushed 1 change to HubSpot" in plain(at.success[0].value)
    assert _truth(synced, rid)["properties"]["jobtitle"] == "Head of Testing"
    assert _outbox(synced).empty


def test_an_invalid_edit_is_refused_per_cell_and_the_input_is_kept(synced: Portal) -> None:
    at = synced.page("contacts")
    at.run()
    rid = str(at.data_editor[0].value.index[1])
    key = _seed_edit(at, {1: {"email": "not an email", "jobtitle": "Fine Title"}})
    at.run()
    assert not at.exception
    error = plain(at.error[0].value)
    assert "Row 2" in error and "Email:" in error and "not a valid email address" in error
    assert _outbox(synced).empty
    # The input stays in the grid, the row says what is wrong, and the row set is locked.
    assert at.session_state[key]["edited_rows"] == {1: {"email": "not an email", "jobtitle": "Fine Title"}}
    assert at.data_editor[0].value.loc[rid, "status"].startswith("⚠ Email:")
    assert at.text_input(key="contacts_search").disabled
    assert at.get("pagination")[0].disabled

    # Fixing the value queues both changes; the grid is fresh again.
    at.session_state[key] = {
        "edited_rows": {1: {"email": "fixed@example.com", "jobtitle": "Fine Title"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert sorted(_outbox(synced)["new_value"]) == ["Fine Title", "fixed@example.com"]
    assert not at.text_input(key="contacts_search").disabled


def test_discarding_an_invalid_edit_unlocks_the_table(synced: Portal) -> None:
    at = synced.page("contacts")
    at.run()
    _seed_edit(at, {0: {"email": "bad@"}})
    at.run()
    at.button(key="contacts_discard").click().run()
    assert not at.exception
    assert len(at.error) == 0
    assert not at.text_input(key="contacts_search").disabled
    assert _outbox(synced).empty


def test_owner_edit_takes_an_owner_id_and_an_unknown_one_is_refused(synced: Portal) -> None:
    at = synced.page("contacts")
    at.run()
    frame = at.data_editor[0].value
    options = json.loads(at.data_editor[0].proto.columns)["hubspot_owner_id"]["type_config"]["options"]
    other = next(o["value"] for o in options if o["value"] != frame.iloc[0]["hubspot_owner_id"])
    _seed_edit(at, {0: {"hubspot_owner_id": other}})
    at.run()
    assert list(_outbox(synced)["new_value"]) == [other]

    _seed_edit(at, {1: {"hubspot_owner_id": "999"}})
    at.run()
    assert "not an active HubSpot owner" in plain(at.error[0].value)


def test_new_contact_form_validates_then_queues(synced: Portal) -> None:
    at = synced.page("contacts")
    at.run()
    at.text_input(key="contacts_new_email").input("nobody-at-example")
    at.text_input(key="contacts_new_firstname").input("Nora")
    at.button(key="contacts_new_submit").click().run()
    assert not at.exception
    assert "Email: " in plain(at.error[0].value)
    assert at.text_input(key="contacts_new_firstname").value == "Nora"
    assert _outbox(synced).empty

    at.text_input(key="contacts_new_email").input("nora@example.com")
    at.button(key="contacts_new_submit").click().run()
    assert not at.exception
    queued = _outbox(synced)
    assert list(queued["op"]) == ["create"]
    assert at.text_input(key="contacts_new_email").value == ""
    assert any("nora@example.com" in plain(t.value) for t in at.toast)


def test_hostile_names_stay_plain_text(synced: Portal) -> None:
    at = synced.page("contacts")
    at.run()
    frame = at.data_editor[0].value
    assert "<script>alert(1)</script>" in set(frame["firstname"])
    # Only our own connect link may carry HTML; no page text renders CRM markup.
    assert [m.value for m in at.markdown if m.allow_html] == []
    raw = texts(at, raw=True)
    assert "<script>" not in raw and "<img" not in raw
    chooser = at.selectbox(key=next(k for k in at.session_state if str(k).startswith("contacts_open_")))
    assert "<script>alert(1)</script>" in " ".join(chooser.options)


@pytest.mark.parametrize("row", [0, 5])
def test_opening_a_contact_goes_to_its_record_page(synced: Portal, row: int) -> None:
    at = synced.page("contacts")
    at.run()
    rid = str(at.data_editor[0].value.index[row])
    chooser_key = next(k for k in at.session_state if str(k).startswith("contacts_open_"))
    at.selectbox(key=chooser_key).set_value(rid)
    at.button(key="contacts_open").click().run()
    assert not at.exception
    assert at.query_params == {"type": "contacts", "id": rid, "connection": "hubspot-62515"}
    assert any(s.value == "Companies" for s in at.subheader)


def test_the_open_a_contact_picker_follows_a_live_rename_of_the_chosen_contact(synced: Portal) -> None:
    at = synced.page("contacts")
    at.run()
    renamed = {"firstname": "Renamed", "lastname": "Contact"}
    picker, rid = rename_the_chosen_record(at, synced.settings, "contacts", 2, renamed)
    assert (picker.value, picker.proto.raw_value) == (rid, f"Renamed Contact · #{rid}")


def test_pronouns_become_an_editable_column_once_the_property_exists(synced: Portal) -> None:
    at = synced.page("contacts")
    at.run()
    assert "pronouns" not in json.loads(at.data_editor[0].proto.columns)
    at.switch_page("pages/connect.py").run()
    at.button(key="connect_pronouns").click().run()
    at.switch_page("pages/contacts.py").run()
    column = json.loads(at.data_editor[0].proto.columns)["pronouns"]
    options = [o["value"] for o in column["type_config"]["options"]]
    assert options, column
    _seed_edit(at, {0: {"pronouns": options[0]}})
    at.run()
    assert not at.exception
    queued = _outbox(synced)
    assert list(zip(queued["property"], queued["new_value"], strict=True)) == [("pronouns", options[0])]


def test_a_new_contact_held_because_hubspot_has_its_email_shows_as_waiting_for_a_decision(
    synced: Portal,
) -> None:
    with HubSpotClient(synced.settings, StaticToken(synced.sandbox.private_app_token())) as client:
        client.batch_create(
            "contacts", [{"properties": {"email": "grace@existing.example", "lastname": "Hopper"}}]
        )
    local = sync.queue_new_contact(
        synced.settings, {"email": "grace@existing.example", "lastname": "Murray"}, by="t"
    )
    at = synced.page("contacts")
    at.run()
    at.text_input(key="contacts_search").input("grace@existing.example").run()
    assert at.data_editor[0].value.loc[local, "status"] == "✎ pending push"

    assert sync.push(synced.settings, by="t")["conflicts"] == 1
    at.run()
    assert not at.exception
    frame = at.data_editor[0].value
    assert list(frame.index) == [local]
    assert frame.loc[local, "status"] == "⚠ waiting for a decision (Sync page)"
    assert frame.loc[local, "lastname"] == "Murray"
