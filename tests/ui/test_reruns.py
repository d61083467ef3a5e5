"""The app's own reruns give way to the person's click (ui/reruns.py).

The AppTest scripts play the race CI lost: the browser's request (a page link, here carried
by its query string) arrives while the app is about to ask for a rerun of its own (the live
updates watcher saw a change, the Sync page saw its run end).
"""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests
from streamlit.testing.v1 import AppTest

from ui import reruns

ROOT = Path(__file__).resolve().parents[2]


def _click_then_app_rerun(use_helper: bool) -> None:
    """Run 1: a click on a page link arrives, then the app asks for its own rerun."""
    import streamlit as st
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    from ui import reruns

    ctx = get_script_run_ctx()
    assert ctx is not None
    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    st.write(f"run {st.session_state['runs']} shows {ctx.query_string or 'the page it was on'}")
    if st.session_state["runs"] == 1:
        click = RerunData(query_string="page=contacts", page_script_hash=ctx.page_script_hash)
        ctx.script_requests.request_rerun(click)
        if use_helper:
            reruns.rerun()
        st.rerun()


def _shown(use_helper: bool) -> list[str]:
    at = AppTest.from_function(_click_then_app_rerun, args=(use_helper,), default_timeout=30)
    at.run()
    assert not at.exception
    return [m.value for m in at.markdown]


def test_a_click_on_a_page_link_survives_the_apps_own_rerun() -> None:
    assert _shown(use_helper=True) == ["run 2 shows page=contacts"]


def test_streamlit_lets_a_bare_rerun_swallow_the_click() -> None:
    """Why ui.reruns exists: should Streamlit stop folding requests this way, this fails and
    the helper can go."""
    assert _shown(use_helper=False) == ["run 2 shows the page it was on"]


def test_a_waiting_page_link_click_counts_as_the_persons_request() -> None:
    requests = ScriptRequests()
    assert not reruns.person_asked(requests)
    requests.request_rerun(RerunData(query_string="", page_script_hash="contacts"))
    assert reruns.person_asked(requests)


def test_a_fragments_timer_is_not_the_persons_request() -> None:
    """The live-updates fragment's own timer queues a fragment run: the app's full rerun
    must still happen (it is how a webhook's change reaches the page)."""
    requests = ScriptRequests()
    requests.request_rerun(RerunData(fragment_id="live", is_auto_rerun=True))
    assert not reruns.person_asked(requests)


def test_every_page_reruns_through_the_helper() -> None:
    bare = re.compile(r"\bst\.rerun\(")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("pages", "ui")
        for path in sorted((ROOT / folder).glob("*.py"))
        if path.name != "reruns.py" and bare.search(path.read_text())
    ] + (["app.py"] if bare.search((ROOT / "app.py").read_text()) else [])
    assert offenders == []


def _click_then_timer(requests: ScriptRequests) -> RerunData:
    """A click on the Contacts link waits; the live-updates timer fires, naming Sync."""
    requests.request_rerun(RerunData(query_string="connection=a", page_script_hash="contacts"))
    requests.request_rerun(
        RerunData(
            query_string="connection=a", page_script_hash="sync", fragment_id="live", is_auto_rerun=True
        )
    )
    return requests.on_scriptrunner_ready().rerun_data


def test_a_fragments_timer_does_not_take_back_a_click_on_a_page_link() -> None:
    reruns.keep_pages_across_timers()
    taken = _click_then_timer(ScriptRequests())
    assert (taken.page_script_hash, taken.fragment_id_queue, taken.is_auto_rerun) == ("contacts", [], False)


def test_streamlit_lets_a_fragments_timer_take_back_the_click() -> None:
    """Why ``keep_pages_across_timers`` exists: should Streamlit's own fold keep the waiting
    page, this fails and the patch can go."""
    reruns.keep_pages_across_timers()
    original = getattr(ScriptRequests._request_rerun_locked, "__wrapped__", None)
    assert original is not None
    requests = ScriptRequests()
    with_stock_fold = type("Stock", (ScriptRequests,), {"_request_rerun_locked": original})
    requests.__class__ = with_stock_fold
    assert _click_then_timer(requests).page_script_hash == "sync"


def test_a_timer_alone_still_reruns_its_fragment_only() -> None:
    reruns.keep_pages_across_timers()
    requests = ScriptRequests()
    requests.request_rerun(RerunData(page_script_hash="sync", fragment_id="live", is_auto_rerun=True))
    assert requests.on_scriptrunner_ready().rerun_data.fragment_id_queue == ["live"]
