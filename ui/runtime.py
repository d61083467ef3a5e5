"""Settings for the app, and the embedded sandbox in demo mode.

``settings()`` is what every page and route uses. It reads the environment and
``st.secrets`` (absent secrets are fine), and in sandbox mode points the settings at a
sandbox: the one named by ``CRM_SANDBOX_URL``, or else one started inside this process,
once, and shared by every session and route. Routes have no ScriptRunContext, so the
sandbox lives in a module-level global behind a lock rather than in ``st.cache_resource``.

The first ``settings()`` call of a process also sets up logging (``CRM_LOG_LEVEL``,
``CRM_LOG_FORMAT``) and, with ``CRM_SYNC_INTERVAL``, starts the scheduled sync thread;
both happen once per process, like the sandbox.

In demo mode without ``HUBSPOT_REDIRECT_URI``, the redirect URI follows the port the app
serves (``server.port``), so ``streamlit run app.py --server.port 8600`` connects as is.

Demo mode also embeds the Pipedrive sandbox (``crm.sandbox.pipedrive``), unless a Pipedrive
app is configured (``PIPEDRIVE_CLIENT_ID``): its OAuth server and API, with the sandbox's
demo client, so "Add connection -> Pipedrive" works without a Pipedrive account. Its
redirect URI follows ``server.port`` too (``PIPEDRIVE_REDIRECT_URI`` overrides it).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from typing import TYPE_CHECKING, Any, NoReturn

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from crm.config import Settings, load_settings
from crm.errors import ConfigError, StoreUnavailable
from crm.logs import configure_logging

if TYPE_CHECKING:
    from crm.sandbox import SandboxServer
    from crm.sandbox.pipedrive import PipedriveServer
    from crm.sync.schedule import Scheduler

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/hubspot/webhook"
CALLBACK_PATH = "/hubspot/callback"
PIPEDRIVE_CALLBACK_PATH = "/pipedrive/callback"
# The embedded sandbox serves two portals, so a second connection can be tried in demo mode
# (the consent page's account picker offers both); the first is the default.
DEMO_PORTALS = (101, 202)

_sandbox_lock = threading.Lock()
_sandbox: SandboxServer | None = None
_pipedrive_sandbox: PipedriveServer | None = None
_process_lock = threading.Lock()
_logging_done = False
_scheduler: Scheduler | None = None


def secrets() -> dict[str, Any]:
    """``st.secrets`` as a plain dict; empty when there is no secrets.toml at all."""
    try:
        return st.secrets.to_dict()
    except StreamlitSecretNotFoundError:
        return {}


def base_settings() -> Settings:
    """Settings from the environment and secrets, without starting anything.

    Raises ConfigError naming the first bad setting.
    """
    found = secrets()
    resolved = load_settings(os.environ, found)
    if resolved.is_sandbox and not (
        os.environ.get("HUBSPOT_REDIRECT_URI") or found.get("HUBSPOT_REDIRECT_URI")
    ):
        resolved = dataclasses.replace(resolved, redirect_uri=app_redirect_uri())
    if resolved.is_sandbox and not (
        os.environ.get("PIPEDRIVE_REDIRECT_URI") or found.get("PIPEDRIVE_REDIRECT_URI")
    ):
        resolved = dataclasses.replace(
            resolved, pipedrive_redirect_uri=app_redirect_uri(PIPEDRIVE_CALLBACK_PATH)
        )
    return resolved


def settings() -> Settings:
    """The app's settings, pointed at a running sandbox in sandbox mode.

    The first call in sandbox mode without ``CRM_SANDBOX_URL`` starts the embedded
    sandbox; later calls (any session, any route) reuse it.

    Raises ConfigError naming the first bad setting.
    """
    resolved = base_settings()
    _set_up_logging(resolved)
    if not resolved.is_sandbox:
        final = resolved
    elif resolved.sandbox_url:
        final = resolved.for_sandbox(resolved.sandbox_url)
    else:
        server = _embedded_sandbox(resolved)
        final = resolved.for_sandbox(server.url)
        if not resolved.pipedrive_client_id:
            final = _with_pipedrive_sandbox(final)
        if not final.webhook_url and _demo_delivers(resolved):
            # The sandbox signs deliveries with the exact URL it posts to; verification needs the same.
            final = dataclasses.replace(final, webhook_url=app_webhook_url())
    _start_schedule(final)
    _start_live(final)
    return final


def _demo_delivers(resolved: Settings) -> bool:
    """Whether the embedded sandbox posts webhooks to the app (not with CRM_LIVE=journal or off)."""
    return resolved.live in ("", "webhooks")


def _start_live(resolved: Settings) -> None:
    """In journal mode, start this process's journal pollers, one per connection (each once;
    each takes its connection's lease or stands by); a connection added later gets its own
    on the next call."""
    if resolved.live_mode()[0] == "journal":
        from crm import journal
        from crm.errors import CrmError

        try:
            journal.ensure_pollers(resolved)
        except CrmError as exc:  # the registry is unreadable: the pages and /healthz say so
            log.warning("journal pollers not started: %s", type(exc).__name__)


def register_webhooks_soon(resolved: Settings) -> None:
    """In the background: connections whose CRM takes webhooks by API (Pipedrive) and have
    none registered at the URL register them (``crm.subscriptions.ensure_all``, which tries
    each connection and URL once per process). The URL is PIPEDRIVE_WEBHOOK_URL; in demo
    mode, for a connection to the embedded Pipedrive sandbox, this app's own loopback route,
    where that sandbox delivers. Called at server start and after a Pipedrive connect."""
    loopback = app_pipedrive_webhook_url() if _pipedrive_sandbox is not None else ""
    if not resolved.pipedrive_webhook_url and not loopback:
        return

    def run() -> None:
        from crm import subscriptions

        try:
            subscriptions.ensure_all(resolved, loopback_url=loopback)
        except Exception as exc:  # the registry is unreadable: the pages and /healthz say so
            log.warning("webhook registration skipped: %s", type(exc).__name__)

    threading.Thread(target=run, name="webhook-registration", daemon=True).start()


def _set_up_logging(resolved: Settings) -> None:
    global _logging_done
    with _process_lock:
        if not _logging_done:
            configure_logging(resolved.log_level, resolved.log_format)
            _logging_done = True


def _start_schedule(resolved: Settings) -> None:
    """Start the scheduled sync thread on the first call of a process, when CRM_SYNC_INTERVAL is set."""
    global _scheduler
    if not resolved.sync_interval_s:
        return
    with _process_lock:
        if _scheduler is None:
            from crm.sync.schedule import Scheduler

            _scheduler = Scheduler(resolved)
            _scheduler.start()


def start_process_services() -> None:
    """Logging, the scheduled sync and Pipedrive webhook registration at server start, not at
    the first page view after a restart.

    A configuration problem is logged here and shown on every page (``page_settings``).
    """
    try:
        resolved = settings()
    except ConfigError as exc:
        logging.getLogger("crm").error("configuration problem: %s", exc)
        return
    register_webhooks_soon(resolved)


def scheduler() -> Scheduler | None:
    """This process's scheduled sync, or None when CRM_SYNC_INTERVAL is off (or not started yet)."""
    return _scheduler


