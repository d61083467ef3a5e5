"""Entry point: ``streamlit run app.py``.

At module level, ``app`` serves our HTTP routes (OAuth connect and callback, webhook,
health) beside the UI. Under ``__main__`` (a browser session runs the script that way;
uvicorn's import of ``app:app`` does not), the navigation: every page registered on
every run, the access guard, the shared sidebar.
"""

from __future__ import annotations

import streamlit as st

from ui.feedback import on_script_error
from ui.reruns import keep_pages_across_timers
from ui.routes import ROUTES
from ui.runtime import start_process_services

app = st.App(__file__, routes=ROUTES, on_script_error=on_script_error)
# Logs and CRM_SYNC_INTERVAL's schedule start with the server (once per process).
start_process_services()

# On a fresh server, Streamlit serves pages/*.py by URL in legacy mode (no app.py, so no
# navigation or sidebar) until some session opens "/" and st.navigation switches that
# off for everyone. An OAuth return to /connect can be that first visit, so switch it off
# at startup, as st.navigation would. Each page still runs the access guard itself.
try:
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False
except (ImportError, AttributeError):  # a later Streamlit without the flag
    pass
# A fragment's timer must not take back a click on a page link (ui/reruns.py).
keep_pages_across_timers()

if __name__ == "__main__":
    from ui.access import check_access, require_staff
    from ui.data import note_shown
    from ui.runtime import nav_titles, page_settings
    from ui.sidebar import connection_caption, refresh_status, render_sidebar

    st.set_page_config(page_title="HubSpot CRM", page_icon=":material/hub:", layout="wide")
    verdict = check_access()
    # The sidebar names the pages in the selected connection's CRM's words (Pipedrive:
    # People, Organizations), read only once the visitor is let in (the guard decides
    # before anything is read); a type the CRM does not have is left out of the list.
    titles = nav_titles() if verdict.decision == "allowed" else {}
    # Registered unconditionally: the OAuth return and deep links arrive as new sessions.
    nav = st.navigation(
        {
            "CRM": [
                st.Page(
                    "pages/contacts.py",
                    title=titles.get("contacts", "Contacts"),
                    icon=":material/person:",
                    default=True,
                ),
                st.Page(
                    "pages/companies.py",
                    title=titles.get("companies", "Companies"),
                    icon=":material/domain:",
                    url_path="companies",
                ),
                st.Page(
                    "pages/deals.py",
                    title=titles.get("deals", "Deals"),
                    icon=":material/handshake:",
                    url_path="deals",
                ),
                st.Page(
                    "pages/tickets.py",
                    title=titles.get("tickets", "Tickets"),
                    icon=":material/support_agent:",
                    url_path="tickets",
                    visibility="visible" if not titles or "tickets" in titles else "hidden",
                ),
                st.Page("pages/search.py", title="Search", icon=":material/search:", url_path="search"),
                st.Page(
                    "pages/record.py",
                    title="Record",
                    icon=":material/article:",
                    url_path="record",
                    visibility="hidden",
                ),
            ],
            "Admin": [
                st.Page("pages/sync.py", title="Sync", icon=":material/sync:", url_path="sync"),
                st.Page("pages/connect.py", title="Connect", icon=":material/link:", url_path="connect"),
            ],
        },
        position="sidebar" if verdict.decision == "allowed" else "hidden",
    )
    staff = require_staff(notice=False)
    settings = page_settings()
    status_slot = render_sidebar(settings, staff)
    connection_caption()
    nav.run()
    # Drawn again after the page (which st.stop() may end early, hence the first drawing),
    # so the counts include what the page just queued, pushed or resolved.
    refresh_status(status_slot, settings)
    note_shown(settings)
