"""HubSpot's OAuth token endpoint (Authlib over httpx2), and the static token source.

``TokenEndpoint`` makes the four token calls the product needs: redeem a code, refresh,
introspect and revoke, at ``settings.token_path`` (default ``/oauth/2026-03/token``) and
its ``/introspect`` and ``/revoke`` siblings. Every parameter, the client secret included,
travels in the form body (``client_secret_post``); nothing secret is ever put in a URL or
a log line.

Errors are read in HubSpot's OAuth dialect ``{error, error_description, status, message}``:
branch on ``error``, then ``status``, never on the wording.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

from crm.config import Settings
from crm.errors import ConfigError, CrmError, NeedsReconnect, OAuthFlowError, Unreachable

log = logging.getLogger("crm.hubspot.tokens")

# The answers that mean the refresh token is dead for good (HUBSPOT_API.md §1.4: 400 with
# error=invalid_grant, status=BAD_REFRESH_TOKEN). Nothing else may wipe the tokens: a 401
# from a proxy or a mistyped secret, invalid_client or invalid_request, a 5xx or a timeout
# says nothing about the token, and the tokens must survive it.
_DEAD_REFRESH_ERRORS = {"invalid_grant"}
_DEAD_REFRESH_STATUSES = {"BAD_REFRESH_TOKEN"}
_BAD_CLIENT = {"invalid_client", "BAD_CLIENT_ID", "BAD_CLIENT_SECRET"}
TOKEN_TIMEOUT_S = 15.0


class StaticToken:
    """A token that never changes: private-app tokens, and tests."""

    def __init__(self, token: str, *, portal_key: str | None = None) -> None:
        self._token = token
        self.portal_key = portal_key or "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]

    def access_token(self) -> str:
        return self._token

    def refresh_after_401(self, rejected: str) -> str:
        raise NeedsReconnect(
            "HubSpot rejected the access token (401). A private-app token cannot be refreshed: "
            "check HUBSPOT_ACCESS_TOKEN."
        )


class ClientCredentialsToken:
    """The app's client-credentials token, kept in memory only and minted again ahead of expiry.

    It is not stored: it is rebuilt from the client id and secret (which the app holds
    anyway) in one request, so writing it to the cache would only add a secret at rest.
    """

    # Mint a new token this long before the old one expires.
    MARGIN_S = 60.0

    def __init__(
        self,
        settings: Settings,
        scopes: Sequence[str],
        *,
        transport: httpx2.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoint = TokenEndpoint(settings, transport=transport)
        self._scopes = tuple(scopes)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.portal_key = "app:" + hashlib.sha256(settings.client_id.encode()).hexdigest()[:16]

    def access_token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self.MARGIN_S:
                self._mint()
            assert self._token is not None
            return self._token

    def refresh_after_401(self, rejected: str) -> str:
        with self._lock:
            if self._token == rejected or self._token is None:
                self._mint()
            assert self._token is not None
            return self._token

    def _mint(self) -> None:
        grant = self._endpoint.client_credentials(self._scopes)
        self._token, self._expires_at = grant.access_token, self._clock() + grant.expires_in
        log.info("new client-credentials token, valid %d s", grant.expires_in)


@dataclass(frozen=True)
class TokenGrant:
    """What a code exchange or refresh returned (secrets: keep out of logs and repr)."""

    access_token: str
    refresh_token: str | None
    expires_at: float
    expires_in: int
    hub_id: int | None
    user_id: int | None
    scopes: tuple[str, ...]

    def __repr__(self) -> str:
        return f"TokenGrant(expires_in={self.expires_in}, hub_id={self.hub_id})"


class TokenEndpointError(CrmError):
    """The token endpoint refused a request; ``error`` and ``status`` are HubSpot's codes."""

    def __init__(self, http_status: int, error: str, status: str, description: str) -> None:
        super().__init__(description or f"HubSpot's token endpoint answered HTTP {http_status}")
        self.http_status = http_status
        self.error = error
        self.status = status


