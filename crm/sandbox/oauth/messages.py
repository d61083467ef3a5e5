"""HubSpot's OAuth and authentication texts, as the sandbox answers them.

Sources are HUBSPOT_API.md §1.4 (token-endpoint dialect) and §8 (401/403 bodies of CRM calls).
Only ``BAD_REFRESH_TOKEN`` and its text are documented; the other token-endpoint pairs are
observed and their wording is UNCERTAIN, so clients must branch on ``error``/``status`` only.
"""

from __future__ import annotations

# (status, error, error_description) for each token-endpoint failure the sandbox models.
BAD_AUTH_CODE = ("BAD_AUTH_CODE", "invalid_grant", "auth code not found, expired or already used")
BAD_CODE_VERIFIER = ("BAD_AUTH_CODE", "invalid_grant", "code_verifier does not match the code_challenge")
BAD_CLIENT_ID = ("BAD_CLIENT_ID", "invalid_client", "missing or unknown client id")
BAD_CLIENT_SECRET = ("BAD_CLIENT_SECRET", "invalid_client", "missing or invalid client secret")
BAD_REDIRECT_URI = (
    "BAD_REDIRECT_URI",
    "invalid_grant",
    "redirect_uri does not match the one used to get the code",
)
BAD_REFRESH_TOKEN = ("BAD_REFRESH_TOKEN", "invalid_grant", "refresh token is invalid, expired or revoked")
BAD_GRANT_TYPE = (
    "BAD_GRANT_TYPE",
    "unsupported_grant_type",
    "grant_type must be authorization_code or refresh_token",
)
MISSING_TOKEN = ("BAD_REQUEST", "invalid_request", "missing token")

INVALID_AUTHENTICATION = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
    "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
# The unit is one of second(s), minute(s), hour(s), day(s); see expired_message().
EXPIRED_AUTHENTICATION = "The OAuth token used to make this call expired {amount} {unit} ago."
MISSING_SCOPES = (
    "This app hasn't been granted all required scopes to make this call. "
    "Read more about required scopes here: https://developers.hubspot.com/scopes."
)
MISSING_SCOPES_DETAIL = "One or more of the following scopes are required."
SCOPES_LINK = "https://developers.hubspot.com/scopes"

# Consent-page refusals: HubSpot shows these on its own page instead of redirecting.
CONSENT_UNKNOWN_CLIENT = "This app isn't known to HubSpot: the client_id does not match any app."
CONSENT_BAD_REDIRECT = "The redirect_uri does not match any redirect URL registered for this app."
CONSENT_MISSING_SCOPE = "The authorization URL has no scope parameter."
CONSENT_WRONG_PORTAL = "This authorization link is for a different HubSpot account."
CONSENT_BAD_CHALLENGE = "Only the S256 code_challenge_method is supported."
CONSENT_EXPIRED = "This authorization request has expired or was already answered. Start again from the app."
DENIED_DESCRIPTION = "The user declined to connect the app."
