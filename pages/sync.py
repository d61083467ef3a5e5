"""Sync: every connection's status and Sync all, then the selected connection's status, Sync now /
Full re-sync with live progress, run history, the outbox and conflicts."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from crm import crms, journal, oauth, sync
from crm.store.interactions import INTERACTION_TYPES
from crm.sync.sweep import looked_for_lines
from ui import budget, data, editing, overview, reruns, runner, runtime, selection
from ui.access import require_admin, require_staff
from ui.columns import ago, duration, md_escape
from ui.feedback import crm_errors, flash, show_flash
from ui.live import status_lines
from ui.runtime import page_settings
from ui.selection import link_params
from ui.timeline import scope_notice
from ui.verify import verify_block

staff = require_staff()
show_flash()
settings = page_settings()

POLL_S = 1.0
PHASES = {
    "metadata": "Reading properties, pipelines and owners",
    "records": "Reading records",
    "associations": "Reading associations",
    "archived": "Finding deleted records",
}

st.title("Sync")

# --- every connection --------------------------------------------------------------------------

home = runtime.settings()
with crm_errors("read the connections"):
    known = selection.current(home).known
    everyone = overview.lines(home, known)


SYNC_ALL_AT = "sync_all_started_at"
# Sync all starts its threads in the background; their runs appear in the partitions a moment
# later, so the page keeps watching for this long after the click even before it sees one.
SYNC_ALL_GRACE_S = 15.0


def _watching(lines: list[overview.Line]) -> bool:
    started = float(st.session_state.get(SYNC_ALL_AT, 0.0))
    return any(one.is_syncing for one in lines) or time.time() - started < SYNC_ALL_GRACE_S


watching = _watching(everyone)


@st.fragment(run_every=POLL_S if watching else None)
def all_connections() -> None:
    """One line per connection: its status, and its sync's progress while one runs."""
    fresh = overview.lines(home, known)
    for one in fresh:
        name = md_escape(selection.label(one.connection))
        status = overview.STATUS_LABELS.get(one.status, one.status)
        run = one.run or {}
        if one.is_syncing:
            done, total = int(run.get("done") or 0), run.get("total")
            phase = PHASES.get(str(run.get("phase")), "Starting")
            st.progress(
                min(done / total, 1.0) if total else 0.0,
                text=f"**{name}**: {md_escape(phase)}, {done:,}{f' of {int(total):,}' if total else ''} records",
            )
        else:
            st.caption(f"**{name}**: {md_escape(status)} · last sync {md_escape(overview.last_sync(one))}")
    if watching and not _watching(fresh):
        # Every run ended while we watched: fresh data everywhere, and stop polling.
        data.clear()
        reruns.rerun()


if len(everyone) > 1:
    st.subheader("All connections")
    all_connections()
    ready = [one for one in everyone if one.status == "connected"]
    if require_admin(staff, "sync every connection") and st.button(
        "Sync all",
        key="sync_all",
        icon=":material/sync:",
        disabled=not ready,
        help="An incremental sync of every connected account, side by side, each within its own rate limits.",
    ):
        with crm_errors("start the syncs", stop=False):
            runner.start_all(home, [one.connection for one in ready], "incremental", started_by=staff.label)
            st.session_state[SYNC_ALL_AT] = time.time()
            skipped = len(everyone) - len(ready)
            flash(
                f"Sync started for {len(ready)} of {len(everyone)} connections"
                + (f" ({skipped} syncing already or not connected)" if skipped else "")
            )
            reruns.rerun()
    st.subheader(f"This connection: {md_escape(selection.label(selection.current(home).chosen))}")

# The connection's CRM's own words ("HubSpot", "portal"; "Pipedrive", "company") and types
# ("Contacts"...; "People", "Organizations", "Deals"), and what it calls the interactions its
# sync keeps for the timelines (None when it keeps none: no count, no column).
provider = crms.provider_of(settings)
words = provider.words
types = provider.object_types()
interactions = words.interactions
theirs = f"{words.crm}'s"

with crm_errors("read the connection"):
    info = oauth.connection_info(settings)
    running = runner.is_running(settings)
    counts = data.counts(settings)

