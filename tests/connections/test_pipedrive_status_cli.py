"""``python -m crm status --connection NAME`` for a Pipedrive company: its sync state in Pipedrive's words."""

from __future__ import annotations

import re

from crm.sandbox.pipedrive.admin import PipedriveAdmin
from tests.connections.conftest import PIPEDRIVE_COMPANY, cli_ok, live_ids, run_cli, token_connect


def test_status_of_a_pipedrive_connection_shows_its_company_last_sync_and_cache_in_pipedrives_words(
    pipedrive: PipedriveAdmin, cli_env: str
) -> None:
    cli_ok(*token_connect("pipedrive", pipedrive.api_token(), pipedrive.url, "Sales"))
    code, before, _ = run_cli("status", "--connection", "Sales")
    assert code == 0 and "Last sync:   never" in before

    code, synced, _ = run_cli("sync", "--connection", "Sales")
    timeline = len(live_ids(pipedrive.truth("notes"))) + len(live_ids(pipedrive.truth("activities")))
    assert timeline > 0
    # The notes and activities of the timelines are counted as the Sync page counts them.
    assert code == 0 and re.search(
        rf": people \d+, organizations \d+, deals \d+, notes and activities {timeline};", synced
    ), synced
    code, out, err = run_cli("status", "--connection", "Sales")

    assert code == 0, err
    lines = out.splitlines()
    assert "CRM:         Pipedrive" in lines and "Connection:  connected" in lines
    assert any(line.startswith("Company:     ") for line in lines), out
    # Its first sync read everything, whatever it was asked: a full one.
    assert any(line.startswith("Last sync:   succeeded (full") for line in lines), out
    people, organizations, deals = (
        len(live_ids(pipedrive.truth(e))) for e in ("persons", "organizations", "deals")
    )
    users = PIPEDRIVE_COMPANY["users"]
    assert (
        f"Cached:      people {people}, organizations {organizations}, deals {deals}, users {users}, "
        f"notes and activities {timeline}"
    ) in lines
    assert "Daily budget: not counted for Pipedrive" in out
    # Pipedrive lists deleted deals, not deleted people, notes or activities: those are swept
    # for (crm.sync.sweep); the first sync read them in full, which counts as a look.
    for what in ("people", "notes", "activities"):
        assert any(
            line.startswith(f"Deletions:   Deleted {what} last looked for ") and "by a full pull" in line
            for line in lines
        ), out
    assert any(line.startswith("Deletions:   Deleted deals: Pipedrive lists them") for line in lines), out
    assert "HubSpot" not in out and "tickets" not in out and "Portal" not in out


def test_verify_on_a_pipedrive_connection_checks_it_in_pipedrives_words_within_the_printed_estimate(
    pipedrive: PipedriveAdmin, cli_env: str
) -> None:
    cli_ok(*token_connect("pipedrive", pipedrive.api_token(), pipedrive.url, "Sales"))
    before = pipedrive.stats()["requests"]

    code, out, err = run_cli("verify", "--full", "--connection", "Sales")

    # Nothing synced yet: every record is missing from the cache, in Pipedrive's words.
    assert code == 1, err
    assert err.startswith("Verify (full): about 3 requests (people 1, organizations 1, deals 1).")
    people = len(live_ids(pipedrive.truth("persons")))
    assert f"people: cache 0, Pipedrive {people}; {people} missing, 0 extra, 0 stale" in out
    assert "contacts" not in out + err and "companies" not in out + err
    assert out.rstrip().endswith("Verify: differences found; 3 requests.")
    assert "HubSpot" not in out + err
    asked = sum(n for route, n in pipedrive.stats()["requests"].items() if "/_sandbox/" not in route)
    assert asked - sum(n for route, n in before.items() if "/_sandbox/" not in route) == 3
