"""``python -m crm.bench``: run the scenarios, print the table, write JSON (and the docs)."""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crm.bench import report
from crm.bench.options import BenchOptions, from_args, parser
from crm.bench.pipedrive import run_pipedrive
from crm.bench.processes import REPO, BenchError, SandboxProcess
from crm.bench.scenarios import PullBench, workdir

DOCS = REPO / "docs" / "PERFORMANCE.md"
README = REPO / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
# The dashboard's sandbox portal: big enough to have every kind of record, small to sync.
DASHBOARD_PORTAL = {"contacts": 200, "companies": 40, "deals": 60}
# The benchmark's PostgreSQL: the tests' throwaway settings with room for a million contacts
# (shared_buffers is PostgreSQL's own cache; the app's memory is measured apart).
# The scenarios that need the HubSpot sandbox (the Pipedrive one starts its own).
HUBSPOT_SCENARIOS = {"full", "sdk", "incremental", "push", "dashboard"}
# The scenarios that start a sandbox of their own, by the name the command line gives them
# (crm.bench.options.SCENARIOS), which is also the result's key: another CRM's scenario is an
# entry here, never a comparison with its name.
OwnSandbox = Callable[[BenchOptions, Path, Callable[[str], None]], dict[str, Any]]
OWN_SANDBOX_SCENARIOS: dict[str, OwnSandbox] = {"pipedrive": run_pipedrive}
PG_BENCH_SETTINGS = {"shared_buffers": "256MB", "maintenance_work_mem": "256MB", "work_mem": "16MB"}


def _log(message: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


def run(options: BenchOptions) -> dict[str, Any]:
    """Run the selected scenarios (HubSpot's on one HubSpot sandbox process, Pipedrive's on a
    Pipedrive sandbox process); return the result dict."""
    started = time.monotonic()
    result: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": report.command_line(),
        "options": options.to_json(),
        "machine": report.machine_info(),
    }
    # A scenario that breaks is recorded and the run goes on: a half table beats none.
    errors: list[str] = []
    with workdir() as tmp:
        folder = Path(tmp)
        if set(options.scenarios) & HUBSPOT_SCENARIOS:
            _hubspot(options, folder, result, errors)
        for scenario in [s for s in OWN_SANDBOX_SCENARIOS if s in options.scenarios]:
            try:
                result[scenario] = OWN_SANDBOX_SCENARIOS[scenario](options, folder, _log)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{scenario}: {type(exc).__name__}: {exc}")
                _log(f"{scenario} scenario stopped: {exc}")
    if errors:
        result["error"] = "; ".join(errors)
    result["duration_s"] = round(time.monotonic() - started, 1)
    result["targets"] = report.evaluate_targets(result)
    return result


def _hubspot(options: BenchOptions, folder: Path, result: dict[str, Any], errors: list[str]) -> None:
    """The HubSpot scenarios on one HubSpot sandbox process (stopped afterwards)."""
    with SandboxProcess(seed=options.seed) as sandbox:
        _log(f"sandbox at {sandbox.url}")
        pulls = PullBench(options, sandbox, folder, _log)
        result["sandbox"] = pulls.configure()
        if set(options.scenarios) & {"full", "sdk", "incremental", "push"}:
            try:
                pulls.run(result)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"pulls: {type(exc).__name__}: {exc}")
                _log(f"pull scenarios stopped: {exc}")
        if "dashboard" in options.scenarios:
            try:
                result["dashboard"] = _dashboard(options, sandbox, pulls, folder)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"dashboard: {type(exc).__name__}: {exc}")
                _log(f"dashboard stopped: {exc}")
        result["sandbox"]["peak_mb"] = sandbox.peak_mb()


