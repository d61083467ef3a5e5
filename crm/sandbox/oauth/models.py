"""The sandbox portal's OAuth state: consent requests, codes, tokens and the token-request log.

Everything here is in memory and guarded by one lock, because uvicorn may run handlers in
threads. The routes module turns these results into HubSpot's wire dialects; this module only
raises ``TokenGrantError`` (token-endpoint dialect), ``ConsentError`` (consent page) and
``SandboxHTTPError`` (401/403 on CRM calls).

Time comes from ``clock`` (``time.time`` by default) so unit tests can move it; HTTP tests
expire tokens through ``expire()`` (``POST /_sandbox/tokens/expire``) instead.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from crm.sandbox.config import SandboxConfig
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.oauth import messages

# What a private-app token gets by default, and what "all scopes" means on the admin routes.
ALL_SCOPES: tuple[str, ...] = (
    "oauth",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.objects.owners.read",
    "crm.objects.custom.read",
    "crm.objects.custom.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "crm.schemas.companies.read",
    "crm.schemas.companies.write",
    "crm.schemas.deals.read",
    "crm.schemas.deals.write",
    "crm.schemas.custom.read",
    "crm.schemas.custom.write",
    "tickets",
    "sales-email-read",
    "conversations.read",
    "conversations.write",
    "crm.extensions_calling_transcripts.read",
    "crm.extensions_calling_transcripts.write",
)
HUBLET = "na1"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
# What a client-credentials token may hold: the webhooks journal's scopes, current and beta names.
CLIENT_CREDENTIALS_SCOPES = (
    "developer.webhooks_journal.read",
    "developer.webhooks_journal.subscriptions.read",
    "developer.webhooks_journal.subscriptions.write",
    "developer.webhooks_journal.snapshots.read",
    "developer.webhooks_journal.snapshots.write",
    "webhooks.journal.data.access",
    "webhooks.journal.subscription.read",
    "webhooks.journal.subscription.manage",
    "webhooks.journal.snapshot.manage",
)
PKCE_METHODS = ("S256", "plain")
# Bounds so a long-running demo sandbox cannot grow without limit.
MAX_PENDING_CONSENTS = 5_000
MAX_TOKEN_REQUESTS = 5_000

TokenKind = Literal["oauth", "private_app", "client_credentials"]


class TokenGrantError(Exception):
    """A token, introspect or revoke call failed; answered 400 in HubSpot's OAuth dialect."""

    def __init__(self, pair: tuple[str, str, str]):
        self.status, self.error, self.description = pair
        super().__init__(self.status)

    def body(self) -> dict[str, str]:
        """The wire body: RFC 6749 fields beside HubSpot's legacy status/message."""
        return {
            "error": self.error,
            "error_description": self.description,
            "status": self.status,
            "message": self.description,
        }


class ConsentError(Exception):
    """The authorize request cannot be shown or answered; HubSpot shows an error page, no redirect."""


@dataclasses.dataclass(frozen=True)
class AuthContext:
    """Who is calling a CRM route: the token's kind, portal and granted scopes."""

    token: str
    scopes: tuple[str, ...]
    hub_id: int
    kind: TokenKind
    user_id: int | None = None
    expires_at: float | None = None


