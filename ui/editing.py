"""Inline editing with ``st.data_editor``: every valid change is queued at once.

Decision (the issue asked us to choose): edits are *queued on change*. Each rerun that
follows a cell edit validates the grid's edits and writes them to the outbox (and the
cache) in one go, then resets the grid by moving to a new widget key. A queued edit
survives paging, filtering, a sync and a closed tab; "Push changes" sends the outbox to
HubSpot later.

An edit that fails validation is not queued and not thrown away: the grid keeps the
person's input, the row's status column and an error say which cell is wrong and why,
and paging, search and filters are locked until the value is fixed or discarded, so the
row set cannot change underneath unsaved input.

The edit state maps *row positions* of the frame passed to the grid to changes; the ids
of that frame are remembered per page prefix so positions map back to record ids on the
next run, before the grid is drawn again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

import pandas as pd
import streamlit as st

from crm import sync
from crm.config import Settings
from crm.crms import provider_of, words_for
from crm.errors import CrmError, InvalidEdit
from crm.interface import Words
from crm.sync.links import settle_after_push
from ui import data
from ui.access import Staff
from ui.columns import md_escape
from ui.feedback import crm_errors, show_error, toast

log = logging.getLogger(__name__)

STATUS_COLUMN = "status"


@dataclasses.dataclass
class Outcome:
    """What happened to the grid's edits on this run."""

    queued: int = 0
    field_errors: dict[str, str] = dataclasses.field(default_factory=dict)
    failed: bool = False

    @property
    def locked(self) -> bool:
        """True while unsaved input is in the grid: the row set must not change."""
        return bool(self.field_errors) or self.failed


def empty_to_none(value: Any) -> Any:
    """A grid cell's value as ``queue_edits`` takes it: a blank cell clears the field."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _version_key(prefix: str) -> str:
    return f"{prefix}_editor_version"


def editor_key(prefix: str, view: str) -> str:
    """The grid's widget key for one view (page, search, filters, sort) and edit generation."""
    version = st.session_state.setdefault(_version_key(prefix), 0)
    return f"{prefix}_editor_{view}_{version}"


def reset(prefix: str) -> None:
    """Drop the grid's edits by moving to a new key (deleting the state would leave them on screen)."""
    st.session_state[_version_key(prefix)] = st.session_state.get(_version_key(prefix), 0) + 1
    st.session_state.pop(f"{prefix}_editor_key", None)


def apply_edits(
    settings: Settings,
    staff: Staff,
    *,
    prefix: str,
    object_type: str,
    editable: Mapping[str, Callable[[Any], Any]],
) -> Outcome:
    """Queue the edits the grid holds from the previous run; call before drawing anything that pages.

    Args:
        prefix: the page's widget prefix (``"contacts"``).
        editable: column -> converter from the grid's value to the value ``queue_edits`` takes.
    """
    key = st.session_state.get(f"{prefix}_editor_key")
    ids = st.session_state.get(f"{prefix}_editor_ids") or []
    state = st.session_state.get(key) if key else None
    if not state:
        return Outcome()
    edits: dict[str, dict[str, Any]] = {}
    for pos, changes in (state.get("edited_rows") or {}).items():
        index = int(pos)
        if not 0 <= index < len(ids):
            continue
        wanted = {col: editable[col](value) for col, value in changes.items() if col in editable}
        if wanted:
            edits.setdefault(str(ids[index]), {}).update(wanted)
    if not edits:
        return Outcome()
    try:
        queued = sync.queue_edits(settings, object_type, edits, by=staff.label)
    except InvalidEdit as exc:
        return Outcome(field_errors=dict(exc.field_errors))
    except CrmError as exc:
        show_error(exc, doing="save your changes")
        return Outcome(failed=True)
    reset(prefix)
    st.session_state.pop(f"{prefix}_push_result", None)
    crm_name = provider_of(settings).words.crm
    toast(f"Saved {queued} change{'s' if queued != 1 else ''}; push to send them to {crm_name}")
    return Outcome(queued=queued)


def remember_view(prefix: str, key: str, frame: pd.DataFrame) -> None:
    """Remember which records the grid shows, so the next run maps row positions to ids."""
    st.session_state[f"{prefix}_editor_key"] = key
    st.session_state[f"{prefix}_editor_ids"] = [str(i) for i in frame.index]