# --- status and the buttons -----------------------------------------------------------------

if info.status == "connected":
    st.caption(
        f"Connected to {md_escape(words.account_label(info.portal_id))}"
        + (f" ({md_escape(info.hub_domain)})" if info.hub_domain else "")
    )
elif info.status == "needs_reconnect":
    st.warning(
        f"{words.crm} no longer accepts this app's connection; connect again before syncing.",
        icon=":material/sync_problem:",
    )
    st.page_link(
        "pages/connect.py", label="Go to Connect", icon=":material/link:", query_params=link_params()
    )
else:
    st.info(f"Not connected to {words.crm}. Connect a {words.account} first.", icon=":material/link_off:")
    st.page_link(
        "pages/connect.py",
        label=f"Connect {words.crm}",
        icon=":material/arrow_forward:",
        query_params=link_params(),
    )

if settings.sync_interval_s:
    every = sync.describe_interval(settings.sync_interval_s)
    upcoming = sync.next_run_at(settings.sync_interval_s, time.time())
    st.caption(
        f"Scheduled sync: every {every}, for every connection (an incremental sync, then a push of "
        "queued edits; a connection that is not connected is skipped). "
        f"Next run at {time.strftime('%H:%M:%S', time.gmtime(upcoming))} UTC, "
        f"in {duration(upcoming - time.time())}.",
    )
else:
    st.caption("Scheduled sync is off; set CRM_SYNC_INTERVAL (for example 15m) to sync on a schedule.")
# When deleted records were last looked for, where the CRM lists none (crm.sync.sweep).
with crm_errors("read when deletions were last looked for", stop=False):
    with data.open_cache(settings) as cache:
        looks = looked_for_lines(cache, types, words.crm, settings.deletion_sweep_s)
    for line in looks:
        st.caption(md_escape(line))

# --- live updates ----------------------------------------------------------------------------

with crm_errors("read the live-update status", stop=False):
    live = journal.live_overview(settings)
    live_lines = status_lines(live)
    st.markdown(f"**{live_lines[0]}**")
    st.caption(f"Mode {live['mode']} (CRM\\_LIVE): {md_escape(live['why'])}.")
    for line in live_lines[1:]:
        st.caption(line)
    gap = (live.get("journal") or {}).get("gap") or {}
    if gap.get("state") == "closing":
        st.warning(
            md_escape(gap.get("text") or "")
            + (f" Last attempt: {md_escape(gap['error'])}" if gap.get("error") else ""),
            icon=":material/sync_problem:",
        )
    elif gap.get("state") == "closed":
        st.caption(
            f"Last gap in live updates ({ago(gap.get('at'))}) was closed by sync {md_escape(gap.get('run_id'))}."
        )
    notes = live.get("merge_notes") or []
    if notes:
        with st.expander(f"Merges followed ({len(notes)})", icon=":material/merge:"):
            for note in notes:
                st.caption(f"{md_escape(note.get('at'))}: {md_escape(note.get('text'))}")

cells = st.columns(len(types) + 1 + int(interactions is not None))
for cell, shown in zip(cells, types, strict=False):
    cell.metric(shown.label, f"{counts.get(shown.name, 0):,}", border=True)
cells[len(types)].metric(f"{words.owner.capitalize()}s", f"{counts.get('owners', 0):,}", border=True)
if interactions is not None:
    cells[-1].metric(
        interactions,
        f"{counts.get('interactions', 0):,}",
        border=True,
        help=f"{words.interactions_detail} cached for the activity timelines.",
    )
scope_notice(settings)

can_sync = info.status == "connected" and require_admin(staff, "start a sync")
b1, b2, _ = st.columns([1, 1, 3])
if b1.button(
    "Sync now",
    key="sync_now",
    type="primary",
    disabled=not can_sync or running,
    icon=":material/sync:",
    help=f"Pull what changed in {words.crm} since the last sync.",
):
    with crm_errors("start the sync", stop=False):
        started = runner.start_sync(settings, "incremental", started_by=staff.label)
        flash("Sync started" if started else "A sync is already running; showing its progress")
        reruns.rerun()
