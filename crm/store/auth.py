"""The HubSpot connection in the cache: OAuth states, connect tickets, the connection row, tokens.

Nothing secret is stored in the clear here: states, nonces and tickets arrive hashed, the
PKCE verifier and tokens arrive encrypted (``crm.vault``). A token refresh reads and
replaces the tokens inside one ``db.atomic()`` block, so two refreshes never interleave.
"""

from __future__ import annotations

import json
from typing import Any

from crm.store.engine import Cursor
from crm.store.owner import TableOwner

# Rows past their expiry are kept this long (so "expired" can be told from "unknown"),
# then purged.
KEEP_EXPIRED_S = 86_400

CONNECTION_FIELDS = (
    "mode",
    "status",
    "status_reason",
    "portal_id",
    "hub_domain",
    "ui_domain",
    "user_email",
    "user_id",
    "scopes",
    "expires_at",
    "connected_at",
    "updated_at",
)


def _row(cursor: Cursor) -> dict[str, Any] | None:
    row = cursor.fetchone()
    if row is None:
        return None
    return {d[0]: value for d, value in zip(cursor.description, row, strict=True)}


class Auth(TableOwner):
    """OAuth states, connect tickets, the connection row and the encrypted tokens."""

    # -- OAuth states

    def save_state(
        self,
        *,
        state_hash: str,
        nonce_hash: str,
        verifier: str | None,
        staff_email: str | None,
        now: float,
        ttl_s: float,
    ) -> None:
        """Remember a new authorization attempt (``verifier`` already encrypted)."""
        with self.db.atomic():
            self.conn.execute("DELETE FROM oauth_states WHERE expires_at < ?", (now - KEEP_EXPIRED_S,))
            self.conn.execute(
                "INSERT INTO oauth_states (state_hash, nonce_hash, verifier, staff_email, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (state_hash, nonce_hash, verifier, staff_email, now, now + ttl_s),
            )

    def consume_state(self, state_hash: str, *, now: float) -> dict[str, Any] | None:
        """Mark a state used and return its row, if it was unused and unexpired; else None.

        The UPDATE is the check: of two callbacks racing with one state, exactly one wins.
        """
        with self.db.atomic():
            cursor = self.conn.execute(
                "UPDATE oauth_states SET used_at = ? WHERE state_hash = ? AND used_at IS NULL AND expires_at > ?",
                (now, state_hash, now),
            )
            if cursor.rowcount != 1:
                return None
            return _row(self.conn.execute("SELECT * FROM oauth_states WHERE state_hash = ?", (state_hash,)))

    def state_problem(self, state_hash: str, *, now: float) -> str:
        """Why a state could not be consumed: "unknown", "reused" or "expired"."""
        row = _row(
            self.conn.execute(
                "SELECT used_at, expires_at FROM oauth_states WHERE state_hash = ?", (state_hash,)
            )
        )
        if row is None:
            return "unknown"
        if row["used_at"] is not None:
            return "reused"
        if row["expires_at"] <= now:
            return "expired"
        return "unknown"

    # -- connect tickets

    def save_ticket(
        self, ticket_hash: str, *, staff_email: str | None, expires_at: float, now: float
    ) -> None:
        with self.db.atomic():
            self.conn.execute("DELETE FROM connect_tickets WHERE expires_at < ?", (now - KEEP_EXPIRED_S,))
            self.conn.execute(
                "INSERT INTO connect_tickets (ticket_hash, staff_email, expires_at) VALUES (?, ?, ?)",
                (ticket_hash, staff_email, expires_at),
            )

    def redeem_ticket(self, ticket_hash: str, *, now: float) -> tuple[bool, str | None]:
        """Use a ticket once: ``(True, staff email)`` the first time before expiry, else ``(False, None)``."""
        with self.db.atomic():
            cursor = self.conn.execute(
                "UPDATE connect_tickets SET used_at = ?"
                " WHERE ticket_hash = ? AND used_at IS NULL AND expires_at > ?",
                (now, ticket_hash, now),
            )
            if cursor.rowcount != 1:
                return False, None
            row = _row(
                self.conn.execute(
                    "SELECT staff_email FROM connect_tickets WHERE ticket_hash = ?", (ticket_hash,)
                )
            )
            return True, (row or {}).get("staff_email")

    # -- connection

    def lock_connection(self) -> None:
        """Hold the connection row until the caller's transaction ends.

        A token refresh reads, calls HubSpot and writes in one transaction; with the row
        locked first, a refresh in another process waits and then finds the new token (on
        SQLite the write lock already does this; on PostgreSQL the row lock does).
        """
        self.conn.execute("UPDATE connection SET id = id WHERE id = 1")

    def read_connection(self) -> dict[str, Any] | None:
        """The connection row with ``scopes`` decoded, or None."""
        row = _row(self.conn.execute("SELECT * FROM connection WHERE id = 1"))
        if row is not None:
            try:
                row["scopes"] = list(json.loads(row.get("scopes") or "[]"))
            except ValueError:
                row["scopes"] = []
        return row

    def replace_connection(self, **fields: Any) -> None:
        """Write the whole connection row (fields not given become NULL / defaults)."""
        unknown = set(fields) - set(CONNECTION_FIELDS)
        if unknown:
            raise ValueError(f"unknown connection fields: {sorted(unknown)}")
        values = {name: fields.get(name) for name in CONNECTION_FIELDS}
        values["scopes"] = json.dumps(list(values.get("scopes") or []))
        names = ["id", *values]
        self.conn.execute(
            f"INSERT INTO connection ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)}) "
            "ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{n} = excluded.{n}" for n in names[1:]),
            [1, *values.values()],
        )

    def update_connection(self, **fields: Any) -> None:
        """Change some fields of the connection row, if there is one."""
        unknown = set(fields) - set(CONNECTION_FIELDS)
        if unknown:
            raise ValueError(f"unknown connection fields: {sorted(unknown)}")
        if "scopes" in fields:
            fields["scopes"] = json.dumps(list(fields["scopes"] or []))
        if not fields:
            return
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self.conn.execute(f"UPDATE connection SET {assignments} WHERE id = 1", list(fields.values()))

    def delete_connection(self) -> None:
        """Forget the connection row (its connection was removed)."""
        self.conn.execute("DELETE FROM connection WHERE id = 1")

    # -- tokens

    def read_tokens(self) -> dict[str, dict[str, Any]]:
        """``{kind: {"portal_id", "ciphertext", "expires_at"}}``."""
        cursor = self.conn.execute("SELECT kind, portal_id, ciphertext, expires_at FROM tokens")
        return {
            kind: {"portal_id": portal_id, "ciphertext": ciphertext, "expires_at": expires_at}
            for kind, portal_id, ciphertext, expires_at in cursor.fetchall()
        }

    def write_token(self, kind: str, *, portal_id: int, ciphertext: str, expires_at: float | None) -> None:
        self.conn.execute(
            "INSERT INTO tokens (kind, portal_id, ciphertext, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind) DO UPDATE SET portal_id = excluded.portal_id, "
            "ciphertext = excluded.ciphertext, expires_at = excluded.expires_at",
            (kind, portal_id, ciphertext, expires_at),
        )

    def delete_tokens(self) -> None:
        self.conn.execute("DELETE FROM tokens")
