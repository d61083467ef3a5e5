"""HubSpot's associations API (v4): which records a record is linked to, and how.

Cut from the client because associations are versioned apart from the objects API (v4
beside v3) and page differently: 1,000 inputs per request, each input with its own
cursor, and "no associations" reported as a per-input error.
"""

from __future__ import annotations

from collections.abc import Iterable

from crm.errors import NotFound
from crm.hubspot.errors import error_from_batch_item
from crm.hubspot.models import next_after
from crm.hubspot.paths import chunks, path
from crm.hubspot.transport import Transport

ASSOC_BATCH_LIMIT = 1_000
_NO_ASSOCIATIONS = "crm.associations.NO_ASSOCIATIONS_FOUND"


def read_associations(
    transport: Transport, from_type: str, to_type: str, ids: Iterable[str]
) -> dict[str, list[tuple[str, int]]]:
    """``{from id: [(to id, association type id), ...]}`` for every id asked about.

    Uses the v4 batch read (1,000 inputs per request) and follows each input's own
    paging. "No associations" (a 207 with NO_ASSOCIATIONS_FOUND) is an empty list.
    """
    found: dict[str, dict[tuple[str, int], None]] = {str(i): {} for i in ids}
    pending: list[dict[str, str]] = [{"id": i} for i in found]
    where = path("assoc_read", from_type=from_type, to_type=to_type)
    while pending:
        follow: list[dict[str, str]] = []
        for chunk in chunks(pending, ASSOC_BATCH_LIMIT):
            body = transport.json("POST", "assoc_read", where, json={"inputs": chunk}, kind="assoc")
            for result in body.get("results") or []:
                from_id = str((result.get("from") or {}).get("id"))
                pairs = found.setdefault(from_id, {})
                for target in result.get("to") or []:
                    to_id = str(target.get("toObjectId"))
                    for kind in target.get("associationTypes") or []:
                        if kind.get("typeId") is not None:
                            pairs[(to_id, int(kind["typeId"]))] = None
                cursor = next_after(result)
                if cursor:
                    follow.append({"id": from_id, "after": cursor})
            for item in body.get("errors") or []:
                error = error_from_batch_item(item)
                sub = str((item or {}).get("subCategory") or "")
                if sub == _NO_ASSOCIATIONS or isinstance(error, NotFound):
                    continue
                raise error
        pending = follow
    return {from_id: list(pairs) for from_id, pairs in found.items()}
