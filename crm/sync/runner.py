"""Running a sync: the lease, the heartbeat that writes progress, and the background runner.

``run_sync`` blocks (CLI, tests); ``SyncRunner.start`` runs the same thing in a
background thread (the app). Both take the portal's lease first, so a second request
(another tab, the CLI) gets ``SyncBusy`` / ``False`` and shows the running one's progress.

Which pull: a CRM whose provider offers a tuned one (``TunedPull``: HubSpot, whose
``crm.sync.pull`` runs on a ``HubSpotClient``) gets it; any other CRM is pulled through the
CRM interface alone (``crm.sync.listpull``) with the API ``crms.provider_of(settings).connect``
gives. Both share the lease, heartbeat, progress, run history and errors.

A heartbeat thread writes the run's progress every HEARTBEAT_S seconds and renews the
lease; if the lease was taken over (this process was presumed dead), the run stops at
the next page without saving cursors.

Every log line of a run carries the run id ``sync-<run row id>`` (``crm.logs``), so the
lines match the Sync page's history; at INFO a run is two lines, its start and its end.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from crm import crms, store
from crm.config import Settings
from crm.errors import CrmError, DailyBudgetSpent, DailyLimitReached, SyncBusy
from crm.hubspot import HubSpotClient
from crm.interface import CrmApi, ReportsUsage
from crm.logs import carry, run_context
from crm.store import Store, syncstate
from crm.sync.listpull import ListPuller
from crm.sync.pull import WALKERS, Puller, pause_message
from crm.sync.runstate import OVERLAP_MS, Interrupted, Progress
from crm.sync.sweep import SweepPolicy

log = logging.getLogger("crm.sync")

HEARTBEAT_S = 0.5
# This app's requests of the day so far (``DailyBudget.snapshot``), so runs add up across processes.
DAILY_SPEND_KEY = "daily_budget"
# The account's default currency as its last sync read it ("" when the CRM named none): what a
# deal naming no currency is in. Kept in the cache so the Deals page never asks the CRM.
ACCOUNT_CURRENCY_KEY = "account_currency"
# A paused run resumes this long after the portal's midnight (HubSpot's clock is not ours).
RESUME_GRACE_S = 60.0
Kind = Literal["incremental", "full"]


@runtime_checkable
class TunedPull(Protocol):
    """A CRM (``crm.interface.Crm``) with a pull of its own: HubSpot's ``crm.sync.pull``.

    Declared here, not in crm.interface: the client it opens is HubSpot's, which the neutral
    interface never names.
    """

    def open_sync_client(self, settings: Settings) -> HubSpotClient:
        """The client the tuned pull runs on, for the connection ``settings`` are for."""
        ...


def _open(settings: Settings) -> tuple[HubSpotClient | None, CrmApi | None]:
    """The tuned client if the connection's CRM has a tuned pull, else its connected API."""
    provider = crms.provider_of(settings)
    if isinstance(provider, TunedPull):
        return provider.open_sync_client(settings), None
    return None, provider.connect(settings)


def split_client(made: Any) -> tuple[HubSpotClient | None, CrmApi | None]:
    """What a client factory made, as ``(client, api)``: a HubSpotClient runs the tuned pull,
    anything else is a ``CrmApi`` for the generic one."""
    if made is None or isinstance(made, HubSpotClient):
        return made, None
    return None, made


def run_kind(db: Store, kind: str) -> str:
    """What a run is called by what it does: an incremental sync of a cache no full pull ever
    completed in (a connection never synced) reads everything, so it is a "full" run (the
    Sync page's history, the budget's estimate of a full re-sync). The pull itself still
    gets the kind asked for (an incremental resumes a full pull cut short)."""
    if kind == "incremental" and not db.syncstate.has_complete_pull():
        return "full"
    return kind


def _busy_message(db: Store) -> str:
    run = db.syncstate.latest_run()
    if run and run["state"] == "running":
        who = f" by {run['started_by']}" if run.get("started_by") else ""
        return f"A sync is already running (run {run['id']}, started {run['started_at']}{who})."
    return "A sync is already running."


