"""The sandbox company's data: records, fields, users, pipelines, notes and activities.

Records are kept in Pipedrive's API v2 shape (docs/PIPEDRIVE_API.md §3) with times as epoch
seconds, rendered to RFC 3339 (v2) or ``YYYY-MM-DD HH:MM:SS`` (v1) on the way out. Custom
field values live in ``custom_fields`` under their 40-character hash keys (§5). Deleting
marks a record ``is_deleted``; it then answers 404 but stays in the admin truth.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import time
from typing import Any, Literal

EntityType = Literal["persons", "organizations", "deals"]
ENTITY_TYPES: tuple[EntityType, ...] = ("persons", "organizations", "deals")
SINGULAR: dict[str, str] = {"persons": "person", "organizations": "organization", "deals": "deal"}
FIELD_PATHS: dict[str, EntityType] = {"personFields": "persons", "organizationFields": "organizations",
                                      "dealFields": "deals"}  # fmt: skip
FIELD_TYPES = (
    "address", "date", "daterange", "double", "enum", "monetary", "org", "people", "phone", "set", "text",
    "time", "timerange", "user", "varchar", "varchar_auto", "visible_to",
)  # fmt: skip
DEAL_STATUSES = ("open", "won", "lost")
VISIBLE_TO = (1, 3, 5, 7)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def now_s() -> int:
    return int(time.time())


def iso(ts: int) -> str:
    """Epoch seconds as API v2 writes times: ``2024-09-27T14:25:27Z``."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def v1_time(ts: int) -> str:
    """Epoch seconds as API v1 writes times: ``2024-09-27 14:25:27`` (UTC)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_rfc3339(text: str) -> int | None:
    """Epoch seconds of an RFC 3339 date-time, or None when ``text`` is not one."""
    if not _RFC3339.match(text):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp())


def field_key(seed: int, entity: str, serial: int, name: str) -> str:
    """A 40-character hex key for a custom field, stable for a seed (Pipedrive's are random)."""
    return hashlib.sha1(f"{seed}:{entity}:{serial}:{name}".encode()).hexdigest()


# --------------------------------------------------------------------------------------- fields


@dataclasses.dataclass
class Field:
    """One person/organization/deal field, system or custom."""

    id: int
    key: str
    name: str
    field_type: str
    order_nr: int
    add_ts: int
    custom: bool = False
    options: list[dict[str, Any]] | None = None
    mandatory: bool = False

    def describe(self) -> dict[str, Any]:
        """The v1 field record (docs/PIPEDRIVE_API.md §5)."""
        return {
            "id": self.id,
            "key": self.key,
            "name": self.name,
            "order_nr": self.order_nr,
            "field_type": self.field_type,
            "add_time": v1_time(self.add_ts),
            "update_time": v1_time(self.add_ts),
            "last_updated_by_user_id": None,
            "created_by_user_id": None,
            "active_flag": True,
            "edit_flag": self.custom,
            "index_visible_flag": True,
            "details_visible_flag": True,
            "add_visible_flag": True,
            "important_flag": False,
            "bulk_edit_allowed": True,
            "searchable_flag": self.field_type in ("varchar", "text", "varchar_auto", "phone"),
            "filtering_allowed": True,
            "sortable_flag": True,
            "mandatory_flag": self.mandatory,
            "options": [dict(o) for o in self.options] if self.options is not None else None,
        }


# System fields per entity: (key, name, field_type). Options of enum system fields are filled in.
SYSTEM_FIELDS: dict[EntityType, tuple[tuple[str, str, str], ...]] = {
    "persons": (
        ("name", "Name", "varchar"), ("first_name", "First name", "varchar"), ("last_name", "Last name", "varchar"),
        ("label_ids", "Labels", "set"), ("org_id", "Organization", "org"), ("email", "Email", "varchar"),
        ("phone", "Phone", "phone"), ("job_title", "Job title", "varchar"), ("owner_id", "Owner", "user"),
        ("visible_to", "Visible to", "visible_to"), ("add_time", "Person created", "date"),
        ("update_time", "Update time", "date"),
    ),
    "organizations": (
        ("name", "Name", "varchar"), ("label_ids", "Labels", "set"), ("owner_id", "Owner", "user"),
        ("address", "Address", "address"), ("visible_to", "Visible to", "visible_to"),
        ("add_time", "Organization created", "date"), ("update_time", "Update time", "date"),
    ),
    "deals": (
        ("title", "Title", "varchar"), ("value", "Value", "monetary"), ("currency", "Currency", "varchar"),
        ("org_id", "Organization", "org"), ("person_id", "Contact person", "people"),
        ("pipeline_id", "Pipeline", "double"), ("stage_id", "Stage", "double"), ("status", "Status", "enum"),
        ("probability", "Probability", "double"), ("expected_close_date", "Expected close date", "date"),
        ("owner_id", "Owner", "user"), ("visible_to", "Visible to", "visible_to"),
        ("add_time", "Deal created", "date"), ("update_time", "Update time", "date"),
        ("won_time", "Won time", "date"), ("lost_time", "Lost time", "date"), ("lost_reason", "Lost reason", "varchar"),
    ),
}  # fmt: skip


class FieldRegistry:
    """The fields of each entity; custom ones get 40-character hash keys and option ids."""

    def __init__(self, seed: int, created_ts: int) -> None:
        self.seed = seed
        self.fields: dict[EntityType, list[Field]] = {t: [] for t in ENTITY_TYPES}
        self._next_id = 9000
        self._next_option = 100
        for entity, specs in SYSTEM_FIELDS.items():
            for key, name, field_type in specs:
                options = None
                if key == "status":
                    options = [{"id": s, "label": s.capitalize()} for s in DEAL_STATUSES]
                self._add(entity, key, name, field_type, created_ts, custom=False, options=options,
                          mandatory=key in ("name", "title"))  # fmt: skip

    def _add(self, entity: EntityType, key: str, name: str, field_type: str, ts: int, *, custom: bool,
             options: list[dict[str, Any]] | None = None, mandatory: bool = False) -> Field:  # fmt: skip
        self._next_id += 1
        field = Field(
            self._next_id, key, name, field_type, len(self.fields[entity]) + 1, ts, custom, options, mandatory
        )
        self.fields[entity].append(field)
        return field

    def create_custom(
        self, entity: EntityType, name: str, field_type: str, labels: list[str], ts: int
    ) -> Field:
        """Add a custom field; ``labels`` become options with fresh ids for enum and set."""
        serial = sum(1 for f in self.fields[entity] if f.custom) + 1
        key = field_key(self.seed, entity, serial, name)
        options = None
        if field_type in ("enum", "set"):
            options = []
            for label in labels:
                self._next_option += 1
                options.append({"id": self._next_option, "label": label})
        return self._add(entity, key, name, field_type, ts, custom=True, options=options)

    def custom(self, entity: EntityType) -> list[Field]:
        return [f for f in self.fields[entity] if f.custom]

    def by_key(self, entity: EntityType, key: str) -> Field | None:
        return next((f for f in self.fields[entity] if f.key == key), None)

    def by_id(self, entity: EntityType, field_id: int) -> Field | None:
        return next((f for f in self.fields[entity] if f.id == field_id), None)


# -------------------------------------------------------------------------------------- records


@dataclasses.dataclass
class Record:
    """A person, organization or deal: v2 attributes plus times and the deleted flag."""

    id: int
    values: dict[str, Any]
    add_ts: int
    update_ts: int
    custom: dict[str, Any] = dataclasses.field(default_factory=dict)
    is_deleted: bool = False


class RecordStore:
    """Records per entity type, in id order, with the next id of each."""

    def __init__(self) -> None:
        self.records: dict[EntityType, dict[int, Record]] = {t: {} for t in ENTITY_TYPES}
        self._next: dict[EntityType, int] = {t: 1 for t in ENTITY_TYPES}
        # Ids in creation order, which is id order: list pages bisect into it.
        self.order: dict[EntityType, list[int]] = {t: [] for t in ENTITY_TYPES}

    def add(self, entity: EntityType, values: dict[str, Any], custom: dict[str, Any], add_ts: int,
            update_ts: int | None = None) -> Record:  # fmt: skip
        record = Record(
            self._next[entity], values, add_ts, update_ts if update_ts is not None else add_ts, custom
        )
        self.records[entity][record.id] = record
        self.order[entity].append(record.id)
        self._next[entity] += 1
        return record

    def live(self, entity: EntityType, record_id: int) -> Record | None:
        record = self.records[entity].get(record_id)
        return record if record is not None and not record.is_deleted else None

    def all_live(self, entity: EntityType) -> list[Record]:
        return [r for r in self.records[entity].values() if not r.is_deleted]


def render(
    entity: EntityType, record: Record, fields: FieldRegistry, only_custom: set[str] | None = None
) -> dict[str, Any]:
    """A record as API v2 answers it; ``only_custom`` limits the custom field keys shown."""
    custom = {}
    for field in fields.custom(entity):
        if only_custom is None or field.key in only_custom:
            custom[field.key] = record.custom.get(field.key)
    body: dict[str, Any] = {"id": record.id, **record.values}
    body.update(add_time=iso(record.add_ts), update_time=iso(record.update_ts), is_deleted=record.is_deleted)
    body["custom_fields"] = custom
    return body


# ------------------------------------------------------------------------------ users, pipelines


@dataclasses.dataclass
class User:
    id: int
    name: str
    email: str
    is_admin: bool
    created_ts: int
    active: bool = True

    def describe(self, company: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "default_currency": "USD",
            "locale": "en_US",
            "lang": 1,
            "email": self.email,
            "phone": None,
            "activated": True,
            "last_login": v1_time(self.created_ts),
            "created": v1_time(self.created_ts),
            "modified": v1_time(self.created_ts),
            "has_created_company": self.is_admin,
            "access": [{"app": "sales", "admin": self.is_admin, "permission_set_id": "sandbox"}],
            "active_flag": self.active,
            "timezone_name": "Europe/Tallinn",
            "timezone_offset": "+02:00",
            "role_id": 1,
            "icon_url": None,
            "is_you": False,
            "is_deleted": False,
        }
        if company:
            body.update(company)
        return body


@dataclasses.dataclass
class Stage:
    id: int
    pipeline_id: int
    name: str
    order_nr: int
    deal_probability: int


@dataclasses.dataclass
class Pipeline:
    id: int
    name: str
    order_nr: int
    stages: list[Stage]


def describe_pipeline(pipeline: Pipeline, ts: int, *, v2: bool) -> dict[str, Any]:
    if v2:
        return {"id": pipeline.id, "name": pipeline.name, "order_nr": pipeline.order_nr, "is_deleted": False,
                "is_deal_probability_enabled": True, "add_time": iso(ts), "update_time": iso(ts),
                "is_selected": pipeline.order_nr == 1}  # fmt: skip
    return {"id": pipeline.id, "name": pipeline.name, "url_title": pipeline.name.lower().replace(" ", "-"),
            "order_nr": pipeline.order_nr, "active": True, "deal_probability": True, "add_time": v1_time(ts),
            "update_time": v1_time(ts), "selected": pipeline.order_nr == 1}  # fmt: skip


def describe_stage(stage: Stage, pipeline: Pipeline, ts: int, *, v2: bool) -> dict[str, Any]:
    if v2:
        return {"id": stage.id, "order_nr": stage.order_nr, "name": stage.name, "is_deleted": False,
                "deal_probability": stage.deal_probability, "pipeline_id": stage.pipeline_id,
                "is_deal_rot_enabled": False, "days_to_rotten": None, "add_time": iso(ts), "update_time": iso(ts)}  # fmt: skip
    return {"id": stage.id, "order_nr": stage.order_nr, "name": stage.name, "active_flag": True,
            "deal_probability": stage.deal_probability, "pipeline_id": stage.pipeline_id, "rotten_flag": False,
            "rotten_days": None, "add_time": v1_time(ts), "update_time": v1_time(ts),
            "pipeline_name": pipeline.name}  # fmt: skip


# ----------------------------------------------------------------------------- notes, activities


@dataclasses.dataclass
class Note:
    """A note (API v1). Deleted ones are kept (``is_deleted``) for ``/_sandbox/truth/notes``;
    ``content`` is HTML as Pipedrive stores it."""

    id: int
    content: str
    user_id: int
    person_id: int | None
    org_id: int | None
    deal_id: int | None
    add_ts: int
    update_ts: int
    is_deleted: bool = False
    last_update_user_id: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "user_id": self.user_id, "deal_id": self.deal_id, "person_id": self.person_id,
            "org_id": self.org_id, "lead_id": None, "content": self.content, "add_time": v1_time(self.add_ts),
            "update_time": v1_time(self.update_ts), "active_flag": not self.is_deleted, "pinned_to_deal_flag": False,
            "pinned_to_person_flag": False, "pinned_to_organization_flag": False,
            "last_update_user_id": self.last_update_user_id,
        }  # fmt: skip


