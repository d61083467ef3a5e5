"""How CRM values are shown: column configs, formatting, safe links, safe text, safe CSV.

CRM values are other people's text. They reach the browser only through grids,
``st.text``/``st.code``, or Markdown-rendering elements after ``md_escape``; links only
as https URLs into the CRM's own UI (built by the CRM's provider, ``crm.crms``); CSV
exports only after ``neutralise``. Column titles that name the CRM or one of its fields
come from its ``Words``.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st

from crm.crms import provider_for, words_for

# Re-exported: pages and tests know them as ui.columns names; crm.export needs them without streamlit.
from crm.export import FORMULA_START as FORMULA_START
from crm.export import neutralise as neutralise
from crm.interface import Identity, ObjectTypeInfo, Words
from crm.labels import option_labels as option_labels
from crm.labels import owner_labels as owner_labels
from crm.labels import pipeline_labels as pipeline_labels
from crm.labels import stage_labels as stage_labels

# Every ASCII punctuation character may be backslash-escaped in CommonMark, and an escaped
# one is always literal: no emphasis, links, images, HTML, entities, :color[...] or $math$.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$=&\"'^%/;?@,])")
# GFM autolinks (bare URLs, www., emails) and Streamlit's :emoji: and :material/icon:
# shortcodes survive escaping (they are matched in the text once escapes are read), so a
# zero-width space after every "." and "@", after a ":" that text follows ("http://",
# ":smile:") and inside "www" breaks them; checked in Chromium on 1.67. A colon before a
# space or the end ("Saved: 3") starts none of them and gets none: a stray one showed in
# toasts and came along when the text was copied.
_ZWSP = "\u200b"
_WWW = re.compile(r"(?i)(w)(ww)")
_COLON_BEFORE_TEXT = re.compile(r":(?=\S)")


def md_escape(value: object, *, max_len: int = 300) -> str:
    """``value`` as literal text for any element that renders Markdown.

    Newlines collapse to spaces (a newline could start a heading or a list), and very
    long values are shortened so a hostile value cannot flood a message. The result
    carries invisible zero-width spaces, so values people copy (emails, ids) are better
    shown with ``st.text`` or in a grid.
    """
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    if len(text) > max_len:
        text = text[: max_len - 1] + "…"
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = text.replace(".", "." + _ZWSP).replace("@", "@" + _ZWSP)
    text = _COLON_BEFORE_TEXT.sub(":" + _ZWSP, text)
    return _WWW.sub(r"\1" + _ZWSP + r"\2", text)


def https_or_none(value: object) -> str | None:
    """``value`` if it is an absolute https URL with a host, else None."""
    text = str(value or "").strip()
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.netloc or any(c.isspace() for c in text):
        return None
    return text


def _account(ui_domain: object, portal_id: object) -> Identity:
    return Identity(account_id=str(portal_id or ""), account_name="", ui_host=str(ui_domain or ""))


def record_url(
    ui_domain: object, portal_id: object, object_type: str, record_id: object, *, crm: str | None = None
) -> str | None:
    """The record's page in the CRM's own UI (HubSpot unless ``crm`` names another), or None."""
    url = provider_for(crm).record_url(
        object_type, str(record_id or ""), account=_account(ui_domain, portal_id)
    )
    return https_or_none(url)


def portal_url(ui_domain: object, portal_id: object, *, crm: str | None = None) -> str | None:
    """The account's home in the CRM's own UI (HubSpot: the portal's contacts)."""
    return https_or_none(provider_for(crm).account_url(_account(ui_domain, portal_id)))


def with_links(
    frame: pd.DataFrame,
    object_type: str,
    ui_domain: object,
    portal_id: object,
    column: str = "hubspot",
    *,
    crm: str | None = None,
) -> pd.DataFrame:
    """A copy of ``frame`` (indexed by record id) with an https link to each record."""
    out = frame.copy()
    out[column] = [record_url(ui_domain, portal_id, object_type, rid, crm=crm) for rid in out.index]
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as UTF-8 CSV (with a BOM for spreadsheet apps), formula-like cells neutralised."""
    safe = frame.copy()
    safe.index = safe.index.map(neutralise)
    safe.columns = [neutralise(c) for c in safe.columns]
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(neutralise)
    # Quoting every text cell keeps a stray CR or LF inside its cell in every reader.
    return safe.to_csv(index=True, quoting=csv.QUOTE_NONNUMERIC).encode("utf-8-sig")


def label_of(options: Mapping[str, str]) -> Callable[[Any], str]:
    """A ``format_func`` that shows an option's label and falls back to its raw value."""

    def fmt(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        return options.get(str(value), str(value))

    return fmt


def ago(when: object, *, now: dt.datetime | None = None) -> str:
    """ "3 minutes ago" for an ISO-8601 timestamp (or epoch seconds); "never" for nothing.

    A moment a minute or more ahead is "in 3 days" (a task's due date, a meeting to come);
    less than that ahead is clock skew, and reads "just now".
    """
    moment = parse_time(when)
    if moment is None:
        return "never"
    now = now or dt.datetime.now(dt.UTC)
    seconds = int((now - moment).total_seconds())
    ahead = seconds <= -60
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if abs(seconds) >= size and (ahead or seconds > 0):
            n = abs(seconds) // size
            span = f"{n} {unit}{'' if n == 1 else 's'}"
            return f"in {span}" if ahead else f"{span} ago"
    return "just now" if seconds < 10 else f"{seconds} seconds ago"


def parse_time(when: object) -> dt.datetime | None:
    """An aware UTC datetime from ISO-8601 text, epoch seconds or a datetime; None otherwise."""
    if when is None or when == "":
        return None
    if isinstance(when, dt.datetime):
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    if isinstance(when, (int, float)):
        if isinstance(when, float) and math.isnan(when):
            return None
        return dt.datetime.fromtimestamp(float(when), dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(str(when).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s"


def money(amount: object, currency: str = "") -> str:
    try:
        value = float(amount)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    if math.isnan(value):
        return "–"
    prefix = "$" if currency in ("", "USD") else f"{currency} "
    return f"{prefix}{value:,.0f}"


# --- column configs -------------------------------------------------------------------


def link_column(words: Words | None = None) -> Any:
    """The column of links into the CRM, titled with its name."""
    words = words or words_for(None)
    return st.column_config.LinkColumn(
        words.crm, display_text="Open ↗", width="small", help=f"Open the record in {words.crm} (new tab)"
    )


# --- columns by role: what any CRM's list and record pages show ------------------------------


def type_info(crm: str | None, object_type: str) -> ObjectTypeInfo:
    """The CRM's description of a neutral object type (its label, roles and page columns).

    Raises:
        KeyError: the CRM has no such type.
    """
    for info in provider_for(crm).object_types():
        if info.name == object_type:
            return info
    raise KeyError(f"{crm or 'hubspot'} has no {object_type}")


def sort_label(info: ObjectTypeInfo, name: str, words: Words, defs: Mapping[str, Any]) -> str:
    """How a sort choice reads: the CRM's own word for the field first (a deal sorts by "Deal
    name" where its column is titled "Deal"), else the column's title."""
    return words.fields.get(name) or info.label_of(name, words, defs)


def sort_choices(info: ObjectTypeInfo, words: Words, defs: Mapping[str, Any]) -> dict[str, tuple[str, bool]]:
    """The type's sort choices in order: label -> (column, descending). A column offered both
    ways reads "newest first" / "oldest first" (a date) or "descending" / "ascending"."""
    names = [name for name, _ in info.sorts]
    choices: dict[str, tuple[str, bool]] = {}
    for name, descending in info.sorts:
        text = sort_label(info, name, words, defs)
        if names.count(name) > 1:
            dated = str((defs.get(name) or {}).get("type")) in ("date", "datetime")
            ways = ("newest first", "oldest first") if dated else ("descending", "ascending")
            text = f"{text} ({ways[0] if descending else ways[1]})"
        choices[text] = (name, descending)
    return choices


def record_label(row: Mapping[str, Any], info: ObjectTypeInfo, fallback: str) -> str:
    """A record's name from the type's ``title`` properties (see ``ObjectTypeInfo``)."""

    def text(name: str) -> str:
        value = row.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        return str(value).strip()

    names, fallbacks = info.title_parts()
    joined = " ".join(t for t in (text(n) for n in names) if t)
    if joined:
        return joined
    return next((t for t in (text(n) for n in fallbacks) if t), fallback)


def id_text(value: Any) -> Any:
    """An id as the text the CRM's lists key it by: a whole number read from a number column
    (``7.0``) is ``"7"``; empty stays None."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def role_columns(info: ObjectTypeInfo) -> tuple[str, ...]:
    """The type's columns that hold ids of other things (owner, pipeline, stage, company)."""
    return tuple(c for c in (info.owner, info.pipeline, info.stage, info.company) if c)


def ids_as_text(frame: pd.DataFrame, info: ObjectTypeInfo) -> pd.DataFrame:
    """A copy of ``frame`` with its id-holding role columns as text, as their choices are keyed."""
    out = frame.copy()
    for column in role_columns(info):
        if column in out.columns:
            out[column] = pd.Series([id_text(v) for v in out[column]], index=out.index, dtype=object)
    return out


def grid_columns(
    info: ObjectTypeInfo,
    words: Words,
    defs: Mapping[str, Any],
    *,
    owners: Mapping[str, str],
    stages: Mapping[str, str] | None = None,
    pipelines: Mapping[str, str] | None = None,
    companies: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Column config of a type's grid, chosen by each column's role and definition.

    Ids (owner, pipeline, stage, company) and enumerations show labels and keep the CRM's
    values; titles come from ``ObjectTypeInfo.label_of``. Every value is plain grid text.
    """
    cc = st.column_config
    choices: dict[str, Mapping[str, str]] = {}
    if info.owner:
        choices[info.owner] = owners
    if info.stage and stages is not None:
        choices[info.stage] = stages
    if info.pipeline:
        choices[info.pipeline] = pipelines or {}
    if info.company:
        choices[info.company] = companies or {}
    fixed = {info.pipeline, info.company} - {None}
    config: dict[str, Any] = {
        "_index": cc.TextColumn("ID", disabled=True, width="small"),
        "hubspot": link_column(words),
    }
    for name in info.columns:
        label = info.label_of(name, words, defs)
        prop_type = str((defs.get(name) or {}).get("type") or "")
        options = choices.get(name)
        if options is None and prop_type == "enumeration" and name not in fixed:
            options = option_labels(defs.get(name))
        if options is not None:
            width = "medium" if name == info.owner else None
            config[name] = cc.SelectboxColumn(
                label,
                options=list(options),
                format_func=label_of(options),
                disabled=name in fixed,
                width=width,
            )
        elif name in info.title:
            config[name] = cc.TextColumn(label, width="medium", max_chars=254 if name == info.email else 200)
        elif name == info.amount:
            money_format = "dollar" if info.currency is None else "%,.2f"
            config[name] = cc.NumberColumn(label, format=money_format, min_value=0, step=1)
        elif name == info.close_date:
            config[name] = cc.DateColumn(label, format="YYYY-MM-DD")
        elif prop_type == "number":
            config[name] = cc.NumberColumn(label, format="%,d")
        elif prop_type == "datetime":
            config[name] = cc.DatetimeColumn(label, disabled=True, format="distance")
        else:
            config[name] = cc.TextColumn(label, max_chars=254 if name == info.email else 200)
    return config
