"""Run one function in several threads released at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_together(target: Callable[[], None], count: int, *, timeout_s: float = 60) -> list[BaseException]:
    """Start ``count`` threads that call ``target`` together; return what they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run() -> None:
        try:
            barrier.wait(timeout_s)
            target()
        except BaseException as exc:  # handed back to the test to assert on
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
    assert not any(thread.is_alive() for thread in threads), "threads still running"
    return errors
