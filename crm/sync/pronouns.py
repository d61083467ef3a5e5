"""The custom contact property "pronouns": detect it, and create it with one call.

An enumeration (a dropdown) rather than free text, as in HubSpot's own example: values
stay consistent for filtering and reporting, and "Prefer not to say" is a real choice.
Once it exists it is synced and edited like any other property; when it is absent,
nothing depends on it.
"""

from __future__ import annotations

from typing import Any

from crm import store
from crm.config import Settings
from crm.errors import AlreadyExists
from crm.hubspot import HubSpotClient
from crm.store import Store

PRONOUNS = "pronouns"
PRONOUN_OPTIONS = (
    ("she_her", "She/her"),
    ("he_him", "He/him"),
    ("they_them", "They/them"),
    ("she_they", "She/they"),
    ("he_they", "He/they"),
    ("any", "Any pronouns"),
    ("ask_me", "Ask me"),
    ("prefer_not_to_say", "Prefer not to say"),
)
PRONOUNS_DEFINITION: dict[str, Any] = {
    "name": PRONOUNS,
    "label": "Pronouns",
    "description": "How this contact wants to be referred to.",
    "type": "enumeration",
    "field_type": "select",
    "group_name": "contactinformation",
    "form_field": True,
    "options": [
        {"label": label, "value": value, "display_order": order, "hidden": False}
        for order, (value, label) in enumerate(PRONOUN_OPTIONS)
    ],
}


def pronouns_available(db: Store) -> bool:
    """Whether the portal has the contact property (as of the last sync)."""
    definition = db.queries.property_defs("contacts").get(PRONOUNS)
    return definition is not None and not definition["archived"]


def set_up_pronouns(settings: Settings, *, client: HubSpotClient | None = None) -> None:
    """Create the contact property in HubSpot (if missing) and start syncing it.

    Raises:
        MissingScopes: the connection lacks ``crm.schemas.contacts.write``.
        CrmError: HubSpot could not be reached or refused the definition.
    """
    own_client = client is None
    if client is None:
        from crm import oauth

        client = oauth.open_client(settings)
    try:
        try:
            client.create_property("contacts", dict(PRONOUNS_DEFINITION))
        except AlreadyExists:
            pass  # someone made it already: use theirs
        defs = client.list_properties("contacts")
    finally:
        if own_client:
            client.close()
    with store.open(settings) as db:
        db.records.save_property_defs("contacts", defs)
