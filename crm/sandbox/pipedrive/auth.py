"""Who is calling: API tokens, OAuth codes, access and refresh tokens, consent requests.

API tokens (``x-api-token`` header or ``api_token`` query) belong to a user; OAuth access
tokens come from ``POST /oauth/token`` with the client credentials in HTTP Basic auth
(docs/PIPEDRIVE_API.md §1-2). Tokens are random strings held in memory.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from typing import Literal

from crm.sandbox.pipedrive.config import PipedriveConfig

TokenKind = Literal["api_token", "oauth"]


@dataclasses.dataclass(frozen=True)
class Principal:
    """The caller of one request."""

    kind: TokenKind
    token: str
    user_id: int


@dataclasses.dataclass
class _Access:
    user_id: int
    expires_at: float
    refresh_token: str


@dataclasses.dataclass
class _Code:
    user_id: int
    redirect_uri: str
    expires_at: float


@dataclasses.dataclass
class Consent:
    """An authorize request waiting for the user's answer on the consent page."""

    redirect_uri: str
    state: str | None
    expires_at: float


class AuthError(Exception):
    """A token request refused: ``kind`` is OAuth's error code, ``description`` Pipedrive's text."""

    def __init__(self, kind: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description
        self.status = status


class AuthModel:
    def __init__(self, config: PipedriveConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self.api_tokens: dict[str, int] = {}
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, int] = {}
        self._codes: dict[str, _Code] = {}
        self._consents: dict[str, Consent] = {}

    def reset(self) -> None:
        with self._lock:
            self.api_tokens.clear()
            self._access.clear()
            self._refresh.clear()
            self._codes.clear()
            self._consents.clear()

    def mint_api_token(self, user_id: int) -> str:
        token = secrets.token_hex(20)
        with self._lock:
            self.api_tokens[token] = user_id
        return token

    def authenticate(self, api_token: str | None, authorization: str | None) -> Principal | None:
        """The caller, or None when no valid token came with the request."""
        with self._lock:
            if api_token:
                user_id = self.api_tokens.get(api_token)
                return Principal("api_token", api_token, user_id) if user_id is not None else None
            if authorization and authorization[:7].lower() == "bearer ":
                token = authorization[7:].strip()
                access = self._access.get(token)
                if access is not None and access.expires_at > time.time():
                    return Principal("oauth", token, access.user_id)
        return None

    # --- consent and codes -----------------------------------------------------------------

    def open_consent(self, redirect_uri: str, state: str | None) -> str:
        nonce = secrets.token_urlsafe(24)
        with self._lock:
            self._consents[nonce] = Consent(redirect_uri, state, time.time() + 600)
        return nonce

    def take_consent(self, nonce: str) -> Consent | None:
        """The consent request for ``nonce``, once: a second answer finds nothing."""
        with self._lock:
            consent = self._consents.pop(nonce, None)
        if consent is None or consent.expires_at < time.time():
            return None
        return consent

    def mint_code(self, user_id: int, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Code(user_id, redirect_uri, time.time() + self.config.code_ttl)
        return code

    # --- tokens ----------------------------------------------------------------------------

    def exchange_code(self, code: str, redirect_uri: str | None) -> dict[str, object]:
        """Raises AuthError for an unknown, used or expired code or a different redirect URI."""
        with self._lock:
            grant = self._codes.pop(code, None)
        if grant is None:
            raise AuthError("invalid_grant", "Invalid grant: authorization_code is invalid")
        if grant.expires_at < time.time():
            raise AuthError("invalid_grant", "Invalid grant: authorization_code has expired")
        if redirect_uri != grant.redirect_uri:
            raise AuthError("invalid_request", "Invalid request: redirect_uri is invalid")
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[refresh] = grant.user_id
        return self._issue(grant.user_id, refresh)

    def refresh(self, refresh_token: str) -> dict[str, object]:
        """Raises AuthError for an unknown (or rotated-away) refresh token."""
        with self._lock:
            user_id = self._refresh.get(refresh_token)
            if user_id is None:
                raise AuthError("invalid_grant", "Invalid grant: refresh_token is invalid")
            if self.config.rotate_refresh_tokens:
                del self._refresh[refresh_token]
                refresh_token = secrets.token_urlsafe(32)
                self._refresh[refresh_token] = user_id
        return self._issue(user_id, refresh_token)

    def _issue(self, user_id: int, refresh_token: str) -> dict[str, object]:
        access = f"v1u:{secrets.token_urlsafe(40)}"
        with self._lock:
            self._access[access] = _Access(user_id, time.time() + self.config.token_ttl, refresh_token)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "refresh_token": refresh_token,
            "scope": ",".join(self.config.scopes),
            "expires_in": self.config.token_ttl,
        }

    def expire_access_tokens(self) -> int:
        """Make every access token expired (to test refresh without touching the clock)."""
        with self._lock:
            for access in self._access.values():
                access.expires_at = 0.0
            return len(self._access)

    def revoke(self, token: str) -> bool:
        """Forget a refresh token and the access tokens issued with it (``POST /oauth/revoke``)."""
        with self._lock:
            found = self._refresh.pop(token, None) is not None
            for access, issued in list(self._access.items()):
                if issued.refresh_token == token or access == token:
                    del self._access[access]
                    found = True
            return found

    def is_live_refresh_token(self, token: str) -> bool:
        with self._lock:
            return token in self._refresh

    def revoke_refresh_tokens(self) -> int:
        """Forget every refresh token, as uninstalling the app does."""
        with self._lock:
            count = len(self._refresh)
            self._refresh.clear()
            return count