if b2.button(
    "Full re-sync",
    key="sync_full",
    disabled=not can_sync or running,
    icon=":material/cached:",
    help="Read every record again (slower; finds anything an incremental sync could miss).",
):
    with crm_errors("start the sync", stop=False):
        started = runner.start_sync(settings, "full", started_by=staff.label)
        flash("Full re-sync started" if started else "A sync is already running; showing its progress")
        reruns.rerun()
with crm_errors("estimate a full re-sync", stop=False):
    budget.estimate(settings)


# --- live progress --------------------------------------------------------------------------

# Polling runs only while the database says a sync is running (here, another tab or the CLI).
interval = POLL_S if running else None


def _run_line(run: dict[str, Any]) -> str:
    state = str(run.get("state"))
    finished = run.get("finished_at") or run.get("heartbeat_at") or run.get("started_at")
    kind = "Full re-sync" if run.get("kind") == "full" else "Incremental sync"
    return f"{kind} {md_escape(state)} {ago(finished)}, took {duration(run.get('duration_s'))}"


def _types_line(run: dict[str, Any]) -> str:
    """While a run reads several types side by side and names no current one (the generic
    pull walks them all at once), each type's count in the CRM's words, in its order:
    "People 120 of 300 · Organizations 30, done · Deals 0 · Notes 12" (the kinds of interaction
    a run reads follow the types); "" otherwise."""
    counts = run.get("counts") or {}
    modes = counts.get("modes") or {}
    if run.get("object_type") or run.get("phase") != "records" or len(modes) < 2:
        return ""
    read, expected, finished = (counts.get(k) or {} for k in ("records", "expected", "seconds"))
    labels = {shown.name: shown.label for shown in types}
    parts = []
    for name in [*(n for n in labels if n in modes), *(n for n in modes if n not in labels)]:
        part = f"{md_escape(labels.get(name, name.capitalize()))} {int(read.get(name) or 0):,}"
        if name in finished:
            part += ", done"
        elif expected.get(name):
            part += f" of {int(expected[name]):,}"
        parts.append(part)
    return " · ".join(parts)


@st.fragment(run_every=interval)
def progress() -> None:
    run = runner.latest_run(settings)
    if run is None:
        st.caption("No sync has run yet.")
        return
    state = run.get("state")
    if state == "running":
        done, total = int(run.get("done") or 0), run.get("total")
        phase = PHASES.get(str(run.get("phase")), str(run.get("phase") or "Starting"))
        # md_escape collapses whitespace at the ends, so the space goes outside it.
        target = f" {md_escape(run['object_type'])}" if run.get("object_type") else ""
        of = f" of {int(total):,}" if total else ""
        st.progress(
            min(done / total, 1.0) if total else 0.0,
            text=f"{md_escape(phase)}{target}: {done:,}{of} records",
        )
        walking = _types_line(run)
        if walking:
            st.caption(walking)
        st.caption(
            f"{int(run.get('requests') or 0):,} requests · {int(run.get('retries') or 0)} retries · "
            f"{int(run.get('rate_limited') or 0)} rate-limited · started {ago(run.get('started_at'))}"
            + (f" by {md_escape(run['started_by'])}" if run.get("started_by") else "")
        )
        budget.gauges(run)
    else:
        line = _run_line(run)
        if state == "succeeded":
            st.success(line, icon=":material/check_circle:")
        elif state == "paused":
            budget.paused(run)
        elif state in ("failed", "interrupted"):
            st.error(
                line + (f": {md_escape(run.get('error'))}" if run.get("error") else ""),
                icon=":material/error:",
            )
        else:
            st.info(line)
    if interval is not None and state != "running":
        # The run ended while we watched: fresh data everywhere, and stop polling.
        data.clear()
        reruns.rerun()


st.subheader("Progress")
progress()

# --- history ---------------------------------------------------------------------------------

st.subheader("History")
with crm_errors("read the history"):
    history = runner.run_history(settings, limit=20)
if not history:
    st.caption("No runs yet.")
