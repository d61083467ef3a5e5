"""The reads behind the pages: pages of records, one record, owners, pipelines, figures.

Everything returns plain data: DataFrames typed for display (numbers Float64, booleans
boolean, datetimes UTC Timestamps, dates ``datetime.date``) or dicts. Nothing here
writes. Filtering, searching, sorting and paging happen in SQL, so a page costs the same
at a thousand contacts and at a million.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from crm.store.owner import TableOwner
from crm.store.records import ID_CHUNK, check_type, marks, quote
from crm.store.schema import BASE_COLUMNS, BOOKKEEPING, OBJECT_TYPES, SEARCH_INDEXED

# Last-modified properties (contacts; companies and deals); updatedAt is their value.
_LAST_MODIFIED = ("lastmodifieddate", "hs_lastmodifieddate")
_AFFINITY_TYPE = {"REAL": "number", "INTEGER": "bool", "TEXT": "string"}
# The few base properties whose type is known without their definition.
_KNOWN_TYPES = {
    "createdate": "datetime",
    "lastmodifieddate": "datetime",
    "hs_lastmodifieddate": "datetime",
    "closedate": "datetime",
    "amount": "number",
    "numberofemployees": "number",
    "annualrevenue": "number",
}
_SEARCH_COLUMNS = {
    "companies": ("name", "domain", "phone", "city"),
    "deals": ("dealname",),
    "tickets": ("subject", "content"),
}
_NOTHING = "1 = 0"
# How a record is named in a list of search results.
_LABEL_SQL = {
    "contacts": "coalesce(nullif(trim(coalesce(firstname, '') || ' ' || coalesce(lastname, '')), ''), email, id)",
    "companies": "coalesce(name, domain, id)",
    "deals": "coalesce(dealname, id)",
    "tickets": "coalesce(subject, id)",
}


class Queries(TableOwner):
    """Read-only views of the cache."""

    # ---------------------------------------------------------------- columns

    def table_columns(self, object_type: str) -> list[str]:
        """The record table's columns, bookkeeping first."""
        return self.conn.table_columns(check_type(object_type))

    def property_types(self, object_type: str) -> dict[str, str]:
        """HubSpot type of every property column of a record table.

        Taken from the stored definitions; a column without one falls back to what is
        known of the base properties (REAL is a number, anything else a string).
        """
        defs = dict(
            self.conn.execute(
                "SELECT name, type FROM property_defs WHERE object_type = ?", (object_type,)
            ).fetchall()
        )
        base = BASE_COLUMNS[object_type]
        return {
            name: defs.get(name)
            or _KNOWN_TYPES.get(name)
            or _AFFINITY_TYPE.get(base.get(name, "TEXT"), "string")
            for name in self.table_columns(object_type)
            if name not in BOOKKEEPING
        }

    def synced_property_names(self, object_type: str) -> list[str]:
        """The HubSpot properties a pull requests for ``object_type``: one per property column."""
        return [c for c in self.table_columns(object_type) if c not in BOOKKEEPING]

    def property_defs(self, object_type: str) -> dict[str, dict[str, Any]]:
        """Stored property definitions by name (options parsed; flags as bools)."""
        result: dict[str, dict[str, Any]] = {}
        for item in self._dicts(
            "SELECT * FROM property_defs WHERE object_type = ? ORDER BY name", (check_type(object_type),)
        ):
            item["options"] = json.loads(item["options"] or "[]")
            for flag in ("read_only", "calculated", "hubspot_defined", "has_unique_value", "archived"):
                item[flag] = bool(item[flag])
            result[item["name"]] = item
        return result

    # ---------------------------------------------------------------- records

    def query_records(
        self,
        object_type: str,
        *,
        search: str | None = None,
        filters: Mapping[str, Any] | None = None,
        sort: str | None = None,
        descending: bool = False,
        offset: int = 0,
        limit: int = 100,
        columns: Sequence[str] | None = None,
        include_archived: bool = False,
        search_columns: Sequence[str] | None = None,
    ) -> tuple[pd.DataFrame, int]:
        """One page of cached records, filtered, searched and sorted in SQL.

        Args:
            search: contacts: words matched as prefixes of first/last name, email, company
                and phone (digits also match without punctuation); companies: name,
                domain, phone, city; deals: deal name (substring, any case).
            filters: column -> value (``=``), list/tuple/set (``IN``), None (``IS NULL``) or
                ``{"min": a, "max": b}`` (a range, either end optional). Special keys:
                ``associated_company`` (contacts/deals linked to that company id),
                ``associated_contact`` (deals linked to that contact id).
            sort: a column name; default most recently updated first.
            search_columns: the columns the search matches, as the caller's CRM names them
                (substring, any case); contacts searched over columns the contacts search
                index covers go through the index (word prefixes, phone digits). None: the
                columns named above.

        Returns:
            The page as a DataFrame indexed by id and the total matching count.

        Raises ValueError for an unknown object type, column or filter.
        """
        check_type(object_type)
        types = self.property_types(object_type)
        known = set(self.table_columns(object_type))
        where: list[str] = []
        params: list[Any] = []
        if not include_archived:
            where.append("archived = 0")
        text = (search or "").strip()
        matching = self._search_clause(object_type, text, search_columns) if text else None
        if matching is not None:
            where.append(matching[0])
            params.extend(matching[1])
        for key, value in (filters or {}).items():
            _filter_clause(object_type, key, value, known, where, params)

        if sort is not None and sort not in known:
            raise ValueError(f"cannot sort {object_type} by unknown column {sort!r}")
        # HubSpot's updatedAt is the record's last-modified property, so sorting by the
        # indexed bookkeeping column gives the same order without scanning the whole table
        # (at 1,000,000 contacts: a page in ~40 ms instead of ~200 ms, a search in ~15 ms).
        order_col = "updated_at" if sort is None or sort in _LAST_MODIFIED else sort
        direction = "DESC" if (descending if sort else True) else "ASC"
        # Empty values last either way (both databases agree once it is spelled out).
        nulls = " NULLS LAST"
        order_sql = f" ORDER BY {quote(order_col)} {direction}{nulls}, id {direction}"
        wanted = list(dict.fromkeys(["id", *(columns or self.table_columns(object_type))]))
        unknown = [c for c in wanted if c not in known]
        if unknown:
            raise ValueError(f"unknown {object_type} columns: {unknown}")
        select = ", ".join(quote(c) for c in wanted)
        where_sql = (" WHERE " + " AND ".join(where)) if where else ""
        frame = self._frame(
            f"SELECT {select} FROM {quote(object_type)}{where_sql}{order_sql} LIMIT ? OFFSET ?",
            [*params, max(0, int(limit)), max(0, int(offset))],
        )
        total = None
        if matching is not None and self._indexed(object_type, search_columns) and not filters:
            total = self._search_total(text, matching, include_archived)
        if total is None:
            total = int(
                self.conn.execute(f"SELECT count(*) FROM {quote(object_type)}{where_sql}", params).fetchone()[
                    0
                ]
            )
        frame = _typed(frame, types).set_index("id")
        frame.index = frame.index.astype(str)
        return frame, total

    def _search_total(self, text: str, matching: tuple[str, list[Any]], include_archived: bool) -> int | None:
        """The search index's own count of matching contacts, less the archived ones; None
        when the index cannot count (then the rows are counted)."""
        total = self.conn.contacts_search_total(text)
        if total is None or include_archived or not total:
            return total
        # Archived contacts are few, and the (archived, updated_at) index finds them.
        archived = self.conn.execute(
            f"SELECT count(*) FROM contacts WHERE archived = 1 AND {matching[0]}", matching[1]
        ).fetchone()[0]
        return total - int(archived)

    @staticmethod
    def _indexed(object_type: str, columns: Sequence[str] | None) -> bool:
        """Whether a search over ``columns`` is the contacts search index's to answer."""
        return object_type == "contacts" and (columns is None or set(columns) <= set(SEARCH_INDEXED))

    def _search_clause(
        self, object_type: str, text: str, columns: Sequence[str] | None = None
    ) -> tuple[str, list[Any]]:
        """The WHERE fragment (and params) of a search box text over ``columns`` (None: the
        type's usual ones)."""
        if self._indexed(object_type, columns):
            return self.conn.contacts_search(text) or (_NOTHING, [])
        pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cols = tuple(columns) if columns is not None else _SEARCH_COLUMNS[object_type]
        known = set(self.table_columns(object_type))
        cols = tuple(c for c in cols if c in known)
        if not cols:
            return _NOTHING, []
        # Both sides folded the same Unicode-aware way on both backends (see engine._connect).
        lower = "unicode_lower" if self.conn.dialect == "sqlite" else "lower"
        return (
            "(" + " OR ".join(f"{lower}({quote(c)}) LIKE ? ESCAPE '\\'" for c in cols) + ")",
            [pattern] * len(cols),
        )

    def search_plan(self, object_type: str, text: str, *, limit: int = 100) -> list[str]:
        """The database's plan (EXPLAIN) for the first page of a search, as ``query_records``
        runs it: lets a benchmark show that the search index is what answers it."""
        check_type(object_type)
        clause, params = self._search_clause(object_type, text.strip())
        sql = (
            f"SELECT id FROM {quote(object_type)} WHERE archived = 0 AND {clause} "
            "ORDER BY updated_at DESC NULLS LAST, id DESC LIMIT ?"
        )
        explain = "EXPLAIN QUERY PLAN " if self.conn.dialect == "sqlite" else "EXPLAIN "
        rows = self.conn.execute(explain + sql, [*params, max(1, int(limit))]).fetchall()
        return [str(row[-1]) for row in rows]

    def search_everywhere(
        self,
        text: str,
        *,
        limit: int = 10,
        types: Mapping[str, tuple[Sequence[str], Sequence[str], Sequence[str]]] | None = None,
    ) -> dict[str, list[dict[str, str]]]:
        """Records of every type matching a search box text, as their pages search them.

        Args:
            types: the types to search, in the caller's CRM's names: ``{object_type:
                (search columns, name columns joined by spaces, fallback name columns)}``.
                None: every type, HubSpot's columns (contacts through the search index;
                companies, deals and tickets by substring, as on their pages).

        Returns ``{object_type: [{"id", "label"}]}`` with at most ``limit`` per type, most
        recently updated first (empty types included).
        """
        text = text.strip()
        wanted = (
            {t: types.get(t) for t in OBJECT_TYPES if t in types}
            if types is not None
            else dict.fromkeys(OBJECT_TYPES)
        )
        found: dict[str, list[dict[str, str]]] = {t: [] for t in wanted}
        if not text:
            return found
        for object_type, columns in wanted.items():
            clause, params = self._search_clause(object_type, text, columns[0] if columns else None)
            label = (
                self._label_sql(object_type, columns[1], columns[2]) if columns else _LABEL_SQL[object_type]
            )
            rows = self.conn.execute(
                f"SELECT id, {label} FROM {quote(object_type)} WHERE archived = 0 "
                f"AND {clause} ORDER BY updated_at DESC NULLS LAST, id DESC LIMIT ?",
                [*params, max(1, int(limit))],
            ).fetchall()
            found[object_type] = [{"id": str(r[0]), "label": str(r[1] or r[0])} for r in rows]
        return found

    def _label_sql(self, object_type: str, joined: Sequence[str], fallbacks: Sequence[str]) -> str:
        """SQL naming a record: the ``joined`` columns with spaces between, else the first of
        ``fallbacks`` with a value, else its id (columns the table lacks are left out)."""
        known = set(self.table_columns(object_type))
        parts = " || ' ' || ".join(f"coalesce(CAST({quote(c)} AS TEXT), '')" for c in joined if c in known)
        names = [f"nullif(trim({parts}), '')"] if parts else []
        names += [f"nullif(CAST({quote(c)} AS TEXT), '')" for c in fallbacks if c in known]
        return f"coalesce({', '.join([*names, 'id'])})"

    def get_record(self, object_type: str, record_id: str) -> dict[str, Any] | None:
        """One cached record as stored (column values), or None if it is not cached."""
        found = self._dicts(f"SELECT * FROM {quote(check_type(object_type))} WHERE id = ?", (str(record_id),))
        return found[0] if found else None

    def get_values(
        self, object_type: str, ids: Sequence[str], properties: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """Column values of some properties of some records, by id."""
        cols = ", ".join(quote(p) for p in ["id", *properties])
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), ID_CHUNK):
            chunk = list(ids[start : start + ID_CHUNK])
            for row in self.conn.execute(
                f"SELECT {cols} FROM {quote(check_type(object_type))} WHERE id IN ({marks(len(chunk))})",
                chunk,
            ).fetchall():
                found[row[0]] = dict(zip(properties, row[1:], strict=True))
        return found

    def find_by_property(self, object_type: str, prop: str, value: str) -> str | None:
        """Id of a cached, non-archived record whose ``prop`` equals ``value`` (any case)."""
        row = self.conn.execute(
            # lower(email) is indexed, so a new contact is matched at once at any size.
            f"SELECT id FROM {quote(check_type(object_type))} "
            f"WHERE lower({quote(prop)}) = lower(?) AND archived = 0 LIMIT 1",
            (value,),
        ).fetchone()
        return None if row is None else str(row[0])

    def associated_records(self, object_type: str, record_id: str, to_type: str) -> pd.DataFrame:
        """Cached ``to_type`` records associated with one record (either direction stored)."""
        check_type(object_type)
        check_type(to_type)
        sql = f"""SELECT t.* FROM {quote(to_type)} t WHERE t.archived = 0 AND t.id IN (
                    SELECT to_id FROM associations WHERE from_type = ? AND from_id = ? AND to_type = ?
                    UNION
                    SELECT from_id FROM associations WHERE to_type = ? AND to_id = ? AND from_type = ?)
                  ORDER BY t.id"""
        frame = self._frame(sql, [object_type, str(record_id), to_type, object_type, str(record_id), to_type])
        frame = _typed(frame, self.property_types(to_type)).set_index("id")
        frame.index = frame.index.astype(str)
        return frame

    def counts(self) -> dict[str, int]:
        """Cached, non-archived records per object type, plus owners."""
        result = {
            t: int(self.conn.execute(f"SELECT count(*) FROM {quote(t)} WHERE archived = 0").fetchone()[0])
            for t in OBJECT_TYPES
        }
        result["owners"] = int(
            self.conn.execute("SELECT count(*) FROM owners WHERE archived = 0").fetchone()[0]
        )
        return result

    def record_stamps(
        self, object_type: str, *, ids: Sequence[str] | None = None, sample: int | None = None
    ) -> dict[str, str | None]:
        """Cached, non-archived records' id -> updated_at (HubSpot's last-modified as cached).

        All of them, those of ``ids``, or ``sample`` picked at random (``crm.sync.verify``).
        """
        table = quote(check_type(object_type))
        if ids is not None:
            found: dict[str, str | None] = {}
            for start in range(0, len(ids), ID_CHUNK):
                chunk = [str(i) for i in ids[start : start + ID_CHUNK]]
                for record_id, updated in self.conn.execute(
                    f"SELECT id, updated_at FROM {table} WHERE archived = 0 AND id IN ({marks(len(chunk))})",
                    chunk,
                ).fetchall():
                    found[str(record_id)] = updated
            return found
        sql = f"SELECT id, updated_at FROM {table} WHERE archived = 0"
        params: list[Any] = []
        if sample is not None:
            sql += " ORDER BY random() LIMIT ?"
            params.append(int(sample))
        return {str(i): u for i, u in self.conn.execute(sql, params).fetchall()}

    def table_sizes(self) -> dict[str, int]:
        """Rows per record table and in ``associations``, archived included (the benchmark's check)."""
        return {
            t: int(self.conn.execute(f"SELECT count(*) FROM {quote(t)}").fetchone()[0])
            for t in (*OBJECT_TYPES, "associations")
        }

    # ----------------------------------------------------------- owners, deals

    def owners_frame(self, *, include_archived: bool = False) -> pd.DataFrame:
        """Owners indexed by id, with a display ``name`` (full name, else email)."""
        frame = self._frame(
            "SELECT id, email, first_name, last_name, user_id, type, archived FROM owners"
            + ("" if include_archived else " WHERE archived = 0")
            + " ORDER BY lower(coalesce(first_name, '')), lower(coalesce(last_name, '')), id",
        )
        names = (frame["first_name"].fillna("") + " " + frame["last_name"].fillna("")).str.strip()
        frame["name"] = names.where(names != "", frame["email"].fillna(frame["id"]))
        frame["archived"] = frame["archived"].astype(bool)
        return frame.set_index("id")

    def owner_ids(self) -> list[str]:
        """Ids of the portal's active owners."""
        return [str(r[0]) for r in self.conn.execute("SELECT id FROM owners WHERE archived = 0").fetchall()]

    def pipelines(self, object_type: str = "deals") -> list[dict[str, Any]]:
        """Pipelines in display order, each with its ``stages`` in display order."""
        result = []
        for pid, label, order, archived in self.conn.execute(
            "SELECT id, label, display_order, archived FROM pipelines WHERE object_type = ? "
            "ORDER BY display_order, label",
            (object_type,),
        ).fetchall():
            stages = [
                {
                    "id": sid,
                    "label": slabel,
                    "display_order": sorder,
                    "probability": prob,
                    "is_closed": bool(closed),
                    "archived": bool(sarch),
                }
                for sid, slabel, sorder, prob, closed, sarch in self.conn.execute(
                    "SELECT id, label, display_order, probability, is_closed, archived FROM pipeline_stages "
                    "WHERE object_type = ? AND pipeline_id = ? ORDER BY display_order, label",
                    (object_type, pid),
                ).fetchall()
            ]
            result.append(
                {
                    "id": pid,
                    "label": label,
                    "display_order": order,
                    "archived": bool(archived),
                    "stages": stages,
                }
            )
        return result

    def deal_stage_summary(
        self,
        pipeline_id: str,
        *,
        pipeline: str = "pipeline",
        stage: str = "dealstage",
        amount: str = "amount",
        currency: str | None = None,
        in_currency: str | None = None,
        default_currency: str | None = None,
        status: str | None = None,
        status_open: str | None = None,
    ) -> pd.DataFrame:
        """Deals per stage of one pipeline, in the pipeline's stage order (empty stages included).

        ``pipeline``, ``stage`` and ``amount`` name the deals' columns that play those roles
        (the CRM's own property names; defaults: HubSpot's). With a ``status`` column, only
        deals whose status is ``status_open`` count (a CRM whose won and lost deals keep
        their stage, as Pipedrive's do). With a ``currency`` column, only deals in
        ``in_currency`` count (None: those naming no currency), so no sum adds two currencies;
        ``default_currency`` is the one a deal naming none is in (the account's, when known).
        """
        p, s_, a, *rest = self._deal_columns(pipeline, stage, amount, *([status] if status else []))
        only_open = f" AND {rest[0]} = ?" if rest else ""
        params: list[Any] = [status_open] if rest else []
        only_currency = ""
        if currency:
            code, code_params = self._deal_currency(currency, default_currency)
            only_currency = f" AND {code} IS NULL" if in_currency is None else f" AND {code} = ?"
            params += [*code_params, *([] if in_currency is None else [in_currency.upper()])]
        return self._frame(
            f"""SELECT s.id AS stage_id, s.label AS stage, s.display_order, count(d.id) AS count,
                      coalesce(sum({a}), 0.0) AS amount, s.probability
               FROM pipeline_stages s
               LEFT JOIN deals d ON {p} = s.pipeline_id AND {s_} = s.id AND d.archived = 0{only_open}{only_currency}
               WHERE s.object_type = 'deals' AND s.pipeline_id = ? AND s.archived = 0
               GROUP BY s.id, s.label, s.display_order, s.probability
               ORDER BY s.display_order, s.label""",
            [*params, pipeline_id],
        )

    def _deal_currency(self, column: str | None, default: str | None) -> tuple[str, list[Any]]:
        """SQL (and its parameters) for a deal's currency code, upper case: ``default`` (else
        NULL) for a deal naming none, or for every deal when the cache has no such column (a
        CRM whose deals may name a currency that no synced deal does yet)."""
        fallback, params = (
            ("CAST(? AS TEXT)", [default.strip().upper()]) if default else ("CAST(NULL AS TEXT)", [])
        )
        if not column or column not in self.property_types("deals"):
            return fallback, params
        return f"coalesce(upper(nullif(trim(d.{quote(column)}), '')), {fallback})", params

    def _deal_columns(self, pipeline: str, stage: str, *others: str) -> list[str]:
        """SQL for the deals columns named (pipeline and stage as id text, then the others,
        quoted, with the alias ``d``); ValueError for one the table lacks."""
        types = self.property_types("deals")
        unknown = [n for n in (pipeline, stage, *others) if n not in types]
        if unknown:
            raise ValueError(f"unknown deals columns: {unknown}")
        return [
            _id_text(f"d.{quote(pipeline)}", types[pipeline]),
            _id_text(f"d.{quote(stage)}", types[stage]),
            *(f"d.{quote(n)}" for n in others),
        ]

    def ticket_stage_summary(self) -> pd.DataFrame:
        """Open tickets per stage of every ticket pipeline, in pipeline and stage order.

        Columns: pipeline_id, pipeline, stage_id, stage, display_order, count, and the
        tickets' age in days (``median_age_days``, ``oldest_days``) from createdate.
        Closed stages (ticketState CLOSED) are left out; empty open stages are kept.
        """
        frame = self._frame(
            """SELECT s.pipeline_id, p.label AS pipeline, s.id AS stage_id, s.label AS stage,
                      p.display_order AS pipeline_order, s.display_order, t.id AS ticket_id,
                      coalesce(t.createdate, t.created_at) AS opened
               FROM pipeline_stages s
               JOIN pipelines p ON p.object_type = s.object_type AND p.id = s.pipeline_id
               LEFT JOIN tickets t ON t.hs_pipeline = s.pipeline_id AND t.hs_pipeline_stage = s.id
                 AND t.archived = 0
               WHERE s.object_type = 'tickets' AND s.archived = 0 AND s.is_closed = 0 AND p.archived = 0
               ORDER BY p.display_order, s.pipeline_id, s.display_order, s.label""",
        )
        columns = ["pipeline_id", "pipeline", "stage_id", "stage", "display_order", "count"]
        if frame.empty:
            return pd.DataFrame(columns=[*columns, "median_age_days", "oldest_days"])
        now = pd.Timestamp.now(tz="UTC")
        frame["age"] = (
            now - pd.to_datetime(frame["opened"], utc=True, errors="coerce", format="ISO8601")
        ).dt.days
        grouped = frame.groupby(["pipeline_id", "stage_id"], sort=False)
        summary = grouped.agg(
            pipeline=("pipeline", "first"),
            stage=("stage", "first"),
            display_order=("display_order", "first"),
            count=("ticket_id", "count"),
            median_age_days=("age", "median"),
            oldest_days=("age", "max"),
        ).reset_index()
        return summary[[*columns, "median_age_days", "oldest_days"]]

    def open_ticket_ages(self, *, now: dt.datetime | None = None) -> pd.DataFrame:
        """Open tickets by age since createdate: ``bucket`` (in order, empty ones kept), ``count``."""
        buckets = (
            ("under a day", 1),
            ("1-7 days", 7),
            ("1-4 weeks", 28),
            ("1-3 months", 91),
            ("older", None),
        )
        rows = self.conn.execute(
            """SELECT coalesce(t.createdate, t.created_at) FROM tickets t
               WHERE t.archived = 0 AND NOT EXISTS (SELECT 1 FROM pipeline_stages s
                 WHERE s.object_type = 'tickets' AND s.pipeline_id = t.hs_pipeline
                 AND s.id = t.hs_pipeline_stage AND s.is_closed = 1)"""
        ).fetchall()
        opened = pd.to_datetime(
            pd.Series([r[0] for r in rows], dtype="object"), utc=True, errors="coerce", format="ISO8601"
        )
        ages = ((pd.Timestamp(now or dt.datetime.now(dt.UTC))) - opened).dt.total_seconds() / 86400
        counts = []
        low = 0.0
        for label, high in buckets:
            inside = (ages >= low) & (ages < high) if high is not None else ages >= low
            counts.append({"bucket": label, "count": int(inside.sum())})
            low = float(high or 0)
        return pd.DataFrame(counts, columns=["bucket", "count"])

    def first_associated_labels(
        self, object_type: str, ids: Sequence[str], to_type: str
    ) -> dict[str, tuple[str, str]]:
        """For each record of ``ids``, one associated ``to_type`` record: ``{id: (its id, label)}``.

        The label is a contact's name (else email) or a company's name (else domain); the
        lowest id wins when there are several. Stored in either direction.
        """
        check_type(object_type)
        label = {
            "contacts": "coalesce(nullif(trim(coalesce(t.firstname, '') || ' ' || coalesce(t.lastname, '')), ''), "
            "t.email, t.id)",
            "companies": "coalesce(t.name, t.domain, t.id)",
        }[to_type]
        found: dict[str, tuple[str, str]] = {}
        for start in range(0, len(ids), ID_CHUNK):
            chunk = [str(i) for i in ids[start : start + ID_CHUNK]]
            rows = self.conn.execute(
                f"""SELECT a.record_id, t.id, {label} FROM (
                      SELECT from_id AS record_id, to_id AS other_id FROM associations
                        WHERE from_type = ? AND to_type = ? AND from_id IN ({marks(len(chunk))})
                      UNION
                      SELECT to_id AS record_id, from_id AS other_id FROM associations
                        WHERE to_type = ? AND from_type = ? AND to_id IN ({marks(len(chunk))})
                    ) a JOIN {quote(to_type)} t ON t.id = a.other_id AND t.archived = 0
                    ORDER BY a.record_id, t.id""",
                [object_type, to_type, *chunk, object_type, to_type, *chunk],
            ).fetchall()
            for record_id, other_id, text in rows:
                found.setdefault(str(record_id), (str(other_id), str(text)))
        return found

    def deal_figures(
        self,
        *,
        today: dt.date,
        pipeline: str = "pipeline",
        stage: str = "dealstage",
        amount: str = "amount",
        close_date: str = "closedate",
        currency: str | None = None,
        default_currency: str | None = None,
        status: str | None = None,
        status_open: str | None = None,
        status_won: str | None = None,
    ) -> list[dict[str, Any]]:
        """Per currency: open pipeline value, won this quarter (by close date) and the
        probability-weighted forecast.

        One row per currency the deals name, most deals first (then by code, None last): ``{"currency", "deals",
        "open_value", "won_this_quarter", "weighted_forecast"}``; ``currency`` is the code
        upper-cased, or None for deals naming none when ``default_currency`` (the account's,
        which such a deal is in) is not given: never merged into another currency, as adding
        euros to dollars is a figure no one can act on. Without a ``currency`` column every
        deal is in ``default_currency`` (or None). No deals: no rows.

        The keyword arguments name the deals' columns that play those roles (defaults:
        HubSpot's, where a closed stage with probability 1 is won). With a ``status`` column,
        a deal is open or won by its status (``status_open``, ``status_won``), as in Pipedrive.
        """
        start, end = _quarter_bounds(today)
        p, s_, a, c, *rest = self._deal_columns(
            pipeline, stage, amount, close_date, *([status] if status else [])
        )
        code, code_params = self._deal_currency(currency, default_currency)
        if rest:
            is_open, is_won = f"{rest[0]} = ?", f"{rest[0]} = ?"
            opened, won = [status_open], [status_won]
        else:
            is_open, is_won = "s.is_closed = 0", "s.is_closed = 1 AND s.probability >= 1.0"
            opened, won = [], []
        rows = self.conn.execute(
            f"""SELECT {code} AS currency, count(d.id) AS deals,
                 coalesce(sum(CASE WHEN {is_open} THEN {a} END), 0.0),
                 coalesce(sum(CASE WHEN {is_won} AND {c} >= ? AND {c} < ? THEN {a} END), 0.0),
                 coalesce(sum(CASE WHEN {is_open} THEN {a} * coalesce(s.probability, 0) END), 0.0)
               FROM deals d JOIN pipeline_stages s
                 ON s.object_type = 'deals' AND s.pipeline_id = {p} AND s.id = {s_}
               WHERE d.archived = 0
               GROUP BY 1""",
            [*code_params, *opened, *won, start, end, *opened],
        ).fetchall()
        rows = sorted(rows, key=lambda row: (-int(row[1]), row[0] is None, str(row[0] or "")))
        return [
            {
                "currency": None if row[0] is None else str(row[0]),
                "deals": int(row[1]),
                "open_value": float(row[2]),
                "won_this_quarter": float(row[3]),
                "weighted_forecast": float(row[4]),
            }
            for row in rows
        ]

    def company_counts(self, company_ids: Sequence[str]) -> pd.DataFrame:
        """Associated (non-archived) contacts and deals per company, indexed by company id."""
        ids = [str(i) for i in company_ids]
        frame = pd.DataFrame({"contacts": 0, "deals": 0}, index=pd.Index(ids, name="id"))
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            for from_type in ("contacts", "deals"):
                for company_id, n in self.conn.execute(
                    f"""SELECT a.to_id, count(DISTINCT a.from_id) FROM associations a
                        JOIN {quote(from_type)} r ON r.id = a.from_id AND r.archived = 0
                        WHERE a.to_type = 'companies' AND a.from_type = ? AND a.to_id IN ({marks(len(chunk))})
                        GROUP BY a.to_id""",
                    (from_type, *chunk),
                ).fetchall():
                    frame.loc[company_id, from_type] = int(n)
        return frame.astype(int)

    # ---------------------------------------------------------------- helpers

    def _frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        cursor = self.conn.execute(sql, list(params))
        columns = [c[0] for c in cursor.description]
        return pd.DataFrame.from_records(cursor.fetchall(), columns=columns)

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, list(params))
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _filter_clause(
    object_type: str, key: str, value: Any, known: set[str], where: list[str], params: list[Any]
) -> None:
    if key == "ticket_state" and object_type == "tickets":
        # Open or closed comes from the stage's ticketState (docs/INTERACTIONS_API.md §3),
        # never from closed_date; a stage the cache does not know counts as open.
        closed = (
            "EXISTS (SELECT 1 FROM pipeline_stages s WHERE s.object_type = 'tickets' AND s.pipeline_id = "
            "tickets.hs_pipeline AND s.id = tickets.hs_pipeline_stage AND s.is_closed = 1)"
        )
        if str(value).upper() == "CLOSED":
            where.append(closed)
        elif str(value).upper() == "OPEN":
            where.append(f"NOT {closed}")
        else:
            raise ValueError(f"ticket_state is OPEN or CLOSED, not {value!r}")
        return
    if key in ("associated_company", "associated_contact"):
        to_type = "companies" if key == "associated_company" else "contacts"
        where.append(
            "id IN (SELECT from_id FROM associations WHERE from_type = ? AND to_type = ? AND to_id = ?)"
        )
        params.extend([object_type, to_type, str(value)])
        return
    if key not in known:
        raise ValueError(f"cannot filter {object_type} by unknown column {key!r}")
    column = quote(key)
    if value is None:
        where.append(f"{column} IS NULL")
    elif isinstance(value, Mapping):
        if value.get("min") is not None:
            where.append(f"{column} >= ?")
            params.append(value["min"])
        if value.get("max") is not None:
            where.append(f"{column} <= ?")
            params.append(value["max"])
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if not items:
            where.append(_NOTHING)
            return
        where.append(f"{column} IN ({marks(len(items))})")
        params.extend(items)
    else:
        where.append(f"{column} = ?")
        params.append(value)


