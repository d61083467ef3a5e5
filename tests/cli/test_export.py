"""``python -m crm export``: cached records for scripts, as the pages show them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from clikit import run_cli

from crm import store


@pytest.fixture
def cached(headless, sandbox):
    """A synced cache with a formula-like first name and one archived contact."""
    contacts = [r for r in sandbox.truth("contacts") if not r["archived"]]
    sandbox.patch_object("contacts", contacts[0]["id"], {"firstname": '=HYPERLINK("http://x.test","hi")'})
    assert run_cli("sync")[0] == 0
    db = store.open(headless["CRM_DB"])
    try:
        db.records.mark_archived("contacts", [contacts[1]["id"]])
    finally:
        db.close()
    return {"formula": contacts[0], "archived": contacts[1]}


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_contacts_export_as_csv_with_labels_neutralised_formulas_and_no_archived(cached, sandbox):
    code, out, err = run_cli("export", "contacts")
    assert code == 0, err
    header = out.splitlines()[0]
    assert header.startswith('"id",') and '"email"' in header
    rows = {row["id"]: row for row in _csv(out)}
    assert len(rows) == 39 and cached["archived"]["id"] not in rows
    assert rows[cached["formula"]["id"]]["firstname"].startswith("'=HYPERLINK")
    sample = next(r for r in rows.values() if r["hubspot_owner_id"])
    assert not sample["hubspot_owner_id"].isdigit()  # an owner's name, as the page shows it
    assert {r["lifecyclestage"] for r in rows.values() if r["lifecyclestage"]} & {
        "Lead",
        "Customer",
        "Subscriber",
    }
    assert "Exported 39 contacts." in err


def test_deals_show_pipeline_and_stage_labels_and_companies_their_counts(cached):
    deals = _csv(run_cli("export", "deals")[1])
    assert len(deals) == 15
    assert {d["pipeline"] for d in deals} <= {"Sales Pipeline", "Renewals"}
    stages = {d["dealstage"] for d in deals}
    assert "appointmentscheduled" not in stages and any(s.endswith("(Sales Pipeline)") for s in stages)
    companies = _csv(run_cli("export", "companies")[1])
    assert list(companies[0])[:2] == ["id", "name"] and list(companies[0])[-2:] == ["contacts", "deals"]
    assert sum(int(c["contacts"]) for c in companies) > 0


def test_json_export_keeps_the_text_and_search_narrows_it(cached):
    code, out, _ = run_cli("export", "contacts", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 39 and list(rows[0])[0] == "id"
    formula = next(r for r in rows if r["id"] == cached["formula"]["id"])
    assert formula["firstname"].startswith("=HYPERLINK")
    email = next(r["email"] for r in rows if r["email"])
    found = json.loads(run_cli("export", "contacts", "--format", "json", "--search", email)[1])
    assert [r["email"] for r in found] == [email]


def test_an_empty_cache_exports_a_header_only(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_DB", str(tmp_path / "empty.db"))
    code, out, _ = run_cli("export", "deals")
    assert code == 0 and out.splitlines() == [
        '"id","dealname","pipeline","dealstage","amount","closedate","hubspot_owner_id"'
    ]


def test_tickets_export_shows_pipeline_and_stage_labels(cached, sandbox):
    code, out, err = run_cli("export", "tickets")
    assert code == 0, err
    rows = _csv(out)
    live = [t for t in sandbox.truth("tickets") if not t["archived"]]
    assert len(rows) == len(live) > 0
    stage_ids = {t["properties"].get("hs_pipeline_stage") for t in live}
    assert not {r["hs_pipeline_stage"] for r in rows} & stage_ids  # labels, not ids
