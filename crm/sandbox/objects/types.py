"""Object type names and the time format every CRM response uses."""

from __future__ import annotations

import datetime as dt
import re
import time

ENGAGEMENT_TYPES = ("notes", "calls", "emails", "meetings", "tasks")
OBJECT_TYPES = ("contacts", "companies", "deals", "tickets", *ENGAGEMENT_TYPES)
TYPE_IDS = {
    "contacts": "0-1", "companies": "0-2", "deals": "0-3", "tickets": "0-5",
    "tasks": "0-27", "notes": "0-46", "meetings": "0-47", "calls": "0-48", "emails": "0-49",
}  # fmt: skip
SINGULAR = {
    "contacts": "contact", "companies": "company", "deals": "deal", "tickets": "ticket",
    "notes": "note", "calls": "call", "emails": "email", "meetings": "meeting", "tasks": "task",
}  # fmt: skip
# The last-modified property differs per type (HUBSPOT_API.md §2.2), and so does the created one:
# engagements use ``hs_createdate`` (docs/INTERACTIONS_API.md §2).
LAST_MODIFIED = {t: "lastmodifieddate" if t == "contacts" else "hs_lastmodifieddate" for t in OBJECT_TYPES}
CREATED = {t: "hs_createdate" if t in ENGAGEMENT_TYPES else "createdate" for t in OBJECT_TYPES}
_ENGAGEMENT_DEFAULTS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    "deals": (
        "dealname",
        "amount",
        "closedate",
        "pipeline",
        "dealstage",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    ),
    "tickets": (
        "content",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_ticket_category",
        "hs_ticket_priority",
        "subject",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    ),
    **{t: _ENGAGEMENT_DEFAULTS for t in ENGAGEMENT_TYPES},
}
# Which properties a search ``query`` looks at (HUBSPOT_API.md §2.6); absent ones are skipped.
# For tickets and engagements HubSpot does not say (docs/INTERACTIONS_API.md §2): subjects and bodies.
QUERY_PROPERTIES = {
    "contacts": (
        "firstname",
        "lastname",
        "email",
        "phone",
        "hs_additional_emails",
        "fax",
        "mobilephone",
        "company",
    ),
    "companies": ("website", "phone", "name", "domain"),
    "deals": ("dealname", "pipeline", "dealstage", "description", "dealtype"),
    "tickets": ("subject", "content"),
    "notes": ("hs_note_body",),
    "calls": ("hs_call_title", "hs_call_body"),
    "emails": ("hs_email_subject", "hs_email_text"),
    "meetings": ("hs_meeting_title", "hs_meeting_body"),
    "tasks": ("hs_task_subject", "hs_task_body"),
}
# Scopes that let a token read or write each type (docs/INTERACTIONS_API.md §5): engagements
# use the contacts scopes, tickets the ``tickets`` scope.
_ENGAGEMENT_READ = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.sensitive.read.v2",
    "crm.objects.contacts.highly_sensitive.read.v2",
)
READ_SCOPES: dict[str, tuple[str, ...]] = {
    **{
        t: (
            f"crm.objects.{t}.read",
            f"crm.objects.{t}.sensitive.read.v2",
            f"crm.objects.{t}.highly_sensitive.read.v2",
        )
        for t in ("contacts", "companies", "deals")
    },
    "tickets": ("tickets", "crm.objects.tickets.read"),
    **{t: _ENGAGEMENT_READ for t in ENGAGEMENT_TYPES},
}
WRITE_SCOPES: dict[str, tuple[str, ...]] = {
    **{t: (f"crm.objects.{t}.write",) for t in ("contacts", "companies", "deals")},
    "tickets": ("tickets", "crm.objects.tickets.write"),
    **{t: ("crm.objects.contacts.write",) for t in ENGAGEMENT_TYPES},
}
# Reading an email's subject and bodies also needs this scope; without it they come back null.
EMAIL_CONTENT_SCOPE = "sales-email-read"
EMAIL_CONTENT = ("hs_email_subject", "hs_email_text", "hs_email_html", "hs_email_headers")

_ALIASES: dict[str, str] = {}
for _plural in OBJECT_TYPES:
    _ALIASES[_plural] = _plural
    _ALIASES[SINGULAR[_plural]] = _plural
    _ALIASES[TYPE_IDS[_plural]] = _plural


def resolve_type(name: str) -> str | None:
    """``contacts``, ``contact`` and ``0-1`` all name contacts; None for anything else."""
    return _ALIASES.get(name.strip().lower())


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    """Epoch milliseconds as HubSpot writes them: ``2024-01-05T10:00:00.000Z``."""
    moment = _EPOCH + dt.timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*(Z|[+-]\d{2}:?\d{2})?)?$"
)


def parse_time(value: str) -> int | None:
    """Epoch milliseconds (digits) or ISO-8601 (date or datetime, UTC unless an offset is given)."""
    text = value.strip()
    if re.fullmatch(r"-?\d{1,15}", text):
        return int(text)
    match = _ISO.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=dt.UTC,
        )
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        moment -= sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return int((moment - _EPOCH).total_seconds() * 1000)
