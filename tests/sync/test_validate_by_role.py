"""Validation follows the CRM's own pipeline, stage and required fields (Pipedrive's names)."""

from __future__ import annotations

from crm.validate import Context, check_new_record, check_properties

PIPEDRIVE_DEALS = Context(
    defs={
        "title": {"name": "title", "type": "string"},
        "pipeline_id": {"name": "pipeline_id", "type": "number"},
        "stage_id": {"name": "stage_id", "type": "number"},
        "owner_id": {"name": "owner_id", "type": "string"},
    },
    stages={"1": ["1", "2"], "2": ["6", "7"]},
    owner_ids=["10000001"],
    crm_name="Pipedrive",
    owner_property="owner_id",
    pipeline_property="pipeline_id",
    stage_property="stage_id",
    required_on_create=("title",),
)


def test_a_pipedrive_deal_stage_must_belong_to_the_deals_pipeline() -> None:
    current = {"pipeline_id": 2.0, "stage_id": 6.0}
    assert check_properties("deals", {"stage_id": "7"}, PIPEDRIVE_DEALS, current=current) == (
        {"stage_id": "7"},
        {},
    )
    errors = check_properties("deals", {"stage_id": "1"}, PIPEDRIVE_DEALS, current=current)[1]
    assert errors == {"stage_id": "'1' is not a stage of pipeline '2'"}
    errors = check_properties("deals", {"pipeline_id": "1"}, PIPEDRIVE_DEALS, current={"stage_id": "6"})[1]
    assert errors == {"stage_id": "choose a stage of the new pipeline"}
    errors = check_properties("deals", {"owner_id": "99"}, PIPEDRIVE_DEALS)[1]
    assert errors == {"owner_id": "'99' is not an active Pipedrive owner"}


def test_a_new_pipedrive_deal_needs_what_pipedrive_requires_not_hubspots_fields() -> None:
    _, errors = check_new_record("deals", {"stage_id": "1"}, PIPEDRIVE_DEALS)
    assert errors == {"title": "is required for a new record"}
    clean, errors = check_new_record("deals", {"title": "Renewal", "stage_id": "2"}, PIPEDRIVE_DEALS)
    assert errors == {} and clean == {"title": "Renewal", "stage_id": "2"}
