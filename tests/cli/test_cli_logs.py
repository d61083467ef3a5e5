"""The CLI's logs: ``-v`` for each HubSpot call, CRM_LOG_FORMAT=json, bad settings exit 2."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest

from crm.__main__ import main
from crm.hubspot import reset_limits


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith(("HUBSPOT_", "CRM_")):
            monkeypatch.delenv(key)
    reset_limits()
    yield
    reset_limits()


@pytest.fixture
def headless(monkeypatch, sandbox, sandbox_token, tmp_path):
    for key, value in {
        "HUBSPOT_ACCESS_TOKEN": sandbox_token,
        "HUBSPOT_BASE_URL": sandbox.url,
        "CRM_DB": str(tmp_path / "c.db"),
    }.items():
        monkeypatch.setenv(key, value)
    return sandbox_token


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_verbose_logs_each_hubspot_call_with_the_run_id_and_no_token(headless):
    code, _, err = run_cli("-v", "sync")
    assert code == 0
    calls = [line for line in err.splitlines() if " -> 200 in " in line]
    assert calls and all("DEBUG crm.hubspot [sync-1]" in line for line in calls)
    assert headless not in err and "Bearer" not in err
    quiet = run_cli("push")[2]
    assert " -> 200 in " not in quiet  # INFO by default


def test_json_logs_are_one_object_per_line(headless, monkeypatch):
    monkeypatch.setenv("CRM_LOG_FORMAT", "json")
    before = list(logging.getLogger("crm").handlers), logging.getLogger("crm").level
    code, _, err = run_cli("sync")
    assert code == 0
    entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [e["run_id"] for e in entries if e["logger"] == "crm.sync"] == ["sync-1", "sync-1"]
    # In-process callers (tests) get the loggers back as they were.
    assert (logging.getLogger("crm").handlers, logging.getLogger("crm").level) == before


def test_a_bad_log_setting_exits_2_naming_it(headless, monkeypatch):
    monkeypatch.setenv("CRM_LOG_LEVEL", "shouty")
    code, _, err = run_cli("status")
    assert code == 2 and err.startswith("error: CRM_LOG_LEVEL:")
