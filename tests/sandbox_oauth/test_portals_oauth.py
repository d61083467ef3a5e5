"""OAuth with two portals (101, the default, and 202): the consent page picks the account.

The code, and the access and refresh tokens it buys, belong to the picked portal:
introspection reports its hub_id, refreshes stay in it and its CRM data is all they see.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator

import httpx2
import pytest
from playwright.sync_api import sync_playwright

from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS

A, B = 101, 202
REDIRECT = DEFAULT_REDIRECT_URIS[0]
CLIENT = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}
QUERY = {"client_id": DEFAULT_CLIENT_ID, "redirect_uri": REDIRECT, "scope": "crm.objects.contacts.read"}


@pytest.fixture
def http(two_portals: SandboxAdmin) -> Iterator[httpx2.Client]:
    with httpx2.Client(
        base_url=two_portals.url, follow_redirects=False, timeout=10, trust_env=False
    ) as client:
        yield client


def nonce_of(page: str) -> str:
    match = re.search(r'name="nonce" value="([^"]+)"', page)
    assert match, "the consent page has no nonce field"
    return match.group(1)


def offered_portals(page: str) -> list[int]:
    return [int(p) for p in re.findall(r'name="portal_id" value="(\d+)"', page)]


def approve(http: httpx2.Client, page: str, **form: str) -> httpx2.Response:
    return http.post(
        "/oauth/authorize/approve", data={"nonce": nonce_of(page), "decision": "approve", **form}
    )


def code_from(response: httpx2.Response) -> str:
    assert response.status_code == 303, response.text
    query = urllib.parse.urlsplit(response.headers["location"]).query
    return dict(urllib.parse.parse_qsl(query))["code"]


def exchange(http: httpx2.Client, code: str) -> dict:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **CLIENT}
    response = http.post("/oauth/v1/token", data=form)
    assert response.status_code == 200, response.text
    return response.json()


def portal_seen_by(http: httpx2.Client, access_token: str) -> int:
    response = http.get("/account-info/v3/details", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.text
    return int(response.json()["portalId"])


def test_the_consent_page_offers_every_portal_the_default_first(http):
    page = http.get("/oauth/authorize", params=QUERY).text

    assert offered_portals(page) == [A, B]
    assert "Choose an account" in page
    assert re.search(r'name="portal_id" value="101" checked', page)


def test_approving_for_the_second_portal_gives_tokens_of_that_portal(http, two_portals):
    page = http.get("/oauth/authorize", params=QUERY).text

    token = exchange(http, code_from(approve(http, page, portal_id=str(B))))

    assert token["hub_id"] == B
    assert portal_seen_by(http, token["access_token"]) == B
    assert http.get(f"/oauth/v1/access-tokens/{token['access_token']}").json()["hub_id"] == B
    assert http.get(f"/oauth/v1/refresh-tokens/{token['refresh_token']}").json()["hub_id"] == B
    introspected = http.post(
        "/oauth/2026-03/token/introspect", data={"token": token["access_token"], **CLIENT}
    )
    assert introspected.json()["active"] is True and introspected.json()["hub_id"] == B
    assert len(two_portals.tokens(portal_id=B)["tokens"]) == 2
    assert two_portals.tokens(portal_id=A)["tokens"] == []


def test_approving_without_a_pick_gives_the_default_portal(http):
    page = http.get("/oauth/authorize", params=QUERY).text

    token = exchange(
        http,
        code_from(
            http.post(
                "/oauth/authorize/approve",
                data={
                    "nonce": nonce_of(page),
                    "decision": "approve",
                },
            )
        ),
    )

    assert token["hub_id"] == A and portal_seen_by(http, token["access_token"]) == A


def test_a_portal_named_in_the_link_is_the_only_one_offered(http):
    page = http.get(f"/oauth/{B}/authorize", params=QUERY).text

    assert offered_portals(page) == [B]
    refused = approve(http, page, portal_id=str(A))
    assert refused.status_code == 400 and "location" not in refused.headers
    assert "different HubSpot account" in refused.text


@pytest.mark.parametrize("picked", ["303", "not-a-portal"])
def test_picking_a_portal_the_sandbox_does_not_serve_is_refused(http, picked):
    page = http.get("/oauth/authorize", params=QUERY).text

    refused = approve(http, page, portal_id=picked)

    assert refused.status_code == 400 and "location" not in refused.headers


def test_a_link_for_an_unknown_portal_shows_an_error_page(http):
    response = http.get("/oauth/303/authorize", params=QUERY)

    assert response.status_code == 400 and "different HubSpot account" in response.text


def test_refreshing_and_revoking_stay_in_the_tokens_portal(http):
    page = http.get("/oauth/authorize", params=QUERY).text
    token = exchange(http, code_from(approve(http, page, portal_id=str(B))))
    form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], **CLIENT}

    refreshed = http.post("/oauth/v1/token", data=form).json()
    assert refreshed["hub_id"] == B and portal_seen_by(http, refreshed["access_token"]) == B

    assert http.delete(f"/oauth/v1/refresh-tokens/{token['refresh_token']}").status_code == 204
    again = http.post("/oauth/v1/token", data=form)
    assert again.status_code == 400 and again.json()["status"] == "BAD_REFRESH_TOKEN"


def test_the_admin_code_shortcut_takes_a_portal(http, two_portals):
    code = two_portals.oauth_code(redirect_uri=REDIRECT, portal_id=B)["code"]

    token = exchange(http, code)

    assert token["hub_id"] == B and portal_seen_by(http, token["access_token"]) == B


@pytest.mark.e2e
def test_a_person_picks_the_second_account_in_the_browser(two_portals, receiver):
    callback = receiver.url.replace("/hooks", "/hubspot/callback").replace("127.0.0.1", "localhost")
    two_portals.configure(redirect_uris=[callback])
    url = f"{two_portals.url}/oauth/authorize?" + urllib.parse.urlencode({**QUERY, "redirect_uri": callback})

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url)
            page.get_by_label(re.compile(f"portal {B}")).check()
            page.get_by_role("button", name="Connect app").click()
            page.wait_for_url(f"{callback}?*", timeout=10_000)
            code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))["code"]
        finally:
            browser.close()

    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback, **CLIENT}
    with httpx2.Client(base_url=two_portals.url, trust_env=False, timeout=10) as http:
        token = http.post("/oauth/v1/token", data=form).json()
        assert token["hub_id"] == B and portal_seen_by(http, token["access_token"]) == B
