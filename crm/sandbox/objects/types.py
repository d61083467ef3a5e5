"""Object type names and the time format every CRM response uses."""

from __future__ import annotations

import datetime as dt
import re
import time

OBJECT_TYPES = ("contacts", "companies", "deals")
TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}
# The last-modified property differs per type (HUBSPOT_API.md §2.2).
LAST_MODIFIED = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate"}
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    "deals": (
        "dealname", "amount", "closedate", "pipeline", "dealstage", "createdate", "hs_lastmodifieddate",
        "hs_object_id",
    ),
}
# Which properties a search ``query`` looks at (HUBSPOT_API.md §2.6); absent ones are skipped.
QUERY_PROPERTIES = {
    "contacts": ("firstname", "lastname", "email", "phone", "hs_additional_emails", "fax", "mobilephone", "company"),
    "companies": ("website", "phone", "name", "domain"),
    "deals": ("dealname", "pipeline", "dealstage", "description", "dealtype"),
}

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
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")), tzinfo=dt.UTC,
        )
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        moment -= sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return int((moment - _EPOCH).total_seconds() * 1000)
