"""What every record list page (contacts, companies, deals, tickets) does first, in one order.

The order is the page's contract with its visitor: the staff check before anything is
drawn, a flash left by the last run, the title, the sync's notes on this type, then the
connection state (or the way forward and a stop), and only then the cache's definitions
of the type's properties, which the page's labels and sorts are made of.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import streamlit as st

from crm.config import Settings
from crm.crms import provider_of
from crm.interface import ObjectTypeInfo, Words
from crm.oauth import ConnectionInfo
from ui import data
from ui.access import Staff, require_staff
from ui.columns import type_info
from ui.feedback import crm_errors, show_flash
from ui.runtime import page_settings
from ui.states import require_data
from ui.timeline import scope_notice


class ListPage(NamedTuple):
    """Who is looking, at which connection, and the type as the connection's CRM describes it
    (a tuple, so a page script unpacks the names it works with in one line)."""

    staff: Staff
    settings: Settings
    words: Words
    # Which of the CRM's properties play which part (name, pipeline, stage, owner...): its own words.
    info: ObjectTypeInfo
    conn: ConnectionInfo
    defs: dict[str, dict[str, Any]]

    def label(self, name: str) -> str:
        """A column's title in the CRM's words (``ObjectTypeInfo.label_of``)."""
        return self.info.label_of(name, self.words, self.defs)


def open_list_page(object_type: str, *, scope_notes: Sequence[str] = ()) -> ListPage:
    """Draw a list page's head and read what its table is described with; stops the run for a
    visitor who may not see it, or when there is nothing to show yet (``require_data``).

    ``scope_notes``: the types whose missing-scope warnings the page shows under its title.
    """
    staff = require_staff()
    show_flash()
    settings = page_settings()
    info = type_info(settings.crm, object_type)
    st.title(info.label)
    if scope_notes:
        scope_notice(settings, list(scope_notes))
    conn = require_data(settings, staff, object_type)
    with crm_errors("read the cache"):
        defs = data.property_defs(settings, object_type)
    return ListPage(staff, settings, provider_of(settings).words, info, conn, defs)
