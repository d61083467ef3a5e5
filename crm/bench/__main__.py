"""``python -m crm.bench``; see ``crm.bench.run``."""

from __future__ import annotations

from crm.bench.run import main

raise SystemExit(main())
