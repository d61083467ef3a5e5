"""Rerunning the page without swallowing the person's click.

Streamlit folds rerun requests that meet before the script runner takes them into one, and
the newer request names the page (1.67: ``ScriptRequests._request_rerun_locked`` copies
``page_script_hash`` and the query string from it). So when the app asks for a rerun of its
own just after the person clicked a page link (the live-updates watcher saw a webhook, the
Sync page saw its run end, a button's handler finished its work), the app's request names
the page the person is leaving, and the click is lost: they stay where they were. CI caught
it: a click on "Contacts" right after "sync succeeded" appeared left the browser on Sync.

``rerun()`` looks first. A pending full-page rerun can only have come from the browser (a
click, a page link, a widget change; the fragments' timers queue fragment runs, never full
ones), and it reruns the whole page anyway, so the app gives way to it: it hands the runner
a yield point, where the runner stops this run and starts the person's. Otherwise it is
``st.rerun()``.

The browser's own fragment timers (``run_every``) fold the same way: a timer that fires
after the click, naming the page the browser last heard of, made the run the old page's.
``keep_pages_across_timers()``, installed at start, keeps the waiting page across a timer.

This module is the only one that reads (and, for the timers, patches) Streamlit's
script-request internals, and
tests/ui/test_reruns.py checks them on the installed Streamlit, so an upgrade that changes
them fails a test instead of bringing the swallowed clicks back. What is left: a click that
arrives in the microseconds between the look and ``st.rerun()``'s own request is still
folded into the app's rerun; and whether the timers were the whole of what CI saw is not
proven (the browser's side was read in Streamlit's bundle, not traced).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NoReturn

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests, ScriptRequestType
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx


def _full_page(data: RerunData) -> bool:
    return not (data.fragment_id or data.fragment_id_queue or data.is_fragment_scoped_rerun)


def person_asked(requests: ScriptRequests) -> bool:
    """Whether a full-page rerun is waiting for the runner (the browser's: see the module)."""
    with requests._lock:
        return requests._state == ScriptRequestType.RERUN and _full_page(requests._rerun_data)


def keep_pages_across_timers() -> None:
    """Make a fragment's timer rerun keep the page of a full-page rerun already waiting.

    The browser names, in a fragment timer's rerun (``run_every``: the live-updates line, the
    Sync page's progress), the page it last heard of from the server. One that fires after a
    click on a page link, before the server has started the new page (a busy server, a run of
    the old page still going), names the old page; and Streamlit 1.67 folds the two into one
    full run of the page named last (``_request_rerun_locked``), so the click is lost: CI saw
    it right after a sync ended, with ``rerun()`` above already in place. A timer is never the
    person's choice of page, so here the waiting request's page and query string win over a
    timer's; the timer's fragment still runs within that full run. Installed once, at start
    (app.py); tests/ui/test_reruns.py checks the fold on the installed Streamlit.
    """
    original = ScriptRequests._request_rerun_locked
    if getattr(original, "_keeps_pages", False):
        return

    def request_rerun_locked(self: ScriptRequests, new_data: RerunData) -> bool:
        waiting = self._rerun_data if self._state == ScriptRequestType.RERUN else None
        accepted: bool = original(self, new_data)
        if accepted and waiting is not None and new_data.is_auto_rerun and _full_page(waiting):
            self._rerun_data = replace(
                self._rerun_data,
                page_script_hash=waiting.page_script_hash,
                page_name=waiting.page_name,
                query_string=waiting.query_string,
                is_auto_rerun=waiting.is_auto_rerun,
            )
        return accepted

    request_rerun_locked._keeps_pages = True
    request_rerun_locked.__wrapped__ = original
    ScriptRequests._request_rerun_locked = request_rerun_locked


def rerun() -> NoReturn:
    """``st.rerun()``, unless the person already asked for a run: then theirs, at once."""
    ctx = get_script_run_ctx(suppress_warning=True)
    requests = getattr(ctx, "script_requests", None)
    if isinstance(requests, ScriptRequests) and person_asked(requests):
        # Any element is a yield point: the runner raises there, before sending it, and
        # starts the waiting run (the placeholder never reaches the browser).
        st.empty()
    st.rerun()
