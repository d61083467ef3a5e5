"""What the UI learns about live updates: on or off and why, events, refusals."""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from crm import webhooks
from crm.config import Settings
from tests.webhooks.deliveries import body_of, event, make_settings, sign
from ui.live import status_lines


def test_private_app_without_a_client_secret_says_why_live_updates_are_off(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, HUBSPOT_ACCESS_TOKEN="pat-na1-x", HUBSPOT_CLIENT_ID="", HUBSPOT_CLIENT_SECRET=""
    )
    status = webhooks.live_status(settings)
    assert status["enabled"] is False
    assert "HUBSPOT_CLIENT_SECRET" in status["reason"]


def test_real_portal_without_a_webhook_url_says_to_set_it(tmp_path: Path) -> None:
    status = webhooks.live_status(make_settings(tmp_path, HUBSPOT_WEBHOOK_URL=""))
    assert status["enabled"] is False
    assert "HUBSPOT_WEBHOOK_URL" in status["reason"]


def test_configured_app_reports_events_and_refusals(offline_settings: Settings) -> None:
    body = body_of(event(1, 101), event(2, 102))
    webhooks.receive(offline_settings, method="POST", headers=sign(offline_settings, body), body=body)
    forged = sign(offline_settings, body, secret="wrong")
    for _ in range(3):
        try:
            webhooks.receive(offline_settings, method="POST", headers=forged, body=body)
        except webhooks.WebhookRejected:
            pass
    status = webhooks.live_status(offline_settings)
    assert status["enabled"] is True
    assert status["received"] == 2
    assert status["rejected"] == {"bad_signature": 3}
    assert time.time() - status["last_event_at"] < 60


def test_status_lines_show_last_event_and_refusals() -> None:
    lines = status_lines(
        {
            "enabled": True,
            "last_event_at": time.time() - 30,
            "pending": 0,
            "failed": 0,
            "rejected": {"bad_signature": 4},
        }
    )
    assert lines[0] == "Live updates: on, last event 30 seconds ago"
    assert "4 webhook requests refused (bad signature: 4)" in lines[1]


def test_status_lines_say_why_live_updates_are_off_without_markdown() -> None:
    lines = status_lines({"enabled": False, "reason": "HUBSPOT_WEBHOOK_URL is not set [x](http://e)"})
    assert len(lines) == 1
    assert lines[0].startswith("Live updates: off (HUBSPOT\\_WEBHOOK\\_URL is not set \\[x\\]\\(")


def test_status_lines_show_events_waiting_and_the_error() -> None:
    lines = status_lines(
        {
            "enabled": True,
            "last_event_at": None,
            "pending": 2,
            "failed": 1,
            "last_error": "Unreachable: HubSpot did not answer",
        }
    )
    assert lines[0] == "Live updates: on, no event received yet"
    assert lines[1].startswith("2 events waiting, 1 given up — Unreachable")
    assert lines[1].endswith("HubSpot did not answer")


def _sidebar_script(settings) -> None:  # type: ignore[no-untyped-def]  # runs as its own script
    from ui.live import live_updates

    live_updates(settings)


def test_sidebar_fragment_shows_the_live_line(offline_settings: Settings) -> None:
    at = AppTest.from_function(_sidebar_script, args=(offline_settings,), default_timeout=30).run()
    assert not at.exception
    assert [c.value for c in at.caption][0] == "Live updates: on, no event received yet"