def run_sync(
    settings: Settings,
    *,
    kind: Kind = "incremental",
    trigger: str = "ui",
    started_by: str | None = None,
    client: HubSpotClient | None = None,
    walkers: int = WALKERS,
    overlap_ms: int = OVERLAP_MS,
    live_associations: bool | None = None,
    api: CrmApi | None = None,
) -> dict[str, Any]:
    """Pull the connection's CRM into the cache and wait for it to finish.

    Args:
        kind: "incremental" (what changed since the last run; a type that never had a
            complete full pull gets one) or "full" (re-read everything).
        client: a HubSpotClient to use (not closed here); default ``crm.oauth.open_client``.
        api: a connected ``CrmApi`` to pull through the generic pull (not closed here), e.g.
            an opened ``PipedriveApi``; default: the provider's ``connect(settings)`` when its
            CRM has no tuned pull.
        walkers: list walkers per object type in a full pull (search walkers run beside
            them); 1 reads each type as one sequential list walk.
        overlap_ms: how far before the previous run's start an incremental pull looks.
        live_associations: whether live updates bring association changes, so an
            incremental pull need not re-read them; None asks the live status
            (``crm.journal.associations_arrive_live``).

    Returns:
        The finished run (as ``db.syncstate.latest_run()`` shows it).

    Raises:
        SyncBusy: another sync holds the lease.
        CrmError: the run failed (NotConnected, Unreachable, HubSpotError...); the run
            row says so too.
    """
    with store.open(settings) as db:
        owner = syncstate.new_owner()
        run_id = db.syncstate.start_run(
            kind=run_kind(db, kind), trigger=trigger, started_by=started_by, owner=owner
        )
        if run_id is None:
            raise SyncBusy(_busy_message(db))
    return _execute(
        settings,
        run_id,
        owner,
        kind,
        client=client,
        walkers=walkers,
        overlap_ms=overlap_ms,
        live_associations=live_associations,
        api=api,
    )


def _claim_cache(settings: Settings) -> None:
    """A private-app token may now belong to another portal: never mix two in one cache."""
    from crm.oauth import connection_info

    portal_id = connection_info(settings).portal_id
    if not portal_id:
        return
    with store.open(settings) as db:
        if db.meta.claim_for_portal(int(portal_id)):
            log.info("The cache held another portal's records; cleared for portal %s", portal_id)


def _execute(settings: Settings, run_id: int, owner: str, kind: str, **options: Any) -> dict[str, Any]:
    """``_execute_run`` with the run's id on every log line, and its start and end at INFO."""
    with run_context("sync", f"sync-{run_id}"):
        log.info("sync run %s started (%s)", run_id, kind)
        run = _execute_run(settings, run_id, owner, kind, **options)
        log.info("sync run %s %s", run_id, _outcome(run))
        return run


def _outcome(run: dict[str, Any]) -> str:
    """One line for the log: how a finished run ended and what it did."""
    counts = run.get("counts") or {}
    pulled = counts.get("records") or {}
    found = ", ".join(f"{t} {n}" for t, n in pulled.items()) or "no records"
    return (
        f"{run.get('state')} in {run.get('duration_s') or 0:.1f} s: {found}; "
        f"{sum((counts.get('archived') or {}).values())} archived; {counts.get('conflicts', 0)} new conflicts; "
        f"{run.get('requests', 0)} requests, {run.get('retries', 0)} retries, {run.get('rate_limited', 0)} rate-limited"
    )


def _execute_run(
    settings: Settings,
    run_id: int,
    owner: str,
    kind: str,
    *,
    client: HubSpotClient | None,
    walkers: int,
    overlap_ms: int,
    live_associations: bool | None = None,
    api: CrmApi | None = None,
) -> dict[str, Any]:
    own_client = client is None and api is None
    stop = threading.Event()
    finished = threading.Event()
    progress = Progress()
    beat = threading.Thread(
        target=carry(_heartbeat),
        args=(settings, run_id, owner, progress, stop, finished),
        name=f"sync-heartbeat-{run_id}",
        daemon=True,
    )
    beat.start()
    state, error = "failed", None
    try:
        if client is None and api is None:
            client, api = _open(settings)
        if client is None:
            assert api is not None
            _pull_generic(settings, api, kind, progress, run_id, stop=stop, overlap_ms=overlap_ms)
        else:
            _pull_tuned(
                settings,
                client,
                kind,
                progress,
                run_id,
                stop=stop,
                walkers=walkers,
                overlap_ms=overlap_ms,
                live_associations=live_associations,
            )
        state = "succeeded"
    except (DailyBudgetSpent, DailyLimitReached) as exc:
        # Not a failure: what was read is saved, and the next run goes on from there.
        state = "paused"
        progress.set(resume_at=exc.resume_at)
        error = pause_message(client.limits.daily.snapshot()) if client is not None else str(exc)
        log.info("sync run %s paused: %s", run_id, error)
    except Interrupted as exc:
        state, error = "interrupted", str(exc)
        raise CrmError(f"The sync stopped: {exc}") from exc
    except CrmError as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.info("sync run %s failed: %s", run_id, error)
        raise
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.exception("sync run %s failed", run_id)
        raise
    finally:
        finished.set()
        beat.join(timeout=10)
        if own_client and client is not None:
            client.close()
        if own_client and api is not None:
            api.close()
        with store.open(settings) as db:
            if client is not None:
                db.meta.put(DAILY_SPEND_KEY, json.dumps(client.limits.daily.snapshot(), sort_keys=True))
            progress.set(phase="done" if state == "succeeded" else progress.phase)
            db.syncstate.finish_run(run_id, owner, state=state, progress=progress.snapshot(), error=error)
    return _finish(settings, run_id, state)