def with_status(
    frame: pd.DataFrame,
    outcome: Outcome,
    pending_ids: set[str],
    labels: Mapping[str, str],
    deciding_ids: Collection[str] = (),
) -> pd.DataFrame:
    """``frame`` plus a read-only status column: an invalid cell's message, "waiting for a
    decision" (a new record whose email HubSpot already had), or "pending push"."""
    out = frame.copy()
    problems = problems_by_record(outcome.field_errors, labels)
    out[STATUS_COLUMN] = [
        ("⚠ " + "; ".join(problems[rid]))
        if rid in problems
        else (DECIDING if rid in deciding_ids else ("✎ pending push" if rid in pending_ids else ""))
        for rid in out.index.astype(str)
    ]
    return out


DECIDING = "⚠ waiting for a decision (Sync page)"


def problems_by_record(field_errors: Mapping[str, str], labels: Mapping[str, str]) -> dict[str, list[str]]:
    """``{"<id>.<property>": why}`` regrouped as ``{id: ["Column: why", ...]}``."""
    grouped: dict[str, list[str]] = {}
    for field, message in field_errors.items():
        rid, _, prop = field.partition(".")
        grouped.setdefault(rid, []).append(f"{labels.get(prop, prop)}: {message}")
    return grouped


def show_invalid(
    outcome: Outcome, frame: pd.DataFrame, labels: Mapping[str, str], describe: Callable[[str], str]
) -> None:
    """One error naming each offending row and column, and why; then how to get out of it."""
    if not outcome.field_errors:
        return
    positions = {str(rid): n for n, rid in enumerate(frame.index, start=1)}
    lines = []
    for field, message in outcome.field_errors.items():
        rid, _, prop = field.partition(".")
        row = positions.get(rid)
        where = f"Row {row}" if row else f"Record {rid}"
        lines.append(
            f"- {where} ({md_escape(describe(rid), max_len=80)}), "
            f"{md_escape(labels.get(prop, prop))}: {md_escape(message)}"
        )
    st.error(
        "These changes were not saved, and your input is still in the table:\n\n"
        + "\n".join(lines)
        + "\n\nCorrect the value, or discard the table's unsaved changes. "
        "Paging and filters are locked until then.",
        icon=":material/edit_off:",
    )


def edit_grid(
    settings: Settings,
    *,
    prefix: str,
    object_type: str,
    frame: pd.DataFrame,
    shown: pd.DataFrame,
    outcome: Outcome,
    labels: Mapping[str, str],
    config: dict[str, Any],
    columns: list[str],
    editable: list[str],
    view: str,
    describe: Callable[[str], str],
) -> None:
    """The editable grid of one page of records, with its status column, the invalid-input error and Discard.

    Args:
        frame: the page of records as loaded; ``shown`` is it as the grid displays it (links added).
        config: the column configuration; the status column is added to it.
        columns: the record columns, in order, after the link and status columns.
        view: the view and page shown, part of the grid's key.
    """
    with crm_errors("read the pending edits"):
        active = data.edits(settings, ("pending", "conflict"), object_type) if len(frame) else None
    pending_ids = set(active["record_id"].astype(str)) if active is not None and len(active) else set()
    deciding_ids = (
        set(
            active.loc[(active["op"] == "create") & (active["status"] == "conflict"), "record_id"].astype(str)
        )
        if active is not None and len(active)
        else set()
    )
    shown = with_status(shown, outcome, pending_ids, labels, deciding_ids)
    config[STATUS_COLUMN] = st.column_config.TextColumn("Status", disabled=True, width="small")
    key = editor_key(prefix, view)
    st.data_editor(
        shown,
        key=key,
        num_rows="fixed",
        column_config=config,
        column_order=["hubspot", STATUS_COLUMN, *columns],
        disabled=[c for c in shown.columns if c not in editable],
        height=min(38 + 35 * max(len(shown), 1), 38 + 35 * 20),
    )
    remember_view(prefix, key, frame)
    show_invalid(outcome, frame, labels, describe)
    if outcome.locked:
        st.button("Discard unsaved changes", key=f"{prefix}_discard", on_click=reset, args=(prefix,))


