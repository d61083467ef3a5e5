"""HubSpot and Pipedrive connected side by side from the command line: each syncs its own data."""

from __future__ import annotations

import os

from crm import connections, store
from crm.config import load_settings
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from tests.connections.conftest import run_cli

PIPEDRIVE_ENTITIES = {"contacts": "persons", "companies": "organizations", "deals": "deals"}


def _live(records: list[dict]) -> set[str]:
    return {str(r["id"]) for r in records if not r.get("archived") and not r.get("is_deleted")}


def test_a_hubspot_portal_and_a_pipedrive_company_sync_side_by_side_each_into_its_own_cache(
    sandbox: SandboxAdmin, pipedrive: PipedriveAdmin, cli_env: str
) -> None:
    code, _, err = run_cli(
        "connect",
        "hubspot",
        "--token",
        sandbox.private_app_token(),
        "--base-url",
        sandbox.url,
        "--name",
        "Marketing",
    )
    assert code == 0, err
    code, _, err = run_cli(
        "connect",
        "pipedrive",
        "--token",
        pipedrive.api_token(),
        "--base-url",
        pipedrive.url,
        "--name",
        "Sales",
    )
    assert code == 0, err

    code, out, err = run_cli("sync", "--all")
    assert code == 0, out + err
    assert [line.split(":")[0] for line in out.splitlines()[:2]] == ["Marketing", "Sales"]
    assert all(": succeeded" in line for line in out.splitlines()[:2]), out

    settings = load_settings(os.environ, {})
    for name, truth in (
        ("Marketing", {t: _live(sandbox.truth(t)) for t in ("contacts", "companies", "deals")}),
        ("Sales", {t: _live(pipedrive.truth(e)) for t, e in PIPEDRIVE_ENTITIES.items()}),
    ):
        chosen = connections.settings_for(settings, connections.resolve(settings, name))
        with store.open(chosen) as db:
            for object_type, ids in truth.items():
                cached, _ = db.queries.query_records(object_type, limit=1000)
                assert set(cached.index) == ids, (name, object_type)
