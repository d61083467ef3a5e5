"""Our HTTP routes beside the Streamlit UI: OAuth connect and callback, webhook, health.

Handlers are thin: they read the request, call ``crm`` and answer. The OAuth ones are
plain ``def`` (Starlette runs them in its thread pool, off the event loop) because they
do SQLite and HubSpot work. They never need a Streamlit session: settings come from
``request.app.state.settings`` when the app (or a test) put them there, else from
``ui.runtime.settings()``.

``GET /hubspot/connect?ticket=...`` starts the flow and sets the HttpOnly binding cookie;
``GET /hubspot/callback`` finishes it; both end with a 302 to ``/connect?hubspot=...``
whose query never carries a code, state or token. Pipedrive's consent flow is the same
round trip (``Flow``): ``/pipedrive/connect`` and ``/pipedrive/callback``, its own cookie
(path ``/pipedrive``), back to ``/connect?pipedrive=...``. A connect without a valid ticket gets
a plain 403 page instead, and HubSpot is never asked for anything.

Every route goes through ``_guarded``, the one place that

- applies the open-mode proxy rule (``ui.access.open_mode_refusal``) to connect and
  callback, as the access guard does on every page. The webhook and ``/healthz`` are
  exempt on purpose: HubSpot's webhook posts come from the internet through the proxy by
  design and prove themselves with their v3 signature (``crm.webhooks``), not by where they
  come from; refusing them would only lose events. ``/healthz`` changes nothing and says
  only "ok" or "unavailable", and load balancers probe it through the proxy.
- answers a broken cache (``StoreUnavailable``, or an ``OSError``) with a plain 503
  page instead of a bare 500.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import logging
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from crm import crms, oauth, pipedrive_auth
from crm.config import Settings
from crm.errors import ConfigError, CrmError, OAuthFlowError, StoreUnavailable
from crm.interface import WebhookAccounts
from ui.access import open_mode_refusal
from ui.webhook_route import hubspot_webhook, pipedrive_webhook

log = logging.getLogger(__name__)

BIND_COOKIE = "hs_bind"
COOKIE_PATH = "/hubspot"
PIPEDRIVE_BIND_COOKIE = "pd_bind"
CONNECT_PAGE = "/connect"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


_TICKET_REFUSALS = {
    "ticket_required": "Connecting HubSpot starts on the dashboard's Connect page.",
    "ticket_invalid": "This connect link has expired or was already used.",
}
# Reasons complete_connect gives only after the state and the binding cookie matched: this
# browser's flow is over, so its cookie goes. Any other reason leaves the cookie alone.
_FLOW_OVER = frozenset(
    {"access_denied", "provider_error", "code_missing", "code_rejected", "client_rejected"}
    | {"token_inactive", "hubspot_unreachable"}
)


def _guarded(
    handler: Callable[[Request], Response], *, open_mode_rule: bool
) -> Callable[[Request], Response]:
    """``handler`` behind the open-mode proxy rule (when asked) and the broken-cache answer."""

    @functools.wraps(handler)
    def guarded(request: Request) -> Response:
        try:
            if open_mode_rule:
                try:
                    refusal = open_mode_refusal(_settings(request), request.headers)
                except ConfigError:
                    refusal = None  # the handler reports the bad setting the way it always does
                if refusal is not None:
                    log.warning("Open access refused %s: it came through a proxy", request.url.path)
                    return plain_page(403, "Not available through a proxy", refusal)
            return handler(request)
        except (StoreUnavailable, OSError) as exc:
            log.warning("%s: the cache is unavailable (%s)", request.url.path, type(exc).__name__)
            return plain_page(
                503,
                "The dashboard's cache is unavailable",
                "The dashboard could not open or read its cache. Nothing was changed; try again "
                "in a moment. If it persists, the server log says why.",
            )

    return guarded


def plain_page(status: int, title: str, text: str) -> Response:
    """A minimal HTML page: our own escaped sentences (never CRM data) and a link to Connect."""
    back = f'<p><a href="{CONNECT_PAGE}">Go to the Connect page</a></p>'
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{back}</body></html>"
    )
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            **_NO_STORE,
            "Content-Security-Policy": "default-src 'none'",
            "X-Content-Type-Options": "nosniff",
        },
    )


@dataclasses.dataclass(frozen=True)
class Flow:
    """One CRM's consent round trip: its functions, its cookie and the key of its result."""

    crm: str  # the key of the result in the Connect page's query ("hubspot=connected")
    label: str
    cookie: str
    start: Callable[[Settings, str], tuple[str, str]]
    complete: Callable[[Settings, dict[str, str | None]], oauth.ConnectionInfo]
    redirect_uri: Callable[[Settings], str]

    @property
    def cookie_path(self) -> str:
        return f"/{self.crm}"


