"""Target verdicts and request classification, from literal results."""

from __future__ import annotations

from crm.bench.options import from_args, parser
from crm.bench.pipedrive import PAGE_RECORDS, pipedrive_bound, ratio_factors
from crm.bench.report import evaluate_targets, machine_markdown, render_console, render_markdown
from crm.bench.run import BEGIN, END, publish
from crm.bench.scenarios import classify
from crm.bench.worker import object_type_of, pipedrive_kind

SANDBOX = {
    "bound_records_per_s": 2100.0,
    "latency_ms": 250,
    "jitter_ms": 62.5,
    "burst_limit": 110,
    "burst_window_s": 10.0,
    "search_limit": 5,
}


def _full(contacts: int, seconds: float) -> dict:
    records = contacts * 3 // 2
    return {
        "contacts": contacts,
        "records": records,
        "ok": True,
        "seconds": seconds,
        "status_429": 0,
        "records_per_s": records / seconds,
        "bound_ratio": records / seconds / 2100,
        "s_per_10k": seconds / records * 10_000,
        "requests": {"list": 1, "total": 1},
    }


def _statuses(result: dict) -> dict[str, str]:
    return {t["name"]: t["status"] for t in evaluate_targets(result)}


def test_full_pull_at_the_bound_passes_and_a_slow_one_misses():
    fast = {"sandbox": SANDBOX, "full_pull": [_full(50_000, 40.0), _full(100_000, 80.0)]}
    slow = {"sandbox": SANDBOX, "full_pull": [_full(50_000, 40.0), _full(100_000, 300.0)]}
    assert _statuses(fast)["full pull >= 80% of the rate-limit bound"] == "PASS"
    assert _statuses(fast)["cost linear in records"] == "PASS"
    assert _statuses(slow)["full pull >= 80% of the rate-limit bound"] == "MISS"
    assert _statuses(slow)["cost linear in records"] == "MISS"


def test_a_failed_pull_counts_as_a_429_surfacing():
    result = {
        "sandbox": SANDBOX,
        "full_pull": [_full(10_000, 8.0), {"contacts": 50_000, "ok": False, "error": "RateLimited"}],
    }
    assert _statuses(result)["no 429 surfaces as an error"] == "MISS"


def test_incremental_requests_are_judged_per_object_type():
    row = {
        "k": 1000,
        "ok": True,
        "seconds": 2.0,
        "requests": 20,
        "portal_contacts": 100_000,
        "requests_by_type": {"contacts": 10, "companies": 4, "deals": 4},
    }
    over = dict(row, requests_by_type={"contacts": 11, "companies": 4, "deals": 4})
    assert (
        _statuses({"incremental": [row]})["incremental pull, k = 1,000: requests per object type"] == "PASS"
    )
    assert (
        _statuses({"incremental": [over]})["incremental pull, k = 1,000: requests per object type"] == "MISS"
    )


def test_sdk_speedup_and_push_and_dashboard_verdicts():
    result = {
        "sdk": {"ok": True, "seconds": 400.0, "ours_seconds": 100.0, "speedup": 4.0, "contacts": 100_000},
        "push": {"edits": {"ok": True, "count": 1000, "requests": 26, "seconds": 9.0}},
        "dashboard": [
            {
                "ok": True,
                "cached_contacts": 1_000_000,
                "contacts_visible_s": 1.5,
                "search_s": 0.7,
                "app_peak_mb": 300.0,
            }
        ],
    }
    statuses = _statuses(result)
    assert statuses["full pull >= 3x faster than the official SDK"] == "PASS"
    assert statuses["push of 1,000 edits: requests"] == "MISS"
    assert statuses["contacts page visible <= 2 s (SQLite)"] == "PASS"
    assert statuses["search updates the table <= 0.5 s (SQLite)"] == "MISS"
    assert statuses["app memory < 500 MB (SQLite)"] == "PASS"


def test_each_backend_is_judged_on_its_own_largest_cache():
    def row(backend, contacts, search_s, index_used):
        return {
            "backend": backend,
            "ok": True,
            "cached_contacts": contacts,
            "contacts_visible_s": 1.0,
            "search_s": search_s,
            "app_peak_mb": 200.0,
            "search_index_used": index_used,
            "search_plan": ["Seq Scan on contacts"],
        }

    result = {
        "dashboard": [
            row("sqlite", 100_000, 0.9, True),
            row("sqlite", 1_000_000, 0.3, True),
            row("postgresql", 1_000_000, 0.6, False),
        ]
    }
    statuses = _statuses(result)
    assert statuses["search updates the table <= 0.5 s (SQLite)"] == "PASS"
    assert statuses["search updates the table <= 0.5 s (PostgreSQL)"] == "MISS"
    assert statuses["search answered by the search index (SQLite)"] == "PASS"
    assert statuses["search answered by the search index (PostgreSQL)"] == "MISS"
    table = render_markdown({**result, "targets": evaluate_targets(result)})
    assert "| PostgreSQL | 1,000,000 |" in table and "| SQLite | 100,000 |" in table