class TokenEndpoint:
    """Code exchange, refresh, introspection and revocation for one app."""

    def __init__(self, settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> None:
        self.settings = settings
        self._transport = transport

    def exchange_code(self, code: str, *, code_verifier: str | None = None) -> TokenGrant:
        """Redeem an authorization code (exactly once; the caller guarantees that).

        Raises:
            OAuthFlowError: HubSpot refused the code ("code_rejected"), the app's
                credentials ("client_rejected"), or could not be reached ("hubspot_unreachable").
        """
        extra: dict[str, str] = {}
        if code_verifier:
            extra["code_verifier"] = code_verifier
        try:
            with self._client() as client:
                token = client.fetch_token(
                    self.settings.token_url,
                    grant_type="authorization_code",
                    code=code,
                    redirect_uri=self.settings.redirect_uri,
                    **extra,
                )
            return _grant(token)
        except TokenEndpointError as exc:
            reason = "client_rejected" if _is_bad_client(exc) else "code_rejected"
            log.info("HubSpot refused the authorization code (%s/%s)", exc.error, exc.status)
            raise OAuthFlowError(reason, "HubSpot refused the sign-in code; please connect again.") from None
        except (Unreachable, httpx2.HTTPError, OAuthError, ValueError) as exc:
            log.info("Code exchange failed: %s", type(exc).__name__)
            raise OAuthFlowError(
                "hubspot_unreachable", "Could not reach HubSpot to finish connecting."
            ) from None

    def refresh(self, refresh_token: str) -> TokenGrant:
        """A new access token (and maybe a new refresh token).

        Raises:
            NeedsReconnect: HubSpot says the refresh token is dead (invalid_grant /
                BAD_REFRESH_TOKEN), and only then.
            ConfigError: HubSpot refused the app's client id or secret (invalid_client).
            Unreachable: any other answer (another 400 or 401, a 5xx) or none (timeout);
                the token may still be good, so try again later.
        """
        try:
            with self._client() as client:
                token = client.refresh_token(self.settings.token_url, refresh_token=refresh_token)
        except TokenEndpointError as exc:
            if exc.error in _DEAD_REFRESH_ERRORS or exc.status in _DEAD_REFRESH_STATUSES:
                raise NeedsReconnect("HubSpot refused the refresh token; connect HubSpot again.") from None
            if _is_bad_client(exc):
                raise ConfigError(
                    "HUBSPOT_CLIENT_SECRET", "HubSpot refused the app's client id or secret"
                ) from None
            codes = "/".join(_code(c) for c in (exc.error, exc.status) if _code(c))
            raise Unreachable(
                f"HubSpot's token endpoint answered HTTP {exc.http_status}" + (f" ({codes})" if codes else "")
            ) from None
        except httpx2.TimeoutException:
            raise Unreachable("HubSpot's token endpoint did not answer in time") from None
        except (httpx2.HTTPError, OAuthError, ValueError) as exc:
            raise Unreachable(f"Could not refresh the HubSpot token ({type(exc).__name__})") from None
        return _grant(token)

    def client_credentials(self, scopes: Sequence[str]) -> TokenGrant:
        """An app token from the client-credentials grant (the webhooks journal needs one).

        Nothing to refresh: there is no refresh token, a new one is minted on expiry.

        Raises:
            ConfigError: HubSpot refused the app's client id or secret, or the scopes.
            Unreachable: any other refusal, or no answer.
        """
        try:
            with self._client() as client:
                token = client.fetch_token(
                    self.settings.token_url, grant_type="client_credentials", scope=" ".join(scopes)
                )
        except TokenEndpointError as exc:
            if _is_bad_client(exc) or exc.error in ("invalid_scope", "unauthorized_client"):
                raise ConfigError(
                    "HUBSPOT_CLIENT_SECRET",
                    f"HubSpot refused the app's client-credentials token ({_code(exc.error) or exc.http_status})",
                ) from None
            raise Unreachable(f"HubSpot's token endpoint answered HTTP {exc.http_status}") from None
        except httpx2.TimeoutException:
            raise Unreachable("HubSpot's token endpoint did not answer in time") from None
        except (httpx2.HTTPError, OAuthError, ValueError) as exc:
            raise Unreachable(f"Could not get an app token from HubSpot ({type(exc).__name__})") from None
        return _grant(token)

    def introspect(self, access_token: str) -> dict[str, Any]:
        """Facts about a token: hub_id, user, hub_domain, scopes, user_id, active.

        Raises:
            OAuthFlowError: "token_inactive" or "hubspot_unreachable".
        """
        try:
            with self._client() as client:
                response = client.introspect_token(
                    self.settings.base_url.rstrip("/") + self.settings.introspect_path,
                    token=access_token,
                    token_type_hint="access_token",
                )
        except (httpx2.HTTPError, OAuthError) as exc:
            log.info("Token introspection failed: %s", type(exc).__name__)
            raise OAuthFlowError(
                "hubspot_unreachable", "Could not reach HubSpot to finish connecting."
            ) from None
        try:
            data = response.json() if response.status_code < 400 else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict) or data.get("active") is False or not data.get("hub_id"):
            log.info("Token introspection answered HTTP %d without an active token", response.status_code)
            raise OAuthFlowError(
                "token_inactive", "HubSpot did not confirm the new token; please connect again."
            )
        return data

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token at HubSpot.

        Raises:
            Unreachable: HubSpot did not confirm (any non-2xx, or no answer).
        """
        try:
            with self._client() as client:
                response = client.revoke_token(
                    self.settings.base_url.rstrip("/") + self.settings.revoke_path,
                    token=refresh_token,
                    token_type_hint="refresh_token",
                )
        except (httpx2.HTTPError, OAuthError) as exc:
            raise Unreachable(f"Could not reach HubSpot to revoke the token ({type(exc).__name__})") from None
        if not 200 <= response.status_code < 300:
            raise Unreachable(f"HubSpot answered the revocation with HTTP {response.status_code}")

    def _client(self) -> OAuth2Client:
        client = OAuth2Client(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret,
            token_endpoint_auth_method="client_secret_post",
            revocation_endpoint_auth_method="client_secret_post",
            # A refresh runs inside the cache's write transaction: keep it well under the
            # 30 s busy timeout other writers wait for.
            timeout=httpx2.Timeout(min(self.settings.http_timeout, TOKEN_TIMEOUT_S)),
            transport=self._transport,
            follow_redirects=False,
        )
        client.register_compliance_hook("access_token_response", _raise_for_oauth_error)
        client.register_compliance_hook("refresh_token_response", _raise_for_oauth_error)
        return client


def _raise_for_oauth_error(response: httpx2.Response) -> httpx2.Response:
    """Turn any error answer into TokenEndpointError before Authlib reads it as a token."""
    if response.status_code < 400:
        return response
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    raise TokenEndpointError(
        response.status_code,
        str(body.get("error") or ""),
        str(body.get("status") or ""),
        str(body.get("error_description") or body.get("message") or ""),
    )


def _code(value: str) -> str:
    """An error code as HubSpot spells them (``BAD_CLIENT_ID``), safe to show; else empty."""
    return value[:40] if value.replace("_", "").isalnum() and value.isascii() else ""


def _is_bad_client(exc: TokenEndpointError) -> bool:
    return exc.error in _BAD_CLIENT or exc.status in _BAD_CLIENT


def _grant(token: Any) -> TokenGrant:
    access = token.get("access_token")
    if not access:
        raise Unreachable("HubSpot's token endpoint answered without an access token")
    expires_in = int(token.get("expires_in") or 1800)
    expires_at = float(token.get("expires_at") or (time.time() + expires_in))
    scopes = token.get("scopes") or str(token.get("scope") or "").split()
    hub_id = token.get("hub_id")
    user_id = token.get("user_id")
    return TokenGrant(
        access_token=str(access),
        refresh_token=str(token["refresh_token"]) if token.get("refresh_token") else None,
        expires_at=expires_at,
        expires_in=expires_in,
        hub_id=int(hub_id) if hub_id not in (None, "") else None,
        user_id=int(user_id) if user_id not in (None, "") else None,
        scopes=tuple(str(s) for s in scopes),
    )
