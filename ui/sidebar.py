"""The sidebar every page shares: the connection switcher, portal, mode, last sync, pending
edits, live updates, who.

The "Live updates" line is ``ui.live.live_updates`` (the webhooks side owns it): a
fragment that also reruns the page when webhooks change the cache.
"""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from crm import crms, oauth
from crm.config import Settings
from crm.errors import CrmError
from ui import data, runtime, selection
from ui.access import Staff
from ui.choices import follow_renames
from ui.columns import ago, md_escape
from ui.live import live_updates

log = logging.getLogger(__name__)

MODE_LABELS = {"oauth": "OAuth", "private_app": "Private app", "sandbox": "Demo sandbox"}
SWITCH_KEY = "sidebar_connection"


def render_sidebar(settings: Settings, staff: Staff) -> Any:
    """Draw the sidebar; returns the status placeholder for ``refresh_status``."""
    with st.sidebar:
        # One slot each, whatever they draw: the live-updates fragment reruns on its own at
        # the place the last full run gave it. Were the switcher's elements to vary in number
        # (none before the first connection), a full run would move the fragment, and a
        # fragment rerun from before the move would write its line into the status slot,
        # on screen twice until the next full run.
        with st.container():
            _switcher()
        slot = st.empty()
        refresh_status(slot, settings)
        live_updates(settings)
        if staff.login_enabled:
            st.caption(f"Signed in as {md_escape(staff.email)}" + (" (admin)" if staff.is_admin else ""))
            st.button("Sign out", key="sidebar_logout", on_click=st.logout)
    return slot


def _switched() -> None:
    selection.select(str(st.session_state[SWITCH_KEY]))


def _switcher() -> None:
    """The connection selectbox; switching reruns on the new connection and updates the URL."""
    chosen = selection.current(runtime.settings())
    if chosen.chosen is None:
        return
    names = {c.id: selection.label(c) for c in chosen.known}
    # The widget follows the selection, which a deep link or the Connect page may have changed.
    if st.session_state.get(SWITCH_KEY) != chosen.chosen.id:
        st.session_state[SWITCH_KEY] = chosen.chosen.id
    # A connection renamed on the Connect page: the box shows its new name.
    follow_renames(SWITCH_KEY, names)
    st.selectbox(
        "Connection",
        list(names),
        format_func=lambda cid: names.get(cid, cid),
        key=SWITCH_KEY,
        on_change=_switched,
        help="Which CRM account the pages show. The link in the address bar opens the same one.",
    )
    selection.remember_in_browser(chosen.chosen.id)
    unknown = selection.take_unknown_link()
    if unknown:
        st.caption(f"No connection {md_escape(unknown)}: showing this one instead.")


def connection_caption() -> None:
    """One line at the top of every page naming the connection it shows (Markdown-escaped)."""
    chosen = selection.current(runtime.settings())
    if chosen.chosen is not None:
        st.caption(f"Connection: **{md_escape(selection.label(chosen.chosen))}**")


def refresh_status(slot: Any, settings: Settings) -> None:
    """(Re)draw the status lines, e.g. after the page queued or pushed edits in this run."""
    with slot.container():
        try:
            _status(settings)
        except CrmError as exc:
            log.info("sidebar status unavailable: %s", type(exc).__name__)
            st.caption("Status unavailable: " + md_escape(str(exc)))


def _status(settings: Settings) -> None:
    info = oauth.connection_info(settings)
    # The account in the connection's CRM's word: a HubSpot portal, a Pipedrive company.
    account = crms.words_for(settings.crm).account.capitalize()
    if info.status == "connected":
        domain = f" ({md_escape(info.hub_domain)})" if info.hub_domain else ""
        st.caption(f"{account} **{md_escape(info.portal_id)}**{domain}")
    elif info.status == "needs_reconnect":
        st.caption(f"{account}: **needs reconnecting**")
    else:
        st.caption(f"{account}: **not connected**")
    st.caption(f"Mode: {MODE_LABELS.get(settings.mode, settings.mode)}")

    with data.open_cache(settings) as db:
        run = db.syncstate.latest_run()
    if run is None:
        st.caption("Last sync: never")
    elif run.get("state") == "running":
        st.caption("Sync: running now")
    else:
        finished = run.get("finished_at") or run.get("started_at")
        st.caption(f"Last sync: {ago(finished)} ({md_escape(run.get('state'))})")
    found = data.outbox_counts(settings)
    line = f"Edits waiting to be pushed: {found.get('pending', 0)}"
    if found.get("conflict"):
        line += f" · conflicts to resolve: {found['conflict']}"
    st.caption(line)
