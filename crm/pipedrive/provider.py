"""Pipedrive as an implementation of the CRM interface (``crm.interface``), started (issue #15).

Neutral types map to Pipedrive's entities: contacts -> persons, companies -> organizations,
deals -> deals. A record's neutral properties are its API v2 attributes flattened: scalars
under their own names, the primary ``email`` and ``phone`` out of ``emails``/``phones``, and
custom fields under their 40-character hash keys (docs/PIPEDRIVE_API.md §3, §5). Writes take
the same names back. Times are RFC 3339 at whole seconds.

Pipedrive has no batch endpoints: the batch calls send one request per input (each within
the client's retry bound), and an input Pipedrive refuses fails alone.
Webhooks (v2) carry no signature: a delivery is authentic when its HTTP Basic credentials
match the ones the webhook was registered with, compared in constant time (§7).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import quote

import httpx2

from crm.config import Settings
from crm.errors import AlreadyExists, CrmError, NotConnected, NotFound, ValidationFailed, WebhookRejected
from crm.interface import (
    ChangeKind,
    Event,
    Grant,
    Identity,
    Interaction,
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
from crm.pipedrive.client import ENTITIES, SINGULAR, PipedriveClient
from crm.pipedrive.timeline import (
    INTERACTION_FEEDS,
    LOGGED_SLACK_S,
    NOTES_BACKSTEP,
    NOTES_ORDER,
    RECENT_LOGGED,
    REF_ATTRS,
    activity_interaction,
    due_moment,
    logged_note,
    logged_task,
    note_interaction,
)
from crm.pipedrive.tokens import PipedriveTokens
from crm.pipedrive.values import epoch_s, iso, rfc3339, text
from crm.store.interactions import TASK_DONE

WORDS = Words(
    crm="Pipedrive",
    account="company",
    owner="user",
    fields={"owner_id": "Owner", "stage_id": "Stage", "pipeline_id": "Pipeline", "org_id": "Organization"},
    interactions="Notes and activities",
    interactions_detail="Notes, and activities (calls, meetings, tasks, emails...)",
    # What crm.subscriptions does: ``register`` replaces the connection's webhooks (removed at
    # Pipedrive first) with new ones and new credentials; a connect only registers when none
    # are stored for PIPEDRIVE_WEBHOOK_URL.
    webhook_refusals=(
        "Many refusals usually mean Pipedrive delivers with Basic credentials this connection no "
        "longer holds, or has no webhooks registered for it: register them again with "
        "`python -m crm.subscriptions register <connection>` (PIPEDRIVE\\_WEBHOOK\\_URL set to this "
        "app's public URL of /pipedrive/webhook); it removes the connection's old webhooks at "
        "Pipedrive and registers new ones with new credentials. Connecting again registers them "
        "only when none are stored for that URL."
    ),
)
OBJECT_TYPES = (
    ObjectTypeInfo(
        "contacts",
        "People",
        "person",
        owner="owner_id",
        email="email",
        title=("name", "email"),
        phone="phone",
        columns=("name", "email", "phone", "org_id", "owner_id"),
        editable=("name", "email", "phone", "owner_id"),
        search=("name", "email", "phone"),
        search_hint="Name, email or phone",
        sorts=(("updated_at", True), ("name", False), ("email", False)),
        related=("name", "email", "phone"),
        labels=(("updated_at", "Last modified"),),
        company="org_id",
    ),
    ObjectTypeInfo(
        "companies",
        "Organizations",
        "organization",
        owner="owner_id",
        title=("name",),
        columns=("name", "address", "owner_id"),
        search=("name", "address"),
        search_hint="Name or address",
        sorts=(("name", False), ("updated_at", True)),
        related=("name", "address"),
        labels=(("updated_at", "Last modified"),),
    ),
    ObjectTypeInfo(
        "deals",
        "Deals",
        "deal",
        owner="owner_id",
        stage="stage_id",
        pipeline="pipeline_id",
        title=("title",),
        columns=(
            "title",
            "pipeline_id",
            "stage_id",
            "value",
            "currency",
            "expected_close_date",
            "owner_id",
            "org_id",
        ),
        editable=("stage_id", "value", "expected_close_date", "owner_id"),
        search=("title",),
        search_hint="Title",
        sorts=(("updated_at", True), ("value", True), ("expected_close_date", False), ("title", False)),
        related=("title", "stage_id", "value", "expected_close_date"),
        labels=(("updated_at", "Last modified"),),
        amount="value",
        currency="currency",
        close_date="expected_close_date",
        company="org_id",
        status="status",
        status_open="open",
        status_won="won",
    ),
)
# The record link each type has from another: a person's organization, a deal's person and
# organization (Pipedrive keeps one of each on the record itself).
LINKS = {
    ("contacts", "companies"): "org_id",
    ("deals", "contacts"): "person_id",
    ("deals", "companies"): "org_id",
}
_NUMBERS = {
    "owner_id",
    "org_id",
    "person_id",
    "pipeline_id",
    "stage_id",
    "value",
    "probability",
    "visible_to",
}
_SKIPPED = {"id", "add_time", "update_time", "is_deleted", "custom_fields", "emails", "phones"}
_FIELD_TYPES = {
    "varchar": "string",
    "varchar_auto": "string",
    "text": "string",
    "phone": "string",
    "double": "number",
    "monetary": "number",
    "date": "date",
    "time": "string",
    "enum": "enumeration",
    "set": "multi",
}
_NEW_FIELD_TYPES = {
    "string": "varchar",
    "number": "double",
    "date": "date",
    "enumeration": "enum",
    "multi": "set",
}
_CHANGES: dict[str, ChangeKind] = {"create": "created", "change": "updated", "delete": "deleted"}
_ENTITY_TYPES = {"person": "contacts", "organization": "companies", "deal": "deals"}
# Webhook objects of the timeline's feeds -> the feed an event names as its ``object_type``
# (``ListsInteractions.read_interactions`` reads them back).
TIMELINE_WEBHOOKS = {"note": "notes", "activity": "activities"}
# Between a window's two update times ("since/until", either empty when open).
WINDOW_SEPARATOR = "/"


class Pipedrive:
    """The Pipedrive CRM (``crm.interface.Crm``)."""

    name = "pipedrive"
    words = WORDS

    def object_types(self) -> tuple[ObjectTypeInfo, ...]:
        return OBJECT_TYPES

    def oauth(self, settings: Settings) -> OAuthDetails:
        # Pipedrive fixes an app's scopes at registration; the authorize URL takes none.
        base = settings.pipedrive_oauth_url.rstrip("/")
        return OAuthDetails(
            authorize_url=base + "/oauth/authorize",
            token_url=base + "/oauth/token",
            revoke_url=base + "/oauth/revoke",
            scopes=(),
        )

    def exchange_code(
        self,
        settings: Settings,
        code: str,
        *,
        code_verifier: str | None = None,
        transport: httpx2.BaseTransport | None = None,
    ) -> Grant:
        """Redeem a code; the grant's ``api_base`` is the company's API domain (Pipedrive has no PKCE)."""
        return PipedriveTokens(settings, transport=transport).exchange_code(code)

    def refresh(
        self, settings: Settings, refresh_token: str, *, transport: httpx2.BaseTransport | None = None
    ) -> Grant:
        return PipedriveTokens(settings, transport=transport).refresh(refresh_token)

    def revoke(
        self, settings: Settings, refresh_token: str, *, transport: httpx2.BaseTransport | None = None
    ) -> None:
        PipedriveTokens(settings, transport=transport).revoke(refresh_token)

    def consent_missing(self, settings: Settings) -> str | None:
        """The consent flow needs a Pipedrive app (PIPEDRIVE_CLIENT_ID, or the demo's sandbox
        app); without one, a personal API token still connects from the command line."""
        if settings.pipedrive_client_id:
            return None
        return (
            "Connecting Pipedrive by its consent page needs a Pipedrive app: set PIPEDRIVE_CLIENT_ID "
            "and PIPEDRIVE_CLIENT_SECRET (see the README). With a personal API token instead: "
            "`python -m crm connect pipedrive --token TOKEN --base-url https://COMPANY.pipedrive.com`."
        )

    def configured_mode(self, settings: Settings) -> str | None:
        """None: a company is connected by OAuth or by an API token, each keeping its own mode."""
        return None

    def open(
        self,
        settings: Settings,
        tokens: TokenSource,
        *,
        base_url: str | None = None,
        transport: httpx2.BaseTransport | None = None,
    ) -> PipedriveApi:
        if not base_url:
            raise NotConnected("A Pipedrive connection needs its company's API domain (base URL).")
        return PipedriveApi(
            PipedriveClient(base_url, tokens, transport=transport, timeout=settings.http_timeout)
        )

    def connect(self, settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> PipedriveApi:
        """The API over the credentials stored for the connection ``settings`` are for."""
        # Imported here: crm.pipedrive_auth sits above this module (it stores what connect reads).
        from crm import pipedrive_auth

        return pipedrive_auth.open_api(settings, transport=transport)

    def read_webhook(self, request: WebhookRequest, *, secret: str, now_ms: int | None = None) -> list[Event]:
        """Check the delivery's Basic credentials (``secret`` is ``user:password``), then parse it."""
        if not secret:
            raise WebhookRejected(
                "No webhook credentials to check the delivery with.", reason="not_configured"
            )
        given = _basic_credentials(request.headers)
        if given is None:
            raise WebhookRejected("The delivery carries no Basic credentials.", reason="missing_headers")
        if not hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8")):
            raise WebhookRejected("The delivery's credentials do not match.", reason="bad_signature")
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError):
            raise WebhookRejected("The request body is not JSON.", reason="malformed") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("meta"), dict):
            raise WebhookRejected("The request body is not a webhooks v2 event.", reason="malformed")
        return [_event(payload["meta"])]

    def webhook_account(self, body: bytes) -> str:
        """The company id a delivery claims (``meta.company_id``), unverified (pdweb).

        It picks the connection whose Basic credentials ``read_webhook`` then checks.
        """
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise WebhookRejected("The request body is not JSON.", reason="malformed") from None
        meta = payload.get("meta") if isinstance(payload, dict) else None
        company = meta.get("company_id") if isinstance(meta, dict) else None
        claimed = str(company) if isinstance(company, (int, str)) and not isinstance(company, bool) else ""
        if not claimed.isdigit() or len(claimed) > 18:
            raise WebhookRejected("The delivery names no company.", reason="malformed")
        return claimed

    def record_url(self, object_type: str, record_id: str, *, account: Identity) -> str | None:
        """``https://{company}.pipedrive.com/{person|organization|deal}/{id}``; None for anything odd."""
        host = safe_host(account.ui_host)
        entity = ENTITIES.get(object_type)
        rid = str(record_id or "")
        if host is None or entity is None or not rid.isdigit():
            return None
        return f"https://{host}/{SINGULAR[entity]}/{quote(rid)}"

    def account_url(self, account: Identity) -> str | None:
        host = safe_host(account.ui_host)
        return None if host is None else f"https://{host}/"


