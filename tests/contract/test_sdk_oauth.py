"""HubSpot's official Python SDK against the sandbox's OAuth endpoints (no monkeypatching).

The SDK still posts to ``/oauth/v1/token`` and introspects with the v1 GET/DELETE paths, so
these tests hold the sandbox to what a client nobody here wrote expects.
"""

from __future__ import annotations

import json
import re
import urllib.parse

import httpx2
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.deals import ApiException as DealsApiException
from hubspot.oauth import ApiException
from hubspot.utils.oauth import get_auth_url

from crm.sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS

REDIRECT = DEFAULT_REDIRECT_URIS[0]
SCOPES = ("crm.objects.contacts.read", "crm.objects.contacts.write")


@pytest.fixture
def api(sandbox, sandbox_url: str) -> HubSpot:
    return HubSpot(host=sandbox_url)


def code_from_consent_page(sandbox_url: str, state: str) -> str:
    """Walk the consent page as a browser would, starting from the SDK's own authorize URL."""
    sdk_url = get_auth_url(DEFAULT_CLIENT_ID, REDIRECT, scope=SCOPES, state=state)
    query = urllib.parse.urlsplit(sdk_url).query
    with httpx2.Client(base_url=sandbox_url, follow_redirects=False, trust_env=False) as browser:
        page = browser.get(f"/oauth/authorize?{query}")
        assert page.status_code == 200, page.text
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
        answer = browser.post("/oauth/authorize/approve", data={"nonce": nonce, "decision": "approve"})
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["location"]).query))
    assert params["state"] == state
    return params["code"]


def exchange(api: HubSpot, code: str, **changes: str):
    args = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        **changes,
    }
    return api.oauth.tokens_api.create(**args)


def refresh(api: HubSpot, refresh_token: str):
    return api.oauth.tokens_api.create(
        grant_type="refresh_token",
        refresh_token=refresh_token,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
    )


def test_sdk_exchanges_a_code_from_the_consent_page(api, sandbox_url):
    code = code_from_consent_page(sandbox_url, state="sdk-state")

    token = exchange(api, code)

    assert token.token_type == "bearer"
    assert token.expires_in == 1800
    assert token.refresh_token.startswith("na1-")
    assert len(token.access_token) > 100


def test_sdk_refresh_returns_a_new_access_token_and_keeps_the_refresh_token(api, sandbox):
    first = exchange(api, sandbox.oauth_code(redirect_uri=REDIRECT)["code"])

    second = refresh(api, first.refresh_token)

    assert second.access_token != first.access_token
    assert second.refresh_token == first.refresh_token
    assert second.expires_in == 1800
    refreshes = [r for r in sandbox.tokens()["requests"] if r["grant_type"] == "refresh_token"]
    assert [r["path"] for r in refreshes] == ["/oauth/v1/token"]
    assert "client_secret" in refreshes[0]["body_params"] and refreshes[0]["query_params"] == []


def test_sdk_sees_rotated_refresh_tokens(api, sandbox):
    sandbox.configure(rotate_refresh_tokens=True)
    first = exchange(api, sandbox.oauth_code(redirect_uri=REDIRECT)["code"])

    second = refresh(api, first.refresh_token)

    assert second.refresh_token != first.refresh_token
    with pytest.raises(ApiException) as info:
        refresh(api, first.refresh_token)
    assert info.value.status == 400
    assert json.loads(info.value.body)["status"] == "BAD_REFRESH_TOKEN"


def test_sdk_gets_hubspots_error_pair_for_a_reused_code(api, sandbox):
    code = sandbox.oauth_code(redirect_uri=REDIRECT)["code"]
    exchange(api, code)

    with pytest.raises(ApiException) as info:
        exchange(api, code)

    body = json.loads(info.value.body)
    assert info.value.status == 400
    assert (body["error"], body["status"]) == ("invalid_grant", "BAD_AUTH_CODE")
    assert body["message"] and body["error_description"]


def test_sdk_gets_invalid_client_for_a_wrong_secret(api, sandbox):
    with pytest.raises(ApiException) as info:
        exchange(api, sandbox.oauth_code(redirect_uri=REDIRECT)["code"], client_secret="wrong")

    body = json.loads(info.value.body)
    assert info.value.status == 400
    assert (body["error"], body["status"]) == ("invalid_client", "BAD_CLIENT_SECRET")


def test_sdk_introspects_an_access_token(api, sandbox):
    token = exchange(api, sandbox.oauth_code(redirect_uri=REDIRECT, scopes=list(SCOPES))["code"])

    info = api.oauth.access_tokens_api.get(token.access_token)

    assert info.token == token.access_token
    assert info.hub_id == 62515 and info.app_id == 54321 and info.user_id == 222222
    assert info.scopes == ["oauth", *SCOPES]
    assert 0 < info.expires_in <= 1800
    assert info.token_type == "access"


def test_sdk_introspects_and_revokes_a_refresh_token(api, sandbox):
    token = exchange(api, sandbox.oauth_code(redirect_uri=REDIRECT)["code"])

    info = api.oauth.refresh_tokens_api.get(token.refresh_token)
    api.oauth.refresh_tokens_api.archive(token.refresh_token)

    assert info.token == token.refresh_token and info.client_id == DEFAULT_CLIENT_ID
    assert info.hub_id == 62515 and info.user == "admin@sandbox-portal.example.com"
    with pytest.raises(ApiException) as failure:
        refresh(api, token.refresh_token)
    assert json.loads(failure.value.body)["status"] == "BAD_REFRESH_TOKEN"


def test_sdk_crm_call_with_an_expired_token_fails_401_then_works_after_refresh(sandbox, sandbox_url):
    oauth = HubSpot(host=sandbox_url)
    token = exchange(oauth, sandbox.oauth_code(redirect_uri=REDIRECT)["code"])
    with httpx2.Client(base_url=sandbox_url, trust_env=False) as admin:
        expired = admin.post("/_sandbox/tokens/expire", json={"token": token.access_token})
    assert expired.json() == {"expired": 1}

    with pytest.raises(ContactsApiException) as info:
        HubSpot(access_token=token.access_token, host=sandbox_url).crm.contacts.basic_api.get_page(limit=1)
    body = json.loads(info.value.body)
    assert info.value.status == 401
    assert body["category"] == "EXPIRED_AUTHENTICATION" and "expire time" in body["context"]

    fresh = refresh(oauth, token.refresh_token)
    page = HubSpot(access_token=fresh.access_token, host=sandbox_url).crm.contacts.basic_api.get_page(limit=1)
    assert len(page.results) == 1 and page.results[0].id


def test_sdk_crm_call_without_the_scope_fails_403_missing_scopes(sandbox, sandbox_url):
    token = sandbox.private_app_token(scopes=["crm.objects.contacts.read"])

    with pytest.raises(DealsApiException) as info:
        HubSpot(access_token=token, host=sandbox_url).crm.deals.basic_api.get_page(limit=1)

    body = json.loads(info.value.body)
    assert info.value.status == 403
    assert body["category"] == "MISSING_SCOPES"
    assert "crm.objects.deals.read" in body["errors"][0]["context"]["requiredGranularScopes"]
