"""HubSpot CRM dashboard core: settings, HubSpot client, OAuth, cache, sync, webhooks.

Never imports streamlit, and does no work at import time.
"""
