"""Empty states that lead somewhere: not connected leads to Connect, never synced offers Sync now."""

from __future__ import annotations

import streamlit as st

from crm import oauth
from crm.config import Settings
from crm.crms import provider_of
from crm.oauth import ConnectionInfo
from ui import data, runner
from ui.access import Staff
from ui.feedback import crm_errors, flash
from ui.selection import link_params

CONNECT_PAGE = "pages/connect.py"
SYNC_PAGE = "pages/sync.py"


def require_data(settings: Settings, staff: Staff, what: str) -> ConnectionInfo:
    """The connection, once the cache holds something to show; otherwise the way forward, then a stop.

    With a cache but no working connection, the cached data stays visible under a warning.
    """
    words = provider_of(settings).words
    with crm_errors("read the connection"):
        info = oauth.connection_info(settings)
    with crm_errors("read the cache"):
        synced = data.has_synced(settings)
    if synced:
        if info.status == "needs_reconnect":
            st.warning(
                f"{words.crm} no longer accepts this app's connection: you are looking at the cache as last "
                "synced, and edits wait in the outbox. An admin needs to connect again.",
                icon=":material/sync_problem:",
            )
            st.page_link(
                CONNECT_PAGE, label="Go to Connect", icon=":material/link:", query_params=link_params()
            )
        elif info.status != "connected":
            st.warning(
                f"Not connected to {words.crm}: you are looking at the cache as last synced.",
                icon=":material/link_off:",
            )
            st.page_link(
                CONNECT_PAGE, label="Go to Connect", icon=":material/link:", query_params=link_params()
            )
        return info
    if info.status != "connected":
        st.info(
            f"Connect a {words.crm} {words.account} to see its {what} here.",
            icon=":material/link:",
        )
        st.page_link(
            CONNECT_PAGE,
            label=f"Connect {words.crm}",
            icon=":material/arrow_forward:",
            query_params=link_params(),
        )
        st.stop()
    st.info(
        f"Connected, but nothing has been synced yet. Run a sync to bring in the {what}.",
        icon=":material/sync:",
    )
    if runner.is_running(settings):
        st.caption("A sync is already running.")
        st.page_link(
            SYNC_PAGE, label="Watch its progress", icon=":material/arrow_forward:", query_params=link_params()
        )
    elif staff.is_admin:
        if st.button("Sync now", key=f"{what}_sync_now", type="primary", icon=":material/sync:"):
            with crm_errors("start the sync"):
                started = runner.start_sync(settings, "full", started_by=staff.label)
            flash("Sync started" if started else "A sync is already running")
            st.switch_page(SYNC_PAGE, query_params=link_params())
    else:
        st.caption("Ask an admin to run the first sync.")
    st.stop()
