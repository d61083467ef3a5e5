"""Cached records for scripts: ``python -m crm export {contacts,companies,deals}``.

Rows carry the record id in a column named ``id``, then the columns the dashboard's page
shows (the connection's CRM names them: ``ObjectTypeInfo.columns``), with the words the
page shows where it shows words (owner names, pipeline and stage labels, option labels). Archived records are left out. CSV cells that a spreadsheet
would run as formulas are neutralised exactly as the page's CSV download does it; JSON
keeps values as they are (no spreadsheet opens it, and a script wants the real text).

Reads go through ``db.queries.query_records`` in pages, so a large cache streams.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TextIO

import pandas as pd

from crm.config import Settings
from crm.labels import option_labels, owner_labels, pipeline_labels, stage_labels

if TYPE_CHECKING:
    from crm.interface import ObjectTypeInfo
    from crm.store import Store

ExportFormat = Literal["csv", "json"]
OBJECT_TYPES = ("contacts", "companies", "deals", "tickets")
# Columns the companies page adds from the associations: counts per company.
COMPANY_COUNTS = ("contacts", "deals")
PAGE_SIZE = 2000
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")


def neutralise(value: object) -> object:
    """Text that a spreadsheet would run as a formula, prefixed with ``'`` so it stays text."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def export_records(
    settings: Settings,
    object_type: str,
    out: TextIO,
    *,
    fmt: ExportFormat = "csv",
    search: str | None = None,
) -> int:
    """Write every non-archived cached record of ``object_type`` to ``out``; returns the count.

    Raises ValueError for an unknown object type or format.
    """
    from crm.crms import provider_of

    info = next((i for i in provider_of(settings).object_types() if i.name == object_type), None)
    if info is None or object_type not in OBJECT_TYPES:
        raise ValueError(f"unknown object type {object_type!r}")
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown format {fmt!r}")
    from crm import store

    with store.open(settings) as db:
        columns, rows = _rows(db, info, search)
        if fmt == "csv":
            return _write_csv(out, columns, rows)
        return _write_json(out, columns, rows)


def _rows(db: Store, info: ObjectTypeInfo, search: str | None) -> tuple[list[str], Iterator[list[Any]]]:
    from crm.sync.pronouns import PRONOUNS, pronouns_available

    object_type = info.name
    shown = list(info.columns)
    defs = db.queries.property_defs(object_type)
    labels: dict[str, Callable[[Any], Any]] = {}
    if info.owner:
        labels[info.owner] = _labeller(owner_labels(db.queries.owners_frame()))
    if info.pipeline:
        pipes = db.queries.pipelines(object_type)
        labels[info.pipeline] = _labeller(pipeline_labels(pipes))
        if info.stage:
            labels[info.stage] = _labeller(stage_labels(pipes))
    if object_type == "contacts" and pronouns_available(db):
        shown.insert(min(5, len(shown)), PRONOUNS)
    for name in shown:
        # Enumerations (a contact's lifecycle stage, a ticket's priority) by their option labels.
        if name not in labels and (defs.get(name) or {}).get("type") == "enumeration":
            labels[name] = _labeller(option_labels(defs.get(name)))
    search_columns = info.search or None
    extra = list(COMPANY_COUNTS) if object_type == "companies" else []

    def generate() -> Iterator[list[Any]]:
        offset = 0
        while True:
            frame, _ = db.queries.query_records(
                object_type,
                search=search or None,
                offset=offset,
                limit=PAGE_SIZE,
                columns=shown,
                search_columns=search_columns,
            )
            if frame.empty:
                return
            if extra:
                frame = frame.join(db.queries.company_counts(list(frame.index))[extra], how="left")
            for record_id, row in frame.iterrows():
                values = [str(record_id)]
                for column in [*shown, *extra]:
                    value = _plain(row.get(column))
                    label = labels.get(column)
                    values.append(label(value) if label is not None and value is not None else value)
                yield values
            if len(frame) < PAGE_SIZE:
                return
            offset += PAGE_SIZE

    return ["id", *shown, *extra], generate()


def _labeller(options: dict[str, str]) -> Callable[[Any], Any]:
    return lambda value: options.get(str(value), value)


def _plain(value: Any) -> Any:
    """A cell as a plain Python value: None for empty, whole numbers as int, times as ISO text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, pd.Timestamp):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return value


def _write_csv(out: TextIO, columns: list[str], rows: Iterator[list[Any]]) -> int:
    # Quoting every text cell keeps a stray CR or LF inside its cell in every reader.
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(["" if v is None else neutralise(v) for v in row])
        count += 1
    return count


def _write_json(out: TextIO, columns: list[str], rows: Iterator[list[Any]]) -> int:
    out.write("[")
    count = 0
    for row in rows:
        out.write(
            ("," if count else "") + "\n" + json.dumps(dict(zip(columns, row, strict=True)), default=str)
        )
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