# --- pending edits and the push button ---------------------------------------------------

PENDING_COLUMNS = {
    "record_label": st.column_config.TextColumn("Record"),
    "object_type": st.column_config.TextColumn("Type"),
    "property": st.column_config.TextColumn("Property"),
    "new_value": st.column_config.TextColumn("New value"),
    "base_value": st.column_config.TextColumn("Was"),
    "error": st.column_config.TextColumn("Last error"),
    "created_by": st.column_config.TextColumn("By"),
    "created_at": st.column_config.TextColumn("When"),
}


def result_status(words: Words) -> dict[str, str]:
    """How each push result reads, in the CRM's name."""
    return {
        "pushed": "✓ pushed",
        "already": f"✓ {words.crm} already had it",
        "failed": f"✗ refused by {words.crm}",
        "conflict": "⚠ conflict",
        "retry": "↻ will retry",
        "created": "✓ created",
    }


def push_panel(settings: Settings, staff: Staff, prefix: str) -> None:
    """Pending edits (count and list) and "Push changes", with a result per record."""
    from ui import data
    from ui.feedback import crm_errors

    words = provider_of(settings).words
    text, button = st.columns([4, 1], vertical_alignment="center")
    counts = data.outbox_counts(settings)
    clicked = button.button(
        "Push changes",
        key=f"{prefix}_push",
        type="primary",
        disabled=counts.get("pending", 0) == 0,
        icon=":material/cloud_upload:",
    )
    result_key = f"{prefix}_push_result"
    if clicked:
        with crm_errors("push your changes", stop=False), st.spinner(f"Pushing changes to {words.crm}…"):
            st.session_state[result_key] = sync.push(settings, by=staff.label)
            # Contacts linked across CRMs follow the push (their "In CRMs" badges).
            settle_after_push(settings, by=staff.label)
            data.clear()
        counts = data.outbox_counts(settings)
    pending, conflicts = counts.get("pending", 0), counts.get("conflict", 0)
    summary = f"**{pending}** change{'s' if pending != 1 else ''} waiting to be pushed to {words.crm}"
    if conflicts:
        summary += f" · **{conflicts}** conflict{'s' if conflicts != 1 else ''} to resolve on the Sync page"
    text.markdown(summary)
    if pending:
        with st.expander("Changes waiting to be pushed"):
            frame = data.edits(settings, ("pending",))
            st.dataframe(
                frame, column_config=PENDING_COLUMNS, column_order=list(PENDING_COLUMNS), hide_index=True
            )
    # The result stays until the next push or edit: live updates may rerun the page any moment.
    if result_key in st.session_state:
        show_push_result(st.session_state[result_key], words)
        st.button(
            "Dismiss", key=f"{prefix}_push_dismiss", on_click=st.session_state.pop, args=(result_key, None)
        )


def _summary(result: Mapping[str, Any], words: Words) -> str:
    pushed = int(result.get("pushed") or 0)
    return f"Pushed {pushed} change{'s' if pushed != 1 else ''} to {words.crm}."


def show_push_result(result: Mapping[str, Any], words: Words | None = None) -> None:
    words = words or words_for(None)
    pushed, failed, conflicts = (int(result.get(k) or 0) for k in ("pushed", "failed", "conflicts"))
    if failed or conflicts:
        st.warning(
            f"Pushed {pushed}; {words.crm} refused {failed}; {conflicts} conflict"
            f"{'s' if conflicts != 1 else ''} (resolve them on the Sync page).",
            icon=":material/warning:",
        )
    else:
        st.success(_summary(result, words), icon=":material/cloud_done:")
    rows = list(result.get("results") or [])
    if rows:
        frame = pd.DataFrame(rows)
        if "status" in frame.columns:
            labels = result_status(words)
            frame["status"] = frame["status"].map(lambda s: labels.get(str(s), str(s)))
        st.dataframe(
            frame,
            hide_index=True,
            column_config={
                "record_id": st.column_config.TextColumn("Record"),
                "object_type": st.column_config.TextColumn("Type"),
                "property": st.column_config.TextColumn("Property"),
                "status": st.column_config.TextColumn("Result"),
                "message": st.column_config.TextColumn(f"{words.crm}'s message", width="large"),
            },
        )