def _pull_tuned(
    settings: Settings,
    client: HubSpotClient,
    kind: str,
    progress: Progress,
    run_id: int,
    *,
    stop: threading.Event,
    walkers: int,
    overlap_ms: int,
    live_associations: bool | None,
) -> None:
    """HubSpot's tuned pull (``crm.sync.pull``), its request counts and its daily budget."""
    _claim_cache(settings)
    progress.count_requests(client.stats.snapshot)
    if live_associations is None:
        live_associations = _associations_live(settings)
    progress.watch_budgets(client.limits.gauges)
    _seed_daily(settings, client, _account_for(settings, client, kind))
    Puller(
        store.target_of(settings),
        client,
        progress,
        run_id,
        stop=stop,
        walkers=walkers,
        overlap_ms=overlap_ms,
        live_associations=live_associations,
    ).run(kind)


def _pull_generic(
    settings: Settings,
    api: CrmApi,
    kind: str,
    progress: Progress,
    run_id: int,
    *,
    stop: threading.Event,
    overlap_ms: int,
) -> None:
    """Any CRM through the interface alone (``crm.sync.listpull``); its request counts and
    rate windows when the API reports them (``ReportsUsage``: Pipedrive's burst window)."""
    _claim_for_account(settings, api)
    if isinstance(api, ReportsUsage):
        progress.count_requests(api.request_stats)
        progress.watch_budgets(api.rate_gauges)
    ListPuller(
        store.target_of(settings),
        api,
        crms.provider_of(settings).object_types(),
        progress,
        run_id,
        stop=stop,
        overlap_ms=overlap_ms,
        sweep=SweepPolicy.of(settings),
    ).run(kind)


def _finish(settings: Settings, run_id: int, state: str) -> dict[str, Any]:
    """The finished run as the Sync page shows it."""
    with store.open(settings) as db:
        return db.syncstate.get_run(run_id) or {"id": run_id, "state": state}


def _claim_for_account(settings: Settings, api: CrmApi) -> None:
    """The generic pull's ``_claim_cache``: a cache holds one account's records, so one that
    held another account's is cleared first (the account is asked of the API: one request)."""
    identity = api.identity()
    account = identity.account_id
    if not account.isdigit():
        return
    with store.open(settings) as db:
        if db.meta.claim_for_portal(int(account)):
            log.info("The cache held another account's records; cleared for account %s", account)
        db.meta.put(ACCOUNT_CURRENCY_KEY, identity.currency or "")


def _associations_live(settings: Settings) -> bool:
    """Whether live updates are healthy enough to bring association changes (crm.journal)."""
    from crm.journal import associations_arrive_live  # crm.journal -> crm.webhooks -> crm.sync

    healthy, why = associations_arrive_live(settings)
    log.info("associations %s: %s", "follow live updates" if healthy else "are re-read", why)
    return healthy


def _account_for(settings: Settings, client: HubSpotClient, kind: str) -> dict[str, Any] | None:
    """The portal's account info, read (one request) on a full sync or when the cache has no
    account currency yet, and its currency kept (``ACCOUNT_CURRENCY_KEY``); None otherwise or
    when HubSpot did not answer (the currency kept stays as it was)."""
    with store.open(settings) as db:
        known = db.meta.get(ACCOUNT_CURRENCY_KEY) is not None
    if known and kind != "full":
        return None
    try:
        info = client.account_info()
    except CrmError as exc:
        log.info("account info unknown (%s)", type(exc).__name__)
        return None
    with store.open(settings) as db:
        db.meta.put(ACCOUNT_CURRENCY_KEY, str(info.get("currency") or ""))
    return info


