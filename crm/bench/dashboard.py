"""The dashboard scenario: ``streamlit run app.py`` over a big cache, driven by Chromium.

The cache is a real sync of a small sandbox portal (so connection, owners, pipelines and
property definitions are what a sync writes) topped up with synthetic records
(``crm.store.synthetic``) to 100,000 and 1,000,000 contacts. For each size a fresh app
process serves it; Chromium (Debian's, through Playwright) measures:

- contacts page: from navigation to the contacts table and its "N contacts" caption
  being visible, in a new tab (a new Streamlit session) after a warm-up visit to another
  page, which pays the one-off Python imports of the first script run (reported apart
  as ``first_visit_s``) and leaves Streamlit's frontend in the browser cache;
  ``app_connected_s`` says how much was the frontend starting and opening its websocket;
- search: from pressing Enter in the search box to the table's caption showing the number
  of contacts the cache holds for the text: once for a full email (one contact), once
  for a last name (thousands); ``search_s`` is the slower of the two;
- deals page: from navigation to the pipeline chart being visible;
- the app process's peak memory (VmHWM) after all of that.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crm.bench.processes import BenchError, StreamlitProcess, run_worker

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STEP_TIMEOUT_MS = 120_000
SEARCH_PLACEHOLDER = "Name, email, company or phone"
_CAPTION = re.compile(r"[\d,]+ contacts? · page")


def _wait_idle(page: Any, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
    """Until the app is connected and no script run is in flight (Streamlit's own e2e recipe)."""
    page.locator("[data-testid='stApp'][data-test-connection-state='CONNECTED']").wait_for(
        state="attached", timeout=timeout_ms
    )
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
        state="attached", timeout=timeout_ms
    )


def _contacts_caption(page: Any) -> Any:
    return page.get_by_text(_CAPTION).first


def _caption_for(total: int) -> re.Pattern[str]:
    return re.compile(rf"^{total:,} contacts? · page 1 of")


def measure_app(url: str, searches: dict[str, tuple[str, int]], log: Callable[[str], None]) -> dict[str, Any]:
    """Drive one running app in Chromium and return the timings (seconds).

    Args:
        searches: name -> (text typed into the search box, contacts it should find).
    """
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            dialogs: list[str] = []

            def dismiss(dialog: Any) -> None:
                # CRM data is never HTML: a dialog means a seeded script ran. Count it.
                dialogs.append(dialog.message)
                dialog.dismiss()

            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            # A warm-up visit pays the first script run's imports and fills the browser's
            # cache with Streamlit's frontend, as any returning user's browser has it.
            page = context.new_page()
            page.on("dialog", dismiss)
            started = time.perf_counter()
            page.goto(url + "/sync", wait_until="commit", timeout=STEP_TIMEOUT_MS)
            _wait_idle(page)
            out["first_visit_s"] = round(time.perf_counter() - started, 3)
            page.close()

            # A new tab is a new Streamlit session: the contacts page runs from scratch.
            page = context.new_page()
            page.on("dialog", dismiss)

            started = time.perf_counter()
            page.goto(url + "/", wait_until="commit", timeout=STEP_TIMEOUT_MS)
            page.locator("[data-testid='stApp'][data-test-connection-state='CONNECTED']").wait_for(
                state="attached", timeout=STEP_TIMEOUT_MS
            )
            out["app_connected_s"] = round(time.perf_counter() - started, 3)
            page.locator("[data-testid='stDataFrame']").first.wait_for(
                state="visible", timeout=STEP_TIMEOUT_MS
            )
            _contacts_caption(page).wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
            out["contacts_visible_s"] = round(time.perf_counter() - started, 3)
            out["contacts_caption"] = _contacts_caption(page).inner_text()
            _wait_idle(page)
            out["contacts_idle_s"] = round(time.perf_counter() - started, 3)

            box = page.get_by_placeholder(SEARCH_PLACEHOLDER)
            for name, (text, total) in searches.items():
                box.fill(text)
                expected = page.get_by_text(_caption_for(total)).first
                started = time.perf_counter()
                box.press("Enter")
                expected.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
                page.locator("[data-testid='stDataFrame']").first.wait_for(
                    state="visible", timeout=STEP_TIMEOUT_MS
                )
                out[f"search_{name}_s"] = round(time.perf_counter() - started, 3)
                out[f"search_{name}_matches"] = total
                _wait_idle(page)
            out["search_s"] = max(out[f"search_{name}_s"] for name in searches)

            started = time.perf_counter()
            page.goto(url + "/deals", wait_until="commit", timeout=STEP_TIMEOUT_MS)
            page.locator("[data-testid='stVegaLiteChart']").first.wait_for(
                state="visible", timeout=STEP_TIMEOUT_MS
            )
            out["deals_chart_s"] = round(time.perf_counter() - started, 3)
            _wait_idle(page)
            if page.locator("[data-testid='stException']").count():
                raise BenchError("the app showed an exception")
            out["dialogs"] = len(dialogs)
            context.close()
        finally:
            browser.close()
    return out