else:
    rows = []
    for run in history:
        counted = (run.get("counts") or {}).get("records") or {}
        archived = (run.get("counts") or {}).get("archived") or {}
        rows.append(
            {
                "Started (UTC)": pd.to_datetime(run.get("started_at"), utc=True),
                "Kind": run.get("kind"),
                "Trigger": run.get("trigger"),
                "By": run.get("started_by"),
                "State": run.get("state"),
                "Duration": duration(run.get("duration_s")),
                **{shown.label: counted.get(shown.name) for shown in types},
                **(
                    {
                        interactions: sum(int(counted.get(t) or 0) for t in INTERACTION_TYPES)
                        if counted
                        else None
                    }
                    if interactions is not None
                    else {}
                ),
                "Deleted": sum(int(n or 0) for n in archived.values()) if archived else None,
                "Requests": run.get("requests"),
                "Retries": run.get("retries"),
                "Rate limited": run.get("rate_limited"),
                "Error": run.get("error"),
            }
        )
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="sync_history",
        column_config={"Started (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")},
    )

# --- verify -----------------------------------------------------------------------------------

verify_block(settings, can_run=can_sync and not running)

# --- the outbox --------------------------------------------------------------------------------

st.subheader("Outbox")
editing.push_panel(settings, staff, "sync")
with crm_errors("read the outbox"):
    outbox_counts = data.outbox_counts(settings)
tabs = st.tabs(
    [
        f"Conflicts ({outbox_counts.get('conflict', 0)})",
        f"Pending ({outbox_counts.get('pending', 0)})",
        f"Failed ({outbox_counts.get('failed', 0)})",
        "Audit log",
    ]
)
EDIT_COLUMNS = {
    "record_label": st.column_config.TextColumn("Record"),
    "object_type": st.column_config.TextColumn("Type"),
    "property": st.column_config.TextColumn("Property"),
    "new_value": st.column_config.TextColumn("Mine"),
    "base_value": st.column_config.TextColumn("Base"),
    "error": st.column_config.TextColumn(f"{theirs} message", width="large"),
    "created_by": st.column_config.TextColumn("By"),
    "updated_at": st.column_config.TextColumn("When"),
}


def _resolve(outbox_id: int, keep: str) -> None:
    with crm_errors("resolve the conflict", stop=False):
        sync.resolve_conflict(settings, outbox_id, keep, by=staff.label)  # type: ignore[arg-type]
        data.clear()
        flash(
            f"Kept your value: it is queued again, push to send it to {words.crm}"
            if keep == "mine"
            else f"Kept {theirs} value; your edit was dropped"
        )
        reruns.rerun()


def _decide_new(outbox_id: int, link: bool) -> None:
    with crm_errors("settle the new contact", stop=False):
        if link:
            queued = sync.link_existing_contact(settings, outbox_id, by=staff.label)
            message = (
                f"Linked to {theirs} contact: {queued['pending']} field(s) queued to push, "
                f"{queued['conflict']} conflict(s) to decide"
            )
        else:
            sync.discard_edit(settings, outbox_id, by=staff.label)
            message = f"Discarded your new contact; {theirs} contact is unchanged"
        data.clear()
        flash(message)
        reruns.rerun()


def _new_contact_decision(row: Any, can_resolve: bool) -> None:
    """A new contact whose email HubSpot already had: both records' values, then link or discard.

    Values are shown with ``st.code`` and ``md_escape`` only: CRM values are never markup.
    """
    outbox_id = int(row["id"])
    mine, existing_id, their_values = data.new_contact_sides(row)
    with st.container(border=True, key=f"sync_new_{outbox_id}"):
        st.markdown(
            f"**New contact {md_escape(mine.get('email'))}**: {words.crm} already has a contact with this "
            f"email (id {md_escape(existing_id)}). Nothing was sent; choose what to do."
        )
        names = [p for p in mine if p != "email"] or ["email"]
        table = pd.DataFrame(
            {
                "Property": names,
                "Mine": [str(mine.get(p) or "") for p in names],
                theirs: [str(their_values.get(p) or "") for p in names],
            }
        )
        st.dataframe(table, hide_index=True, key=f"sync_new_values_{outbox_id}")
        if can_resolve:
            k1, k2, _ = st.columns([2, 1, 2])
            if k1.button(
                "Link to the existing contact and apply my non-empty fields as edits",
                key=f"sync_link_{outbox_id}",
                type="primary",
                help=f"Fields {words.crm} leaves empty are queued to push; fields where {words.crm} has "
                "another value become conflicts for you to decide.",
            ):
                _decide_new(outbox_id, link=True)
            if k2.button("Discard mine", key=f"sync_discard_new_{outbox_id}"):
                _decide_new(outbox_id, link=False)