def app_redirect_uri(path: str = CALLBACK_PATH) -> str:
    """An OAuth callback of the app as it serves now: localhost on ``server.port``."""
    port = st.get_option("server.port") or 8501
    return f"http://localhost:{port}{path}"


def app_webhook_url() -> str:
    """Where the embedded sandbox delivers webhooks: this app's own route on loopback."""
    port = st.get_option("server.port") or 8501
    return f"http://127.0.0.1:{port}{WEBHOOK_PATH}"


def app_pipedrive_webhook_url() -> str:
    """Where a Pipedrive sandbox on loopback delivers in demo mode: this app's own route."""
    port = st.get_option("server.port") or 8501
    return f"http://127.0.0.1:{port}/pipedrive/webhook"


def embedded_sandbox_url() -> str | None:
    """The embedded sandbox's base URL, or None when none was started in this process."""
    return _sandbox.url if _sandbox is not None else None


def _embedded_sandbox(resolved: Settings) -> SandboxServer:
    global _sandbox
    with _sandbox_lock:
        if _sandbox is None:
            from crm.sandbox import serve
            from crm.sandbox.config import SandboxConfig

            # Both loopback names: a browser on 127.0.0.1 comes back to the same host.
            loopback = resolved.redirect_uri.replace("//localhost:", "//127.0.0.1:")
            config = SandboxConfig(
                seed=resolved.sandbox_seed,
                portal_id=DEMO_PORTALS[0],
                extra_portal_ids=DEMO_PORTALS[1:],
                redirect_uris=tuple(dict.fromkeys((resolved.redirect_uri, loopback))),
                webhook_url=resolved.webhook_url or (app_webhook_url() if _demo_delivers(resolved) else ""),
            )
            try:
                _sandbox = serve(config, host="127.0.0.1", port=resolved.sandbox_port)
            except OSError as exc:
                raise ConfigError(
                    "CRM_SANDBOX_PORT",
                    f"the embedded sandbox could not listen on port {resolved.sandbox_port} "
                    f"({exc.strerror}); choose a free port or 0 for any",
                ) from exc
            log.info("embedded HubSpot sandbox listening at %s", _sandbox.url)
        return _sandbox


