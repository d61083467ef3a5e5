"""Pipedrive: the second implementation of the CRM interface (issue #15), started.

Modules:
    client    PipedriveClient: API v2 persons/organizations/deals (cursor paging,
              ``updated_since``), v1 fields, users, pipelines and stages, webhooks; API token
              or bearer; 429 honoured within a bound; errors -> crm.errors
    tokens    PipedriveTokens: the OAuth token endpoint (code, refresh, revoke; Basic auth)
    provider  Pipedrive (crm.interface.Crm) and PipedriveApi (crm.interface.CrmApi)

Facts and their sources: docs/PIPEDRIVE_API.md. ``crm.pipedrive`` never imports
``crm.sandbox``: the sandbox is reached through its URL only. Stored connections (API token
or OAuth consent; ``Pipedrive.connect``) live above this package, in ``crm.pipedrive_auth``.
Not done yet: a proactive rate limiter (429s are waited out), and the sync, store and page
wiring.
"""
