"""One measured operation in a fresh process: ``python -m crm.bench.worker OP < args.json``.

Each pull, push and SDK run of the benchmark runs here, the way a user's CLI run would:
its own interpreter, its own rate limiter (which starts empty and learns the portal's
budget from HubSpot's headers), its own peak memory to report. The sandbox runs in yet
another process, so the client under test never shares a GIL with the server.

Arguments arrive as JSON on stdin, so the access token never shows in a process list.
The last stdout line is ``BENCH-RESULT {json}``: the operation's own result plus
``seconds`` (wall time of the operation, without interpreter start-up) and
``peak_mb`` (this process's VmHWM).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import httpx2

RESULT_PREFIX = "BENCH-RESULT "


def _settings(args: dict[str, Any]) -> Any:
    from crm.config import load_settings

    return load_settings(
        {"HUBSPOT_ACCESS_TOKEN": args["token"], "HUBSPOT_BASE_URL": args["url"], "CRM_DB": args["db"]}, {}
    )


_PATH_TYPE = re.compile(
    r"^/crm/(?:v\d+/objects|objects/[\w-]+|v\d+/associations|associations/[\w-]+|v\d+/properties|"
    r"properties/[\w-]+|v\d+/pipelines|pipelines/[\w-]+)/(contacts|companies|deals|0-1|0-2|0-3)\b"
)
_TYPE_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals"}


def object_type_of(path: str) -> str:
    """The object type a HubSpot request path is about; "portal" for owners, account and the like.

    Association reads count for their *from* type, property and pipeline reads for theirs.
    """
    match = _PATH_TYPE.match(path)
    if match is None:
        return "portal"
    return _TYPE_IDS.get(match.group(1), match.group(1))


class _RequestTap:
    """Counts the requests a client sends, per object type, on their way to the real transport.

    The sandbox's own stats count by route template, which hides the object type; the
    incremental target is per object type, so the worker taps its client's transport.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.by_type: Counter[str] = Counter()
        self.in_flight = 0
        # (seconds since the tap was made, requests in flight after this one started)
        self.starts: list[tuple[float, int]] = []
        self._t0 = time.perf_counter()
        self._lock = threading.Lock()

    def handle_request(self, request: Any) -> Any:
        with self._lock:
            self.by_type[object_type_of(request.url.path)] += 1
            self.in_flight += 1
            self.starts.append((time.perf_counter() - self._t0, self.in_flight))
        try:
            return self.inner.handle_request(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    def timeline(self) -> list[list[float]]:
        """Per second of the run: requests started and the most in flight at once."""
        if not self.starts:
            return []
        seconds = int(self.starts[-1][0]) + 1
        started = [0] * seconds
        peak = [0] * seconds
        for at, flying in self.starts:
            started[int(at)] += 1
            peak[int(at)] = max(peak[int(at)], flying)
        return [[n, p] for n, p in zip(started, peak, strict=True)]

    def close(self) -> None:
        self.inner.close()


def sync(args: dict[str, Any]) -> dict[str, Any]:
    """``crm.sync.run_sync`` of ``args["kind"]`` against the sandbox into ``args["db"]``."""
    from crm.oauth import open_client
    from crm.sync import run_sync

    settings = _settings(args)
    client = open_client(settings)
    # The client keeps its own transport (pool sizes and all); the tap only counts. Should
    # the client's insides change, the run goes on untapped and per-type counts are absent.
    http = getattr(getattr(client, "transport", None), "http", None)
    tap = _RequestTap(getattr(http, "_transport", None))
    if tap.inner is not None:
        http._transport = tap  # type: ignore[union-attr]
    try:
        started = time.perf_counter()
        # "live": the pull is told live updates are healthy (association changes arrive by
        # webhooks or the journal), as they are in a deployment that has them.
        live = args.get("live")
        summary = run_sync(
            settings, kind=args["kind"], trigger="bench", client=client, live_associations=live
        )
        seconds = time.perf_counter() - started
        client_stats = client.stats.snapshot()
    finally:
        client.close()
    return {
        "seconds": seconds,
        "summary": summary,
        "counts": _counts(settings),
        "requests_by_type": dict(tap.by_type) if tap.inner is not None else None,
        "timeline": tap.timeline(),
        "client_stats": client_stats,
    }


_PD_ENTITIES = ("persons", "organizations", "deals")


def pipedrive_kind(method: str, path: str, params: Mapping[str, str]) -> str:
    """The kind of a Pipedrive request the generic pull sends (``params``: its query names).

    ``list``: a page of the full walk (``GET /api/v2/persons`` with a cursor, of the whole type
    or of one update-time window: ``updated_since``/``updated_until`` unsorted); ``assoc``: the
    same route asked for records by ``ids``, which is how ``PipedriveApi.associations`` reads
    the links; ``catchup``: reads sorted by update time or by ``status`` (the incremental
    catch-up after each walk, the deleted-deals feed); ``metadata``: fields, users, pipelines,
    stages, and the one-record probe (``limit=1`` by update time) that places the windows.
    """
    parts = [p for p in path.split("/") if p]
    if method == "GET" and len(parts) == 3 and parts[:2] == ["api", "v2"] and parts[2] in _PD_ENTITIES:
        if "ids" in params:
            return "assoc"
        if "sort_by" in params and params.get("limit") == "1":
            return "metadata"
        if "sort_by" in params or "status" in params:
            return "catchup"
        return "list"
    if method == "GET" and len(parts) >= 3 and parts[0] == "api":
        return "metadata"
    return "other"


class _PipedriveTap(httpx2.BaseTransport):
    """A transport that counts the Pipedrive client's requests by kind, with the seconds each
    kind spent waiting on the network and the 429s it met (retries are counted too), the
    seconds at least one request was in flight and the most in flight at once."""

    def __init__(self) -> None:
        self.inner = httpx2.HTTPTransport()
        self.count: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}
        self.limited: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.busy_s = 0.0
        self._busy_since = 0.0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        kind = pipedrive_kind(request.method, request.url.path, dict(request.url.params))
        started = time.perf_counter()
        with self._lock:
            if self.in_flight == 0:
                self._busy_since = started
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            response = self.inner.handle_request(request)
        finally:
            with self._lock:
                self.in_flight -= 1
                if self.in_flight == 0:
                    self.busy_s += time.perf_counter() - self._busy_since
        took = time.perf_counter() - started
        with self._lock:
            self.count[kind] += 1
            self.seconds[kind] = self.seconds.get(kind, 0.0) + took
            if response.status_code == 429:
                self.limited[kind] += 1
        return response

    def close(self) -> None:
        self.inner.close()

    def report(self) -> dict[str, Any]:
        return {
            "requests": dict(self.count),
            "request_seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "status_429": dict(self.limited),
            "busy_seconds": round(self.busy_s, 3),
            "peak_in_flight": self.peak_in_flight,
        }


