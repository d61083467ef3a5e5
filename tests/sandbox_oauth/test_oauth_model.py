"""The sandbox's OAuth model on its own: codes, tokens, PKCE, rotation, 401/403 answers."""

from __future__ import annotations

import threading

import pytest

from crm.sandbox.config import SandboxConfig
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.oauth.models import (
    ALL_SCOPES,
    ConsentError,
    OAuthModel,
    TokenGrantError,
    expired_message,
    pkce_s256,
)

REDIRECT = "http://localhost:8501/hubspot/callback"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig(token_ttl=1800, code_ttl=600)


@pytest.fixture
def model(config: SandboxConfig, clock: Clock) -> OAuthModel:
    return OAuthModel(config, clock=clock)


def exchange(model: OAuthModel, config: SandboxConfig, auth_code: str, **overrides: str) -> dict:
    params = {
        "grant_type": "authorization_code",
        "code": auth_code,
        "redirect_uri": REDIRECT,
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        **overrides,
    }
    return model.grant(params)


def refresh(model: OAuthModel, config: SandboxConfig, token: str) -> dict:
    return model.grant(
        {
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": config.client_id,
            "client_secret": config.client_secret,
        }
    )


def refused(call, *args, **kwargs) -> TokenGrantError:
    with pytest.raises(TokenGrantError) as info:
        call(*args, **kwargs)
    return info.value


def test_code_exchange_returns_hubspots_token_response(model, config):
    code = model.issue_code(redirect_uri=REDIRECT, scopes="crm.objects.contacts.read crm.objects.deals.read")

    token = exchange(model, config, code)

    assert token["token_type"] == "bearer"
    assert token["token_use"] == "access_token"
    assert token["expires_in"] == 1800
    assert token["hub_id"] == config.portal_id and token["user_id"] == config.user_id
    assert token["scopes"] == ["oauth", "crm.objects.contacts.read", "crm.objects.deals.read"]
    assert token["refresh_token"].startswith("na1-")
    assert len(token["access_token"]) > 100


def test_code_is_single_use(model, config):
    code = model.issue_code(redirect_uri=REDIRECT)
    exchange(model, config, code)

    error = refused(exchange, model, config, code)

    assert (error.status, error.error) == ("BAD_AUTH_CODE", "invalid_grant")


def test_code_expires_after_code_ttl(model, config, clock):
    code = model.issue_code(redirect_uri=REDIRECT)
    clock.now += config.code_ttl + 1

    assert refused(exchange, model, config, code).status == "BAD_AUTH_CODE"


@pytest.mark.parametrize(
    ("override", "status", "error"),
    [
        ({"client_id": "someone-else"}, "BAD_CLIENT_ID", "invalid_client"),
        ({"client_secret": "wrong"}, "BAD_CLIENT_SECRET", "invalid_client"),
        ({"client_secret": ""}, "BAD_CLIENT_SECRET", "invalid_client"),
        ({"redirect_uri": "http://127.0.0.1:8501/hubspot/callback"}, "BAD_REDIRECT_URI", "invalid_grant"),
        ({"code": "not-a-code"}, "BAD_AUTH_CODE", "invalid_grant"),
        ({"grant_type": "password"}, "BAD_GRANT_TYPE", "unsupported_grant_type"),
    ],
)
def test_bad_token_requests_get_hubspots_error_pairs(model, config, override, status, error):
    code = model.issue_code(redirect_uri=REDIRECT)

    failure = refused(exchange, model, config, code, **override)

    assert (failure.status, failure.error) == (status, error)
    assert set(failure.body()) == {"error", "error_description", "status", "message"}


def test_failed_exchange_leaves_the_code_usable(model, config):
    code = model.issue_code(redirect_uri=REDIRECT)
    refused(exchange, model, config, code, client_secret="wrong")

    assert exchange(model, config, code)["access_token"]


def test_pkce_code_needs_the_matching_verifier(model, config):
    verifier = "a" * 43 + "-verifier"
    challenge = pkce_s256(verifier)
    code = model.issue_code(redirect_uri=REDIRECT, code_challenge=challenge, code_challenge_method="S256")

    assert refused(exchange, model, config, code).error == "invalid_grant"
    assert refused(exchange, model, config, code, code_verifier="b" * 50).error == "invalid_grant"
    assert exchange(model, config, code, code_verifier=verifier)["access_token"]


