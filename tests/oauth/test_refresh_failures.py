"""A refresh that fails: only a dead refresh token wipes the tokens; anything else keeps them and retries."""

from __future__ import annotations

import dataclasses
import json
import socket

import httpx2
import pytest
from oauth_flow import connect

from crm import oauth, store
from crm.config import Settings
from crm.errors import CrmError, NeedsReconnect


def stored_kinds(settings: Settings) -> set[str]:
    with store.open(settings) as db:
        return set(db.auth.read_tokens())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answering(status: int, body: object) -> httpx2.MockTransport:
    """A token endpoint that answers every request with ``status`` and ``body``."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        if isinstance(body, str):
            return httpx2.Response(status, text=body)
        return httpx2.Response(
            status, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )

    return httpx2.MockTransport(handler)


@pytest.mark.parametrize("broken", ["wrong client secret", "token endpoint down"])
def test_a_failed_refresh_keeps_the_tokens_and_uses_the_current_access_token_meanwhile(
    settings: Settings, sandbox, broken: str
) -> None:
    sandbox.configure(token_ttl=240)  # under the 300 s leeway: every use wants a refresh
    connect(settings, sandbox)
    first = oauth.token_source(settings).access_token()  # a refresh that works
    if broken == "wrong client secret":  # the sandbox answers 400 invalid_client / BAD_CLIENT_SECRET
        misconfigured = dataclasses.replace(settings, client_secret="mistyped-secret")
    else:
        misconfigured = dataclasses.replace(settings, base_url=f"http://127.0.0.1:{closed_port()}")

    assert oauth.token_source(misconfigured).access_token() == first  # still alive, so still used
    info = oauth.connection_info(settings)
    assert info.status == "connected" and info.refresh_error
    assert stored_kinds(settings) == {"access", "refresh"}

    renewed = oauth.token_source(settings).access_token()  # the retry, with HubSpot answering again
    assert renewed != first
    assert oauth.connection_info(settings).refresh_error is None


@pytest.mark.parametrize(
    "status,body",
    [
        (401, "Unauthorized"),
        (
            401,
            {
                "error": "invalid_client",
                "status": "BAD_CLIENT_SECRET",
                "message": "missing or invalid client secret",
            },
        ),
        (400, {"error": "invalid_client", "status": "BAD_CLIENT_ID"}),
        (400, {"error": "invalid_request", "status": "BAD_REQUEST", "message": "missing parameter"}),
        (400, "<html>Bad Request</html>"),
        (502, {}),
    ],
)
def test_a_refusal_that_does_not_say_the_token_is_dead_keeps_the_tokens(
    settings: Settings, sandbox, status: int, body: object
) -> None:
    connect(settings, sandbox)
    source = oauth.token_source(settings, transport=answering(status, body))
    with pytest.raises(CrmError) as caught:
        source.refresh_after_401(source.access_token())
    assert not isinstance(caught.value, NeedsReconnect)

    info = oauth.connection_info(settings)
    assert info.status == "connected"
    assert info.refresh_error
    assert stored_kinds(settings) == {"access", "refresh"}
    # Later, with HubSpot answering normally, the same stored refresh token works.
    fresh = oauth.token_source(settings)
    assert fresh.refresh_after_401(fresh.access_token())
    assert oauth.connection_info(settings).refresh_error is None


@pytest.mark.parametrize(
    "body",
    [
        {"error": "invalid_grant", "status": "BAD_REFRESH_TOKEN", "message": "refresh token is invalid"},
        {"error": "invalid_grant", "error_description": "refresh token is invalid, expired or revoked"},
        {"status": "BAD_REFRESH_TOKEN", "message": "refresh token is invalid, expired or revoked"},
    ],
)
def test_a_dead_refresh_token_wipes_the_tokens_and_asks_for_a_reconnect(
    settings: Settings, sandbox, body: dict[str, str]
) -> None:
    connect(settings, sandbox)
    source = oauth.token_source(settings, transport=answering(400, body))
    with pytest.raises(NeedsReconnect):
        source.refresh_after_401(source.access_token())
    info = oauth.connection_info(settings)
    assert (info.status, info.reason, info.refresh_error) == ("needs_reconnect", "refresh_rejected", None)
    assert stored_kinds(settings) == set()
