"""Command-line options of ``python -m crm.bench`` and the sizes each mode uses."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

SCENARIOS = ("full", "sdk", "incremental", "push", "dashboard", "pipedrive")
# The cache backends the dashboard scenario measures, one after the other.
BACKENDS = ("sqlite", "postgresql")

# Full mode: what the benchmarks issue asks for.
FULL_SIZES = (10_000, 50_000, 100_000)
FULL_CHANGES = (10, 1_000, 20_000)
FULL_DASHBOARD = (100_000, 1_000_000)
# Quick mode: the same scenarios on small portals, in under two minutes.
QUICK_SIZES = (1_000, 2_000)
QUICK_CHANGES = (10, 300)
QUICK_DASHBOARD = (20_000,)
QUICK_PUSH_COUNT = 300
# Engagements added to the largest dashboard cache (tickets: a tenth as many), and the
# timeline the scale benchmark opens next to a five-interaction one. Half a million keeps
# the full run near fifteen minutes with both backends (filling PostgreSQL is the slow
# part); the 5,000,000 is ``--interactions 5000000``.
FULL_INTERACTIONS = 500_000
QUICK_INTERACTIONS = 20_000
HEAVY_TIMELINE = 5_000
PUSH_COUNT = 1_000
# Persons per Pipedrive company for its full pull (organizations a fifth, deals 0.3 times
# as many, as the HubSpot portals). The generic pull reads one page at a time, so 20,000
# persons already take minutes at 250 ms latency.
FULL_PIPEDRIVE = (20_000,)
QUICK_PIPEDRIVE = (1_000,)
SDK_DEFAULT_MAX = 50_000


@dataclasses.dataclass
class BenchOptions:
    """Everything one benchmark run is parameterised by (also written into the JSON)."""

    quick: bool = False
    latency_ms: float = 250.0
    jitter_ms: float = 62.5
    sizes: tuple[int, ...] = FULL_SIZES
    changes: tuple[int, ...] = FULL_CHANGES
    push_count: int = PUSH_COUNT
    dashboard_sizes: tuple[int, ...] = FULL_DASHBOARD
    interactions: int = FULL_INTERACTIONS
    heavy_timeline: int = HEAVY_TIMELINE
    sdk_size: int | None = None
    pipedrive_sizes: tuple[int, ...] = FULL_PIPEDRIVE
    scenarios: tuple[str, ...] = SCENARIOS
    backends: tuple[str, ...] = BACKENDS
    browser: bool = True
    burst_limit: int = 110
    burst_window_s: float = 10.0
    search_limit: int = 5
    seed: int = 42
    json_path: Path | None = None
    results_dir: Path = Path("bench-results")
    write_docs: bool = False

    @property
    def sdk_contacts(self) -> int:
        """The portal the official SDK reads: ``sdk_size``, else the largest up to SDK_DEFAULT_MAX.

        The SDK reads one page after another (about 3 requests a second at 250 ms latency),
        so on the 100,000-contact portal it alone would take ten minutes of a run that
        should stay well under thirty; 50,000 contacts is the same work per record.
        """
        if self.sdk_size:
            return self.sdk_size
        fitting = [s for s in self.sizes if s <= SDK_DEFAULT_MAX]
        return max(fitting) if fitting else min(self.sizes)

    @property
    def portal_contacts(self) -> int:
        """The largest full-pull portal: the one incremental and push scenarios run on."""
        return max(self.sizes)

    def to_json(self) -> dict[str, object]:
        data = dataclasses.asdict(self)
        for key in ("json_path", "results_dir"):
            data[key] = None if data[key] is None else str(data[key])
        data["sdk_contacts"] = self.sdk_contacts
        return data


def portal_sizes(contacts: int) -> dict[str, int]:
    """A portal shaped like the issue's: 100,000 contacts with 20,000 companies and 30,000 deals."""
    return {"contacts": contacts, "companies": contacts // 5, "deals": contacts * 3 // 10}


def company_sizes(persons: int) -> dict[str, int]:
    """A Pipedrive company shaped like the HubSpot portals: organizations n/5, deals 0.3 n."""
    return {"persons": persons, "organizations": persons // 5, "deals": persons * 3 // 10}


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(
            int(part.replace("_", "").replace("k", "000").replace("M", "000000"))
            for part in text.split(",")
            if part.strip()
        )
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}")
    return values


def _backends(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"backends are {', '.join(BACKENDS)}; got {text!r}")
    return names


def _scenarios(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"scenarios are {', '.join(SCENARIOS)}; got {text!r}")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m crm.bench",
        description="Benchmarks against the HubSpot sandbox on loopback: full pull (vs the official "
        "SDK and the rate-limit bound), incremental pull, push, and the dashboard in Chromium; "
        "and the Pipedrive full pull against its own sandbox and bound.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"small portals ({', '.join(map(str, QUICK_SIZES))} contacts), under two minutes",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=250.0,
        help="sandbox latency per request (default 250) before jitter",
    )
    p.add_argument(
        "--jitter-ms",
        type=float,
        default=None,
        help="extra random latency per request, 0 to this (default latency / 4, as the sandbox CLI)",
    )
    p.add_argument(
        "--burst-window-s",
        type=float,
        default=10.0,
        help="the HubSpot sandbox's rolling burst window (default 10 s, HubSpot's; the burst limit "
        "is per window): a shorter one lets a small pull past its first window without waiting it out",
    )
    p.add_argument(
        "--sizes",
        type=_ints,
        help="contacts per full-pull portal, e.g. 10000,50000,100000 "
        "(companies = contacts/5, deals = 0.3 x contacts)",
    )
    p.add_argument("--changes", type=_ints, help="k remote changes per incremental pull, e.g. 10,1000,20000")
    p.add_argument("--push-count", type=int, help=f"edits and new contacts pushed (default {PUSH_COUNT})")
    p.add_argument(
        "--dashboard-sizes", type=_ints, help="cached contacts for the browser scenario, e.g. 100000,1000000"
    )
    p.add_argument(
        "--interactions",
        type=_ints,
        help=f"engagements added to the largest dashboard cache, a tenth as many tickets "
        f"(default {FULL_INTERACTIONS:,}; quick {QUICK_INTERACTIONS:,}; 0 skips the interaction pages)",
    )
    p.add_argument(
        "--heavy-timeline",
        type=int,
        default=HEAVY_TIMELINE,
        help=f"interactions of the contact whose timeline is opened next to one with 5 (default {HEAVY_TIMELINE:,})",
    )
    p.add_argument(
        "--sdk-size",
        type=int,
        help="portal (contacts) the official SDK reads in full, one of "
        f"--sizes; default the largest size up to {SDK_DEFAULT_MAX:,}",
    )
    p.add_argument(
        "--pipedrive-sizes",
        type=_ints,
        help="persons per Pipedrive company for its full pull, e.g. 20000 (organizations = persons/5, "
        f"deals = 0.3 x persons; default {FULL_PIPEDRIVE[0]:,}, quick {QUICK_PIPEDRIVE[0]:,})",
    )
    p.add_argument(
        "--scenarios",
        type=_scenarios,
        default=SCENARIOS,
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    p.add_argument(
        "--backends",
        type=_backends,
        default=BACKENDS,
        help="cache backends the dashboard scenario measures (default sqlite,postgresql; "
        "PostgreSQL runs in a throwaway local cluster)",
    )
    p.add_argument("--no-browser", action="store_true", help="skip the dashboard scenario (Chromium)")
    p.add_argument("--seed", type=int, default=42, help="sandbox seed (default 42)")
    p.add_argument(
        "--json",
        type=Path,
        dest="json_path",
        help="where to write the JSON (default bench-results/bench-<time>.json and latest.json)",
    )
    p.add_argument(
        "--write-docs",
        action="store_true",
        help="also put the tables into docs/PERFORMANCE.md between its bench markers",
    )
    p.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="print (and with --write-docs, publish) a stored result instead of running",
    )
    return p


