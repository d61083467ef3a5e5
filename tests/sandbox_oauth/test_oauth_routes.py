"""The sandbox's OAuth over loopback HTTP: consent page, token endpoints, introspection, revocation,
the 401/403 answers of CRM routes, and the admin token routes."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator

import httpx2
import pytest

from crm.sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS
from crm.sandbox.oauth.models import pkce_s256

REDIRECT = DEFAULT_REDIRECT_URIS[0]
CLIENT = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}
CONTACTS = "/crm/v3/objects/contacts"
TOKEN_PATH = "/oauth/2026-03/token"
TOKEN_PATHS = ["/oauth/v1/token", "/oauth/v3/token", "/oauth/2026-03/token", "/oauth/2026-09/token"]
OAUTH_ERROR_KEYS = {"error", "error_description", "status", "message"}


@pytest.fixture
def http(sandbox, sandbox_url: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=sandbox_url, follow_redirects=False, timeout=10, trust_env=False) as client:
        yield client


def authorize_query(**changes: str) -> dict[str, str]:
    query = {
        "client_id": DEFAULT_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "crm.objects.contacts.read crm.objects.deals.read",
        "state": "state-123",
    }
    query.update(changes)
    return query


def consent_nonce(page: str) -> str:
    match = re.search(r'name="nonce" value="([^"]+)"', page)
    assert match, "the consent page has no nonce field"
    return match.group(1)


def redirect_params(response: httpx2.Response) -> tuple[str, dict[str, str]]:
    location = response.headers["location"]
    base, _, query = location.partition("?")
    return base, dict(urllib.parse.parse_qsl(query))


def new_code(sandbox, **options) -> str:
    return sandbox.oauth_code(redirect_uri=REDIRECT, **options)["code"]


def code_grant(auth_code: str, **changes: str) -> dict[str, str]:
    grant = {"grant_type": "authorization_code", "code": auth_code, "redirect_uri": REDIRECT, **CLIENT}
    return {**grant, **changes}


def exchange(http: httpx2.Client, auth_code: str, path: str = TOKEN_PATH, **changes: str) -> httpx2.Response:
    form = code_grant(auth_code, **changes)
    return http.post(path, data=form)


def refresh(http: httpx2.Client, refresh_token: str, path: str = TOKEN_PATH) -> httpx2.Response:
    return http.post(path, data={"grant_type": "refresh_token", "refresh_token": refresh_token, **CLIENT})


def tokens_for(sandbox, http: httpx2.Client, **options) -> dict:
    response = exchange(http, new_code(sandbox, **options))
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- consent page --------------------------------------------------------------------------


def test_consent_page_shows_app_portal_scopes_and_connect_button(http):
    response = http.get("/oauth/authorize", params=authorize_query())

    page = response.text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "CRM Dashboard (sandbox)" in page
    assert "62515" in page
    assert "crm.objects.contacts.read" in page and "crm.objects.deals.read" in page
    assert re.search(r"<button[^>]*>Connect app</button>", page)
    assert re.search(r"<button[^>]*>Cancel</button>", page)
    assert response.headers["x-frame-options"] == "DENY"


def test_consent_page_escapes_what_the_url_asks_for(http):
    hostile = "crm.objects.contacts.read <script>alert(1)</script> <img/src=x/onerror=alert(1)>"

    query = authorize_query(scope=hostile, state='"><script>x()</script>')

    page = http.get("/oauth/authorize", params=query).text

    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize(
    "changes",
    [
        {"client_id": "not-our-app"},
        {"redirect_uri": "https://evil.example/steal"},
        {"redirect_uri": REDIRECT + "?extra=1"},
        {"scope": ""},
    ],
)
def test_bad_authorize_requests_get_an_error_page_not_a_redirect(http, changes):
    response = http.get("/oauth/authorize", params=authorize_query(**changes))

    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "Connect app" not in response.text


def test_connect_app_redirects_with_a_code_that_exchanges_once(http):
    nonce = consent_nonce(http.get("/oauth/authorize", params=authorize_query()).text)

    response = http.post("/oauth/authorize/approve", data={"nonce": nonce, "decision": "approve"})

    base, params = redirect_params(response)
    assert response.status_code in (302, 303)
    assert base == REDIRECT
    assert params["state"] == "state-123"
    token = exchange(http, params["code"])
    assert token.status_code == 200
    assert token.json()["scopes"] == ["oauth", "crm.objects.contacts.read", "crm.objects.deals.read"]
    again = exchange(http, params["code"])
    assert again.status_code == 400 and again.json()["status"] == "BAD_AUTH_CODE"


def test_cancel_redirects_with_access_denied_and_the_state(http):
    nonce = consent_nonce(http.get("/oauth/authorize", params=authorize_query()).text)

    response = http.post("/oauth/authorize/approve", data={"nonce": nonce, "decision": "cancel"})

    base, params = redirect_params(response)
    assert base == REDIRECT
    assert params["error"] == "access_denied"
    assert params["state"] == "state-123"
    assert "code" not in params


def test_a_consent_form_answers_only_once(http):
    nonce = consent_nonce(http.get("/oauth/authorize", params=authorize_query()).text)
    http.post("/oauth/authorize/approve", data={"nonce": nonce, "decision": "approve"})

    replay = http.post("/oauth/authorize/approve", data={"nonce": nonce, "decision": "approve"})

    assert replay.status_code == 400 and "location" not in replay.headers


def test_approving_without_the_pages_nonce_is_refused(http):
    forged = http.post("/oauth/authorize/approve", data={"nonce": "guessed", "decision": "approve"})

    assert forged.status_code == 400 and "location" not in forged.headers


def test_redirect_keeps_the_state_byte_for_byte(http):
    state = "a b&c=d/é"
    nonce = consent_nonce(http.get("/oauth/authorize", params=authorize_query(state=state)).text)

    response = http.post("/oauth/authorize/approve", data={"nonce": nonce, "decision": "approve"})

    assert redirect_params(response)[1]["state"] == state


# --- token endpoints -----------------------------------------------------------------------


@pytest.mark.parametrize("path", TOKEN_PATHS)
def test_every_token_path_exchanges_a_code(sandbox, http, path):
    response = exchange(http, new_code(sandbox), path=path)

    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "bearer" and body["token_use"] == "access_token"
    assert body["expires_in"] == 1800 and body["hub_id"] == 62515
    assert body["refresh_token"].startswith("na1-")
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({"client_id": "nope"}, "BAD_CLIENT_ID", "invalid_client"),
        ({"client_secret": "nope"}, "BAD_CLIENT_SECRET", "invalid_client"),
        ({"redirect_uri": DEFAULT_REDIRECT_URIS[1]}, "BAD_REDIRECT_URI", "invalid_grant"),
        ({"code": "00000000-0000-4000-8000-000000000000"}, "BAD_AUTH_CODE", "invalid_grant"),
    ],
)
def test_token_errors_speak_hubspots_oauth_dialect(sandbox, http, changes, status, error):
    response = exchange(http, new_code(sandbox), **changes)

    body = response.json()
    assert response.status_code == 400
    assert set(body) == OAUTH_ERROR_KEYS
    assert (body["status"], body["error"]) == (status, error)


def test_v1_reads_parameters_from_the_query_string(sandbox, http):
    response = http.post("/oauth/v1/token", params=code_grant(new_code(sandbox)))

    assert response.status_code == 200


def test_later_versions_ignore_the_query_string(sandbox, http):
    response = http.post(TOKEN_PATH, params=code_grant(new_code(sandbox)))

    assert response.status_code == 400


def test_a_json_body_is_not_a_token_request(sandbox, http):
    response = http.post(TOKEN_PATH, json=code_grant(new_code(sandbox)))

    assert response.status_code == 400 and set(response.json()) == OAUTH_ERROR_KEYS


def test_refresh_returns_the_same_refresh_token_and_a_working_access_token(sandbox, http):
    first = tokens_for(sandbox, http)

    second = refresh(http, first["refresh_token"]).json()

    assert second["refresh_token"] == first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert http.get(CONTACTS, headers=bearer(second["access_token"])).status_code == 200


def test_rotation_retires_the_old_refresh_token(sandbox, http):
    sandbox.configure(rotate_refresh_tokens=True)
    first = tokens_for(sandbox, http)

    second = refresh(http, first["refresh_token"]).json()
    stale = refresh(http, first["refresh_token"])

    assert second["refresh_token"] != first["refresh_token"]
    assert stale.status_code == 400 and stale.json()["status"] == "BAD_REFRESH_TOKEN"


def test_token_requests_are_recorded_with_where_each_parameter_arrived(sandbox, http):
    first = tokens_for(sandbox, http)
    refresh(http, first["refresh_token"])
    refresh(http, first["refresh_token"])
    in_query = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], **CLIENT}
    http.post("/oauth/v1/token", params=in_query)

    requests = sandbox.tokens()["requests"]

    refreshes = [r for r in requests if r["grant_type"] == "refresh_token"]
    assert len(refreshes) == 3
    assert [r["path"] for r in refreshes] == ["/oauth/2026-03/token"] * 2 + ["/oauth/v1/token"]
    assert "client_secret" in refreshes[0]["body_params"] and refreshes[0]["query_params"] == []
    assert "client_secret" in refreshes[2]["query_params"]
    assert all(first["refresh_token"] not in str(r) and DEFAULT_CLIENT_SECRET not in str(r) for r in requests)


def test_pkce_code_needs_its_verifier_at_the_token_endpoint(sandbox, http):
    verifier = "v" * 64
    code = new_code(sandbox, code_challenge=pkce_s256(verifier), code_challenge_method="S256")

    without = exchange(http, code)
    with_verifier = exchange(http, code, code_verifier=verifier)

    assert without.status_code == 400 and without.json()["error"] == "invalid_grant"
    assert with_verifier.status_code == 200


def test_expired_code_is_refused(sandbox, http):
    sandbox.configure(code_ttl=0)

    response = exchange(http, new_code(sandbox))

    assert response.status_code == 400 and response.json()["status"] == "BAD_AUTH_CODE"


# --- introspection and revocation ----------------------------------------------------------


def test_v1_introspection_describes_live_tokens(sandbox, http):
    token = tokens_for(sandbox, http)

    access = http.get(f"/oauth/v1/access-tokens/{token['access_token']}").json()
    refresh_info = http.get(f"/oauth/v1/refresh-tokens/{token['refresh_token']}").json()

    assert access["token"] == token["access_token"] and access["hub_id"] == 62515
    assert access["token_type"] == "access" and 0 < access["expires_in"] <= 1800
    assert access["scopes"] == token["scopes"] and access["app_id"] == 54321
    assert refresh_info["token"] == token["refresh_token"] and refresh_info["client_id"] == DEFAULT_CLIENT_ID


@pytest.mark.parametrize("field", ["token", "access_token"])
def test_post_introspection_accepts_the_token_under_either_name(sandbox, http, field):
    token = tokens_for(sandbox, http)

    body = http.post("/oauth/2026-03/token/introspect", data={field: token["access_token"], **CLIENT}).json()

    assert body["active"] is True and body["token_use"] == "access_token"
    assert body["client_id"] == DEFAULT_CLIENT_ID and body["hub_id"] == 62515


def test_post_introspection_of_a_refresh_token(sandbox, http):
    token = tokens_for(sandbox, http)

    form = {"refresh_token": token["refresh_token"], **CLIENT}

    body = http.post("/oauth/2026-03/token/introspect", data=form).json()

    assert body["active"] is True and body["token_use"] == "refresh_token"


def test_expired_and_unknown_tokens_introspect_as_inactive(sandbox, http):
    token = tokens_for(sandbox, http)
    http.post("/_sandbox/tokens/expire", json={"token": token["access_token"]})

    expired = http.post("/oauth/2026-03/token/introspect", data={"token": token["access_token"], **CLIENT})
    unknown = http.get("/oauth/v1/access-tokens/CAnunknowntoken")

    assert (expired.status_code, expired.json()) == (200, {"active": False})
    assert (unknown.status_code, unknown.json()) == (200, {"active": False})


def test_revoked_refresh_token_stops_refreshing_but_access_token_still_works(sandbox, http):
    token = tokens_for(sandbox, http)

    revoked = http.post("/oauth/2026-03/token/revoke", data={"token": token["refresh_token"], **CLIENT})

    assert revoked.status_code == 204 and revoked.content == b""
    assert refresh(http, token["refresh_token"]).json()["status"] == "BAD_REFRESH_TOKEN"
    assert http.get(CONTACTS, headers=bearer(token["access_token"])).status_code == 200


def test_v1_delete_revokes_a_refresh_token(sandbox, http):
    token = tokens_for(sandbox, http)

    response = http.delete(f"/oauth/v1/refresh-tokens/{token['refresh_token']}")

    assert response.status_code == 204
    assert http.get(f"/oauth/v1/refresh-tokens/{token['refresh_token']}").json() == {"active": False}


def test_introspection_with_the_wrong_secret_is_refused(sandbox, http):
    token = tokens_for(sandbox, http)

    response = http.post(
        "/oauth/2026-03/token/introspect",
        data={"token": token["access_token"], "client_id": DEFAULT_CLIENT_ID, "client_secret": "wrong"},
    )

    assert response.status_code == 400 and response.json()["status"] == "BAD_CLIENT_SECRET"


# --- what CRM routes answer ----------------------------------------------------------------


def test_expired_token_gets_401_expired_authentication_with_the_expire_time(sandbox, http):
    token = tokens_for(sandbox, http)
    assert http.post("/_sandbox/tokens/expire", json={"all": True}).json() == {"expired": 1}

    response = http.get(CONTACTS, headers=bearer(token["access_token"]))

    body = response.json()
    assert response.status_code == 401
    assert body["category"] == "EXPIRED_AUTHENTICATION"
    expected = r"The OAuth token used to make this call expired \d+ second\(s\) ago\."
    assert re.fullmatch(expected, body["message"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["context"]["expire time"][0])


def test_refreshing_after_expiry_gives_a_working_token(sandbox, http):
    token = tokens_for(sandbox, http)
    http.post("/_sandbox/tokens/expire", json={"all": True})

    fresh = refresh(http, token["refresh_token"]).json()

    assert http.get(CONTACTS, headers=bearer(fresh["access_token"])).status_code == 200


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}]
)
def test_missing_or_unknown_token_gets_401_invalid_authentication(http, headers):
    response = http.get(CONTACTS, headers=headers)

    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"


def test_token_without_the_scope_gets_403_missing_scopes(sandbox, http):
    token = sandbox.private_app_token(scopes=["crm.objects.deals.read"])

    response = http.get(CONTACTS, headers=bearer(token))

    body = response.json()
    assert response.status_code == 403
    assert body["category"] == "MISSING_SCOPES"
    assert "crm.objects.contacts.read" in body["errors"][0]["context"]["requiredGranularScopes"]


def test_oauth_token_limited_to_deals_cannot_read_contacts(sandbox, http):
    token = tokens_for(sandbox, http, scopes=["crm.objects.deals.read"])

    assert http.get(CONTACTS, headers=bearer(token["access_token"])).status_code == 403


# --- admin routes --------------------------------------------------------------------------


def test_private_app_token_carries_every_scope_by_default(http):
    body = http.post("/_sandbox/private-app-token").json()

    assert body["token"].startswith("pat-na1-")
    assert "crm.objects.contacts.write" in body["scopes"] and "crm.objects.deals.read" in body["scopes"]
    assert http.get(CONTACTS, headers=bearer(body["token"])).status_code == 200


def test_admin_code_refuses_an_unregistered_redirect(http):
    response = http.post("/_sandbox/oauth/code", json={"redirect_uri": "https://evil.example/cb"})

    assert response.status_code == 400


def test_admin_code_returns_where_the_browser_would_go(http):
    body = http.post("/_sandbox/oauth/code", json={"redirect_uri": REDIRECT, "state": "s1"}).json()

    assert body["location"] == f"{REDIRECT}?code={body['code']}&state=s1"


def test_expire_needs_a_token_or_all(http):
    assert http.post("/_sandbox/tokens/expire", json={}).status_code == 400
    assert http.post("/_sandbox/tokens/expire", json={"token": "CAnunknown"}).status_code == 404


def test_tokens_listing_shows_what_was_issued(sandbox, http):
    token = tokens_for(sandbox, http)
    private = sandbox.private_app_token()

    listing = {t["token"]: t for t in sandbox.tokens()["tokens"]}

    assert listing[token["access_token"]]["kind"] == "access"
    assert listing[token["refresh_token"]]["kind"] == "refresh"
    assert listing[private]["kind"] == "private_app" and listing[private]["expires_at"] is None
