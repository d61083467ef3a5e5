"""A select box whose labels are names that change (a record renamed by a webhook, a connection
renamed on the Connect page) shows the new name of the choice and keeps the choice
(``ui.choices.follow_renames``). The sidebar's connection switcher is one: AppTest keeps the
sidebar for one run only, so the behaviour is checked on a box of its own."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _app() -> None:
    import streamlit as st

    from ui.choices import follow_renames

    names = st.session_state.setdefault("names", {"a": "Acme", "b": "Beta"})
    follow_renames("box", names)
    st.selectbox("Connection", list(names), format_func=lambda key: names.get(key, key), key="box")


def test_a_renamed_choice_is_shown_under_its_new_name_and_stays_chosen() -> None:
    at = AppTest.from_function(_app)
    at.run()
    at.selectbox(key="box").set_value("b").run()
    at.session_state["names"] = {"a": "Acme", "b": "Beta Europe"}
    at.run()
    box = at.selectbox(key="box")
    assert (box.value, box.proto.raw_value) == ("b", "Beta Europe")
    assert box.options == ["Acme", "Beta Europe"]


def test_renaming_another_option_leaves_the_choice_as_it_was_sent() -> None:
    at = AppTest.from_function(_app)
    at.run()
    at.session_state["names"] = {"a": "Acme", "b": "Beta Europe"}
    at.run()
    box = at.selectbox(key="box")
    assert box.value == "a" and not box.proto.set_value
