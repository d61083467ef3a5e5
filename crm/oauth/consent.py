"""The consent flow every CRM shares: connect tickets, the state, the browser binding, PKCE.

Cut from the OAuth module because it changes with OAuth's security rules (state and
PKCE, RFC 6749 / 7636, a ticket so that only the Connect page starts a flow), not with
any one CRM: HubSpot's round trip (``crm.oauth.connect``) and Pipedrive's
(``crm.pipedrive_auth``) both open a flow with ``begin_flow`` and check the answer with
``finish_flow``.

Every connect needs a ticket, whatever the access configuration (staff login, admins only,
``CRM_OPEN_ACCESS``, loopback open mode): only the Connect page mints one, after the access
guard let the visitor in and ``require_admin`` agreed. Without that rule a request with no
cookie and no login could run the round trip, claim the cache for another portal and drop
the queued edits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from typing import Any

from crm import store
from crm.config import Settings
from crm.errors import OAuthFlowError
from crm.store import Store
from crm.vault import Vault, load_keys

log = logging.getLogger("crm.oauth")

STATE_TTL_S = 600
TICKET_TTL_S = 600


def create_ticket(settings: Settings, staff_email: str | None) -> str:
    """A single-use ticket (10 minutes) that lets ``/hubspot/connect`` start a flow."""
    ticket = secrets.token_urlsafe(32)
    now = time.time()
    with store.open(settings.home) as db:
        db.auth.save_ticket(digest(ticket), staff_email=staff_email, expires_at=now + TICKET_TTL_S, now=now)
    return ticket


def require_ticket(ticket: str | None) -> str:
    """The connect ticket a flow starts with, checked by every CRM's ``start_connect`` first,
    before any setting or table is read: a stranger learns nothing.

    Raises:
        OAuthFlowError: "ticket_required" (no ticket).
    """
    if not ticket:
        raise OAuthFlowError("ticket_required", "Start connecting from the Connect page.")
    return ticket


def begin_flow(settings: Settings, *, ticket: str, pkce: bool, crm: str) -> tuple[str, str, str | None]:
    """Redeem a connect ticket and open a new state: ``(state, nonce, PKCE verifier)``.

    Shared by every CRM's consent flow: the state and the binding nonce are stored hashed
    in the home database (the verifier encrypted), so ``finish_flow`` can check the answer.
    ``crm`` is the CRM's name for the log line saying who started it.

    Raises:
        OAuthFlowError: "ticket_invalid" (unknown, expired or used).
        ConfigError: no encryption key.
    """
    vault = Vault(load_keys(settings))
    with store.open(settings.home) as db:
        now = time.time()
        ok, staff_email = db.auth.redeem_ticket(digest(ticket), now=now)
        if not ok:
            raise OAuthFlowError(
                "ticket_invalid", "That connect link has expired or was already used; try again."
            )
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        state_hash = digest(state)
        verifier = secrets.token_urlsafe(64) if pkce else None
        db.auth.save_state(
            state_hash=state_hash,
            nonce_hash=digest(nonce),
            verifier=vault.encrypt(verifier, portal_id=0, kind=verifier_kind(state_hash))
            if verifier
            else None,
            staff_email=staff_email,
            now=now,
            ttl_s=STATE_TTL_S,
        )
    log.info("%s connect started%s", crm, f" by {staff_email}" if staff_email else "")
    return state, nonce, verifier


def finish_flow(
    db: Store, *, state: str | None, nonce: str | None, code: str | None, error: str | None, crm: str
) -> dict[str, Any]:
    """Check a consent answer against its state (``db``: the home database); the state's row.

    The state is consumed before anything else happens, so a replay is refused. The CRM's
    ``error`` is believed only once the state and the browser binding check out.
    ``crm`` is the CRM's name for messages ("HubSpot").

    Raises:
        OAuthFlowError: state_missing, state_unknown, state_expired, state_reused,
            state_foreign, access_denied, provider_error, code_missing.
    """
    now = time.time()
    row = db.auth.consume_state(digest(state), now=now) if state else None
    if error:
        log.info("%s returned an error instead of a code: %s", crm, _short(error))
    if not state:
        raise OAuthFlowError("state_missing", "The sign-in answer carried no state; start again.")
    if row is None:
        problem = db.auth.state_problem(digest(state), now=now)
        log.info("OAuth callback refused: state %s", problem)
        raise OAuthFlowError(f"state_{problem}", STATE_MESSAGES[problem])
    if not nonce or not hmac.compare_digest(digest(nonce), row["nonce_hash"] or ""):
        log.info("OAuth callback refused: the browser binding cookie does not match")
        raise OAuthFlowError(
            "state_foreign", "This sign-in was started in another browser; start again here."
        )
    if error:
        reason = "access_denied" if error == "access_denied" else "provider_error"
        raise OAuthFlowError(reason, f"{crm} did not grant access.")
    if not code:
        raise OAuthFlowError("code_missing", f"{crm} sent no authorization code.")
    return row


STATE_MESSAGES = {
    "unknown": "This sign-in link is not one we started; start again from the Connect page.",
    "expired": "The sign-in took longer than 10 minutes; start again.",
    "reused": "This sign-in was already completed or abandoned; start again.",
}


def digest(value: str | None) -> str:
    return hashlib.sha256((value or "").encode()).hexdigest()


def verifier_kind(state_hash: str) -> str:
    return f"pkce:{state_hash[:32]}"


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _short(value: str) -> str:
    return "".join(ch for ch in value[:40] if ch.isalnum() or ch in "_-.")
