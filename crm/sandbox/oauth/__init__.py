"""The sandbox portal's OAuth server: consent page, tokens, introspection, revocation.

``models`` holds the state (``OAuthModel``, used by every CRM route through ``authenticate``
and ``require_scopes``); ``routes`` serves it over HTTP. Importing this package does not
import Starlette.
"""

from __future__ import annotations

from crm.sandbox.oauth.models import ALL_SCOPES, AuthContext, OAuthModel

__all__ = ["ALL_SCOPES", "AuthContext", "OAuthModel"]
