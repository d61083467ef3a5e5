"""The TLS settings every HTTP client of the app shares: one ``ssl.SSLContext`` per process.

httpx2 builds a new context for each client it is not given one, and building it loads the
system's CA bundle: about 20 ms of CPU (40 ms on a busy machine) per client, on loopback
``http://`` too, where it is never used. The app opens a client per sync, token check,
webhook batch, record page read and sandbox admin call, so those milliseconds added up to a
tenth of the time of a test that opens a few. A configured context is safe to share between
clients and threads (Python's ``ssl`` documentation), so each setting is built once.

The context is what httpx2 would build for the client (``httpx2.create_ssl_context``):
with ``trust_env`` it honours ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` as they were when the
first client was opened.
"""

from __future__ import annotations

import functools
import ssl

import httpx2


@functools.cache
def context(*, trust_env: bool = True) -> ssl.SSLContext:
    """The shared context for clients created with this ``trust_env`` (verifying certificates)."""
    return httpx2.create_ssl_context(verify=True, trust_env=trust_env)
