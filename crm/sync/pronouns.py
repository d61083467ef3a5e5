"""The custom contact property "pronouns": detect it, and create it in every CRM that lacks it.

An enumeration (a dropdown) rather than free text, as in HubSpot's own example: values
stay consistent for filtering and reporting, and "Prefer not to say" is a real choice.
Once it exists it is synced and edited like any other property; when it is absent,
nothing depends on it.

Created through the CRM interface (``CrmApi.properties`` / ``create_property``), so any
CRM gets it. HubSpot names the property ``pronouns``; Pipedrive names a custom field with
a 40-character hash key and keeps our name as its label. So "which property is pronouns"
is read from the connection's stored definitions (``pronouns_property``): the one named
``pronouns``, else the custom one labelled "Pronouns". Pages and push find it there.

``set_up_pronouns_everywhere`` does it for every connection and reports each one
(created, already there, or failed with the CRM's message): the Connect page's button
and the CLI's ``pronouns`` command call it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from crm import connections, crms, store
from crm.config import Settings
from crm.errors import AlreadyExists, CrmError
from crm.interface import CrmApi, Option, Property
from crm.store import Store
from crm.sync.listpull import definition_of

PRONOUNS = "pronouns"
PRONOUNS_LABEL = "Pronouns"
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
# What is asked of the CRM; it may rename the property and its option values (Pipedrive:
# a hash key, option ids), so what it answers is what is stored.
PRONOUNS_PROPERTY = Property(
    name=PRONOUNS,
    label=PRONOUNS_LABEL,
    type="enumeration",
    options=tuple(
        Option(value=value, label=label, display_order=order)
        for order, (value, label) in enumerate(PRONOUN_OPTIONS)
    ),
    custom=True,
)
# Neutral value type -> the stored definition's field type (crm.store property_defs).

SetupStatus = Literal["created", "already", "failed"]


@dataclass(frozen=True)
class PronounsSetup:
    """What setting up pronouns did for one connection.

    ``property`` is the CRM's name for the field (None when it failed); ``message`` says
    why it failed, in the CRM's words.
    """

    connection: str | None
    label: str
    crm: str
    status: SetupStatus
    property: str | None = None
    message: str | None = None


def pronouns_property(db: Store) -> str | None:
    """The contact property that holds pronouns in this connection's CRM (as last synced), or None."""
    defs = db.queries.property_defs("contacts")
    found = _pronouns_in(defs.values())
    return None if found is None else str(found["name"])


def pronouns_available(db: Store) -> bool:
    """Whether the connection's contacts have the pronouns property (as of the last sync)."""
    return pronouns_property(db) is not None


def set_up_pronouns(settings: Settings, *, api: CrmApi | None = None) -> PronounsSetup:
    """Create the contact property in the connection's CRM (if missing) and start syncing it.

    ``api``: an opened CRM API (tests); None opens the connection's own.

    Raises:
        MissingScopes: the connection may not change contact definitions.
        CrmError: the CRM could not be reached or refused the definition.
    """
    provider = crms.provider_of(settings)
    own_api = api is None
    if api is None:
        api = provider.connect(settings)
    try:
        status: SetupStatus = "already"
        found = _pronouns_in(definition_of(p) for p in api.properties("contacts"))
        if found is None:
            try:
                api.create_property("contacts", PRONOUNS_PROPERTY)
                status = "created"
            except AlreadyExists:
                pass  # someone made it meanwhile: use theirs
            found = _pronouns_in(definition_of(p) for p in api.properties("contacts"))
    finally:
        if own_api:
            api.close()
    if found is None:
        raise CrmError(f"{provider.words.crm} did not list the pronouns property after creating it")
    with store.open(settings) as db:
        _save(db, found)
    return PronounsSetup(
        connection=settings.connection,
        label=settings.connection or provider.words.crm,
        crm=provider.words.crm,
        status=status,
        property=str(found["name"]),
    )


def set_up_pronouns_everywhere(
    settings: Settings, *, open_api: Callable[[Settings], CrmApi] | None = None
) -> list[PronounsSetup]:
    """Set up pronouns in every connection's CRM that lacks it; one result per connection.

    A connection that fails (not connected, no permission, unreachable) is reported with
    its message and the others go on. ``open_api`` opens a connection's API from its
    settings (tests); None: each provider's ``connect``.
    """
    results: list[PronounsSetup] = []
    for conn in connections.list_connections(settings):
        chosen = connections.settings_for(settings, conn)
        crm = crms.provider_for(conn.crm).words.crm
        try:
            if open_api is None:
                done = set_up_pronouns(chosen)
            else:
                with open_api(chosen) as api:
                    done = set_up_pronouns(chosen, api=api)
        except CrmError as exc:
            results.append(
                PronounsSetup(connection=conn.id, label=conn.name, crm=crm, status="failed", message=str(exc))
            )
            continue
        results.append(
            PronounsSetup(
                connection=conn.id, label=conn.name, crm=crm, status=done.status, property=done.property
            )
        )
    return results


def describe_setup(result: PronounsSetup) -> str:
    """One connection's outcome in words: "created in Acme (HubSpot)" (plain text)."""
    where = f"{result.label} ({result.crm})"
    if result.status == "created":
        return f"created in {where}"
    if result.status == "already":
        return f"already in {where}"
    return f"not set up in {where}: {result.message}"


def _pronouns_in(defs: Any) -> Mapping[str, Any] | None:
    """The pronouns definition among ``defs``: named ``pronouns``, else a custom one labelled so."""
    labelled = None
    for definition in defs:
        if definition.get("archived"):
            continue
        if definition.get("name") == PRONOUNS:
            return dict(definition)
        label = str(definition.get("label") or "").strip().lower()
        if labelled is None and label == PRONOUNS_LABEL.lower() and not definition.get("hubspot_defined"):
            labelled = dict(definition)
    return labelled


def _save(db: Store, definition: Mapping[str, Any]) -> None:
    """Add (or refresh) the pronouns definition, keeping every other stored one as it is
    (saving a list flags what it leaves out as archived)."""
    defs = db.queries.property_defs("contacts")
    defs[str(definition["name"])] = dict(definition)
    db.records.save_property_defs("contacts", list(defs.values()))
