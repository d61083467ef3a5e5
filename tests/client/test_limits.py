"""The shared rate budget, backoff and circuit breaker as pure units."""

from __future__ import annotations

import random
import threading
import time

import pytest

from crm.errors import CircuitOpen
from crm.hubspot.limits import (
    CircuitBreaker,
    DailyBudget,
    RollingWindow,
    full_jitter,
    limits_for,
    reset_limits,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_lets_many_threads_through_at_once_then_makes_the_next_wait():
    window = RollingWindow(8, 0.4)
    barrier = threading.Barrier(8, timeout=2)
    waits: list[float] = []
    released: list[float] = []

    def worker() -> None:
        waits.append(window.acquire())
        barrier.wait()  # every thread holds a slot at the same time: no mutex around requests
        released.append(time.monotonic())
        window.release()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(waits) == 8 and max(waits) < 0.3  # well under the 0.4 s window: nobody waited for room
    window.acquire()
    assert time.monotonic() - min(released) >= 0.4  # the ninth waited a whole window


def test_a_slot_counts_until_one_window_after_its_answer():
    window = RollingWindow(1, 0.3)
    window.acquire()
    released = threading.Timer(0.2, window.release)  # a slow request: the answer takes 0.2 s
    released.start()
    started = time.monotonic()
    window.acquire()
    assert time.monotonic() - started >= 0.45  # 0.2 s in flight + a whole window after it
    released.join()


def test_a_slot_whose_send_time_is_known_frees_one_window_after_the_send_plus_the_spread():
    clock = FakeClock()
    window = RollingWindow(1, 1.0, clock=clock)
    span = 1.0 * 1.02  # the window with its clock slack

    def request(seconds: float) -> float:
        """Send, answer after ``seconds``; returns when the slot frees (its only slot)."""
        assert window.in_window() == 0
        window.acquire()
        sent = clock.now
        clock.now += seconds
        window.release(sent_at=sent)
        frees = window._frees[0]
        clock.now = frees
        return frees - sent

    # Until eight round trips are known, a slot counts for a window after its answer.
    assert [request(0.3) for _ in range(7)] == [pytest.approx(0.3 + span)] * 7
    # Then steady 300 ms round trips free it a window plus the minimum margin after the
    # send (1.07 s), not a window after the answer (1.32 s): 20% more searches.
    assert request(0.3) == pytest.approx(span + RollingWindow.MIN_MARGIN_S)
    # One stall among many does not tax every later request...
    assert request(0.9) == pytest.approx(span + RollingWindow.MIN_MARGIN_S)
    # ...but round trips that keep varying by 200 ms mean HubSpot's count may move that
    # much: margin 0.2.
    for _ in range(5):
        request(0.5)
    assert request(0.5) == pytest.approx(span + 0.2)
    # However much the round trips vary, never later than a window after the answer.
    assert request(0.1) == pytest.approx(0.1 + span)
    # A 429 says the margin was too thin: it grows by a twentieth of the window.
    window = RollingWindow(1, 1.0, clock=clock)
    for _ in range(8):
        request(0.3)
    assert request(0.3) == pytest.approx(span + RollingWindow.MIN_MARGIN_S)
    window.pause(0)
    assert request(0.3) == pytest.approx(span + RollingWindow.MIN_MARGIN_S + 0.05)
    # A caller that does not say when it sent gets the conservative rule.
    window.acquire()
    sent = clock.now
    clock.now += 0.3
    window.release()
    assert window._frees[0] - sent == pytest.approx(0.3 + span)


def test_remaining_header_lower_than_our_count_books_the_difference():
    window = RollingWindow(10, 0.4)
    learnt = time.monotonic()
    window.learn(remaining=2)  # someone else already spent 8 of the 10
    assert window.acquire() < 0.3 and window.acquire() < 0.3
    window.release()
    window.release()
    window.acquire()
    assert time.monotonic() - learnt >= 0.4


def test_headers_change_the_limit_and_window():
    window = RollingWindow(110, 10.0)
    window.learn(limit=190, window_s=10.0, remaining=190)
    assert window.limit == 190 and window.in_window() == 0


def test_pause_holds_every_caller_back():
    window = RollingWindow(100, 10.0)
    window.pause(0.3)
    started = time.monotonic()
    window.acquire()
    assert time.monotonic() - started >= 0.25


def test_breaker_opens_after_repeated_failures_and_says_for_how_long():
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, cooldown_s=20, clock=clock)
    for _ in range(3):
        breaker.before_request()
        breaker.record_failure()
    with pytest.raises(CircuitOpen) as caught:
        breaker.before_request()
    assert caught.value.retry_in == pytest.approx(20)
    assert "failed 3 of the last 3" in str(caught.value)


def test_breaker_lets_one_trial_through_after_cooldown_and_closes_on_success():
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=2, cooldown_s=5, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 5.1
    breaker.before_request()  # the trial
    with pytest.raises(CircuitOpen):
        breaker.before_request()  # nobody else while the trial runs
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_request()


def test_failed_trial_reopens_with_a_longer_cooldown():
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, cooldown_s=5, clock=clock)
    breaker.record_failure()
    clock.now += 5.1
    breaker.before_request()
    breaker.record_failure()
    with pytest.raises(CircuitOpen) as caught:
        breaker.before_request()
    assert caught.value.retry_in == pytest.approx(10)


def test_scattered_failures_in_a_busy_run_keep_the_circuit_closed():
    breaker = CircuitBreaker(threshold=3, window=20, cooldown_s=5, clock=FakeClock())
    for _ in range(20):  # one request in three fails: HubSpot is flaky, not down
        breaker.record_failure()
        breaker.record_success()
        breaker.record_success()
    breaker.before_request()
    assert breaker.state == "closed"


