"""Values in two shapes, and the pure functions between them.

- *wire* strings, as HubSpot sends and takes them (``"1500.00"``, ``"true"``,
  ``"2024-05-01T00:00:00.000Z"``); the outbox stores edits in this shape;
- *column* values, typed for the cache: REAL for numbers, INTEGER 0/1 for booleans,
  ISO-8601 text for dates (``YYYY-MM-DD``) and datetimes (``...T..:..:..sssZ``, UTC).

``to_column`` and ``to_wire`` convert between them; ``same_value`` compares two wire
values the way HubSpot means them (``"1500.00"`` equals ``"1500"``). Nothing here
touches the database.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from crm.store.schema import BOOKKEEPING

_NAME_RE = re.compile(r"^[a-z0-9_]{1,100}$")
_CANONICAL_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def column_affinity(prop_type: str) -> str:
    """The SQLite column type for a HubSpot property type."""
    if prop_type == "number":
        return "REAL"
    if prop_type == "bool":
        return "INTEGER"
    return "TEXT"


def now_iso() -> str:
    """The current UTC time as fixed-width ISO-8601 (sorts as text)."""
    return _iso(dt.datetime.now(dt.UTC))


def _iso(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_datetime(value: Any) -> dt.datetime | None:
    """A UTC datetime from an ISO string, epoch milliseconds, a date or a datetime.

    Returns None for empty input; raises ValueError for anything else unreadable.
    """
    if value is None or value == "":
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value) / 1000, dt.UTC)
    text = str(value).strip()
    if re.fullmatch(r"-?\d{9,}", text):
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def to_epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds of a datetime-like value, None when empty or unreadable."""
    try:
        moment = parse_datetime(value)
    except (ValueError, OverflowError, OSError):
        return None
    return None if moment is None else int(moment.timestamp() * 1000)


def _format_number(number: Decimal) -> str:
    if number == number.to_integral_value():
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")


def to_column(value: str | None, prop_type: str) -> Any:
    """A wire value as stored in its typed column (None for empty)."""
    if value is None or value == "":
        return None
    try:
        if prop_type == "number":
            return float(Decimal(value.strip()))
        if prop_type == "bool":
            lowered = value.strip().lower()
            if lowered in ("true", "1", "yes"):
                return 1
            if lowered in ("false", "0", "no"):
                return 0
            return value
        if prop_type == "datetime":
            if _CANONICAL_ISO.match(value):
                return value  # HubSpot's usual form is already ours
            moment = parse_datetime(value)
            return None if moment is None else _iso(moment)
        if prop_type == "date":
            moment = parse_datetime(value)
            return None if moment is None else moment.date().isoformat()
    except (InvalidOperation, ValueError, OverflowError, OSError):
        # Keep what HubSpot sent rather than lose it; the column shows it as text.
        return value
    return value


def to_wire(value: Any, prop_type: str) -> str | None:
    """A column (or Python) value as HubSpot takes it; None for empty."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):  # pandas' empty cell
        return None
    if value is pd.NaT:
        return None
    if prop_type == "number":
        if isinstance(value, bool):
            return "1" if value else "0"
        try:
            return _format_number(Decimal(str(value).strip()))
        except InvalidOperation:
            return str(value)
    if prop_type == "bool":
        if isinstance(value, str):
            return value.strip().lower() or None
        return "true" if bool(value) else "false"
    if prop_type in ("date", "datetime"):
        try:
            moment = parse_datetime(value)
        except (ValueError, OverflowError, OSError):
            return str(value)
        if moment is None:
            return None
        return moment.date().isoformat() if prop_type == "date" else _iso(moment)
    text = str(value)
    return text if text != "" else None


def _canonical(value: Any, prop_type: str) -> Any:
    wire = value if isinstance(value, str) or value is None else to_wire(value, prop_type)
    if wire is None or wire == "":
        return None
    if prop_type == "number":
        try:
            return Decimal(wire.strip()).normalize()
        except InvalidOperation:
            return wire
    if prop_type == "bool":
        return wire.strip().lower()
    if prop_type == "datetime":
        ms = to_epoch_ms(wire)
        return wire if ms is None else ms
    if prop_type == "date":
        try:
            moment = parse_datetime(wire)
        except (ValueError, OverflowError, OSError):
            return wire
        return None if moment is None else moment.date()
    if prop_type == "enumeration" and ";" in wire:
        return frozenset(part for part in wire.split(";") if part)
    return wire


def same_value(a: Any, b: Any, prop_type: str = "string") -> bool:
    """Whether two values mean the same to HubSpot (empty and None alike)."""
    return bool(_canonical(a, prop_type) == _canonical(b, prop_type))


def is_valid_property_name(name: str) -> bool:
    """Whether ``name`` can be a column (HubSpot names are lowercase a-z, 0-9 and _)."""
    return bool(_NAME_RE.match(name)) and name not in BOOKKEEPING
