"""Command line: ``python -m crm [-v] sync [--full] [--all] | push | status | keygen | export TYPE |
migrate-cache --to URL [--from PATH] [--force] | connect hubspot|pipedrive --token T [--base-url URL]
[--name NAME] | connections | disconnect NAME [--remove] | new-contact --email E ... | links [EMAIL] |
verify [--full] [--budget N] [--fix]``.

Several connections: ``sync``, ``push``, ``status``, ``export`` and ``verify`` take ``--connection NAME``
(an id or a display name; ``CRM_CONNECTION`` sets the default). With one connection it is
optional; with several and none named, the command stops (exit 2) and lists them.

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
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from crm import cli_links as links_cli
from crm.config import Settings, load_settings
from crm.errors import (
    ConfigError,
    CrmError,
    HubSpotError,
    NotConnected,
    SyncBusy,
    UnknownConnection,
    Unreachable,
)
from crm.logs import logging_configured

EXIT_OK, EXIT_PROBLEMS, EXIT_CONFIG, EXIT_BUSY, EXIT_NOT_CONNECTED, EXIT_UNREACHABLE, EXIT_HUBSPOT = range(7)


def _settings() -> Settings:
    settings = load_settings(os.environ, {})
    if settings.is_sandbox:
        if not settings.sandbox_url and not _has_connections(settings):
            raise ConfigError(
                "HUBSPOT_ACCESS_TOKEN",
                "no HubSpot is configured: set HUBSPOT_ACCESS_TOKEN (and HUBSPOT_BASE_URL for a sandbox), "
                "or CRM_SANDBOX_URL after connecting the app to that sandbox",
            )
        if settings.sandbox_url:
            settings = settings.for_sandbox(settings.sandbox_url)
    return settings


def _has_connections(settings: Settings) -> bool:
    """Whether connections were made (``connect --token``): they need no other configuration."""
    from crm import connections

    return bool(connections.list_connections(settings, learn=False))


def _log_settings(verbose: bool) -> tuple[str, str]:
    """Level and format for the CLI's logs; a bad CRM_LOG_* setting is a ConfigError here."""
    env = {k: os.environ[k] for k in ("CRM_LOG_LEVEL", "CRM_LOG_FORMAT") if k in os.environ}
    settings = load_settings(env, {})
    return ("DEBUG" if verbose else settings.log_level), settings.log_format


def _exit_code(exc: CrmError) -> int:
    if isinstance(exc, (ConfigError, UnknownConnection)):
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

    if args.all:
        return cmd_sync_all(args, out, err)
    settings = _chosen(args, _settings())
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
    found = _pulled(settings.crm, pulled)
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


def _pulled(crm: str | None, pulled: dict[str, int]) -> str:
    """A run's record counts in the CRM's words and order, then its interactions as the Sync
    page's history counts them ("people 14, organizations 4, deals 6, notes and activities 9")."""
    from crm.crms import provider_for

    provider = provider_for(crm)
    parts = [
        f"{info.label.lower()} {pulled[info.name]}" for info in provider.object_types() if info.name in pulled
    ]
    interactions = provider.words.interactions
    if parts and interactions is not None:
        parts.append(f"{interactions.lower()} {_interactions_in(pulled)}")
    return ", ".join(parts)


def _interactions_in(counted: dict[str, int]) -> int:
    """Notes, calls, emails, meetings, tasks and threads among ``counted`` (the timeline's)."""
    from crm.store.interactions import INTERACTION_TYPES

    return sum(int(counted.get(t) or 0) for t in INTERACTION_TYPES)


