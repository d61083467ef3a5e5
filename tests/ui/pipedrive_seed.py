"""A Pipedrive connection's partition for page tests, filled from the Pipedrive sandbox.

What a pull would store, written with the store's own verbs: the company's property
definitions, users (as owners), deal pipelines and records, listed through the CRM
interface (``Pipedrive().open``) over real loopback HTTP. The real pull is the sync's
business; this is only the seeding the page tests need.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from crm import connections, crms, pipedrive_auth, store
from crm.config import Settings
from crm.interface import CrmApi, Property
from crm.sandbox.pipedrive.admin import PipedriveAdmin

TYPES = ("contacts", "companies", "deals")
# Pipedrive's links on the record itself, stored as the cache's associations too.
LINKS = (
    ("contacts", "companies", "org_id"),
    ("deals", "companies", "org_id"),
    ("deals", "contacts", "person_id"),
)


def _definition(prop: Property) -> dict[str, Any]:
    return {
        "name": prop.name,
        "label": prop.label,
        "type": prop.type,
        "options": [
            {"value": o.value, "label": o.label, "displayOrder": o.display_order, "hidden": o.hidden}
            for o in prop.options
        ],
        "read_only": prop.read_only,
        # Every Pipedrive field gets a column (the store adds columns for non-HubSpot-defined ones).
        "hubspot_defined": False,
        "has_unique_value": prop.unique,
        "group_name": prop.group,
    }


def seed_pipedrive(home: Settings, admin: PipedriveAdmin) -> Settings:
    """Connect the sandbox company with its API token (as ``connect pipedrive`` does) and fill
    the connection's partition.

    Returns the connection's settings (what the pages resolve for it).
    """
    conn, _ = pipedrive_auth.connect_api_token(home, admin.api_token(), base_url=admin.url)
    part = connections.settings_for(home, conn)
    api: CrmApi = crms.provider_of(part).connect(part)
    with api, store.open(part) as db:
        for object_type in TYPES:
            props = api.properties(object_type)
            db.records.save_property_defs(object_type, [_definition(p) for p in props])
            cursor: str | None = None
            while True:
                page = api.list_page(
                    object_type, properties=[p.name for p in props], cursor=cursor, limit=100
                )
                db.records.upsert_records(object_type, page.records)
                cursor = page.next_cursor
                if cursor is None:
                    break
        db.records.save_owners(
            [
                {
                    "id": o.id,
                    "email": o.email,
                    "first_name": o.name,
                    "last_name": None,
                    "archived": o.archived,
                }
                for o in api.owners()
            ]
        )
        db.records.save_pipelines(
            "deals",
            [
                {
                    "id": p.id,
                    "label": p.label,
                    "display_order": p.display_order,
                    "stages": [dataclasses.asdict(s) for s in p.stages],
                }
                for p in api.pipelines("deals")
            ],
        )
        for from_type, to_type, column in LINKS:
            ids = list(db.queries.record_stamps(from_type))
            values = db.queries.get_values(from_type, ids, [column])
            found = {
                rid: [(str(int(float(v[column]))), 1)]
                for rid, v in values.items()
                if v[column] not in (None, "")
            }
            db.records.replace_associations(from_type, to_type, ids, found)
    return part
