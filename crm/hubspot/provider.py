"""HubSpot as an implementation of the CRM interface (``crm.interface``).

A thin translation: every call goes to the code that already does the work, unchanged,
and only the shapes change at this edge:

    HubSpot.exchange_code / refresh / revoke   -> crm.hubspot.tokens.TokenEndpoint
    HubSpot.open(settings, tokens)             -> HubSpotApi over a HubSpotClient
    HubSpot.connect(settings)                  -> crm.oauth.open_client (stored tokens)
    HubSpot.read_webhook                       -> crm.hubspot.deliveries (v3 signature, events)
    HubSpotApi.*                               -> HubSpotClient (paging, search walks, batches,
                                                  associations v4, limits and retries)

Sync, push and the webhook worker still drive ``HubSpotClient`` directly this session
(docs/CONTRACTS.md says so); new code asks ``crm.crms.provider_for(name)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Self
from urllib.parse import quote

import httpx2

from crm.config import Settings
from crm.errors import HubSpotError, ValidationFailed, WebhookRejected
from crm.hubspot import deliveries
from crm.hubspot.client import HubSpotClient
from crm.hubspot.models import ENGAGEMENT_ASSOCIATION_TYPES, BatchResult, ms_to_iso
from crm.hubspot.models import Record as HubSpotRecord
from crm.hubspot.tokens import TokenEndpoint, TokenGrant
from crm.interface import (
    ChangeKind,
    Event,
    Grant,
    Identity,
    OAuthDetails,
    ObjectTypeInfo,
    Option,
    Owner,
    Page,
    Pipeline,
    Property,
    Record,
    Stage,
    TokenSource,
    WebhookRequest,
    Words,
    WriteFailure,
    WriteResult,
    safe_host,
)
from crm.store.interactions import cache_properties

WORDS = Words(
    crm="HubSpot",
    account="portal",
    owner="owner",
    fields={
        "lifecyclestage": "Lifecycle stage",
        "hs_lead_status": "Lead status",
        "hubspot_owner_id": "Owner",
        "dealstage": "Deal stage",
        "pipeline": "Pipeline",
        "closedate": "Close date",
        "dealname": "Deal name",
        "hs_pipeline": "Pipeline",
        "hs_pipeline_stage": "Ticket status",
        "hs_ticket_priority": "Priority",
    },
    interactions="Interactions",
    interactions_detail="Notes, calls, emails, meetings, tasks and inbox conversations",
    webhook_refusals=(
        "Many refusals usually mean HUBSPOT\\_WEBHOOK\\_URL or the client secret does not match "
        "the HubSpot app's settings."
    ),
)

OBJECT_TYPES = (
    ObjectTypeInfo(
        "contacts",
        "Contacts",
        "contact",
        owner="hubspot_owner_id",
        stage="lifecyclestage",
        email="email",
        title=("firstname", "lastname", "email"),
        phone="phone",
        columns=(
            "firstname",
            "lastname",
            "email",
            "phone",
            "jobtitle",
            "company",
            "lifecyclestage",
            "hubspot_owner_id",
            "lastmodifieddate",
        ),
        editable=(
            "firstname",
            "lastname",
            "email",
            "phone",
            "jobtitle",
            "lifecyclestage",
            "hubspot_owner_id",
        ),
        # Exactly the columns of the cache's contacts search index, so the index answers.
        search=("firstname", "lastname", "email", "company", "phone"),
        search_hint="Name, email, company or phone",
        sorts=(
            ("lastmodifieddate", True),
            ("lastname", False),
            ("firstname", False),
            ("email", False),
            ("company", False),
            ("lifecyclestage", False),
            ("createdate", True),
        ),
        related=("firstname", "lastname", "email", "jobtitle"),
        labels=(
            ("firstname", "First name"),
            ("lastname", "Last name"),
            ("email", "Email"),
            ("phone", "Phone"),
            ("jobtitle", "Job title"),
            ("company", "Company"),
            ("lastmodifieddate", "Last modified"),
            ("createdate", "Created"),
        ),
    ),
    ObjectTypeInfo(
        "companies",
        "Companies",
        "company",
        owner="hubspot_owner_id",
        title=("name", "domain"),
        columns=("name", "domain", "industry", "city", "country", "numberofemployees", "annualrevenue"),
        search=("name", "domain", "phone", "city"),
        search_hint="Name, domain, phone or city",
        sorts=(
            ("name", False),
            ("hs_lastmodifieddate", True),
            ("numberofemployees", True),
            ("annualrevenue", True),
            ("country", False),
        ),
        related=("name", "domain", "city", "country"),
        amount="annualrevenue",
        labels=(
            ("name", "Name"),
            ("domain", "Domain"),
            ("industry", "Industry"),
            ("city", "City"),
            ("country", "Country"),
            ("numberofemployees", "Employees"),
            ("annualrevenue", "Annual revenue"),
            ("hs_lastmodifieddate", "Last modified"),
        ),
    ),
    ObjectTypeInfo(
        "deals",
        "Deals",
        "deal",
        owner="hubspot_owner_id",
        stage="dealstage",
        pipeline="pipeline",
        title=("dealname",),
        columns=("dealname", "pipeline", "dealstage", "amount", "closedate", "hubspot_owner_id"),
        editable=("dealstage", "amount", "closedate", "hubspot_owner_id"),
        search=("dealname",),
        search_hint="Deal name",
        sorts=(("hs_lastmodifieddate", True), ("amount", True), ("closedate", False), ("dealname", False)),
        related=("dealname", "dealstage", "amount", "closedate"),
        labels=(
            ("dealname", "Deal"),
            ("dealstage", "Stage"),
            ("amount", "Amount"),
            ("closedate", "Close date"),
            ("hs_lastmodifieddate", "Last modified"),
        ),
        amount="amount",
        currency="deal_currency_code",
        close_date="closedate",
    ),
    ObjectTypeInfo(
        "tickets",
        "Tickets",
        "ticket",
        owner="hubspot_owner_id",
        stage="hs_pipeline_stage",
        pipeline="hs_pipeline",
        title=("subject",),
        columns=(
            "subject",
            "hs_pipeline",
            "hs_pipeline_stage",
            "hs_ticket_priority",
            "hubspot_owner_id",
            "createdate",
        ),
        editable=("hs_pipeline_stage", "hs_ticket_priority", "hubspot_owner_id"),
        search=("subject", "content"),
        search_hint="Subject or description",
        sorts=(
            ("hs_lastmodifieddate", True),
            ("createdate", True),
            ("createdate", False),
            ("hs_ticket_priority", False),
            ("subject", False),
        ),
        related=("subject", "hs_ticket_priority", "createdate"),
        labels=(
            ("subject", "Subject"),
            ("hs_pipeline_stage", "Stage"),
            ("createdate", "Created"),
            ("hs_lastmodifieddate", "Last modified"),
        ),
    ),
)

# HubSpot's object type ids, as used in record URLs (HUBSPOT_API.md).
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "tickets": "0-5"}

# Neutral value type -> HubSpot's (type, fieldType) for a new property.
_NEW_PROPERTY_TYPES = {
    "string": ("string", "text"),
    "number": ("number", "number"),
    "date": ("date", "date"),
    "datetime": ("datetime", "date"),
    "bool": ("bool", "booleancheckbox"),
    "enumeration": ("enumeration", "select"),
    "multi": ("enumeration", "checkbox"),
}
# The group HubSpot's own UI files a type's custom properties under.
_DEFAULT_GROUPS = {
    "contacts": "contactinformation",
    "companies": "companyinformation",
    "deals": "dealinformation",
    "tickets": "ticketinformation",
}
_CHANGES: dict[str, ChangeKind] = {
    "creation": "created",
    "propertyChange": "updated",
    "deletion": "deleted",
    "restore": "restored",
    "merge": "merged",
    "associationChange": "associations",
    "privacyDeletion": "privacy_deleted",
}


class HubSpot:
    """The HubSpot CRM (``crm.interface.Crm``)."""

    name = "hubspot"
    words = WORDS

    def object_types(self) -> tuple[ObjectTypeInfo, ...]:
        return OBJECT_TYPES

    def oauth(self, settings: Settings) -> OAuthDetails:
        return OAuthDetails(
            authorize_url=settings.authorize_url,
            token_url=settings.token_url,
            revoke_url=settings.base_url.rstrip("/") + settings.revoke_path,
            scopes=settings.scopes,
            optional_scopes=settings.optional_scopes,
        )

    def exchange_code(
        self,
        settings: Settings,
        code: str,
        *,
        code_verifier: str | None = None,
        transport: httpx2.BaseTransport | None = None,
    ) -> Grant:
        grant = TokenEndpoint(settings, transport=transport).exchange_code(code, code_verifier=code_verifier)
        return _grant(grant)

    def refresh(
        self, settings: Settings, refresh_token: str, *, transport: httpx2.BaseTransport | None = None
    ) -> Grant:
        return _grant(TokenEndpoint(settings, transport=transport).refresh(refresh_token))

    def revoke(
        self, settings: Settings, refresh_token: str, *, transport: httpx2.BaseTransport | None = None
    ) -> None:
        TokenEndpoint(settings, transport=transport).revoke(refresh_token)

    def consent_missing(self, settings: Settings) -> str | None:
        """A private-app token (HUBSPOT_ACCESS_TOKEN) replaces the consent flow: nothing to add."""
        if settings.mode == "private_app":
            return "Private-app mode: check HUBSPOT_ACCESS_TOKEN; the app connects with it on its own."
        return None

    def configured_mode(self, settings: Settings) -> str | None:
        """The HUBSPOT_* settings pick the mode of every HubSpot connection (``Settings.mode``)."""
        return settings.mode

    def open(
        self,
        settings: Settings,
        tokens: TokenSource,
        *,
        base_url: str | None = None,
        transport: httpx2.BaseTransport | None = None,
        account_name: str | None = None,
    ) -> HubSpotApi:
        return HubSpotApi(
            HubSpotClient(settings, tokens, base_url=base_url, transport=transport), account_name=account_name
        )

    def connect(self, settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> HubSpotApi:
        # Imported here: crm.oauth sits above crm.hubspot, and a module-level import would
        # tie the client edge to the connection layer.
        from crm import oauth

        info = oauth.connection_info(settings, transport=transport)
        return HubSpotApi(oauth.open_client(settings, transport=transport), account_name=info.hub_domain)

    # --- crm.sync.runner.TunedPull (issue #15, pdsync) -----------------------------------------

    def open_sync_client(self, settings: Settings) -> HubSpotClient:
        """The client HubSpot's tuned pull (``crm.sync.pull``) runs on, for this connection."""
        from crm import oauth

        return oauth.open_client(settings)

    def read_webhook(self, request: WebhookRequest, *, secret: str, now_ms: int | None = None) -> list[Event]:
        if not secret:
            raise WebhookRejected("No client secret to verify the delivery with.", reason="not_configured")
        deliveries.verify_headers(
            client_secret=secret,
            method=request.method,
            uri=request.uri,
            headers=request.headers,
            body=request.body,
            now_ms=now_ms,
        )
        return [_event(raw) for raw in deliveries.parse_events(request.body)]

    def record_url(self, object_type: str, record_id: str, *, account: Identity) -> str | None:
        """``https://{ui host}/contacts/{portal}/record/{type id}/{id}``; None for anything odd."""
        host = safe_host(account.ui_host)
        type_id = OBJECT_TYPE_IDS.get(object_type)
        portal = str(account.account_id or "")
        rid = str(record_id or "")
        if host is None or type_id is None or not portal.isdigit() or not rid.isdigit():
            return None
        return f"https://{host}/contacts/{portal}/record/{type_id}/{quote(rid)}"

    def account_url(self, account: Identity) -> str | None:
        """The portal's contacts home in HubSpot."""
        host = safe_host(account.ui_host)
        portal = str(account.account_id or "")
        if host is None or not portal.isdigit():
            return None
        return f"https://{host}/contacts/{portal}"


