"""Logs an operator can use: a level and a format from settings, a run id on every line of a run."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from crm.config import Settings, load_settings
from crm.errors import ConfigError
from crm.logs import logging_configured, run_context
from crm.sync import push, queue_edits, run_sync

CALL = re.compile(r"\b(GET|POST|PATCH|PUT|DELETE) (/\S+) -> (\d{3}) in \d+ ms")


def _lines(buffer: io.StringIO) -> list[str]:
    return [line for line in buffer.getvalue().splitlines() if line.strip()]


def test_info_tells_a_sync_in_a_few_lines_each_with_its_run_id(settings: Settings, sandbox):
    out = io.StringIO()
    with logging_configured("INFO", "text", stream=out):
        run = run_sync(settings, kind="full")
    lines = [line for line in _lines(out) if " crm.sync" in line]
    assert 2 <= len(lines) <= 6, lines
    assert all(f"[sync-{run['id']}]" in line for line in lines)
    assert "started (full)" in lines[0]
    assert "succeeded" in lines[-1] and "contacts 40" in lines[-1]


def test_debug_shows_each_hubspot_call_from_every_thread_of_the_run(
    settings: Settings, sandbox, sandbox_token
):
    out = io.StringIO()
    with logging_configured("DEBUG", "text", stream=out):
        run = run_sync(settings, kind="full")
    calls = [line for line in _lines(out) if CALL.search(line)]
    assert len(calls) >= 10
    # Walkers, association readers and metadata readers run in their own threads.
    assert all(f"[sync-{run['id']}]" in line for line in calls), [c for c in calls if "[sync-" not in c][:3]
    routes = {CALL.search(line).group(2) for line in calls}
    assert "/crm/v3/objects/{object_type}" in routes and "/crm/v3/owners" in routes
    text = out.getvalue()
    assert sandbox_token not in text and "Bearer" not in text and "?" not in " ".join(routes)


def test_json_format_is_one_object_per_line_and_a_push_has_its_own_run_id(settings: Settings, sandbox):
    run_sync(settings, kind="full")
    contact = next(r for r in sandbox.truth("contacts") if not r["archived"])
    queue_edits(settings, "contacts", {contact["id"]: {"jobtitle": "Logged"}}, by="kim")
    out = io.StringIO()
    with logging_configured("DEBUG", "json", stream=out):
        assert push(settings, by="kim")["pushed"] == 1
    entries = [json.loads(line) for line in _lines(out)]
    assert entries and {"time", "level", "logger", "run_id", "message"} <= set(entries[0])
    with logging_configured("INFO", "json", stream=out):
        logging.getLogger("crm.test").info("outside a run")
    assert json.loads(_lines(out)[-1])["run_id"] is None
    run_ids = {e["run_id"] for e in entries if e["logger"].startswith("crm")}
    assert len(run_ids) == 1 and run_ids.pop().startswith("push-")


def test_lines_outside_a_run_and_nested_runs_keep_their_own_ids():
    out = io.StringIO()
    log = logging.getLogger("crm.test")
    with logging_configured("INFO", "text", stream=out):
        log.info("outside")
        with run_context("sync", "sync-7"):
            log.info("inside")
        log.info("after")
    lines = _lines(out)
    assert "[-] outside" in lines[0] and "[sync-7] inside" in lines[1] and "[-] after" in lines[2]


def test_the_level_and_format_settings_are_checked():
    assert load_settings({"CRM_LOG_LEVEL": "debug", "CRM_LOG_FORMAT": "JSON"}, {}).log_level == "DEBUG"
    for name, value in (("CRM_LOG_LEVEL", "LOUD"), ("CRM_LOG_FORMAT", "xml")):
        with pytest.raises(ConfigError) as caught:
            load_settings({name: value}, {})
        assert caught.value.setting == name and value in str(caught.value)


def test_a_webhook_batch_runs_under_its_own_run_id(settings: Settings, monkeypatch):
    import crm.webhooks
    from crm.logs import current_run_id

    seen: list[str | None] = []

    def pending_events(*args, **kwargs):
        seen.append(current_run_id())
        return []

    monkeypatch.setattr(crm.webhooks.inbox.Inbox, "pending_events", pending_events)
    assert crm.webhooks.process_pending(settings) == 0
    assert seen and seen[0].startswith("webhooks-")