def from_args(ns: argparse.Namespace) -> BenchOptions:
    quick = bool(ns.quick)
    sizes = ns.sizes or (QUICK_SIZES if quick else FULL_SIZES)
    scenarios = tuple(s for s in ns.scenarios if not (ns.no_browser and s == "dashboard"))
    return BenchOptions(
        quick=quick,
        latency_ms=ns.latency_ms,
        jitter_ms=ns.jitter_ms if ns.jitter_ms is not None else ns.latency_ms / 4,
        burst_window_s=ns.burst_window_s,
        sizes=tuple(sorted(set(sizes))),
        changes=ns.changes or (QUICK_CHANGES if quick else FULL_CHANGES),
        push_count=ns.push_count
        if ns.push_count is not None
        else (QUICK_PUSH_COUNT if quick else PUSH_COUNT),
        dashboard_sizes=tuple(
            sorted(set(ns.dashboard_sizes or (QUICK_DASHBOARD if quick else FULL_DASHBOARD)))
        ),
        interactions=ns.interactions[0]
        if ns.interactions
        else (QUICK_INTERACTIONS if quick else FULL_INTERACTIONS),
        heavy_timeline=ns.heavy_timeline,
        sdk_size=ns.sdk_size,
        pipedrive_sizes=tuple(
            sorted(set(ns.pipedrive_sizes or (QUICK_PIPEDRIVE if quick else FULL_PIPEDRIVE)))
        ),
        scenarios=scenarios,
        backends=tuple(ns.backends),
        browser="dashboard" in scenarios,
        seed=ns.seed,
        json_path=ns.json_path,
        write_docs=bool(ns.write_docs),
    )
