"""Operator-facing behaviour (logs, settings, file modes, container) against the loopback sandbox."""

from __future__ import annotations

from tests.portal_fixtures import fresh_limits, settings  # noqa: F401  (fixtures for this directory)