def _with_pipedrive_sandbox(resolved: Settings) -> Settings:
    """``resolved`` with the embedded Pipedrive sandbox as Pipedrive's OAuth server (started
    once per process, like the HubSpot sandbox) and the sandbox's demo OAuth client."""
    global _pipedrive_sandbox
    from crm.sandbox.pipedrive.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

    with _sandbox_lock:
        if _pipedrive_sandbox is None:
            from crm.sandbox.pipedrive import PipedriveConfig, serve

            # Both loopback names: a browser on 127.0.0.1 comes back to the same host.
            uri = resolved.pipedrive_redirect_uri
            loopback = uri.replace("//localhost:", "//127.0.0.1:")
            config = PipedriveConfig(
                seed=resolved.sandbox_seed, redirect_uris=tuple(dict.fromkeys((uri, loopback)))
            )
            _pipedrive_sandbox = serve(config, host="127.0.0.1")
            log.info("embedded Pipedrive sandbox listening at %s", _pipedrive_sandbox.url)
        url = _pipedrive_sandbox.url
    return dataclasses.replace(
        resolved,
        pipedrive_client_id=DEFAULT_CLIENT_ID,
        pipedrive_client_secret=DEFAULT_CLIENT_SECRET,
        pipedrive_oauth_url=url,
    )


def embedded_pipedrive_url() -> str | None:
    """The embedded Pipedrive sandbox's base URL, or None when none was started in this process."""
    return _pipedrive_sandbox.url if _pipedrive_sandbox is not None else None


def page_settings() -> Settings:
    """The settings a page works with: the selected connection's (``ui.selection``).

    With no connection registered yet, the home settings (the pages then say "not connected").
    A configuration problem becomes one clear error, then a stop.
    """
    from ui import selection

    try:
        home = settings()
    except ConfigError as exc:
        show_config_error(exc)
    return selection.settings_for(home, selection.current(home))


def nav_titles() -> dict[str, str]:
    """The selected connection's CRM's label of each object type it has (``{}`` when the
    settings cannot be read: the page then shows the configuration problem)."""
    from crm import crms
    from ui import selection

    try:
        home = settings()
        chosen = selection.settings_for(home, selection.current(home))
    except (ConfigError, StoreUnavailable):
        return {}
    return {info.name: info.label for info in crms.provider_of(chosen).object_types()}


def show_config_error(exc: ConfigError) -> NoReturn:
    from ui.columns import md_escape

    problem = str(exc).removeprefix(f"{exc.setting}: ")
    st.error(
        f"Configuration problem with **{md_escape(exc.setting)}**: {md_escape(problem)}. "
        "Fix it in the environment or in .streamlit/secrets.toml, then reload the page.",
        icon=":material/settings:",
    )
    st.stop()