def test_failed_rows_render_without_crashing():
    result = {
        "sandbox": SANDBOX,
        "full_pull": [{"contacts": 10, "ok": False, "error": "boom"}],
        "dashboard": [{"cached_contacts": 5, "ok": False, "error": "no chromium"}],
    }
    result["targets"] = evaluate_targets(result)
    assert "failed: boom" in render_console(result)
    assert "| 10 | failed: boom |" in render_markdown(result)


def test_sandbox_routes_are_classified_by_kind():
    assert classify("GET /crm/v3/objects/{objectType}") == "list"
    assert classify("GET /crm/objects/2026-03/{objectType}") == "list"
    assert classify("GET /crm/v3/objects/{objectType}/{objectId}") == "other"
    assert classify("POST /crm/v3/objects/{objectType}/search") == "search"
    assert classify("POST /crm/v3/objects/{objectType}/batch/read") == "batch"
    assert classify("POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read") == "assoc"
    assert classify("GET /crm/v3/owners") == "other"


def test_request_paths_are_attributed_to_their_object_type():
    assert object_type_of("/crm/v3/objects/contacts/search") == "contacts"
    assert object_type_of("/crm/objects/2026-03/0-3") == "deals"
    assert object_type_of("/crm/v4/associations/deals/contacts/batch/read") == "deals"
    assert object_type_of("/crm/v3/properties/companies") == "companies"
    assert object_type_of("/crm/v3/pipelines/deals") == "deals"
    assert object_type_of("/crm/v3/owners") == "portal"


def test_quick_mode_uses_small_sizes_and_no_browser_drops_the_dashboard():
    options = from_args(parser().parse_args(["--quick", "--no-browser", "--latency-ms", "100"]))
    assert max(options.sizes) <= 5_000 and "dashboard" not in options.scenarios
    assert options.jitter_ms == 25.0
    full = from_args(parser().parse_args(["--sizes", "100k,10k", "--scenarios", "full,sdk"]))
    assert full.sizes == (10_000, 100_000) and full.scenarios == ("full", "sdk")


def test_publish_replaces_only_the_generated_block(tmp_path):
    docs = tmp_path / "PERFORMANCE.md"
    docs.write_text(
        f"# Performance\n\nHand-written intro.\n\n{BEGIN}\nold table\n{END}\n\nHand-written notes.\n"
    )
    result = {"sandbox": SANDBOX, "machine": {"nproc": 2}, "full_pull": [_full(10_000, 8.0)]}
    result["targets"] = evaluate_targets(result)
    publish(result, docs)
    text = docs.read_text()
    assert "Hand-written intro." in text and "Hand-written notes." in text
    assert "old table" not in text and "| 10,000 |" in text


def test_publish_fills_the_readme_block_too_and_leaves_a_readme_without_markers_alone(tmp_path):
    docs = tmp_path / "PERFORMANCE.md"
    readme = tmp_path / "README.md"
    readme.write_text(f"# App\n\n## Performance\n\n{BEGIN}\nold\n{END}\n\n## Known limits\n")
    result = {"sandbox": SANDBOX, "machine": {"nproc": 2}, "full_pull": [_full(10_000, 8.0)]}
    result["targets"] = evaluate_targets(result)
    publish(result, docs, readme=readme)
    text = readme.read_text()
    assert "old" not in text.split(BEGIN, 1)[1] and "| 10,000 |" in text and "## Known limits" in text
    plain = tmp_path / "PLAIN.md"
    plain.write_text("# No markers here\n")
    publish(result, docs, readme=plain)
    assert plain.read_text() == "# No markers here\n"


def test_backends_and_interaction_sizes_come_from_the_command_line():
    default = from_args(parser().parse_args([]))
    assert default.backends == ("sqlite", "postgresql") and default.interactions == 500_000
    assert from_args(parser().parse_args(["--quick"])).interactions == 20_000
    chosen = from_args(parser().parse_args(["--backends", "postgresql", "--interactions", "20k"]))
    assert chosen.backends == ("postgresql",) and chosen.interactions == 20_000
    assert from_args(parser().parse_args(["--interactions", "0"])).interactions == 0


PIPEDRIVE_LIMITS = {
    "latency_ms": 250.0,
    "plan": "Professional (the sandbox's default)",
    "api_token_burst": 80,
    "burst_window_s": 2.0,
    "page_records": 500,
    "allowed_per_s": 40.0,
    "bound_records_per_s": 20_000.0,
}


def _pipedrive_pull(persons: int, seconds: float, requests: dict[str, int]) -> dict:
    records = persons * 3 // 2
    row = {
        "persons": persons,
        "records": records,
        "ok": True,
        "complete": True,
        "seconds": seconds,
        "status_429": 0,
        "requests": {**requests, "total": sum(requests.values())},
        "records_per_s": records / seconds,
        "bound_records_per_s": 20_000.0,
        "bound_ratio": records / seconds / 20_000.0,
    }
    row["factors"] = ratio_factors(row, 40.0)
    return row


