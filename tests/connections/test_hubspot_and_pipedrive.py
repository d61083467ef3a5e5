"""HubSpot and Pipedrive connected side by side from the command line: each syncs its own data."""

from __future__ import annotations

import os

from crm import connections, store
from crm.config import load_settings
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from tests.connections.conftest import cli_ok, live_ids, run_cli, token_connect

PIPEDRIVE_ENTITIES = {"contacts": "persons", "companies": "organizations", "deals": "deals"}


def test_a_hubspot_portal_and_a_pipedrive_company_sync_side_by_side_each_into_its_own_cache(
    sandbox: SandboxAdmin, pipedrive: PipedriveAdmin, cli_env: str
) -> None:
    cli_ok(*token_connect("hubspot", sandbox.private_app_token(), sandbox.url, "Marketing"))
    cli_ok(*token_connect("pipedrive", pipedrive.api_token(), pipedrive.url, "Sales"))

    code, out, err = run_cli("sync", "--all")
    assert code == 0, out + err
    assert [line.split(":")[0] for line in out.splitlines()[:2]] == ["Marketing", "Sales"]
    assert all(": succeeded" in line for line in out.splitlines()[:2]), out

    settings = load_settings(os.environ, {})
    for name, truth in (
        ("Marketing", {t: live_ids(sandbox.truth(t)) for t in ("contacts", "companies", "deals")}),
        ("Sales", {t: live_ids(pipedrive.truth(e)) for t, e in PIPEDRIVE_ENTITIES.items()}),
    ):
        chosen = connections.settings_for(settings, connections.resolve(settings, name))
        with store.open(chosen) as db:
            for object_type, ids in truth.items():
                cached, _ = db.queries.query_records(object_type, limit=1000)
                assert set(cached.index) == ids, (name, object_type)