def _typed(frame: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    for name, prop_type in types.items():
        if name not in frame.columns:
            continue
        if prop_type == "number":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Float64")
        elif prop_type == "bool":
            frame[name] = frame[name].map({1: True, 0: False}).astype("boolean")
        elif prop_type == "datetime":
            frame[name] = pd.to_datetime(frame[name], utc=True, errors="coerce", format="ISO8601")
        elif prop_type == "date":
            frame[name] = pd.to_datetime(frame[name], errors="coerce", format="ISO8601").dt.date
    for name in ("created_at", "updated_at", "synced_at"):
        if name in frame.columns:
            frame[name] = pd.to_datetime(frame[name], utc=True, errors="coerce", format="ISO8601")
    if "archived" in frame.columns:
        frame["archived"] = frame["archived"].astype(bool)
    return frame


def _id_text(column: str, prop_type: str) -> str:
    """SQL for a deals column holding ids, as the text the pipelines tables key them by: ids
    a CRM declares as numbers (Pipedrive's stage_id) sit in a number column as ``7.0``."""
    return f"CAST(CAST({column} AS BIGINT) AS TEXT)" if prop_type == "number" else column


def _quarter_bounds(today: dt.date) -> tuple[str, str]:
    first_month = 3 * ((today.month - 1) // 3) + 1
    start = dt.date(today.year, first_month, 1)
    end = dt.date(today.year + (first_month == 10), (first_month + 2) % 12 + 1, 1)
    return start.isoformat(), end.isoformat()
