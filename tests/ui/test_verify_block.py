"""The Sync page's Verify block: the estimate before the button, the differences, the fix."""

from __future__ import annotations

from uikit import Portal, texts

from crm import store


def _differences(at):
    """The table of differences (AppTest gives read-only tables no key), or None."""
    return next((d.value for d in at.dataframe if "Difference" in d.value.columns), None)


def test_verify_shows_its_requests_first_lists_what_differs_and_fixes_it_on_request(synced: Portal) -> None:
    sandbox = synced.sandbox
    at = synced.page("sync")
    at.run()
    assert not at.exception
    sandbox.configure(webhook_url="")  # changes behind the app's back: no webhook tells it
    contact = sorted((r["id"] for r in sandbox.truth("contacts")), key=int)[4]
    company = sorted((r["id"] for r in sandbox.truth("companies")), key=int)[1]
    sandbox.patch_object("contacts", contact, {"jobtitle": "Changed behind the app"})
    sandbox.archive_object("companies", company)
    assert (
        "This check makes about 8 requests (contacts 2, companies 2, deals 2, tickets 2) and at most 8."
        in texts(at)
    )
    assert _differences(at) is None

    at.button(key="verify_run").click().run()
    assert not at.exception
    differences = _differences(at)
    assert sorted(zip(differences["Type"], differences["Record"], strict=True)) == [
        ("companies", company),
        ("contacts", contact),
    ]
    assert "Fixing makes about 2 requests." in texts(at)  # the stale contact and its associations

    at.checkbox(key="verify_remove").check().run()
    assert "Fixing makes about 3 requests." in texts(at)
    at.button(key="verify_fix").click().run()
    assert not at.exception
    with store.open(synced.settings) as db:
        assert db.queries.get_record("contacts", contact)["jobtitle"] == "Changed behind the app"
        assert db.queries.get_record("companies", company)["archived"] == 1

    at.button(key="verify_run").click().run()
    assert "The cache matches HubSpot" in texts(at)
