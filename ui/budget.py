"""The Sync page's view of HubSpot's rate limits: a full pull's estimate, live gauges, a pause.

Only a CRM whose pull counts its requests against budgets has a modelled estimate
(``crm.sync.estimate.budgets_counted``); for any other (Pipedrive) the estimate is what its
last full re-sync took (``measured_full_pull``), or a sentence saying none exists yet. Gauges are drawn for the budgets a run reported: HubSpot's three, or the burst window
an API that implements ``crm.interface.ReportsUsage`` reports (Pipedrive's, per 2 s).

- ``estimate(settings)``: before a full re-sync, its requests and minutes and how they
  compare with the daily budget left (``crm.sync.estimate``).
- ``gauges(run)``: while a run goes, the burst (per 10 s), search (per second) and daily
  budgets as the run's heartbeat last wrote them (so a run started in another process or
  from the command line shows its gauges too).
- ``paused(run)``: a run that stopped for the daily budget, and when it goes on.

Everything shown is numbers and fixed words; nothing from HubSpot is rendered as HTML.
"""

from __future__ import annotations

import datetime
import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from crm import crms
from crm.config import Settings
from crm.sync.estimate import (
    Estimate,
    budgets_counted,
    estimate_full_pull,
    expected_totals,
    measured_full_pull,
)
from crm.sync.runner import daily_spend
from ui import data
from ui.columns import duration, md_escape


def daily_left(settings: Settings) -> tuple[int | None, dict[str, Any] | None]:
    """Requests this app may still send today as the last run left the count, and that count."""
    daily = daily_spend(settings)
    if not daily or daily.get("allowance") is None:
        return None, daily
    used = (
        int(daily.get("used") or 0) if daily.get("day") == _today(str(daily.get("time_zone") or "UTC")) else 0
    )
    return max(0, int(daily["allowance"]) - used), daily


def full_pull_estimate(settings: Settings) -> Estimate:
    """The estimate from the last sync's totals per type, else from the cache's counts."""
    with data.open_cache(settings) as db:
        runs = db.syncstate.run_history(limit=20)
        cached = db.queries.counts()
    totals, source = expected_totals(runs, cached)
    return estimate_full_pull(totals, counted_from=source)


def estimate(settings: Settings) -> None:
    """One caption: what a full re-sync will cost, and whether today's budget covers it; for a
    CRM whose pull counts no budgets (``budgets_counted``: Pipedrive's), that none exists."""
    if not budgets_counted(settings):
        _measured_estimate(settings)
        return
    guess = full_pull_estimate(settings)
    if guess.records == 0:
        st.caption("Full re-sync: no estimate until a first sync has counted the portal's records.")
        return
    line = (
        f"Full re-sync: about {guess.requests:,} requests and {max(guess.minutes, 0.1):.1f} minutes for "
        f"{guess.records:,} records (from {guess.counted_from})."
    )
    left, daily = daily_left(settings)
    if left is not None and daily is not None:
        line += f" This app's daily budget has {left:,} of {int(daily['allowance']):,} requests left today"
        if guess.requests > left:
            line += "; the sync will pause when it is spent and go on after midnight (or at the next sync)."
        else:
            line += "."
    elif daily is not None:
        line += " The portal's daily limit is unknown (HubSpot sends OAuth apps no daily-limit headers)."
    st.caption(line)


def _measured_estimate(settings: Settings) -> None:
    """A CRM whose pull is not modelled (Pipedrive's): what its last full re-sync took, scaled
    to the records cached now, and its burst window as that run last saw it; else a sentence
    saying no estimate exists yet. Nothing about a daily budget: its pull does not count one."""
    name = crms.words_for(settings.crm).crm
    with data.open_cache(settings) as db:
        runs = db.syncstate.run_history(limit=20)
        cached = db.queries.counts()
    records = sum(int(n) for t, n in cached.items() if t != "owners")
    guess = measured_full_pull(runs, records)
    if guess is None:
        st.caption(
            f"Full re-sync: no estimate for {name} until a full re-sync has run (it reads every record "
            f"again, one page after another, waiting whenever {name} says its rate limit is reached)."
        )
        return
    line = (
        f"Full re-sync: about {guess.requests:,} requests and {max(guess.minutes, 0.1):.1f} minutes for "
        f"{guess.records:,} records (from {guess.counted_from})."
    )
    burst = next(
        (
            ((run.get("counts") or {}).get("budgets") or {}).get("burst")
            for run in runs
            if run.get("kind") == "full"
        ),
        None,
    )
    if burst and burst.get("limit"):
        line += (
            f" {name} allowed {int(burst['limit']):,} requests per {float(burst.get('window_s') or 2):g} s "
            "at that run's last answer; the sync waits whenever the limit is reached."
        )
    st.caption(line)


def gauges(run: dict[str, Any]) -> None:
    """A bar for each budget the run reported: HubSpot's burst and search windows right now and
    the day's budget; Pipedrive's burst window (per 2 s) as its last answer gave it."""
    budgets = (run.get("counts") or {}).get("budgets") or {}
    shown = [name for name in ("burst", "search", "daily") if budgets.get(name)]
    if not shown:
        return
    for cell, name in zip(st.columns(len(shown)), shown, strict=True):
        figures = budgets[name]
        with cell:
            if name == "daily":
                _daily_bar(figures)
            else:
                window = float(figures.get("window_s") or (10 if name == "burst" else 1))
                _bar(name.capitalize(), figures.get("used"), figures.get("limit"), f"per {window:g} s")


def _daily_bar(daily: dict[str, Any]) -> None:
    if daily.get("allowance") is None:
        st.progress(0.0, text=f"Daily: {int(daily.get('used') or 0):,} requests today, limit unknown")
    else:
        _bar(
            "Daily",
            daily.get("used"),
            daily.get("allowance"),
            f"({float(daily.get('share') or 0):.0%} share)",
        )


def paused(run: dict[str, Any]) -> None:
    """The warning for a run that paused on the daily budget."""
    resume_at = (run.get("counts") or {}).get("resume_at")
    when = ""
    if resume_at:
        left = float(resume_at) - time.time()
        when = f" (in {duration(left)})" if left > 0 else " (due now: the next sync goes on)"
    st.warning(
        md_escape(run.get("error") or "Paused for the daily budget.") + when,
        icon=":material/pause_circle:",
    )


def _today(time_zone: str) -> str:
    try:
        zone: datetime.tzinfo = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = datetime.UTC
    return datetime.datetime.now(zone).strftime("%Y-%m-%d")


def _bar(label: str, used: Any, limit: Any, unit: str) -> None:
    used_n, limit_n = int(used or 0), int(limit or 0)
    share = min(used_n / limit_n, 1.0) if limit_n else 0.0
    st.progress(share, text=f"{label}: {used_n:,} of {limit_n:,} {unit}")
