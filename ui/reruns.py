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

This module is the only one that reads Streamlit's script-request internals, and
tests/ui/test_reruns.py checks them on the installed Streamlit, so an upgrade that changes
them fails a test instead of bringing the swallowed clicks back. What is left: a click that
arrives in the microseconds between the look and ``st.rerun()``'s own request is still
folded into the app's rerun.
"""

from __future__ import annotations

from typing import NoReturn

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequests, ScriptRequestType
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx


def person_asked(requests: ScriptRequests) -> bool:
    """Whether a full-page rerun is waiting for the runner (the browser's: see the module)."""
    with requests._lock:
        if requests._state != ScriptRequestType.RERUN:
            return False
        waiting = requests._rerun_data
        return not (waiting.fragment_id or waiting.fragment_id_queue or waiting.is_fragment_scoped_rerun)


def rerun() -> NoReturn:
    """``st.rerun()``, unless the person already asked for a run: then theirs, at once."""
    ctx = get_script_run_ctx(suppress_warning=True)
    requests = getattr(ctx, "script_requests", None)
    if isinstance(requests, ScriptRequests) and person_asked(requests):
        # Any element is a yield point: the runner raises there, before sending it, and
        # starts the waiting run (the placeholder never reaches the browser).
        st.empty()
    st.rerun()