def _timeline_caption(total: int) -> re.Pattern[str]:
    return re.compile(rf"^{total:,} interactions? · showing 1-")


def measure_interactions(
    url: str, *, timelines: dict[str, tuple[str, int]], search: str, log: Callable[[str], None]
) -> dict[str, Any]:
    """The interaction pages in Chromium (seconds), each in a new tab after a warm-up visit.

    Args:
        timelines: name -> (contact id, interactions on its timeline); each record page is
            timed from navigation to its "N interactions · showing 1-25" caption.
        search: a word typed on /search, timed from Enter to the "Interactions" results.
    """
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1000})

            def visit(path: str, visible: Any) -> float:
                page = context.new_page()
                started = time.perf_counter()
                page.goto(url + path, wait_until="commit", timeout=STEP_TIMEOUT_MS)
                visible(page).wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
                seconds = time.perf_counter() - started
                _wait_idle(page)
                if page.locator("[data-testid='stException']").count():
                    raise BenchError(f"the app showed an exception on {path}")
                page.close()
                return round(seconds, 3)

            # Warm-up: the record page's first run pays its imports, as the contacts page's does.
            first_id, first_total = next(iter(timelines.values()))
            out["record_first_visit_s"] = visit(
                f"/record?type=contacts&id={first_id}",
                lambda page: page.get_by_text(_timeline_caption(first_total)).first,
            )
            for name, (contact_id, total) in timelines.items():
                out[f"timeline_{name}_s"] = visit(
                    f"/record?type=contacts&id={contact_id}",
                    lambda page, total=total: page.get_by_text(_timeline_caption(total)).first,
                )
                out[f"timeline_{name}_total"] = total
            out["tickets_page_s"] = visit(
                "/tickets", lambda page: page.get_by_text(re.compile(r"[\d,]+ tickets? · page")).first
            )

            page = context.new_page()
            page.goto(url + "/search", wait_until="commit", timeout=STEP_TIMEOUT_MS)
            _wait_idle(page)
            box = page.get_by_label("Search everything")
            box.fill(search)
            started = time.perf_counter()
            box.press("Enter")
            page.get_by_text(re.compile(r"^Interactions \(\d+")).first.wait_for(
                state="visible", timeout=STEP_TIMEOUT_MS
            )
            out["search_page_s"] = round(time.perf_counter() - started, 3)
            out["search_word"] = search
            _wait_idle(page)
            context.close()
        finally:
            browser.close()
    return out


