"""The command line with several connections: connect by token, list, choose, sync all, remove."""

from __future__ import annotations

import io
import os

import pytest
from cryptography.fernet import Fernet

from crm import connections, store
from crm.__main__ import main
from crm.config import load_settings


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli_env(monkeypatch, cache_target):
    """A terminal with only a cache and a key: every portal is connected by token."""
    for key in list(os.environ):
        if key.startswith(("HUBSPOT_", "CRM_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRM_DB", cache_target)
    monkeypatch.setenv("CRM_SECRET_KEY", Fernet.generate_key().decode())
    return cache_target


def test_two_portals_connected_by_token_are_listed_chosen_synced_and_removed(two_portals, cli_env):
    for portal, name in ((101, "Acme EU"), (202, "Acme US")):
        token = two_portals.private_app_token(portal_id=portal)
        code, out, err = run_cli(
            "connect", "hubspot", "--token", token, "--base-url", two_portals.url, "--name", name
        )
        assert code == 0, err
        assert f"Connected {name} (id hubspot-{portal}, portal {portal}): connected." in out
        assert token not in out + err

    code, out, _ = run_cli("connections")
    assert code == 0
    assert [line.split("\t")[:3] for line in out.splitlines()] == [
        ["hubspot-101", "Acme EU", "connected"],
        ["hubspot-202", "Acme US", "connected"],
    ]

    code, _, err = run_cli("sync")
    assert code == 2 and "Acme EU (id hubspot-101)" in err and "Acme US (id hubspot-202)" in err

    code, out, err = run_cli("sync", "--connection", "Acme US", "--full")
    assert code == 0, err
    settings = load_settings(os.environ, {})
    us = connections.resolve(settings, "hubspot-202")
    with store.open(connections.settings_for(settings, us)) as db:
        assert db.queries.counts()["contacts"] == len(
            [r for r in two_portals.truth("contacts", portal_id=202) if not r.get("archived")]
        )

    code, out, err = run_cli("sync", "--all")
    assert code == 0, err
    assert out.splitlines()[0].startswith("Acme EU: succeeded") and out.splitlines()[1].startswith(
        "Acme US: succeeded"
    )

    code, out, _ = run_cli("status", "--connection", "acme eu")
    assert code == 0 and "Connection:  hubspot-101" in out and "Portal:      101" in out

    code, out, err = run_cli("disconnect", "Acme US", "--remove")
    assert code == 0, err
    code, out, _ = run_cli("connections")
    assert [line.split("\t")[0] for line in out.splitlines()] == ["hubspot-101"]
    code, out, err = run_cli("push")  # one connection left: no name needed
    assert code == 0, err


def test_an_unknown_connection_name_exits_2_and_lists_the_names(two_portals, cli_env):
    token = two_portals.private_app_token(portal_id=101)
    assert run_cli("connect", "hubspot", "--token", token, "--base-url", two_portals.url)[0] == 0
    code, _, err = run_cli("push", "--connection", "Nope")
    assert code == 2 and "No connection is called 'Nope'" in err and "HubSpot" in err
