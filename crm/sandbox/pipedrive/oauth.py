"""Pipedrive's OAuth server: the consent page, codes, and the token endpoint with Basic auth.

    GET  /oauth/authorize?client_id&redirect_uri[&state]   the consent page ("Allow and install" / "Cancel")
    POST /oauth/authorize/decision                          its form; 302 to redirect_uri with code+state
                                                            or error=access_denied
    POST /oauth/token                                       authorization_code and refresh_token grants;
                                                            client credentials in HTTP Basic auth only
    POST /oauth/revoke                                      forget a refresh token (and its access tokens)

The token response carries ``api_domain``: ``config.api_domain`` or this sandbox's own base
URL, so a client following it comes straight back here (docs/PIPEDRIVE_API.md §1).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import urllib.parse

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox.pipedrive import messages as msg
from crm.sandbox.pipedrive.auth import AuthError
from crm.sandbox.pipedrive.wire import state_of

DECISION_PATH = "/oauth/authorize/decision"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#192435;margin:0}"
    "main{max-width:34rem;margin:4rem auto;background:#fff;border:1px solid #d5d8dc;border-radius:8px;padding:2rem}"
    "h1{font-size:1.3rem;margin-top:0}.muted{color:#6a717a;font-size:.9rem}"
    ".actions{display:flex;gap:.75rem;margin-top:1.5rem}button{font-size:1rem;padding:.6rem 1.2rem;border-radius:4px}"
    ".allow{background:#017737;border:1px solid #017737;color:#fff}.cancel{background:#fff;border:1px solid #d5d8dc}"
    ".error{border-left:4px solid #e5484d;padding-left:1rem}"
)


def _page(title: str, content: str, status: int = 200, form_target: str | None = None) -> HTMLResponse:
    headers = dict(PAGE_HEADERS)
    if form_target:
        # Browsers check form-action against the redirect after the POST too.
        parts = urllib.parse.urlsplit(form_target)
        headers["Content-Security-Policy"] += f" {parts.scheme}://{parts.netloc}"
    body = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body><main>{content}</main></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=headers)


def _error_page(message: str) -> HTMLResponse:
    content = (f'<h1>Something went wrong</h1><p class="error" role="alert">{html.escape(message)}</p>'
               '<p class="muted">No app was installed. Go back to the app and try again.</p>')  # fmt: skip
    return _page("Authorization error", content, status=400)


async def show_consent(request: Request) -> Response:
    state = state_of(request)
    cfg = state.config
    client_id = request.query_params.get("client_id", "")
    redirect_uri = request.query_params.get("redirect_uri", "")
    # Never redirect to an unregistered URI: an error page instead, as OAuth servers do.
    if not hmac.compare_digest(client_id.encode(), cfg.client_id.encode()):
        return _error_page(msg.OAUTH_BAD_CLIENT)
    if redirect_uri not in cfg.redirect_uris:
        return _error_page(msg.OAUTH_BAD_REDIRECT)
    nonce = state.auth.open_consent(redirect_uri, request.query_params.get("state"))
    admin = state.users[0]
    scopes = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in cfg.scopes)
    content = (
        f"<h1>Install {html.escape(cfg.app_name)}?</h1>"
        f"<p>Company: <strong>{html.escape(cfg.company_name)}</strong> ({html.escape(cfg.company_domain)})<br>"
        f'<span class="muted">Signed in as {html.escape(admin.name)} ({html.escape(admin.email)})</span></p>'
        f'<p>The app asks for these permissions:</p><ul id="scopes">{scopes}</ul>'
        f'<p class="muted">You will be sent back to <code>{html.escape(redirect_uri)}</code>.</p>'
        f'<form method="post" action="{DECISION_PATH}"><input type="hidden" name="nonce" value="{html.escape(nonce)}">'
        '<div class="actions"><button type="submit" class="allow" name="decision" value="allow">Allow and install</button>'
        '<button type="submit" class="cancel" name="decision" value="cancel">Cancel</button></div></form>'
        '<p class="muted">This is the embedded Pipedrive sandbox; no real Pipedrive account is involved.</p>'
    )
    return _page(f"Install {cfg.app_name}", content, form_target=redirect_uri)


async def answer_consent(request: Request) -> Response:
    state = state_of(request)
    form = await request.form()
    nonce, decision = form.get("nonce"), form.get("decision")
    consent = state.auth.take_consent(nonce) if isinstance(nonce, str) else None
    if consent is None:
        return _error_page(msg.OAUTH_CONSENT_EXPIRED)
    params: dict[str, str] = {}
    if decision == "allow":
        params["code"] = state.auth.mint_code(state.users[0].id, consent.redirect_uri)
    else:
        params["error"] = "access_denied"
    if consent.state is not None:
        params["state"] = consent.state
    separator = "&" if urllib.parse.urlsplit(consent.redirect_uri).query else "?"
    return RedirectResponse(
        consent.redirect_uri + separator + urllib.parse.urlencode(params), status_code=302
    )


def _client_from_basic(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def api_domain(request: Request) -> str:
    configured = state_of(request).config.api_domain
    return configured or str(request.base_url).rstrip("/")


async def create_token(request: Request) -> Response:
    state = state_of(request)
    cfg = state.config
    credentials = _client_from_basic(request.headers.get("authorization"))
    if credentials is None:
        return JSONResponse(msg.oauth_error("invalid_client", msg.OAUTH_NO_CLIENT), status_code=401)
    client_ok = hmac.compare_digest(credentials[0].encode(), cfg.client_id.encode())
    secret_ok = hmac.compare_digest(credentials[1].encode(), cfg.client_secret.encode())
    if not (client_ok and secret_ok):
        return JSONResponse(msg.oauth_error("invalid_client", msg.OAUTH_BAD_CLIENT), status_code=401)
    form = await request.form()
    grant = form.get("grant_type")
    try:
        if not grant:
            raise AuthError("invalid_request", msg.OAUTH_NO_GRANT)
        if grant == "authorization_code":
            code, redirect_uri = form.get("code"), form.get("redirect_uri")
            token = state.auth.exchange_code(
                str(code or ""), str(redirect_uri) if redirect_uri is not None else None
            )
        elif grant == "refresh_token":
            token = state.auth.refresh(str(form.get("refresh_token") or ""))
        else:
            raise AuthError("unsupported_grant_type", msg.OAUTH_BAD_GRANT)
    except AuthError as exc:
        return JSONResponse(msg.oauth_error(exc.kind, exc.description), status_code=exc.status)
    return JSONResponse({**token, "api_domain": api_domain(request)}, headers={"Cache-Control": "no-store"})


async def revoke_token(request: Request) -> Response:
    """Revoke a refresh (or access) token: client credentials in Basic auth, ``token`` in the form."""
    state = state_of(request)
    cfg = state.config
    credentials = _client_from_basic(request.headers.get("authorization"))
    if credentials is None or not (
        hmac.compare_digest(credentials[0].encode(), cfg.client_id.encode())
        and hmac.compare_digest(credentials[1].encode(), cfg.client_secret.encode())
    ):
        return JSONResponse(msg.oauth_error("invalid_client", msg.OAUTH_BAD_CLIENT), status_code=401)
    form = await request.form()
    token = form.get("token")
    if not isinstance(token, str) or not token:
        return JSONResponse(msg.oauth_error("invalid_request", "Missing parameter: token"), status_code=400)
    state.auth.revoke(token)
    # Like RFC 7009: an unknown token is "revoked" too, so the answer says nothing about it.
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


def routes() -> list[BaseRoute]:
    return [
        Route("/oauth/authorize", show_consent, methods=["GET"]),
        Route(DECISION_PATH, answer_consent, methods=["POST"]),
        Route("/oauth/token", create_token, methods=["POST"]),
        Route("/oauth/revoke", revoke_token, methods=["POST"]),
    ]