class DashboardBench:
    """Builds the big caches and measures the app over each."""

    def __init__(
        self,
        *,
        sandbox_url: str,
        token: str,
        workdir: Path,
        seed: int,
        log: Callable[[str], None],
        target: str | None = None,
        interactions: int = 0,
        heavy_timeline: int = 5_000,
    ) -> None:
        """``target``: the cache, a SQLite path (default ``workdir/dashboard.db``) or an empty
        PostgreSQL database's URL. ``interactions``: engagements (and a tenth as many
        tickets) added before the largest size is measured, 0 for none."""
        from crm.store.engine import is_postgresql

        self.sandbox_url = sandbox_url
        self.token = token
        self.db = target or str(workdir / "dashboard.db")
        self.backend = "postgresql" if is_postgresql(self.db) else "sqlite"
        self.seed = seed
        self.log = log
        self.interactions = interactions
        self.heavy_timeline = heavy_timeline
        self.filled: dict[str, Any] | None = None

    def _args(self, **extra: Any) -> dict[str, Any]:
        return {"url": self.sandbox_url, "token": self.token, "db": self.db, **extra}

    def prepare(self) -> dict[str, Any]:
        """Sync the (small) sandbox portal into the dashboard cache."""
        return run_worker("sync", self._args(kind="full"), timeout=600)

    def grow_to(self, contacts: int, cached: int) -> tuple[float, dict[str, int]]:
        """Add synthetic records until the cache holds ``contacts`` contacts (and a fifth as many
        companies, 0.3 as many deals)."""
        missing = max(0, contacts - cached)
        result = run_worker(
            "fill",
            self._args(
                contacts=missing, companies=missing // 5, deals=missing * 3 // 10, seed=self.seed + contacts
            ),
            timeout=3600,
        )
        return float(result["seconds"]), dict(result["counts"])

    def searches(self) -> dict[str, tuple[str, int]]:
        """What staff type to find someone: a full email (one match) and a last name (many).

        Each comes with the number of contacts the cache holds for it, which the page's
        "N contacts" caption must show once the search has run.
        """
        from crm import store

        with store.open(self.db) as db:
            frame, _ = db.queries.query_records("contacts", limit=50, columns=["email", "lastname"])
            email = str(frame["email"].iloc[0])
            name = next(
                (str(n) for n in frame["lastname"] if str(n).isalpha()), str(frame["lastname"].iloc[0])
            )
            out = {}
            for key, text in (("email", email), ("name", name)):
                _, total = db.queries.query_records("contacts", search=text, limit=1, columns=["email"])
                out[key] = (text, int(total))
            return out

    def search_plan(self, text: str) -> list[str]:
        """How the database answers the last-name search's first page (EXPLAIN)."""
        from crm import store

        with store.open(self.db) as db:
            return db.queries.search_plan("contacts", text)

    def measure(self, contacts: int, fill_seconds: float, counts: dict[str, int]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "backend": self.backend,
            "cached_contacts": counts.get("contacts", contacts),
            "fill_seconds": round(fill_seconds, 1),
            "cached": counts,
        }
        env = {
            "CRM_DB": self.db,
            "HUBSPOT_ACCESS_TOKEN": self.token,
            "HUBSPOT_BASE_URL": self.sandbox_url,
            "STREAMLIT_SERVER_COOKIE_SECRET": secrets.token_hex(16),
            "CRM_OPEN_ACCESS": "true",
        }
        app = StreamlitProcess(env)
        try:
            app.start()
            searches = self.searches()
            row["search_plan"] = self.search_plan(searches["name"][0])
            row["search_index_used"] = _uses_search_index(row["search_plan"])
            timings = measure_app(app.url, searches, self.log)
            row.update(ok=True, **timings)
            if self.filled is not None:
                row["interactions"] = self._interaction_pages(app.url)
            row["app_peak_mb"] = app.peak_mb()
        except Exception as exc:  # noqa: BLE001 - a failed browser step is reported, not fatal
            row.update(
                ok=False,
                error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                app_log=app.log_tail()[-2000:],
            )
        finally:
            app.stop()
        if row.get("ok"):
            self.log(
                f"dashboard {self.backend} {row['cached_contacts']:,}: contacts {row['contacts_visible_s']:.2f} s, search "
                f"{row['search_s']:.2f} s, deals {row['deals_chart_s']:.2f} s, {row['app_peak_mb']} MB"
            )
        else:
            self.log(f"dashboard {self.backend} {contacts:,} failed: {row['error']}")
        return row

    def _interaction_pages(self, url: str) -> dict[str, Any]:
        assert self.filled is not None
        word, queries = self.interaction_search()
        pages = measure_interactions(
            url,
            timelines={
                "heavy": (str(self.filled["heavy_contact"]), self.heavy_timeline),
                "light": (str(self.filled["light_contact"]), 5),
            },
            search=word,
            log=self.log,
        )
        result = {
            "interactions": self.filled["interactions"],
            "tickets": self.filled["tickets"],
            "fill_seconds": round(float(self.filled["seconds"]), 1),
            **pages,
            **queries,
            "timeline_ratio": round(pages["timeline_heavy_s"] / pages["timeline_light_s"], 2),
        }
        self.log(
            f"interactions {self.backend}: timeline {self.heavy_timeline:,} {pages['timeline_heavy_s']:.2f} s "
            f"vs 5 {pages['timeline_light_s']:.2f} s (x{result['timeline_ratio']}), tickets "
            f"{pages['tickets_page_s']:.2f} s, search {pages['search_page_s']:.2f} s"
        )
        return result

    def run(self, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
        rows = []
        prepared = self.prepare()
        cached = int(prepared.get("counts", {}).get("contacts", 0))
        for contacts in sorted(sizes):
            fill_s, counts = self.grow_to(contacts, cached)
            cached = counts.get("contacts", cached)
            self.log(f"cache filled to {cached:,} contacts in {fill_s:.0f} s")
            if contacts == max(sizes) and self.interactions > 0:
                self.filled = self.add_interactions()
            rows.append(self.measure(contacts, fill_s, counts))
        return rows

    def add_interactions(self) -> dict[str, Any]:
        """Synthetic engagements (one contact with ``heavy_timeline``, one with 5) and tickets."""
        result = run_worker(
            "fill_interactions",
            self._args(
                interactions=self.interactions,
                tickets=self.interactions // 10,
                heavy=self.heavy_timeline,
                light=5,
                seed=self.seed,
            ),
            timeout=3600,
        )
        self.log(
            f"added {result['interactions']:,} interactions and {result['tickets']:,} tickets "
            f"in {result['seconds']:.0f} s"
        )
        return result

    def interaction_search(self) -> tuple[str, dict[str, Any]]:
        """A word found in some of the cached text, and the store's own timings of the
        timeline and search queries (ms), apart from the page around them."""
        from crm import store

        assert self.filled is not None
        out: dict[str, Any] = {}
        with store.open(self.db) as db:
            # One query first, so no timing below includes opening the connection.
            db.interactions.timeline("contacts", str(self.filled["light_contact"]))
            for name, contact in (
                ("heavy", self.filled["heavy_contact"]),
                ("light", self.filled["light_contact"]),
            ):
                started = time.perf_counter()
                db.interactions.timeline("contacts", str(contact))
                out[f"timeline_{name}_query_ms"] = round((time.perf_counter() - started) * 1000, 1)
            # A common word, one engagement's own reference (one hit), two words together.
            for word in ("escalated", f"ref {self.filled['first_id']}", "renewal invoice"):
                started = time.perf_counter()
                hits = db.interactions.search(word, limit=20)
                out[f"search_query_ms[{word}]"] = round((time.perf_counter() - started) * 1000, 1)
                out[f"search_query_hits[{word}]"] = len(hits)
            out["search_plan"] = db.interactions.search_plan("escalated")
        return "escalated", out


def _uses_search_index(plan: list[str]) -> bool:
    """Whether a contacts search plan goes through the search index (SQLite's FTS5 table,
    PostgreSQL's GIN index ``contacts_search``) or the lower(email) index."""
    text = "\n".join(plan)
    return any(name in text for name in ("contacts_fts", "contacts_search", "contacts_email_lower"))
