"""Staff login: with [auth] configured only allowlisted, verified staff see anything at all."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from streamlit.runtime import context as streamlit_context
from uikit import PAGES, STAFF_LOGIN, Portal, make_portal, plain, texts

AUTH = STAFF_LOGIN
OUTSIDER = {"is_logged_in": True, "email": "eve@evil.example", "email_verified": True}
SIGNED_OUT = {"is_logged_in": False}


def _shows_no_data(at) -> None:
    assert not at.exception
    assert len(at.dataframe) == 0 and len(at.data_editor) == 0 and len(at.metric) == 0
    assert len(at.text_input) == 0 and len(at.selectbox) == 0
    assert "Contacts" not in [t.value for t in at.title]


@pytest.mark.parametrize("page", PAGES)
def test_signed_out_visitor_sees_only_the_sign_in_prompt_on_every_page(synced: Portal, page: str) -> None:
    at = synced.page(page, secrets=AUTH, user=SIGNED_OUT)
    at.run()
    _shows_no_data(at)
    assert [b.label for b in at.button] == ["Sign in"]


@pytest.mark.parametrize("page", PAGES)
def test_each_page_run_directly_is_stopped_by_the_guard(synced: Portal, page: str) -> None:
    # On a fresh server, legacy pages/ mode can serve a page file without app.py.
    for user in (SIGNED_OUT, OUTSIDER):
        at = synced.app(f"pages/{page}.py", secrets=AUTH)
        at.user = user
        at.run()
        _shows_no_data(at)
        assert not any(t.value == "Contacts" for t in at.title)


def test_signed_in_outsider_is_refused_with_a_reason(synced: Portal) -> None:
    at = synced.page("contacts", secrets=AUTH, user=OUTSIDER)
    at.run()
    _shows_no_data(at)
    assert "not allowed" in plain(at.error[0].value)
    assert [b.label for b in at.button] == ["Sign out"]


def test_unverified_email_is_refused_even_on_an_allowed_domain(synced: Portal) -> None:
    at = synced.page(
        "contacts",
        secrets=AUTH,
        user={"is_logged_in": True, "email": "bo@example.com", "email_verified": False},
    )
    at.run()
    _shows_no_data(at)
    assert "not verified" in plain(at.error[0].value)


def test_login_without_any_allowlist_lets_nobody_in(synced: Portal) -> None:
    at = synced.page(
        "contacts",
        secrets={"auth": AUTH["auth"]},
        user={"is_logged_in": True, "email": "ana@example.com", "email_verified": True},
    )
    at.run()
    _shows_no_data(at)
    assert "No staff allowlist" in plain(at.error[0].value)


def test_allowlisted_staff_edit_is_recorded_under_their_email(synced: Portal) -> None:
    at = synced.page(
        "contacts",
        secrets=AUTH,
        user={"is_logged_in": True, "email": "Bo@Example.com", "email_verified": True},
    )
    at.run()
    assert not at.exception
    assert "Signed in as bo@example.com" in texts(at)
    key = at.data_editor[0].key
    at.session_state[key] = {
        "edited_rows": {0: {"jobtitle": "Chief Tester"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception
    from crm import store

    db = store.open(synced.settings)
    try:
        queued = db.outbox.edits_frame(statuses=("pending",))
    finally:
        db.close()
    assert list(queued["new_value"]) == ["Chief Tester"]
    assert list(queued["created_by"]) == ["bo@example.com"]


def test_staff_who_are_not_admins_cannot_start_a_sync(synced: Portal) -> None:
    at = synced.page(
        "sync", secrets=AUTH, user={"is_logged_in": True, "email": "bo@example.com", "email_verified": True}
    )
    at.run()
    assert not at.exception
    assert at.button(key="sync_now").disabled
    assert "Only admins (CRM_ADMIN_EMAILS) can start a sync" in texts(at)

    at.user = {"is_logged_in": True, "email": "ana@example.com", "email_verified": True}
    at.run()
    assert not at.button(key="sync_now").disabled


def test_without_login_on_loopback_every_page_says_access_is_open(synced: Portal) -> None:
    at = synced.page("contacts")
    at.run()
    assert not at.exception
    assert "Access is open" in texts(at)
    assert len(at.data_editor) == 1


def test_without_login_off_loopback_the_dashboard_refuses_to_open(
    synced: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ui.access.server_is_loopback", lambda: False)
    at = synced.page("contacts")
    at.run()
    _shows_no_data(at)
    assert "CRM_OPEN_ACCESS" in plain(at.error[0].value)

    at = synced.page("contacts", secrets={"CRM_OPEN_ACCESS": "true"})
    at.run()
    assert len(at.data_editor) == 1


DIRECT = [("Host", "127.0.0.1:8501"), ("User-Agent", "test")]
THROUGH_PROXY = [
    [("Host", "127.0.0.1:8501"), ("X-Forwarded-For", "203.0.113.9")],
    [("Host", "localhost:8501"), ("Forwarded", "for=203.0.113.9;proto=https")],
    [("Host", "crm.example.com")],
]


def _handshake(monkeypatch: pytest.MonkeyPatch, headers: list[tuple[str, str]]) -> None:
    """The headers of the session's WebSocket handshake, as ``st.context.headers`` reads them.

    AppTest has no handshake, so this stands in for the one piece of the server it skips.
    """
    monkeypatch.setattr(
        streamlit_context, "_get_client_context", lambda: SimpleNamespace(headers=headers, cookies={})
    )


@pytest.mark.parametrize("page", PAGES)
def test_open_mode_through_a_proxy_shows_only_what_to_configure_on_every_page(
    synced: Portal, page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for headers in THROUGH_PROXY:
        _handshake(monkeypatch, headers)
        at = synced.page(page)
        at.run()
        _shows_no_data(at)
        refusal = plain(at.error[0].value)
        assert "[auth]" in refusal and "secrets.toml" in refusal and "CRM_OPEN_ACCESS=true" in refusal


def test_open_mode_serves_direct_loopback_requests_and_open_access_serves_proxied_ones(
    synced: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    _handshake(monkeypatch, DIRECT)
    at = synced.page("contacts")
    at.run()
    assert not at.exception and len(at.data_editor) == 1

    _handshake(monkeypatch, THROUGH_PROXY[0])
    at = synced.page("contacts", secrets={"CRM_OPEN_ACCESS": "true"})
    at.run()
    assert not at.exception and len(at.data_editor) == 1


def test_staff_login_through_a_proxy_still_asks_to_sign_in(synced: Portal, monkeypatch) -> None:
    _handshake(monkeypatch, THROUGH_PROXY[0])
    at = synced.page("contacts", secrets=AUTH, user=SIGNED_OUT)
    at.run()
    _shows_no_data(at)
    assert [b.label for b in at.button] == ["Sign in"]


@pytest.fixture
def portal(sandbox, tmp_path):
    """SQLite only: the guard decides before any storage is read (the page tests run on both backends)."""
    return make_portal(sandbox, str(tmp_path / "crm.db"))
