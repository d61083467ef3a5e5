"""The pull and push scenarios, run against one sandbox process in one benchmark run.

Requests are counted by the sandbox (``/_sandbox/stats``, before and after each step), so
our client and the official SDK are counted by the same meter. Each measured operation
runs in a fresh worker process (``crm.bench.worker``).
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crm.bench.options import BenchOptions, portal_sizes
from crm.bench.processes import BenchError, SandboxProcess, run_worker
from crm.store.schema import BASE_COLUMNS

KINDS = ("list", "search", "batch", "assoc", "other")
# A full pull starts once at most this share of the burst window is taken by earlier steps.
_QUIET_SHARE = 0.1


def classify(route: str) -> str:
    """The request kind of a sandbox stats key such as ``GET /crm/v3/objects/{objectType}``."""
    method, _, path = route.partition(" ")
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "crm" and "associations" in parts[1:3]:
        return "assoc"
    objects = len(parts) >= 4 and parts[0] == "crm" and "objects" in parts[1:3]
    if objects and parts[-1] == "search" and method == "POST":
        return "search"
    if objects and len(parts) >= 2 and parts[-2] == "batch":
        return "batch"
    if objects and len(parts) == 4 and method == "GET":
        return "list"
    return "other"


class Meter:
    """Requests, 429s and statuses served by the sandbox during one step."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        assert sandbox.admin is not None
        self._admin = sandbox.admin
        self.before = self._admin.stats()

    def read(self) -> dict[str, Any]:
        after = self._admin.stats()
        routes: Counter[str] = Counter()
        for route, n in after.get("requests", {}).items():
            delta = n - self.before.get("requests", {}).get(route, 0)
            if delta and "/_sandbox/" not in route:
                routes[route] += delta
        kinds = {k: 0 for k in KINDS}
        for route, n in routes.items():
            kinds[classify(route)] += n
        kinds_total = dict(kinds, total=sum(kinds.values()))
        limited = {
            key: int(after.get(key, 0)) - int(self.before.get(key, 0))
            for key in ("rate_limited", "burst_rate_limited", "search_rate_limited")
        }
        return {
            "requests": kinds_total,
            "routes": dict(routes),
            "status_429": limited["rate_limited"],
            "status_429_by_budget": {
                "burst": limited["burst_rate_limited"],
                "search": limited["search_rate_limited"],
            },
        }


