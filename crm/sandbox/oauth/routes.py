"""HTTP face of the sandbox's OAuth: consent page, token endpoints, introspection, revocation, admin.

Paths follow HUBSPOT_API.md §1: v1 (what the official SDK calls) plus the date-versioned
2026-03 endpoints the app uses, with v3 and 2026-09 as aliases. v1 reads parameters from the
query string too; later versions read the form body only. Every call to a token, introspect
or revoke endpoint is recorded (parameter names and where they arrived, never values) and
shown by ``GET /_sandbox/tokens``.
"""

from __future__ import annotations

import html
import json
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from crm.sandbox.config import SandboxConfig
from crm.sandbox.oauth import messages
from crm.sandbox.oauth.models import ALL_SCOPES, ConsentError, ConsentRequest, OAuthModel, TokenGrantError
from crm.sandbox.wire import PORTAL_KEY, find_portal

LATER_VERSIONS = ("v3", "2026-03", "2026-09")
TOKEN_VERSIONS = ("v1", *LATER_VERSIONS)
APPROVE_PATH = "/oauth/authorize/approve"
# Consent pages and token answers must never be cached, framed or leak their URL onward.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SCOPE_LABELS = {
    "oauth": "Basic OAuth functionality",
    "tickets": "Tickets",
}


class _Portal(Protocol):
    config: SandboxConfig
    auth: OAuthModel


class _State(_Portal, Protocol):
    @property
    def portals(self) -> Mapping[int, _Portal]: ...


def routes(state: _State) -> list[Route]:
    """The OAuth routes of the sandbox, bound to the default portal ``state`` and its ``portals``.

    Consents wait in the default portal's model; the code, and the tokens it buys, belong to
    the portal the person picks. Token calls go to the portal that issued the code or token.
    """
    handlers = _Handlers(state)
    table: list[Route] = [
        Route("/oauth/authorize", handlers.show_consent, methods=["GET"]),
        Route("/oauth/{portal_id:int}/authorize", handlers.show_consent, methods=["GET"]),
        Route(APPROVE_PATH, handlers.answer_consent, methods=["POST"]),
        Route("/oauth/v1/access-tokens/{token}", handlers.get_access_token, methods=["GET"]),
        Route("/oauth/v1/refresh-tokens/{token}", handlers.get_refresh_token, methods=["GET"]),
        Route("/oauth/v1/refresh-tokens/{token}", handlers.archive_refresh_token, methods=["DELETE"]),
        Route("/_sandbox/private-app-token", handlers.create_private_app_token, methods=["POST"]),
        Route("/_sandbox/oauth/code", handlers.create_code, methods=["POST"]),
        Route("/_sandbox/tokens", handlers.list_tokens, methods=["GET"]),
        Route("/_sandbox/tokens/expire", handlers.expire_tokens, methods=["POST"]),
    ]
    for version in TOKEN_VERSIONS:
        table.append(Route(f"/oauth/{version}/token", handlers.create_token, methods=["POST"]))
    for version in LATER_VERSIONS:
        table.append(Route(f"/oauth/{version}/token/introspect", handlers.introspect_token, methods=["POST"]))
        table.append(Route(f"/oauth/{version}/token/revoke", handlers.revoke_token, methods=["POST"]))
    return table