HUBSPOT = Flow(
    "hubspot",
    "HubSpot",
    BIND_COOKIE,
    lambda settings, ticket: oauth.start_connect(settings, ticket=ticket),
    lambda settings, answer: oauth.complete_connect(settings, **answer),  # type: ignore[arg-type]
    lambda settings: settings.redirect_uri,
)
PIPEDRIVE = Flow(
    "pipedrive",
    "Pipedrive",
    PIPEDRIVE_BIND_COOKIE,
    lambda settings, ticket: pipedrive_auth.start_connect(settings, ticket=ticket),
    lambda settings, answer: pipedrive_auth.complete_connect(settings, **answer),  # type: ignore[arg-type]
    lambda settings: settings.pipedrive_redirect_uri,
)


def hubspot_connect(request: Request) -> Response:
    """Start connecting HubSpot: 302 to HubSpot's authorize page, with the binding cookie."""
    return _connect(request, HUBSPOT)


def pipedrive_connect(request: Request) -> Response:
    """Start connecting Pipedrive: 302 to Pipedrive's consent page, with the binding cookie."""
    return _connect(request, PIPEDRIVE)


def hubspot_callback(request: Request) -> Response:
    """HubSpot's redirect back: finish connecting, then 302 to the Connect page."""
    return _callback(request, HUBSPOT)


def pipedrive_callback(request: Request) -> Response:
    """Pipedrive's redirect back: finish connecting, then 302 to the Connect page."""
    return _callback(request, PIPEDRIVE)


def _connect(request: Request, flow: Flow) -> Response:
    """Start connecting: 302 to the CRM's authorize page, with the binding cookie.

    Only with a ticket from the Connect page (``oauth.start_connect``). Without one: a 403
    page that links to the Connect page, before anything else is read. With an unknown or
    spent one: the same page, after the loopback bounce (which only moves the browser to
    the configured origin, where the ticket is then checked) and with nothing asked of HubSpot.
    """
    ticket = request.query_params.get("ticket") or None
    if ticket is None:
        return plain_page(403, "Start from the Connect page", _TICKET_REFUSALS["ticket_required"])
    try:
        settings = _settings(request)
        bounce = _loopback_origin_bounce(request, flow.redirect_uri(settings))
        if bounce is not None:
            return bounce
        url, nonce = flow.start(settings, ticket)
    except OAuthFlowError as exc:
        if exc.reason in _TICKET_REFUSALS:
            log.info("Connect refused: %s", exc.reason)
            return plain_page(403, "Start from the Connect page", _TICKET_REFUSALS[exc.reason])
        return _back_to_connect("error", exc.reason, flow=flow)
    except ConfigError as exc:
        log.warning("Cannot start connecting %s: %s", flow.label, exc.setting)
        return _back_to_connect("error", "config", flow=flow)
    except StoreUnavailable:
        raise  # the guard answers it with the plain 503 page
    except CrmError as exc:
        log.warning("Cannot start connecting %s: %s", flow.label, type(exc).__name__)
        return _back_to_connect("error", "unavailable", flow=flow)
    response = RedirectResponse(url, status_code=302, headers=_NO_STORE)
    response.set_cookie(
        flow.cookie,
        nonce,
        max_age=oauth.STATE_TTL_S,
        path=flow.cookie_path,
        httponly=True,
        samesite="lax",  # Lax: the cookie must ride along on the CRM's top-level redirect back
        secure=flow.redirect_uri(settings).lower().startswith("https://"),
    )
    return response


