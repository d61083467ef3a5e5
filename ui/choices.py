"""Select boxes whose option labels can change under them (record and connection names)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

_SHOWN_KEY = "select_labels_shown"
# Select boxes whose labels are remembered per session (a few per page; views add keys).
_SHOWN_KEEP = 24


def follow_renames(key: str, labels: Mapping[Any, str]) -> None:
    """Call before the keyed select box ``key`` whose option labels (``labels``, value ->
    label) are names that change (a record a webhook renamed, a connection renamed on the
    Connect page): when the browser holds a choice whose label changed since it was shown,
    send the choice again so the box shows the new name and keeps the choice.

    Streamlit 1.67 sends a select box's value to the browser only when the value changes;
    the browser keeps the old label as its value, and on a later run that label matches no
    option, so the box would fall back to its first option (streamlit/streamlit PR #13788
    is the upstream fix, open). Setting the value through session state makes Streamlit
    send it with its new label.
    """
    shown: dict[str, dict[Any, str]] = st.session_state.setdefault(_SHOWN_KEY, {})
    before = shown.pop(key, {})
    # The browser's choice, read with the mapping of the run that showed it.
    held = st.session_state.get(key)
    if held in labels and held in before and before[held] != labels[held]:
        st.session_state[key] = held
    shown[key] = dict(labels)
    while len(shown) > _SHOWN_KEEP:
        shown.pop(next(iter(shown)))