def test_verifier_is_ignored_when_no_challenge_was_sent(model, config):
    code = model.issue_code(redirect_uri=REDIRECT)

    assert exchange(model, config, code, code_verifier="anything-at-all")["access_token"]


def test_refresh_keeps_the_refresh_token_by_default(model, config):
    first = exchange(model, config, model.issue_code(redirect_uri=REDIRECT))

    second = refresh(model, config, first["refresh_token"])

    assert second["refresh_token"] == first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scopes"] == first["scopes"]


def test_rotation_issues_a_new_refresh_token_and_retires_the_old(model, config):
    config.rotate_refresh_tokens = True
    first = exchange(model, config, model.issue_code(redirect_uri=REDIRECT))

    second = refresh(model, config, first["refresh_token"])

    assert second["refresh_token"] != first["refresh_token"]
    assert refused(refresh, model, config, first["refresh_token"]).status == "BAD_REFRESH_TOKEN"
    assert refresh(model, config, second["refresh_token"])["access_token"]


def test_concurrent_refreshes_with_rotation_let_exactly_one_win(model, config):
    config.rotate_refresh_tokens = True
    token = exchange(model, config, model.issue_code(redirect_uri=REDIRECT))["refresh_token"]
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        try:
            refresh(model, config, token)
            outcomes.append("ok")
        except TokenGrantError as exc:
            outcomes.append(exc.status)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["BAD_REFRESH_TOKEN"] * 7 + ["ok"]


def test_revoking_a_refresh_token_keeps_minted_access_tokens(model, config):
    token = exchange(model, config, model.issue_code(redirect_uri=REDIRECT))

    assert model.revoke(token["refresh_token"])

    assert refused(refresh, model, config, token["refresh_token"]).status == "BAD_REFRESH_TOKEN"
    assert model.authenticate(f"Bearer {token['access_token']}").kind == "oauth"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer nope", "Basic abc", "token-without-scheme"])
def test_missing_or_unknown_token_is_invalid_authentication(model, header):
    with pytest.raises(SandboxHTTPError) as info:
        model.authenticate(header)

    assert info.value.status == 401
    assert info.value.body["category"] == "INVALID_AUTHENTICATION"
    assert info.value.body["correlationId"]


def test_expired_token_says_how_long_ago_and_when(model, config, clock):
    access = exchange(model, config, model.issue_code(redirect_uri=REDIRECT))["access_token"]
    clock.now += config.token_ttl + 75

    with pytest.raises(SandboxHTTPError) as info:
        model.authenticate(f"Bearer {access}")

    body = info.value.body
    assert info.value.status == 401
    assert body["category"] == "EXPIRED_AUTHENTICATION"
    assert body["message"] == "The OAuth token used to make this call expired 75 second(s) ago."
    assert body["context"] == {"expire time": ["2023-11-14T22:43:20.000Z"]}


@pytest.mark.parametrize(
    ("elapsed", "text"),
    [
        (0.2, "1 second(s)"),
        (75, "75 second(s)"),
        (600, "10 minute(s)"),
        (3 * 3600, "3 hour(s)"),
        (5 * 86400, "5 day(s)"),
    ],
)
def test_expired_message_picks_hubspots_units(elapsed, text):
    assert expired_message(elapsed) == f"The OAuth token used to make this call expired {text} ago."


def test_token_is_valid_until_its_ttl(model, config, clock):
    access = exchange(model, config, model.issue_code(redirect_uri=REDIRECT))["access_token"]
    clock.now += config.token_ttl - 1

    ctx = model.authenticate(f"bearer {access}")

    assert (ctx.hub_id, ctx.kind) == (config.portal_id, "oauth")


def test_missing_scope_is_403_listing_what_would_do(model):
    ctx = model.authenticate(f"Bearer {model.issue_private_app_token(['crm.objects.contacts.read'])}")

    model.require_scopes(ctx, any_of=["crm.objects.contacts.read"])
    with pytest.raises(SandboxHTTPError) as info:
        model.require_scopes(ctx, any_of=["crm.objects.deals.read", "crm.schemas.deals.read"])

    body = info.value.body
    assert info.value.status == 403
    assert body["category"] == "MISSING_SCOPES"
    required = body["errors"][0]["context"]["requiredGranularScopes"]
    assert required == ["crm.objects.deals.read", "crm.schemas.deals.read"]
    assert body["links"] == {"scopes": "https://developers.hubspot.com/scopes"}


