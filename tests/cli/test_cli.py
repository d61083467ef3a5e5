"""``python -m crm``: headless sync, push and status against the loopback sandbox; exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clikit import run_cli
from cryptography.fernet import Fernet

from crm import store
from crm.errors import CircuitOpen, ConfigError, HubSpotError, NeedsReconnect, SyncBusy, Unreachable
from crm.store import syncstate

REPO = Path(__file__).resolve().parents[2]


def test_keygen_prints_a_key_that_encrypts():
    code, out, _ = run_cli("keygen")
    assert code == 0
    key = out.strip().encode()
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"secret")) == b"secret"
    assert run_cli("keygen")[1] != out


def test_sync_runs_headless_as_a_process_with_progress_on_stderr_and_a_summary(sandbox, headless):
    sandbox.configure(latency_ms=120)
    done = subprocess.run(
        [sys.executable, "-m", "crm", "sync", "--full"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("HUBSPOT_", "CRM_"))}, **headless},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Sync succeeded in ")
    assert "contacts 40, companies 10, deals 15" in done.stdout
    assert "sync records" in done.stderr  # live progress lines while it ran
    db = store.open(headless["CRM_DB"])
    assert db.queries.counts()["contacts"] == 40
    assert db.syncstate.latest_run()["trigger"] == "cli"


def test_push_sends_queued_edits_and_status_reports_the_state(sandbox, headless):
    assert run_cli("sync")[0] == 0
    db = store.open(headless["CRM_DB"])
    contact = db.queries.query_records("contacts", limit=1)[0].index[0]
    from crm.config import load_settings
    from crm.sync import queue_edits

    queue_edits(load_settings(os.environ, {}), "contacts", {contact: {"jobtitle": "From the CLI"}}, by="ops")
    code, out, _ = run_cli("status")
    assert code == 0
    assert "Mode:        private_app" in out and "Connection:  connected" in out
    assert "Outbox:      1 pending" in out and "Last sync:   succeeded" in out
    code, out, err = run_cli("push")
    assert (code, out.strip()) == (0, "Push: 1 sent, 0 refused, 0 conflicts, 0 to retry."), err
    assert (
        next(r for r in sandbox.truth("contacts") if r["id"] == contact)["properties"]["jobtitle"]
        == "From the CLI"
    )


def test_a_push_with_a_conflict_exits_non_zero_and_names_it(sandbox, headless):
    run_cli("sync")
    db = store.open(headless["CRM_DB"])
    contact = db.queries.query_records("contacts", limit=1)[0].index[0]
    from crm.config import load_settings
    from crm.sync import queue_edits

    queue_edits(load_settings(os.environ, {}), "contacts", {contact: {"city": "Mine"}}, by="ops")
    sandbox.patch_object("contacts", contact, {"city": "Theirs"})
    code, out, err = run_cli("push")
    assert code == 1 and "1 conflicts" in out
    assert f"conflict: contacts {contact}.city" in err


def test_no_configuration_exits_2_with_a_one_line_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_DB", str(tmp_path / "c.db"))
    code, out, err = run_cli("sync")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: HUBSPOT_ACCESS_TOKEN: no HubSpot is configured")


def test_a_sync_while_another_runs_exits_3(headless):
    db = store.open(headless["CRM_DB"])
    assert (
        db.syncstate.start_run(
            kind="full", trigger="ui", started_by="kim@example.com", owner=syncstate.new_owner()
        )
        is not None
    )
    code, _, err = run_cli("sync")
    assert code == 3 and err.startswith("error: A sync is already running") and "kim@example.com" in err


def test_an_unconnected_sandbox_exits_4(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_SANDBOX_URL", sandbox.url)
    monkeypatch.setenv("CRM_DB", str(tmp_path / "c.db"))
    code, _, err = run_cli("sync")
    assert code == 4 and "not connected" in err.lower()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("CRM_DB", "bad"), 2),
        (SyncBusy("busy"), 3),
        (NeedsReconnect("again"), 4),
        (Unreachable("down"), 5),
        (CircuitOpen("paused", retry_in=3), 5),
        (HubSpotError("no", status_code=403), 6),
    ],
)
def test_each_kind_of_failure_has_its_own_exit_status(error, code):
    from crm.__main__ import _exit_code

    assert _exit_code(error) == code


def test_pronouns_sets_the_property_up_in_the_connected_portal_once(sandbox, headless):
    code, out, err = run_cli("pronouns")
    assert code == 0, err
    assert out.startswith("Pronouns created in ") and "(HubSpot)" in out
    from crm.sync import pronouns_property

    with store.open(headless["CRM_DB"]) as db:
        assert pronouns_property(db) == "pronouns"
    code, out, _ = run_cli("pronouns")
    assert code == 0 and out.startswith("Pronouns already in ")