def _seed_daily(settings: Settings, client: HubSpotClient, info: dict[str, Any] | None = None) -> None:
    """Start the client's daily count from what earlier runs of today saved.

    HubSpot's day turns at midnight in the account's time zone; the first run asks for it
    (one request, unless ``info`` already holds the account info) and the saved count carries
    it to every later run.
    """
    with store.open(settings) as db:
        saved = db.meta.get(DAILY_SPEND_KEY)
    daily = client.limits.daily
    if not saved:
        try:
            daily.set_time_zone((info if info is not None else client.account_info()).get("time_zone"))
        except CrmError as exc:
            log.info(
                "account time zone unknown (%s); the daily budget turns at midnight UTC", type(exc).__name__
            )
        return
    try:
        snapshot = dict(json.loads(saved))
        daily.set_time_zone(str(snapshot.get("time_zone") or "UTC"))
        daily.seed(snapshot)
    except (ValueError, TypeError):
        log.warning("ignoring an unreadable saved daily budget")


def daily_spend(settings: Settings) -> dict[str, Any] | None:
    """The daily budget as the last run left it (``DailyBudget.snapshot``), or None."""
    with store.open(settings) as db:
        saved = db.meta.get(DAILY_SPEND_KEY)
    try:
        return dict(json.loads(saved)) if saved else None
    except ValueError:
        return None


def _heartbeat(
    settings: Settings,
    run_id: int,
    owner: str,
    progress: Progress,
    stop: threading.Event,
    finished: threading.Event,
) -> None:
    with store.open(settings) as db:
        while not finished.wait(HEARTBEAT_S):
            try:
                if not db.syncstate.heartbeat(run_id, owner, progress.snapshot()):
                    log.warning("sync run %s lost its lease; stopping", run_id)
                    stop.set()
                    return
            except Exception:  # a busy moment must not kill the heartbeat
                log.exception("heartbeat of sync run %s failed", run_id)


class SyncRunner:
    """Runs syncs in a background thread; one per process (the app caches it).

    ``start`` returns False when a run is active anywhere (another tab, the CLI, another
    process): the caller shows that run's progress from ``latest_run`` instead.
    """

    def __init__(
        self, settings: Settings, *, client_factory: Callable[[Settings], Any] | None = None
    ) -> None:
        self.settings = settings
        self._client_factory = client_factory
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.last_result: dict[str, Any] | None = None
        self.last_error: BaseException | None = None

    def start(
        self, kind: Kind = "incremental", *, started_by: str | None = None, trigger: str = "ui"
    ) -> bool:
        """Start a run in the background; False if one is already running anywhere."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            with store.open(self.settings) as db:
                owner = syncstate.new_owner()
                run_id = db.syncstate.start_run(
                    kind=run_kind(db, kind), trigger=trigger, started_by=started_by, owner=owner
                )
            if run_id is None:
                return False
            self.last_result, self.last_error = None, None
            self._thread = threading.Thread(
                target=self._run, args=(run_id, owner, kind), name=f"sync-run-{run_id}", daemon=True
            )
            self._thread.start()
            return True

    def _run(self, run_id: int, owner: str, kind: str) -> None:
        client = api = None
        try:
            if self._client_factory is not None:
                client, api = split_client(self._client_factory(self.settings))
            self.last_result = _execute(
                self.settings,
                run_id,
                owner,
                kind,
                client=client,
                api=api,
                walkers=WALKERS,
                overlap_ms=OVERLAP_MS,
            )
            self._resume_later(self.last_result)
        except BaseException as exc:  # noqa: BLE001 - recorded in the run row; kept for the caller
            self.last_error = exc
        finally:
            if client is not None:
                client.close()
            if api is not None:
                api.close()

    def _resume_later(self, run: dict[str, Any]) -> None:
        """After a run paused for the daily budget, start an incremental sync once the day
        turns: it resumes the full pull's saved ranges (``Puller._plan``: "resume") and
        brings every other type up to date. If another process (or a person) syncs first,
        the lease makes this one a no-op."""
        resume_at = (run.get("counts") or {}).get("resume_at")
        if run.get("state") != "paused" or resume_at is None:
            return
        delay = max(0.0, float(resume_at) - time.time()) + RESUME_GRACE_S
        timer = threading.Timer(delay, self._resume)
        timer.daemon = True
        timer.name = f"sync-resume-{run.get('id')}"
        timer.start()
        log.info("sync run %s resumes in %.0f s, when the daily budget renews", run.get("id"), delay)

    def _resume(self) -> None:
        try:
            self.start("incremental", started_by="daily budget", trigger="resume")
        except CrmError as exc:
            log.warning("could not resume the paused sync: %s", exc)

    @property
    def running(self) -> bool:
        """Whether this runner's thread is still working."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for this runner's current run; True once it has finished.

        The thread is read under the lock ``start`` holds until the thread has started: a
        caller that saw the new run's row (written inside ``start``) must not find the
        thread object made but not yet started (joining that raises).
        """
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running