def test_the_pipedrive_bound_is_requests_allowed_per_second_times_records_per_list_page():
    # Professional plan: 80 requests per API token per 2 s, 500 records per v2 list page.
    assert pipedrive_bound(80, 2.0, 500) == 20_000.0
    assert pipedrive_bound(20, 2.0, 100) == 1_000.0  # Essential plan, 100-record pages
    # The generic pull asks for 500 and the API gives at most 500: that is the page the bound uses.
    assert PAGE_RECORDS == 500 and pipedrive_bound(80, 2.0) == 20_000.0


def test_the_pipedrive_ratio_is_page_fill_times_list_share_times_budget_use():
    # 30,000 records in 60 full list pages plus 300 association reads and 10 others, 100 s.
    row = _pipedrive_pull(20_000, 100.0, {"list": 60, "assoc": 300, "catchup": 6, "metadata": 4})
    factors = row["factors"]
    assert factors == {"page_fill": 1.0, "list_share": round(60 / 370, 3), "budget_use": round(3.7 / 40, 3)}
    product = factors["page_fill"] * factors["list_share"] * factors["budget_use"]
    assert abs(product - row["bound_ratio"]) < 0.001


def test_the_pipedrive_pull_is_judged_against_its_own_bound_on_its_largest_company():
    slow = _pipedrive_pull(20_000, 100.0, {"list": 60, "assoc": 300})
    fast = _pipedrive_pull(1_000, 0.08, {"list": 3})
    result = {"pipedrive": {"sandbox": PIPEDRIVE_LIMITS, "full_pull": [fast, slow]}}
    targets = {t["name"]: t for t in evaluate_targets(result)}
    verdict = targets["Pipedrive full pull >= 80% of its rate-limit bound"]
    assert verdict["status"] == "MISS" and verdict["target"] == ">= 80% of 20,000 records/s"
    assert verdict["measured"].startswith("1.5% (300 records/s at 20,000 persons)")
    assert "list share 17%" in verdict["note"]
    assert targets["no 429 surfaces as an error (Pipedrive)"]["status"] == "PASS"
    result["targets"] = evaluate_targets(result)
    table = render_markdown(result)
    assert "= 20,000 records/s)" in table and "| 20,000 | 30,000 | 100 | 60 | 300 |" in table


def test_a_failed_pipedrive_pull_renders_and_misses_its_target():
    result = {
        "pipedrive": {
            "sandbox": PIPEDRIVE_LIMITS,
            "full_pull": [{"persons": 500, "ok": False, "error": "RateLimited"}],
        }
    }
    result["targets"] = evaluate_targets(result)
    assert [t["status"] for t in result["targets"]] == ["n/a"]
    assert "| 500 | failed: RateLimited |" in render_markdown(result)


def test_a_pipedrive_only_run_describes_the_pipedrive_sandbox_and_not_hubspots():
    pull = _pipedrive_pull(1_000, 1.0, {"list": 3, "assoc": 15})
    result = {"machine": {"nproc": 2}, "pipedrive": {"sandbox": PIPEDRIVE_LIMITS, "full_pull": [pull]}}
    result["targets"] = evaluate_targets(result)
    headline = render_console(result).splitlines()[0]
    assert "Pipedrive sandbox latency 250.0 ms, 80 requests / 2.0 s per API token" in headline
    assert "searches" not in headline
    paragraph = machine_markdown(result)
    assert "80 requests per API token per 2.0 s" in paragraph and "searches per second" not in paragraph


def test_pipedrive_requests_are_told_apart_by_what_they_ask_for():
    assert pipedrive_kind("GET", "/api/v2/persons", {"limit": "500", "cursor": "x"}) == "list"
    assert pipedrive_kind("GET", "/api/v2/deals", {"ids": "1,2", "limit": "500"}) == "assoc"
    window = {
        "updated_since": "2026-01-01T00:00:00Z",
        "updated_until": "2026-03-01T00:00:00Z",
        "limit": "500",
    }
    assert pipedrive_kind("GET", "/api/v2/persons", window) == "list"
    changed = {"updated_since": "2026-01-01T00:00:00Z", "sort_by": "update_time", "limit": "500"}
    assert pipedrive_kind("GET", "/api/v2/organizations", changed) == "catchup"
    assert pipedrive_kind("GET", "/api/v2/persons", {"sort_by": "update_time", "limit": "1"}) == "metadata"
    assert pipedrive_kind("GET", "/api/v2/deals", {"status": "deleted"}) == "catchup"
    assert pipedrive_kind("GET", "/api/v1/personFields", {}) == "metadata"
    assert pipedrive_kind("GET", "/api/v2/stages", {}) == "metadata"
    assert pipedrive_kind("POST", "/api/v2/persons", {}) == "other"


def test_pipedrive_sizes_come_from_the_command_line():
    assert from_args(parser().parse_args([])).pipedrive_sizes == (20_000,)
    assert from_args(parser().parse_args(["--quick"])).pipedrive_sizes == (1_000,)
    assert from_args(parser().parse_args(["--pipedrive-sizes", "5k,20k"])).pipedrive_sizes == (5_000, 20_000)