class _Handlers:
    def __init__(self, state: _State):
        self.state = state

    @property
    def auth(self) -> OAuthModel:
        return self.state.auth

    @property
    def config(self) -> SandboxConfig:
        return self.state.auth.config

    def _owner(self, token: str) -> OAuthModel:
        """The model of the portal that issued ``token``; the default portal's when none did."""
        for portal in self.state.portals.values():
            if portal.auth.is_known_token(token):
                return portal.auth
        return self.auth

    def _grant_owner(self, params: dict[str, str]) -> OAuthModel:
        for portal in self.state.portals.values():
            if portal.auth.holds_grant(params):
                return portal.auth
        return self.auth

    def _admin_portal(self, request: Request, body: dict[str, Any]) -> _Portal:
        """``portal_id`` from the body, else from the query (the gate's pick), else the default."""
        if "portal_id" in body:
            return find_portal(self.state.portals, body.pop("portal_id"))
        picked: _Portal = request.scope.get("state", {}).get(PORTAL_KEY) or self.state
        return picked

    def _chosen_portal(self, consent: ConsentRequest, raw: str | None) -> _Portal:
        """The portal picked on the consent page; it must be one the link allows."""
        portals = self.state.portals
        if raw is None:
            pid = consent.portal_id if consent.portal_id is not None else self.config.portal_id
        elif raw.strip().isdigit():
            pid = int(raw)
        else:
            raise ConsentError(messages.CONSENT_WRONG_PORTAL)
        if pid not in portals or (consent.portal_id is not None and pid != consent.portal_id):
            raise ConsentError(messages.CONSENT_WRONG_PORTAL)
        return portals[pid]

    # --- consent page --------------------------------------------------------------------

    async def show_consent(self, request: Request) -> Response:
        """HubSpot's install screen: app, account picker, scopes, and Connect app / Cancel.

        ``/oauth/{portal_id}/authorize`` offers that portal only; ``/oauth/authorize`` every one.
        """
        q = request.query_params
        named = request.path_params.get("portal_id")
        portals = self.state.portals
        # An unknown portal goes to the default portal's check, which refuses it.
        target = portals.get(named) if named is not None else None
        try:
            consent = (target or self.state).auth.check_authorize_request(
                client_id=q.get("client_id"),
                redirect_uri=q.get("redirect_uri"),
                scopes=q.get("scope") or q.get("scopes"),
                optional_scopes=q.get("optional_scope"),
                state=q.get("state"),
                code_challenge=q.get("code_challenge"),
                code_challenge_method=q.get("code_challenge_method"),
                portal_id=request.path_params.get("portal_id"),
            )
        except ConsentError as exc:
            return _error_page(str(exc))
        nonce = self.auth.begin_consent(consent)
        action = request.scope.get("root_path", "") + APPROVE_PATH
        choices = [target.config] if target is not None else [p.config for p in portals.values()]
        return _consent_page(self.config, consent, nonce, action, choices)

    async def answer_consent(self, request: Request) -> Response:
        """The consent form's POST: redirect with a code, or with error=access_denied on Cancel."""
        form = await _read_form(request)
        try:
            consent = self.auth.take_consent(_text(form, "nonce"))
        except ConsentError as exc:
            return _error_page(str(exc))
        if _text(form, "decision") == "approve":
            try:
                portal = self._chosen_portal(consent, _text(form, "portal_id"))
            except ConsentError as exc:
                return _error_page(str(exc))
            params = {"code": portal.auth.grant_code(consent)}
        else:
            # HubSpot sends nothing on denial; the sandbox tells the app so it can say so.
            params = {"error": "access_denied", "error_description": messages.DENIED_DESCRIPTION}
        if consent.state is not None:
            params["state"] = consent.state
        # 303 so the browser follows with a GET, whatever method reached us.
        location = _add_query(consent.redirect_uri, params)
        return RedirectResponse(location, status_code=303, headers=PAGE_HEADERS)

    # --- token endpoints -----------------------------------------------------------------

    async def create_token(self, request: Request) -> Response:
        """``POST /oauth/{v1,v3,2026-03,2026-09}/token``: code, refresh and (not 2026-09) client_credentials."""
        form = await _read_form(request)
        params = _params(request, form)
        grant_type = params.get("grant_type")
        auth = self._grant_owner(params)
        try:
            if grant_type == "client_credentials" and "/2026-09/" in request.url.path:
                raise TokenGrantError(
                    messages.BAD_GRANT_TYPE
                )  # 2026-09 dropped this grant (HUBSPOT_API.md §1.2)
            body = auth.grant(params)
        except TokenGrantError as exc:
            self._record(auth, request, form, grant_type, 400, exc.status)
            return JSONResponse(exc.body(), status_code=400, headers=NO_STORE)
        self._record(auth, request, form, grant_type, 200, None)
        return JSONResponse(body, headers=NO_STORE)

    async def introspect_token(self, request: Request) -> Response:
        """``POST …/token/introspect``; the token may be sent as token, access_token or refresh_token."""
        form = await _read_form(request)
        params = _params(request, form)
        try:
            self._check_client_if_sent(params)
            token, hint = _token_param(params)
        except TokenGrantError as exc:
            self._record(self.auth, request, form, None, 400, exc.status)
            return JSONResponse(exc.body(), status_code=400, headers=NO_STORE)
        auth = self._owner(token)
        self._record(auth, request, form, None, 200, None)
        return JSONResponse(auth.introspect(token, hint=hint), headers=NO_STORE)

    async def revoke_token(self, request: Request) -> Response:
        """``POST …/token/revoke``: 204 whether or not the token was known (RFC 7009)."""
        form = await _read_form(request)
        params = _params(request, form)
        try:
            self._check_client_if_sent(params)
            token, _ = _token_param(params)
        except TokenGrantError as exc:
            self._record(self.auth, request, form, None, 400, exc.status)
            return JSONResponse(exc.body(), status_code=400, headers=NO_STORE)
        auth = self._owner(token)
        auth.revoke(token)
        self._record(auth, request, form, None, 204, None)
        return Response(status_code=204)

    async def get_access_token(self, request: Request) -> Response:
        """``GET /oauth/v1/access-tokens/{t}``; unknown or expired tokens answer ``{"active": false}``."""
        auth = self._owner(request.path_params["token"])
        self._record(auth, request, FormData(), None, 200, None)
        info = auth.access_token_info(request.path_params["token"])
        return JSONResponse(info if info is not None else {"active": False}, headers=NO_STORE)

    async def get_refresh_token(self, request: Request) -> Response:
        """``GET /oauth/v1/refresh-tokens/{t}``; unknown or revoked tokens answer ``{"active": false}``."""
        auth = self._owner(request.path_params["token"])
        self._record(auth, request, FormData(), None, 200, None)
        info = auth.refresh_token_info(request.path_params["token"])
        return JSONResponse(info if info is not None else {"active": False}, headers=NO_STORE)

    async def archive_refresh_token(self, request: Request) -> Response:
        """``DELETE /oauth/v1/refresh-tokens/{t}``: revoke; 204."""
        auth = self._owner(request.path_params["token"])
        auth.revoke(request.path_params["token"])
        self._record(auth, request, FormData(), None, 204, None)
        return Response(status_code=204)

    def _check_client_if_sent(self, params: dict[str, str]) -> None:
        # HubSpot wants the client pair on introspect/revoke; the sandbox checks it only when sent.
        if params.get("client_id") or params.get("client_secret"):
            self.auth.check_client(params.get("client_id"), params.get("client_secret"))

    def _record(
        self,
        auth: OAuthModel,
        request: Request,
        form: FormData,
        grant_type: str | None,
        status: int,
        error: str | None,
    ) -> None:
        """Log the call in the token-request log of the portal it concerns (``GET /_sandbox/tokens``)."""
        headers = ["authorization"] if "authorization" in request.headers else []
        auth.record_request(
            path=request.url.path,
            grant_type=grant_type,
            query_params=request.query_params.keys(),
            body_params=form.keys(),
            header_params=headers,
            status=status,
            error=error,
        )

    # --- admin (/_sandbox/, no auth) -----------------------------------------------------

    async def create_private_app_token(self, request: Request) -> Response:
        """``POST /_sandbox/private-app-token`` with optional ``{"scopes": [...], "portal_id": n}``.

        Scopes default to all; the portal to the default one. Answers ``{token, scopes, portal_id}``.
        """
        body = await _read_json(request)
        if isinstance(body, Response):
            return body
        auth = self._admin_portal(request, body).auth
        scopes = body.get("scopes")
        if scopes is not None and not isinstance(scopes, (str, list)):
            return _admin_error(400, "scopes must be a list of strings or a space-separated string")
        token = auth.issue_private_app_token(scopes)
        ctx = auth.authenticate(f"Bearer {token}")
        body = {"token": token, "scopes": list(ctx.scopes), "portal_id": ctx.hub_id}
        return JSONResponse(body, headers=NO_STORE)

    async def create_code(self, request: Request) -> Response:
        """``POST /_sandbox/oauth/code``: what pressing Connect app does, as JSON.

        Answers ``{"code", "state", "location"}`` where ``location`` is the redirect the
        browser would follow.
        """
        body = await _read_json(request)
        if isinstance(body, Response):
            return body
        auth = self._admin_portal(request, body).auth
        text_fields = ("client_id", "redirect_uri", "code_challenge", "code_challenge_method")
        wrong = [name for name in text_fields if name in body and not isinstance(body[name], str)]
        if wrong:
            return _admin_error(400, f"these fields must be strings: {', '.join(wrong)}")
        state = body.get("state")
        try:
            consent = auth.check_authorize_request(
                client_id=body.get("client_id", self.config.client_id),
                redirect_uri=body.get("redirect_uri", next(iter(self.config.redirect_uris), "")),
                scopes=body.get("scopes", body.get("scope")) or ALL_SCOPES,
                optional_scopes=body.get("optional_scopes", body.get("optional_scope")),
                state=None if state is None else str(state),
                code_challenge=body.get("code_challenge"),
                code_challenge_method=body.get("code_challenge_method"),
            )
        except ConsentError as exc:
            return _admin_error(400, str(exc))
        code = auth.grant_code(consent)
        params = {"code": code}
        if consent.state is not None:
            params["state"] = consent.state
        location = _add_query(consent.redirect_uri, params)
        return JSONResponse({"code": code, "state": consent.state, "location": location}, headers=NO_STORE)

    async def list_tokens(self, request: Request) -> Response:
        """``GET /_sandbox/tokens[?portal_id=]``: the portal's tokens and token-endpoint requests."""
        return JSONResponse(self._admin_portal(request, {}).auth.snapshot(), headers=NO_STORE)

    async def expire_tokens(self, request: Request) -> Response:
        """``POST /_sandbox/tokens/expire``: ``{"token": ...}`` (any portal's) or ``{"all": true}`` (one portal)."""
        body = await _read_json(request)
        if isinstance(body, Response):
            return body
        if body.get("all") is True:
            return JSONResponse({"expired": self._admin_portal(request, body).auth.expire(all_tokens=True)})
        token = body.get("token")
        if not isinstance(token, str) or not token:
            return _admin_error(400, 'send {"token": "<access token>"} or {"all": true}')
        auth = self._owner(token)
        if not auth.is_known_access_token(token):
            return _admin_error(404, "no such access token", category="OBJECT_NOT_FOUND")
        return JSONResponse({"expired": auth.expire(token)})


