"""The admin clients' TLS context, built once per process (``crm.tls`` says why it pays).

The sandbox imports nothing from ``crm`` outside ``crm/sandbox`` (docs/CONTRACTS.md), so its
admin clients (``SandboxAdmin``, ``PipedriveAdmin``: one per test) keep their own.
"""

from __future__ import annotations

import functools
import ssl

import httpx2


@functools.cache
def context(*, trust_env: bool = True) -> ssl.SSLContext:
    """What httpx2 would build for a client with this ``trust_env``, shared by all of them."""
    return httpx2.create_ssl_context(verify=True, trust_env=trust_env)