with tabs[0]:
    with crm_errors("read the conflicts"):
        conflicts = data.conflicts(settings)
    if conflicts.empty:
        st.caption(
            f"No conflicts. A conflict appears when a field you edited was also changed in {words.crm}."
        )
    can_resolve = not conflicts.empty and require_admin(staff, "resolve conflicts")
    is_new = conflicts["op"] == "create" if not conflicts.empty else pd.Series(dtype=bool)
    for _, row in conflicts[is_new].iterrows() if not conflicts.empty else ():
        _new_contact_decision(row, can_resolve)
    for _, row in conflicts[~is_new].iterrows() if not conflicts.empty else ():
        outbox_id = int(row["id"])
        with st.container(border=True, key=f"sync_conflict_{outbox_id}"):
            st.markdown(
                f"**{md_escape(row.get('record_label') or row.get('record_id'))}** · "
                f"{md_escape(row.get('object_type'))} · property **{md_escape(row.get('property'))}**"
            )
            sides = {"new_value": "Mine", "remote_value": theirs, "base_value": "Base (when you edited)"}
            for side, (column, caption) in zip(st.columns(3), sides.items(), strict=True):
                value = row.get(column)
                side.caption(caption)
                side.code(str(value if value is not None else "(empty)"), language=None)
            if can_resolve:
                k1, k2, _ = st.columns([1, 1, 3])
                if k1.button("Keep mine", key=f"sync_keep_mine_{outbox_id}", type="primary"):
                    _resolve(outbox_id, "mine")
                if k2.button(f"Keep {theirs}", key=f"sync_keep_theirs_{outbox_id}"):
                    _resolve(outbox_id, "theirs")


def _edits_table(status: str, *, doing: str, empty: str, note: str | None = None) -> None:
    """The outbox's edits in one status, or ``empty`` when there are none."""
    with crm_errors(doing):
        edits = data.edits(settings, (status,))
    if edits.empty:
        st.caption(empty)
        return
    if note:
        st.caption(note)
    st.dataframe(
        edits,
        hide_index=True,
        column_config=EDIT_COLUMNS,
        column_order=list(EDIT_COLUMNS),
        key=f"sync_{status}",
    )


with tabs[1]:
    _edits_table("pending", doing="read the pending edits", empty="Nothing waiting to be pushed.")

with tabs[2]:
    _edits_table(
        "failed",
        doing="read the failed edits",
        empty=f"No edits were refused by {words.crm}.",
        note=f"{words.crm} refused these values; the cache shows {theirs} value. Edit the record again to retry.",
    )

with tabs[3]:
    with crm_errors("read the audit log"):
        audit = data.audit_log(settings, limit=200)
    if audit.empty:
        st.caption("Nothing pushed yet.")
    else:
        st.dataframe(
            audit,
            hide_index=True,
            column_order=[
                "at",
                "object_type",
                "record_id",
                "property",
                "old_value",
                "new_value",
                "result",
                "by",
                "detail",
            ],
            column_config={
                "at": st.column_config.TextColumn("When"),
                "object_type": st.column_config.TextColumn("Type"),
                "record_id": st.column_config.TextColumn("Record"),
                "property": st.column_config.TextColumn("Property"),
                "old_value": st.column_config.TextColumn("Before"),
                "new_value": st.column_config.TextColumn("After"),
                "result": st.column_config.TextColumn("Result"),
                "by": st.column_config.TextColumn("By"),
                "detail": st.column_config.TextColumn("Detail", width="large"),
            },
            key="sync_audit",
        )