def _dashboard(
    options: BenchOptions, sandbox: SandboxProcess, pulls: PullBench, folder: Path
) -> list[dict[str, Any]]:
    """The dashboard over each backend in turn, the same portal and synthetic records on both."""
    assert sandbox.admin is not None
    sandbox.admin.reset(seed=options.seed, owners=12, tokens=True, **DASHBOARD_PORTAL)
    token = sandbox.admin.private_app_token()
    rows: list[dict[str, Any]] = []
    for backend in options.backends:
        if backend == "postgresql":
            rows += _dashboard_postgresql(options, sandbox.url, token, folder)
        else:
            rows += _dashboard_on(options, sandbox.url, token, folder, None)
    return rows


def _dashboard_on(
    options: BenchOptions, url: str, token: str, folder: Path, target: str | None
) -> list[dict[str, Any]]:
    from crm.bench.dashboard import DashboardBench

    bench = DashboardBench(
        sandbox_url=url,
        token=token,
        workdir=folder,
        seed=options.seed,
        log=_log,
        target=target,
        interactions=options.interactions,
        heavy_timeline=options.heavy_timeline,
    )
    try:
        return bench.run(options.dashboard_sizes)
    except BenchError as exc:
        _log(f"dashboard ({bench.backend}) failed: {exc}")
        return [
            {
                "backend": bench.backend,
                "cached_contacts": max(options.dashboard_sizes),
                "ok": False,
                "error": str(exc)[-600:],
            }
        ]


def _dashboard_postgresql(options: BenchOptions, url: str, token: str, folder: Path) -> list[dict[str, Any]]:
    """The dashboard over a PostgreSQL cache in a throwaway local cluster (stopped afterwards)."""
    from crm import store
    from crm.bench.pgserver import PgCluster, PostgresUnavailable

    try:
        cluster = PgCluster(settings=PG_BENCH_SETTINGS)
        cluster.start()
    except (PostgresUnavailable, OSError) as exc:
        _log(f"PostgreSQL did not start: {exc}")
        return [
            {
                "backend": "postgresql",
                "cached_contacts": max(options.dashboard_sizes),
                "ok": False,
                "error": f"PostgreSQL did not start: {str(exc).splitlines()[0]}",
            }
        ]
    try:
        _log(f"PostgreSQL {cluster.bindir.parent.name} on 127.0.0.1:{cluster.port}")
        return _dashboard_on(options, url, token, folder, cluster.create_database(name="crm_bench"))
    finally:
        store.close_engines()
        cluster.stop()


def publish(result: dict[str, Any], docs: Path = DOCS, *, readme: Path | None = None) -> None:
    """Replace the generated block of docs/PERFORMANCE.md (and README.md's, when it has the
    markers) with this run's machine line and tables."""
    block = f"{BEGIN}\n{report.machine_markdown(result)}\n\n{report.render_markdown(result)}{END}"
    text = docs.read_text() if docs.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    docs.write_text(_with_block(text, block) or text.rstrip() + "\n\n" + block + "\n")
    if readme is not None and readme.exists():
        updated = _with_block(readme.read_text(), block)
        if updated is not None:
            readme.write_text(updated)


def _with_block(text: str, block: str) -> str | None:
    if BEGIN not in text or END not in text:
        return None
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + block + tail


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.render:
        result = report.load_json(args.render)
        # Verdicts are judged again, so a stored run reads the way this version judges it.
        result["targets"] = report.evaluate_targets(result)
        print(report.render_console(result))
        if args.write_docs:
            publish(result, readme=README)
        return 0
    options = from_args(args)
    result = run(options)
    print(report.render_console(result))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    paths = (
        [options.json_path]
        if options.json_path
        else [options.results_dir / f"bench-{stamp}.json", options.results_dir / "latest.json"]
    )
    for path in paths:
        report.write_json(result, path)
    markdown = paths[0].with_suffix(".md")
    markdown.write_text(report.machine_markdown(result) + "\n\n" + report.render_markdown(result))
    _log(f"results: {', '.join(str(p) for p in paths)} and {markdown}")
    if options.write_docs:
        publish(result, readme=README)
        _log(f"updated {DOCS}")
    return 1 if result.get("error") else 0
