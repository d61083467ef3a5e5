"""What one push works with and reports, shared by its two parts.

The record push (``crm.sync.push``: edits and new records) and the logged-engagement push
(``crm.sync.push_logged``: notes and tasks) change for different reasons; what they share
is here: the store, the API, who pushes and the CRM's words, a result per outbox row, and
which CRM errors leave a row pending to try again.
"""

from __future__ import annotations

from typing import Any

from crm import crms
from crm.errors import CircuitOpen, HubSpotError, RateLimited, Unreachable
from crm.interface import CrmApi, Words
from crm.store import Store

# A result's status -> the summary count it adds to.
_SUMMARY_KEY = {
    "pushed": "pushed",
    "already": "pushed",
    "created": "pushed",
    "failed": "failed",
    "conflict": "conflicts",
    "retry": "retry",
}


class PushRun:
    """One push's state: the store, the API, who pushes, the CRM's words, the results so far."""

    def __init__(self, db: Store, api: CrmApi, *, by: str | None, words: Words | None = None) -> None:
        self.db = db
        self.api = api
        self.by = by
        self.words = words or crms.provider_for(None).words
        self.results: list[dict[str, Any]] = []

    def summary(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "pushed": 0,
            "failed": 0,
            "conflicts": 0,
            "retry": 0,
            "results": self.results,
        }
        for result in self.results:
            found[_SUMMARY_KEY[result["status"]]] += 1
        return found

    def _note(self, row: dict[str, Any], status: str, message: str | None = None, **extra: Any) -> None:
        self.results.append({**_result(row, status, message), **extra})


def is_transient(exc: BaseException) -> bool:
    """Whether a CRM error may pass by itself (rate limits after retries, 5xx, no answer):
    the row stays pending for the next push."""
    if isinstance(exc, (Unreachable, CircuitOpen, RateLimited)):
        return True
    return isinstance(exc, HubSpotError) and (exc.status_code >= 500 or exc.status_code in (423, 429, 477))


def _result(row: dict[str, Any], status: str, message: str | None = None) -> dict[str, Any]:
    return {
        "outbox_id": row["id"],
        "object_type": row["object_type"],
        "record_id": row["record_id"],
        "property": row.get("property"),
        "status": status,
        "message": message,
    }
