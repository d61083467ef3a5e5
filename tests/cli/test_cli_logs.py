"""The CLI's logs: ``-v`` for each HubSpot call, CRM_LOG_FORMAT=json, bad settings exit 2."""

from __future__ import annotations

import json
import logging

from clikit import run_cli


def test_verbose_logs_each_hubspot_call_with_the_run_id_and_no_token(headless):
    code, _, err = run_cli("-v", "sync")
    assert code == 0
    calls = [line for line in err.splitlines() if " -> 200 in " in line]
    assert calls and all("DEBUG crm.hubspot [sync-1]" in line for line in calls)
    assert headless["HUBSPOT_ACCESS_TOKEN"] not in err and "Bearer" not in err
    quiet = run_cli("push")[2]
    assert " -> 200 in " not in quiet  # INFO by default


def test_json_logs_are_one_object_per_line(headless, monkeypatch):
    monkeypatch.setenv("CRM_LOG_FORMAT", "json")
    before = list(logging.getLogger("crm").handlers), logging.getLogger("crm").level
    code, _, err = run_cli("sync")
    assert code == 0
    entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    sync_lines = [e for e in entries if e["logger"] == "crm.sync"]
    assert any("started" in e["message"] for e in sync_lines)
    assert {e["run_id"] for e in sync_lines} == {"sync-1"}
    # In-process callers (tests) get the loggers back as they were.
    assert (logging.getLogger("crm").handlers, logging.getLogger("crm").level) == before


def test_a_bad_log_setting_exits_2_naming_it(headless, monkeypatch):
    monkeypatch.setenv("CRM_LOG_LEVEL", "shouty")
    code, _, err = run_cli("status")
    assert code == 2 and err.startswith("error: CRM_LOG_LEVEL:")