def _callback(request: Request, flow: Flow) -> Response:
    params = request.query_params
    reason: str | None = None
    try:
        settings = _settings(request)
        info = flow.complete(
            settings,
            {
                "state": params.get("state"),
                "code": params.get("code"),
                "nonce": request.cookies.get(flow.cookie),
                "error": params.get("error"),
            },
        )
        connected = info.connection or None
        if isinstance(crms.provider_for(flow.crm), WebhookAccounts):  # webhooks set up by API
            from ui.runtime import register_webhooks_soon

            register_webhooks_soon(settings)
    except OAuthFlowError as exc:
        reason = exc.reason
    except ConfigError as exc:
        log.warning("Cannot finish connecting %s: %s", flow.label, exc.setting)
        reason = "config"
    except StoreUnavailable:
        raise  # the guard answers it with the plain 503 page
    except CrmError as exc:
        log.warning("Cannot finish connecting %s: %s", flow.label, type(exc).__name__)
        reason = "unavailable"
    response = (
        _back_to_connect("connected", connection=connected, flow=flow)
        if reason is None
        else _back_to_connect("error", reason, flow=flow)
    )
    if reason is None or reason in _FLOW_OVER:
        # Only the end of this browser's own flow clears its cookie: a callback with a
        # foreign, unknown or missing state (anyone can link to one) must not cancel it.
        response.delete_cookie(flow.cookie, path=flow.cookie_path)
    return response


def healthz(request: Request) -> Response:
    """Readiness: 200 ``{"status": "ok"}`` when the cache answers, else 503 ``"unavailable"``.

    Nothing else: anyone can call it, so mode, connection and settings stay in the log.
    """
    try:
        facts = oauth.health(_settings(request))
        ok = facts.get("db") == "ok"
    except ConfigError as exc:
        log.warning("Health check: the setting %s is invalid", exc.setting)
        ok = False
    return JSONResponse(
        {"status": "ok" if ok else "unavailable"},
        status_code=200 if ok else 503,
        headers={"Cache-Control": "no-store"},
    )


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _loopback_origin_bounce(request: Request, redirect_uri: str) -> Response | None:
    """Send the browser to the redirect URI's origin when it came in on another loopback name.

    The binding cookie belongs to the host the browser used, and HubSpot returns it to the
    configured redirect URI. Opening http://127.0.0.1:8501 with the default redirect URI
    http://localhost:8501/... would otherwise lose the cookie and refuse the callback. Only
    loopback names are bounced: behind a proxy the internal host always differs from the
    public one, and the target comes from settings, never from the request.
    """
    target = urlsplit(redirect_uri)
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


def _back_to_connect(
    result: str, reason: str | None = None, *, connection: str | None = None, flow: Flow = HUBSPOT
) -> Response:
    query = {flow.crm: result}
    if reason:
        query["reason"] = reason
    if connection:
        query["connection"] = connection
    return RedirectResponse(f"{CONNECT_PAGE}?{urlencode(query)}", status_code=302, headers=_NO_STORE)


def _settings(request: Request) -> Settings:
    configured = getattr(request.app.state, "settings", None)
    if configured is not None:
        return configured  # type: ignore[no-any-return]
    from ui.runtime import settings

    return settings()


ROUTES = [
    Route("/hubspot/connect", _guarded(hubspot_connect, open_mode_rule=True), methods=["GET"]),
    Route("/hubspot/callback", _guarded(hubspot_callback, open_mode_rule=True), methods=["GET"]),
    Route("/pipedrive/connect", _guarded(pipedrive_connect, open_mode_rule=True), methods=["GET"]),
    Route("/pipedrive/callback", _guarded(pipedrive_callback, open_mode_rule=True), methods=["GET"]),
    # Async, owned by ui.webhook_route, which answers its own failures with a 503.
    Route("/hubspot/webhook", hubspot_webhook, methods=["POST"]),
    Route("/pipedrive/webhook", pipedrive_webhook, methods=["POST"]),
    Route("/healthz", _guarded(healthz, open_mode_rule=False), methods=["GET"]),
]