class PullBench:
    """Seeds portals and measures full pulls, the SDK, incremental pulls and pushes."""

    def __init__(
        self, options: BenchOptions, sandbox: SandboxProcess, workdir: Path, log: Callable[[str], None]
    ) -> None:
        self.options = options
        self.sandbox = sandbox
        assert sandbox.admin is not None
        self.admin = sandbox.admin
        self.workdir = workdir
        self.log = log
        self.token = ""
        self.portal: dict[str, int] = {}
        self.portal_db: Path | None = None
        self.portal_full: dict[str, Any] | None = None
        # (start, end, requests) of every step that spent the burst budget.
        self._steps: list[tuple[float, float, int]] = []

    # ------------------------------------------------------------------ set-up

    def configure(self) -> dict[str, Any]:
        o = self.options
        self.admin.configure(
            latency_ms=o.latency_ms,
            jitter_ms=o.jitter_ms,
            burst_limit=o.burst_limit,
            burst_window_s=o.burst_window_s,
            search_limit=o.search_limit,
        )
        config = self.admin.config()
        bound = config["burst_limit"] / config["burst_window_s"] * 100 + config["search_limit"] * 200
        return {
            "url": self.sandbox.url,
            "latency_ms": config["latency_ms"],
            "jitter_ms": config["jitter_ms"],
            "burst_limit": config["burst_limit"],
            "burst_window_s": config["burst_window_s"],
            "search_limit": config["search_limit"],
            "bound_records_per_s": bound,
            "bound_note": "burst limit / window x 100 records per list page + search limit x 200 "
            "records per search page",
        }

    def seed(self, contacts: int) -> dict[str, Any]:
        """Re-seed the sandbox with a portal of ``contacts`` contacts (timed on its own)."""
        sizes = portal_sizes(contacts)
        started = time.perf_counter()
        counts = self.admin.reset(seed=self.options.seed, owners=12, tokens=True, **sizes)
        seconds = time.perf_counter() - started
        self.token = self.admin.private_app_token()
        self.portal = sizes
        self._steps.clear()  # a reset empties the sandbox's windows too
        row = {
            **sizes,
            "seconds": round(seconds, 2),
            "sandbox_peak_mb": self.sandbox.peak_mb(),
            "counts": counts,
        }
        self.log(
            f"seeded {contacts:,} contacts, {sizes['companies']:,} companies, {sizes['deals']:,} deals "
            f"in {seconds:.1f} s"
        )
        return row

    def _args(self, db: Path | None = None, **extra: Any) -> dict[str, Any]:
        return {"url": self.sandbox.url, "token": self.token, "db": str(db or ""), **extra}

    def _settings(self, db: Path) -> Any:
        from crm.config import load_settings

        return load_settings(
            {"HUBSPOT_ACCESS_TOKEN": self.token, "HUBSPOT_BASE_URL": self.sandbox.url, "CRM_DB": str(db)}, {}
        )

    def _in_window(self, now: float) -> float:
        """Requests of earlier steps still inside the sandbox's rolling window at ``now``.

        A step's requests are taken as spread evenly over its duration.
        """
        window = self.options.burst_window_s
        total = 0.0
        for start, end, count in self._steps:
            overlap = min(end, now) - max(start, now - window)
            if overlap > 0:
                total += count * min(1.0, overlap / max(end - start, 1e-6))
        return total

    def _await_budget(self, needed: float) -> None:
        """Wait until the rolling window has room for ``needed`` requests.

        A full pull asks for nearly the whole window, so it starts like a pull on a portal
        that has been quiet for ten seconds; a window only empties with time, so this
        waits for time, bounded by one window length.
        """
        limit = self.options.burst_limit
        needed = min(max(needed, 0.0), limit * (1 - _QUIET_SHARE))
        deadline = time.monotonic() + self.options.burst_window_s * 1.1
        while self._in_window(time.monotonic()) > limit - needed and time.monotonic() < deadline:
            threading.Event().wait(0.25)

    def _measured(
        self, op: str, args: dict[str, Any], timeout: float, budget: float
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        self._await_budget(budget)
        meter = Meter(self.sandbox)
        started = time.monotonic()
        try:
            result = run_worker(op, args, timeout=timeout)
        finally:
            ended = time.monotonic()
        counted = meter.read()
        self._steps.append((started, ended, counted["requests"]["total"]))
        return result, counted

    def _timeout(self, requests_expected: float) -> float:
        # Generous: ten times what the rate limit alone allows, plus start-up.
        per_s = self.options.burst_limit / self.options.burst_window_s
        return 120.0 + 10 * requests_expected / per_s

    # ------------------------------------------------------------------ full pull

    def full_pull(self, contacts: int, db: Path) -> dict[str, Any]:
        """``run_sync(kind="full")`` into a fresh cache; the portal must be seeded."""
        records = sum(self.portal.values())
        row: dict[str, Any] = {"contacts": contacts, **self.portal, "records": records}
        try:
            result, counted = self._measured(
                "sync", self._args(db, kind="full"), timeout=self._timeout(records / 100), budget=math.inf
            )
        except BenchError as exc:
            self.log(f"full pull of {contacts:,} failed: {exc}")
            return {**row, "ok": False, "error": str(exc)}
        seconds = result["seconds"]
        cached = result.get("counts", {})
        bound = self._bound()
        row.update(
            ok=True,
            seconds=round(seconds, 2),
            requests=counted["requests"],
            requests_by_type=result.get("requests_by_type"),
            # Per second: [requests started, most in flight at once], from the client's side.
            timeline=result.get("timeline"),
            status_429=counted["status_429"],
            status_429_by_budget=counted["status_429_by_budget"],
            records_per_s=round(records / seconds, 1),
            bound_ratio=round(records / seconds / bound, 3),
            s_per_10k=round(seconds / records * 10_000, 3),
            client_peak_mb=result.get("peak_mb"),
            cached=cached,
            complete=all(cached.get(t, 0) >= n for t, n in self.portal.items()),
            summary=_brief(result.get("summary")),
        )
        self.log(
            f"full pull {contacts:,}: {seconds:.1f} s, {counted['requests']['total']} requests, "
            f"{records / seconds:,.0f} records/s ({records / seconds / bound:.0%} of bound), "
            f"{counted['status_429']} 429s"
        )
        return row

    def _bound(self) -> float:
        o = self.options
        return o.burst_limit / o.burst_window_s * 100 + o.search_limit * 200

    # ------------------------------------------------------------------ official SDK

    def sdk(self, contacts: int) -> dict[str, Any]:
        """The official SDK's get_all over the same objects, properties and associations."""
        objects = {
            "contacts": {"properties": list(BASE_COLUMNS["contacts"]), "associations": ["companies"]},
            "companies": {"properties": list(BASE_COLUMNS["companies"])},
            "deals": {"properties": list(BASE_COLUMNS["deals"]), "associations": ["contacts", "companies"]},
        }
        records = sum(self.portal.values())
        scope = (
            f"{contacts:,}-contact portal: contacts, companies and deals with the same properties, "
            "contact->company and deal->contact/company associations"
        )
        row: dict[str, Any] = {"contacts": contacts, "records": records, "scope": scope}
        try:
            # One request after another stays far below the burst limit: no budget to wait for.
            result, counted = self._measured(
                "sdk", self._args(objects=objects), timeout=300 + records / 100 * 3, budget=0
            )
        except BenchError as exc:
            self.log(f"SDK run failed: {exc}")
            return {**row, "ok": False, "error": str(exc)}
        seconds = result["seconds"]
        row.update(
            ok=True,
            seconds=round(seconds, 2),
            requests=counted["requests"],
            status_429=counted["status_429"],
            records_per_s=round(records / seconds, 1),
            counts=result["counts"],
            associations=result["associations"],
            client_peak_mb=result.get("peak_mb"),
        )
        self.log(f"SDK get_all {contacts:,}: {seconds:.1f} s, {counted['requests']['total']} requests")
        return row

    # ------------------------------------------------------------------ incremental

    def remote_changes(self, k: int, round_no: int) -> float:
        """Change ``k`` contacts "in HubSpot": a job title each, through the public batch API.

        The sandbox's limits and latency are lifted while the bench writes and are put back
        afterwards, so making 20,000 changes takes seconds; the changes are ordinary API
        writes (another integration's, say) that move each record's last-modified time.
        """
        from crm import store

        assert self.portal_db is not None
        with store.open(self.portal_db) as db:
            frame, _ = db.queries.query_records("contacts", sort="id", limit=k, columns=["jobtitle"])
        ids = list(frame.index)
        started = time.perf_counter()
        began = time.monotonic()
        o = self.options
        self.admin.configure(latency_ms=0, jitter_ms=0, burst_limit=1_000_000)
        try:
            _batch_update(
                self._settings(self.workdir / "changes.db"),
                "contacts",
                [{"id": i, "properties": {"jobtitle": f"Changed {round_no}-{n}"}} for n, i in enumerate(ids)],
            )
        finally:
            self.admin.configure(latency_ms=o.latency_ms, jitter_ms=o.jitter_ms, burst_limit=o.burst_limit)
        # Those writes sit in the sandbox's burst window like any others.
        self._steps.append((began, time.monotonic(), math.ceil(len(ids) / 100)))
        return time.perf_counter() - started

    def incremental(self, k: int, round_no: int) -> dict[str, Any]:
        row: dict[str, Any] = {"k": k, "portal_contacts": self.portal.get("contacts")}
        try:
            change_s = self.remote_changes(k, round_no)
            needed = math.ceil(k / 200) + 20
            result, counted = self._measured(
                "sync",
                # As deployed with live updates (webhooks or the journal) healthy: association
                # changes arrive live, so the pull does not re-read them (crm.sync.pull).
                self._args(self.portal_db, kind="incremental", live=True),
                timeout=self._timeout(k / 100 + 50),
                budget=needed,
            )
        except BenchError as exc:
            self.log(f"incremental k={k} failed: {exc}")
            return {**row, "ok": False, "error": str(exc)}
        tapped = result.get("requests_by_type") or {}
        by_type = {t: int(tapped.get(t, 0)) for t in ("contacts", "companies", "deals")}
        other = int(tapped.get("portal", 0))
        full = self.portal_full or {}
        row.update(
            ok=True,
            change_seconds=round(change_s, 2),
            seconds=round(result["seconds"], 2),
            requests=counted["requests"]["total"],
            requests_by_kind=counted["requests"],
            requests_by_type=by_type,
            requests_other=other,
            live_associations=True,
            status_429=counted["status_429"],
            full_reread_requests=(full.get("requests") or {}).get("total"),
            full_reread_seconds=full.get("seconds"),
            summary=_brief(result.get("summary")),
        )
        self.log(
            f"incremental k={k:,}: {result['seconds']:.2f} s, {counted['requests']['total']} requests "
            f"({by_type})"
        )
        return row

    # ------------------------------------------------------------------ push

    def push(self, op: str, count: int) -> dict[str, Any]:
        row: dict[str, Any] = {"count": count}
        stamp = f"{int(time.time())}"
        try:
            result, counted = self._measured(
                op,
                self._args(
                    self.portal_db, count=count, stamp=stamp, offset=self.portal.get("contacts", 0) // 2
                ),
                # queueing goes first and grows with the cache
                timeout=self._timeout(count / 50 + 20) + count * 1.0,
                budget=math.ceil(count / 50) + 5,
            )
        except BenchError as exc:
            self.log(f"{op} failed: {exc}")
            return {**row, "ok": False, "error": str(exc)}
        summary = result.get("result") or {}
        row.update(
            ok=True,
            count=result.get("count", count),
            seconds=round(result["seconds"], 2),
            queue_seconds=round(result.get("queue_seconds", 0.0), 2),
            requests=counted["requests"]["total"],
            requests_by_kind=counted["requests"],
            routes=counted["routes"],
            status_429=counted["status_429"],
            pushed=summary.get("pushed"),
            failed=summary.get("failed"),
            conflicts=summary.get("conflicts"),
            statuses=summary.get("statuses"),
        )
        self.log(f"{op} {count:,}: {result['seconds']:.2f} s, {counted['requests']['total']} requests")
        return row

    # ------------------------------------------------------------------ the whole pull/push part

    def run(self, result: dict[str, Any]) -> None:
        o = self.options
        wanted = set(o.scenarios)
        sdk_size = o.sdk_contacts
        full_sizes = list(o.sizes) if "full" in wanted else []
        if "sdk" in wanted and sdk_size not in full_sizes:
            full_sizes.append(sdk_size)
        needs_portal = wanted & {"incremental", "push"}
        if needs_portal and o.portal_contacts not in full_sizes:
            full_sizes.append(o.portal_contacts)
        result.setdefault("seeding", [])
        result.setdefault("full_pull", [])
        for contacts in sorted(full_sizes):
            result["seeding"].append(self.seed(contacts))
            if "sdk" in wanted and contacts == sdk_size:
                result["sdk"] = self.sdk(contacts)
            db = self.workdir / f"full-{contacts}.db"
            row = self.full_pull(contacts, db)
            if "full" in wanted or contacts == sdk_size:
                result["full_pull"].append(row)
            if contacts == sdk_size and result.get("sdk", {}).get("ok") and row.get("ok"):
                sdk = result["sdk"]
                sdk.update(
                    ours_seconds=row["seconds"],
                    ours_requests=row["requests"]["total"],
                    ours_records=row["records"],
                    ours_status_429=row["status_429"],
                    ours_records_per_s=row["records_per_s"],
                    speedup=round(sdk["seconds"] / row["seconds"], 2),
                )
            if contacts == o.portal_contacts:
                self.portal_db = db
                self.portal_full = row
        if not needs_portal:
            return
        if not (self.portal_full or {}).get("ok"):
            result["incremental"] = [{"k": k, "ok": False, "error": "no synced portal"} for k in o.changes]
            return
        if "incremental" in wanted:
            result["incremental"] = [self.incremental(k, n) for n, k in enumerate(o.changes, 1)]
        if "push" in wanted:
            result["push"] = {
                "edits": self.push("push_edits", min(o.push_count, self.portal["contacts"])),
                "new_contacts": self.push("push_new", o.push_count),
            }


def _brief(summary: Any) -> Any:
    """A run summary without bulky per-record detail, for the JSON."""
    if not isinstance(summary, dict):
        return summary
    return {k: v for k, v in summary.items() if not (isinstance(v, list) and len(v) > 20)}


def _batch_update(settings: Any, object_type: str, inputs: list[dict[str, Any]]) -> None:
    """Batch-update ``inputs`` 100 at a time through our client, four requests at once."""
    import concurrent.futures

    from crm.oauth import open_client

    chunks = [inputs[i : i + 100] for i in range(0, len(inputs), 100)]
    with open_client(settings) as client, concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for result in pool.map(lambda chunk: client.batch_update(object_type, chunk), chunks):
            if result.errors:
                raise BenchError(f"a remote change was refused: {result.errors[0]}")


def workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="crm-bench-")
