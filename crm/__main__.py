"""Command line: ``python -m crm [-v] sync [--full] | push | status | keygen | export TYPE |
migrate-cache --to URL [--from PATH] [--force]``.

Settings come from the environment (``load_settings(os.environ, {})``):
``HUBSPOT_ACCESS_TOKEN`` + ``HUBSPOT_BASE_URL`` run headless against any portal or a
sandbox; ``CRM_DB`` picks the cache. Progress goes to stderr, the summary to stdout.
Logs go to stderr at ``CRM_LOG_LEVEL`` (``-v``: DEBUG) in ``CRM_LOG_FORMAT``; each sync
and push carries a run id in its lines (``crm.logs``).

Exit status: 0 success; 1 the work finished with problems (refused edits, conflicts, a sync
paused for the daily budget) or another error; 2 configuration; 3 another sync or push is
running; 4 not connected; 5 HubSpot unreachable; 6 HubSpot refused the request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from crm.config import Settings, load_settings
from crm.errors import ConfigError, CrmError, HubSpotError, NotConnected, SyncBusy, Unreachable
from crm.logs import logging_configured

EXIT_OK, EXIT_PROBLEMS, EXIT_CONFIG, EXIT_BUSY, EXIT_NOT_CONNECTED, EXIT_UNREACHABLE, EXIT_HUBSPOT = range(7)


def _settings() -> Settings:
    settings = load_settings(os.environ, {})
    if settings.is_sandbox:
        if not settings.sandbox_url:
            raise ConfigError(
                "HUBSPOT_ACCESS_TOKEN",
                "no HubSpot is configured: set HUBSPOT_ACCESS_TOKEN (and HUBSPOT_BASE_URL for a sandbox), "
                "or CRM_SANDBOX_URL after connecting the app to that sandbox",
            )
        settings = settings.for_sandbox(settings.sandbox_url)
    return settings


def _log_settings(verbose: bool) -> tuple[str, str]:
    """Level and format for the CLI's logs; a bad CRM_LOG_* setting is a ConfigError here."""
    env = {k: os.environ[k] for k in ("CRM_LOG_LEVEL", "CRM_LOG_FORMAT") if k in os.environ}
    settings = load_settings(env, {})
    return ("DEBUG" if verbose else settings.log_level), settings.log_format


def _exit_code(exc: CrmError) -> int:
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, SyncBusy):
        return EXIT_BUSY
    if isinstance(exc, NotConnected):
        return EXIT_NOT_CONNECTED
    if isinstance(exc, Unreachable):
        return EXIT_UNREACHABLE
    if isinstance(exc, HubSpotError):
        return EXIT_HUBSPOT
    return EXIT_PROBLEMS


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _progress_line(run: dict[str, Any]) -> str:
    total = f"/{run['total']}" if run.get("total") is not None else ""
    where = f" {run['object_type']}" if run.get("object_type") else ""
    return (
        f"sync {run.get('phase') or ''}{where}: {run.get('done', 0)}{total} records, "
        f"{run.get('requests', 0)} requests, {run.get('retries', 0)} retries, {run.get('rate_limited', 0)} rate-limited"
    )


def _watch(settings: Settings, stop: threading.Event, err: TextIO) -> None:
    from crm import store

    last = ""
    with store.open(settings) as db:
        while not stop.wait(0.5):
            run = db.syncstate.latest_run()
            if run and run["state"] == "running":
                line = _progress_line(run)
                if line != last:
                    print(line, file=err, flush=True)
                    last = line


def cmd_sync(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from crm.sync import run_sync

    settings = _settings()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(settings, stop, err), daemon=True)
    watcher.start()
    try:
        run = run_sync(
            settings,
            kind="full" if args.full else "incremental",
            trigger="cli",
            started_by=os.environ.get("USER"),
        )
    finally:
        stop.set()
        watcher.join(timeout=2)
    counts = run.get("counts") or {}
    pulled = counts.get("records") or {}
    found = ", ".join(f"{t} {pulled[t]}" for t in ("contacts", "companies", "deals") if t in pulled)
    archived = sum((counts.get("archived") or {}).values())
    conflicts = counts.get("conflicts", 0)
    print(
        f"Sync {run['state']} in {run.get('duration_s', 0):.1f} s: {found or 'no records'}; {archived} archived; "
        f"{counts.get('associations', 0)} associations; {conflicts} new conflicts; "
        f"{run.get('requests', 0)} requests, {run.get('retries', 0)} retries, "
        f"{run.get('rate_limited', 0)} rate-limited.",
        file=out,
    )
    if run["state"] == "paused":
        print(_one_line(run.get("error") or "Paused for the daily budget."), file=out)
    return EXIT_OK if run["state"] == "succeeded" else EXIT_PROBLEMS


