"""Streamlit-side helpers shared by the pages and app.py.

The only code besides ``pages/`` and ``app.py`` that imports streamlit. Pages call these
helpers and ``crm``'s public functions; they never open SQLite or talk HTTP themselves.

    runtime   settings (env + st.secrets) and the embedded sandbox, once per process
    access    require_staff(): the first statement of every page
    data      cached loaders: the pages' only door to the cache
    columns   column configs, formatting, link sanitising, CSV neutralising, escaping
    runner    the process-wide sync runner
    sidebar   the shared sidebar
"""
