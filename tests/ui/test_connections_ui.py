"""Several connections in the UI: the sidebar switcher, deep links, the Connect page's list,
rename and remove, and Sync all. Two sandbox portals (101 and 202) are both connected through
the real OAuth functions, each into its own partition of the cache."""

from __future__ import annotations

import dataclasses

import pytest
from uikit import STAFF_LOGIN, Portal, make_portal, plain, texts, wait_until

from crm import connections, store, sync
from crm.sandbox.admin import SandboxAdmin
from tests.synced_copies import SyncedCopies, portal_fingerprint

A, B = "hubspot-101", "hubspot-202"


@pytest.fixture
def two(two_portals: SandboxAdmin, cache_target: str, synced_copies: SyncedCopies) -> Portal:
    """Portals 101 and 202 connected (101 first) and synced, each into its own partition
    (a copy of the session's synced cache, tests/synced_copies.py, then reconnected)."""

    def build(target: str) -> None:
        template = make_portal(two_portals, target)
        for portal_id in (101, 202):
            part = connections.settings_for(
                template.settings, connections.add(template.settings, account_id=portal_id)
            )
            dataclasses.replace(template, settings=part).connect(portal_id=portal_id)
            sync.run_sync(part, kind="full", trigger="test")

    content = portal_fingerprint(two_portals, 101) + portal_fingerprint(two_portals, 202)
    synced_copies.fill(cache_target, "two-portals-oauth", content, build)
    portal = make_portal(two_portals, cache_target)
    for portal_id in (101, 202):
        conn = connections.resolve(portal.settings, f"hubspot-{portal_id}")
        part = connections.settings_for(portal.settings, conn)
        dataclasses.replace(portal, settings=part).connect(portal_id=portal_id)
    return portal


def _conn(portal: Portal, connection_id: str) -> connections.Connection:
    return next(c for c in connections.list_connections(portal.settings) if c.id == connection_id)


def _emails(portal: Portal, portal_id: int) -> set[str]:
    return {r["properties"]["email"] for r in portal.sandbox.truth("contacts", portal_id=portal_id)}


def _listed(at):
    """The Connect page's table of connections (read-only tables carry no key to find them by)."""
    return next(d.value for d in at.dataframe if "Queued edits" in d.value.columns)


def _shown_emails(at) -> set[str]:
    return set(at.data_editor[0].value["email"])


def test_the_sidebar_switches_between_the_portals_contacts_and_updates_the_link(two: Portal) -> None:
    at = two.page("contacts")
    at.run()
    assert not at.exception
    switcher = at.selectbox(key="sidebar_connection")
    assert switcher.options == [c.name for c in connections.list_connections(two.settings)]
    assert _shown_emails(at) <= _emails(two, 101) and _shown_emails(at)
    assert at.query_params["connection"] == A
    assert f"Connection: {_conn(two, A).name}" in texts(at)

    switcher.set_value(B).run()
    assert not at.exception
    assert _shown_emails(at) <= _emails(two, 202) and _shown_emails(at)
    assert at.query_params["connection"] == B


def test_a_deep_link_opens_that_connection(two: Portal) -> None:
    at = two.app()
    at.query_params["connection"] = B
    at.run()
    assert not at.exception
    assert _shown_emails(at) <= _emails(two, 202) and _shown_emails(at)
    assert at.selectbox(key="sidebar_connection").value == B
    assert f"Connection: {_conn(two, B).name}" in texts(at)


def test_a_deep_link_to_an_unknown_connection_shows_the_first_and_says_so(two: Portal) -> None:
    at = two.app()
    at.query_params["connection"] = "hubspot-999"
    at.run()
    assert not at.exception
    assert _shown_emails(at) <= _emails(two, 101)
    assert "No connection hubspot-999" in texts(at)
    assert at.query_params["connection"] == A


def test_the_connect_page_lists_every_connection_with_its_status(two: Portal) -> None:
    at = two.page("connect")
    at.run()
    assert not at.exception
    table = _listed(at)
    assert list(table["Id"]) == [A, B]
    assert list(table["Account"]) == ["101", "202"]
    assert list(table["Status"]) == ["Connected", "Connected"]
    assert all(when != "never" for when in table["Last sync"])
    assert [m.value for m in at.markdown if m.allow_html and "Add connection" in m.value]


