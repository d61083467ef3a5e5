"""The generic pull is not Pipedrive's: it brings a HubSpot portal through the interface alone."""

from __future__ import annotations

from crm import store
from crm.hubspot import StaticToken
from crm.hubspot.provider import HubSpot
from crm.sandbox.admin import SandboxAdmin
from crm.sync.runner import run_sync
from tests.portal_fixtures import private_app_settings


def test_the_generic_pull_brings_a_hubspot_portal_through_the_crm_interface_alone(
    sandbox: SandboxAdmin, sandbox_token: str, cache_target: str
) -> None:
    settings = private_app_settings(sandbox.url, sandbox_token, cache_target)
    api = HubSpot().open(settings, StaticToken(sandbox_token), base_url=sandbox.url)
    try:
        run = run_sync(settings, kind="full", api=api)
    finally:
        api.close()

    assert run["state"] == "succeeded", run.get("error")
    with store.open(settings) as db:
        for object_type in ("contacts", "companies", "deals"):
            live = {r["id"]: r for r in sandbox.truth(object_type) if not r["archived"]}
            cached = db.queries.record_stamps(object_type)
            assert set(cached) == set(live)
        contacts = {r["id"]: r for r in sandbox.truth("contacts") if not r["archived"]}
        emails = db.queries.get_values("contacts", list(contacts), ["email"])
        assert {i: v["email"] for i, v in emails.items()} == {
            i: r["properties"].get("email") for i, r in contacts.items()
        }
        for contact_id, record in contacts.items():
            linked = set(db.queries.associated_records("contacts", contact_id, "companies").index)
            assert linked == {a["id"] for a in record["associations"]["companies"]}
