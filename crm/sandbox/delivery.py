"""The delivery thread both sandboxes' webhook senders stand on.

HubSpot's sender batches events and signs each batch; Pipedrive's sends one event per webhook
with Basic auth. What they share is the machinery around a send, and that lives here once:
a daemon thread started on first use, a heap of retries due at a monotonic time, an
in-flight count that ``flush`` waits on, a bounded log of attempts, and a generation number
so that an admin reset drops the work queued before it (an attempt that was in flight when
the reset came is not logged or retried).

A subclass says which jobs are due now (``_take_due``, called with the lock held), when the
thread should look again (``_next_wake``), and how to send one job (``_deliver``, called
without the lock; it logs and reschedules through ``_finish``).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx2

from crm.sandbox import tls

Job = TypeVar("Job")


class DeliveryLoop(Generic[Job]):
    """A daemon thread that sends jobs and retries them on a schedule; see the module doc."""

    def __init__(
        self,
        *,
        thread_name: str,
        join_timeout_s: Callable[[], float],
        log_size: int,
        max_scheduled_retries: int | None = None,
    ) -> None:
        self._cond = threading.Condition()
        self._retries: list[tuple[float, int, Job]] = []
        self._retry_seq = itertools.count()
        self._in_flight = 0
        self._generation = 0
        self._log: collections.deque[dict[str, Any]] = collections.deque(maxlen=log_size)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._thread_name = thread_name
        self._join_timeout_s = join_timeout_s
        self._max_scheduled_retries = max_scheduled_retries

    # --- what a subclass provides ------------------------------------------------------

    def _take_due(self, now: float) -> list[Job]:
        """Jobs to send now, removed from their queues; the lock is held."""
        raise NotImplementedError

    def _next_wake(self, now: float) -> float | None:
        """Seconds until something may be due (None: only a notify wakes the thread); lock held."""
        raise NotImplementedError

    def _deliver(self, client: httpx2.Client, job: Job) -> None:
        """Send one job; report with ``_finish``. Called without the lock."""
        raise NotImplementedError

    # --- shared API ----------------------------------------------------------------------

    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt so far, oldest first."""
        with self._cond:
            return [dict(entry) for entry in self._log]

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued, scheduled for retry or in flight; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._has_work():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        """Stop the delivery thread (waits briefly for an in-flight request)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._join_timeout_s() + 1.0)

    # --- for subclasses ------------------------------------------------------------------

    def _has_work(self) -> bool:
        """Whether anything is queued, scheduled or in flight; subclasses add their queues."""
        return bool(self._retries or self._in_flight)

    def _reset_locked(self) -> None:
        """Drop scheduled retries and the log, and orphan in-flight attempts; lock held."""
        self._generation += 1
        self._retries.clear()
        self._log.clear()
        self._cond.notify_all()

    def _pop_due_retry(self, now: float) -> Job | None:
        """The earliest retry if its time has come, removed from the schedule; lock held."""
        if self._retries and self._retries[0][0] <= now:
            return heapq.heappop(self._retries)[2]
        return None

    def _due_retries(self, now: float) -> list[Job]:
        """Every retry whose time has come, removed from the schedule; lock held."""
        due = []
        while (job := self._pop_due_retry(now)) is not None:
            due.append(job)
        return due

    def _first_retry_at(self) -> float | None:
        return self._retries[0][0] if self._retries else None

    def _finish(self, generation: int, entry: dict[str, Any], retry_in: float | None, job: Job) -> bool:
        """Log an attempt and schedule its retry in ``retry_in`` seconds (None: final).

        Returns whether a retry was scheduled; the caller then counts the job's next attempt
        (safe without the lock: only this delivery thread takes jobs off the schedule).
        Nothing is logged or scheduled when a reset came while the attempt was in flight,
        and nothing is scheduled beyond ``max_scheduled_retries``, so a dead receiver cannot
        make a long-running sandbox grow without bound.
        """
        with self._cond:
            if generation != self._generation:
                return False
            self._log.append(entry)
            cap = self._max_scheduled_retries
            if retry_in is None or (cap is not None and len(self._retries) >= cap):
                return False
            heapq.heappush(self._retries, (time.monotonic() + retry_in, next(self._retry_seq), job))
            return True

    def _ensure_thread(self) -> None:
        """Start the delivery thread if it is not running; lock held."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with httpx2.Client(
            trust_env=False, follow_redirects=False, verify=tls.context(trust_env=False)
        ) as client:
            while True:
                with self._cond:
                    while True:
                        if self._closed:
                            return
                        jobs = self._take_due(time.monotonic())
                        if jobs:
                            self._in_flight = len(jobs)
                            break
                        self._cond.wait(self._next_wake(time.monotonic()))
                try:
                    for job in jobs:
                        self._deliver(client, job)
                        with self._cond:
                            self._in_flight -= 1
                            self._cond.notify_all()
                finally:
                    with self._cond:
                        self._in_flight = 0
                        self._cond.notify_all()
