"""The links on the pages (``ui.links``): the create-everywhere form and the per-record badges,
against both sandboxes over loopback, on each backend (``cache_target``)."""

from __future__ import annotations

import os

import pytest
from cryptography.fernet import Fernet
from streamlit.testing.v1 import AppTest

from crm import connections, oauth
from crm.config import Settings, load_settings
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync.links import create_contact_everywhere
from tests.connections.test_hubspot_and_pipedrive import run_cli
from ui.links import link_badges


@pytest.fixture
def both(sandbox: SandboxAdmin, pipedrive: PipedriveAdmin, cache_target: str, monkeypatch) -> Settings:
    """HubSpot and Pipedrive connected and synced from the command line, on this test's cache."""
    for key in [k for k in os.environ if k.startswith(("HUBSPOT_", "CRM_", "PIPEDRIVE_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CRM_DB", cache_target)
    monkeypatch.setenv("CRM_SECRET_KEY", Fernet.generate_key().decode())
    for args in (
        (
            "connect",
            "hubspot",
            "--token",
            sandbox.private_app_token(),
            "--base-url",
            sandbox.url,
            "--name",
            "HubSpot",
        ),
        (
            "connect",
            "pipedrive",
            "--token",
            pipedrive.api_token(),
            "--base-url",
            pipedrive.url,
            "--name",
            "Pipedrive",
        ),
        ("sync", "--all"),
    ):
        code, out, err = run_cli(*args)
        assert code == 0, out + err
    return load_settings(os.environ, {})


def _for(settings: Settings, name: str) -> Settings:
    return connections.settings_for(settings, connections.resolve(settings, name))


def test_badges_say_synced_partial_with_the_crms_reason_or_nothing_for_unlinked_records(
    both: Settings, sandbox: SandboxAdmin
) -> None:
    ada = create_contact_everywhere(both, {"email": "ada@badges.example", "first_name": "Ada"})
    oauth.disconnect(_for(both, "Pipedrive"))
    grace = create_contact_everywhere(both, {"email": "grace@badges.example", "first_name": "Grace"})
    hubspot_ids = {
        p.email: dict((n, link.record_id) for n, link in p.links)["HubSpot"]
        for p in (ada.status, grace.status)
    }
    unlinked = next(
        str(r["id"]) for r in sandbox.truth("contacts") if str(r["id"]) not in hubspot_ids.values()
    )

    badges = link_badges(_for(both, "HubSpot"), [hubspot_ids["ada@badges.example"], unlinked,
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
    both: Settings, sandbox: SandboxAdmin, pipedrive: PipedriveAdmin
) -> None:
    at = AppTest.from_function(_form_page, kwargs={"settings": both}, default_timeout=60).run()
    assert at.multiselect(key="links_new_connections").value == [
        c.id for c in connections.list_connections(both)
    ]
    at.text_input(key="links_new_email").input("lin@form.example")
    at.text_input(key="links_new_first_name").input("Lin")
    at.text_input(key="links_new_last_name").input("Form")
    at.button(key="links_new_submit").click().run()

    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.success[0].value.startswith("synced")
    assert any(r["properties"].get("email") == "lin@form.example" for r in sandbox.truth("contacts"))
    assert any(p["name"] == "Lin Form" for p in pipedrive.truth("persons"))
