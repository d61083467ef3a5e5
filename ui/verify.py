"""The Sync page's *Verify* block: compare the cache with its CRM, see what differs, fix it.

The requests a check will make are shown before the button (``crm.sync.verify.estimate``
reads only the cache), and the budget field caps them. The result stays in the session
until the next check or a fix; a fix re-reads what is missing or stale and, only when the
person ticks it, removes the records the CRM no longer has (each read back first).
Record ids only are shown, never CRM values. Every CRM is offered it, in its own words.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import streamlit as st

from crm import crms
from crm.config import Settings
from crm.sync import verify as reconcile
from ui import data, reruns
from ui.feedback import crm_errors, flash

RESULT_KEY = "verify_result"
DEPTHS = {"Sample": False, "Every record": True}


def _kinds(crm: str) -> dict[str, str]:
    return {
        "missing": f"in {crm}, not in the cache",
        "extra": f"in the cache, gone from {crm}",
        "stale": f"changed in {crm} since it was cached",
    }


def verify_block(settings: Settings, *, can_run: bool) -> None:
    """The block: depth, budget (with the estimate), the button, the last result."""
    st.subheader("Verify")
    name = crms.words_for(settings.crm).crm
    types = _type_names(settings)
    st.caption(
        f"Compare the cache with {name}: counts per type, then a sample of records (the most "
        "recently changed and a random pick of cached ones) or every record's id and last change."
    )
    depth = st.radio("Depth", list(DEPTHS), horizontal=True, key="verify_depth")
    full = DEPTHS[str(depth)]
    with crm_errors("estimate the check", stop=False):
        planned = reconcile.estimate(settings, full=full)
        total = sum(planned.values())
        budget = int(
            st.number_input(
                "Request budget",
                min_value=1,
                value=max(1, total),
                step=10,
                key=f"verify_budget_{'full' if full else 'sample'}",
                help=f"The check stops after this many {name} requests.",
            )
        )
        per_type = ", ".join(f"{types.get(t, t)} {n}" for t, n in planned.items())
        st.caption(f"This check makes about {_requests(total)} ({per_type}) and at most {budget:,}.")
        if st.button("Verify", key="verify_run", disabled=not can_run, icon=":material/fact_check:"):
            with st.spinner(f"Comparing with {name}..."):
                st.session_state[RESULT_KEY] = reconcile.verify(settings, full=full, budget=budget)
    result = st.session_state.get(RESULT_KEY)
    if isinstance(result, reconcile.VerifyResult):
        _show(settings, result, can_run=can_run, name=name, types=types)


def _requests(count: int) -> str:
    """``1 request``, ``1,200 requests``: a count of requests as a sentence reads it."""
    return f"{count:,} request{'' if count == 1 else 's'}"


def _type_names(settings: Settings) -> dict[str, str]:
    """Each record type as the CRM calls it, lower case (``people`` for Pipedrive's contacts)."""
    return {t.name: t.label.lower() for t in crms.provider_of(settings).object_types()}


def _show(
    settings: Settings, result: reconcile.VerifyResult, *, can_run: bool, name: str, types: dict[str, str]
) -> None:
    st.dataframe(_counts_frame(result, name, types), hide_index=True, key="verify_counts")
    if result.clean:
        st.success(f"The cache matches {name} ({_requests(result.requests)}).", icon=":material/verified:")
        return
    if not result.complete:
        st.warning(
            f"The budget ran out after {_requests(result.requests)}; types marked unfinished were only "
            "partly checked.",
            icon=":material/hourglass_bottom:",
        )
    differences = _differences_frame(result, name, types)
    if differences.empty:
        return
    st.dataframe(differences, hide_index=True, key="verify_differences")
    extra = sum(len(c.extra) for c in result.types.values())
    remove = False
    if extra:
        remove = st.checkbox(
            f"Also remove the {extra:,} records {name} no longer has (each is read back first; "
            f"one {name} still has is kept)",
            key="verify_remove",
        )
    chosen = result if remove else _without_extra(result)
    st.caption(f"Fixing makes about {_requests(reconcile.estimate_fix(chosen))}.")
    if st.button("Fix", key="verify_fix", disabled=not can_run, icon=":material/build:"):
        with crm_errors("fix the cache", stop=False), st.spinner(f"Re-reading from {name}..."):
            repaired = reconcile.fix(settings, chosen)
            data.clear()
            st.session_state.pop(RESULT_KEY, None)
            flash(
                f"Fixed: {sum(repaired.fetched.values()):,} re-read, {sum(repaired.removed.values()):,} "
                f"removed, {sum(repaired.kept.values()):,} kept" + ("" if repaired.complete else " (stopped)")
            )
            reruns.rerun()


def _counts_frame(result: reconcile.VerifyResult, name: str, types: dict[str, str]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for check in result.types.values():
        state = "skipped" if check.skipped else ("done" if check.complete else "unfinished")
        rows.append(
            {
                "Type": types.get(check.object_type, check.object_type),
                "Cache": check.cached,
                name: check.in_crm,
                "Checked": check.checked,
                "Missing": len(check.missing),
                "Extra": len(check.extra),
                "Stale": len(check.stale),
                "Check": state,
            }
        )
    return pd.DataFrame(rows)


def _differences_frame(result: reconcile.VerifyResult, name: str, types: dict[str, str]) -> pd.DataFrame:
    kinds = _kinds(name)
    rows = [
        {
            "Type": types.get(check.object_type, check.object_type),
            "Record": record_id,
            "Difference": kinds[kind],
        }
        for check in result.types.values()
        for kind in kinds
        for record_id in getattr(check, kind)
    ]
    return pd.DataFrame(rows, columns=["Type", "Record", "Difference"])


def _without_extra(result: reconcile.VerifyResult) -> reconcile.VerifyResult:
    types = {t: dataclasses.replace(c, extra=[]) for t, c in result.types.items()}
    return dataclasses.replace(result, types=types)
