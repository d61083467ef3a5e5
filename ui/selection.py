"""Which connection this browser session looks at, and the settings pages use for it.

The choice, first match wins:

1. ``?connection=<id>`` in the URL: a deep link, or the URL after a switch (every run writes
   the chosen id back into the URL, so a copied link opens the same connection);
2. this session's choice: Streamlit clears the query string when the navigation switches
   pages, and ``st.session_state`` survives that;
3. the choice remembered by this browser (cookie ``crm_connection``), for a new session that
   opens a bare URL (a new tab, the OAuth return, a restart);
4. the only connection, or the first one registered.

Remembering per browser: Streamlit 1.67 scripts cannot set cookies (``st.context.cookies`` is
read-only, and only at the WebSocket handshake), so after a change the sidebar carries a one-line
script (``st.html`` with ``unsafe_allow_javascript``) that writes the cookie. What it writes is
a registry id checked against ``SAFE_ID`` (never CRM data, never a secret); what it reads back
is only a preference: an id that is not registered (any more) is ignored.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence

import streamlit as st

from crm import connections
from crm.config import Settings
from crm.errors import CrmError

log = logging.getLogger(__name__)

QUERY_KEY = "connection"
STATE_KEY = "connection_selected"
_UNKNOWN_KEY = "connection_unknown_link"
COOKIE = "crm_connection"
_COOKIE_WRITTEN_KEY = "connection_cookie_written"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclasses.dataclass(frozen=True)
class Selection:
    """The registered connections and the chosen one (None when there is none yet)."""

    known: tuple[connections.Connection, ...]
    chosen: connections.Connection | None


def choose(
    ids: Sequence[str], *, linked: str | None, in_session: str | None, remembered: str | None
) -> str | None:
    """The id to show: the first of linked, in-session and remembered that is registered, else the first."""
    for candidate in (linked, in_session, remembered):
        if candidate and candidate in ids:
            return candidate
    return ids[0] if ids else None


def _remembered() -> str | None:
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # no session (bare mode, AppTest without a browser)
        return None
    return str(value) if value else None


def current(home: Settings) -> Selection:
    """Resolve this run's connection (see the module docstring) and write it into the URL.

    A registry that cannot be read counts as no connections: the page then says what is
    wrong when it reads its own data.
    """
    try:
        known = tuple(connections.list_connections(home))
    except CrmError as exc:
        log.info("connections unavailable: %s", type(exc).__name__)
        known = ()
    ids = [c.id for c in known]
    linked = st.query_params.get(QUERY_KEY)
    chosen = choose(
        ids,
        linked=linked,
        in_session=st.session_state.get(STATE_KEY),
        remembered=_remembered(),
    )
    st.session_state[STATE_KEY] = chosen
    if chosen is not None and st.query_params.get(QUERY_KEY) != chosen:
        st.query_params[QUERY_KEY] = chosen
    elif chosen is None and linked is not None:
        del st.query_params[QUERY_KEY]
    if linked and linked != chosen:
        st.session_state[_UNKNOWN_KEY] = linked
    return Selection(known, next((c for c in known if c.id == chosen), None))


def take_unknown_link() -> str | None:
    """A ``?connection=`` that named no registered connection in this run, to say so once."""
    found = st.session_state.pop(_UNKNOWN_KEY, None)
    return str(found) if found else None


def settings_for(home: Settings, selection: Selection) -> Settings:
    """The settings pages use: the chosen connection's partition, or home with none registered."""
    if selection.chosen is None:
        return home
    return connections.settings_for(home, selection.chosen)


def select(connection_id: str) -> None:
    """Make ``connection_id`` this session's connection from now on (the next run shows it)."""
    st.session_state[STATE_KEY] = connection_id
    st.query_params[QUERY_KEY] = connection_id


def forget(connection_id: str) -> None:
    """After a removal: stop choosing ``connection_id`` (the next run picks another)."""
    if st.session_state.get(STATE_KEY) == connection_id:
        st.session_state.pop(STATE_KEY, None)
    if st.query_params.get(QUERY_KEY) == connection_id:
        del st.query_params[QUERY_KEY]


def link_params(**params: str) -> dict[str, str]:
    """Query parameters for a link to another page, carrying this session's connection."""
    chosen = st.session_state.get(STATE_KEY)
    return {**params, QUERY_KEY: str(chosen)} if chosen else dict(params)


def remember_in_browser(connection_id: str) -> None:
    """Keep the per-browser cookie at ``connection_id`` (see the module docstring).

    Nothing is drawn while the cookie the browser sent matches and this session never wrote
    another. Once the session writes one, the script is drawn on every full run, not once:
    an element drawn for one run only is gone as soon as the next run draws the page (a
    live update, a click), and when that comes before the browser has mounted it, its script
    never runs (CI caught a switch during live updates that was never remembered). Kept on
    the page, it is mounted for sure; mounted again, it writes the same cookie.
    """
    if not SAFE_ID.match(connection_id):
        return
    if _remembered() == connection_id and _COOKIE_WRITTEN_KEY not in st.session_state:
        return
    st.session_state[_COOKIE_WRITTEN_KEY] = connection_id
    # A registry id matched by SAFE_ID, never CRM data; the script only sets our own cookie.
    st.html(
        f"<script>document.cookie = '{COOKIE}={connection_id}; path=/; "
        f"max-age={COOKIE_MAX_AGE_S}; SameSite=Lax';</script>",
        unsafe_allow_javascript=True,
    )


def label(connection: connections.Connection | None) -> str:
    """How a connection is named on screen: its display name (plain text; escape for Markdown)."""
    if connection is None:
        return ""
    return connection.name or connection.id
