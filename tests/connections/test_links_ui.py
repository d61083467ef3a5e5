"""The links on the pages (``ui.links``): the create-everywhere form and the per-record badges,
against both sandboxes over loopback, on each backend (``cache_target``)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from crm import connections, oauth
from crm.config import Settings
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync.links import create_contact_everywhere
from tests.connections.conftest import run_cli
from ui.links import link_badges


def _for(settings: Settings, name: str) -> Settings:
    return connections.settings_for(settings, connections.resolve(settings, name))


def test_badges_say_synced_partial_with_the_crms_reason_or_nothing_for_unlinked_records(
    connected: Settings, sandbox: SandboxAdmin
) -> None:
    ada = create_contact_everywhere(connected, {"email": "ada@badges.example", "first_name": "Ada"})
    oauth.disconnect(_for(connected, "Pipedrive"))
    grace = create_contact_everywhere(connected, {"email": "grace@badges.example", "first_name": "Grace"})
    hubspot_ids = {
        p.email: dict((n, link.record_id) for n, link in p.links)["HubSpot"]
        for p in (ada.status, grace.status)
    }
    unlinked = next(
        str(r["id"]) for r in sandbox.truth("contacts") if str(r["id"]) not in hubspot_ids.values()
    )

    badges = link_badges(_for(connected, "HubSpot"), [hubspot_ids["ada@badges.example"], unlinked,
                                                 hubspot_ids["grace@badges.example"]])  # fmt: skip

    assert ada.status.text == "synced"
    assert list(badges.index) == [
        hubspot_ids["ada@badges.example"],
        unlinked,
        hubspot_ids["grace@badges.example"],
    ]
    assert badges[unlinked] == ""
    assert badges[hubspot_ids["grace@badges.example"]].startswith(
        "partial: Pipedrive: Pipedrive is not connected"
    )
    assert "<" not in badges[hubspot_ids["grace@badges.example"]]


def _form_page(settings) -> None:  # type: ignore[no-untyped-def]  (run as a script: no imports above)
    from ui.links import new_contact_form

    new_contact_form(settings, by="kim@example.com")


def test_the_form_creates_the_contact_in_every_crm_and_says_so(
    connected: Settings, sandbox: SandboxAdmin, pipedrive: PipedriveAdmin
) -> None:
    at = AppTest.from_function(_form_page, kwargs={"settings": connected}, default_timeout=60).run()
    assert at.multiselect(key="links_new_connections").value == [
        c.id for c in connections.list_connections(connected)
    ]
    at.text_input(key="links_new_email").input("lin@form.example")
    at.text_input(key="links_new_first_name").input("Lin")
    at.text_input(key="links_new_last_name").input("Form")
    at.button(key="links_new_submit").click().run()

    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.success[0].value.startswith("synced")
    assert any(r["properties"].get("email") == "lin@form.example" for r in sandbox.truth("contacts"))
    assert any(p["name"] == "Lin Form" for p in pipedrive.truth("persons"))


def test_the_contacts_page_offers_the_form_and_shows_which_crms_each_contact_is_in(
    connected: Settings, sandbox: SandboxAdmin, pipedrive: PipedriveAdmin
) -> None:
    ada = create_contact_everywhere(connected, {"email": "ada@page.example", "first_name": "Ada"})
    hubspot_id = dict((n, link.record_id) for n, link in ada.status.links)["HubSpot"]
    at = AppTest.from_file(str(Path(__file__).parents[2] / "app.py"), default_timeout=60)
    at.secrets["CRM_SANDBOX_URL"] = sandbox.url
    at.run()

    assert not at.exception
    assert "New contact in several CRMs" in [e.label for e in at.expander]
    frame = at.data_editor[0].value
    assert frame.loc[hubspot_id, "in_crms"] == "synced"
    assert set(frame["in_crms"]) == {"synced", ""}


def _push_panel_page(settings) -> None:  # type: ignore[no-untyped-def]  (run as a script: no imports above)
    from ui.access import Staff
    from ui.editing import push_panel

    push_panel(settings, Staff(email="kim@example.com", is_admin=True, login_enabled=False), "contacts")


def test_push_changes_after_a_reconnect_turns_a_partial_contact_synced(
    connected: Settings, pipedrive: PipedriveAdmin
) -> None:
    oauth.disconnect(_for(connected, "Pipedrive"))
    grace = create_contact_everywhere(connected, {"email": "grace@repush.example", "first_name": "Grace"})
    hubspot_id = dict((n, link.record_id) for n, link in grace.status.links)["HubSpot"]
    assert link_badges(_for(connected, "HubSpot"), [hubspot_id])[hubspot_id].startswith("partial: Pipedrive")
    code, out, err = run_cli(
        "connect", "pipedrive", "--token", pipedrive.api_token(), "--base-url", pipedrive.url
    )
    assert code == 0, out + err

    # Pipedrive's Contacts page: Push changes sends the create that waited.
    at = AppTest.from_function(
        _push_panel_page, kwargs={"settings": _for(connected, "Pipedrive")}, default_timeout=60
    ).run()
    at.button(key="contacts_push").click().run()

    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(p["name"] == "Grace" for p in pipedrive.truth("persons"))
    # HubSpot's row of the contact says so: the link followed the push.
    assert link_badges(_for(connected, "HubSpot"), [hubspot_id])[hubspot_id] == "synced"
