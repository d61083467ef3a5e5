"""Records of every CRM object type, kept compact so a portal of 200,000 fits in memory.

A record is a slotted object holding its id, created/updated/archived times (epoch ms) and a
list of values aligned to its type's column table. Values that HubSpot computes
(``hs_object_id``, the created and last-modified properties, a deal's ``hs_is_closed*``)
are derived on read, never stored. Every property value is a string or None.

Callers hold ``SandboxState.lock`` around every call here.
"""

from __future__ import annotations

import bisect
import collections
import random
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from crm.sandbox.associations import DEFAULT_TYPES, AssociationStore
from crm.sandbox.objects.types import CREATED, LAST_MODIFIED, OBJECT_TYPES, SINGULAR, iso

if TYPE_CHECKING:
    from crm.sandbox.config import SandboxConfig
    from crm.sandbox.pipelines import Pipelines
    from crm.sandbox.properties import PropertyRegistry

FIRST_ID = 10_001
# Properties whose value identifies a record through ``idProperty`` besides the
# ``hasUniqueValue`` custom ones: email on contacts; domain on companies (HUBSPOT_API.md §2.4).
NATURAL_KEYS: dict[str, tuple[str, ...]] = {t: () for t in OBJECT_TYPES}
NATURAL_KEYS.update({"contacts": ("email",), "companies": ("domain",)})
_DEAL_FLAGS = ("hs_is_closed", "hs_is_closed_won", "hs_is_closed_lost")


class Record:
    """One CRM object. ``stale`` is (visible_at_ms, previous version or None) under index lag."""

    __slots__ = ("archived_at", "created", "id", "stale", "updated", "values")

    def __init__(self, record_id: int, created: int, updated: int, values: list[str | None]) -> None:
        self.id = record_id
        self.created = created
        self.updated = updated
        self.archived_at: int | None = None
        self.values = values
        self.stale: tuple[int, Record | None] | None = None

    def copy(self) -> Record:
        twin = Record(self.id, self.created, self.updated, list(self.values))
        twin.archived_at = self.archived_at
        return twin


