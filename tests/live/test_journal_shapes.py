"""Journal events of any plausible shape reach the inbox, and the sidebar says how the journal is doing."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from crm import journal, webhooks
from crm.hubspot.journal import entry_from_wire
from ui.columns import md_escape
from ui.live import status_lines


def test_an_event_without_ids_or_a_webhook_name_gets_a_stable_key_and_its_name_from_the_action():
    bare = {"action": "UPDATE", "objectTypeId": "0-2", "objectId": 8, "occurredAt": "2026-12-01T10:00:00Z"}
    first = journal.inbox_event(bare, offset="abc", index=3, portal_id=77)
    again = journal.inbox_event(bare, offset="abc", index=3, portal_id=77)
    other = journal.inbox_event(bare, offset="abc", index=4, portal_id=77)

    assert first["eventId"] == again["eventId"] != other["eventId"]  # a re-read entry is a duplicate
    assert (first["portalId"], first["subscriptionType"]) == (77, "company.propertyChange")
    assert first["occurredAt"] == int(datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp() * 1000)
    assert webhooks.plan_events([first]).reread == {"companies": {"8"}}


def test_an_entry_file_is_read_with_or_without_its_wrapper():
    wrapped = entry_from_wire({"offset": "o2", "publishedAt": "x", "journalEvents": [{"objectId": 1}]}, "o1")
    bare_list = entry_from_wire([{"objectId": 2}, "noise"], "o1")
    assert (wrapped.offset, [e["objectId"] for e in wrapped.events]) == ("o2", [1])
    assert (bare_list.offset, [e["objectId"] for e in bare_list.events]) == ("o1", [2])


def test_sidebar_lines_in_journal_mode_show_lag_last_event_and_an_open_gap():
    lines = status_lines(
        {
            "mode": "journal",
            "journal": {
                "polling": True,
                "lag_s": 3.0,
                "last_event": {"at": time.time() - 120, "what": "contact 12: propertyChange"},
                "gap": {"state": "closing", "text": "…"},
                "last_error": None,
            },
        }
    )
    what = md_escape("contact 12: propertyChange")  # shown literally, never as Markdown
    assert lines[0] == f"Live updates: journal, lag 3.0 s, last event {what} 2 minutes ago"
    assert "Closing a gap" in lines[1]


def test_sidebar_says_when_no_process_polls_the_journal_and_why_live_updates_are_off():
    idle = status_lines({"mode": "journal", "journal": {"polling": False, "lag_s": None}})
    assert idle == ["Live updates: journal, not polled yet (no process is polling)"]
    off = status_lines({"mode": "off", "why": "CRM_LIVE=off"})
    assert off == [f"Live updates: off ({md_escape('CRM_LIVE=off')})"]
