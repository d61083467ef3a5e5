"""``python -m crm verify``: the planned requests first, what differs, and --fix."""

from __future__ import annotations

from clikit import run_cli


def test_verify_prints_its_request_estimate_first_then_what_differs_and_fix_repairs_it(sandbox, headless):
    assert run_cli("sync")[0] == 0
    contact = sorted((r["id"] for r in sandbox.truth("contacts")), key=int)[2]
    sandbox.patch_object("contacts", contact, {"jobtitle": "Behind the app's back"})

    code, out, err = run_cli("verify", "--full")

    assert code == 1
    assert err.startswith("Verify (full): about 4 requests (contacts 1, companies 1, deals 1, tickets 1).")
    assert "contacts: cache 40, HubSpot 40; 0 missing, 0 extra, 1 stale (checked 40)" in out
    assert f"  stale: {contact}\n" in out
    assert out.rstrip().endswith("Verify: differences found; 4 requests.")

    code, out, err = run_cli("verify", "--fix", "--budget", "10")
    assert code == 0, out + err
    assert "capped at 10" in err and "Fix: 1 re-read, 0 removed" in out
    assert run_cli("verify", "--full")[0] == 0


def test_a_budget_too_small_stops_verify_and_says_so(sandbox, headless):
    assert run_cli("sync")[0] == 0
    code, out, _ = run_cli("verify", "--budget", "1")
    assert code == 1
    assert (
        "companies: cache 10, HubSpot ?; 0 missing, 0 extra, 0 stale (checked 0, stopped at the budget)"
        in out
    )
    assert "Verify: incomplete (budget); 1 requests." in out