async def _read_form(request: Request) -> FormData:
    """The request's form body; an unparsable body counts as empty, so the grant fails normally."""
    try:
        return await request.form()
    except Exception:  # noqa: BLE001 - malformed bodies must give HubSpot's dialect, not a 500
        return FormData()


async def _read_json(request: Request) -> dict[str, Any] | Response:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        return _admin_error(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return _admin_error(400, "the body must be a JSON object")
    return body


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _params(request: Request, form: FormData) -> dict[str, str]:
    """Parameters as the endpoint version reads them: v1 merges the query string, body wins."""
    params: dict[str, str] = {}
    if request.url.path.startswith("/oauth/v1/"):
        params.update(request.query_params.items())
    params.update((k, v) for k, v in form.multi_items() if isinstance(v, str))
    return params


def _token_param(params: dict[str, str]) -> tuple[str, str | None]:
    # Doc prose names the field after the token type, the reference says "token": take any.
    for name in ("token", "access_token", "refresh_token"):
        value = params.get(name)
        if value:
            implied_hint = None if name == "token" else name
            return value, params.get("token_type_hint") or implied_hint
    raise TokenGrantError(messages.MISSING_TOKEN)


def _add_query(uri: str, params: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(uri)
    extra = urllib.parse.urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urllib.parse.urlunsplit(parts._replace(query=query))


def _admin_error(status: int, message: str, *, category: str = "VALIDATION_ERROR") -> JSONResponse:
    return JSONResponse(
        {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category},
        status_code=status,
    )


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f5f8fa;color:#33475b;margin:0}
main{max-width:34rem;margin:4rem auto;background:#fff;border:1px solid #cbd6e2;border-radius:8px;padding:2rem}
h1{font-size:1.35rem;margin-top:0}.muted{color:#516f90;font-size:.9rem}
ul{padding-left:1.2rem}li{margin:.2rem 0}code{font-size:.85rem}
.actions{display:flex;gap:.75rem;margin-top:1.5rem}
button{font-size:1rem;padding:.6rem 1.2rem;border-radius:4px;cursor:pointer}
.connect{background:#ff7a59;border:1px solid #ff7a59;color:#fff}
.cancel{background:#fff;border:1px solid #cbd6e2;color:#33475b}
.error{border-left:4px solid #f2545b;padding-left:1rem}
"""


def _document(title: str, content: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{content}</main></body></html>"
    )


def _scope_items(scopes: Iterable[str]) -> str:
    items = []
    for scope in scopes:
        label = SCOPE_LABELS.get(scope)
        code = f"<code>{html.escape(scope)}</code>"
        items.append(f"<li>{html.escape(label)} ({code})</li>" if label else f"<li>{code}</li>")
    return "".join(items)


def _account_choice(choices: list[SandboxConfig]) -> tuple[str, str]:
    """(the account paragraph, the form's portal field): one account named, several offered as radios."""
    if len(choices) == 1:
        only = choices[0]
        text = (
            f"<p>Account: <strong>{html.escape(only.hub_domain)}</strong> "
            f"(portal {html.escape(str(only.portal_id))})<br>"
        )
        return text, f'<input type="hidden" name="portal_id" value="{only.portal_id}">'
    radios = "".join(
        f'<label><input type="radio" name="portal_id" value="{c.portal_id}"{" checked" if i == 0 else ""}> '
        f"<strong>{html.escape(c.hub_domain)}</strong> (portal {c.portal_id})</label><br>"
        for i, c in enumerate(choices)
    )
    return "<p>", f'<fieldset id="accounts"><legend>Choose an account</legend>{radios}</fieldset>'


def _consent_page(
    config: SandboxConfig, consent: ConsentRequest, nonce: str, action: str, choices: list[SandboxConfig]
) -> HTMLResponse:
    app = html.escape(config.app_name)
    account, portal_field = _account_choice(choices)
    content = (
        f"<h1>Connect {app} to your HubSpot account</h1>"
        f"{account}"
        f'<span class="muted">Signed in as {html.escape(config.user_email)}</span></p>'
        f"<p>{app} is requesting access to:</p>"
        f'<ul id="scopes">{_scope_items(consent.scopes)}</ul>'
        f'<p class="muted">You\'ll be sent back to <code>{html.escape(consent.redirect_uri)}</code>.</p>'
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="nonce" value="{html.escape(nonce)}">'
        f"{portal_field}"
        '<div class="actions">'
        '<button type="submit" class="connect" name="decision" value="approve">Connect app</button>'
        '<button type="submit" class="cancel" name="decision" value="cancel">Cancel</button>'
        "</div></form>"
        '<p class="muted">This is the embedded HubSpot sandbox; no real HubSpot account is involved.</p>'
    )
    headers = dict(PAGE_HEADERS)
    # Browsers check form-action against the redirect after the POST too, so the app's origin
    # (a registered redirect URI, never request input) must be allowed beside our own.
    headers["Content-Security-Policy"] += f"; form-action 'self' {_origin(consent.redirect_uri)}"
    return HTMLResponse(_document(f"Connect {config.app_name}", content), headers=headers)


def _origin(uri: str) -> str:
    parts = urllib.parse.urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def _error_page(message: str) -> HTMLResponse:
    content = (
        "<h1>Something went wrong</h1>"
        f'<p class="error" role="alert">{html.escape(message)}</p>'
        '<p class="muted">No app was connected. Go back to the app and try again.</p>'
    )
    return HTMLResponse(_document("Authorization error", content), status_code=400, headers=PAGE_HEADERS)
