"""Connect: the HubSpot connection, how to start it, and the result of the OAuth round trip."""

from __future__ import annotations

import datetime as dt
import re
import time

import streamlit as st

from crm import oauth, sync
from ui import data
from ui.access import require_admin, require_staff
from ui.columns import ago, md_escape, portal_url
from ui.feedback import crm_errors, flash, show_flash, toast
from ui.runtime import page_settings

staff = require_staff()
show_flash()

TICKET_KEY = "connect_ticket"
# Tickets are short-lived on the server; mint a new one well before that.
TICKET_REUSE_S = 120
REASONS = {
    "access_denied": "The connection was cancelled on HubSpot's page.",
    "provider_error": "HubSpot reported an error instead of granting access.",
    "state_missing": "HubSpot's answer was incomplete.",
    "state_unknown": "The sign-in attempt was not recognised.",
    "state_expired": "The sign-in attempt took too long and expired.",
    "state_reused": "That sign-in attempt was already used (a reload or a second click).",
    "state_foreign": "The sign-in attempt was started in another browser.",
    "code_missing": "HubSpot sent no authorization code.",
    "code_rejected": "HubSpot refused the authorization code.",
    "client_rejected": (
        "HubSpot did not accept this app's client id or secret "
        "(check HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET)."
    ),
    "token_inactive": "HubSpot issued a token that is not active.",
    "hubspot_unreachable": "HubSpot could not be reached.",
    "sync_running": (
        "A sync or push of the portal connected before is still running, and switching portals "
        "would mix the two. Wait until it has finished (see the Sync page), then connect again."
    ),
    "ticket_invalid": "The Connect link expired or was already used.",
    "not_oauth": "This app runs with a private-app token, so there is nothing to connect.",
    "config": "The app's HubSpot settings are incomplete; see the server log for which one.",
    "unavailable": "The app could not reach its cache or HubSpot.",
}
RECONNECT_REASONS = {
    "refresh_rejected": (
        "HubSpot refused the stored refresh token (the app was uninstalled, or access was revoked)"
    ),
    "secret_key": (
        "the stored tokens cannot be decrypted with the configured CRM_SECRET_KEY "
        "(restore the old key, or connect again)"
    ),
    "tokens_missing": "the stored tokens are missing",
    "token_rejected": "HubSpot refused the private-app token",
}
_SAFE_TICKET = re.compile(r"^[A-Za-z0-9_\-]{8,200}$")

settings = page_settings()

st.title("Connect HubSpot")


def _show_return_result() -> None:
    """The outcome of the OAuth round trip, passed back in the query string by the callback route."""
    result = st.query_params.get("hubspot")
    if result is None:
        return
    if result == "connected":
        st.success("HubSpot is connected. Run a sync to fill the dashboard.", icon=":material/check_circle:")
        toast("HubSpot connected")
    elif result == "error":
        reason = st.query_params.get("reason") or "unknown"
        text = REASONS.get(reason, f"The connection failed (reason: {reason}).")
        st.error(f"{md_escape(text)} Try again with Connect HubSpot below.", icon=":material/error:")
    st.query_params.clear()


def _connect_link(label: str) -> None:
    """A same-tab link into the OAuth flow, carrying a single-use ticket bound to this person."""
    minted = st.session_state.get(TICKET_KEY)
    if not minted or time.monotonic() - minted[1] > TICKET_REUSE_S:
        with crm_errors("prepare the connection"):
            minted = (oauth.create_ticket(settings, staff.email), time.monotonic())
        st.session_state[TICKET_KEY] = minted
    ticket = str(minted[0])
    if not _SAFE_TICKET.match(ticket):
        st.error("Could not prepare the connection link. Reload the page and try again.")
        return
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    href = f"/{base}/hubspot/connect?ticket={ticket}" if base else f"/hubspot/connect?ticket={ticket}"
    # Our one unsafe_allow_html: a constant label and our own URL-safe ticket, never CRM data.
    # target="_self" keeps the flow in this tab (a new tab would be a new, stale session).
    st.markdown(
        f'<a href="{href}" target="_self" data-testid="connect-hubspot" '
        'style="display:inline-block;padding:0.5rem 1rem;border-radius:0.5rem;'
        'background:#ff7a59;color:white;text-decoration:none;font-weight:600">'
        f"{label}</a>",
        unsafe_allow_html=True,
    )


