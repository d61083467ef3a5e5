"""What differs between CRMs is asked of the connection's provider: whether the consent page
can be used, which mode the settings impose, and the token endpoint a refresh goes to."""

from __future__ import annotations

import dataclasses

import pytest

from crm import crms, oauth
from crm.config import load_settings
from crm.hubspot.provider import HubSpot
from crm.interface import Grant


class ThirdCrm(HubSpot):
    """A CRM neither HubSpot nor Pipedrive: its own token endpoint."""

    name = "third"

    def __init__(self) -> None:
        self.refreshed: list[str] = []

    def refresh(self, settings, refresh_token, *, transport=None) -> Grant:
        self.refreshed.append(refresh_token)
        return Grant(access_token="a2", refresh_token="r2", expires_at=1.0, scopes=(), account_id="9")


def test_a_refresh_goes_to_the_token_endpoint_of_the_connection_crm(monkeypatch: pytest.MonkeyPatch) -> None:
    third = ThirdCrm()
    monkeypatch.setitem(crms.PROVIDERS, "third", third)
    settings = dataclasses.replace(load_settings({"CRM_DB": "x.db"}, {}), crm="third")
    grant = oauth.token_endpoint(settings).refresh("r1")
    assert third.refreshed == ["r1"] and grant.access_token == "a2"


def test_each_crm_says_when_its_consent_page_cannot_be_used_and_what_to_set() -> None:
    hubspot, pipedrive = crms.provider_for("hubspot"), crms.provider_for("pipedrive")
    private_app = load_settings({"HUBSPOT_ACCESS_TOKEN": "t", "CRM_DB": "x.db"}, {})
    assert "HUBSPOT_ACCESS_TOKEN" in (hubspot.consent_missing(private_app) or "")
    assert "PIPEDRIVE_CLIENT_ID" in (pipedrive.consent_missing(private_app) or "")
    with_apps = dataclasses.replace(private_app, mode="oauth", pipedrive_client_id="p")
    assert hubspot.consent_missing(with_apps) is None and pipedrive.consent_missing(with_apps) is None


def test_only_hubspot_connections_take_their_mode_from_the_settings() -> None:
    private_app = load_settings({"HUBSPOT_ACCESS_TOKEN": "t", "CRM_DB": "x.db"}, {})
    assert crms.provider_for("hubspot").configured_mode(private_app) == "private_app"
    assert crms.provider_for("pipedrive").configured_mode(private_app) is None