class HubSpotApi:
    """One connected portal (``crm.interface.CrmApi``) over a ``HubSpotClient``.

    ``client`` is public for the code that still needs HubSpot-only calls (inbox threads,
    transcripts, the search walkers of the full pull).
    """

    def __init__(self, client: HubSpotClient, *, account_name: str | None = None) -> None:
        self.client = client
        self._account_name = account_name

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def identity(self) -> Identity:
        info = self.client.account_info()
        account_id = str(info.get("portal_id") or "")
        return Identity(
            account_id=account_id,
            account_name=self._account_name or WORDS.account_label(account_id),
            user=None,
            ui_host=info.get("ui_domain"),
            currency=info.get("currency") or None,
        )

    def properties(self, object_type: str) -> list[Property]:
        return [
            _property(item) for item in self.client.list_properties(object_type) if not item.get("archived")
        ]

    def create_property(self, object_type: str, prop: Property) -> Property:
        kind, field_type = _NEW_PROPERTY_TYPES.get(prop.type, ("string", "text"))
        definition: dict[str, Any] = {
            "name": prop.name,
            "label": prop.label,
            "type": kind,
            "field_type": field_type,
            "group_name": prop.group or _DEFAULT_GROUPS.get(object_type, "contactinformation"),
            "form_field": True,
            "options": [
                {"label": o.label, "value": o.value, "display_order": o.display_order, "hidden": o.hidden}
                for o in prop.options
            ],
        }
        return _property(self.client.create_property(object_type, definition))

    def owners(self) -> list[Owner]:
        found = []
        for item in self.client.iter_owners():
            name = " ".join(p for p in (item.get("first_name"), item.get("last_name")) if p)
            found.append(
                Owner(
                    id=str(item["id"]),
                    email=item.get("email"),
                    name=name or str(item.get("email") or item["id"]),
                    archived=bool(item.get("archived")),
                )
            )
        return found

    def pipelines(self, object_type: str) -> list[Pipeline]:
        if object_type not in ("deals", "tickets"):
            return []
        return [
            Pipeline(
                id=p["id"],
                label=str(p.get("label") or p["id"]),
                display_order=int(p.get("display_order") or 0),
                stages=tuple(
                    Stage(
                        id=s["id"],
                        label=str(s.get("label") or s["id"]),
                        display_order=int(s.get("display_order") or 0),
                        probability=s.get("probability"),
                        is_closed=bool(s.get("is_closed")),
                    )
                    for s in p["stages"]
                    if not s.get("archived")
                ),
            )
            for p in self.client.list_pipelines(object_type)
            if not p.get("archived")
        ]

    def list_page(
        self, object_type: str, *, properties: Sequence[str], cursor: str | None = None, limit: int = 100
    ) -> Page:
        page = self.client.list_page(object_type, properties=properties, after=cursor, limit=limit)
        return Page([_record(object_type, r) for r in page.records], page.next_after)

    def iter_modified_since(
        self, object_type: str, since_ms: int, *, properties: Sequence[str]
    ) -> Iterator[list[Record]]:
        for batch in self.client.iter_modified_since(object_type, since_ms, properties=properties):
            yield [_record(object_type, r) for r in batch]

    def batch_read(self, object_type: str, ids: Sequence[str], *, properties: Sequence[str]) -> list[Record]:
        return [
            _record(object_type, r) for r in self.client.batch_read(object_type, ids, properties=properties)
        ]

    def batch_create(self, object_type: str, inputs: Sequence[Mapping[str, str | None]]) -> WriteResult:
        wire = [
            {"properties": dict(values), "object_write_trace_id": f"input-{i}"}
            for i, values in enumerate(inputs)
        ]
        return _written(object_type, self.client.batch_create(object_type, wire))

    def batch_update(self, object_type: str, updates: Mapping[str, Mapping[str, str | None]]) -> WriteResult:
        wire = [{"id": record_id, "properties": dict(values)} for record_id, values in updates.items()]
        return _written(object_type, self.client.batch_update(object_type, wire))

    def batch_upsert(
        self, object_type: str, inputs: Sequence[Mapping[str, str | None]], *, key: str
    ) -> WriteResult:
        keyed = [(i, values) for i, values in enumerate(inputs) if values.get(key)]
        wire = [{"id": values[key], "properties": dict(values)} for _i, values in keyed]
        result = (
            _written(object_type, self.client.batch_upsert(object_type, wire, id_property=key))
            if wire
            else WriteResult([])
        )
        for index, values in enumerate(inputs):
            if not values.get(key):
                refused = ValidationFailed(
                    f"{key} is required to match the record",
                    status_code=400,
                    field_errors={key: "is required"},
                )
                result.failures.append(WriteFailure(f"input-{index}", refused))
        return result

    def associations(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[str]]:
        found = self.client.read_associations(from_type, to_type, ids)
        return {
            from_id: list(dict.fromkeys(to_id for to_id, _type_id in pairs))
            for from_id, pairs in found.items()
        }

    # --- optional capabilities (crm.interface.ReadsByKey, LogsEngagements) -----------------

    def read_by_key(
        self, object_type: str, values: Sequence[str], *, key: str, properties: Sequence[str]
    ) -> dict[str, Record]:
        """One batch read keyed on the unique property (HubSpot's ``idProperty``).

        HubSpot does not say which value a record matched: its ``key`` value, or one of its
        ``hs_additional_emails`` (when asked for) names it."""
        asked = {str(v).strip().lower(): str(v) for v in values if v}
        found: dict[str, Record] = {}
        for raw in self.client.batch_read(object_type, list(values), properties=properties, id_property=key):
            record = _record(object_type, raw)
            extra = str(record.properties.get("hs_additional_emails") or "").split(";")
            for candidate in (*extra, str(record.properties.get(key) or "")):
                value = asked.get(candidate.strip().lower())
                if value is not None:
                    found[value] = record
        return found

    def find_logged(
        self,
        object_type: str,
        timestamp_ms: int,
        *,
        properties: Sequence[str],
        links: Sequence[tuple[str, str]] = (),
        since_ms: int | None = None,
    ) -> list[Record]:
        """By the exact ``hs_timestamp`` HubSpot keeps as given: ``links`` and ``since_ms`` are
        not needed to narrow it."""
        found = self.client.find_by_timestamp(object_type, timestamp_ms, properties=properties)
        return [_record(object_type, r) for r in found]

    def create_logged(
        self, object_type: str, roles: Mapping[str, str | None], links: Sequence[tuple[str, str]]
    ) -> WriteResult:
        """One create carrying its associations (HubSpot's defined type per pair), the queued
        roles under HubSpot's engagement properties (``hs_timestamp``, ``hs_note_body``...: the
        cache keeps engagements under HubSpot's names, so ``LOGGED_ROLES`` names them)."""
        associations = [
            (record_id, ENGAGEMENT_ASSOCIATION_TYPES[(object_type, record_type)])
            for record_type, record_id in links
        ]
        wire = [{"properties": cache_properties(roles), "associations": associations}]
        return _written(object_type, self.client.batch_create(object_type, wire))


