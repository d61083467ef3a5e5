"""What a stranger (or a broken sender) gets from /hubspot/webhook: short refusals, no 5xx, no traceback,
no database write, and a log that does not grow with the flood."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from crm import store, webhooks
from crm.config import Settings
from tests.webhooks.deliveries import body_of, event, make_settings, now_ms, route_app, sign


def refused_reasons(settings: Settings) -> dict[str, int]:
    return webhooks.refusals(settings).counts()


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info]


def test_five_thousand_digit_timestamp_is_refused_with_401_and_no_traceback(
    route_client: TestClient, offline_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    body = body_of(event(1, 101))
    headers = sign(offline_settings, body)
    headers["X-HubSpot-Request-Timestamp"] = "9" * 5000
    with caplog.at_level(logging.WARNING):
        response = route_client.post("/hubspot/webhook", content=body, headers=headers)
    assert response.status_code == 401
    assert refused_reasons(offline_settings) == {"bad_timestamp": 1}
    assert tracebacks(caplog) == []
    refusal_lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusal_lines) == 1 and len(refusal_lines[0].getMessage()) < 400


@pytest.mark.parametrize(
    "field,value",
    [
        ("portalId", 2**70),
        ("portalId", -5),
        ("portalId", "62515x"),
        ("portalId", 1.5),
        ("portalId", True),
        ("portalId", "9" * 5000),
        ("eventId", 2**64),
        ("subscriptionId", 2**63),
        ("objectId", 2**80),
        ("objectId", "1" * 5000),
    ],
)
def test_signed_batch_with_an_absurd_id_gets_400_and_stores_nothing(
    route_client: TestClient,
    offline_settings: Settings,
    caplog: pytest.LogCaptureFixture,
    field: str,
    value: Any,
) -> None:
    body = body_of(event(1, 101), event(2, 102, **{field: value}))
    with caplog.at_level(logging.WARNING):
        response = route_client.post("/hubspot/webhook", content=body, headers=sign(offline_settings, body))
    assert response.status_code == 400
    assert refused_reasons(offline_settings) == {"malformed": 1}
    assert webhooks.live_status(offline_settings)["received"] == 0
    assert tracebacks(caplog) == []


def test_an_occurred_at_beyond_sqlite_integers_is_accepted_without_its_ordering_value(
    route_client: TestClient, offline_settings: Settings
) -> None:
    body = body_of(event(1, 101, occurredAt=2**70), event(2, 102, occurredAt=True))
    response = route_client.post("/hubspot/webhook", content=body, headers=sign(offline_settings, body))
    assert response.status_code == 204
    with store.open(offline_settings) as db:
        rows = db.conn.execute("SELECT event_id, occurred_at FROM webhook_inbox ORDER BY event_id").fetchall()
    assert [tuple(row) for row in rows] == [(1, None), (2, None)]


def test_signed_body_of_a_million_nested_brackets_gets_400(
    route_client: TestClient, offline_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"[" * 500_000
    with caplog.at_level(logging.WARNING):
        response = route_client.post("/hubspot/webhook", content=body, headers=sign(offline_settings, body))
    assert response.status_code == 400
    assert refused_reasons(offline_settings) == {"malformed": 1}
    assert tracebacks(caplog) == []


def test_a_five_thousand_digit_content_length_gets_413(offline_settings: Settings) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"[]", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/hubspot/webhook",
        "raw_path": b"/hubspot/webhook",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", b"7" * 5000)],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8501),
    }
    anyio.run(route_app(offline_settings), scope, receive, send)
    assert sent[0]["status"] == 413
    assert refused_reasons(offline_settings) == {"too_large": 1}


def test_every_401_has_the_same_body_whatever_is_configured_or_failed(tmp_path: Path) -> None:
    configured = make_settings(tmp_path / "a")
    no_url = make_settings(tmp_path / "b", HUBSPOT_WEBHOOK_URL="")
    no_secret = make_settings(
        tmp_path / "c", HUBSPOT_CLIENT_SECRET="", HUBSPOT_ACCESS_TOKEN="pat-na1-x", HUBSPOT_CLIENT_ID=""
    )
    body = body_of(event(1, 101))
    answers = []
    for settings, headers in [
        (configured, sign(configured, body, secret="guessed")),
        (configured, sign(configured, body, timestamp=now_ms() - 400_000)),
        (configured, {}),
        (no_url, sign(configured, body)),
        (no_secret, sign(configured, body)),
    ]:
        with TestClient(route_app(settings)) as client:
            response = client.post("/hubspot/webhook", content=body, headers=headers)
        answers.append((response.status_code, response.text))
    assert answers == [(401, "Unauthorized")] * 5
    assert refused_reasons(no_url) == {"not_configured": 1}


def test_a_flood_of_forged_requests_never_touches_the_database(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    body = body_of(event(1, 101))
    forged = sign(settings, body, secret="guessed")
    with TestClient(route_app(settings)) as client:
        for _ in range(50):
            assert client.post("/hubspot/webhook", content=body, headers=forged).status_code == 401
    assert not Path(settings.db_path).exists()
    assert webhooks.live_status(settings)["rejected"] == {"bad_signature": 50}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "crm.webhooks"]


def test_refusals_are_logged_at_most_once_a_minute_with_their_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    counter = webhooks.Refusals(clock=clock)
    with caplog.at_level(logging.WARNING, logger="crm.webhooks"):
        counter.add("bad_signature", "The request signature does not match.")
        for _ in range(99):
            clock.now += 0.5
            counter.add("bad_signature")
        assert len(refusal_lines(caplog)) == 1
        assert refusal_lines(caplog)[0].startswith("1 webhook request refused (bad_signature: 1)")
        clock.now += 11  # a minute after the first line
        counter.add("stale_timestamp")
    lines = refusal_lines(caplog)
    assert len(lines) == 2
    assert lines[1].startswith("100 webhook requests refused (bad_signature: 99, stale_timestamp: 1)")
    assert counter.counts() == {"bad_signature": 100, "stale_timestamp": 1}


def test_refusals_left_unlogged_are_summarised_by_the_next_status_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    settings = make_settings(tmp_path)
    monkeypatch.setitem(webhooks._refusals, settings.db_key, webhooks.Refusals(clock=clock))
    with caplog.at_level(logging.WARNING, logger="crm.webhooks"):
        for _ in range(3):
            webhooks.record_rejection(settings, "missing_headers")
        webhooks.live_status(settings)
        assert len(refusal_lines(caplog)) == 1
        clock.now += 60
        webhooks.live_status(settings)
        webhooks.live_status(settings)
    lines = refusal_lines(caplog)
    assert len(lines) == 2 and lines[1].startswith("2 webhook requests refused (missing_headers: 2)")


def test_an_overlong_numeric_object_id_is_never_planned_for_a_read() -> None:
    plan = webhooks.plan_events(
        [
            {"subscriptionType": "contact.creation", "objectId": "9" * 5000},
            {"subscriptionType": "contact.propertyChange", "objectId": 2**64},
            {"subscriptionType": "contact.propertyChange", "objectId": "42"},
        ]
    )
    assert plan.reread == {"contacts": {"42"}}
