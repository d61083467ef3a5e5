"""Labels the dashboard shows instead of HubSpot ids: owners, enumeration options, pipelines, stages.

Pure functions over what ``crm.store.records`` returns, shared by the pages (through
``ui.columns``) and ``python -m crm export``, so both say the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def owner_labels(owners: pd.DataFrame) -> dict[str, str]:
    """Owner id -> "Name (email)" for the owners in ``owners_frame`` (indexed by id), in name order."""
    labels: dict[str, str] = {}
    if owners is None or owners.empty:
        return labels
    for oid, row in owners.iterrows():
        name = str(row.get("name") or "").strip()
        email = str(row.get("email") or "").strip()
        labels[str(oid)] = (
            f"{name} ({email})" if name and email and name != email else (name or email or str(oid))
        )
    return dict(sorted(labels.items(), key=lambda kv: kv[1].lower()))


def option_labels(prop_def: Mapping[str, Any] | None) -> dict[str, str]:
    """Enumeration value -> label from a property definition, in display order, hidden ones left out."""
    if not prop_def:
        return {}
    options = prop_def.get("options") or []
    ordered = sorted(
        (o for o in options if not o.get("hidden")),
        key=lambda o: o.get("display_order", 0) if o.get("display_order") is not None else 0,
    )
    return {str(o.get("value")): str(o.get("label") or o.get("value")) for o in ordered}


def stage_labels(pipelines: list[dict[str, Any]]) -> dict[str, str]:
    """Deal stage id -> "Stage (Pipeline)" when several pipelines exist, else "Stage"."""
    several = len(pipelines) > 1
    labels: dict[str, str] = {}
    for pipe in pipelines:
        for stage in sorted(pipe.get("stages") or [], key=lambda s: s.get("display_order", 0)):
            label = str(stage.get("label") or stage.get("id"))
            labels[str(stage["id"])] = f"{label} ({pipe.get('label')})" if several else label
    return labels


def pipeline_labels(pipelines: list[dict[str, Any]]) -> dict[str, str]:
    return {str(p["id"]): str(p.get("label") or p["id"]) for p in pipelines}
