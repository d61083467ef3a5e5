"""The "Live updates" line, and the watcher that makes open pages pick up webhook changes.

``live_updates()`` is a fragment for the sidebar. While webhooks are on it reruns every
``POLL_S`` seconds on its own (the rest of the page stays idle), reads the cache version,
and when that moved (a webhook, or a sync elsewhere, changed records) it drops the
cached frames and reruns the whole page, so what is on screen follows HubSpot without a
reload. It also makes sure this process's webhook worker runs, so events left in the
inbox before a restart are applied as soon as anyone opens a page.
"""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from crm import journal, webhooks
from crm.config import Settings
from crm.errors import CrmError
from ui import data, reruns
from ui.columns import ago, duration, md_escape

log = logging.getLogger(__name__)

POLL_S = 2.0
VERSION_KEY = "live_cache_version"

REJECTION_LABELS = {
    "bad_signature": "bad signature",
    "stale_timestamp": "stale timestamp",
    "bad_timestamp": "bad timestamp",
    "missing_headers": "unsigned",
    "too_large": "too large",
    "malformed": "malformed",
    "not_configured": "webhooks not set up",
    "unknown_account": "unknown account",
}


def live_updates(settings: Settings | None = None) -> None:
    """Show whether live updates are on and keep the page in step with the cache."""
    if settings is None:
        from ui.runtime import settings as resolve

        settings = resolve()
    try:
        enabled = webhooks.receiving(settings)
    except CrmError:
        enabled = False
    if enabled:
        webhooks.ensure_worker(settings)
    # In journal mode the poller (ui.runtime) writes the cache; this only follows it.
    following = enabled or settings.live_mode()[0] == "journal"

    @st.fragment(run_every=POLL_S if following else None)
    def _live() -> None:
        _follow_cache(settings)
        try:
            status = journal.live_overview(settings)
        except Exception as exc:  # a locked or missing cache must not break every page
            log.info("live status unavailable: %s", type(exc).__name__)
            st.caption("Live updates: status unavailable")
            return
        for line in status_lines(status):
            st.caption(line)

    _live()


def _follow_cache(settings: Settings) -> None:
    try:
        with data.open_cache(settings) as db:
            version = db.meta.cache_version()
    except Exception as exc:
        log.info("cache version unavailable: %s", type(exc).__name__)
        return
    previous = st.session_state.get(VERSION_KEY)
    st.session_state[VERSION_KEY] = version
    if previous is not None and previous != version:
        data.clear()
        reruns.rerun()


def status_lines(status: dict[str, Any]) -> list[str]:
    """The sidebar's lines for a ``live_overview`` (or ``live_status``) dict, Markdown-escaped."""
    if status.get("mode") == "journal":
        lines = journal_lines(status.get("journal") or {})
    elif status.get("mode") == "off":
        lines = [f"Live updates: off ({md_escape(status.get('why') or 'not configured')})"]
    elif status.get("enabled"):
        last = status.get("last_event_at")
        lines = ["Live updates: on, " + (f"last event {ago(last)}" if last else "no event received yet")]
    else:
        lines = [f"Live updates: off ({md_escape(status.get('reason') or 'not configured')})"]
    pending, failed = int(status.get("pending") or 0), int(status.get("failed") or 0)
    if pending or failed:
        waiting = f"{pending} event{'s' if pending != 1 else ''} waiting"
        if failed:
            waiting += f", {failed} given up"
        if status.get("last_error"):
            waiting += f" — {md_escape(status['last_error'])}"
        lines.append(waiting)
    rejected = {k: v for k, v in (status.get("rejected") or {}).items() if v}
    if rejected:
        total = sum(rejected.values())
        detail = ", ".join(
            f"{REJECTION_LABELS.get(k, md_escape(k))}: {v}" for k, v in sorted(rejected.items())
        )
        # What to check is the CRM's to say (``Words.webhook_refusals``, Markdown of its own).
        hint = str(status.get("refusals_hint") or "")
        lines.append(
            f":warning: {total} webhook request{'s' if total != 1 else ''} refused ({detail})."
            + (f" {hint}" if hint else "")
        )
    return lines


def journal_lines(status: dict[str, Any]) -> list[str]:
    """Journal mode: who polls, the lag, the last event, and a gap being closed."""
    lag = status.get("lag_s")
    head = "Live updates: journal, " + (f"lag {duration(lag)}" if lag is not None else "not polled yet")
    if not status.get("polling"):
        head += " (no process is polling)"
    last = status.get("last_event") or {}
    if last:
        head += f", last event {md_escape(last.get('what') or '')} {ago(last.get('at'))}"
    lines = [head]
    gap = status.get("gap") or {}
    if gap.get("state") == "closing":
        lines.append(":warning: Closing a gap in live updates with an incremental sync (see Sync).")
    if status.get("last_error"):
        lines.append(f"Journal: {md_escape(status['last_error'])}")
    return lines
