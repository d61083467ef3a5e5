"""Pages say what the connection's CRM calls things and link where its provider says."""

from __future__ import annotations

from pathlib import Path

import pytest
from uikit import Portal, make_portal, texts

from crm import crms
from crm.hubspot.provider import HubSpot
from crm.interface import Identity, Words


class RenamedCrm(HubSpot):
    """HubSpot's API under other words and other record links: what a page shows must follow."""

    words = Words(crm="OtherCRM", account="company", fields={"lifecyclestage": "Funnel step"})

    def record_url(self, object_type: str, record_id: str, *, account: Identity) -> str | None:
        return f"https://other.example/{account.account_id}/{object_type}/{record_id}"


@pytest.fixture
def portal(sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Portal:
    # The subject is the words, not the cache: SQLite alone.
    monkeypatch.setitem(crms.PROVIDERS, "hubspot", RenamedCrm())
    return make_portal(sandbox, str(tmp_path / "crm.db"))


def test_the_record_page_links_into_the_crm_under_its_own_name(synced: Portal) -> None:
    contact = synced.sandbox.truth("contacts")[0]
    at = synced.page("record")
    at.query_params.update({"type": "contacts", "id": str(contact["id"])})
    at.run()

    assert not at.exception
    (button,) = at.get("link_button")
    assert button.proto.label == "Open in OtherCRM"
    assert button.url == f"https://other.example/62515/contacts/{contact['id']}"


def test_the_contacts_page_names_the_crm_and_its_stage_field(synced: Portal) -> None:
    at = synced.page("contacts")
    at.run()

    assert not at.exception
    assert "chosen from OtherCRM's lists" in texts(at)
    assert "Funnel step" in [s.label for s in at.selectbox]
    assert "Lifecycle stage" not in [s.label for s in at.selectbox]
