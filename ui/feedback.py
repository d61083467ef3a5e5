"""What a person sees when something goes wrong: what happened and what to do, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from crm import errors
from ui.columns import md_escape

log = logging.getLogger(__name__)

FLASH_KEY = "_flash"


def explain(exc: errors.CrmError) -> tuple[str, str]:
    """(what happened, what to do) for an error from ``crm``, both plain text."""
    if isinstance(exc, errors.NeedsReconnect):
        return (
            "HubSpot no longer accepts this app's connection.",
            "An admin needs to connect again on the Connect page.",
        )
    if isinstance(exc, errors.NotConnected):
        return "The dashboard is not connected to HubSpot.", "Connect a portal on the Connect page."
    if isinstance(exc, errors.ConfigError):
        return (
            f"Setting {exc.setting} is not right: {exc}.",
            "Fix it in the environment or secrets, then reload.",
        )
    if isinstance(exc, errors.RateLimited):
        wait = f" in about {exc.retry_after:.0f} s" if exc.retry_after else " in a minute"
        return "HubSpot is rate limiting this portal.", f"Try again{wait}."
    if isinstance(exc, errors.MissingScopes):
        return (
            f"The HubSpot connection lacks a permission this needs ({exc.message}).",
            "Reconnect and grant the requested scopes.",
        )
    if isinstance(exc, errors.ValidationFailed):
        return f"HubSpot refused the values: {exc}.", "Correct the values and try again."
    if isinstance(exc, errors.HubSpotError):
        return (
            f"HubSpot answered with an error ({exc.status_code}): {exc}.",
            "Try again; if it persists, check HubSpot's status.",
        )
    if isinstance(exc, errors.CircuitOpen):
        return (
            "HubSpot failed repeatedly, so the app paused calling it.",
            f"Try again in about {exc.retry_in:.0f} s.",
        )
    if isinstance(exc, errors.Unreachable):
        return f"HubSpot could not be reached: {exc}.", "Check the network connection and try again."
    if isinstance(exc, errors.SyncBusy):
        return "A sync is already running.", "Its progress is on the Sync page."
    if isinstance(exc, errors.CacheEmpty):
        return "Nothing has been synced yet.", "Run a sync on the Sync page."
    if isinstance(exc, errors.InvalidEdit):
        return f"Some values are not valid: {exc}.", "Correct the marked values; nothing was saved."
    if isinstance(exc, errors.OAuthFlowError):
        return f"Connecting to HubSpot failed: {exc}.", "Start again with Connect HubSpot."
    return str(exc), "Try again; if it keeps happening, tell an admin."


def show_error(exc: errors.CrmError, *, doing: str | None = None) -> None:
    what, todo = explain(exc)
    prefix = f"Could not {doing}. " if doing else ""
    st.error(md_escape(f"{prefix}{what} {todo}", max_len=800), icon=":material/error:")


@contextmanager
def crm_errors(doing: str | None = None, *, stop: bool = True) -> Iterator[None]:
    """Show a ``CrmError`` raised inside the block as a plain error (then stop the page)."""
    try:
        yield
    except errors.CrmError as exc:
        log.info("%s failed: %s", doing or "page", type(exc).__name__)
        show_error(exc, doing=doing)
        if stop:
            st.stop()


def toast(message: str, *, icon: str = ":material/check_circle:") -> None:
    """A success notice; ``message`` is escaped, so CRM text in it stays plain."""
    st.toast(md_escape(message, max_len=300), icon=icon)


def flash(message: str) -> None:
    """A success notice shown after the rerun that follows (a toast would be lost)."""
    st.session_state.setdefault(FLASH_KEY, []).append(message)


def show_flash() -> None:
    """Show and forget the notices left by ``flash``."""
    for message in st.session_state.pop(FLASH_KEY, []):
        toast(message)


def on_script_error(exc: Exception) -> bool:
    """``st.App`` hook for anything a page did not catch: log it, show a friendly error instead."""
    log.error("unexpected error in a page", exc_info=exc)
    try:
        st.error(
            "Something went wrong on this page. The details are in the server log; "
            "reload the page to try again, and tell an admin if it keeps happening.",
            icon=":material/error:",
        )
    except Exception:  # the hook must never raise
        log.debug("could not render the error notice", exc_info=True)
        return False
    return True
