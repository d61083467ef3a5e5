"""The one exception sandbox handlers raise to answer with a HubSpot-style error."""

from __future__ import annotations

from typing import Any


class SandboxHTTPError(Exception):
    """Answer the current request with ``status`` and the JSON ``body`` (HubSpot's dialect)."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("message") or body.get("error_description") or str(status))
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
