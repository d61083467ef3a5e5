"""Pipedrive's wire values as the CRM interface's text: times and scalars.

Shared by the record mapping (``crm.pipedrive.provider``) and the timeline's
(``crm.pipedrive.timeline``); both change when Pipedrive's value formats do.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def iso(value: Any) -> str | None:
    """A Pipedrive time (v2 RFC 3339, v1 ``YYYY-MM-DD HH:MM:SS`` in UTC) as ISO-8601 UTC."""
    seconds = epoch_s(value.replace(" ", "T") if isinstance(value, str) else value)
    return None if seconds is None else rfc3339(seconds)


def rfc3339(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_s(value: Any) -> int | None:
    """Epoch seconds of an API v2 time (RFC 3339), None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def text(value: Any) -> str | None:
    """A scalar as the interface's text: None for absent or empty, booleans as "true"/"false",
    lists and objects as sorted JSON."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)