def pd_sync(args: dict[str, Any]) -> dict[str, Any]:
    """A full ``run_sync`` of a Pipedrive company through the generic pull (``api=``).

    The API is opened with the API token the sandbox minted, as ``connect pipedrive --token``
    would, over a transport that counts requests by kind.
    """
    import dataclasses

    from crm.config import load_settings
    from crm.pipedrive.client import ApiToken
    from crm.pipedrive.provider import Pipedrive
    from crm.sync import run_sync

    base = load_settings({"HUBSPOT_ACCESS_TOKEN": "unused", "CRM_DB": args["db"]}, {})
    settings = dataclasses.replace(base, crm="pipedrive", base_url=args["url"])
    tap = _PipedriveTap()
    api = Pipedrive().open(settings, ApiToken(args["token"]), base_url=args["url"], transport=tap)
    try:
        started = time.perf_counter()
        summary = run_sync(settings, kind=args.get("kind", "full"), trigger="bench", api=api)
        seconds = time.perf_counter() - started
    finally:
        api.close()
    return {"seconds": seconds, "summary": summary, "counts": _counts(settings), **tap.report()}


def push_edits(args: dict[str, Any]) -> dict[str, Any]:
    """Queue one job-title edit on each of ``args["count"]`` cached contacts, then push."""
    from crm import store
    from crm.sync import push, queue_edits

    settings = _settings(args)
    with store.open(settings) as db:
        frame, _ = db.queries.query_records(
            "contacts",
            sort="id",
            offset=int(args.get("offset", 0)),
            limit=int(args["count"]),
            columns=["jobtitle"],
        )
    stamp = args.get("stamp", "bench")
    edits = {record_id: {"jobtitle": f"Bench title {stamp} {n}"} for n, record_id in enumerate(frame.index)}
    queued_at = time.perf_counter()
    queue_edits(settings, "contacts", edits, by="bench@example.com")
    started = time.perf_counter()
    result = push(settings, by="bench@example.com")
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "queue_seconds": started - queued_at,
        "count": len(edits),
        "result": _push_summary(result),
    }


