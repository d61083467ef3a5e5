"""The Pipedrive full pull, measured against Pipedrive's rate-limit bound (issue #15).

One Pipedrive sandbox process (``python -m crm.sandbox.pipedrive``) with its default burst
limits: the Professional plan's 80 requests per API token per 2-second window
(docs/PIPEDRIVE_API.md §6; the sandbox's ``api_token_burst`` and ``burst_window_s``). For
each size the company is re-seeded, an API token is minted through the admin API, and a
fresh worker process runs ``run_sync(kind="full", api=PipedriveApi)`` (the generic pull,
``crm.sync.listpull``) into an empty cache.

The bound: requests allowed per second x records per list page. A list page holds up to
500 records on API v2 and the generic pull asks for 500, so at the default limits the bound
is 80 / 2 x 500 = 20,000 records per second. It counts only the list pages a pull cannot do
without; association reads, property/owner/pipeline reads and the catch-up after each walk
are spent from the same burst budget, so they lower the achieved ratio rather than raise
the bound. The ratio splits into three factors, reported next to it::

    ratio = page fill (records per list request / page size)
          x list share (list requests / all requests)
          x budget use (requests per second / requests allowed per second)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crm.bench.options import BenchOptions, company_sizes
from crm.bench.processes import BenchError, PipedriveSandboxProcess, run_worker
from crm.pipedrive.client import PAGE_LIMIT as PIPEDRIVE_PAGE_MAX
from crm.sync.listpull import PAGE_LIMIT as PULL_PAGE_ASKED

# Records per list page the generic pull gets: what it asks for, capped by the API.
PAGE_RECORDS = min(PIPEDRIVE_PAGE_MAX, PULL_PAGE_ASKED)
KINDS = ("list", "assoc", "catchup", "metadata", "other")


def pipedrive_bound(burst: int, window_s: float, page_records: int = PAGE_RECORDS) -> float:
    """Records per second a full pull can reach at most: requests allowed per second x records per page."""
    return burst / window_s * page_records


def ratio_factors(
    row: dict[str, Any], allowed_per_s: float, page_records: int = PAGE_RECORDS
) -> dict[str, float]:
    """The ratio to the bound as the product of page fill, list share and budget use (module docstring)."""
    requests = row["requests"]
    total = max(1, int(requests.get("total", 0)))
    lists = max(1, int(requests.get("list", 0)))
    return {
        "page_fill": round(row["records"] / lists / page_records, 3),
        "list_share": round(int(requests.get("list", 0)) / total, 3),
        "budget_use": round(total / row["seconds"] / allowed_per_s, 3),
    }


class PipedriveBench:
    """Seeds the Pipedrive sandbox and measures the generic full pull at each size."""

    def __init__(
        self,
        options: BenchOptions,
        sandbox: PipedriveSandboxProcess,
        workdir: Path,
        log: Callable[[str], None],
    ) -> None:
        assert sandbox.admin is not None
        self.options = options
        self.sandbox = sandbox
        self.admin = sandbox.admin
        self.workdir = workdir
        self.log = log
        self.config: dict[str, Any] = {}

    def configure(self) -> dict[str, Any]:
        """The bench's latency on the sandbox's default limits; what the report shows of them."""
        # The Pipedrive sandbox has no jitter setting: latency is the same every request.
        self.config = self.admin.configure(latency_ms=self.options.latency_ms)
        c = self.config
        bound = pipedrive_bound(c["api_token_burst"], c["burst_window_s"])
        return {
            "url": self.sandbox.url,
            "latency_ms": c["latency_ms"],
            "plan": "Professional (the sandbox's default)",
            "api_token_burst": c["api_token_burst"],
            "search_burst": c["search_burst"],
            "burst_window_s": c["burst_window_s"],
            "page_records": PAGE_RECORDS,
            "allowed_per_s": c["api_token_burst"] / c["burst_window_s"],
            "bound_records_per_s": bound,
            "bound_note": f"API-token burst limit / window x {PAGE_RECORDS} records per list page; "
            "association, metadata and catch-up requests spend the same budget and count against the ratio",
        }

    def run(self) -> list[dict[str, Any]]:
        return [self.full_pull(n) for n in self.options.pipedrive_sizes]

    def full_pull(self, persons: int) -> dict[str, Any]:
        sizes = company_sizes(persons)
        records = sum(sizes.values())
        row: dict[str, Any] = {**sizes, "records": records}
        started = time.perf_counter()
        # A reset empties the rate-limit windows and the stats, so the pull starts on a quiet token.
        self.admin.reset(seed=self.options.seed, tokens=True, **sizes)
        row["seed_seconds"] = round(time.perf_counter() - started, 2)
        token = self.admin.api_token()
        db = self.workdir / f"pipedrive-{persons}.db"
        allowed = self.config["api_token_burst"] / self.config["burst_window_s"]
        # Generous: ten times what the limit allows for one request per 100 records, plus start-up.
        timeout = 120.0 + 10 * records / 100 / allowed + records / 100 * self.options.latency_ms / 1000 * 3
        before = self.admin.stats()
        try:
            result = run_worker(
                "pd_sync", {"url": self.sandbox.url, "token": token, "db": str(db)}, timeout=timeout
            )
        except BenchError as exc:
            self.log(f"Pipedrive full pull of {persons:,} persons failed: {exc}")
            return {**row, "ok": False, "error": str(exc)}
        after = self.admin.stats()
        seconds = result["seconds"]
        served = _api_requests(after) - _api_requests(before)
        tapped = result.get("requests") or {}
        by_kind = {k: int(tapped.get(k, 0)) for k in KINDS}
        by_kind["total"] = sum(by_kind.values())
        request_s = sum((result.get("request_seconds") or {}).values())
        cached = result.get("counts", {})
        bound = pipedrive_bound(self.config["api_token_burst"], self.config["burst_window_s"])
        row.update(
            ok=True,
            seconds=round(seconds, 2),
            requests=by_kind,
            sandbox_requests=served,
            request_seconds=result.get("request_seconds"),
            status_429=int(after.get("rate_limited", 0)) - int(before.get("rate_limited", 0)),
            records_per_s=round(records / seconds, 1),
            bound_records_per_s=bound,
            bound_ratio=round(records / seconds / bound, 4),
            requests_per_s=round(by_kind["total"] / seconds, 2),
            in_requests_s=round(request_s, 2),
            # Requests overlap: the wall time with none in flight, and how many were on average.
            outside_requests_s=round(max(0.0, seconds - float(result.get("busy_seconds", request_s))), 2),
            mean_in_flight=round(request_s / seconds, 2),
            peak_in_flight=result.get("peak_in_flight"),
            client_peak_mb=result.get("peak_mb"),
            cached={t: cached.get(t, 0) for t in ("contacts", "companies", "deals")},
            complete=all(
                cached.get(t, 0) >= sizes[e]
                for t, e in (("contacts", "persons"), ("companies", "organizations"), ("deals", "deals"))
            ),
        )
        row["factors"] = ratio_factors(row, allowed)
        self.log(
            f"Pipedrive full pull {persons:,} persons: {seconds:.1f} s, {by_kind['total']} requests "
            f"({by_kind['list']} list, {by_kind['assoc']} association), {records / seconds:,.0f} records/s "
            f"({records / seconds / bound:.1%} of bound), {row['status_429']} 429s"
        )
        return row


def _api_requests(stats: dict[str, Any]) -> int:
    """Requests the sandbox served on its API routes (its own ``/_sandbox/`` routes left out)."""
    return sum(int(n) for route, n in (stats.get("requests") or {}).items() if "/_sandbox/" not in route)


def run_pipedrive(options: BenchOptions, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """The Pipedrive scenario on its own sandbox process (stopped afterwards)."""
    with PipedriveSandboxProcess(seed=options.seed) as sandbox:
        log(f"Pipedrive sandbox at {sandbox.url}")
        bench = PipedriveBench(options, sandbox, workdir, log)
        limits = bench.configure()
        pulls = bench.run()
        limits["peak_mb"] = sandbox.peak_mb()
        return {"sandbox": limits, "full_pull": pulls}