@dataclasses.dataclass(frozen=True)
class ConsentRequest:
    """A validated authorize request, waiting for the person to press Connect app or Cancel."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    # The portal the authorize link names (/oauth/{portal}/authorize); None lets the person pick.
    portal_id: int | None = None


@dataclasses.dataclass
class _Code:
    request: ConsentRequest
    expires_at: float
    used: bool = False


@dataclasses.dataclass
class _AccessToken:
    token: str
    kind: TokenKind
    scopes: tuple[str, ...]
    issued_at: float
    expires_at: float | None
    client_id: str | None = None
    refresh_token: str | None = None
    grant_type: str | None = None
    revoked: bool = False


@dataclasses.dataclass
class _RefreshToken:
    token: str
    client_id: str
    scopes: tuple[str, ...]
    issued_at: float
    revoked: bool = False
    rotated: bool = False


def normalize_scopes(scopes: str | Iterable[str] | None) -> tuple[str, ...]:
    """Split a space-separated scope string (or take a list), drop duplicates, keep the order."""
    if scopes is None:
        return ()
    items = scopes.split() if isinstance(scopes, str) else [s for item in scopes for s in str(item).split()]
    return tuple(dict.fromkeys(items))


def pkce_s256(verifier: str) -> str:
    """The S256 code challenge for ``verifier`` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def expired_message(elapsed_s: float) -> str:
    """HubSpot's EXPIRED_AUTHENTICATION text; the unit grows with the age (observed: 75 second(s))."""
    seconds = max(1, int(elapsed_s))
    if seconds < 120:
        amount, unit = seconds, "second(s)"
    elif seconds < 2 * 3600:
        amount, unit = seconds // 60, "minute(s)"
    elif seconds < 2 * 86400:
        amount, unit = seconds // 3600, "hour(s)"
    else:
        amount, unit = seconds // 86400, "day(s)"
    return messages.EXPIRED_AUTHENTICATION.format(amount=amount, unit=unit)


