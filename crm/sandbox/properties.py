"""Property definitions and groups per object type, and the Properties API routes.

``GET/POST /crm/v3/properties/{objectType}``, ``GET/PATCH/DELETE …/{propertyName}``,
``POST …/batch/{read,create,archive}``, ``GET/POST …/groups``, ``GET/PATCH/DELETE …/groups/{name}``,
plus the date-versioned twins ``/crm/properties/{version}/…``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox import messages as msg
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.objects.types import ENGAGEMENT_TYPES, READ_SCOPES, WRITE_SCOPES, iso, now_ms, resolve_type
from crm.sandbox.wire import authorize, read_json, sandbox_state, versioned

# type -> allowed fieldTypes (HUBSPOT_API.md §3).
FIELD_TYPES: dict[str, tuple[str, ...]] = {
    "bool": ("booleancheckbox", "calculation_equation"),
    "enumeration": ("booleancheckbox", "checkbox", "radio", "select", "calculation_equation"),
    "date": ("date",),
    "datetime": ("date",),
    "string": ("text", "textarea", "html", "phonenumber", "file", "calculation_equation"),
    "number": ("number", "calculation_equation"),
    "phone_number": ("phonenumber", "text"),
}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
DEFINED_AT = 1_546_300_800_000  # 2019-01-01: HubSpot-defined properties predate every portal.

DEFAULT_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "contacts": (("contactinformation", "Contact information"), ("sales_properties", "Sales properties")),
    "companies": (("companyinformation", "Company information"), ("sales_properties", "Sales properties")),
    "deals": (("dealinformation", "Deal information"), ("sales_properties", "Sales properties")),
    "tickets": (("ticketinformation", "Ticket information"),),
    "notes": (("noteinformation", "Note information"),),
    "calls": (("callinformation", "Call information"),),
    "emails": (("emailinformation", "Email information"),),
    "meetings": (("meetinginformation", "Meeting information"),),
    "tasks": (("taskinformation", "Task information"),),
}


def _options(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {"label": label, "value": value, "displayOrder": i, "hidden": False, "description": ""}
        for i, (value, label) in enumerate(pairs)
    ]


LIFECYCLE_STAGES = _options(
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
)
LEAD_STATUSES = _options(
    ("NEW", "New"),
    ("OPEN", "Open"),
    ("IN_PROGRESS", "In Progress"),
    ("OPEN_DEAL", "Open Deal"),
    ("UNQUALIFIED", "Unqualified"),
    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
    ("CONNECTED", "Connected"),
    ("BAD_TIMING", "Bad Timing"),
)
INDUSTRIES = _options(
    ("COMPUTER_SOFTWARE", "Computer Software"),
    ("INFORMATION_TECHNOLOGY_AND_SERVICES", "Information Technology and Services"),
    ("FINANCIAL_SERVICES", "Financial Services"),
    ("HOSPITAL_HEALTH_CARE", "Hospital & Health Care"),
    ("RETAIL", "Retail"),
    ("MARKETING_AND_ADVERTISING", "Marketing and Advertising"),
    ("CONSTRUCTION", "Construction"),
    ("EDUCATION_MANAGEMENT", "Education Management"),
    ("LOGISTICS_AND_SUPPLY_CHAIN", "Logistics and Supply Chain"),
    ("MANAGEMENT_CONSULTING", "Management Consulting"),
    ("REAL_ESTATE", "Real Estate"),
    ("TELECOMMUNICATIONS", "Telecommunications"),
)
COMPANY_TYPES = _options(
    ("PROSPECT", "Prospect"),
    ("PARTNER", "Partner"),
    ("RESELLER", "Reseller"),
    ("VENDOR", "Vendor"),
    ("OTHER", "Other"),
)
DEAL_TYPES = _options(("newbusiness", "New Business"), ("existingbusiness", "Existing Business"))
PRIORITIES = _options(("low", "Low"), ("medium", "Medium"), ("high", "High"))

# (name, label, type, fieldType, extra). The first group of the type is the default.
_TEXT = ("string", "text")
_COMMON_TAIL: tuple[tuple[str, str, str, str, dict[str, Any]], ...] = (
    (
        "hubspot_owner_id",
        "Contact owner",
        "enumeration",
        "select",
        {"externalOptions": True, "referencedObjectType": "OWNER", "groupName": "sales_properties"},
    ),
    ("createdate", "Create Date", "datetime", "date", {"readOnlyValue": True}),
    # Ids merged into this record, ";"-separated (crm/sandbox/merges.py).
    ("hs_merged_object_ids", "Merged record IDs", "enumeration", "checkbox", {"readOnlyValue": True}),
)
DEFAULT_PROPERTIES: dict[str, tuple[tuple[str, str, str, str, dict[str, Any]], ...]] = {
    "contacts": (
        ("email", "Email", *_TEXT, {}),
        ("firstname", "First Name", *_TEXT, {}),
        ("lastname", "Last Name", *_TEXT, {}),
        ("phone", "Phone Number", "string", "phonenumber", {}),
        ("mobilephone", "Mobile Phone Number", "string", "phonenumber", {}),
        ("company", "Company Name", *_TEXT, {}),
        ("jobtitle", "Job Title", *_TEXT, {}),
        ("website", "Website URL", *_TEXT, {}),
        ("address", "Street Address", *_TEXT, {}),
        ("city", "City", *_TEXT, {}),
        ("state", "State/Region", *_TEXT, {}),
        ("zip", "Postal Code", *_TEXT, {}),
        ("country", "Country/Region", *_TEXT, {}),
        ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", {"options": LIFECYCLE_STAGES}),
        (
            "hs_lead_status",
            "Lead Status",
            "enumeration",
            "radio",
            {"options": LEAD_STATUSES, "groupName": "sales_properties"},
        ),
        *_COMMON_TAIL,
        ("lastmodifieddate", "Last Modified Date", "datetime", "date", {"readOnlyValue": True}),
        ("hs_object_id", "Record ID", "number", "number", {"readOnlyValue": True}),
    ),
    "companies": (
        ("name", "Company name", *_TEXT, {}),
        ("domain", "Company Domain Name", *_TEXT, {}),
        ("website", "Website URL", *_TEXT, {}),
        ("phone", "Phone Number", "string", "phonenumber", {}),
        ("address", "Street Address", *_TEXT, {}),
        ("city", "City", *_TEXT, {}),
        ("state", "State/Region", *_TEXT, {}),
        ("zip", "Postal Code", *_TEXT, {}),
        ("country", "Country/Region", *_TEXT, {}),
        ("industry", "Industry", "enumeration", "select", {"options": INDUSTRIES}),
        ("type", "Type", "enumeration", "select", {"options": COMPANY_TYPES}),
        ("numberofemployees", "Number of Employees", "number", "number", {}),
        ("annualrevenue", "Annual Revenue", "number", "number", {"showCurrencySymbol": True}),
        ("description", "Description", "string", "textarea", {}),
        ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", {"options": LIFECYCLE_STAGES}),
        *_COMMON_TAIL,
        ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", {"readOnlyValue": True}),
        ("hs_object_id", "Record ID", "number", "number", {"readOnlyValue": True}),
    ),
    "deals": (
        ("dealname", "Deal Name", *_TEXT, {}),
        ("amount", "Amount", "number", "number", {"showCurrencySymbol": True}),
        ("closedate", "Close Date", "datetime", "date", {}),
        ("pipeline", "Pipeline", "enumeration", "select", {"externalOptions": True}),
        ("dealstage", "Deal Stage", "enumeration", "radio", {"externalOptions": True}),
        ("dealtype", "Deal Type", "enumeration", "radio", {"options": DEAL_TYPES}),
        ("description", "Deal Description", "string", "textarea", {}),
        ("hs_priority", "Priority", "enumeration", "select", {"options": PRIORITIES}),
        *_COMMON_TAIL,
        ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", {"readOnlyValue": True}),
        ("hs_object_id", "Record ID", "number", "number", {"readOnlyValue": True}),
        (
            "hs_is_closed",
            "Is Deal Closed?",
            "bool",
            "booleancheckbox",
            {
                "readOnlyValue": True,
                "calculated": True,
                "options": _options(("true", "True"), ("false", "False")),
            },
        ),
        (
            "hs_is_closed_won",
            "Is Closed Won",
            "bool",
            "booleancheckbox",
            {
                "readOnlyValue": True,
                "calculated": True,
                "options": _options(("true", "True"), ("false", "False")),
            },
        ),
        (
            "hs_is_closed_lost",
            "Is Closed Lost",
            "bool",
            "booleancheckbox",
            {
                "readOnlyValue": True,
                "calculated": True,
                "options": _options(("true", "True"), ("false", "False")),
            },
        ),
    ),
}
_READ_ONLY_DATE = ("datetime", "date", {"readOnlyValue": True})
_OWNER: tuple[str, str, str, str, dict[str, Any]] = (
    "hubspot_owner_id",
    "Owner",
    "enumeration",
    "select",
    {"externalOptions": True, "referencedObjectType": "OWNER"},
)
# Tickets and engagements (docs/INTERACTIONS_API.md §2). Option lists marked UNCERTAIN there
# are the sandbox's best reading; portals can configure their own.
TICKET_PRIORITIES = _options(("LOW", "Low"), ("MEDIUM", "Medium"), ("HIGH", "High"), ("URGENT", "Urgent"))
TICKET_CATEGORIES = _options(
    ("PRODUCT_ISSUE", "Product issue"),
    ("BILLING_ISSUE", "Billing issue"),
    ("FEATURE_REQUEST", "Feature request"),
    ("GENERAL_INQUIRY", "General inquiry"),
)
CALL_DIRECTIONS = _options(("INBOUND", "Inbound"), ("OUTBOUND", "Outbound"))
CALL_STATUSES = _options(
    *(
        (v, v.replace("_", " ").title())
        for v in (
            "BUSY",
            "CALLING_CRM_USER",
            "CANCELED",
            "COMPLETED",
            "CONNECTING",
            "FAILED",
            "IN_PROGRESS",
            "NO_ANSWER",
            "QUEUED",
            "RINGING",
        )
    )
)
# HubSpot's default call outcomes are GUIDs (calls guide); these are the sandbox's own.
CALL_DISPOSITIONS = _options(
    ("f240bbac-87c9-4f6e-bf70-924b57d47db7", "Connected"),
    ("73a0d17f-1163-4015-bdd5-ec830791da20", "No answer"),
    ("b2cf5968-551e-4856-9783-52b3da59a7d0", "Left voicemail"),
    ("9d9162e7-6cf3-4944-bf63-4dff82258764", "Busy"),
    ("a4c4c377-d246-4b32-a13b-75a56a4cd0ff", "Left live message"),
    ("17b47fee-58de-441e-a44c-c6300d46f273", "Wrong number"),
)
EMAIL_DIRECTIONS = _options(
    ("EMAIL", "Sent"), ("INCOMING_EMAIL", "Received"), ("FORWARDED_EMAIL", "Forwarded")
)
EMAIL_STATUSES = _options(
    ("BOUNCED", "Bounced"),
    ("FAILED", "Failed"),
    ("SCHEDULED", "Scheduled"),
    ("SENDING", "Sending"),
    ("SENT", "Sent"),
)
MEETING_OUTCOMES = _options(
    ("SCHEDULED", "Scheduled"),
    ("COMPLETED", "Completed"),
    ("RESCHEDULED", "Rescheduled"),
    ("NO_SHOW", "No show"),
    ("CANCELED", "Canceled"),
)
TASK_STATUSES = _options(
    ("NOT_STARTED", "Not started"),
    ("IN_PROGRESS", "In progress"),
    ("WAITING", "Waiting"),
    ("COMPLETED", "Completed"),
    ("DEFERRED", "Deferred"),
)
TASK_PRIORITIES = _options(("NONE", "None"), ("LOW", "Low"), ("MEDIUM", "Medium"), ("HIGH", "High"))
TASK_TYPES = _options(("EMAIL", "Email"), ("CALL", "Call"), ("TODO", "To-do"), ("LINKED_IN", "LinkedIn"))
_ENGAGEMENT_HEAD: tuple[tuple[str, str, str, str, dict[str, Any]], ...] = (
    ("hs_timestamp", "Activity date", "datetime", "date", {}),
    _OWNER,
    ("hs_attachment_ids", "Attachment IDs", *_TEXT, {}),
)
_ENGAGEMENT_TAIL: tuple[tuple[str, str, str, str, dict[str, Any]], ...] = (
    ("hs_createdate", "Create date", *_READ_ONLY_DATE),
    ("hs_lastmodifieddate", "Last modified date", *_READ_ONLY_DATE),
    ("hs_object_id", "Record ID", "number", "number", {"readOnlyValue": True}),
)
DEFAULT_PROPERTIES.update(
    {
        "tickets": (
            ("subject", "Ticket name", *_TEXT, {}),
            ("content", "Ticket description", "string", "textarea", {}),
            ("hs_pipeline", "Pipeline", "enumeration", "select", {"externalOptions": True}),
            ("hs_pipeline_stage", "Ticket status", "enumeration", "select", {"externalOptions": True}),
            ("hs_ticket_priority", "Priority", "enumeration", "select", {"options": TICKET_PRIORITIES}),
            ("hs_ticket_category", "Category", "enumeration", "checkbox", {"options": TICKET_CATEGORIES}),
            (
                "source_type",
                "Source",
                "enumeration",
                "select",
                {
                    "options": _options(
                        ("CHAT", "Chat"), ("EMAIL", "Email"), ("FORM", "Form"), ("PHONE", "Phone")
                    )
                },
            ),
            _OWNER,
            ("createdate", "Create date", *_READ_ONLY_DATE),
            ("closed_date", "Close date", "datetime", "date", {}),
            ("hs_lastmodifieddate", "Last modified date", *_READ_ONLY_DATE),
            ("hs_object_id", "Ticket ID", "number", "number", {"readOnlyValue": True}),
        ),
        "notes": (*_ENGAGEMENT_HEAD, ("hs_note_body", "Note body", "string", "html", {}), *_ENGAGEMENT_TAIL),
        "calls": (
            *_ENGAGEMENT_HEAD,
            ("hs_call_title", "Call title", *_TEXT, {}),
            ("hs_call_body", "Call notes", "string", "html", {}),
            ("hs_call_direction", "Call direction", "enumeration", "select", {"options": CALL_DIRECTIONS}),
            ("hs_call_duration", "Call duration", "number", "number", {}),
            ("hs_call_status", "Call status", "enumeration", "select", {"options": CALL_STATUSES}),
            ("hs_call_disposition", "Call outcome", "enumeration", "select", {"options": CALL_DISPOSITIONS}),
            ("hs_call_from_number", "From number", *_TEXT, {}),
            ("hs_call_to_number", "To number", *_TEXT, {}),
            ("hs_call_recording_url", "Recording URL", *_TEXT, {}),
            # Not documented (docs/INTERACTIONS_API.md §2, transcripts): the id the transcripts API reads.
            ("hs_call_transcription_id", "Transcription ID", *_TEXT, {"readOnlyValue": True}),
            *_ENGAGEMENT_TAIL,
        ),
        "emails": (
            *_ENGAGEMENT_HEAD,
            ("hs_email_direction", "Email direction", "enumeration", "select", {"options": EMAIL_DIRECTIONS}),
            ("hs_email_status", "Email send status", "enumeration", "select", {"options": EMAIL_STATUSES}),
            ("hs_email_subject", "Email subject", *_TEXT, {}),
            ("hs_email_text", "Email text", "string", "textarea", {}),
            ("hs_email_html", "Email HTML", "string", "html", {}),
            ("hs_email_headers", "Email headers", "string", "textarea", {}),
            *_ENGAGEMENT_TAIL,
        ),
        "meetings": (
            *_ENGAGEMENT_HEAD,
            ("hs_meeting_title", "Meeting name", *_TEXT, {}),
            ("hs_meeting_body", "Meeting description", "string", "html", {}),
            ("hs_internal_meeting_notes", "Internal meeting notes", "string", "html", {}),
            ("hs_meeting_location", "Location", *_TEXT, {}),
            ("hs_meeting_external_url", "External URL", *_TEXT, {}),
            ("hs_meeting_start_time", "Start time", "datetime", "date", {}),
            ("hs_meeting_end_time", "End time", "datetime", "date", {}),
            ("hs_meeting_outcome", "Meeting outcome", "enumeration", "select", {"options": MEETING_OUTCOMES}),
            *_ENGAGEMENT_TAIL,
        ),
        "tasks": (
            *_ENGAGEMENT_HEAD,
            ("hs_task_subject", "Task title", *_TEXT, {}),
            ("hs_task_body", "Task notes", "string", "html", {}),
            ("hs_task_status", "Task status", "enumeration", "select", {"options": TASK_STATUSES}),
            ("hs_task_priority", "Priority", "enumeration", "select", {"options": TASK_PRIORITIES}),
            ("hs_task_type", "Task type", "enumeration", "select", {"options": TASK_TYPES}),
            ("hs_task_reminders", "Reminder", "string", "text", {}),
            *_ENGAGEMENT_TAIL,
        ),
    }
)
# Owner labels differ per type; the tuple above is shared.
OWNER_LABELS = {
    "contacts": "Contact owner",
    "companies": "Company owner",
    "deals": "Deal owner",
    "tickets": "Ticket owner",
    **{t: "Activity assigned to" for t in ENGAGEMENT_TYPES},
}


@dataclasses.dataclass
class PropertyDef:
    """One property definition, in HubSpot's wire vocabulary."""

    name: str
    label: str
    type: str
    fieldType: str
    groupName: str
    description: str = ""
    options: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    displayOrder: int = -1
    hasUniqueValue: bool = False
    hidden: bool = False
    formField: bool = True
    calculated: bool = False
    externalOptions: bool = False
    hubspotDefined: bool = True
    readOnlyValue: bool = False
    readOnlyDefinition: bool = True
    referencedObjectType: str | None = None
    showCurrencySymbol: bool | None = None
    archived: bool = False
    createdAt: int = DEFINED_AT
    updatedAt: int = DEFINED_AT
    archivedAt: int | None = None

    def option_values(self) -> set[str]:
        return {str(o["value"]) for o in self.options}

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.fieldType,
            "description": self.description,
            "groupName": self.groupName,
            "options": [dict(o) for o in self.options],
            "displayOrder": self.displayOrder,
            "calculated": self.calculated,
            "externalOptions": self.externalOptions,
            "hasUniqueValue": self.hasUniqueValue,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspotDefined,
            "formField": self.formField,
            "archived": self.archived,
            "createdAt": iso(self.createdAt),
            "updatedAt": iso(self.updatedAt),
            "modificationMetadata": {
                "archivable": not self.hubspotDefined,
                "readOnlyDefinition": self.readOnlyDefinition,
                "readOnlyValue": self.readOnlyValue,
            },
        }
        if self.referencedObjectType:
            body["referencedObjectType"] = self.referencedObjectType
        if self.showCurrencySymbol is not None:
            body["showCurrencySymbol"] = self.showCurrencySymbol
        if self.archivedAt is not None:
            body["archivedAt"] = iso(self.archivedAt)
        return body


