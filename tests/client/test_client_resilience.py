"""Rate limits, retries, the circuit breaker and timeouts, over loopback."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from crm.config import Settings
from crm.errors import CircuitOpen, HubSpotError, NeedsReconnect, Unreachable
from crm.hubspot import CircuitBreaker, HubSpotClient, PortalLimits, StaticToken

CONTACTS = "/crm/v3/objects/contacts"


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def served_429s(sandbox) -> int:
    stats = sandbox.stats()
    responses = stats.get("responses") or stats.get("by_status") or {}
    return int(responses.get("429", 0))


def test_429_with_retry_after_waits_that_long_then_succeeds(client: HubSpotClient, sandbox):
    sandbox.fail_next(CONTACTS, status=429, count=1)
    started = time.monotonic()
    page = client.list_page("contacts", properties=["email"])
    elapsed = time.monotonic() - started
    assert page.records
    assert elapsed >= 0.9  # the sandbox's Retry-After is at least one second
    assert client.stats.snapshot()["rate_limited"] == 1 and client.stats.snapshot()["retries"] == 1


def test_429_without_retry_after_backs_off_and_succeeds(client: HubSpotClient, sandbox):
    sandbox.configure(retry_after=False)
    sandbox.fail_next(CONTACTS, status=429, count=2)
    page = client.list_page("contacts", properties=["email"])
    assert page.records
    assert client.stats.snapshot()["rate_limited"] == 2


def test_budget_spent_by_someone_else_is_waited_out(client: HubSpotClient, sandbox, sandbox_token: str):
    sandbox.configure(burst_limit=4, burst_window_s=1.0)
    with httpx2.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox_token}"}) as other:
        while other.get(CONTACTS, params={"limit": 1}).status_code != 429:
            pass  # another app on the same portal spends the whole window
    page = client.list_page("contacts", properties=["email"])
    assert page.records and client.stats.snapshot()["rate_limited"] >= 1


def test_shared_budget_keeps_parallel_threads_under_the_portal_limit(
    settings: Settings, sandbox, sandbox_token: str
):
    sandbox.configure(burst_limit=10, burst_window_s=1.0)
    before = served_429s(sandbox)
    token = StaticToken(sandbox_token)
    clients = [HubSpotClient(settings, token, backoff_base=0.01) for _ in range(2)]
    clients[0].account_info()  # learn the limit from the headers
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as pool:
        pages = list(
            pool.map(lambda i: clients[i % 2].list_page("contacts", properties=["email"], limit=5), range(30))
        )
    elapsed = time.monotonic() - started
    for c in clients:
        c.close()
    assert all(p.records for p in pages)
    assert served_429s(sandbox) == before  # two clients, one budget: no 429 at all
    assert elapsed >= 1.5  # 31 requests at 10 per second cannot finish sooner


def test_search_has_its_own_five_per_second_budget(client: HubSpotClient, sandbox):
    before = served_429s(sandbox)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: client.search("contacts", properties=["email"], limit=1), range(8)))
    assert all(r.total for r in results)
    assert time.monotonic() - started >= 0.9
    assert served_429s(sandbox) == before


def test_5xx_on_a_read_is_retried(client: HubSpotClient, sandbox):
    sandbox.fail_next(CONTACTS, status=503, count=2)
    assert client.list_page("contacts", properties=["email"]).records
    assert client.stats.snapshot()["retries"] == 2


def test_dropped_connection_on_a_read_is_retried(client: HubSpotClient, sandbox):
    sandbox.fail_next(CONTACTS, status="drop", count=1)
    assert client.list_page("contacts", properties=["email"]).records


def test_batch_create_is_not_retried_after_a_5xx_or_a_drop(client: HubSpotClient, sandbox):
    email = f"once-{uuid.uuid4().hex[:8]}@example.com"
    sandbox.fail_next(CONTACTS + "/batch/create", status=500, count=1)
    with pytest.raises(HubSpotError) as caught:
        client.batch_create("contacts", [{"properties": {"email": email}}])
    assert caught.value.status_code == 500
    sandbox.fail_next(CONTACTS + "/batch/create", status="drop", count=1)
    with pytest.raises(Unreachable):
        client.batch_create("contacts", [{"properties": {"email": email}}])
    assert client.stats.snapshot()["retries"] == 0
    assert client.stats.snapshot()["by_kind"]["batch"] == 2


def test_batch_create_is_retried_after_a_429(client: HubSpotClient, sandbox):
    email = f"later-{uuid.uuid4().hex[:8]}@example.com"
    sandbox.fail_next(CONTACTS + "/batch/create", status=429, count=1)
    result = client.batch_create("contacts", [{"properties": {"email": email}}])
    assert [r.properties["email"] for r in result.records] == [email]
    assert len([r for r in sandbox.truth("contacts") if r["properties"].get("email") == email]) == 1


def test_5xx_storm_opens_the_breaker_and_a_later_success_closes_it(
    settings: Settings, sandbox, sandbox_token: str
):
    clock = FakeClock()
    limits = PortalLimits(breaker=CircuitBreaker(threshold=3, cooldown_s=30, clock=clock))
    with HubSpotClient(
        settings, StaticToken(sandbox_token), max_retries=5, backoff_base=0.01, limits=limits
    ) as c:
        sandbox.fail_next(CONTACTS, status=503, count=3)
        with pytest.raises(CircuitOpen):
            c.list_page("contacts", properties=["email"])  # 3 failures open it mid-retry
        sent = c.stats.snapshot()["requests"]
        with pytest.raises(CircuitOpen) as caught:
            c.list_page("contacts", properties=["email"])
        assert c.stats.snapshot()["requests"] == sent  # fails fast: nothing sent
        assert caught.value.retry_in > 0 and "failed 3 of the last 3" in str(caught.value)
        clock.now += 31
        assert c.list_page("contacts", properties=["email"]).records  # the trial succeeds
        assert limits.breaker.state == "closed"
        assert c.list_page("contacts", properties=["email"]).records


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on loopback that accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()
    for conn in accepted:
        conn.close()


def test_a_hanging_server_times_out_with_a_clear_error(settings: Settings, silent_server: str):
    with HubSpotClient(
        settings, StaticToken("pat-x"), base_url=silent_server, timeout=0.3, max_retries=1, backoff_base=0.01
    ) as c:
        started = time.monotonic()
        with pytest.raises(Unreachable) as caught:
            c.account_info()
    assert time.monotonic() - started < 3
    assert "did not answer" in str(caught.value) and "0.3 s" in str(caught.value)


def test_a_rejected_private_app_token_asks_for_a_new_one(settings: Settings, sandbox):
    with (
        HubSpotClient(settings, StaticToken("pat-na1-not-a-real-token")) as c,
        pytest.raises(NeedsReconnect) as caught,
    ):
        c.account_info()
    assert "HUBSPOT_ACCESS_TOKEN" in str(caught.value)
