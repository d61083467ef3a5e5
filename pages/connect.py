"""Connect: every connection (status, rename, reconnect, remove), adding one through the OAuth
round trip of the CRM the admin picks (HubSpot or Pipedrive) and its result, and the details
of the selected connection."""

from __future__ import annotations

import datetime as dt
import re
import time

import streamlit as st

from crm import connections, crms, oauth, sync
from ui import data, overview, reruns, runtime, selection
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
_SAFE_TEST_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")

settings = page_settings()
home = runtime.settings()

st.title("Connections")


def _show_return_result() -> None:
    """The outcome of the OAuth round trip, passed back in the query string by the callback
    route under the CRM's name (``hubspot=connected``, ``pipedrive=error&reason=...``)."""
    crm = next((name for name in crms.names() if name in st.query_params), None)
    if crm is None:
        return
    result = st.query_params.get(crm)
    word = crms.words_for(crm).crm
    if result == "connected":
        st.success(f"{word} is connected. Run a sync to fill the dashboard.", icon=":material/check_circle:")
        toast(f"{word} connected")
    elif result == "error":
        reason = st.query_params.get("reason") or "unknown"
        # The reasons name HubSpot, whose flow they were written for; the other CRMs' flows
        # give the same reasons for the same steps.
        text = REASONS.get(reason, f"The connection failed (reason: {reason}).").replace("HubSpot", word)
        st.error(f"{md_escape(text)} Try again with Connect {word} below.", icon=":material/error:")
    # The result is shown once; the connection in the URL stays (the callback names the one it connected).
    for key in (crm, "reason"):
        st.query_params.pop(key, None)


def _can_add(crm: str | None) -> bool:
    """Whether this app can run ``crm``'s consent flow (its provider says what that needs)."""
    return crms.provider_for(crm).consent_missing(settings) is None


def _crm_choice(key: str) -> str:
    """The CRM the admin wants to connect (HubSpot first, the one every older install has)."""
    names = list(crms.names())
    chosen = st.radio(
        "CRM",
        names,
        format_func=lambda name: crms.words_for(name).crm,
        horizontal=True,
        key=key,
    )
    return str(chosen or names[0])


def _add_connection(label: str, *, test_id: str) -> None:
    """Pick a CRM, then its connect link (or why it cannot be connected here).

    ``label`` and ``test_id`` may name the CRM as ``{crm}`` (its word, its name).
    """
    crm = _crm_choice(f"connect_crm_{test_id.format(crm='crm')}")
    word = crms.words_for(crm).crm
    missing = crms.provider_for(crm).consent_missing(settings)
    if missing is None:
        _connect_link(label.format(crm=word), test_id=test_id.format(crm=crm), crm=crm)
        return
    st.info(missing, icon=":material/info:")