@dataclasses.dataclass
class GroupDef:
    name: str
    label: str
    displayOrder: int
    archived: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "displayOrder": self.displayOrder,
            "archived": self.archived,
        }


class PropertyRegistry:
    """Every object type's property definitions and groups; reset restores HubSpot's defaults."""

    def __init__(self) -> None:
        self.properties: dict[str, dict[str, PropertyDef]] = {}
        self.groups: dict[str, dict[str, GroupDef]] = {}
        self.generation = 0
        self.reset()

    def reset(self) -> None:
        self.generation += 1
        self.properties = {}
        self.groups = {}
        for object_type, rows in DEFAULT_PROPERTIES.items():
            groups = DEFAULT_GROUPS[object_type]
            self.groups[object_type] = {
                name: GroupDef(name, label, i) for i, (name, label) in enumerate(groups)
            }
            defs: dict[str, PropertyDef] = {}
            for order, (name, label, ptype, field_type, extra) in enumerate(rows):
                extra = dict(extra)
                group = extra.pop("groupName", groups[0][0])
                if name == "hubspot_owner_id":
                    label = OWNER_LABELS[object_type]
                defs[name] = PropertyDef(name, label, ptype, field_type, group, displayOrder=order, **extra)
            self.properties[object_type] = defs

    def get(self, object_type: str, name: str) -> PropertyDef | None:
        """A live (not archived) definition, or None."""
        found = self.properties[object_type].get(name)
        return found if found is not None and not found.archived else None

    def live(self, object_type: str) -> list[PropertyDef]:
        return [p for p in self.properties[object_type].values() if not p.archived]

    def unique_names(self, object_type: str) -> list[str]:
        return [p.name for p in self.properties[object_type].values() if p.hasUniqueValue and not p.archived]

    def create(self, object_type: str, body: dict[str, Any]) -> PropertyDef:
        """Validate and add a custom property. Raises SandboxHTTPError (400, 409)."""
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise _bad(msg.PROPERTY_REQUIRED_FIELDS.format(names=", ".join(missing)))
        name, ptype, field_type = str(body["name"]), str(body["type"]), str(body["fieldType"])
        if not NAME_PATTERN.match(name):
            raise _bad(msg.PROPERTY_BAD_NAME.format(name=name))
        if ptype not in FIELD_TYPES:
            raise _bad(msg.PROPERTY_BAD_TYPE.format(type=ptype))
        if field_type not in FIELD_TYPES[ptype]:
            raise _bad(msg.PROPERTY_BAD_FIELD_TYPE.format(field_type=field_type, type=ptype))
        group = str(body["groupName"])
        if group not in self.groups[object_type] or self.groups[object_type][group].archived:
            raise _bad(msg.PROPERTY_UNKNOWN_GROUP.format(name=group))
        options = _clean_options(body.get("options") or [])
        if ptype == "enumeration" and field_type != "booleancheckbox" and not options:
            raise _bad(msg.PROPERTY_NEEDS_OPTIONS)
        if ptype == "bool" and not options:
            options = _options(("true", "True"), ("false", "False"))
        existing = self.properties[object_type].get(name)
        if existing is not None and not existing.archived:
            raise SandboxHTTPError(
                409, msg.crm_error(msg.PROPERTY_EXISTS.format(name=name), msg.OBJECT_ALREADY_EXISTS)
            )
        now = now_ms()
        prop = PropertyDef(
            name=name,
            label=str(body["label"]),
            type=ptype,
            fieldType=field_type,
            groupName=group,
            description=str(body.get("description") or ""),
            options=options,
            displayOrder=int(body.get("displayOrder", -1)),
            hasUniqueValue=bool(body.get("hasUniqueValue", False)),
            hidden=bool(body.get("hidden", False)),
            formField=bool(body.get("formField", True)),
            hubspotDefined=False,
            readOnlyDefinition=False,
            createdAt=now,
            updatedAt=now,
        )
        self.properties[object_type][name] = prop
        self.generation += 1
        return prop

    def update(self, object_type: str, name: str, body: dict[str, Any]) -> PropertyDef:
        prop = self._require(object_type, name)
        for key in ("label", "description", "groupName", "displayOrder", "hidden", "formField", "fieldType"):
            if key in body:
                setattr(prop, key, body[key])
        if "options" in body:
            prop.options = _clean_options(body["options"] or [])
        prop.updatedAt = now_ms()
        self.generation += 1
        return prop

    def archive(self, object_type: str, name: str) -> None:
        prop = self._require(object_type, name)
        if prop.hubspotDefined:
            raise _bad(msg.PROPERTY_HUBSPOT_DEFINED.format(name=name))
        prop.archived = True
        prop.archivedAt = now_ms()
        self.generation += 1

    def _require(self, object_type: str, name: str) -> PropertyDef:
        prop = self.get(object_type, name)
        if prop is None:
            raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
        return prop


