"""The CRMs this dashboard can connect, by name: ``provider_for("hubspot")``.

A connection names its CRM (``connections.crm``); everything CRM-specific is then asked of
the provider this returns (``crm.interface.Crm``): its words, record links, OAuth details,
webhook checks and a connected API. Adding a CRM is one entry here.
"""

from __future__ import annotations

from crm.config import Settings
from crm.hubspot.provider import HubSpot
from crm.interface import Crm, Words
from crm.pipedrive.provider import Pipedrive

# Pipedrive is started (API token connections through the interface; issue #15): no OAuth yet.
PROVIDERS: dict[str, Crm] = {"hubspot": HubSpot(), "pipedrive": Pipedrive()}
DEFAULT_CRM = "hubspot"


def provider_for(name: str | None) -> Crm:
    """The CRM called ``name`` (empty or None: HubSpot, the one every older cache holds).

    Raises:
        KeyError: no CRM of that name; the message lists the known ones.
    """
    key = (name or DEFAULT_CRM).strip().lower()
    try:
        return PROVIDERS[key]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise KeyError(f"unknown CRM {name!r}; known: {known}") from None


def names() -> tuple[str, ...]:
    """Names of the CRMs that can be connected, in registry order."""
    return tuple(PROVIDERS)


def provider_of(settings: Settings) -> Crm:
    """The CRM of the connection ``settings`` are for (``settings.crm``)."""
    return provider_for(settings.crm)


def words_for(name: str | None) -> Words:
    """The words of the CRM called ``name`` (None: HubSpot), for pages and messages."""
    return provider_for(name).words