@dataclasses.dataclass
class Activity:
    """An activity: API v1 shape (``describe``) and API v2 shape (``describe_v2``).

    ``due_date`` is ``YYYY-MM-DD``, ``due_time`` and ``duration`` ``HH:MM`` (UTC), empty when
    unset; ``participants`` are person ids, the first the primary one (``person_id``).
    """

    id: int
    subject: str
    type: str
    user_id: int
    done: bool
    due_date: str
    due_time: str
    person_id: int | None
    org_id: int | None
    deal_id: int | None
    note: str
    add_ts: int
    update_ts: int
    duration: str = ""
    participants: list[int] = dataclasses.field(default_factory=list)
    is_deleted: bool = False
    done_ts: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "company_id": None, "user_id": self.user_id, "done": self.done, "type": self.type,
            "subject": self.subject, "due_date": self.due_date, "due_time": self.due_time, "duration": self.duration,
            "person_id": self.person_id, "org_id": self.org_id, "deal_id": self.deal_id, "note": self.note,
            "add_time": v1_time(self.add_ts), "update_time": v1_time(self.update_ts),
            "marked_as_done_time": v1_time(self.done_ts) if self.done and self.done_ts else "",
            "active_flag": not self.is_deleted,
        }  # fmt: skip

    def describe_v2(self) -> dict[str, Any]:
        people = self.participants or ([self.person_id] if self.person_id else [])
        return {
            "id": self.id, "subject": self.subject, "type": self.type, "owner_id": self.user_id,
            "creator_user_id": self.user_id, "is_deleted": self.is_deleted, "add_time": iso(self.add_ts),
            "update_time": iso(self.update_ts), "deal_id": self.deal_id, "lead_id": None,
            "person_id": self.person_id, "org_id": self.org_id, "project_id": None,
            "due_date": self.due_date or None, "due_time": self.due_time or None,
            "duration": self.duration or None, "busy": False, "done": self.done,
            "marked_as_done_time": iso(self.done_ts) if self.done and self.done_ts else None,
            "location": None, "participants": [{"person_id": p, "primary": i == 0} for i, p in enumerate(people)],
            "attendees": None, "conference_meeting_client": None, "conference_meeting_url": None,
            "conference_meeting_id": None, "public_description": None, "priority": None, "note": self.note or None,
        }  # fmt: skip
