"""Stored tokens after connecting: refresh, rotation, dead tokens, disconnect, keys, logs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from oauth_flow import approve, connect, expire_all, query, start, stored_bytes, token_requests

from crm import oauth, store
from crm.config import Settings
from crm.errors import NeedsReconnect, NotConnected, OAuthFlowError
from crm.vault import Vault

REPO = Path(__file__).resolve().parents[2]


def sandbox_tokens(sandbox) -> list[str]:
    return [t["token"] for t in sandbox.tokens()["tokens"]]


def stored_refresh_token(settings: Settings) -> str:
    row = read_tokens(settings)["refresh"]
    return Vault(_keys(settings)).decrypt(row["ciphertext"], portal_id=row["portal_id"], kind="refresh")


def stored_verifier(settings: Settings, state: str) -> str:
    state_hash = hashlib.sha256(state.encode()).hexdigest()
    with store.open(settings) as db:
        row = db.conn.execute(
            "SELECT verifier FROM oauth_states WHERE state_hash = ?", (state_hash,)
        ).fetchone()
    return Vault(_keys(settings)).decrypt(row[0], portal_id=0, kind=f"pkce:{state_hash[:32]}")


def read_tokens(settings: Settings) -> dict:
    with store.open(settings) as db:
        return db.auth.read_tokens()


def _keys(settings: Settings) -> list[str]:
    from crm.vault import load_keys

    return load_keys(settings)


def test_token_is_refreshed_ahead_of_expiry(settings: Settings, sandbox):
    sandbox.configure(token_ttl=240)  # inside the 300 s refresh window from the start
    connect(settings, sandbox)
    first = next(t for t in sandbox.tokens()["tokens"] if t["kind"] == "access")
    token = oauth.token_source(settings).access_token()
    assert token != first["token"]
    refreshes = token_requests(sandbox, "refresh_token")
    assert len(refreshes) == 1 and refreshes[0]["query_params"] == []
    assert {"refresh_token", "client_secret"} <= set(refreshes[0]["body_params"])
    assert not next(t for t in sandbox.tokens()["tokens"] if t["token"] == first["token"])["expired"]


def test_a_401_triggers_one_refresh_and_the_call_succeeds(settings: Settings, sandbox):
    connect(settings, sandbox)
    with oauth.open_client(settings) as client:
        assert client.account_info()["portal_id"] == 62515
        expire_all(sandbox)
        assert client.account_info()["portal_id"] == 62515
    assert len(token_requests(sandbox, "refresh_token")) == 1


def test_ten_threads_needing_a_refresh_make_one_refresh_request(settings: Settings, sandbox):
    sandbox.configure(token_ttl=240)
    connect(settings, sandbox)
    sandbox.configure(token_ttl=1800)
    # A generous bound: on a loaded machine ten threads opening the cache take a while to
    # meet, and a broken barrier would fail the test for the machine's sake, not the code's.
    barrier = threading.Barrier(10, timeout=90)
    got: list[str] = []

    def worker() -> None:
        source = oauth.token_source(settings)
        barrier.wait()
        got.append(source.access_token())

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(got) == 10 and len(set(got)) == 1
    assert len(token_requests(sandbox, "refresh_token")) == 1


CHILD = r"""
import json, sys, threading
from crm import oauth
from crm.config import load_settings
env = {"CRM_DB": sys.argv[1], "HUBSPOT_REDIRECT_URI": sys.argv[3], "CRM_SECRET_KEY": sys.argv[4]}
settings = load_settings(env, {}).for_sandbox(sys.argv[2])
sources = [oauth.token_source(settings) for _ in range(10)]
go = threading.Event()
got = []
def worker(source):
    go.wait(30)
    got.append(source.access_token())
threads = [threading.Thread(target=worker, args=(s,)) for s in sources]
for t in threads:
    t.start()
print("ready", flush=True)
sys.stdin.readline()
go.set()
for t in threads:
    t.join(60)
