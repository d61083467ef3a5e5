"""Connecting again: the previous refresh token is revoked, and a portal switch never overlaps a sync or push."""

from __future__ import annotations

import threading

import pytest
from oauth_flow import approve, connect, query, start

from crm import connections, oauth, store
from crm.config import Settings
from crm.errors import OAuthFlowError
from crm.store import syncstate
from crm.store.meta import PORTAL_KEY
from crm.store.syncstate import SyncState
from crm.vault import Vault, load_keys

OLD_PORTAL = "999"


def stored_refresh_token(settings: Settings) -> str:
    with store.open(settings) as db:
        row = db.auth.read_tokens()["refresh"]
    return Vault(load_keys(settings)).decrypt(row["ciphertext"], portal_id=row["portal_id"], kind="refresh")


def revoked(sandbox, token: str) -> bool:
    return bool(next(t for t in sandbox.tokens()["tokens"] if t["token"] == token)["revoked"])


def cache_portal(settings: Settings) -> str | None:
    with store.open(settings) as db:
        return db.meta.get(PORTAL_KEY)


def hold_old_portal(settings: Settings, sandbox) -> None:
    """The sandbox portal's connection, its cache still holding another portal's records (the
    safety net inside one partition: connecting never clears another connection's cache)."""
    connections.add(settings, account_id=sandbox.portals()[0]["portalId"])
    with store.open(settings) as db:
        db.meta.claim_for_portal(int(OLD_PORTAL))


def start_sync(settings: Settings) -> tuple[int, str]:
    """A sync run holding the lease, as ``crm.sync.run_sync`` takes it."""
    owner = syncstate.new_owner()
    with store.open(settings) as db:
        run_id = db.syncstate.start_run(kind="full", trigger="test", started_by=None, owner=owner)
    assert run_id is not None
    return run_id, owner


def finish_sync(settings: Settings, run: tuple[int, str]) -> None:
    with store.open(settings) as db:
        db.syncstate.finish_run(run[0], run[1], state="succeeded")


def test_connecting_again_revokes_the_previous_refresh_token(settings: Settings, sandbox) -> None:
    connect(settings, sandbox)
    previous = stored_refresh_token(settings)
    connect(settings, sandbox)
    current = stored_refresh_token(settings)
    assert current != previous
    assert revoked(sandbox, previous)
    assert not revoked(sandbox, current)
    source = oauth.token_source(settings)
    assert source.refresh_after_401(source.access_token())  # the new connection refreshes fine


def test_a_portal_switch_during_a_sync_is_refused_and_leaves_the_old_cache_alone(
    settings: Settings, sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oauth.connect, "SWITCH_WAIT_S", 0.3)
    hold_old_portal(settings, sandbox)
    run = start_sync(settings)
    url, nonce = start(settings)
    with pytest.raises(OAuthFlowError) as caught:
        oauth.complete_connect(settings, state=query(url)["state"], code=approve(sandbox, url), nonce=nonce)
    assert caught.value.reason == "sync_running"
    assert cache_portal(settings) == OLD_PORTAL
    with store.open(settings) as db:
        assert db.auth.read_tokens() == {}
    refresh_tokens = [t for t in sandbox.tokens()["tokens"] if t["kind"] == "refresh"]
    assert refresh_tokens and all(t["revoked"] for t in refresh_tokens)  # the unused grant is not left live
    # The running sync still owns its lease: the refused switch took nothing from it.
    with store.open(settings) as db:
        assert db.syncstate.heartbeat(run[0], run[1], {})

    finish_sync(settings, run)
    info = connect(settings, sandbox)
    assert info.is_connected and cache_portal(settings) == str(info.portal_id)


def test_a_portal_switch_waits_for_a_push_to_finish_and_no_sync_starts_meanwhile(
    settings: Settings, sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold_old_portal(settings, sandbox)
    db = store.open(settings)
    pusher = syncstate.new_owner()
    assert db.syncstate.acquire_lease(syncstate.PUSH_LEASE, pusher)
    url, nonce = start(settings)
    code = approve(sandbox, url)

    def push_finishes() -> None:
        with store.open(settings) as other_db:
            other_db.syncstate.release_lease(syncstate.PUSH_LEASE, pusher)

    seen_during_switch: list[int | None] = []
    real_acquire = SyncState.acquire_lease

    def acquire(self, name: str, owner: str, **kw):  # type: ignore[no-untyped-def]
        taken = real_acquire(self, name, owner, **kw)
        if name == syncstate.PUSH_LEASE and not taken and not seen_during_switch:
            # The switch holds the sync lease and waits for the push: a sync cannot start now.
            other = syncstate.new_owner()
            with store.open(settings) as other_db:
                seen_during_switch.append(
                    other_db.syncstate.start_run(kind="full", trigger="t", started_by=None, owner=other)
                )
            threading.Timer(0.2, push_finishes).start()
        return taken

    monkeypatch.setattr(SyncState, "acquire_lease", acquire)
    info = oauth.complete_connect(settings, state=query(url)["state"], code=code, nonce=nonce)
    assert info.is_connected
    assert seen_during_switch == [None]
    assert cache_portal(settings) == str(info.portal_id)
    # Both leases are free again once the switch is done.
    assert db.syncstate.lease_holder(syncstate.SYNC_LEASE) is None
    assert db.syncstate.lease_holder(syncstate.PUSH_LEASE) is None
    db.close()