def _grant(grant: TokenGrant) -> Grant:
    return Grant(
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        expires_at=grant.expires_at,
        scopes=grant.scopes,
        account_id=None if grant.hub_id is None else str(grant.hub_id),
        user_id=None if grant.user_id is None else str(grant.user_id),
    )


def _record(object_type: str, record: HubSpotRecord) -> Record:
    return Record(
        id=record.id,
        type=object_type,
        properties=dict(record.properties),
        created_at=record.created_at,
        updated_at=record.updated_at,
        archived=record.archived,
    )


def _written(object_type: str, result: BatchResult) -> WriteResult:
    return WriteResult(
        records=[_record(object_type, r) for r in result.records],
        failures=[WriteFailure(ref, error) for error in result.errors for ref in _failed_refs(error)],
        created_ids=list(result.created_ids),
    )


def _failed_refs(error: HubSpotError) -> list[str | None]:
    """The inputs a 207 error is about: its trace ids, else the ids HubSpot named (one
    NotFound can name several unknown ids: each becomes its own failure), else [None]."""
    context = error.body.get("context") if isinstance(error.body, dict) else None
    if isinstance(context, dict):
        for key in ("objectWriteTraceId", "ids", "id"):
            values = context.get(key)
            if isinstance(values, list) and values:
                return [str(v) for v in values]
    return [None]