def _iso_ms(epoch_s: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch_s, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _new_access_token() -> str:
    # Real access tokens are long base64 blobs starting with "C"; only the length and alphabet matter.
    return "C" + base64.urlsafe_b64encode(secrets.token_bytes(120)).rstrip(b"=").decode("ascii")


def _new_refresh_token() -> str:
    h = secrets.token_hex(14)
    return f"{HUBLET}-{h[0:4]}-{h[4:8]}-{h[8:12]}-{h[12:16]}-{h[16:28]}"


def _new_uuid() -> str:
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


def _correlation_id() -> str:
    return str(uuid.uuid4())


class OAuthModel:
    """Codes, access and refresh tokens, private-app tokens and consent nonces of one portal.

    ``config`` is read at each call, so ``POST /_sandbox/config`` changes (token_ttl,
    redirect_uris, rotate_refresh_tokens, ...) apply to the next token issued.
    """

    def __init__(self, config: SandboxConfig, *, clock: Callable[[], float] = time.time):
        self.config = config
        self._clock = clock
        self._lock = threading.RLock()
        self._consents: dict[str, tuple[ConsentRequest, float]] = {}
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self._requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_TOKEN_REQUESTS)

    def reset(self) -> None:
        """Forget every code, token, consent and recorded token request."""
        with self._lock:
            self._consents.clear()
            self._codes.clear()
            self._access.clear()
            self._refresh.clear()
            self._requests.clear()

    # --- consent -------------------------------------------------------------------------

    def check_authorize_request(
        self,
        *,
        client_id: str | None,
        redirect_uri: str | None,
        scopes: str | Iterable[str] | None,
        optional_scopes: str | Iterable[str] | None = None,
        state: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
        portal_id: int | None = None,
    ) -> ConsentRequest:
        """Validate an authorize request the way HubSpot's consent page does.

        Raises:
            ConsentError: unknown client, unregistered redirect URI, no scope, another
                portal, or an unsupported PKCE method. HubSpot shows these on its own page.
        """
        cfg = self.config
        if not client_id or not _same(client_id, cfg.client_id):
            raise ConsentError(messages.CONSENT_UNKNOWN_CLIENT)
        if not redirect_uri or redirect_uri not in tuple(cfg.redirect_uris):
            raise ConsentError(messages.CONSENT_BAD_REDIRECT)
        if portal_id is not None and portal_id != cfg.portal_id:
            raise ConsentError(messages.CONSENT_WRONG_PORTAL)
        requested = normalize_scopes(scopes)
        if not requested:
            raise ConsentError(messages.CONSENT_MISSING_SCOPE)
        method = None
        if code_challenge:
            # RFC 7636: an absent method means "plain".
            method = code_challenge_method or "plain"
            if method not in PKCE_METHODS:
                raise ConsentError(messages.CONSENT_BAD_CHALLENGE)
        # HubSpot adds "oauth" to every app; a sandbox portal can grant every optional scope.
        granted = normalize_scopes(("oauth", *requested, *normalize_scopes(optional_scopes)))
        return ConsentRequest(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=granted,
            state=state,
            code_challenge=code_challenge or None,
            code_challenge_method=method,
            portal_id=portal_id,
        )

    def begin_consent(self, request: ConsentRequest) -> str:
        """Remember ``request`` under a fresh single-use nonce that the consent form carries back."""
        now = self._clock()
        with self._lock:
            for nonce, (_, expires_at) in list(self._consents.items()):
                if expires_at <= now:
                    del self._consents[nonce]
            while len(self._consents) >= MAX_PENDING_CONSENTS:
                del self._consents[next(iter(self._consents))]
            nonce = secrets.token_urlsafe(32)
            self._consents[nonce] = (request, now + self.config.code_ttl)
            return nonce

    def take_consent(self, nonce: str | None) -> ConsentRequest:
        """Consume the consent nonce; raises ConsentError if unknown, used or expired."""
        with self._lock:
            entry = self._consents.pop(nonce or "", None)
        if entry is None or entry[1] <= self._clock():
            raise ConsentError(messages.CONSENT_EXPIRED)
        return entry[0]

    def grant_code(self, request: ConsentRequest) -> str:
        """Mint a single-use authorization code for an approved consent request."""
        code = _new_uuid()
        with self._lock:
            now = self._clock()
            for key, old in list(self._codes.items()):
                if old.used or old.expires_at <= now:
                    del self._codes[key]
            self._codes[code] = _Code(request=request, expires_at=now + self.config.code_ttl)
        return code

    def issue_code(
        self,
        *,
        client_id: str | None = None,
        redirect_uri: str | None = None,
        scopes: str | Iterable[str] | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
        state: str | None = None,
    ) -> str:
        """What pressing Connect app does, without the page (tests, scripts).

        Defaults: the configured client id, the first registered redirect URI, all scopes.

        Raises:
            ConsentError: the same refusals as the consent page.
        """
        if redirect_uri is None:
            redirect_uri = next(iter(self.config.redirect_uris), "")
        request = self.check_authorize_request(
            client_id=client_id if client_id is not None else self.config.client_id,
            redirect_uri=redirect_uri,
            scopes=scopes if scopes is not None else ALL_SCOPES,
            state=state,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
        )
        return self.grant_code(request)

    # --- token endpoint ------------------------------------------------------------------

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        """Raise TokenGrantError unless the pair is this sandbox app's client id and secret."""
        if not client_id or not _same(client_id, self.config.client_id):
            raise TokenGrantError(messages.BAD_CLIENT_ID)
        if not client_secret or not _same(client_secret, self.config.client_secret):
            raise TokenGrantError(messages.BAD_CLIENT_SECRET)

    def grant(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer a token request (authorization_code or refresh_token grant).

        Returns HubSpot's token response. Raises TokenGrantError for every refusal.
        """
        grant_type = params.get("grant_type") or ""
        if grant_type not in GRANT_TYPES:
            raise TokenGrantError(messages.BAD_GRANT_TYPE)
        with self._lock:
            self.check_client(params.get("client_id"), params.get("client_secret"))
            if grant_type == "authorization_code":
                return self._redeem_code(params)
            if grant_type == "client_credentials":
                return self._client_credentials(params)
            return self._refresh_access(params)

    def _client_credentials(self, params: Mapping[str, str]) -> dict[str, Any]:
        """An app-level token for the webhooks journal: no refresh token, no user.

        The scopes asked for (space-separated ``scope``) that a client-credentials token can
        carry are granted; others are dropped; none asked means all of them.
        """
        asked = normalize_scopes(params.get("scope"))
        granted = (
            tuple(s for s in asked if s in CLIENT_CREDENTIALS_SCOPES) if asked else CLIENT_CREDENTIALS_SCOPES
        )
        now = self._clock()
        access = _AccessToken(
            token=_new_access_token(),
            kind="client_credentials",
            scopes=granted,
            issued_at=now,
            expires_at=now + self.config.token_ttl,
            client_id=self.config.client_id,
            grant_type="client_credentials",
        )
        self._access[access.token] = access
        return {
            "token_type": "bearer",
            "access_token": access.token,
            "expires_in": int(self.config.token_ttl),
            "token_use": "access_token",
            "hub_id": self.config.portal_id,
            "scopes": list(granted),
            "scope": " ".join(granted),
        }

    def _redeem_code(self, params: Mapping[str, str]) -> dict[str, Any]:
        entry = self._codes.get(params.get("code") or "")
        if entry is None or entry.used or entry.expires_at <= self._clock():
            raise TokenGrantError(messages.BAD_AUTH_CODE)
        request = entry.request
        if not _same(request.client_id, params.get("client_id") or ""):
            raise TokenGrantError(messages.BAD_AUTH_CODE)
        # RFC 6749 §4.1.3: byte-identical to the redirect_uri of the authorize request.
        if (params.get("redirect_uri") or "") != request.redirect_uri:
            raise TokenGrantError(messages.BAD_REDIRECT_URI)
        if request.code_challenge:
            verifier = params.get("code_verifier") or ""
            expected = pkce_s256(verifier) if request.code_challenge_method == "S256" else verifier
            if not verifier or not _same(expected, request.code_challenge):
                raise TokenGrantError(messages.BAD_CODE_VERIFIER)
        entry.used = True
        now = self._clock()
        refresh = _RefreshToken(
            token=_new_refresh_token(), client_id=request.client_id, scopes=request.scopes, issued_at=now
        )
        self._refresh[refresh.token] = refresh
        access = self._mint_access(refresh, "authorization_code", now)
        return self._token_response(access, refresh)

    def _refresh_access(self, params: Mapping[str, str]) -> dict[str, Any]:
        refresh = self._refresh.get(params.get("refresh_token") or "")
        if refresh is None or refresh.revoked or refresh.rotated:
            raise TokenGrantError(messages.BAD_REFRESH_TOKEN)
        if not _same(refresh.client_id, params.get("client_id") or ""):
            raise TokenGrantError(messages.BAD_REFRESH_TOKEN)
        now = self._clock()
        if self.config.rotate_refresh_tokens:
            refresh.rotated = True
            refresh = _RefreshToken(
                token=_new_refresh_token(), client_id=refresh.client_id, scopes=refresh.scopes, issued_at=now
            )
            self._refresh[refresh.token] = refresh
        access = self._mint_access(refresh, "refresh_token", now)
        return self._token_response(access, refresh)

    def _mint_access(self, refresh: _RefreshToken, grant_type: str, now: float) -> _AccessToken:
        access = _AccessToken(
            token=_new_access_token(),
            kind="oauth",
            scopes=refresh.scopes,
            issued_at=now,
            expires_at=now + self.config.token_ttl,
            client_id=refresh.client_id,
            refresh_token=refresh.token,
            grant_type=grant_type,
        )
        self._access[access.token] = access
        return access

    def _token_response(self, access: _AccessToken, refresh: _RefreshToken) -> dict[str, Any]:
        return {
            "token_type": "bearer",
            "access_token": access.token,
            "refresh_token": refresh.token,
            "expires_in": int(self.config.token_ttl),
            "token_use": "access_token",
            "hub_id": self.config.portal_id,
            "user_id": self.config.user_id,
            "scopes": list(access.scopes),
        }

    def record_request(
        self,
        *,
        path: str,
        grant_type: str | None,
        query_params: Iterable[str],
        body_params: Iterable[str],
        header_params: Iterable[str] = (),
        status: int,
        error: str | None = None,
    ) -> None:
        """Log one token-endpoint call: names and where they arrived, never their values."""
        entry = {
            "time": self._clock(),
            "path": path,
            "grant_type": grant_type,
            "query_params": sorted(set(query_params)),
            "body_params": sorted(set(body_params)),
            "header_params": sorted(set(header_params)),
            "status": status,
            "error": error,
        }
        with self._lock:
            self._requests.append(entry)

    # --- introspection and revocation ----------------------------------------------------

    def _live_access(self, token: str) -> _AccessToken | None:
        access = self._access.get(token)
        if access is None or access.kind != "oauth" or access.revoked:
            return None
        if access.expires_at is not None and access.expires_at <= self._clock():
            return None
        return access

    def _live_refresh(self, token: str) -> _RefreshToken | None:
        refresh = self._refresh.get(token)
        if refresh is None or refresh.revoked or refresh.rotated:
            return None
        return refresh

    def access_token_info(self, token: str) -> dict[str, Any] | None:
        """``GET /oauth/v1/access-tokens/{t}``'s body, or None when unknown, expired or revoked."""
        with self._lock:
            access = self._live_access(token)
            if access is None:
                return None
            cfg = self.config
            expires_at = access.expires_at or 0.0
            return {
                "token": access.token,
                "user": cfg.user_email,
                "hub_domain": cfg.hub_domain,
                "scopes": list(access.scopes),
                "hub_id": cfg.portal_id,
                "app_id": cfg.app_id,
                "expires_in": max(0, int(expires_at - self._clock())),
                "user_id": cfg.user_id,
                "token_type": "access",
                "is_private_distribution": False,
                "signed_access_token": {
                    "expiresAt": int(expires_at * 1000),
                    "hubId": cfg.portal_id,
                    "userId": cfg.user_id,
                    "appId": cfg.app_id,
                    "hublet": HUBLET,
                    "isUserLevel": False,
                    "isPrivateDistribution": False,
                },
            }

    def refresh_token_info(self, token: str) -> dict[str, Any] | None:
        """``GET /oauth/v1/refresh-tokens/{t}``'s body, or None when unknown, revoked or rotated out."""
        with self._lock:
            refresh = self._live_refresh(token)
            if refresh is None:
                return None
            cfg = self.config
            return {
                "token": refresh.token,
                "user": cfg.user_email,
                "hub_domain": cfg.hub_domain,
                "scopes": list(refresh.scopes),
                "hub_id": cfg.portal_id,
                "client_id": refresh.client_id,
                "user_id": cfg.user_id,
                "token_type": "refresh",
            }

    def introspect(self, token: str, *, hint: str | None = None) -> dict[str, Any]:
        """RFC 7662-style answer of the POST introspect endpoints; ``{"active": false}`` if dead.

        Private-app tokens are not OAuth tokens, so they introspect as inactive.
        """
        order = ("refresh", "access") if hint == "refresh_token" else ("access", "refresh")
        for kind in order:
            if kind == "access":
                info = self.access_token_info(token)
                if info is not None:
                    info.pop("signed_access_token", None)
                    info.pop("is_private_distribution", None)
                    return {
                        "active": True,
                        "token_use": "access_token",
                        **info,
                        "token_type": "Bearer",
                        "client_id": self.config.client_id,
                    }
            else:
                info = self.refresh_token_info(token)
                if info is not None:
                    extra = {"active": True, "token_use": "refresh_token", "app_id": self.config.app_id}
                    return {**extra, **info}
        return {"active": False}

    def revoke(self, token: str) -> bool:
        """Revoke a refresh token (access tokens minted from it live on) or one access token.

        Returns whether anything was revoked; the endpoints answer 204 either way.
        """
        with self._lock:
            refresh = self._refresh.get(token)
            if refresh is not None:
                refresh.revoked = True
                return True
            access = self._access.get(token)
            if access is not None and access.kind == "oauth":
                access.revoked = True
                return True
        return False

    # --- CRM route checks ----------------------------------------------------------------

    def authenticate(self, authorization_header: str | None) -> AuthContext:
        """Resolve ``Authorization: Bearer <token>`` to the caller.

        Raises:
            SandboxHTTPError: 401 INVALID_AUTHENTICATION (missing, malformed, unknown or
                revoked token) or 401 EXPIRED_AUTHENTICATION (with HubSpot's "expire time").
        """
        scheme, _, token = (authorization_header or "").strip().partition(" ")
        token = token.strip()
        with self._lock:
            access = self._access.get(token) if scheme.lower() == "bearer" and token else None
            if access is None or access.revoked:
                raise SandboxHTTPError(
                    401,
                    {
                        "status": "error",
                        "message": messages.INVALID_AUTHENTICATION,
                        "correlationId": _correlation_id(),
                        "category": "INVALID_AUTHENTICATION",
                    },
                )
            now = self._clock()
            if access.expires_at is not None and access.expires_at <= now:
                raise SandboxHTTPError(
                    401,
                    {
                        "status": "error",
                        "message": expired_message(now - access.expires_at),
                        "correlationId": _correlation_id(),
                        "category": "EXPIRED_AUTHENTICATION",
                        "context": {"expire time": [_iso_ms(access.expires_at)]},
                    },
                )
            return AuthContext(
                token=access.token,
                scopes=access.scopes,
                hub_id=self.config.portal_id,
                kind=access.kind,
                user_id=self.config.user_id if access.kind == "oauth" else None,
                expires_at=access.expires_at,
            )

    def require_scopes(self, ctx: AuthContext, any_of: Sequence[str]) -> None:
        """Pass if ``ctx`` holds at least one of ``any_of`` (or ``any_of`` is empty).

        Raises:
            SandboxHTTPError: 403 MISSING_SCOPES listing ``any_of`` as requiredGranularScopes.
        """
        if not any_of or any(scope in ctx.scopes for scope in any_of):
            return
        raise SandboxHTTPError(
            403,
            {
                "status": "error",
                "message": messages.MISSING_SCOPES,
                "correlationId": _correlation_id(),
                "errors": [
                    {
                        "message": messages.MISSING_SCOPES_DETAIL,
                        "context": {"requiredGranularScopes": list(any_of)},
                    }
                ],
                "links": {"scopes": messages.SCOPES_LINK},
                "category": "MISSING_SCOPES",
            },
        )

    # --- admin ---------------------------------------------------------------------------

    def issue_private_app_token(self, scopes: str | Iterable[str] | None = None) -> str:
        """A static private-app token (never expires on its own) with ``scopes`` (default all)."""
        granted = normalize_scopes(scopes) if scopes is not None else ALL_SCOPES
        token = f"pat-{HUBLET}-{_new_uuid()}"
        with self._lock:
            self._access[token] = _AccessToken(
                token=token, kind="private_app", scopes=granted, issued_at=self._clock(), expires_at=None
            )
        return token

    def holds_grant(self, params: Mapping[str, str]) -> bool:
        """Whether this portal issued the code or refresh token a token request redeems."""
        with self._lock:
            if params.get("grant_type") == "authorization_code":
                return (params.get("code") or "") in self._codes
            return (params.get("refresh_token") or "") in self._refresh

    def is_known_token(self, token: str) -> bool:
        """Whether this portal issued ``token`` as an access, private-app or refresh token."""
        with self._lock:
            return token in self._access or token in self._refresh

    def is_known_access_token(self, token: str) -> bool:
        """Whether ``token`` was issued as an access or private-app token (in any state)."""
        with self._lock:
            return token in self._access

    def expire(self, token: str | None = None, *, all_tokens: bool = False) -> int:
        """Make access tokens expired now, so tests never patch the clock.

        ``token`` names one access token of either kind; ``all_tokens`` expires every OAuth
        access token (private-app tokens only when named). Returns how many were changed.
        """
        now = self._clock()
        changed = 0
        with self._lock:
            if all_tokens:
                targets = [a for a in self._access.values() if a.kind == "oauth"]
            else:
                one = self._access.get(token or "")
                targets = [one] if one is not None else []
            for access in targets:
                # One second in the past, so the 401 says "expired 1 second(s) ago" at once.
                if access.expires_at is None or access.expires_at > now - 1:
                    access.expires_at = now - 1
                    changed += 1
        return changed

    def snapshot(self) -> dict[str, Any]:
        """Every token issued (with its state) and every token request, for tests."""
        now = self._clock()
        with self._lock:
            access = [
                {
                    "kind": "private_app" if a.kind == "private_app" else "access",
                    "token": a.token,
                    "scopes": list(a.scopes),
                    "grant_type": a.grant_type,
                    "issued_at": a.issued_at,
                    "expires_at": a.expires_at,
                    "expired": a.expires_at is not None and a.expires_at <= now,
                    "revoked": a.revoked,
                    "refresh_token": a.refresh_token,
                }
                for a in self._access.values()
            ]
            refresh = [
                {
                    "kind": "refresh",
                    "token": r.token,
                    "scopes": list(r.scopes),
                    "issued_at": r.issued_at,
                    "revoked": r.revoked,
                    "rotated": r.rotated,
                }
                for r in self._refresh.values()
            ]
            requests = [dict(entry) for entry in self._requests]
        return {"tokens": access + refresh, "requests": requests}
