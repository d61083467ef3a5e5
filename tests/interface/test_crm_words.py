"""Pages, links and validation take the CRM's words from its provider, not from literals."""

from __future__ import annotations

import pytest

from crm import crms
from crm.config import load_settings
from crm.hubspot.provider import HubSpot
from crm.interface import Identity, Words
from crm.validate import Context, check_properties
from ui.columns import portal_url, record_url


class OtherCrm(HubSpot):
    """A second CRM for these tests: its own words and its own record links."""

    name = "other"
    words = Words(crm="OtherCRM", account="company", owner="user", fields={"lifecyclestage": "Label"})

    def record_url(self, object_type: str, record_id: str, *, account: Identity) -> str | None:
        return f"https://{account.ui_host}/{object_type}/{record_id}"

    def account_url(self, account: Identity) -> str | None:
        return f"http://{account.ui_host}/"  # not https: the UI must refuse it


@pytest.fixture
def other(monkeypatch: pytest.MonkeyPatch) -> OtherCrm:
    provider = OtherCrm()
    monkeypatch.setitem(crms.PROVIDERS, "other", provider)
    return provider


def test_hubspot_is_the_crm_of_settings_that_name_none() -> None:
    settings = load_settings({"HUBSPOT_ACCESS_TOKEN": "t", "CRM_DB": "x.db"}, {})
    assert crms.provider_of(settings).words.crm == "HubSpot"
    assert crms.provider_for(None).words.field_label("lifecyclestage") == "Lifecycle stage"
    assert crms.provider_for("HubSpot").words.account_label(101) == "portal 101"


def test_an_unknown_crm_is_refused_with_the_known_names() -> None:
    with pytest.raises(KeyError, match="hubspot"):
        crms.provider_for("salesforce")


def test_record_links_are_built_by_the_connection_crm(other: OtherCrm) -> None:
    assert record_url("acme.other.example", 7, "contacts", "42", crm="other") == (
        "https://acme.other.example/contacts/42"
    )
    assert record_url("app.hubspot.com", 7, "contacts", "42") == (
        "https://app.hubspot.com/contacts/7/record/0-1/42"
    )
    assert portal_url("acme.other.example", 7, crm="other") is None


def test_validation_messages_name_the_crm_and_check_its_owner_field() -> None:
    defs = {"owner_id": {"name": "owner_id", "type": "string"}, "nick": {"name": "nick", "read_only": True}}
    context = Context(defs=defs, owner_ids=["1"], crm_name="OtherCRM", owner_property="owner_id")

    _clean, errors = check_properties("contacts", {"owner_id": "9", "nick": "x", "nope": "y"}, context)

    assert errors == {
        "owner_id": "'9' is not an active OtherCRM owner",
        "nick": "is read-only in OtherCRM",
        "nope": "OtherCRM has no contacts property 'nope'",
    }