class PipedriveApi:
    """One connected Pipedrive company (``crm.interface.CrmApi``) over a ``PipedriveClient``."""

    def __init__(self, client: PipedriveClient) -> None:
        self.client = client
        self._types: dict[str, dict[str, str]] = {}

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def identity(self) -> Identity:
        me = self.client.me()
        domain = str(me.get("company_domain") or "")
        return Identity(
            account_id=str(me.get("company_id") or ""),
            account_name=str(me.get("company_name") or WORDS.account_label(me.get("company_id"))),
            user=me.get("email"),
            ui_host=f"{domain}.pipedrive.com" if domain else None,
            currency=str(me.get("default_currency") or "") or None,
        )

    # -- sched: crm.interface.ReportsUsage (the client's request counts and burst window) --------

    def request_stats(self) -> dict[str, int]:
        return self.client.usage.stats()

    def rate_gauges(self) -> dict[str, dict[str, float]]:
        return self.client.usage.gauges()

    # -- webhooks (pdweb): crm.interface.WebhookSubscriptions ----------------------------

    def subscribe_webhooks(self, url: str, *, user: str, password: str) -> list[str]:
        """One v2 webhook per kept entity (person, organization, deal) and per timeline feed
        (note, activity), every action; the rest (products, leads...) are not subscribed.
        Webhooks already delivering to ``url`` are removed first: they carry credentials
        this app no longer keeps (a lost registration, or another process's that lost a
        race), so every delivery of theirs would be refused. A failure part-way removes
        the webhooks already made, so none is left orphaned.
        """
        self.unsubscribe_webhooks(
            [str(h.get("id")) for h in self.client.webhooks() if h.get("subscription_url") == url]
        )
        made: list[str] = []
        try:
            for obj in (*(SINGULAR[e] for e in ENTITIES.values()), *TIMELINE_WEBHOOKS):
                hook = self.client.add_webhook(url, user=user, password=password, obj=obj)
                made.append(str(hook.get("id")))
        except CrmError:
            try:
                self.unsubscribe_webhooks(made)
            except CrmError:
                pass  # the first error says what went wrong; these are refused when they deliver
            raise
        return made

    def unsubscribe_webhooks(self, ids: Sequence[str]) -> None:
        for webhook_id in ids:
            if str(webhook_id).isdigit():
                self.client.delete_webhook(str(webhook_id))

    def properties(self, object_type: str) -> list[Property]:
        return [_property(f) for f in self.client.fields(_entity(object_type)) if f.get("active_flag", True)]

    def create_property(self, object_type: str, prop: Property) -> Property:
        """Create a custom field; Pipedrive names it with a hash key (the returned ``name``).

        Pipedrive allows two fields with one name; the dashboard does not (AlreadyExists),
        so "set up once" stays once.
        """
        entity = _entity(object_type)
        if any(str(f.get("name")) == prop.label for f in self.client.fields(entity)):
            raise AlreadyExists(
                f"Pipedrive already has a {SINGULAR[entity]} field '{prop.label}'", status_code=409
            )
        body: dict[str, Any] = {"name": prop.label, "field_type": _NEW_FIELD_TYPES.get(prop.type, "varchar")}
        if prop.options:
            body["options"] = [{"label": o.label} for o in prop.options]
        self._types.pop(entity, None)
        return _property(self.client.create_field(entity, body))

    def owners(self) -> list[Owner]:
        return [
            Owner(id=str(u["id"]), email=u.get("email"), name=str(u.get("name") or u.get("email") or u["id"]))
            for u in self.client.users()
            if u.get("active_flag", True) and not u.get("is_deleted")
        ]

    def pipelines(self, object_type: str) -> list[Pipeline]:
        if object_type != "deals":
            return []
        stages = [s for s in self.client.stages() if not s.get("is_deleted")]
        found = []
        for p in self.client.pipelines():
            if p.get("is_deleted"):
                continue
            mine = sorted(
                (s for s in stages if s.get("pipeline_id") == p["id"]), key=lambda s: s.get("order_nr") or 0
            )
            found.append(
                Pipeline(
                    id=str(p["id"]),
                    label=str(p.get("name") or p["id"]),
                    display_order=int(p.get("order_nr") or 0),
                    stages=tuple(
                        Stage(
                            id=str(s["id"]),
                            label=str(s.get("name") or s["id"]),
                            display_order=int(s.get("order_nr") or 0),
                            probability=None
                            if s.get("deal_probability") is None
                            else s["deal_probability"] / 100,
                        )
                        for s in mine
                    ),
                )
            )
        return sorted(found, key=lambda p: p.display_order)

    def list_page(
        self, object_type: str, *, properties: Sequence[str], cursor: str | None = None, limit: int = 100
    ) -> Page:
        records, following = self.client.list_page(_entity(object_type), cursor=cursor, limit=limit)
        return Page([_record(object_type, r) for r in records], following)

    def iter_modified_since(
        self, object_type: str, since_ms: int, *, properties: Sequence[str]
    ) -> Iterator[list[Record]]:
        # Pipedrive's times are whole seconds: round down so the moment itself is included.
        since = datetime.fromtimestamp(since_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for page in self.client.iter_records(
            _entity(object_type), updated_since=since, sort_by="update_time", sort_direction="asc"
        ):
            yield [_record(object_type, r) for r in page]

    def batch_read(self, object_type: str, ids: Sequence[str], *, properties: Sequence[str]) -> list[Record]:
        return [_record(object_type, r) for r in self.client.get_many(_entity(object_type), list(ids))]

    def batch_create(self, object_type: str, inputs: Sequence[Mapping[str, str | None]]) -> WriteResult:
        result = WriteResult([])
        entity = _entity(object_type)
        for index, values in enumerate(inputs):
            try:
                result.records.append(
                    _record(
                        object_type,
                        self.client.create(
                            entity, _body(entity, values, new=True, types=self._custom_types(entity, values))
                        ),
                    )
                )
            except CrmError as exc:
                result.failures.append(WriteFailure(f"input-{index}", exc))
        return result

    def batch_update(self, object_type: str, updates: Mapping[str, Mapping[str, str | None]]) -> WriteResult:
        result = WriteResult([])
        entity = _entity(object_type)
        for record_id, values in updates.items():
            try:
                if not record_id.isdigit():
                    raise NotFound(f"Pipedrive has no {SINGULAR[entity]} {record_id}", status_code=404)
                body = _body(entity, values, new=False, types=self._custom_types(entity, values))
                if "emails" in body or "phones" in body:
                    body = self._keep_other_addresses(entity, record_id, body)
                record = self.client.update(entity, record_id, body)
                result.records.append(_record(object_type, record))
            except CrmError as exc:
                result.failures.append(WriteFailure(record_id, exc))
        return result

    def _keep_other_addresses(self, entity: str, record_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """An edit of the primary email (or phone) replaces that one only: Pipedrive's update
        replaces the whole list, so the record's other addresses are read and sent along."""
        current = self.client.get_many(entity, [record_id])
        if not current:
            return body
        merged = dict(body)
        for attr in ("emails", "phones"):
            if attr in body:
                merged[attr] = _with_primary(current[0].get(attr), body[attr])
        return merged

    def batch_upsert(
        self, object_type: str, inputs: Sequence[Mapping[str, str | None]], *, key: str
    ) -> WriteResult:
        """Update the record whose ``key`` matches exactly (Pipedrive's exact search), else create it."""
        result = WriteResult([])
        entity = _entity(object_type)
        for index, values in enumerate(inputs):
            term = str(values.get(key) or "")
            try:
                if not term:
                    raise ValidationFailed(
                        f"{key} is required to match the record",
                        status_code=400,
                        field_errors={key: "is required"},
                    )
                found = self.client.search_exact(entity, term, key)
                if found:
                    record_id = str(found[0]["id"])
                    record = self.client.update(
                        entity,
                        record_id,
                        _body(entity, values, new=False, types=self._custom_types(entity, values)),
                    )
                else:
                    record = self.client.create(
                        entity, _body(entity, values, new=True, types=self._custom_types(entity, values))
                    )
                    result.created_ids.append(str(record["id"]))
                result.records.append(_record(object_type, record))
            except CrmError as exc:
                result.failures.append(WriteFailure(term or f"input-{index}", exc))
        return result

    # --- crm.interface.DeletionFeed (issue #15, pdsync) ---------------------------------------

    def deleted_since(self, object_type: str, since_ms: int) -> list[str] | None:
        """Deals deleted at or after ``since_ms``: API v2 ``status=deleted`` with ``updated_since``
        (Pipedrive keeps deleted deals listable for 30 days; docs/PIPEDRIVE_API.md §3).

        None for persons and organizations: Pipedrive lists no deleted ones (its v1 recents
        ``delete_log`` is no longer served), so their deletions come from a full pull or webhooks.
        """
        entity = _entity(object_type)
        if entity != "deals":
            return None
        since = datetime.fromtimestamp(since_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return [
            str(r["id"])
            for page in self.client.iter_records(entity, status="deleted", updated_since=since)
            for r in page
            if r.get("id") is not None and r.get("is_deleted") is not False
        ]

    def links_on_records(self, object_type: str) -> dict[str, str]:
        """LinksOnRecords: the links a record holds itself (``LINKS``: org_id, person_id)."""
        return {to_type: field for (from_type, to_type), field in LINKS.items() if from_type == object_type}

    def list_windows(self, object_type: str, parts: int) -> list[str]:
        """WindowedList: equal spans of update time, from the oldest record's to now, the
        first and last open-ended (records edited or created meanwhile land in the last).

        One request (the oldest record by update time). Equal spans are only as even as the
        company's edits are spread over time; an uneven split still covers every record.
        ``updated_until`` is in Pipedrive's API v2 clients but its behaviour is UNCERTAIN
        (docs/PIPEDRIVE_API.md §3): were it ignored, each window would read on to the newest
        record, so records would be read more than once, never missed.
        """
        entity = _entity(object_type)
        oldest, _ = self.client.list_page(entity, limit=1, sort_by="update_time", sort_direction="asc")
        start = epoch_s(oldest[0].get("update_time")) if oldest else None
        end = int(time.time()) + 1
        if parts <= 1 or start is None or end - start < parts:
            return [WINDOW_SEPARATOR]
        step = (end - start) // parts
        edges: list[int | None] = [None, *(start + step * i for i in range(1, parts)), None]
        return [_window(since, until) for since, until in zip(edges, edges[1:], strict=False)]

    def list_window_page(
        self,
        object_type: str,
        window: str,
        *,
        properties: Sequence[str],
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        since, _, until = window.partition(WINDOW_SEPARATOR)
        filters = {
            name: value for name, value in (("updated_since", since), ("updated_until", until)) if value
        }
        records, following = self.client.list_page(
            _entity(object_type), cursor=cursor, limit=limit, **filters
        )
        return Page([_record(object_type, r) for r in records], following)

    def associations(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {str(i): [] for i in ids}
        link = LINKS.get((from_type, to_type))
        if link is None:
            return found
        for raw in self.client.get_many(_entity(from_type), list(found)):
            target = raw.get(link)
            if target not in (None, ""):
                found[str(raw["id"])] = [str(target)]
        return found

    def _custom_types(self, entity: str, values: Mapping[str, object]) -> dict[str, str]:
        """Custom field key -> Pipedrive field type (writes need it), read once per entity
        and again when ``values`` name a custom field not seen yet (created since)."""
        known = self._types.get(entity)
        if known is None or any(_is_custom_key(k) and k not in known for k in values):
            self._types[entity] = {
                str(f.get("key")): str(f.get("field_type"))
                for f in self.client.fields(entity)
                if _is_custom_key(str(f.get("key")))
            }
        return self._types[entity]

    # --- crm.interface.ListsInteractions (pdtimeline) -------------------------------------

    def interaction_feeds(self) -> dict[str, tuple[str, ...]]:
        """Notes (API v1) and activities (API v2), each a feed of its own."""
        return dict(INTERACTION_FEEDS)

    def iter_interactions(self, feed: str, *, since_ms: int | None = None) -> Iterator[list[Interaction]]:
        if feed == "notes":
            yield from self._iter_notes(None if since_ms is None else since_ms // 1000)
        elif feed == "activities":
            filters = {}
            if since_ms is not None:
                filters = {
                    "updated_since": rfc3339(since_ms // 1000),
                    "sort_by": "update_time",
                    "sort_direction": "asc",
                }
            for page in self.client.iter_records("activities", **filters):
                yield [activity_interaction(r) for r in page if not r.get("is_deleted")]
        else:
            raise NotFound(f"Pipedrive has no {feed} feed", status_code=404)

    def read_interactions(self, feed: str, ids: Sequence[str]) -> list[Interaction]:
        """Notes one request each (v1 has no ids filter); activities 100 ids a request (v2)."""
        numeric = [i for i in dict.fromkeys(str(i) for i in ids) if i.isdigit()]
        if feed == "notes":
            found = [self.client.note(i) for i in numeric]
            return [note_interaction(n) for n in found if n and n.get("active_flag") is not False]
        if feed == "activities":
            return [
                activity_interaction(r)
                for r in self.client.get_many("activities", numeric)
                if not r.get("is_deleted")
            ]
        raise NotFound(f"Pipedrive has no {feed} feed", status_code=404)

    # --- crm.interface.LogsEngagements: "Log a note" / "Create a task" (pdtimeline) ------------

    def find_logged(
        self,
        object_type: str,
        timestamp_ms: int,
        *,
        properties: Sequence[str],
        links: Sequence[tuple[str, str]] = (),
        since_ms: int | None = None,
    ) -> list[Record]:
        """The notes or task activities an earlier attempt may have made: among those of the
        linked record (one of ``links``: a busy company's other notes cannot push it out of
        sight), newest added first, paged until older than a few minutes (``LOGGED_SLACK_S``)
        before it was queued (``since_ms``; a note's own time otherwise): a note added since
        then (Pipedrive sets its own time), a task due at that minute. The push matches the text.
        Without links, the whole company's; without a queue time, tasks among the newest
        ``RECENT_LOGGED`` added."""
        scope = _logged_scope(links)
        queued_ms = since_ms if since_ms is not None else timestamp_ms if object_type == "notes" else None
        floor = None if queued_ms is None else queued_ms // 1000 - LOGGED_SLACK_S
        if object_type == "notes":
            return [
                logged_note(n)
                for n in self._newest_added(self._notes_newest_first(scope), floor)
                if (epoch_s(iso(n.get("add_time"))) or 0) >= (floor or 0)
            ]
        if object_type == "tasks":
            due = rfc3339(timestamp_ms // 60_000 * 60)
            pages = self.client.iter_records("activities", sort_by="add_time", sort_direction="desc", **scope)
            return [
                logged_task(a)
                for a in self._newest_added(pages, floor)
                if due_moment(a) == due and not a.get("is_deleted")
            ]
        raise NotFound(f"Pipedrive has no {object_type}", status_code=404)

    def _notes_newest_first(self, scope: Mapping[str, str]) -> Iterator[list[dict[str, Any]]]:
        start: int | None = 0
        while start is not None:
            page, start = self.client.notes_page({"sort": "add_time DESC", **scope}, start=start)
            yield page

    @staticmethod
    def _newest_added(pages: Iterator[list[dict[str, Any]]], floor: int | None) -> Iterator[dict[str, Any]]:
        """Items of newest-added-first ``pages`` until one added before ``floor`` (epoch s);
        without a floor, the first ``RECENT_LOGGED``."""
        seen = 0
        for page in pages:
            for item in page:
                if floor is None and seen >= RECENT_LOGGED:
                    return
                added = epoch_s(iso(item.get("add_time")))
                if floor is not None and added is not None and added < floor:
                    return
                seen += 1
                yield item

    def create_logged(
        self, object_type: str, roles: Mapping[str, str | None], links: Sequence[tuple[str, str]]
    ) -> WriteResult:
        """A note (``POST /api/v1/notes``) or a task activity (``POST /api/v1/activities``, due
        at the queued time in UTC) on the linked person, organization and deal (one of each).
        ``roles`` are the queued parts (``LOGGED_ROLES``' keys) under Pipedrive's names."""
        refs = _logged_refs(links)
        owner = roles.get("owner")
        if owner and str(owner).isdigit():
            refs["user_id"] = int(owner)
        try:
            if object_type == "notes":
                body = {"content": roles.get("note_body") or "", **refs}
                return WriteResult([logged_note(self.client.add_note(body))])
            if object_type == "tasks":
                when = datetime.fromtimestamp(int(roles.get("time") or 0) // 1000, tz=UTC)
                body = {
                    "subject": roles.get("task_subject") or "",
                    "type": "task",
                    "due_date": when.strftime("%Y-%m-%d"),
                    "due_time": when.strftime("%H:%M"),
                    "note": roles.get("task_body") or "",
                    "done": roles.get("task_status") == TASK_DONE,
                    **refs,
                }
                return WriteResult([logged_task(self.client.add_activity(body))])
        except CrmError as exc:
            if isinstance(exc, ValidationFailed):
                return WriteResult([], failures=[WriteFailure("input-0", exc)])
            raise
        raise NotFound(f"Pipedrive has no {object_type}", status_code=404)

    def _iter_notes(self, since_s: int | None) -> Iterator[list[Interaction]]:
        """Notes by update time, a page at a time, each page asked from the last one's time.

        v1 notes page by offset, and an offset walk skips a note when one before it is
        deleted meanwhile, which a full pull would then flag as deleted too. So the walk is
        keyed: the next page starts at the last update time read (``updated_since`` is
        inclusive; notes already read at that second are left out), and pages on by offset
        only while a whole page shares that one second. An edited note moves on, so it is
        read again, never missed.
        """
        start = 0
        seen: set[str] = set()
        while True:
            filters = {"sort": NOTES_ORDER}
            if since_s is not None:
                filters["updated_since"] = rfc3339(since_s)
            page, following = self.client.notes_page(filters, start=start)
            fresh = [n for n in page if str(n.get("id")) not in seen]
            seen.update(str(n.get("id")) for n in page)
            yield [note_interaction(n) for n in fresh if n.get("active_flag") is not False]
            if following is None or not page:
                return
            last = epoch_s(iso(page[-1].get("update_time") or page[-1].get("add_time")))
            if last is None or (since_s is not None and last <= since_s):
                # Offsets within one second: a note deleted or edited before ``following``
                # meanwhile shifts the rest back, so step back and let ``seen`` drop repeats.
                start = max(start + 1, following - NOTES_BACKSTEP)
            else:
                since_s, start = last, 0
                seen = {
                    str(n.get("id"))
                    for n in page
                    if epoch_s(iso(n.get("update_time") or n.get("add_time"))) == last
                }

    # --- optional capability (crm.interface.ReadsByKey) ----------------------------------

    def read_by_key(
        self, object_type: str, values: Sequence[str], *, key: str, properties: Sequence[str]
    ) -> dict[str, Record]:
        """An exact search per value (Pipedrive has no keyed batch read), then the full records.

        The search matches any of a person's emails, so a match is reported under the value
        searched for even when it is not the record's primary one."""
        entity = _entity(object_type)
        matched: dict[str, str] = {}
        for value in dict.fromkeys(v for v in values if v):
            for item in self.client.search_exact(entity, value, key):
                if item.get("id"):
                    matched[value] = str(item["id"])
                    break
        records = {
            r.id: r
            for r in (
                _record(object_type, raw) for raw in self.client.get_many(entity, list(matched.values()))
            )
        }
        return {value: records[rid] for value, rid in matched.items() if rid in records}


def _window(since: int | None, until: int | None) -> str:
    """A window of update times, ``since`` inclusive, ``until`` exclusive (epoch seconds;
    None: open), as Pipedrive's ``updated_since``/``updated_until`` take them."""
    return WINDOW_SEPARATOR.join("" if t is None else rfc3339(t) for t in (since, until))


def _entity(object_type: str) -> str:
    try:
        return ENTITIES[object_type]
    except KeyError:
        raise NotFound(f"Pipedrive has no {object_type}", status_code=404) from None


def _primary(items: Any) -> str | None:
    if not isinstance(items, list) or not items:
        return None
    best = next((i for i in items if isinstance(i, dict) and i.get("primary")), items[0])
    value = best.get("value") if isinstance(best, dict) else best
    return None if value in (None, "") else str(value)


def _record(object_type: str, raw: Mapping[str, Any]) -> Record:
    properties: dict[str, str | None] = {
        key: text(value)
        for key, value in raw.items()
        if key not in _SKIPPED and not isinstance(value, (dict, list))
    }
    if "emails" in raw:
        properties["email"] = _primary(raw.get("emails"))
    if "phones" in raw:
        properties["phone"] = _primary(raw.get("phones"))
    for key, value in (raw.get("custom_fields") or {}).items():
        properties[str(key)] = text(value)
    return Record(
        id=str(raw.get("id")),
        type=object_type,
        properties=properties,
        created_at=raw.get("add_time"),
        updated_at=raw.get("update_time"),
        archived=bool(raw.get("is_deleted")),
    )


def _is_custom_key(name: str) -> bool:
    return len(name) == 40 and all(c in "0123456789abcdef" for c in name)


def _body(
    entity: str, values: Mapping[str, str | None], *, new: bool, types: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Neutral values as an API v2 body (Pipedrive requires a person's ``name`` on create).

    ``types``: custom field key -> Pipedrive field type, so values go out as Pipedrive takes
    them (an option id as a number, a set as a list of them, a double as a number).
    """
    body: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for name, value in values.items():
        if name == "email":
            body["emails"] = [{"value": value, "primary": True, "label": "work"}] if value else []
        elif name == "phone":
            body["phones"] = [{"value": value, "primary": True, "label": "work"}] if value else []
        elif _is_custom_key(name):
            custom[name] = _custom_value((types or {}).get(name), value)
        elif name in _NUMBERS and value not in (None, ""):
            number = float(str(value))
            body[name] = int(number) if number.is_integer() else number
        else:
            body[name] = value
    if custom:
        body["custom_fields"] = custom
    if new and entity == "persons" and not body.get("name"):
        parts = [str(values.get(k) or "") for k in ("first_name", "last_name")]
        body["name"] = " ".join(p for p in parts if p) or str(values.get("email") or "")
    return body


def _with_primary(current: Any, replacement: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``current`` addresses with the primary one replaced by ``replacement`` ([] drops it;
    the next one becomes primary); the primary keeps its label."""
    items = [dict(i) for i in current or [] if isinstance(i, dict)]
    old = next((i for i in items if i.get("primary")), None)
    others = [{**i, "primary": False} for i in items if i is not old]
    if not replacement:
        if others:
            others[0]["primary"] = True
        return others
    value = str(replacement[0]["value"])
    label = (old or {}).get("label") or replacement[0].get("label") or "work"
    rest = [i for i in others if str(i.get("value") or "").lower() != value.lower()]
    return [{"value": value, "primary": True, "label": label}, *rest]


def _custom_value(field_type: str | None, value: str | None) -> Any:
    """A custom field's neutral string as Pipedrive's API takes it for its type."""
    if value in (None, ""):
        return None
    given = str(value)
    try:
        if field_type == "enum":
            return int(given)
        if field_type == "set":
            return [int(part) for part in re.split(r"[;,]", given) if part.strip()]
        if field_type in ("double", "monetary"):
            number = float(given)
            return int(number) if number.is_integer() else number
    except ValueError:
        return given  # Pipedrive refuses it with its own message
    return given


def _property(field: Mapping[str, Any]) -> Property:
    key = str(field.get("key") or field.get("id"))
    return Property(
        name=key,
        label=str(field.get("name") or key),
        type=_FIELD_TYPES.get(str(field.get("field_type")), "string"),
        options=tuple(
            Option(value=str(o.get("id")), label=str(o.get("label") or o.get("id")), display_order=index)
            for index, o in enumerate(field.get("options") or [])
            if isinstance(o, dict)
        ),
        read_only=False,
        custom=bool(field.get("edit_flag")) or _is_custom_key(key),
        unique=False,
        group=None,
    )


def _basic_credentials(headers: Mapping[str, str]) -> str | None:
    """``user:password`` from an ``Authorization: Basic`` header, or None."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _event(meta: Mapping[str, Any]) -> Event:
    occurred = meta.get("timestamp")
    when: str | None = None
    if isinstance(occurred, (int, float)) or (isinstance(occurred, str) and occurred.isdigit()):
        when = datetime.fromtimestamp(int(occurred), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(occurred, str):
        when = occurred
    return Event(
        account_id=str(meta.get("company_id") or ""),
        object_type=_ENTITY_TYPES.get(str(meta.get("entity") or ""))
        or TIMELINE_WEBHOOKS.get(str(meta.get("entity") or "")),
        object_id=str(meta.get("entity_id") or ""),
        change=_CHANGES.get(str(meta.get("action") or ""), "other"),
        occurred_at=when,
        event_id=None if meta.get("id") is None else str(meta["id"]),
        raw=dict(meta),
    )


def _logged_refs(links: Sequence[tuple[str, str]]) -> dict[str, int]:
    """The first linked person, organization and deal of ``links`` under Pipedrive's names."""
    refs: dict[str, int] = {}
    for record_type, record_id in links:
        attr = REF_ATTRS.get(record_type)
        if attr and attr not in refs and str(record_id).isdigit():
            refs[attr] = int(record_id)
    return refs


def _logged_scope(links: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The one list filter a logged note or task is looked for under: its deal, else its
    person, else its organization (the fewest items first; v1 notes and v2 activities take
    each, docs/PIPEDRIVE_API.md §9); {} without links."""
    refs = _logged_refs(links)
    for attr in ("deal_id", "person_id", "org_id"):
        if attr in refs:
            return {attr: str(refs[attr])}
    return {}
