"""``migrate-cache`` with several connections: every connection's cache moves, not just the home one."""

from __future__ import annotations

import io
import os

from cryptography.fernet import Fernet

from crm import connections, store
from crm.__main__ import main
from crm.config import load_settings
from crm.sync import queue_edits


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _snapshot(settings) -> dict[str, tuple[int, int]]:
    """Per connection: cached contacts and pending edits."""
    seen = {}
    for conn in connections.list_connections(settings):
        with store.open(connections.settings_for(settings, conn)) as db:
            edited = db.outbox.outbox_counts()["pending"]
            seen[conn.id] = (db.queries.counts()["contacts"], edited)
    return seen


def test_migrating_to_postgresql_moves_every_connections_cache_and_the_registry(
    two_portals, monkeypatch, tmp_path, pg_url
):
    for key in list(os.environ):
        if key.startswith(("HUBSPOT_", "CRM_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRM_DB", str(tmp_path / "crm.db"))
    monkeypatch.setenv("CRM_SECRET_KEY", Fernet.generate_key().decode())
    for portal, name in ((101, "Acme EU"), (202, "Acme US")):
        token = two_portals.private_app_token(portal_id=portal)
        assert (
            run_cli("connect", "hubspot", "--token", token, "--base-url", two_portals.url, "--name", name)[0]
            == 0
        )
    assert run_cli("sync", "--all", "--full")[0] == 0
    on_sqlite = load_settings(os.environ, {})
    us = connections.resolve(on_sqlite, "Acme US")
    us_settings = connections.settings_for(on_sqlite, us)
    contact = next(r["id"] for r in two_portals.truth("contacts", portal_id=202) if not r.get("archived"))
    queue_edits(us_settings, "contacts", {contact: {"city": "Osaka"}}, by="kim")
    before = _snapshot(on_sqlite)
    assert before["hubspot-202"][1] == 1

    code, out, err = run_cli("migrate-cache", "--to", pg_url)
    assert code == 0, err
    assert "connection cache hubspot-202" in err

    monkeypatch.setenv("CRM_DB", pg_url)
    on_pg = load_settings(os.environ, {})
    assert [c.name for c in connections.list_connections(on_pg)] == ["Acme EU", "Acme US"]
    assert _snapshot(on_pg) == before
    with store.open(connections.settings_for(on_pg, connections.resolve(on_pg, "Acme US"))) as db:
        assert db.queries.get_record("contacts", contact)["city"] == "Osaka"
    # The stored tokens moved too: the Acme US edit is pushed to portal 202 from PostgreSQL.
    code, out, err = run_cli("push", "--connection", "Acme US")
    assert code == 0, out + err
    city = next(r for r in two_portals.truth("contacts", portal_id=202) if r["id"] == contact)["properties"][
        "city"
    ]
    assert city == "Osaka"