def cmd_push(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from crm.sync import push

    settings = _chosen(args, _settings())
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
    from crm import crms, oauth, store
    from crm.sync.estimate import budgets_counted
    from crm.sync.runner import daily_spend
    from crm.sync.sweep import looked_for_lines

    settings = _chosen(args, _settings())
    provider = crms.provider_of(settings)
    words = provider.words
    info = oauth.connection_info(settings)
    if settings.connection:
        print(f"Connection:  {settings.connection}", file=out)
    print(f"CRM:         {words.crm}", file=out)
    print(f"Mode:        {info.mode}", file=out)
    print(f"Cache:       {settings.db_label}", file=out)
    print(f"Connection:  {info.status}" + (f" ({_one_line(info.reason)})" if info.reason else ""), file=out)
    if info.portal_id:
        account = f"{words.account.capitalize()}:"
        print(
            f"{account:<13}{info.portal_id}" + (f" ({info.hub_domain})" if info.hub_domain else ""), file=out
        )
    if info.user_email:
        print(f"User:        {info.user_email}", file=out)
    if info.mode == "oauth" or info.expires_at:
        print(f"Token:       expires {_when(info.expires_at)}", file=out)
    with store.open(settings) as db:
        run = db.syncstate.latest_run()
        cached = db.queries.counts()
        interactions = _interactions_in(db.interactions.counts())
        edits = db.outbox.outbox_counts()
        looks = looked_for_lines(db, provider.object_types(), words.crm, settings.deletion_sweep_s)
    if run is None:
        print("Last sync:   never", file=out)
    else:
        print(
            f"Last sync:   {run['state']} ({run['kind']}, started {run['started_at']}, "
            f"{run['duration_s']:.1f} s)" + (f": {_one_line(run['error'])}" if run.get("error") else ""),
            file=out,
        )
    for line in looks:
        print(f"Deletions:   {line}", file=out)
    # The CRM's own types and words: "people 12, organizations 4, deals 5, users 2" for Pipedrive.
    held = [f"{t.label.lower()} {cached.get(t.name, 0)}" for t in provider.object_types()]
    held.append(f"{words.owner}s {cached.get('owners', 0)}")
    if words.interactions is not None:  # the timeline's, as the Sync page counts them
        held.append(f"{words.interactions.lower()} {interactions}")
    print("Cached:      " + ", ".join(held), file=out)
    if budgets_counted(settings):
        print(f"Daily budget: {_daily_line(daily_spend(settings))}", file=out)
    else:
        print(
            f"Daily budget: not counted for {words.crm} (its sync waits out {words.crm}'s own rate "
            "limits instead)",
            file=out,
        )
    print(
        f"Outbox:      {edits['pending']} pending, {edits['conflict']} conflicts, {edits['failed']} refused",
        file=out,
    )
    return EXIT_OK if info.status == "connected" else EXIT_NOT_CONNECTED


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from crm.export import export_records

    settings = _chosen(args, load_settings(os.environ, {}))
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
    for partition, copied in report.partitions.items():
        print(f"  connection cache {partition}: {copied.total} rows", file=err)
    print(
        f"Copied {report.total} rows into {target}. Set CRM_DB to that URL (with its password) to use it.",
        file=out,
    )
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Compare the cache with its CRM; the planned requests are printed before any is made."""
    from crm.crms import words_for
    from crm.sync import verify as reconcile

    settings = _chosen(args, _settings())
    name = words_for(settings.crm).crm
    label = _type_labels(settings.crm)
    planned = reconcile.estimate(settings, full=args.full)
    cap = f", capped at {args.budget}" if args.budget is not None else ""
    print(
        f"Verify ({'full' if args.full else 'sample'}): about {sum(planned.values())} requests "
        f"({', '.join(f'{label(t)} {n}' for t, n in planned.items())}){cap}.",
        file=err,
        flush=True,
    )
    result = reconcile.verify(settings, full=args.full, budget=args.budget)
    for check in result.types.values():
        print(_verify_line(check, name, label(check.object_type)), file=out)
        for kind in ("missing", "extra", "stale"):
            ids: list[str] = getattr(check, kind)
            if ids:
                more = f" and {len(ids) - 20} more" if len(ids) > 20 else ""
                print(f"  {kind}: {', '.join(ids[:20])}{more}", file=out)
    state = "clean" if result.clean else ("differences found" if result.complete else "incomplete (budget)")
    print(f"Verify: {state}; {result.requests} requests.", file=out)
    if not args.fix or result.clean:
        return EXIT_OK if result.clean else EXIT_PROBLEMS
    left = None if args.budget is None else max(0, args.budget - result.requests)
    print(f"Fixing: about {reconcile.estimate_fix(result)} requests.", file=err, flush=True)
    repaired = reconcile.fix(settings, result, budget=left)
    print(
        f"Fix: {sum(repaired.fetched.values())} re-read, {sum(repaired.removed.values())} removed "
        f"(gone in {name}), {sum(repaired.kept.values())} kept (still in {name}); "
        f"{repaired.requests} requests" + ("." if repaired.complete else "; stopped at the budget."),
        file=out,
    )
    return EXIT_OK if repaired.complete and result.complete else EXIT_PROBLEMS


def _verify_line(check: Any, crm: str, shown: str) -> str:
    """One type's outcome, the type ``shown`` in the CRM's words ("people: cache 14, ...")."""
    if check.skipped:
        return f"{shown}: skipped ({_one_line(check.skipped)})"
    count = "?" if check.in_crm is None else check.in_crm
    found = f"{len(check.missing)} missing, {len(check.extra)} extra, {len(check.stale)} stale"
    partial = "" if check.complete else ", stopped at the budget"
    return f"{shown}: cache {check.cached}, {crm} {count}; {found} (checked {check.checked}{partial})"


def _type_labels(crm: str | None) -> Callable[[str], str]:
    """A neutral type's name in the CRM's words, lower case ("contacts" -> "people" for
    Pipedrive); a type the CRM does not list keeps its name."""
    from crm.crms import provider_for

    labels = {info.name: info.label.lower() for info in provider_for(crm).object_types()}
    return lambda name: labels.get(name, name)


# -- several connections ---------------------------------------------------------------


def _chosen(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings of the connection ``--connection`` (or ``CRM_CONNECTION``) names.

    With no connection registered yet the cache itself is used, as before several
    connections existed (the first connection made lives there).

    Raises:
        UnknownConnection: the name matches none, or none is named and there are several.
    """
    from crm import connections

    wanted = getattr(args, "connection", None)
    if (
        not wanted
        and not settings.preferred_connection
        and not connections.list_connections(settings, learn=False)
    ):
        return settings
    return connections.settings_for(settings, connections.resolve(settings, wanted))


def _connect_settings() -> Settings:
    """Settings for ``connect``: a sandbox is reached by ``--base-url`` as any host is."""
    settings = load_settings(os.environ, {})
    if settings.is_sandbox and settings.sandbox_url:
        settings = settings.for_sandbox(settings.sandbox_url)
    return settings


def cmd_connect(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``connect CRM --token T``: each CRM connects by its own static token (``CONNECTORS``)."""
    return CONNECTORS[args.crm](args, out)


def _connect_hubspot(args: argparse.Namespace, out: TextIO) -> int:
    """``connect hubspot --token T``: check a private app's token, store it, register the portal."""
    from crm import oauth

    token = args.token or os.environ.get("HUBSPOT_CONNECT_TOKEN", "")
    if not token:
        raise ConfigError("--token", "give the private app's access token")
    conn, info = oauth.connect_private_app(
        _connect_settings(), token, name=args.name, base_url=args.base_url or ""
    )
    print(f"Connected {conn.name} (id {conn.id}, portal {info.portal_id}): {info.status}.", file=out)
    return EXIT_OK if info.is_connected else EXIT_NOT_CONNECTED


def _connect_pipedrive(args: argparse.Namespace, out: TextIO) -> int:
    """``connect pipedrive --token T --base-url URL``: check the token, store it, register the company."""
    from crm import pipedrive_auth
    from crm.crms import words_for

    token = args.token or os.environ.get("PIPEDRIVE_CONNECT_TOKEN", "")
    if not token:
        raise ConfigError("--token", "give the Pipedrive API token (Personal preferences > API)")
    if not args.base_url:
        raise ConfigError("--base-url", "give the company's API domain, like https://acme.pipedrive.com")
    settings = _connect_settings()
    conn, info = pipedrive_auth.connect_api_token(settings, token, base_url=args.base_url, name=args.name)
    account = words_for("pipedrive").account_label(info.portal_id)
    print(f"Connected {conn.name} (id {conn.id}, {account}): {info.status}.", file=out)
    if info.is_connected and settings.pipedrive_webhook_url:
        # As the consent flow does: its webhooks at PIPEDRIVE_WEBHOOK_URL (failures are logged).
        from crm import subscriptions

        if subscriptions.ensure_all(settings):
            print(f"Webhooks registered at {settings.pipedrive_webhook_url}.", file=out)
    return EXIT_OK if info.is_connected else EXIT_NOT_CONNECTED


# How ``connect`` connects each CRM (by name, as ``crm.crms.names()``); the parser offers these.
CONNECTORS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "hubspot": _connect_hubspot,
    "pipedrive": _connect_pipedrive,
}


def cmd_connections(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from crm import connections

    settings = _connect_settings()
    found = connections.list_connections(settings)
    if not found:
        print(
            "No connections yet: connect a portal on the Connect page or with `python -m crm connect`.",
            file=out,
        )
        return EXIT_OK
    for conn in found:
        state = connections.status(settings, conn)
        last = state.last_sync_at or "never"
        print(
            f"{conn.id}\t{conn.name}\t{state.label}\tlast sync {last}\t"
            f"{state.pending_edits} pending, {state.conflicts} conflicts",
            file=out,
        )
    return EXIT_OK


def cmd_disconnect(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from crm import connections, oauth

    settings = _connect_settings()
    conn = connections.resolve(settings, args.name)
    if args.remove:
        result = connections.remove(settings, conn)
        print(
            f"Removed {conn.name} and its cache ({result.dropped_edits} queued edits dropped). {result.detail}",
            file=out,
        )
        return EXIT_OK
    outcome = oauth.disconnect(connections.settings_for(settings, conn))
    print(f"Disconnected {conn.name}; its cache is kept. {outcome.message}", file=out)
    return EXIT_OK


def cmd_sync_all(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from crm.sync.several import sync_all

    outcomes = sync_all(
        _settings(),
        kind="full" if args.full else "incremental",
        trigger="cli",
        started_by=os.environ.get("USER"),
    )
    if not outcomes:
        print("No connections to sync.", file=out)
        return EXIT_NOT_CONNECTED
    for outcome in outcomes:
        if outcome.run is not None:
            pulled = (outcome.run.get("counts") or {}).get("records") or {}
            found = _pulled(outcome.connection.crm, pulled) or "no records"
            line = f"{outcome.run['state']} in {outcome.run.get('duration_s') or 0:.1f} s: {found}"
        else:
            line = f"{'busy' if outcome.busy else 'failed'}: {_one_line(str(outcome.error))}"
        print(f"{outcome.connection.name}: {line}", file=out)
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_PROBLEMS


def _add_connection_commands(commands: Any) -> None:
    """The ``connect``, ``connections`` and ``disconnect`` subcommands."""
    connect = commands.add_parser(
        "connect", help="connect a HubSpot portal (private-app token) or a Pipedrive company (API token)"
    )
    connect.add_argument("crm", choices=list(CONNECTORS))
    connect.add_argument(
        "--token", default=None, help="the private app's access token, or Pipedrive's API token"
    )
    connect.add_argument(
        "--base-url",
        default=None,
        help="the API host: HubSpot's if not HUBSPOT_BASE_URL (a sandbox); Pipedrive's company domain (required)",
    )
    connect.add_argument("--name", default=None, help="the connection's display name")
    commands.add_parser("connections", help="list the connections with their status")
    disconnect = commands.add_parser("disconnect", help="revoke a connection's tokens (its cache stays)")
    disconnect.add_argument("name", help="the connection's id or name")
    disconnect.add_argument("--remove", action="store_true", help="also remove the connection and its cache")


def _connection_option(*parsers: argparse.ArgumentParser) -> None:
    for parser in parsers:
        parser.add_argument(
            "--connection", default=None, help="the connection's id or name (optional when there is one)"
        )


def cmd_keygen(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode(), file=out)
    return EXIT_OK


def cmd_pronouns(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``pronouns``: set up the pronouns contact property in every connection that lacks it."""
    from crm.sync import describe_setup, set_up_pronouns_everywhere

    results = set_up_pronouns_everywhere(_settings())
    if not results:
        print("No connections to set up.", file=out)
        return EXIT_NOT_CONNECTED
    for result in results:
        print(f"Pronouns {_one_line(describe_setup(result))}", file=out if result.status != "failed" else err)
    return EXIT_OK if all(r.status != "failed" for r in results) else EXIT_PROBLEMS


def _add_pronouns_command(commands: Any) -> None:
    commands.add_parser(
        "pronouns", help="set up the pronouns contact property in every connected CRM lacking it"
    )


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
    sync.add_argument("--all", action="store_true", help="sync every connection at once")
    push_parser = commands.add_parser("push", help="send queued local edits to HubSpot")
    status = commands.add_parser("status", help="connection, last sync and outbox")
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
    check = commands.add_parser("verify", help="compare the cache with its CRM (and --fix what differs)")
    check.add_argument("--full", action="store_true", help="every id, not a sample")
    check.add_argument("--budget", type=int, default=None, help="most requests to make (check and fix)")
    check.add_argument("--fix", action="store_true", help="re-read missing/stale, remove records gone")
    _connection_option(sync, push_parser, status, export, check)
    _add_connection_commands(commands)
    _add_pronouns_command(commands)
    links_cli.add_commands(commands)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG (each HubSpot call)")
    args = parser.parse_args(argv)
    handler = {
        "sync": cmd_sync,
        "push": cmd_push,
        "status": cmd_status,
        "keygen": cmd_keygen,
        "export": cmd_export,
        "migrate-cache": cmd_migrate_cache,
        "verify": cmd_verify,
        "connect": cmd_connect,
        "connections": cmd_connections,
        "disconnect": cmd_disconnect,
        "pronouns": cmd_pronouns,
        **links_cli.HANDLERS,
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