class TypeStore:
    """All records of one object type, ordered by id, with indexes on identifying properties."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.columns: dict[str, int] = {}
        self.records: dict[int, Record] = {}
        self.order: list[int] = []
        self.keys: dict[str, dict[str, int]] = {}

    def column(self, name: str) -> int:
        index = self.columns.get(name)
        if index is None:
            index = self.columns[name] = len(self.columns)
        return index

    def raw(self, record: Record, name: str) -> str | None:
        index = self.columns.get(name)
        if index is None or index >= len(record.values):
            return None
        return record.values[index]

    def put(self, record: Record, name: str, value: str | None) -> None:
        index = self.column(name)
        if index >= len(record.values):
            record.values.extend([None] * (index + 1 - len(record.values)))
        record.values[index] = value


class ObjectStore:
    """Every object type's records plus the associations between them."""

    def __init__(
        self,
        properties: PropertyRegistry,
        pipelines: Pipelines,
        config: SandboxConfig,
        *,
        first_id: int = FIRST_ID,
    ) -> None:
        self.properties = properties
        self.first_id = first_id
        self.pipelines = pipelines
        self.config = config
        self.types: dict[str, TypeStore] = {}
        self.associations = AssociationStore()
        self.next_id = first_id
        # Bumped by every record change; search reuses a cached result while it stands still.
        self.generation = 0
        self.search_cache: collections.OrderedDict[Any, list[Record]] = collections.OrderedDict()
        # Merged-away id -> the id it was merged into, per type (crm/sandbox/merges.py).
        self.merged_into: dict[str, dict[int, int]] = {}
        self.blocked_emails: set[str] = set()
        self._lag_jitter = random.Random()
        self.reset()

    def reset(self) -> None:
        self.types = {t: TypeStore(t) for t in OBJECT_TYPES}
        self.merged_into = {t: {} for t in OBJECT_TYPES}
        # Emails of GDPR-deleted contacts (HubSpot blocklists them).
        self.blocked_emails = set()
        self.associations = AssociationStore()
        self.next_id = self.first_id
        self.generation += 1
        self.search_cache.clear()

    # ----------------------------------------------------------------------- identifying records

    def key_names(self, object_type: str) -> list[str]:
        unique = self.properties.unique_names(object_type)
        return [*NATURAL_KEYS[object_type], *unique] if unique else list(NATURAL_KEYS[object_type])

    def get(self, object_type: str, record_id: int) -> Record | None:
        return self.types[object_type].records.get(record_id)

    def merge_target(self, object_type: str, ident: str) -> str:
        """The id a merged-away ``ident`` now lives on (followed through later merges); else ``ident``."""
        aliases = self.merged_into.get(object_type, {})
        try:
            current = int(ident)
        except (TypeError, ValueError):
            return ident
        seen = 0
        while current in aliases and seen < 1000:
            current, seen = aliases[current], seen + 1
        return str(current)

    def find(
        self, object_type: str, ident: str, id_property: str | None = None, *, archived: bool = False
    ) -> Record | None:
        """The record whose id (or ``id_property`` value) is ``ident``; None if absent or wrong archive state."""
        store = self.types[object_type]
        if id_property and id_property != "hs_object_id":
            index = store.keys.get(id_property)
            if index is None:
                # Archived records leave the indexes, so look them up the slow way.
                matches = [
                    r
                    for r in store.records.values()
                    if (store.raw(r, id_property) or "").lower() == ident.lower()
                ]
                record = matches[0] if matches else None
            else:
                found = index.get(ident.strip().lower())
                record = store.records.get(found) if found is not None else None
                if record is None and archived:
                    matches = [
                        r
                        for r in store.records.values()
                        if r.archived_at is not None
                        and (store.raw(r, id_property) or "").lower() == ident.lower()
                    ]
                    record = matches[0] if matches else None
        else:
            try:
                record = store.records.get(int(ident))
            except (TypeError, ValueError):
                return None
        if record is None or (record.archived_at is not None) != archived:
            return None
        return record

    def key_owner(self, object_type: str, name: str, value: str) -> int | None:
        """The live record id already holding ``value`` for the identifying property ``name``."""
        return self.types[object_type].keys.get(name, {}).get(value.strip().lower())

    def _index(self, object_type: str, record: Record, add: bool) -> None:
        store = self.types[object_type]
        for name in self.key_names(object_type):
            value = store.raw(record, name)
            if not value:
                continue
            index = store.keys.setdefault(name, {})
            key = value.strip().lower()
            if key == value:
                key = value  # Keep one string object instead of an equal copy per record.
            if add:
                index.setdefault(key, record.id)
            elif index.get(key) == record.id:
                del index[key]

    # ----------------------------------------------------------------------------------- reading

    def value(self, object_type: str, record: Record, name: str) -> str | None:
        """A property value as HubSpot sends it, derived ones included."""
        if name == "hs_object_id":
            return str(record.id)
        if name == CREATED[object_type]:
            return iso(record.created)
        if name == LAST_MODIFIED[object_type]:
            return iso(record.updated)
        if object_type == "deals" and name in _DEAL_FLAGS:
            stage = self.pipelines.stage(self.types["deals"].raw(record, "dealstage"))
            if stage is None:
                return "false"
            closed = stage["metadata"]["isClosed"] == "true"
            won = closed and stage["metadata"]["probability"] == "1.0"
            flag = {"hs_is_closed": closed, "hs_is_closed_won": won, "hs_is_closed_lost": closed and not won}[
                name
            ]
            return "true" if flag else "false"
        return self.types[object_type].raw(record, name)

    def millis(self, object_type: str, record: Record, name: str) -> int | None:
        """Fast path for the bookkeeping dates, which search filters and sorts on constantly."""
        if name == CREATED[object_type]:
            return record.created
        if name == LAST_MODIFIED[object_type]:
            return record.updated
        return None

    def defined_names(self, object_type: str, wanted: list[str]) -> list[str]:
        """``wanted`` without unknown names (HubSpot ignores those silently), order kept."""
        seen: set[str] = set()
        names = []
        for name in wanted:
            if name not in seen and self.properties.get(object_type, name) is not None:
                seen.add(name)
                names.append(name)
        return names

    def returned_names(self, object_type: str, wanted: list[str]) -> list[str]:
        """The properties a response carries: those asked for plus HubSpot's three bookkeeping ones."""
        return self.defined_names(
            object_type, [*wanted, CREATED[object_type], LAST_MODIFIED[object_type], "hs_object_id"]
        )

    def to_wire(
        self,
        object_type: str,
        record: Record,
        names: list[str],
        *,
        associations: list[str] | None = None,
        history: list[str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": str(record.id),
            "properties": {name: self.value(object_type, record, name) for name in names},
            "createdAt": iso(record.created),
            "updatedAt": iso(record.updated),
            "archived": record.archived_at is not None,
        }
        if record.archived_at is not None:
            body["archivedAt"] = iso(record.archived_at)
        if history:
            # The sandbox keeps no history: each property's one entry is its current value.
            body["propertiesWithHistory"] = {
                name: (
                    []
                    if self.value(object_type, record, name) is None
                    else [
                        {
                            "value": self.value(object_type, record, name),
                            "timestamp": iso(record.updated),
                            "sourceType": "API",
                        }
                    ]
                )
                for name in history
            }
        if associations:
            linked: dict[str, Any] = {}
            for to_type in associations:
                rows = [
                    {"id": str(to_id), "type": name}
                    for to_id, type_ids in self.live_targets(object_type, record.id, to_type).items()
                    for name in self.associations.v3_names(object_type, to_type, type_ids)
                ]
                if rows:
                    linked[to_type] = {"results": rows}
            if linked:
                body["associations"] = linked
        return body

    def live_targets(self, from_type: str, from_id: int, to_type: str) -> dict[int, tuple[int, ...]]:
        """Associated ids of ``to_type`` (archived ones hidden), ascending."""
        targets = self.associations.targets(from_type, from_id, to_type)
        records = self.types[to_type].records
        return {
            to_id: type_ids
            for to_id, type_ids in sorted(targets.items())
            if (r := records.get(to_id)) is not None and r.archived_at is None
        }

    def page(
        self, object_type: str, after: int | None, limit: int, *, archived: bool
    ) -> tuple[list[Record], int | None]:
        """One list page in id order, and the id the next page starts at (None on the last page)."""
        store = self.types[object_type]
        start = bisect.bisect_left(store.order, after) if after is not None else 0
        found: list[Record] = []
        order = store.order
        for position in range(start, len(order)):
            record = store.records[order[position]]
            if (record.archived_at is not None) == archived:
                if len(found) == limit:
                    return found, record.id
                found.append(record)
        return found, None

    def searchable(
        self, object_type: str, now: int, ids: tuple[float | None, float | None] = (None, None)
    ) -> Iterator[Record]:
        """What the search index holds now: live records, as they were ``index_lag_ms`` ago.

        ``ids`` narrows the scan to ids within [low, high] (either end open), the way an
        index on ``hs_object_id`` would; callers still apply their own filters.
        """
        store = self.types[object_type]
        low, high = ids
        candidates: Iterable[Record]
        if low is None and high is None:
            candidates = store.records.values()
        else:
            order = store.order
            start = bisect.bisect_left(order, low) if low is not None else 0
            stop = bisect.bisect_right(order, high) if high is not None else len(order)
            candidates = (r for r in (store.records.get(i) for i in order[start:stop]) if r is not None)
        for record in candidates:
            version: Record | None = record
            if record.stale is not None:
                if now < record.stale[0]:
                    version = record.stale[1]
                else:
                    record.stale = None
            if version is not None and version.archived_at is None:
                yield version

    # ----------------------------------------------------------------------------------- writing

    def _remember(self, record: Record, now: int, *, new: bool) -> None:
        if self.config.index_lag_ms <= 0 and self.config.index_lag_jitter_ms <= 0:
            return
        jitter = self.config.index_lag_jitter_ms
        visible_at = now + int(
            self.config.index_lag_ms + (self._lag_jitter.uniform(0, jitter) if jitter > 0 else 0)
        )
        if record.stale is not None and now < record.stale[0]:
            previous = record.stale[1]
        else:
            previous = None if new else record.copy()
        record.stale = (visible_at, previous)

    def create(
        self,
        object_type: str,
        values: dict[str, str | None],
        now: int,
        *,
        created: int | None = None,
        lag: bool = True,
    ) -> Record:
        """Add a record; ``lag=False`` (seeding) makes it searchable at once whatever the index lag."""
        store = self.types[object_type]
        self._derive(object_type, None, values, now)
        slots = [(store.column(name), value) for name, value in values.items() if value is not None]
        row: list[str | None] = [None] * (max(i for i, _ in slots) + 1 if slots else 0)
        for index, value in slots:
            row[index] = value
        record = Record(self.next_id, created if created is not None else now, now, row)
        self.next_id += 1
        self.generation += 1
        store.records[record.id] = record
        store.order.append(record.id)
        self._index(object_type, record, add=True)
        if lag:
            self._remember(record, now, new=True)
        return record

    def update(
        self, object_type: str, record: Record, values: dict[str, str | None], now: int
    ) -> dict[str, str | None]:
        """Apply ``values``; returns the properties whose value changed, and bumps last-modified if any did."""
        store = self.types[object_type]
        values = dict(values)
        self._derive(object_type, record, values, now)
        changed = {n: v for n, v in values.items() if store.raw(record, n) != v}
        if not changed:
            # Writing the values a record already has changes nothing, last-modified included.
            return changed
        self.generation += 1
        self._remember(record, now, new=False)
        self._index(object_type, record, add=False)
        for name, value in changed.items():
            store.put(record, name, value)
        record.updated = now
        self._index(object_type, record, add=True)
        return changed

    def _derive(
        self, object_type: str, record: Record | None, values: dict[str, str | None], now: int
    ) -> None:
        """A ticket's ``closed_date`` follows its stage: set at the write that enters a CLOSED
        stage, cleared by one that leaves it (docs/INTERACTIONS_API.md §2), unless given."""
        if object_type != "tickets" or "hs_pipeline_stage" not in values or "closed_date" in values:
            return
        before = self.types["tickets"].raw(record, "hs_pipeline_stage") if record is not None else None
        was_closed, now_closed = (
            self.pipelines.is_ticket_closed(s) for s in (before, values["hs_pipeline_stage"])
        )
        if now_closed and not was_closed:
            values["closed_date"] = iso(now)
        elif was_closed and not now_closed:
            values["closed_date"] = None

    def archive(self, object_type: str, record: Record, now: int) -> None:
        """Archive without touching last-modified, as HubSpot does (HUBSPOT_API.md §2.2)."""
        self.generation += 1
        self._remember(record, now, new=False)
        self._index(object_type, record, add=False)
        record.archived_at = now

    def unarchive(self, object_type: str, record: Record, now: int) -> None:
        """Restore from the recycle bin: live again, last-modified moves (observed on HubSpot)."""
        self.generation += 1
        self._remember(record, now, new=False)
        record.archived_at = None
        record.updated = now
        self._index(object_type, record, add=True)

    def remove(self, object_type: str, record: Record) -> None:
        """Drop a record for good (merged away or GDPR-deleted): no archive, no search, no list."""
        store = self.types[object_type]
        self.generation += 1
        self._index(object_type, record, add=False)
        store.records.pop(record.id, None)
        position = bisect.bisect_left(store.order, record.id)
        if position < len(store.order) and store.order[position] == record.id:
            del store.order[position]

    def describe(self, object_type: str, record: Record) -> dict[str, Any]:
        """Everything about a record, for the admin truth route."""
        store = self.types[object_type]
        names = [p.name for p in self.properties.live(object_type)]
        body = self.to_wire(object_type, record, names)
        body["properties"] = {k: v for k, v in body["properties"].items() if v is not None}
        extra = {n: store.raw(record, n) for n in store.columns if n not in body["properties"]}
        body["properties"].update({k: v for k, v in extra.items() if v is not None})
        body["associations"] = {
            to_type: [
                {"id": str(to_id), "types": list(type_ids)}
                for to_id, type_ids in sorted(
                    self.associations.targets(object_type, record.id, to_type).items()
                )
            ]
            for to_type in OBJECT_TYPES
            if (object_type, to_type) in DEFAULT_TYPES
        }
        return body

    def kind(self, object_type: str) -> str:
        """The upper-case singular HubSpot uses in batch error messages: CONTACT, COMPANY, DEAL, TICKET…"""
        return SINGULAR[object_type].upper()
