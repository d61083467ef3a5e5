"""POST /hubspot/webhook through Starlette's TestClient: what HubSpot gets back, what is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from starlette.testclient import TestClient

from crm import webhooks
from crm.config import Settings
from tests.webhooks.deliveries import (
    PUBLIC_URL,
    body_of,
    event,
    make_settings,
    now_ms,
    route_app,
    sign,
)


def status(settings: Settings) -> dict[str, Any]:
    return webhooks.live_status(settings)


def test_signed_delivery_is_accepted_and_its_events_kept(
    route_client: TestClient, offline_settings: Settings
) -> None:
    body = body_of(event(1, 101), event(2, 102, "contact.creation"))
    response = route_client.post("/hubspot/webhook", content=body, headers=sign(offline_settings, body))
    assert response.status_code == 204
    live = status(offline_settings)
    assert live["received"] == 2
    assert live["last_event_at"] is not None
    assert live["rejected"] == {}


def test_forged_signature_is_refused_counted_and_kept_out(
    route_client: TestClient, offline_settings: Settings
) -> None:
    body = body_of(event(1, 101))
    headers = sign(offline_settings, body, secret="guessed-secret")
    response = route_client.post("/hubspot/webhook", content=body, headers=headers)
    assert response.status_code == 401
    live = status(offline_settings)
    assert live["received"] == 0
    assert live["rejected"] == {"bad_signature": 1}


def test_replayed_delivery_with_an_old_timestamp_is_refused(
    route_client: TestClient, offline_settings: Settings
) -> None:
    body = body_of(event(1, 101))
    headers = sign(offline_settings, body, timestamp=now_ms() - 301_000)
    response = route_client.post("/hubspot/webhook", content=body, headers=headers)
    assert response.status_code == 401
    assert status(offline_settings)["rejected"] == {"stale_timestamp": 1}


def test_unsigned_request_is_refused(route_client: TestClient, offline_settings: Settings) -> None:
    response = route_client.post("/hubspot/webhook", content=body_of(event(1, 101)))
    assert response.status_code == 401
    assert status(offline_settings)["rejected"] == {"missing_headers": 1}


def test_same_batch_delivered_twice_is_kept_once(
    route_client: TestClient, offline_settings: Settings
) -> None:
    body = body_of(event(7, 101), event(8, 102))
    for _ in range(2):
        response = route_client.post("/hubspot/webhook", content=body, headers=sign(offline_settings, body))
        assert response.status_code == 204
    live = status(offline_settings)
    assert (live["received"], live["duplicates"]) == (2, 2)


def test_same_event_id_from_another_subscription_is_a_different_event(
    route_client: TestClient, offline_settings: Settings
) -> None:
    body = body_of(event(7, 101), event(7, 101, subscriptionId=26))
    route_client.post("/hubspot/webhook", content=body, headers=sign(offline_settings, body))
    assert status(offline_settings)["received"] == 2


def test_two_mebibyte_body_gets_413(route_client: TestClient, offline_settings: Settings) -> None:
    body = b"[" + b" " * (2 * 1024 * 1024) + b"]"
    response = route_client.post("/hubspot/webhook", content=body, headers=sign(offline_settings, body))
    assert response.status_code == 413
    live = status(offline_settings)
    assert live["rejected"] == {"too_large": 1}
    assert live["received"] == 0


def test_oversized_body_without_content_length_gets_413(
    route_client: TestClient, offline_settings: Settings
) -> None:
    def chunks() -> Any:
        for _ in range(32):
            yield b" " * 65536

    response = route_client.post(
        "/hubspot/webhook", content=chunks(), headers={"X-HubSpot-Signature-v3": "x"}
    )
    assert response.status_code == 413


def test_oversized_stream_is_not_read_past_the_cap(offline_settings: Settings) -> None:
    """Without a Content-Length, reading stops soon after 1 MiB instead of buffering it all."""
    chunk = b" " * 65536
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < 128}

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
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8501),
    }
    anyio.run(route_app(offline_settings), scope, receive, send)
    assert sent[0]["status"] == 413
    assert pulled <= 17  # 16 chunks are exactly 1 MiB; one more crosses the cap


def test_delivery_through_a_proxy_verifies_against_the_configured_public_url(tmp_path: Path) -> None:
    """The app sees http://10.0.0.7:8501/..., HubSpot signed https://crm.example.com/...?a=b:c."""
    public = "https://crm.example.com/hubspot/webhook?tenant=acme%3Aeu"
    settings = make_settings(tmp_path, HUBSPOT_WEBHOOK_URL=public)
    body = (
        b'[ {"eventId": 5,\n\t"subscriptionId": 25, "portalId": 62515, "objectId": 9,\r\n'
        b'  "subscriptionType": "deal.creation", "occurredAt": 1}  ]\n'
    )
    try:
        with TestClient(route_app(settings), base_url="http://10.0.0.7:8501") as client:
            proxied = client.post(
                "/hubspot/webhook?tenant=acme%3Aeu", content=body, headers=sign(settings, body)
            )
            assert proxied.status_code == 204
            internal = "http://10.0.0.7:8501/hubspot/webhook?tenant=acme%3Aeu"
            signed_for_internal = sign(settings, body, uri=internal)
            refused = client.post(
                "/hubspot/webhook?tenant=acme%3Aeu", content=body, headers=signed_for_internal
            )
            assert refused.status_code == 401
        assert status(settings)["received"] == 1
    finally:
        webhooks.stop_worker(settings)


def test_signed_body_that_is_not_an_event_array_gets_400(
    route_client: TestClient, offline_settings: Settings
) -> None:
    body = b'{"not": "events"'
    response = route_client.post("/hubspot/webhook", content=body, headers=sign(offline_settings, body))
    assert response.status_code == 400
    assert status(offline_settings)["rejected"] == {"malformed": 1}


def test_without_a_public_url_every_delivery_is_refused_and_counted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, HUBSPOT_WEBHOOK_URL="")
    body = body_of(event(1, 101))
    with TestClient(route_app(settings)) as client:
        response = client.post("/hubspot/webhook", content=body, headers=sign(settings, body, uri=PUBLIC_URL))
    assert response.status_code == 401
    live = status(settings)
    assert live["enabled"] is False
    assert "HUBSPOT_WEBHOOK_URL" in live["reason"]
    assert live["rejected"] == {"not_configured": 1}


def test_cache_that_cannot_be_opened_gets_503_so_hubspot_retries(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings = make_settings(tmp_path, CRM_DB=str(blocker / "crm.db"))
    body = body_of(event(1, 101))
    with TestClient(route_app(settings)) as client:
        response = client.post("/hubspot/webhook", content=body, headers=sign(settings, body))
    assert response.status_code == 503
