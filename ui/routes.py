"""Our HTTP routes beside the Streamlit UI: OAuth connect and callback, webhook, health.

Handlers are thin: they read the request, call ``crm`` and answer. The OAuth ones are
plain ``def`` (Starlette runs them in its thread pool, off the event loop) because they
do SQLite and HubSpot work. They never need a Streamlit session: settings come from
``request.app.state.settings`` when the app (or a test) put them there, else from
``ui.runtime.settings()``.

``GET /hubspot/connect?ticket=...`` starts the flow and sets the HttpOnly binding cookie;
``GET /hubspot/callback`` finishes it; both end with a 302 to ``/connect?hubspot=...``
whose query never carries a code, state or token.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from crm import oauth
from crm.config import Settings
from crm.errors import ConfigError, CrmError, OAuthFlowError
from ui.webhook_route import hubspot_webhook

log = logging.getLogger(__name__)

BIND_COOKIE = "hs_bind"
COOKIE_PATH = "/hubspot"
CONNECT_PAGE = "/connect"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def hubspot_connect(request: Request) -> Response:
    """Start connecting HubSpot: 302 to HubSpot's authorize page, with the binding cookie."""
    try:
        settings = _settings(request)
        bounce = _loopback_origin_bounce(request, settings)
        if bounce is not None:
            return bounce
        url, nonce = oauth.start_connect(settings, ticket=request.query_params.get("ticket") or None)
    except OAuthFlowError as exc:
        return _back_to_connect("error", exc.reason)
    except ConfigError as exc:
        log.warning("Cannot start connecting HubSpot: %s", exc.setting)
        return _back_to_connect("error", "config")
    except CrmError as exc:
        log.warning("Cannot start connecting HubSpot: %s", type(exc).__name__)
        return _back_to_connect("error", "unavailable")
    response = RedirectResponse(url, status_code=302, headers=_NO_STORE)
    response.set_cookie(
        BIND_COOKIE,
        nonce,
        max_age=oauth.STATE_TTL_S,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",  # Lax: the cookie must ride along on HubSpot's top-level redirect back
        secure=settings.redirect_uri.lower().startswith("https://"),
    )
    return response


def hubspot_callback(request: Request) -> Response:
    """HubSpot's redirect back: finish connecting, then 302 to the Connect page."""
    params = request.query_params
    reason: str | None = None
    try:
        settings = _settings(request)
        oauth.complete_connect(
            settings,
            state=params.get("state"),
            code=params.get("code"),
            nonce=request.cookies.get(BIND_COOKIE),
            error=params.get("error"),
        )
    except OAuthFlowError as exc:
        reason = exc.reason
    except ConfigError as exc:
        log.warning("Cannot finish connecting HubSpot: %s", exc.setting)
        reason = "config"
    except CrmError as exc:
        log.warning("Cannot finish connecting HubSpot: %s", type(exc).__name__)
        reason = "unavailable"
    response = _back_to_connect("connected") if reason is None else _back_to_connect("error", reason)
    if reason != "state_foreign":
        # A foreign callback must not cancel a flow this browser may have in progress.
        response.delete_cookie(BIND_COOKIE, path=COOKIE_PATH)
    return response


def healthz(request: Request) -> Response:
    """Readiness: 200 when the cache answers, 503 otherwise; never any secret."""
    try:
        settings = _settings(request)
    except ConfigError as exc:
        return JSONResponse({"status": "error", "problem": f"setting {exc.setting}"}, status_code=503)
    facts: dict[str, Any] = oauth.health(settings)
    if settings.is_sandbox:
        facts["sandbox_url"] = settings.base_url
    ok = facts.get("db") == "ok"
    facts["status"] = "ok" if ok else "error"
    return JSONResponse(facts, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _loopback_origin_bounce(request: Request, settings: Settings) -> Response | None:
    """Send the browser to the redirect URI's origin when it came in on another loopback name.

    The binding cookie belongs to the host the browser used, and HubSpot returns it to the
    configured redirect URI. Opening http://127.0.0.1:8501 with the default redirect URI
    http://localhost:8501/... would otherwise lose the cookie and refuse the callback. Only
    loopback names are bounced: behind a proxy the internal host always differs from the
    public one, and the target comes from settings, never from the request.
    """
    target = urlsplit(settings.redirect_uri)
    here = request.url
    if request.query_params.get("bounced") or here.hostname not in LOOPBACK_HOSTS:
        return None
    if target.hostname not in LOOPBACK_HOSTS:
        return None
    target_port = target.port or (443 if target.scheme == "https" else 80)
    here_port = here.port or (443 if here.scheme == "https" else 80)
    if (here.scheme, here.hostname, here_port) == (target.scheme, target.hostname, target_port):
        return None
    query = dict(request.query_params)
    query["bounced"] = "1"
    location = f"{target.scheme}://{target.netloc}{request.url.path}?{urlencode(query)}"
    return RedirectResponse(location, status_code=302, headers=_NO_STORE)


def _back_to_connect(result: str, reason: str | None = None) -> Response:
    query = {"hubspot": result}
    if reason:
        query["reason"] = reason
    return RedirectResponse(f"{CONNECT_PAGE}?{urlencode(query)}", status_code=302, headers=_NO_STORE)


def _settings(request: Request) -> Settings:
    configured = getattr(request.app.state, "settings", None)
    if configured is not None:
        return configured  # type: ignore[no-any-return]
    from ui.runtime import settings

    return settings()


ROUTES = [
    Route("/hubspot/connect", hubspot_connect, methods=["GET"]),
    Route("/hubspot/callback", hubspot_callback, methods=["GET"]),
    Route("/hubspot/webhook", hubspot_webhook, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
]