def _connect_link(label: str, *, test_id: str = "connect-hubspot", crm: str = "hubspot") -> None:
    """A same-tab link into a CRM's OAuth flow, carrying a single-use ticket bound to this person.

    Every link on the page carries the same ticket: only one of them can be followed.
    """
    if crm not in crms.names():
        crm = "hubspot"  # only a known CRM's name (a slug) reaches the URL below
    minted = st.session_state.get(TICKET_KEY)
    if not minted or time.monotonic() - minted[1] > TICKET_REUSE_S:
        with crm_errors("prepare the connection"):
            minted = (oauth.create_ticket(settings, staff.email), time.monotonic())
        st.session_state[TICKET_KEY] = minted
    ticket = str(minted[0])
    # The test id may carry a connection id (a slug made from the CRM account's id): checked
    # like the ticket, so nothing but [a-z0-9-] ever reaches the HTML below.
    if not _SAFE_TEST_ID.match(test_id):
        test_id = "connect-hubspot"
    if not _SAFE_TICKET.match(ticket):
        st.error("Could not prepare the connection link. Reload the page and try again.")
        return
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    href = f"/{base}/{crm}/connect?ticket={ticket}" if base else f"/{crm}/connect?ticket={ticket}"
    # Our one unsafe_allow_html: a constant label, a checked slug and our own URL-safe ticket,
    # never CRM data. (Callers pass only literal labels.)
    # target="_self" keeps the flow in this tab (a new tab would be a new, stale session).
    st.markdown(
        f'<a href="{href}" target="_self" data-testid="{test_id}" '
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
        return f"expired at {when} (renewed on the next {WORD} call)"
    return f"{when}, in {int(left // 60)} min (renewed automatically)"


_show_return_result()

if settings.is_sandbox:
    st.info(
        "Demo mode: this app talks to the built-in HubSpot sandbox, a local stand-in seeded "
        "with sample data, not a real HubSpot portal. Configure HubSpot credentials to use a real one.",
        icon=":material/science:",
    )

REMOVING_KEY = "connect_removing"


def _rename(line: overview.Line) -> None:
    cid = line.connection.id
    new_name = st.text_input(
        "Name", value=selection.label(line.connection), key=f"connect_name_{cid}", max_chars=120
    )
    if st.button("Rename", key=f"connect_rename_{cid}", icon=":material/edit:"):
        with crm_errors("rename the connection", stop=False):
            connections.rename(home, cid, new_name.strip())
            flash("Connection renamed")
            reruns.rerun()


def _remove(line: overview.Line) -> None:
    """Remove, after a confirmation that says how many queued edits would be lost."""
    cid, name = line.connection.id, selection.label(line.connection)
    word = crms.words_for(line.connection.crm).crm
    if st.session_state.get(REMOVING_KEY) != cid:
        if st.button("Remove…", key=f"connect_remove_{cid}", icon=":material/delete:"):
            st.session_state[REMOVING_KEY] = cid
            reruns.rerun()
        return
    lost = (
        f"{line.queued} queued edit{'s' if line.queued != 1 else ''} not yet pushed to {word} would be lost"
        if line.queued
        else "No queued edits would be lost"
    )
    st.warning(
        f"Remove **{md_escape(name)}**? Its tokens are revoked and its cached data is deleted "
        f"({word} itself is not changed). {lost}.",
        icon=":material/warning:",
    )
    yes, no, _ = st.columns([1, 1, 3])
    if yes.button("Remove for good", key=f"connect_remove_confirm_{cid}", type="primary"):
        with crm_errors("remove the connection", stop=False):
            result = connections.remove(home, line.connection)
            st.session_state.pop(REMOVING_KEY, None)
            selection.forget(cid)
            data.clear()
            flash(
                f"Removed {name}"
                + (
                    ""
                    if getattr(result, "revoked", True)
                    else f" (its tokens could not be revoked at {word})"
                )
            )
            reruns.rerun()
    if no.button("Cancel", key=f"connect_remove_cancel_{cid}"):
        st.session_state.pop(REMOVING_KEY, None)
        reruns.rerun()


def _manage(line: overview.Line) -> None:
    """Rename, reconnect and remove one connection (admins only)."""
    name = selection.label(line.connection)
    # Expander labels are Markdown: the name (editable, so anyone's text) is escaped.
    with st.expander(f"Manage {md_escape(name)}", icon=":material/settings:"):
        _rename(line)
        crm = line.connection.crm
        if _can_add(crm) and selection.SAFE_ID.match(line.connection.id):
            word = crms.words_for(crm).crm
            st.caption(f"Reconnect: sign in to {word} again and pick this account; its cache is kept.")
            _connect_link("Reconnect", test_id=f"reconnect-{line.connection.id}", crm=crm)
        _remove(line)


with crm_errors("read the connections"):
    chosen = selection.current(home)
    listed = overview.lines(home, chosen.known)

if listed:
    st.dataframe(
        overview.frame(listed),
        hide_index=True,
        key="connect_list",
        column_config={"Queued edits": st.column_config.NumberColumn(format="%d")},
    )
    if require_admin(staff, "add or change connections"):
        _add_connection("Add connection", test_id="add-connection")
        if settings.is_sandbox:
            st.caption(
                "Demo mode: the sandbox's consent page offers two portals (101 and 202); "
                "pick the one not connected yet to add a second connection."
            )
        for item in listed:
            _manage(item)
    if chosen.chosen is not None:
        st.subheader(f"Selected: {md_escape(selection.label(chosen.chosen))}")

with crm_errors("read the connection"):
    info = oauth.connection_info(settings)
# The selected connection's CRM names things on the rest of the page ("portal", "company").
words = crms.words_for(settings.crm)
WORD, ACCOUNT = words.crm, words.account
MODES = {"private_app": "Private app (static token)", "api_token": "API token (static)"}

if info.status == "connected":
    st.subheader("Connected")
    if info.refresh_error:
        # Our own message (HTTP status and HubSpot's error code only), shown as plain text.
        st.warning(
            f"Renewing the {WORD} access token failed; the stored tokens are kept and the app "
            "tries again shortly. Last error: " + md_escape(info.refresh_error),
            icon=":material/sync_problem:",
        )
    # Plain text, not Markdown: these are values people copy, and the CRM supplied them.
    left, right = st.columns(2)
    with left:
        st.text(f"{ACCOUNT.capitalize()} ID: {info.portal_id}")
        st.text(f"{ACCOUNT.capitalize()} domain: {info.hub_domain or '–'}")
        st.text(f"Connected user: {info.user_email or '–'}")
        st.text(f"Connected: {ago(info.connected_at)}")
    with right:
        st.text(f"Mode: {MODES.get(info.mode, 'OAuth')}")
        st.text(f"Access token expires: {_expiry(info.expires_at)}")
        st.text(
            "Granted scopes:\n" + ("\n".join(f"  {s}" for s in sorted(info.scopes)) or "  (none reported)")
        )
    link = portal_url(info.ui_domain, info.portal_id, crm=settings.crm)
    if link:
        st.link_button(f"Open the {ACCOUNT} in {WORD}", link, icon=":material/open_in_new:")

    if info.mode == "private_app":
        st.caption(
            "Private-app mode: the app uses the token in HUBSPOT_ACCESS_TOKEN. "
            "To change portals, change that setting; there is nothing to disconnect here."
        )
    elif require_admin(staff, f"disconnect {WORD}"):
        if st.button("Disconnect", key="connect_disconnect", icon=":material/link_off:"):
            with crm_errors("disconnect", stop=False):
                result = oauth.disconnect(settings)
                data.clear()
                st.session_state.pop(TICKET_KEY, None)
                said = (
                    f"Disconnected from {WORD}"
                    if result.revoked
                    else f"Disconnected locally. {result.detail}"
                )
                # Webhooks Pipedrive could not be asked to remove: the person can remove them there.
                flash(f"{said.rstrip('.')}. {result.webhooks}" if result.webhooks else said)
                reruns.rerun()

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
                # Every connected CRM that lacks it, each one's outcome reported.
                results = sync.set_up_pronouns_everywhere(settings)
                data.clear()
                made = any(r.status == "created" for r in results)
                head = "Pronouns property created" if made else "Pronouns property already set up"
                # Plain text: the toast escapes it (escaped here too, it showed backslashes).
                flash(head + ": " + "; ".join(sync.describe_setup(r) for r in results))
                reruns.rerun()

elif info.status == "needs_reconnect":
    why = RECONNECT_REASONS.get(info.reason or "", info.reason or "").replace("HubSpot", WORD)
    st.warning(
        f"{WORD} no longer accepts this app's stored connection"
        + (f": {md_escape(why)}" if why else "")
        + ". Syncing and pushing are paused until an admin connects again.",
        icon=":material/sync_problem:",
    )
    if info.mode == "private_app":
        st.caption("Private-app mode: replace HUBSPOT_ACCESS_TOKEN with a working token and reload.")
    elif _can_add(settings.crm) and require_admin(staff, f"connect {WORD}"):
        _connect_link(f"Connect {WORD} again", crm=settings.crm)

elif listed:
    st.write(f"This connection has no {WORD} tokens (it was disconnected). Its cache is kept.")
    if _can_add(settings.crm) and require_admin(staff, f"connect {WORD}"):
        _connect_link(f"Connect {WORD} again", crm=settings.crm)

else:
    st.write("The dashboard is not connected to a CRM yet.")
    if require_admin(staff, "connect a CRM"):
        st.caption(
            "Connecting opens the CRM's consent page in this tab; after you approve, you come back here."
        )
        _add_connection("Connect {crm}", test_id="connect-{crm}")
