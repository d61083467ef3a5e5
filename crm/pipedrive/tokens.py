"""Pipedrive's OAuth token endpoint: redeem a code, refresh, revoke (docs/PIPEDRIVE_API.md §1).

Client credentials travel in HTTP Basic auth, never in the body or a URL; the answer names
the company's ``api_domain``, where its API calls go. Errors follow OAuth's ``error`` codes:
``invalid_grant`` on a refresh means the refresh token is dead (NeedsReconnect); anything
else keeps the tokens (Unreachable, try later).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx2

from crm import tls
from crm.config import Settings
from crm.errors import ConfigError, NeedsReconnect, OAuthFlowError, Unreachable
from crm.interface import Grant

TOKEN_TIMEOUT_S = 15.0


class PipedriveTokens:
    """The token calls of one Pipedrive OAuth app (``settings.pipedrive_*``)."""

    def __init__(self, settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> None:
        if not settings.pipedrive_client_id or not settings.pipedrive_client_secret:
            raise ConfigError(
                "PIPEDRIVE_CLIENT_ID", "and PIPEDRIVE_CLIENT_SECRET are needed to connect Pipedrive"
            )
        self.settings = settings
        self._transport = transport

    def exchange_code(self, code: str) -> Grant:
        """Redeem an authorization code once.

        Raises:
            OAuthFlowError: ``code_rejected``, ``client_rejected`` or ``hubspot_unreachable``
                (the reason the connect flow already uses for "the CRM could not be reached").
        """
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.pipedrive_redirect_uri,
        }
        try:
            status, body = self._post("/oauth/token", form)
        except Unreachable:
            raise OAuthFlowError(
                "hubspot_unreachable", "Could not reach Pipedrive to finish connecting."
            ) from None
        if status >= 400:
            reason = "client_rejected" if body.get("error") == "invalid_client" else "code_rejected"
            raise OAuthFlowError(reason, "Pipedrive refused the sign-in code; please connect again.")
        return _grant(body)

    def refresh(self, refresh_token: str) -> Grant:
        """A new access token.

        Raises:
            NeedsReconnect: Pipedrive says the refresh token is invalid (and only then).
            ConfigError: Pipedrive refused the app's client credentials.
            Unreachable: any other answer, or none.
        """
        status, body = self._post(
            "/oauth/token", {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
        if status < 400:
            return _grant(body)
        error = str(body.get("error") or "")
        if error == "invalid_grant":
            raise NeedsReconnect("Pipedrive refused the refresh token; connect Pipedrive again.")
        if error == "invalid_client":
            raise ConfigError("PIPEDRIVE_CLIENT_SECRET", "Pipedrive refused the app's client id or secret")
        raise Unreachable(f"Pipedrive's token endpoint answered HTTP {status}")

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token. Raises Unreachable when Pipedrive did not confirm."""
        status, _body = self._post(
            "/oauth/revoke", {"token": refresh_token, "token_type_hint": "refresh_token"}
        )
        if status >= 300:
            raise Unreachable(f"Pipedrive answered the revocation with HTTP {status}")

    def _post(self, path: str, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        auth = httpx2.BasicAuth(self.settings.pipedrive_client_id, self.settings.pipedrive_client_secret)
        try:
            with httpx2.Client(
                transport=self._transport,
                timeout=httpx2.Timeout(TOKEN_TIMEOUT_S),
                trust_env=False,
                verify=tls.context(trust_env=False),
            ) as client:
                response = client.post(
                    self.settings.pipedrive_oauth_url.rstrip("/") + path, data=dict(form), auth=auth
                )
        except httpx2.HTTPError as exc:
            raise Unreachable(f"Could not reach Pipedrive's token endpoint ({type(exc).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code, body if isinstance(body, dict) else {}


def _grant(body: Mapping[str, Any]) -> Grant:
    access = body.get("access_token")
    if not access:
        raise Unreachable("Pipedrive's token endpoint answered without an access token")
    expires_in = int(body.get("expires_in") or 3600)
    return Grant(
        access_token=str(access),
        refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
        expires_at=time.time() + expires_in,
        scopes=tuple(str(body.get("scope") or "").replace(",", " ").split()),
        account_id=None,
        api_base=str(body["api_domain"]).rstrip("/") if body.get("api_domain") else None,
    )
