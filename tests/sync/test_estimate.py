"""A full pull's estimate: requests and minutes, against what the benchmark measured."""

from __future__ import annotations

import pytest

from crm.sync.estimate import EFFICIENCY, estimate_full_pull, expected_totals, measured_full_pull

PORTAL_100K = {"contacts": 100_000, "companies": 20_000, "deals": 30_000}


def test_the_estimate_of_the_100k_portal_is_close_to_the_measured_pull():
    # docs/PERFORMANCE.md: 1,303 requests (748 list, 385 search, 164 associations, 6 other) in 87.7 s.
    guess = estimate_full_pull(PORTAL_100K)
    assert guess.records == 150_000
    assert 1_303 * 0.95 <= guess.requests <= 1_303 * 1.05
    assert 80 <= guess.seconds <= 105


def test_both_budgets_finish_together_so_time_grows_with_records_over_the_combined_bound():
    # Companies carry no associations of their own: 2,100 records per second at the limits
    # (1,100 on list pages, 1,000 on search pages).
    small, large = estimate_full_pull({"companies": 10_000}), estimate_full_pull({"companies": 1_000_000})
    per_record = (large.seconds - small.seconds) * EFFICIENCY / 990_000
    assert per_record == pytest.approx(1 / 2_100, rel=0.1)


def test_an_empty_portal_costs_only_the_fixed_requests():
    guess = estimate_full_pull({})
    assert guess.records == 0 and 0 < guess.requests < 60


def test_totals_come_from_the_last_sync_that_counted_them_else_the_cache():
    runs = [{"counts": {}}, {"counts": {"expected": {"contacts": 900, "deals": 12}}}]
    assert expected_totals(runs, {"contacts": 5}) == (
        {"contacts": 900, "deals": 12},
        "the last sync's totals",
    )
    assert expected_totals([], {"contacts": 5, "owners": 3}) == ({"contacts": 5}, "the cache")


def test_a_crm_without_a_modelled_pull_is_estimated_from_its_last_full_run_scaled_to_the_cache():
    runs = [
        {"kind": "incremental", "state": "succeeded", "requests": 3, "duration_s": 1.0, "counts": {}},
        {"kind": "full", "state": "failed", "requests": 900, "duration_s": 99.0, "counts": {}},
        {
            "kind": "full",
            "state": "succeeded",
            "requests": 40,
            "duration_s": 30.0,
            # The notes and activities it read are not records: the scale is 1,000 records to 2,000.
            "counts": {"records": {"contacts": 800, "companies": 150, "deals": 50, "notes": 400, "tasks": 9}},
        },
    ]

    twice = measured_full_pull(runs, 2000)

    assert twice is not None
    assert (twice.records, twice.requests, twice.seconds) == (2000, 80, 60.0)
    assert twice.counted_from == "the last full re-sync"
    assert measured_full_pull(runs[:2], 2000) is None  # no finished full run counted its requests