def _clean_options(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise _bad(msg.PROPERTY_NEEDS_OPTIONS)
    options = []
    for i, option in enumerate(raw):
        if not isinstance(option, dict) or "value" not in option or "label" not in option:
            raise _bad(msg.PROPERTY_REQUIRED_FIELDS.format(names="options[].label, options[].value"))
        options.append(
            {
                "label": str(option["label"]),
                "value": str(option["value"]),
                "displayOrder": int(option.get("displayOrder", i)),
                "hidden": bool(option.get("hidden", False)),
                "description": str(option.get("description") or ""),
            }
        )
    return options


def _bad(message: str) -> SandboxHTTPError:
    return SandboxHTTPError(400, msg.crm_error(message, msg.VALIDATION_ERROR))


# ---------------------------------------------------------------------------------------- routes


def _read_scopes(object_type: str) -> list[str]:
    return [
        *READ_SCOPES[object_type][:1],
        f"crm.schemas.{object_type}.read",
        *WRITE_SCOPES[object_type],
        f"crm.schemas.{object_type}.write",
    ]


def _schema_write_scopes(object_type: str) -> list[str]:
    """Who may create or edit property definitions. For tickets and engagements the docs name
    no schema scope (docs/INTERACTIONS_API.md §5), so their object write scopes pass too."""
    if object_type in ("contacts", "companies", "deals"):
        return [f"crm.schemas.{object_type}.write"]
    return [f"crm.schemas.{object_type}.write", *WRITE_SCOPES[object_type]]


def _object_type(request: Request) -> str:
    object_type = resolve_type(request.path_params["objectType"])
    if object_type is None:
        raise _bad(msg.UNKNOWN_OBJECT_TYPE.format(name=request.path_params["objectType"]))
    return object_type


async def get_all(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _read_scopes(object_type))
    archived = request.query_params.get("archived", "false").lower() == "true"
    wanted = {n for v in request.query_params.getlist("properties") for n in v.split(",") if n}
    with state.lock:
        defs = [p for p in state.properties.properties[object_type].values() if p.archived == archived]
        results = [p.to_wire() for p in defs if not wanted or p.name in wanted]
    return JSONResponse({"results": results})


async def get_by_name(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _read_scopes(object_type))
    with state.lock:
        prop = state.properties._require(object_type, request.path_params["propertyName"])
        return JSONResponse(prop.to_wire())


async def create(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _schema_write_scopes(object_type))
    body = await read_json(request)
    with state.lock:
        prop = state.properties.create(object_type, body)
        return JSONResponse(prop.to_wire(), status_code=201)


async def update(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _schema_write_scopes(object_type))
    body = await read_json(request)
    with state.lock:
        prop = state.properties.update(object_type, request.path_params["propertyName"], body)
        return JSONResponse(prop.to_wire())


async def archive(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _schema_write_scopes(object_type))
    with state.lock:
        state.properties.archive(object_type, request.path_params["propertyName"])
    return Response(status_code=204)


async def batch_read(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _read_scopes(object_type))
    body = await read_json(request)
    started = now_ms()
    names = [str(i.get("name")) for i in body.get("inputs") or [] if isinstance(i, dict)]
    with state.lock:
        found = [state.properties.get(object_type, n) for n in names]
        results = [p.to_wire() for p in found if p is not None]
    return JSONResponse(
        {"status": "COMPLETE", "results": results, "startedAt": iso(started), "completedAt": iso(now_ms())}
    )


async def batch_create(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _schema_write_scopes(object_type))
    body = await read_json(request)
    started = now_ms()
    inputs = [i for i in body.get("inputs") or [] if isinstance(i, dict)]
    with state.lock:
        results = [state.properties.create(object_type, i).to_wire() for i in inputs]
    return JSONResponse(
        {"status": "COMPLETE", "results": results, "startedAt": iso(started), "completedAt": iso(now_ms())},
        status_code=201,
    )


async def batch_archive(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _schema_write_scopes(object_type))
    body = await read_json(request)
    with state.lock:
        for item in body.get("inputs") or []:
            if isinstance(item, dict) and item.get("name"):
                state.properties.archive(object_type, str(item["name"]))
    return Response(status_code=204)


async def get_groups(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _read_scopes(object_type))
    with state.lock:
        groups = [g.to_wire() for g in state.properties.groups[object_type].values() if not g.archived]
    return JSONResponse({"results": groups})


async def get_group(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _read_scopes(object_type))
    with state.lock:
        group = state.properties.groups[object_type].get(request.path_params["groupName"])
        if group is None or group.archived:
            raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
        return JSONResponse(group.to_wire())


async def create_group(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _schema_write_scopes(object_type))
    body = await read_json(request)
    name, label = body.get("name"), body.get("label")
    if not name or not label:
        raise _bad(msg.PROPERTY_REQUIRED_FIELDS.format(names="name, label"))
    if not NAME_PATTERN.match(str(name)):
        raise _bad(msg.PROPERTY_BAD_NAME.format(name=name))
    with state.lock:
        groups = state.properties.groups[object_type]
        if str(name) in groups and not groups[str(name)].archived:
            raise SandboxHTTPError(
                409, msg.crm_error(msg.GROUP_EXISTS.format(name=name), msg.OBJECT_ALREADY_EXISTS)
            )
        group = GroupDef(str(name), str(label), int(body.get("displayOrder", -1)))
        groups[group.name] = group
        return JSONResponse(group.to_wire(), status_code=201)


async def update_group(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _schema_write_scopes(object_type))
    body = await read_json(request)
    with state.lock:
        group = state.properties.groups[object_type].get(request.path_params["groupName"])
        if group is None or group.archived:
            raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
        if "label" in body:
            group.label = str(body["label"])
        if "displayOrder" in body:
            group.displayOrder = int(body["displayOrder"])
        return JSONResponse(group.to_wire())


async def archive_group(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = _object_type(request)
    authorize(request, _schema_write_scopes(object_type))
    with state.lock:
        group = state.properties.groups[object_type].get(request.path_params["groupName"])
        if group is None or group.archived:
            raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
        group.archived = True
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    prefixes = versioned("/crm/v3/properties", "/crm/properties/{version}")
    table: list[BaseRoute] = []
    for p in prefixes:
        table += [
            Route(p + "/{objectType}/batch/read", batch_read, methods=["POST"]),
            Route(p + "/{objectType}/batch/create", batch_create, methods=["POST"]),
            Route(p + "/{objectType}/batch/archive", batch_archive, methods=["POST"]),
            Route(p + "/{objectType}/groups", get_groups, methods=["GET"]),
            Route(p + "/{objectType}/groups", create_group, methods=["POST"]),
            Route(p + "/{objectType}/groups/{groupName}", get_group, methods=["GET"]),
            Route(p + "/{objectType}/groups/{groupName}", update_group, methods=["PATCH"]),
            Route(p + "/{objectType}/groups/{groupName}", archive_group, methods=["DELETE"]),
            Route(p + "/{objectType}", get_all, methods=["GET"]),
            Route(p + "/{objectType}", create, methods=["POST"]),
            Route(p + "/{objectType}/{propertyName}", get_by_name, methods=["GET"]),
            Route(p + "/{objectType}/{propertyName}", update, methods=["PATCH"]),
            Route(p + "/{objectType}/{propertyName}", archive, methods=["DELETE"]),
        ]
    return table
