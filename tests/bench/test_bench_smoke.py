"""The benchmark itself, run end to end on tiny portals so it cannot rot.

One ``python -m crm.bench`` run (every scenario, the browser included, the dashboard over
SQLite and over a throwaway PostgreSQL) against its own sandbox process, with 20 ms latency and portals of a few hundred records; the assertions
are about the JSON a maintainer reads, not about speed.

Sizes are the smallest that still exercise each path (the figures are not the subject): a
1 s burst window instead of HubSpot's 10 s, so a full pull's first ~150 requests (metadata,
ranges, catch-up) do not wait out a window the bench then also waits for between steps; and
600 interactions, a 100-interaction timeline next to a 5-interaction one.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys

import pytest

from crm.bench.processes import REPO

# Two dashboards (SQLite, then a PostgreSQL cluster started for the run) and the interaction
# pages after the pulls: past the suite's default timeout on a busy machine.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

TINY = [
    "--quick",
    "--sizes",
    "100,300",
    "--changes",
    "3,40",
    "--push-count",
    "20",
    "--dashboard-sizes",
    "1500",
    "--interactions",
    "600",
    "--heavy-timeline",
    "100",
    "--pipedrive-sizes",
    "200",
    "--latency-ms",
    "20",
    "--burst-window-s",
    "1",
]


@pytest.fixture(scope="session")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """One tiny ``python -m crm.bench`` run for the whole test session: its stdout and JSON.

    Under pytest-xdist each worker is a session of its own, so the run is shared through the
    run's common temporary directory under a file lock: the first worker to ask runs the bench,
    the others wait for it and read its files (pytest-xdist's recipe for a once-per-run fixture).
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's directory, above every worker's own (a fresh one per run)
    shared = root / "bench-smoke"
    shared.mkdir(exist_ok=True)
    out, log = shared / "result.json", shared / "stdout.txt"
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.exists():
            proc = subprocess.run(
                [sys.executable, "-m", "crm.bench", *TINY, "--json", str(out)],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
            log.write_text(proc.stdout)
    return log.read_text(), json.loads(out.read_text())


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_quick_bench_reports_every_scenario_with_positive_numbers(bench_run):
    _, result = bench_run
    assert {
        "machine",
        "sandbox",
        "seeding",
        "full_pull",
        "sdk",
        "incremental",
        "push",
        "dashboard",
        "pipedrive",
        "targets",
    } <= set(result)
    assert result["sandbox"]["bound_records_per_s"] == 110 / 1 * 100 + 5 * 200

    assert [r["contacts"] for r in result["full_pull"]] == [100, 300]
    for row in result["full_pull"]:
        assert row["ok"] and row["complete"], row
        assert all(_positive(row[k]) for k in ("seconds", "records_per_s", "bound_ratio", "s_per_10k"))
        assert row["requests"]["list"] > 0 and row["requests"]["total"] >= row["requests"]["list"]

    sdk = result["sdk"]
    assert sdk["ok"] and sdk["counts"] == {"contacts": 300, "companies": 60, "deals": 90}
    assert _positive(sdk["seconds"]) and _positive(sdk["speedup"])
    assert sdk["associations"].get("contacts->companies", 0) > 0

    assert [r["k"] for r in result["incremental"]] == [3, 40]
    for row in result["incremental"]:
        assert row["ok"] and _positive(row["seconds"]) and _positive(row["requests"])
        assert row["requests_by_type"]["contacts"] > 0

    for key in ("edits", "new_contacts"):
        push = result["push"][key]
        assert push["ok"] and push["count"] == 20 and push["pushed"] == 20 and push["failed"] == 0
        assert _positive(push["requests"]) and _positive(push["seconds"])

    assert [d["backend"] for d in result["dashboard"]] == ["sqlite", "postgresql"]
    for dash in result["dashboard"]:
        assert dash["ok"], dash.get("error")
        assert dash["cached_contacts"] >= 1500
        assert all(
            _positive(dash[k])
            for k in ("contacts_visible_s", "search_email_s", "search_name_s", "deals_chart_s", "app_peak_mb")
        )
        assert dash["search_email_matches"] == 1 and dash["search_name_matches"] > 1
        assert dash["search_index_used"], dash["search_plan"]
        assert dash["dialogs"] == 0
        scale = dash["interactions"]
        # On top of what the small portal's sync cached.
        assert scale["interactions"] >= 600 and scale["tickets"] >= 60
        assert (scale["timeline_heavy_total"], scale["timeline_light_total"]) == (100, 5)
        assert all(
            _positive(scale[k])
            for k in (
                "timeline_heavy_s",
                "timeline_light_s",
                "timeline_ratio",
                "tickets_page_s",
                "search_page_s",
            )
        )
        [(_, one)] = [(k, v) for k, v in scale.items() if k.startswith("search_query_hits[ref ")]
        assert one == 1

    pipedrive = result["pipedrive"]
    # The sandbox's default limits (Professional plan: 80 per API token per 2 s), 500-record pages.
    assert pipedrive["sandbox"]["bound_records_per_s"] == 80 / 2 * 500
    [pull] = pipedrive["full_pull"]
    assert pull["ok"] and pull["complete"], pull
    assert pull["cached"] == {"contacts": 200, "companies": 40, "deals": 60}
    # Links come with the list pages (LinksOnRecords); types and windows are walked at once.
    assert pull["requests"]["list"] >= 3 and pull["requests"]["assoc"] == 0
    assert pull["peak_in_flight"] > 1
    assert 0 < pull["bound_ratio"] < 1 and _positive(pull["records_per_s"])


def test_quick_bench_prints_a_verdict_for_each_target(bench_run):
    stdout, result = bench_run
    statuses = {t["name"]: t["status"] for t in result["targets"]}
    assert all(status in ("PASS", "MISS") for status in statuses.values()), statuses
    assert any(name.startswith("full pull >= 3x") for name in statuses)
    assert any(name.startswith("push of 20 edits") for name in statuses)
    assert "tickets page visible <= 2 s (PostgreSQL)" in statuses
    assert "Pipedrive full pull >= 80% of its rate-limit bound" in statuses
    assert "Pipedrive full pull (generic pull" in stdout
    assert "Interactions at scale" in stdout
    assert "Targets" in stdout and "PASS" in stdout
