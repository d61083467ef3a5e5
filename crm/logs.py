"""Logging for operators: level and format from settings, and a run id on every line.

``configure_logging`` sets up the ``crm`` and ``ui`` loggers once per process (the app
calls it from ``ui.runtime``, the CLI from ``main``): ``CRM_LOG_LEVEL`` picks the level,
``CRM_LOG_FORMAT`` either readable ``text`` or ``json`` (one object per line, for log
shippers). Each sync, push and webhook batch runs inside ``run_context``, which puts a
short run id in a context variable; ``RunIdFilter`` copies it onto every record, so
``grep sync-3fa2c1d0`` tells one run's story. Threads a run starts inherit it only when
started through ``carry`` (plain threads and pools start with an empty context).

Secrets never reach these lines: the client logs routes (path templates), never query
strings, headers or bodies, and tokens are never formatted into messages.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import json
import logging
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, ParamSpec, TypeVar

LOGGERS = ("crm", "ui")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(run_id)s] %(message)s"

RUN_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("crm_run_id", default=None)

P = ParamSpec("P")
R = TypeVar("R")


def new_run_id(kind: str) -> str:
    """A short id for one run of ``kind`` (sync, push, webhooks, schedule)."""
    return f"{kind}-{secrets.token_hex(4)}"


def current_run_id() -> str | None:
    """The run id of the work running in this context, if any."""
    return RUN_ID.get()


@contextmanager
def run_context(kind: str, run_id: str | None = None) -> Iterator[str]:
    """Tag every log line inside the block with a run id (a new one unless given)."""
    rid = run_id or new_run_id(kind)
    token = RUN_ID.set(rid)
    try:
        yield rid
    finally:
        RUN_ID.reset(token)


def in_run(kind: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: the function runs inside ``run_context(kind)`` unless a run is already current."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if RUN_ID.get() is not None:
                return fn(*args, **kwargs)
            with run_context(kind):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def carry(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` bound to a copy of the current context, for a thread or pool to run.

    Call it once per thread or submit: one context cannot be entered by two threads at once.
    """
    context = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.run(fn, *args, **kwargs)

    return run


class RunIdFilter(logging.Filter):
    """Adds ``record.run_id`` (``-`` outside a run) so formatters can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "run_id"):
            record.run_id = RUN_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, run_id, message (and exc when raised)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "run_id": _run_id_of(record),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _run_id_of(record: logging.LogRecord) -> str | None:
    rid = getattr(record, "run_id", None)
    return RUN_ID.get() if rid in (None, "-") else str(rid)


_HANDLER_NAME = "crm-operator"


@contextmanager
def logging_configured(
    level: str = "INFO", fmt: str = "text", *, stream: IO[str] | None = None
) -> Iterator[None]:
    """``configure_logging`` for the length of a block, then the loggers as they were (CLI, tests)."""
    saved = {
        name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in LOGGERS
    }
    configure_logging(level, fmt, stream=stream)
    try:
        yield
    finally:
        for name, (old_level, handlers) in saved.items():
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                if handler not in handlers:
                    logger.removeHandler(handler)
            logger.setLevel(old_level)


def configure_logging(level: str = "INFO", fmt: str = "text", *, stream: IO[str] | None = None) -> None:
    """Send the ``crm`` and ``ui`` loggers to ``stream`` (stderr) at ``level`` in ``fmt``.

    Idempotent: a second call replaces this module's handler rather than adding one.
    Raises ValueError for an unknown level or format (settings check them first).
    """
    level, fmt = level.upper(), fmt.lower()
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RunIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
