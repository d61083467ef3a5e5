"""Who may use the dashboard: ``require_staff()`` is the first statement of every page.

With an ``[auth]`` section in secrets, staff sign in with ``st.login`` (OIDC) and only
allowlisted, verified emails get in (``CRM_STAFF_EMAILS``, ``CRM_STAFF_DOMAINS``; admins
in ``CRM_ADMIN_EMAILS`` are staff too). The allowlist is read on every run, so removing
someone takes effect on their next click, whatever their 30-day identity cookie says.

Without ``[auth]`` access is open, but never silently: only when the server listens on
loopback (a laptop) or ``CRM_OPEN_ACCESS=true`` says so on purpose, and every page then
carries a notice. Anyone may view and edit; admin actions (connect, disconnect, sync,
conflict resolution) need ``CRM_ADMIN_EMAILS`` when login is on.

Loopback is not a login: a reverse proxy on the same machine makes every visitor from the
internet arrive on loopback. So loopback open mode also refuses any request that shows a
proxy on its way (``Forwarded``, any ``X-Forwarded-*``, ``X-Real-IP``, or a ``Host`` that
is not a loopback name), on every page here and on the custom routes
(``ui.routes``) through the same ``open_mode_refusal``. Only ``CRM_OPEN_ACCESS=true``, an
operator saying "my proxy authenticates everyone", lets proxied requests in without login.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections.abc import Mapping
from typing import Any, Literal

import streamlit as st

from crm.config import Settings
from crm.errors import ConfigError
from ui import runtime
from ui.columns import md_escape

log = logging.getLogger(__name__)

LOOPBACK_ADDRESSES = ("127.0.0.1", "localhost", "::1")
OPEN_NOTICE = (
    "Access is open: anyone who can reach this server can use the dashboard. "
    "Fine on a laptop; on a server, turn on staff login (README, Staff login)."
)

PROXY_REFUSAL = (
    "This dashboard runs without staff login, which is only allowed for requests made "
    "directly on this computer, and this request came through a proxy or under another host "
    "name. To serve it through a proxy, either configure staff login (an [auth] section in "
    ".streamlit/secrets.toml with CRM_STAFF_EMAILS or CRM_STAFF_DOMAINS; README, Staff login), "
    "or, only if the proxy in front already authenticates everyone, set CRM_OPEN_ACCESS=true."
)

Decision = Literal["allowed", "login", "refused", "misconfigured"]


@dataclasses.dataclass(frozen=True)
class Staff:
    """The person using this session, as far as the dashboard is concerned."""

    email: str | None
    is_admin: bool
    login_enabled: bool

    @property
    def label(self) -> str:
        """Who edits are recorded as."""
        return self.email or "local user (open access)"


@dataclasses.dataclass(frozen=True)
class Verdict:
    decision: Decision
    staff: Staff | None = None
    reason: str = ""
    config_error: ConfigError | None = None


def is_login_configured() -> bool:
    """True when secrets carry an ``[auth]`` section for ``st.login``."""
    return isinstance(runtime.secrets().get("auth"), dict)


def _user() -> dict[str, Any]:
    try:
        return dict(st.user.to_dict())
    except Exception:  # st.user outside a session, or a proxy without to_dict
        return {}


def is_allowed_email(email: str, settings: Settings) -> bool:
    email = email.strip().lower()
    if not email or "@" not in email:
        return False
    domain = email.rsplit("@", 1)[1]
    return (
        email in settings.staff_emails or email in settings.admin_emails or domain in settings.staff_domains
    )


def server_is_loopback() -> bool:
    address = str(st.get_option("server.address") or "").strip().lower()
    return address in LOOPBACK_ADDRESSES


def is_loopback_host(host: str) -> bool:
    """True for a ``Host`` header naming this machine: localhost, 127.x.x.x or [::1], any port."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] == "[::1"
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.version == 4 and address.is_loopback


def came_through_proxy(headers: Mapping[str, str]) -> bool:
    """True when a request's headers show it did not come straight from a browser on loopback.

    A proxy adds ``Forwarded`` / ``X-Forwarded-*`` / ``X-Real-IP``, or passes the public
    ``Host`` on; a request with no ``Host`` at all is treated as proxied too. An empty
    header set is no request at all (AppTest, bare mode): nothing reaches a page without
    Streamlit's handshake, which always carries ``Host``.
    """
    names = {str(name).lower(): str(value) for name, value in headers.items()}
    if not names:
        return False
    if any(name in ("forwarded", "x-real-ip") or name.startswith("x-forwarded-") for name in names):
        return True
    return not is_loopback_host(names.get("host", ""))


def open_mode_refusal(settings: Settings, headers: Mapping[str, str]) -> str | None:
    """Why open mode refuses this request (``PROXY_REFUSAL``), or None when it may go on.

    Applies only without ``[auth]`` and without ``CRM_OPEN_ACCESS=true``; pages and routes
    both ask it, so the rule cannot drift between them.
    """
    if settings.open_access or is_login_configured():
        return None
    return PROXY_REFUSAL if came_through_proxy(headers) else None


def _session_headers() -> Mapping[str, str]:
    try:
        return st.context.headers
    except Exception:  # no session (bare mode)
        return {}


def check_access() -> Verdict:
    """Decide, without rendering anything, whether this session may see the dashboard."""
    try:
        settings = runtime.base_settings()
    except ConfigError as exc:
        return Verdict("misconfigured", reason=str(exc), config_error=exc)

    if not is_login_configured():
        if settings.open_access:
            return Verdict("allowed", Staff(email=None, is_admin=True, login_enabled=False))
        if server_is_loopback():
            refusal = open_mode_refusal(settings, _session_headers())
            if refusal is not None:
                log.warning("Open access refused a page request that came through a proxy")
                return Verdict("misconfigured", reason=refusal)
            return Verdict("allowed", Staff(email=None, is_admin=True, login_enabled=False))
        return Verdict(
            "misconfigured",
            reason=(
                "Staff login is not configured and the server is not bound to 127.0.0.1. "
                "Configure [auth] in .streamlit/secrets.toml (README, Staff login), or set "
                "CRM_OPEN_ACCESS=true to run without login on purpose."
            ),
        )

    user = _user()
    if not user.get("is_logged_in", False):
        return Verdict("login")
    email = str(user.get("email") or "").strip().lower()
    if not user.get("email_verified", False):
        return Verdict("refused", reason="Your identity provider has not verified this email address.")
    if not (settings.staff_emails or settings.staff_domains or settings.admin_emails):
        return Verdict(
            "refused",
            reason=(
                "No staff allowlist is configured (CRM_STAFF_EMAILS or CRM_STAFF_DOMAINS), "
                "so nobody may sign in."
            ),
        )
    if not is_allowed_email(email, settings):
        return Verdict("refused", reason="This account is not allowed to use the dashboard.")
    return Verdict("allowed", Staff(email=email, is_admin=email in settings.admin_emails, login_enabled=True))


def require_staff(*, notice: bool = True) -> Staff:
    """The first statement of every page: the signed-in, allowlisted staff member, or a stop.

    Anyone not allowed sees only the sign-in prompt (or why they are refused) and nothing else.
    With open access, a small notice says so (``notice=False`` for app.py, whose page says it).
    """
    verdict = check_access()
    if verdict.decision == "allowed" and verdict.staff is not None:
        if notice and not verdict.staff.login_enabled:
            st.caption(OPEN_NOTICE)
        return verdict.staff
    if verdict.decision == "login":
        st.subheader("HubSpot CRM dashboard")
        st.write("Sign in with your work account to continue.")
        st.button("Sign in", key="auth_login", type="primary", on_click=st.login)
    elif verdict.decision == "refused":
        st.error(md_escape(verdict.reason, max_len=400), icon=":material/block:")
        st.button("Sign out", key="auth_logout", on_click=st.logout)
    elif verdict.config_error is not None:
        runtime.show_config_error(verdict.config_error)
    else:
        st.error(
            f"The dashboard is not configured for access: {md_escape(verdict.reason, max_len=600)}",
            icon=":material/settings:",
        )
    st.stop()


def require_admin(staff: Staff, action: str) -> bool:
    """True when ``staff`` may do an admin ``action``; otherwise says why (once) and returns False."""
    if staff.is_admin:
        return True
    st.caption(f"Only admins (CRM_ADMIN_EMAILS) can {md_escape(action)}.")
    return False