print(json.dumps(got), flush=True)
"""


def test_two_processes_of_ten_threads_make_one_refresh_request(settings: Settings, sandbox):
    sandbox.configure(token_ttl=240)
    connect(settings, sandbox)
    sandbox.configure(token_ttl=1800)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                settings.db,
                sandbox.url,
                settings.redirect_uri,
                ",".join(settings.secret_keys),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [
            json.loads(child.communicate(timeout=60)[0].strip().splitlines()[-1]) for child in children
        ]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    tokens = [t for out in outputs for t in out]
    assert len(tokens) == 20 and len(set(tokens)) == 1
    assert len(token_requests(sandbox, "refresh_token")) == 1


def test_a_rotated_refresh_token_is_kept(settings: Settings, sandbox):
    sandbox.configure(token_ttl=240, rotate_refresh_tokens=True)
    connect(settings, sandbox)
    original = stored_refresh_token(settings)
    oauth.token_source(settings).access_token()
    rotated = stored_refresh_token(settings)
    assert rotated != original
    oauth.token_source(settings).access_token()  # a second refresh works only with the new one
    refreshes = token_requests(sandbox, "refresh_token")
    assert [r["status"] for r in refreshes] == [200, 200]
    live = [t["token"] for t in sandbox.tokens()["tokens"] if t["kind"] == "refresh" and not t["rotated"]]
    assert live == [stored_refresh_token(settings)]


def test_a_refused_refresh_token_means_needs_reconnect_and_no_more_retries(settings: Settings, sandbox):
    sandbox.configure(token_ttl=240)
    connect(settings, sandbox)
    import httpx2

    httpx2.post(
        sandbox.url + "/oauth/2026-03/token/revoke",
        data={
            "token": stored_refresh_token(settings),
            "token_type_hint": "refresh_token",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret,
        },
    )
    with pytest.raises(NeedsReconnect):
        oauth.token_source(settings).access_token()
    info = oauth.connection_info(settings)
    assert info.status == "needs_reconnect" and info.reason == "refresh_rejected"
    before = len(token_requests(sandbox))
    with pytest.raises(NeedsReconnect):
        oauth.token_source(settings)
    with pytest.raises(NeedsReconnect):
        oauth.open_client(settings)
    assert len(token_requests(sandbox)) == before
    assert read_tokens(settings) == {}


def test_disconnect_revokes_at_hubspot_then_wipes_local_tokens(settings: Settings, sandbox):
    connect(settings, sandbox)
    refresh = stored_refresh_token(settings)
    result = oauth.disconnect(settings)
    assert result.revoked
    revokes = [r for r in token_requests(sandbox) if r["path"].endswith("/revoke")]
    assert len(revokes) == 1 and revokes[0]["query_params"] == []
    assert {"token", "client_secret"} <= set(revokes[0]["body_params"])
    assert next(t for t in sandbox.tokens()["tokens"] if t["token"] == refresh)["revoked"]
    assert read_tokens(settings) == {}
    assert oauth.connection_info(settings).status == "disconnected"
    with pytest.raises(NotConnected):
        oauth.token_source(settings)


def test_disconnect_wipes_tokens_even_when_hubspot_cannot_be_reached(settings: Settings, sandbox):
    connect(settings, sandbox)
    offline = dataclasses.replace(settings, base_url="http://127.0.0.1:9", http_timeout=1.0)
    result = oauth.disconnect(offline)
    assert not result.revoked and "did not confirm" in result.detail
    assert read_tokens(settings) == {}
    assert oauth.connection_info(settings).status == "disconnected"


def test_the_stored_bytes_never_hold_a_token(settings: Settings, sandbox):
    sandbox.configure(token_ttl=240)
    # An open connection keeps the write-ahead log (the last one to close folds it into
    # the file), so the log's own bytes are checked too.
    with store.open(settings):
        url, nonce = start(dataclasses.replace(settings, pkce=True))
        code = approve(sandbox, url)
        oauth.complete_connect(settings, state=query(url)["state"], code=code, nonce=nonce)
        oauth.token_source(settings).access_token()  # a refresh writes again
        state = query(url)["state"]
        secrets = [
            *sandbox_tokens(sandbox),
            code,
            state,
            nonce,
            settings.client_secret,
            stored_verifier(settings, state),
        ]
        if not settings.db_is_postgresql:  # the log's own bytes are there to check
            assert Path(str(settings.db_path) + "-wal").exists()
        data = stored_bytes(settings)
    for secret in secrets:
        assert secret.encode() not in data


def test_key_rotation_keeps_working_and_moves_rows_to_the_new_key(settings: Settings, sandbox):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = dataclasses.replace(settings, secret_keys=(old,))
    connect(first, sandbox)
    both = dataclasses.replace(settings, secret_keys=(new, old))
    source = oauth.token_source(both)
    token = source.access_token()
    source.refresh_after_401(token)  # any write re-encrypts with the newest key
    only_new = dataclasses.replace(settings, secret_keys=(new,))
    assert oauth.connection_info(only_new).status == "connected"
    with oauth.open_client(only_new) as client:
        assert client.account_info()["portal_id"] == 62515


def test_a_wrong_key_fails_closed_and_the_right_key_restores_the_connection(settings: Settings, sandbox):
    right = Fernet.generate_key().decode()
    connect(dataclasses.replace(settings, secret_keys=(right,)), sandbox)
    wrong = dataclasses.replace(settings, secret_keys=(Fernet.generate_key().decode(),))
    info = oauth.connection_info(wrong)
    assert info.status == "needs_reconnect" and info.reason == "secret_key"
    with pytest.raises(NeedsReconnect):
        oauth.token_source(wrong)
    restored = oauth.connection_info(dataclasses.replace(settings, secret_keys=(right,)))
    assert restored.status == "connected"


def test_debug_logs_of_a_whole_flow_contain_no_secret(settings: Settings, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="crm")  # whatever CRM_LOG_LEVEL an app run in this process set
    sandbox.configure(token_ttl=240)
    pkce = dataclasses.replace(settings, pkce=True)
    url, nonce = oauth.start_connect(pkce, ticket=oauth.create_ticket(pkce, "ana@example.com"))
    code = approve(sandbox, url)
    state = query(url)["state"]
    oauth.complete_connect(pkce, state=state, code=code, nonce=nonce)
    with oauth.open_client(pkce) as client:
        client.list_page("contacts", properties=["email"])
        expire_all(sandbox)
        client.account_info()
    with pytest.raises(OAuthFlowError):
        oauth.complete_connect(pkce, state=state, code=code, nonce=nonce)
    oauth.disconnect(pkce)
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "crm.hubspot" in text and "crm.oauth" in text  # the logs are there and useful
    # No header, form field or query string that carries a credential, whatever its value.
    for marker in ("Bearer", "Authorization", "refresh_token=", "access_token=", "client_secret=", "code="):
        assert marker not in text
    for secret in [
        *sandbox_tokens(sandbox),
        code,
        state,
        nonce,
        settings.client_secret,
        stored_verifier(pkce, state),
    ]:
        assert secret not in text


def test_private_app_mode_learns_and_caches_the_portal(settings: Settings, sandbox, sandbox_token: str):
    private = dataclasses.replace(settings, mode="private_app", access_token=sandbox_token)
    info = oauth.connection_info(private)
    assert info.mode == "private_app" and info.status == "connected" and info.portal_id == 62515
    assert oauth.connection_info(private).portal_id == 62515
    assert sandbox.stats()["requests"]["GET /account-info/v3/details"] == 1  # cached after the first
    with oauth.open_client(private) as client:
        assert client.tokens.portal_key == "portal:62515"
    rejected = dataclasses.replace(private, access_token="pat-na1-wrong")
    assert oauth.connection_info(rejected).status == "needs_reconnect"