def test_private_app_token_never_expires_by_itself(model, clock):
    token = model.issue_private_app_token()
    clock.now += 10 * 365 * 86400

    ctx = model.authenticate(f"Bearer {token}")

    assert ctx.kind == "private_app"
    assert ctx.scopes == ALL_SCOPES
    assert token.startswith("pat-na1-")


def test_expire_all_expires_oauth_tokens_but_not_private_app_tokens(model, config):
    access = exchange(model, config, model.issue_code(redirect_uri=REDIRECT))["access_token"]
    private = model.issue_private_app_token()

    assert model.expire(all_tokens=True) == 1

    with pytest.raises(SandboxHTTPError) as info:
        model.authenticate(f"Bearer {access}")
    assert info.value.body["message"].endswith("expired 1 second(s) ago.")
    assert model.authenticate(f"Bearer {private}").kind == "private_app"


def test_expire_one_named_private_app_token(model):
    private = model.issue_private_app_token()

    assert model.expire(private) == 1

    with pytest.raises(SandboxHTTPError) as info:
        model.authenticate(f"Bearer {private}")
    assert info.value.body["category"] == "EXPIRED_AUTHENTICATION"


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"client_id": "unknown-app"}, "client_id"),
        ({"redirect_uri": "https://evil.example/callback"}, "redirect_uri"),
        ({"redirect_uri": REDIRECT + "/"}, "redirect_uri"),
        ({"scopes": ""}, "scope"),
        ({"code_challenge": "abc", "code_challenge_method": "S512"}, "S256"),
        ({"portal_id": 1}, "different HubSpot account"),
    ],
)
def test_consent_refuses_bad_authorize_requests(model, config, changes, fragment):
    request = {"client_id": config.client_id, "redirect_uri": REDIRECT, "scopes": "crm.objects.contacts.read"}
    request.update(changes)

    with pytest.raises(ConsentError, match=fragment):
        model.check_authorize_request(**request)


def test_consent_grants_requested_and_optional_scopes_plus_oauth(model, config):
    consent = model.check_authorize_request(
        client_id=config.client_id,
        redirect_uri=REDIRECT,
        scopes="crm.objects.contacts.read crm.objects.contacts.read",
        optional_scopes="crm.objects.deals.read",
        state="xyz",
    )

    assert consent.scopes == ("oauth", "crm.objects.contacts.read", "crm.objects.deals.read")
    assert consent.state == "xyz"


def test_consent_nonce_answers_once(model, config):
    consent = model.check_authorize_request(client_id=config.client_id, redirect_uri=REDIRECT, scopes="oauth")
    nonce = model.begin_consent(consent)

    assert model.take_consent(nonce) == consent
    with pytest.raises(ConsentError):
        model.take_consent(nonce)
    with pytest.raises(ConsentError):
        model.take_consent(None)


def test_consent_nonce_expires(model, config, clock):
    consent = model.check_authorize_request(client_id=config.client_id, redirect_uri=REDIRECT, scopes="oauth")
    nonce = model.begin_consent(consent)
    clock.now += config.code_ttl + 1

    with pytest.raises(ConsentError):
        model.take_consent(nonce)


def test_introspection_reports_live_tokens_and_inactive_dead_ones(model, config, clock):
    token = exchange(model, config, model.issue_code(redirect_uri=REDIRECT))

    access = model.introspect(token["access_token"])
    refresh_info = model.introspect(token["refresh_token"], hint="refresh_token")

    assert access["active"] is True and access["token_use"] == "access_token"
    assert access["client_id"] == config.client_id and access["expires_in"] == 1800
    assert refresh_info["active"] is True and refresh_info["token_use"] == "refresh_token"
    clock.now += config.token_ttl
    assert model.introspect(token["access_token"]) == {"active": False}
    assert model.introspect("unknown") == {"active": False}
    assert model.introspect(model.issue_private_app_token()) == {"active": False}


def test_reset_forgets_every_token(model, config):
    token = exchange(model, config, model.issue_code(redirect_uri=REDIRECT))
    private = model.issue_private_app_token()

    model.reset()

    for value in (token["access_token"], private):
        with pytest.raises(SandboxHTTPError):
            model.authenticate(f"Bearer {value}")
    assert refused(refresh, model, config, token["refresh_token"]).status == "BAD_REFRESH_TOKEN"
    assert model.snapshot() == {"tokens": [], "requests": []}


def test_token_ttl_change_applies_to_the_next_token(model, config):
    config.token_ttl = 60

    token = exchange(model, config, model.issue_code(redirect_uri=REDIRECT))

    assert token["expires_in"] == 60