def test_renaming_a_connection_shows_the_new_name_escaped(two: Portal) -> None:
    at = two.page("connect")
    at.run()
    at.text_input(key=f"connect_name_{B}").input("Acme *EU* [x](javascript:alert(1))")
    at.button(key=f"connect_rename_{B}").click().run()
    assert not at.exception
    assert _conn(two, B).name == "Acme *EU* [x](javascript:alert(1))"
    assert "Acme *EU* [x](javascript:alert(1))" in list(_listed(at)["Name"])
    [label] = [e.label for e in at.expander if "Acme" in e.label]
    assert "Acme \\*EU\\* \\[x\\]\\(javascript" in label
    assert plain(label) == "Manage Acme *EU* [x](javascript:alert(1))"


def test_removing_a_connection_asks_first_and_says_how_many_queued_edits_would_be_lost(two: Portal) -> None:
    part_b = connections.settings_for(two.settings, _conn(two, B))
    sync.queue_new_contact(part_b, {"email": "new-1@example.com"}, by="test")
    sync.queue_new_contact(part_b, {"email": "new-2@example.com"}, by="test")
    at = two.page("connect")
    at.run()
    at.button(key=f"connect_remove_{B}").click().run()
    assert not at.exception
    warning = plain(next(w.value for w in at.warning if "Remove" in w.value))
    assert "2 queued edits not yet pushed to HubSpot would be lost" in warning
    assert [c.id for c in connections.list_connections(two.settings)] == [A, B]

    at.button(key=f"connect_remove_confirm_{B}").click().run()
    assert not at.exception
    assert [c.id for c in connections.list_connections(two.settings)] == [A]
    assert list(_listed(at)["Id"]) == [A]
    with store.open(connections.settings_for(two.settings, _conn(two, A))) as db:
        assert db.queries.counts()["contacts"] == len(_emails(two, 101))


def test_cancelling_a_removal_keeps_the_connection(two: Portal) -> None:
    at = two.page("connect")
    at.run()
    at.button(key=f"connect_remove_{A}").click().run()
    at.button(key=f"connect_remove_cancel_{A}").click().run()
    assert not at.exception
    assert [c.id for c in connections.list_connections(two.settings)] == [A, B]
    assert not [w for w in at.warning if "Remove" in w.value]


def _runs(portal: Portal, connection_id: str) -> list[dict]:
    with store.open(connections.settings_for(portal.settings, _conn(portal, connection_id))) as db:
        return db.syncstate.run_history(limit=10)


def test_sync_all_starts_a_sync_of_every_connection_and_shows_each(two: Portal) -> None:
    two.sandbox.patch_object(
        "contacts",
        two.sandbox.truth("contacts", portal_id=202)[0]["id"],
        {"jobtitle": "Changed in 202"},
        portal_id=202,
    )
    at = two.page("sync")
    at.run()
    assert not at.exception
    assert {A, B} <= {c.id for c in connections.list_connections(two.settings)}
    at.button(key="sync_all").click().run()
    assert not at.exception
    assert any("Sync started for 2 of 2 connections" in t.value for t in at.toast)

    def both_done() -> bool:
        return all(len(_runs(two, cid)) == 2 and _runs(two, cid)[0]["state"] != "running" for cid in (A, B))

    wait_until(both_done, what="both syncs")
    assert [_runs(two, cid)[0]["state"] for cid in (A, B)] == ["succeeded", "succeeded"]
    at.run()
    shown = texts(at)
    for conn in connections.list_connections(two.settings):
        assert f"{conn.name}: Connected" in shown


def test_staff_who_are_not_admins_see_the_connections_but_cannot_change_them(two: Portal) -> None:
    bo = {"is_logged_in": True, "email": "bo@example.com", "email_verified": True}
    at = two.page("connect", secrets=STAFF_LOGIN, user=bo)
    at.run()
    assert not at.exception
    assert list(_listed(at)["Id"]) == [A, B]
    assert "Only admins (CRM_ADMIN_EMAILS) can add or change connections" in texts(at)
    assert not [m for m in at.markdown if m.allow_html]
    assert not [b for b in at.button if b.key and b.key.startswith("connect_re")]

    at = two.page("sync", secrets=STAFF_LOGIN, user=bo)
    at.run()
    assert not at.exception
    assert [b for b in at.button if b.key == "sync_all"] == []
    assert "Only admins (CRM_ADMIN_EMAILS) can sync every connection" in texts(at)