def push_new(args: dict[str, Any]) -> dict[str, Any]:
    """Queue ``args["count"]`` new contacts, then push them (batch upsert keyed on email)."""
    from crm.sync import push, queue_new_contact

    settings = _settings(args)
    stamp = args.get("stamp", "bench")
    queued_at = time.perf_counter()
    for n in range(int(args["count"])):
        queue_new_contact(
            settings,
            {"email": f"bench.{stamp}.{n}@example.com", "firstname": "Bench", "lastname": f"Contact {n}"},
            by="bench@example.com",
        )
    started = time.perf_counter()
    result = push(settings, by="bench@example.com")
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "queue_seconds": started - queued_at,
        "count": int(args["count"]),
        "result": _push_summary(result),
    }


def _push_summary(result: dict[str, Any]) -> dict[str, Any]:
    # The per-record results are a thousand rows; the benchmark needs the counts.
    summary = {k: v for k, v in result.items() if k != "results"}
    statuses: dict[str, int] = {}
    for item in result.get("results") or []:
        status = str(item.get("status"))
        statuses[status] = statuses.get(status, 0) + 1
    summary["statuses"] = statuses
    return summary


def sdk(args: dict[str, Any]) -> dict[str, Any]:
    """What a user of the official SDK would run: ``get_all`` per object type, page after page.

    Associations come inline with the list pages (``associations=[...]``), as the SDK
    offers; a 429 is retried by urllib3 honouring Retry-After, as HubSpot's README shows.
    """
    from hubspot import HubSpot
    from urllib3.util.retry import Retry

    retry = Retry(
        total=8,
        backoff_factor=0.5,
        status_forcelist=(429, 500, 502, 503, 504),
        respect_retry_after_header=True,
    )
    api = HubSpot(access_token=args["token"], host=args["url"], retry=retry)
    counts: dict[str, int] = {}
    links: dict[str, int] = {}
    started = time.perf_counter()
    for object_type, spec in args["objects"].items():
        discovery = getattr(api.crm, object_type)
        kwargs: dict[str, Any] = {"properties": spec["properties"]}
        if spec.get("associations"):
            kwargs["associations"] = spec["associations"]
        records = discovery.get_all(**kwargs)
        counts[object_type] = len(records)
        for record in records:
            for to_type, block in (record.associations or {}).items():
                key = f"{object_type}->{to_type}"
                links[key] = links.get(key, 0) + len(block.results or [])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "counts": counts, "associations": links}


def fill(args: dict[str, Any]) -> dict[str, Any]:
    """Append synthetic records to a synced cache (``crm.store.synthetic``)."""
    from crm import store
    from crm.store.synthetic import fill_synthetic, settle

    with store.open(args["db"]) as db:
        started = time.perf_counter()
        counts = fill_synthetic(
            db,
            contacts=int(args.get("contacts", 0)),
            companies=int(args.get("companies", 0)),
            deals=int(args.get("deals", 0)),
            seed=int(args.get("seed", 1)),
        )
        seconds = time.perf_counter() - started
        settle(db)
    return {"seconds": seconds, "counts": counts}


def fill_interactions(args: dict[str, Any]) -> dict[str, Any]:
    """Append synthetic engagements and tickets to a filled cache (``crm.store.synthetic``)."""
    from crm import store
    from crm.store.synthetic import fill_interactions as fill
    from crm.store.synthetic import settle

    with store.open(args["db"]) as db:
        started = time.perf_counter()
        filled = fill(
            db,
            interactions=int(args["interactions"]),
            tickets=int(args.get("tickets", 0)),
            heavy=int(args.get("heavy", 5_000)),
            light=int(args.get("light", 5)),
            seed=int(args.get("seed", 1)),
        )
        seconds = time.perf_counter() - started
        settle(db)
    return {"seconds": seconds, **filled}


def _counts(settings: Any) -> dict[str, int]:
    from crm import store

    with store.open(settings) as db:
        return db.queries.table_sizes()


OPERATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "sync": sync,
    "pd_sync": pd_sync,
    "push_edits": push_edits,
    "push_new": push_new,
    "sdk": sdk,
    "fill": fill,
    "fill_interactions": fill_interactions,
}


def main(argv: list[str]) -> int:
    from crm.bench.report import peak_rss_mb

    result = OPERATIONS[argv[0]](json.loads(sys.stdin.read()))
    result["peak_mb"] = peak_rss_mb()
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