def _property(item: Mapping[str, Any]) -> Property:
    kind = str(item.get("type") or "string")
    if kind == "enumeration" and item.get("field_type") == "checkbox":
        kind = "multi"
    elif kind not in _NEW_PROPERTY_TYPES:
        kind = "string"
    return Property(
        name=str(item["name"]),
        label=str(item.get("label") or item["name"]),
        type=kind,
        options=tuple(
            Option(
                value=str(o.get("value")),
                label=str(o.get("label") or o.get("value")),
                display_order=int(o.get("display_order") or 0),
                hidden=bool(o.get("hidden")),
            )
            for o in item.get("options") or []
        ),
        read_only=bool(item.get("read_only")),
        custom=not item.get("hubspot_defined"),
        unique=bool(item.get("has_unique_value")),
        group=item.get("group_name"),
    )


def _event(raw: Mapping[str, Any]) -> Event:
    kind = str(raw.get("subscriptionType") or "").split(".", 1)[-1]
    object_id = raw.get("objectId") or raw.get("fromObjectId") or ""
    occurred = deliveries.valid_id(raw.get("occurredAt"))
    return Event(
        account_id=str(raw.get("portalId") or ""),
        object_type=deliveries.event_object_type(raw),
        object_id=str(object_id),
        change=_CHANGES.get(kind, "other"),
        occurred_at=None if occurred is None else ms_to_iso(occurred),
        event_id=None if raw.get("eventId") is None else str(raw["eventId"]),
        raw=dict(raw),
    )