def cmd_push(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from crm.sync import push

    settings = _settings()
    summary = push(settings, by=os.environ.get("USER"))
    for result in summary["results"]:
        if result["status"] in ("failed", "conflict", "retry"):
            field = f".{result['property']}" if result.get("property") else ""
            print(
                f"{result['status']}: {result['object_type']} {result['record_id']}{field}: "
                f"{_one_line(result.get('message') or '')}",
                file=err,
            )
    print(
        f"Push: {summary['pushed']} sent, {summary['failed']} refused, {summary['conflicts']} conflicts, "
        f"{summary['retry']} to retry.",
        file=out,
    )
    return EXIT_OK if not (summary["failed"] or summary["conflicts"] or summary["retry"]) else EXIT_PROBLEMS


def _when(epoch: float | None) -> str:
    if not epoch:
        return "unknown"
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    left = epoch - time.time()
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({'in' if left >= 0 else 'expired'} {abs(left) / 60:.0f} min{'' if left >= 0 else ' ago'})"


def _daily_line(daily: dict[str, Any] | None) -> str:
    """The daily budget as the last run left it, in one line (``DailyBudget.snapshot``)."""
    if not daily:
        return "no sync has counted requests yet"
    used, allowance, day = int(daily.get("used") or 0), daily.get("allowance"), daily.get("day")
    if allowance is None:
        return (
            f"{used:,} requests used on {day}; the portal's daily limit is unknown (HubSpot sends no "
            "daily-limit headers to OAuth apps; set CRM_DAILY_LIMIT to count against one)"
        )
    source = "HubSpot's" if daily.get("source") == "headers" else "the configured (CRM_DAILY_LIMIT)"
    return (
        f"{used:,} of {int(allowance):,} requests used on {day} ({float(daily['share']):.0%} of "
        f"{source} daily limit of {int(daily['limit']):,})"
    )


def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from crm import oauth, store
    from crm.sync.runner import daily_spend

    settings = _settings()
    info = oauth.connection_info(settings)
    print(f"Mode:        {info.mode}", file=out)
    print(f"Cache:       {settings.db_label}", file=out)
    print(f"Connection:  {info.status}" + (f" ({_one_line(info.reason)})" if info.reason else ""), file=out)
    if info.portal_id:
        print(
            f"Portal:      {info.portal_id}" + (f" ({info.hub_domain})" if info.hub_domain else ""), file=out
        )
    if info.user_email:
        print(f"User:        {info.user_email}", file=out)
    if info.mode == "oauth" or info.expires_at:
        print(f"Token:       expires {_when(info.expires_at)}", file=out)
    with store.open(settings) as db:
        run = db.syncstate.latest_run()
        cached = db.queries.counts()
        edits = db.outbox.outbox_counts()
    if run is None:
        print("Last sync:   never", file=out)
    else:
        print(
            f"Last sync:   {run['state']} ({run['kind']}, started {run['started_at']}, "
            f"{run['duration_s']:.1f} s)" + (f": {_one_line(run['error'])}" if run.get("error") else ""),
            file=out,
        )
    print("Cached:      " + ", ".join(f"{k} {v}" for k, v in cached.items()), file=out)
    print(f"Daily budget: {_daily_line(daily_spend(settings))}", file=out)
    print(
        f"Outbox:      {edits['pending']} pending, {edits['conflict']} conflicts, {edits['failed']} refused",
        file=out,
    )
    return EXIT_OK if info.status == "connected" else EXIT_NOT_CONNECTED


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from crm.export import export_records

    settings = load_settings(os.environ, {})
    count = export_records(settings, args.object_type, out, fmt=args.format, search=args.search)
    print(f"Exported {count} {args.object_type}.", file=err)
    return EXIT_OK


def cmd_migrate_cache(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from crm.config import is_postgresql_url, redact_db_url
    from crm.store.copy import copy_sqlite_to_postgresql

    source = args.source
    if source is None:
        configured = load_settings({k: v for k, v in os.environ.items() if k == "CRM_DB"}, {})
        if configured.db_is_postgresql:
            raise ConfigError(
                "CRM_DB", "is already PostgreSQL; name the SQLite cache to copy with --from PATH"
            )
        source = configured.db
    if not is_postgresql_url(args.to):
        raise ConfigError("--to", "must be a postgresql:// URL, like postgresql://user@host/crm")
    target = redact_db_url(args.to)
    print(f"Copying the SQLite cache {source} into {target}...", file=err)
    report = copy_sqlite_to_postgresql(source, args.to, force=args.force)
    for table, count in sorted(report.rows.items()):
        if count:
            print(f"  {table}: {count}", file=err)
    print(
        f"Copied {report.total} rows into {target}. Set CRM_DB to that URL (with its password) to use it.",
        file=out,
    )
    return EXIT_OK


def cmd_keygen(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode(), file=out)
    return EXIT_OK


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = argparse.ArgumentParser(
        prog="python -m crm", description="HubSpot CRM cache: sync, push, status."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    sync = commands.add_parser("sync", help="pull changes from HubSpot into the cache")
    sync.add_argument("--full", action="store_true", help="re-read everything instead of what changed")
    commands.add_parser("push", help="send queued local edits to HubSpot")
    commands.add_parser("status", help="connection, last sync and outbox")
    commands.add_parser("keygen", help="print a new key for CRM_SECRET_KEY")
    export = commands.add_parser("export", help="write the cached records of one type to stdout")
    export.add_argument("object_type", choices=["contacts", "companies", "deals", "tickets"])
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.add_argument("--search", default=None, help="only records the page's search would show")
    migrate = commands.add_parser("migrate-cache", help="copy a SQLite cache into PostgreSQL")
    migrate.add_argument("--to", required=True, help="the PostgreSQL database: postgresql://user@host/db")
    migrate.add_argument(
        "--from", dest="source", default=None, help="the SQLite cache file (default: CRM_DB)"
    )
    migrate.add_argument("--force", action="store_true", help="replace what the PostgreSQL database holds")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG (each HubSpot call)")
    args = parser.parse_args(argv)
    handler = {
        "sync": cmd_sync,
        "push": cmd_push,
        "status": cmd_status,
        "keygen": cmd_keygen,
        "export": cmd_export,
        "migrate-cache": cmd_migrate_cache,
    }[args.command]
    try:
        level, fmt = _log_settings(args.verbose)
        with logging_configured(level, fmt, stream=err):
            return handler(args, out, err)
    except CrmError as exc:
        print(f"error: {_one_line(str(exc))}", file=err)
        return _exit_code(exc)
    except KeyboardInterrupt:
        print("error: interrupted", file=err)
        return 130


if __name__ == "__main__":
    sys.exit(main())
