"""CRM search: filter groups, one sort, offset paging, the 10,000-result cap, index lag.

Rules from HUBSPOT_API.md §2.6: filters in a group are ANDed and groups ORed (at most 5
groups, 6 filters per group, 18 in all); string matching is case-insensitive except for
enumeration values; archived records never appear; results carry no associations.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crm.sandbox import messages as msg
from crm.sandbox.objects.types import (
    CREATED,
    DEFAULT_PROPERTIES,
    LAST_MODIFIED,
    QUERY_PROPERTIES,
    parse_time,
    resolve_type,
)
from crm.sandbox.wire import bad_request

if TYPE_CHECKING:
    from crm.sandbox.objects.models import ObjectStore, Record
    from crm.sandbox.state import SandboxState

RESULT_CAP = 10_000
SEARCH_CACHE_SIZE = 4
MAX_LIMIT = 200
MAX_GROUPS, MAX_PER_GROUP, MAX_FILTERS = 5, 6, 18
MAX_QUERY = 3000
VALUE_OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
OPERATORS = VALUE_OPERATORS | {"BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

Getter = Callable[["Record"], Any]
Predicate = Callable[["Record"], bool]


def run_search(state: SandboxState, object_type: str, body: dict[str, Any], now: int) -> dict[str, Any]:
    """Answer one search request body. Raises SandboxHTTPError (400) for an invalid request."""
    store = state.objects
    groups = _filter_groups(body.get("filterGroups"))
    predicates = [[_compile(store, object_type, f) for f in group] for group in groups]
    sort_name, descending = _sort(body.get("sorts"))
    limit, offset = _limit(body.get("limit")), _offset(body.get("after"))
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        query = str(query)
    if query and len(query) > MAX_QUERY:
        raise bad_request(msg.SEARCH_QUERY_TOO_LONG.format(length=len(query)))
    if offset >= RESULT_CAP:
        raise bad_request(msg.SEARCH_RESULT_CAP.format(after=offset))

    if sort_name is not None:
        _kind(store, object_type, sort_name)
    # Paging through one search re-sends the same body with a new ``after``: while no record
    # changed (and no index lag makes results time-dependent), reuse the sorted matches.
    key = None
    if state.config.index_lag_ms <= 0 and state.config.index_lag_jitter_ms <= 0:
        key = (
            object_type,
            store.generation,
            store.associations.generation,
            store.properties.generation,
            json.dumps(
                {k: v for k, v in body.items() if k not in ("after", "limit", "properties")},
                sort_keys=True,
                default=str,
            ),
        )
    matches = store.search_cache.get(key) if key is not None else None
    if matches is None:
        matches = _matches(
            store, object_type, predicates, query, sort_name, descending, now, _id_bounds(groups)
        )
        if key is not None:
            store.search_cache[key] = matches
            while len(store.search_cache) > SEARCH_CACHE_SIZE:
                store.search_cache.popitem(last=False)

    names = body.get("properties")
    wanted = (
        [str(n) for n in names]
        if isinstance(names, list) and names
        else list(DEFAULT_PROPERTIES[object_type])
    )
    wanted = store.returned_names(object_type, wanted)
    page = matches[offset : offset + limit]
    result: dict[str, Any] = {
        "total": len(matches),
        "results": [store.to_wire(object_type, r, wanted) for r in page],
    }
    following = offset + limit
    # Never offer a page at or past the cap: HubSpot answers such a request with 400.
    if following < len(matches) and following < RESULT_CAP:
        result["paging"] = {"next": {"after": str(following)}}
    return result


def _matches(
    store: ObjectStore,
    object_type: str,
    predicates: list[list[Predicate]],
    query: str | None,
    sort_name: str | None,
    descending: bool,
    now: int,
    ids: tuple[float | None, float | None] = (None, None),
) -> list[Record]:
    matcher = _query_matcher(store, object_type, query) if query and query.strip() else None
    matches = [
        record
        for record in store.searchable(object_type, now, ids)
        if (not predicates or any(all(p(record) for p in group) for group in predicates))
        and (matcher is None or matcher(record))
    ]
    if sort_name is None:
        # With no sort, results come oldest-created first.
        matches.sort(key=lambda r: (r.created, r.id))
        return matches
    getter = _getter(store, object_type, sort_name)
    keyed = [(getter(r), r) for r in matches]
    present = [pair for pair in keyed if pair[0] is not None]
    absent = [r for value, r in keyed if value is None]
    present.sort(key=lambda pair: (pair[0], pair[1].id), reverse=descending)
    return [r for _, r in present] + absent


def _id_bounds(groups: list[list[dict[str, Any]]]) -> tuple[float | None, float | None]:
    """Ids every match must lie within, from ``hs_object_id`` filters of a single group.

    Walking an id range by search (as a full pull does) then scans that range, not the
    whole type, as an index would. The bounds are loose; the filters still decide.
    """
    low: float | None = None
    high: float | None = None
    if len(groups) != 1:
        return low, high
    for spec in groups[0]:
        if spec.get("propertyName") != "hs_object_id":
            continue
        operator = str(spec.get("operator") or "EQ").upper()
        try:
            value = float(spec.get("value"))  # type: ignore[arg-type]
            top = float(spec.get("highValue")) if operator == "BETWEEN" else value  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if operator in ("GT", "GTE", "EQ", "BETWEEN"):
            low = value if low is None else max(low, value)
        if operator in ("LT", "LTE", "EQ", "BETWEEN"):
            high = top if high is None else min(high, top)
    return low, high


def _filter_groups(raw: Any) -> list[list[dict[str, Any]]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request(msg.SEARCH_TOO_MANY_GROUPS.format(count="?"))
    if len(raw) > MAX_GROUPS:
        raise bad_request(msg.SEARCH_TOO_MANY_GROUPS.format(count=len(raw)))
    groups = []
    for group in raw:
        filters = group.get("filters") if isinstance(group, dict) else None
        filters = [f for f in filters or [] if isinstance(f, dict)]
        if len(filters) > MAX_PER_GROUP:
            raise bad_request(msg.SEARCH_TOO_MANY_FILTERS.format(count=len(filters)))
        if filters:
            groups.append(filters)
    total = sum(len(g) for g in groups)
    if total > MAX_FILTERS:
        raise bad_request(msg.SEARCH_TOO_MANY_FILTERS_TOTAL.format(count=total))
    return groups


def _sort(raw: Any) -> tuple[str | None, bool]:
    if not raw:
        return None, False
    if not isinstance(raw, list):
        raw = [raw]
    if len(raw) > 1:
        raise bad_request(msg.SEARCH_TOO_MANY_SORTS.format(count=len(raw)))
    sort = raw[0]
    # The reference sends sorts as bare property names (ascending); the guides as objects.
    if isinstance(sort, str):
        if sort.startswith("-"):
            return sort[1:], True
        return sort, False
    if isinstance(sort, dict) and sort.get("propertyName"):
        return str(sort["propertyName"]), str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
    return None, False


def _limit(raw: Any) -> int:
    if raw is None:
        return 10
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise bad_request(msg.INVALID_LIMIT) from None
    if value < 1:
        raise bad_request(msg.INVALID_LIMIT)
    return min(value, MAX_LIMIT)


def _offset(raw: Any) -> int:
    if raw in (None, ""):
        return 0
    try:
        value = int(str(raw))
    except ValueError:
        raise bad_request(msg.INVALID_AFTER) from None
    if value < 0:
        raise bad_request(msg.INVALID_AFTER)
    return value


def _kind(store: ObjectStore, object_type: str, name: str) -> str:
    prop = store.properties.get(object_type, name)
    if prop is None:
        raise bad_request(msg.SEARCH_UNKNOWN_PROPERTY.format(name=name))
    if prop.type == "number":
        return "number"
    if prop.type in ("date", "datetime"):
        return "time"
    if prop.type in ("enumeration", "bool"):
        return "enum"
    return "text"


def _getter(store: ObjectStore, object_type: str, name: str) -> Getter:
    kind = _kind(store, object_type, name)
    if kind == "time":
        if name in (CREATED[object_type], LAST_MODIFIED[object_type]):
            return lambda r: store.millis(object_type, r, name)
        return lambda r: _time_or_none(store.value(object_type, r, name))
    if kind == "number":
        return lambda r: _number_or_none(store.value(object_type, r, name))
    if kind == "text":
        return lambda r: v.lower() if (v := store.value(object_type, r, name)) is not None else None
    return lambda r: store.value(object_type, r, name)


def _operand(kind: str, name: str, operator: str, value: Any) -> Any:
    if value is None:
        raise bad_request(msg.SEARCH_MISSING_VALUE.format(name=name, operator=operator, field="value"))
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if kind == "time":
        ms = parse_time(text)
        if ms is None:
            raise bad_request(msg.DATETIME_INVALID.format(value=text, name=name))
        return ms
    if kind == "number":
        number = _number_or_none(text)
        if number is None:
            raise bad_request(msg.NUMBER_INVALID.format(value=text, name=name))
        return number
    if kind == "text":
        return text.lower()
    return text


def _compile(store: ObjectStore, object_type: str, spec: dict[str, Any]) -> Predicate:
    name = str(spec.get("propertyName") or "")
    operator = str(spec.get("operator") or "EQ").upper()
    if operator not in OPERATORS:
        raise bad_request(msg.SEARCH_BAD_OPERATOR.format(operator=operator))
    if name.startswith("associations."):
        return _association_filter(store, object_type, name, operator, spec)
    kind = _kind(store, object_type, name)
    get = _getter(store, object_type, name)
    if operator == "HAS_PROPERTY":
        return lambda r: get(r) is not None
    if operator == "NOT_HAS_PROPERTY":
        return lambda r: get(r) is None
    if operator in ("IN", "NOT_IN"):
        raw_values = spec.get("values")
        if not isinstance(raw_values, list):
            raise bad_request(msg.SEARCH_MISSING_VALUE.format(name=name, operator=operator, field="values"))
        values = {_operand(kind, name, operator, v) for v in raw_values}
        if operator == "IN":
            return lambda r: get(r) in values
        return lambda r: get(r) not in values
    if operator == "BETWEEN":
        low = _operand(kind, name, operator, spec.get("value"))
        high_raw = spec.get("highValue")
        if high_raw is None:
            raise bad_request(
                msg.SEARCH_MISSING_VALUE.format(name=name, operator=operator, field="highValue")
            )
        high = _operand(kind, name, operator, high_raw)
        return lambda r: (v := get(r)) is not None and low <= v <= high
    operand = _operand(kind, name, operator, spec.get("value"))
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        contains = _token_matcher(str(spec.get("value")))

        def raw_get(record: Any) -> Any:
            return store.value(object_type, record, name)

        if operator == "CONTAINS_TOKEN":
            return lambda r: (v := raw_get(r)) is not None and contains(v)
        return lambda r: (v := raw_get(r)) is None or not contains(v)
    if operator == "EQ":
        return lambda r: get(r) == operand
    if operator == "NEQ":
        return lambda r: get(r) != operand
    compare: Callable[[Any], bool] = {
        "LT": lambda v: v < operand,
        "LTE": lambda v: v <= operand,
        "GT": lambda v: v > operand,
        "GTE": lambda v: v >= operand,
    }[operator]
    return lambda r: (v := get(r)) is not None and compare(v)


def _association_filter(
    store: ObjectStore, object_type: str, name: str, operator: str, spec: dict[str, Any]
) -> Predicate:
    to_type = resolve_type(name.split(".", 1)[1])
    if to_type is None or to_type == object_type:
        raise bad_request(msg.SEARCH_UNKNOWN_PROPERTY.format(name=name))

    def linked(r: Record) -> set[str]:
        return {str(i) for i in store.live_targets(object_type, r.id, to_type)}

    if operator == "HAS_PROPERTY":
        return lambda r: bool(linked(r))
    if operator == "NOT_HAS_PROPERTY":
        return lambda r: not linked(r)
    if operator in ("IN", "NOT_IN"):
        wanted = {str(v) for v in spec.get("values") or []}
        if operator == "IN":
            return lambda r: bool(linked(r) & wanted)
        return lambda r: not linked(r) & wanted
    value = spec.get("value")
    if value is None:
        raise bad_request(msg.SEARCH_MISSING_VALUE.format(name=name, operator=operator, field="value"))
    if operator == "NEQ":
        return lambda r: str(value) not in linked(r)
    return lambda r: str(value) in linked(r)


def _token_matcher(pattern: str) -> Callable[[str], bool]:
    """CONTAINS_TOKEN: a whole-token match, ``*`` as a wildcard, case-insensitive."""
    wanted = pattern.strip().lower()
    if "*" in wanted:
        regex = re.compile(fnmatch.translate(wanted))

        def matches(value: str) -> bool:
            lowered = value.lower()
            return bool(regex.match(lowered)) or any(regex.match(t) for t in _TOKEN.findall(lowered))

        return matches
    return lambda value: value.lower() == wanted or wanted in _TOKEN.findall(value.lower())


def _query_matcher(store: ObjectStore, object_type: str, query: str) -> Predicate:
    """Every word of ``query`` must start a token of one of the type's searchable properties."""
    words = _TOKEN.findall(query.lower()) or [query.strip().lower()]
    # A word starts a token when nothing alphanumeric precedes it.
    patterns = [re.compile(r"(?<![^\W_])" + re.escape(w)) for w in words]
    names = [n for n in QUERY_PROPERTIES[object_type] if store.properties.get(object_type, n) is not None]

    def matches(record: Record) -> bool:
        text = "\n".join(v for n in names if (v := store.value(object_type, record, n))).lower()
        return all(p.search(text) for p in patterns)

    return matches


def _time_or_none(value: str | None) -> int | None:
    return parse_time(value) if value else None


def _number_or_none(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