def test_mostly_failing_requests_open_the_circuit_even_with_some_successes():
    breaker = CircuitBreaker(threshold=3, window=20, cooldown_s=5, clock=FakeClock())
    for _ in range(4):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state == "open"


def test_full_jitter_stays_within_the_exponential_ceiling():
    rng = random.Random(1)
    for attempt in range(8):
        delays = [full_jitter(attempt, base_s=0.5, cap_s=10, rng=rng) for _ in range(200)]
        ceiling = min(10, 0.5 * 2**attempt)
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # really spread over the range, not a constant


def test_one_limiter_per_portal_is_shared():
    reset_limits()
    assert limits_for("portal:1") is limits_for("portal:1")
    assert limits_for("portal:1") is not limits_for("portal:2")


# -- the daily budget ---------------------------------------------------------------------

NOON_UTC = 1_800_014_400.0  # 2027-01-15 12:00 UTC


def test_the_daily_allowance_is_the_configured_share_of_the_limit_hubspot_reports():
    budget = DailyBudget(share=0.5, clock=lambda: NOON_UTC)
    budget.learn(limit=250_000, remaining=249_000)
    assert budget.allowance == 125_000
    assert budget.snapshot()["source"] == "headers"
    for _ in range(3):
        budget.count()
    assert budget.snapshot()["used"] == 3 and budget.left() == 124_997


def test_a_held_request_beyond_the_allowance_is_refused_and_not_counted():
    budget = DailyBudget(share=0.4, configured_limit=10, clock=lambda: NOON_UTC)
    assert [budget.take() for _ in range(5)] == [True, True, True, True, False]
    assert budget.used == 4 and budget.spent()


def test_other_apps_spending_the_day_spends_ours_too():
    budget = DailyBudget(share=0.5, clock=lambda: NOON_UTC)
    budget.learn(limit=1000, remaining=0)  # we sent nothing, but the portal has nothing left
    assert budget.spent() and budget.left() == 0


def test_without_headers_or_a_configured_limit_the_budget_is_unknown_and_never_spent():
    budget = DailyBudget(share=0.5, clock=lambda: NOON_UTC)
    for _ in range(1000):
        assert budget.take()
    snapshot = budget.snapshot()
    assert (snapshot["source"], snapshot["limit"], snapshot["allowance"], snapshot["used"]) == (
        "unknown",
        None,
        None,
        1000,
    )
    assert budget.left() is None and not budget.spent()


def test_the_day_turns_at_midnight_in_the_accounts_time_zone():
    clock = FakeClock()
    clock.now = 1_800_050_400.0  # 2027-01-15 22:00 UTC = 17:00 in New York
    budget = DailyBudget(share=0.5, configured_limit=100, time_zone="America/New_York", clock=clock)
    for _ in range(50):
        budget.count()
    assert budget.spent()
    assert budget.next_reset() == 1_800_075_600.0  # 2027-01-16 05:00 UTC, midnight in New York
    clock.now += 2 * 3600  # midnight UTC: not yet a new day in New York
    assert budget.spent()
    clock.now += 6 * 3600
    assert not budget.spent() and budget.used == 0


def test_requests_counted_before_the_time_zone_is_known_stay_counted_when_it_is_learned():
    # Between midnight UTC and the account's midnight the two dates differ: the first
    # request (the one that asks for the time zone) was counted under UTC's date, and
    # learning the zone must not roll the count over as if a day had turned.
    clock = FakeClock()
    clock.now = 1_800_000_000.0 + 16 * 3600 + 30 * 60  # 2027-01-16 00:30 UTC = 19:30 the 15th in New York
    budget = DailyBudget(share=0.5, configured_limit=100, clock=clock)
    budget.count()
    budget.set_time_zone("America/New_York")
    budget.count()
    assert budget.used == 2
    assert budget.snapshot()["day"] == "2027-01-15"


def test_learning_the_time_zone_the_next_day_still_starts_a_new_count():
    clock = FakeClock()
    clock.now = 1_800_000_000.0  # 2027-01-15 08:00 UTC
    budget = DailyBudget(share=0.5, configured_limit=100, clock=clock)
    for _ in range(50):
        budget.count()
    clock.now += 24 * 3600
    budget.set_time_zone("America/New_York")  # what a run does first, the day after
    assert not budget.spent() and budget.used == 0


def test_hubspots_remaining_count_jumping_up_means_its_day_turned():
    budget = DailyBudget(share=0.5, clock=lambda: NOON_UTC)
    budget.learn(limit=200, remaining=100)
    for _ in range(100):
        budget.count()
    assert budget.spent()
    budget.learn(limit=200, remaining=20)  # an answer to an earlier request, late: the same day
    assert budget.spent()
    budget.learn(limit=200, remaining=199)
    assert not budget.spent() and budget.used == 0


def test_a_daily_429_holds_until_midnight():
    clock = FakeClock()
    clock.now = NOON_UTC
    budget = DailyBudget(share=1.0, clock=clock)
    assert budget.refused() == 1_800_057_600.0  # 2027-01-16 00:00 UTC
    assert budget.spent()
    clock.now = 1_800_057_601.0
    assert not budget.spent()


def test_a_saved_count_of_today_carries_over_and_another_days_is_ignored():
    budget = DailyBudget(share=0.5, clock=lambda: NOON_UTC)
    budget.seed({"day": "2027-01-14", "used": 900, "source": "headers", "limit": 1000, "remaining": 0})
    assert budget.used == 0 and budget.limit is None
    budget.seed({"day": "2027-01-15", "used": 500, "source": "headers", "limit": 1000, "remaining": 400})
    assert budget.used == 500 and budget.spent()