def _expiry(expires_at: float | None) -> str:
    if expires_at is None:
        return "does not expire"
    left = expires_at - time.time()
    when = dt.datetime.fromtimestamp(expires_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if left <= 0:
        return f"expired at {when} (renewed on the next HubSpot call)"
    return f"{when}, in {int(left // 60)} min (renewed automatically)"


_show_return_result()

if settings.is_sandbox:
    st.info(
        "Demo mode: this app talks to the built-in HubSpot sandbox, a local stand-in seeded "
        "with sample data, not a real HubSpot portal. Configure HubSpot credentials to use a real one.",
        icon=":material/science:",
    )

with crm_errors("read the connection"):
    info = oauth.connection_info(settings)

if info.status == "connected":
    st.subheader("Connected")
    if info.refresh_error:
        # Our own message (HTTP status and HubSpot's error code only), shown as plain text.
        st.warning(
            "Renewing the HubSpot access token failed; the stored tokens are kept and the app "
            "tries again shortly. Last error: " + md_escape(info.refresh_error),
            icon=":material/sync_problem:",
        )
    # Plain text, not Markdown: these are values people copy, and HubSpot supplied them.
    left, right = st.columns(2)
    with left:
        st.text(f"Portal ID: {info.portal_id}")
        st.text(f"Portal domain: {info.hub_domain or '–'}")
        st.text(f"Connected user: {info.user_email or '–'}")
        st.text(f"Connected: {ago(info.connected_at)}")
    with right:
        st.text(f"Mode: {'Private app (static token)' if info.mode == 'private_app' else 'OAuth'}")
        st.text(f"Access token expires: {_expiry(info.expires_at)}")
        st.text(
            "Granted scopes:\n" + ("\n".join(f"  {s}" for s in sorted(info.scopes)) or "  (none reported)")
        )
    link = portal_url(info.ui_domain, info.portal_id)
    if link:
        st.link_button("Open the portal in HubSpot", link, icon=":material/open_in_new:")

    if info.mode == "private_app":
        st.caption(
            "Private-app mode: the app uses the token in HUBSPOT_ACCESS_TOKEN. "
            "To change portals, change that setting; there is nothing to disconnect here."
        )
    elif require_admin(staff, "disconnect HubSpot"):
        if st.button("Disconnect", key="connect_disconnect", icon=":material/link_off:"):
            with crm_errors("disconnect", stop=False):
                result = oauth.disconnect(settings)
                data.clear()
                st.session_state.pop(TICKET_KEY, None)
                flash(
                    "Disconnected from HubSpot"
                    if result.revoked
                    else f"Disconnected locally. {result.detail}"
                )
                st.rerun()

    # The pronouns property is a custom one; offer to create it once a sync has shown it missing.
    missing_pronouns = False
    with crm_errors("check for the pronouns property", stop=False):
        missing_pronouns = data.has_synced(settings) and not data.pronouns_available(settings)
    if missing_pronouns:
        st.info(
            "Contacts in this portal have no **pronouns** property yet. Set it up to record "
            "and edit pronouns from the Contacts page.",
            icon=":material/badge:",
        )
        if require_admin(staff, "set up the pronouns property") and st.button(
            "Set up pronouns", key="connect_pronouns"
        ):
            with crm_errors("set up the pronouns property", stop=False):
                sync.set_up_pronouns(settings)
                data.clear()
                flash("Pronouns property created: contacts can now carry pronouns")
                st.rerun()

elif info.status == "needs_reconnect":
    why = RECONNECT_REASONS.get(info.reason or "", info.reason or "")
    st.warning(
        "HubSpot no longer accepts this app's stored connection"
        + (f": {md_escape(why)}" if why else "")
        + ". Syncing and pushing are paused until an admin connects again.",
        icon=":material/sync_problem:",
    )
    if info.mode == "private_app":
        st.caption("Private-app mode: replace HUBSPOT_ACCESS_TOKEN with a working token and reload.")
    elif require_admin(staff, "connect HubSpot"):
        _connect_link("Connect HubSpot again")

else:
    st.write("The dashboard is not connected to a HubSpot portal yet.")
    if settings.mode == "private_app":
        st.caption("Private-app mode: check HUBSPOT_ACCESS_TOKEN; the app connects with it on its own.")
    elif require_admin(staff, "connect HubSpot"):
        st.caption(
            "Connect HubSpot opens HubSpot's consent page in this tab; after you approve, you come back here."
        )
        _connect_link("Connect HubSpot")
