"""OAuth over loopback: consent page, code with state, Basic-auth token endpoint, api_domain, refresh."""

from __future__ import annotations

import base64
import re
import urllib.parse

import httpx2

from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sandbox.pipedrive.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

REDIRECT = "http://127.0.0.1:8501/pipedrive/callback"
BASIC = "Basic " + base64.b64encode(f"{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}".encode()).decode()


def consent(client: httpx2.Client, decision: str, state: str = "xyz") -> httpx2.Response:
    page = client.get("/oauth/authorize", params={"client_id": DEFAULT_CLIENT_ID, "redirect_uri": REDIRECT,
                                                  "state": state})  # fmt: skip
    assert page.status_code == 200 and "Allow and install" in page.text
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    return client.post("/oauth/authorize/decision", data={"nonce": nonce.group(1), "decision": decision})


def redirect_params(response: httpx2.Response) -> dict[str, str]:
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def exchange(client: httpx2.Client, code: str) -> httpx2.Response:
    return client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
                       headers={"Authorization": BASIC})  # fmt: skip


def test_allow_redirects_with_code_and_state_and_the_token_works(pipedrive: PipedriveAdmin) -> None:
    with httpx2.Client(base_url=pipedrive.url, trust_env=False) as client:
        params = redirect_params(consent(client, "allow"))
        assert params["state"] == "xyz"
        token = exchange(client, params["code"]).json()
        assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
        assert token["api_domain"] == pipedrive.url and token["refresh_token"]
        persons = client.get(token["api_domain"] + "/api/v2/persons",
                             headers={"Authorization": f"Bearer {token['access_token']}"})  # fmt: skip
        assert persons.status_code == 200 and persons.headers["x-ratelimit-limit"] == "320"


def test_cancel_redirects_with_access_denied(pipedrive: PipedriveAdmin) -> None:
    with httpx2.Client(base_url=pipedrive.url, trust_env=False) as client:
        assert redirect_params(consent(client, "cancel")) == {"error": "access_denied", "state": "xyz"}


def test_an_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(pipedrive: PipedriveAdmin) -> None:
    with httpx2.Client(base_url=pipedrive.url, trust_env=False) as client:
        page = client.get("/oauth/authorize", params={"client_id": DEFAULT_CLIENT_ID,
                                                      "redirect_uri": "http://evil.example/cb"})  # fmt: skip
        assert page.status_code == 400 and "redirect_uri is invalid" in page.text


def test_a_hostile_state_comes_back_unchanged_in_the_redirect(pipedrive: PipedriveAdmin) -> None:
    with httpx2.Client(base_url=pipedrive.url, trust_env=False) as client:
        params = redirect_params(consent(client, "allow", state='"><script>alert(1)</script>'))
        assert params["state"] == '"><script>alert(1)</script>'


def test_a_code_works_once(pipedrive: PipedriveAdmin) -> None:
    code = pipedrive.oauth_code(REDIRECT)["code"]
    with httpx2.Client(base_url=pipedrive.url, trust_env=False) as client:
        assert exchange(client, code).status_code == 200
        again = exchange(client, code)
        assert again.status_code == 400
        assert again.json() == {
            "error": "invalid_grant",
            "error_description": "Invalid grant: authorization_code is invalid",
        }


def test_token_endpoint_wants_client_credentials_in_basic_auth(pipedrive: PipedriveAdmin) -> None:
    code = pipedrive.oauth_code(REDIRECT)["code"]
    with httpx2.Client(base_url=pipedrive.url, trust_env=False) as client:
        in_body = client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": REDIRECT, "client_id": DEFAULT_CLIENT_ID,
                                                    "client_secret": DEFAULT_CLIENT_SECRET})  # fmt: skip
        wrong = client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code},
                            headers={"Authorization": "Basic " + base64.b64encode(b"x:y").decode()})  # fmt: skip
    assert in_body.status_code == 401 and in_body.json()["error"] == "invalid_client"
    assert (
        wrong.status_code == 401 and wrong.json()["error_description"] == "Invalid client: client is invalid"
    )


def test_refresh_after_expiry_gives_a_working_token(pipedrive: PipedriveAdmin) -> None:
    with httpx2.Client(base_url=pipedrive.url, trust_env=False) as client:
        token = exchange(client, pipedrive.oauth_code(REDIRECT)["code"]).json()
        pipedrive.expire_access_tokens()
        old = client.get("/api/v2/deals", headers={"Authorization": f"Bearer {token['access_token']}"})
        assert old.status_code == 401 and old.json()["errorCode"] == 401
        fresh = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
                            headers={"Authorization": BASIC}).json()  # fmt: skip
        assert fresh["access_token"] != token["access_token"] and fresh["api_domain"] == pipedrive.url
        assert (
            client.get(
                "/api/v2/deals", headers={"Authorization": f"Bearer {fresh['access_token']}"}
            ).status_code
            == 200
        )


def test_unknown_refresh_token_and_grant_are_400(pipedrive: PipedriveAdmin) -> None:
    with httpx2.Client(base_url=pipedrive.url, trust_env=False, headers={"Authorization": BASIC}) as client:
        bad = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "nope"})
        odd = client.post("/oauth/token", data={"grant_type": "password"})
    assert bad.json()["error_description"] == "Invalid grant: refresh_token is invalid"
    assert odd.status_code == 400 and odd.json()["error"] == "unsupported_grant_type"


def test_a_revoked_refresh_token_no_longer_refreshes_and_its_access_token_stops_working(
    pipedrive: PipedriveAdmin,
) -> None:
    with httpx2.Client(base_url=pipedrive.url, trust_env=False) as client:
        token = exchange(client, redirect_params(consent(client, "allow"))["code"]).json()
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        assert client.get("/api/v2/persons", headers=bearer).status_code == 200
        assert client.post("/oauth/revoke", data={"token": token["refresh_token"]}).status_code == 401
        revoked = client.post(
            "/oauth/revoke",
            data={"token": token["refresh_token"], "token_type_hint": "refresh_token"},
            headers={"Authorization": BASIC},
        )
        assert revoked.status_code == 200
        refresh = client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
            headers={"Authorization": BASIC},
        )
        assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
        assert client.get("/api/v2/persons", headers=bearer).status_code == 401
