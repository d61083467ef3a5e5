"""Encryption at rest for HubSpot tokens (and PKCE verifiers).

Tokens are encrypted with ``MultiFernet`` under the keys in ``CRM_SECRET_KEY`` (comma
separated, newest first). Encryption always uses the newest key; decryption tries every
listed key, so a key can be rotated by putting a new one in front and dropping the old
one once every row has been written again (``Vault.rotate`` does that on the next write).

Each ciphertext is bound to its row: the plaintext is a small JSON document carrying the
portal id and the kind of secret next to the value, and ``decrypt`` refuses a ciphertext
that was copied to another row. Any failure (wrong or retired key, tampering, a row
mix-up) is ``NeedsReconnect``: the product fails closed, never crashes and never falls
back to plaintext.

In sandbox mode with no key configured, a key file is created beside the cache
(``db_path.parent / "secret.key"``, mode 0600) so the demo works with no setup; with a
PostgreSQL cache, which has no file, it is ``data/secret.key`` under the working directory
(processes sharing that PostgreSQL on other machines need ``CRM_SECRET_KEY``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from crm.config import DEFAULT_DB, Settings
from crm.errors import ConfigError, NeedsReconnect

log = logging.getLogger(__name__)

KEY_FILE_NAME = "secret.key"
_VERSION = 1


def load_keys(settings: Settings) -> list[str]:
    """The Fernet keys to use, newest first.

    ``CRM_SECRET_KEY`` when set; otherwise, in sandbox mode only, a key file beside the
    cache, created on first use with 0600 permissions.

    Raises:
        ConfigError: no key is configured outside sandbox mode, or the key file is unusable.
    """
    if settings.secret_keys:
        return list(settings.secret_keys)
    if not settings.is_sandbox:
        raise ConfigError(
            "CRM_SECRET_KEY",
            "is required to encrypt HubSpot tokens at rest; make one with: python -m crm keygen",
        )
    folder = Path(DEFAULT_DB).parent if settings.db_is_postgresql else settings.db_path.parent
    return [_sandbox_key(folder / KEY_FILE_NAME)]


def _sandbox_key(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write a complete file under a private name, then link it into place: link fails
        # if the key exists, so when two processes start at once exactly one key wins and
        # nobody ever reads a half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(Fernet.generate_key().decode() + "\n")
            try:
                os.link(tmp, path)
                log.info("Created a sandbox encryption key file at %s", path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_text().strip()
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        raise ConfigError("CRM_SECRET_KEY", f"the sandbox key file {path} is not a Fernet key") from None
    return key


class Vault:
    """Encrypts and decrypts secrets bound to (portal id, kind)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigError("CRM_SECRET_KEY", "no encryption key configured")
        try:
            self._fernet = MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
        except (ValueError, TypeError):
            raise ConfigError("CRM_SECRET_KEY", "each key must be a Fernet key") from None

    def encrypt(self, plaintext: str, *, portal_id: int, kind: str) -> str:
        """Encrypt ``plaintext`` with the newest key, bound to ``portal_id`` and ``kind``."""
        document = json.dumps({"v": _VERSION, "p": int(portal_id), "k": kind, "s": plaintext})
        return self._fernet.encrypt(document.encode()).decode()

    def decrypt(self, ciphertext: str, *, portal_id: int, kind: str) -> str:
        """The secret in ``ciphertext``, if it was made for this portal and kind.

        Raises:
            NeedsReconnect: no listed key opens it, it was tampered with, or it belongs to
                another row.
        """
        try:
            raw = self._fernet.decrypt(ciphertext.encode())
        except (InvalidToken, ValueError, TypeError):
            raise NeedsReconnect(
                "The stored HubSpot credentials cannot be decrypted with the configured "
                "CRM_SECRET_KEY (wrong or retired key); connect HubSpot again."
            ) from None
        try:
            document = json.loads(raw)
            bound = int(document["p"]) == int(portal_id) and document["k"] == kind
            secret = document["s"]
        except (ValueError, KeyError, TypeError):
            bound, secret = False, None
        if not bound or not isinstance(secret, str):
            raise NeedsReconnect(
                "A stored HubSpot credential does not belong to this connection; connect HubSpot again."
            )
        return secret

    def rotate(self, ciphertext: str, *, portal_id: int, kind: str) -> str:
        """``ciphertext`` re-encrypted with the newest key (after checking its binding)."""
        self.decrypt(ciphertext, portal_id=portal_id, kind=kind)
        return self._fernet.rotate(ciphertext.encode()).decode()
