"""HubSpot's batch endpoints of the objects API: read, update, upsert, create, archive.

Cut from the client because batch writes carry rules of their own that change with
HubSpot's batch API and with nothing else: 100 inputs per request, a trace id per input so
one bad input fails alone (207), which writes may be retried (a create that may have
happened never is), and property values sent as strings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from crm.errors import NotFound
from crm.hubspot.errors import error_from_batch_item
from crm.hubspot.models import BatchResult, Record, record_from_wire
from crm.hubspot.paths import chunks, flag, path
from crm.hubspot.transport import Retry, Transport

log = logging.getLogger("crm.hubspot")

BATCH_LIMIT = 100


def batch_read(
    transport: Transport,
    object_type: str,
    ids: Iterable[str],
    *,
    properties: Sequence[str],
    id_property: str | None = None,
    archived: bool = False,
) -> list[Record]:
    """The records with these ids (100 per request); unknown ids are left out."""
    records: list[Record] = []
    for chunk in chunks(list(dict.fromkeys(str(i) for i in ids)), BATCH_LIMIT):
        records.extend(read_chunk(transport, object_type, chunk, list(properties), id_property, archived))
    return records


def read_chunk(
    transport: Transport,
    object_type: str,
    ids: list[str],
    properties: list[str],
    id_property: str | None,
    archived: bool,
) -> list[Record]:
    """One ``batch/read`` request (at most ``BATCH_LIMIT`` ids); unknown ids are left out."""
    body: dict[str, Any] = {
        "properties": list(dict.fromkeys(properties)),
        "inputs": [{"id": i} for i in ids],
    }
    if id_property:
        body["idProperty"] = id_property
    data = transport.json(
        "POST",
        "batch",
        path("batch", object_type=object_type, action="read"),
        params={"archived": flag(archived)},
        json=body,
        kind="batch",
    )
    for item in data.get("errors") or []:
        error = error_from_batch_item(item)
        if not isinstance(error, NotFound):
            log.debug("batch read of %s: HubSpot reported %s", object_type, error.category)
    return [record_from_wire(item) for item in data.get("results") or []]


def batch_update(transport: Transport, object_type: str, inputs: list[dict[str, Any]]) -> BatchResult:
    """Update records: inputs ``{"id", "properties"}`` (optionally ``"id_property"``).

    Sent 100 at a time and retried on transient failures (an update is idempotent).
    Each input carries its record id as ``objectWriteTraceId``, so HubSpot can refuse
    one input alone (207): its error's ``body["context"]["objectWriteTraceId"]`` is
    ``[record id]``, and unknown ids come back as one NotFound with ``context["ids"]``.

    Raises:
        ValidationFailed: HubSpot refused a chunk as a whole (400); chunks before it
            were applied. Callers that need per-input results send at most 100.
    """
    wire = [_update_input(item) for item in inputs]
    traces = [entry["id"] for entry in wire]
    if len(set(traces)) == len(traces):
        for entry in wire:
            entry["objectWriteTraceId"] = entry["id"]
    return _write(transport, object_type, "update", wire, retry="safe")


def batch_upsert(
    transport: Transport, object_type: str, inputs: list[dict[str, Any]], *, id_property: str
) -> BatchResult:
    """Create or update by a unique property: inputs ``{"id", "properties"}`` where
    ``id`` is the value of ``id_property`` (e.g. the email). Safe to retry."""
    wire = [
        {"id": str(item["id"]), "idProperty": id_property, "properties": _props(item.get("properties"))}
        for item in inputs
    ]
    return _write(transport, object_type, "upsert", wire, retry="safe")


def batch_create(transport: Transport, object_type: str, inputs: list[dict[str, Any]]) -> BatchResult:
    """Create records: inputs ``{"properties", "associations"?, "object_write_trace_id"?}``.

    ``associations`` is a list of ``(to id, association type id)`` (HUBSPOT_DEFINED), or
    of HubSpot's own association dicts. Every input gets a trace id so one bad input
    fails alone (207) instead of the whole batch. Never retried after HubSpot may have
    acted on it: a timeout or 5xx raises, and the caller reconciles (e.g. GET by a
    unique property).
    """
    wire = []
    for index, item in enumerate(inputs):
        entry: dict[str, Any] = {"properties": _props(item.get("properties"))}
        if item.get("associations"):
            entry["associations"] = [_association_input(a) for a in item["associations"]]
        trace = item.get("object_write_trace_id") or item.get("objectWriteTraceId") or f"input-{index}"
        entry["objectWriteTraceId"] = str(trace)
        wire.append(entry)
    return _write(transport, object_type, "create", wire, retry="create")


def batch_archive(transport: Transport, object_type: str, ids: Iterable[str]) -> None:
    """Archive (delete) records, 100 per request; archiving twice is harmless."""
    path_args = {"object_type": object_type, "action": "archive"}
    for chunk in chunks([str(i) for i in ids], BATCH_LIMIT):
        transport.send(
            "POST",
            "batch",
            path("batch", **path_args),
            json={"inputs": [{"id": i} for i in chunk]},
            kind="batch",
        )


def _write(
    transport: Transport, object_type: str, action: str, wire: list[dict[str, Any]], *, retry: Retry
) -> BatchResult:
    result = BatchResult([], [])
    where = path("batch", object_type=object_type, action=action)
    for chunk in chunks(wire, BATCH_LIMIT):
        data = transport.json("POST", "batch", where, json={"inputs": chunk}, kind="batch", retry=retry)
        for item in data.get("results") or []:
            record = record_from_wire(item)
            result.records.append(record)
            if item.get("new") is True:
                result.created_ids.append(record.id)
        result.errors.extend(error_from_batch_item(item) for item in data.get("errors") or [])
    return result


def _props(properties: Any) -> dict[str, str]:
    """Property values as HubSpot wants them: strings ("" clears a value)."""
    out: dict[str, str] = {}
    for name, value in (properties or {}).items():
        if value is None:
            out[name] = ""
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out


def _association_input(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    to_id, type_id = item
    return {
        "to": {"id": str(to_id)},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": int(type_id)}],
    }


def _update_input(item: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": str(item["id"]), "properties": _props(item.get("properties"))}
    id_property = item.get("id_property") or item.get("idProperty")
    if id_property:
        entry["idProperty"] = id_property
    return entry
