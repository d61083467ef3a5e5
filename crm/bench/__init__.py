"""Benchmarks: how long staff wait, measured against HubSpot's own limits.

``python -m crm.bench`` (``make bench``) starts the sandbox in its own process on loopback
with HubSpot's rate limits (110 requests per rolling 10 s, 5 searches per second) and a
realistic latency (250 ms per request plus jitter), seeds it, and measures, in one run:

1. full pull of 10k/50k/100k-contact portals (with a fifth as many companies and 0.3 as
   many deals, and their associations): wall time, requests by kind, 429s, records per
   second against the combined rate-limit bound, and against the official SDK's
   ``get_all`` reading the same objects in the same run;
2. incremental pull after k remote changes on the largest portal, next to a full re-read;
3. push of 1,000 edits and of 1,000 new contacts;
4. the dashboard in Chromium over 100k and 1M cached contacts.

It prints a table with each target's PASS/MISS and writes JSON (bench-results/). Every
measured operation runs in a fresh worker process (``crm.bench.worker``), like a CLI run.

Modules: ``options`` (CLI and sizes), ``processes`` (sandbox, workers, Streamlit),
``worker``, ``scenarios`` (pulls and pushes), ``dashboard`` (Chromium), ``report``
(targets, tables, JSON, Markdown), ``run`` (the whole run).
"""
