"""The browser remembers the chosen connection (ui/selection.py, ``remember_in_browser``)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _sidebar_after_a_switch() -> None:
    import streamlit as st

    from ui import selection

    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    selection.remember_in_browser("hubspot-202")


def _cookie_scripts(at: AppTest) -> list[str]:
    return [e.proto.body for e in at.get("html") if "document.cookie" in e.proto.body]


def test_the_cookie_script_stays_on_the_page_on_every_run_after_a_switch() -> None:
    """Drawn for one run only, the script could be replaced by the next run before the browser
    mounted it, and the switch was never remembered."""
    at = AppTest.from_function(_sidebar_after_a_switch, default_timeout=30)
    for _ in range(3):
        at.run()
        assert _cookie_scripts(at) == [
            "<script>document.cookie = 'crm_connection=hubspot-202; path=/; "
            "max-age=31536000; SameSite=Lax';</script>"
        ]
    assert at.session_state["runs"] == 3


def test_an_id_that_is_not_a_registry_id_is_never_written() -> None:
    def script() -> None:
        from ui import selection

        selection.remember_in_browser("x'; alert(1); '")

    at = AppTest.from_function(script, default_timeout=30)
    at.run()
    assert _cookie_scripts(at) == []
