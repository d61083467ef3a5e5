"""Validation of local edits against HubSpot's rules (pure functions, literal definitions)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from crm.validate import Context, FieldError, check_new_record, check_properties, is_valid_email, normalize

DEFS = {
    "email": {"name": "email", "type": "string", "field_type": "text"},
    "firstname": {"name": "firstname", "type": "string", "field_type": "text"},
    "amount": {"name": "amount", "type": "number", "field_type": "number"},
    "closedate": {"name": "closedate", "type": "datetime", "field_type": "date"},
    "birthday": {"name": "birthday", "type": "date", "field_type": "date"},
    "vip": {"name": "vip", "type": "bool", "field_type": "booleancheckbox"},
    "lifecyclestage": {
        "name": "lifecyclestage",
        "type": "enumeration",
        "field_type": "radio",
        "options": [{"label": "Lead", "value": "lead"}, {"label": "Customer", "value": "customer"}],
    },
    "colors": {
        "name": "colors",
        "type": "enumeration",
        "field_type": "checkbox",
        "options": [{"label": "Red", "value": "red"}, {"label": "Blue", "value": "blue"}],
    },
    "hs_object_id": {"name": "hs_object_id", "type": "number", "read_only": True},
    "days_to_close": {"name": "days_to_close", "type": "number", "calculated": True},
    "hubspot_owner_id": {
        "name": "hubspot_owner_id",
        "type": "enumeration",
        "field_type": "select",
        "options": [],
    },
    "pipeline": {"name": "pipeline", "type": "enumeration", "field_type": "select", "options": []},
    "dealstage": {"name": "dealstage", "type": "enumeration", "field_type": "radio", "options": []},
}
CONTEXT = Context(
    defs=DEFS, stages={"default": ["appointmentscheduled", "closedwon"], "p2": ["s1"]}, owner_ids=["41"]
)


@pytest.mark.parametrize(
    "address", ["ada@example.com", "a.b+tag@mail.example.co.uk", "x_y@sub-domain.example.io"]
)
def test_real_email_addresses_are_accepted(address):
    assert is_valid_email(address)


@pytest.mark.parametrize(
    "address",
    [
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada @example.com",
        "ada@@example.com",
        "a@b@example.com",
        "ada@example..com",
        ".ada@example.com",
        "ada.@example.com",
        "ada@-example.com",
        "ada@example.c0m",
        "ada@example.com ",
        "ada@exa mple.com",
    ],
)
def test_malformed_email_addresses_are_refused(address):
    assert not is_valid_email(address)


def test_invalid_email_edit_names_the_field_and_why():
    clean, errors = check_properties("contacts", {"email": "ada@example", "firstname": "Ada"}, CONTEXT)
    assert clean == {"firstname": "Ada"}
    assert "not a valid email" in errors["email"]


@pytest.mark.parametrize(
    ("value", "wire"),
    [("1500.50", "1500.5"), (1500, "1500"), (12.0, "12"), ("-3", "-3"), (" 7 ", "7"), (".5", "0.5")],
)
def test_numbers_are_sent_in_hubspots_plain_form(value, wire):
    assert normalize(DEFS["amount"], value) == wire


@pytest.mark.parametrize("value", ["1,500", "1.2.3", "12abc", "1e5", float("inf"), True])
def test_numbers_with_separators_or_junk_are_refused(value):
    with pytest.raises(FieldError):
        normalize(DEFS["amount"], value)


def test_dates_must_be_whole_days_and_datetimes_become_iso_utc():
    assert normalize(DEFS["birthday"], "2024-05-01") == "2024-05-01"
    assert normalize(DEFS["birthday"], dt.date(2024, 5, 1)) == "2024-05-01"
    assert normalize(DEFS["birthday"], pd.Timestamp("2024-05-01")) == "2024-05-01"
    with pytest.raises(FieldError, match="without a time"):
        normalize(DEFS["birthday"], "2024-05-01T10:00:00Z")
    with pytest.raises(FieldError, match="real date"):
        normalize(DEFS["birthday"], "2024-02-30")
    assert normalize(DEFS["closedate"], "2024-05-01T10:00:00+02:00") == "2024-05-01T08:00:00.000Z"
    assert normalize(DEFS["closedate"], 1714521600000) == "2024-05-01T00:00:00.000Z"
    with pytest.raises(FieldError):
        normalize(DEFS["closedate"], "next tuesday")


def test_booleans_take_true_or_false():
    assert normalize(DEFS["vip"], True) == "true"
    assert normalize(DEFS["vip"], "FALSE") == "false"
    with pytest.raises(FieldError):
        normalize(DEFS["vip"], "maybe")


def test_enumerations_take_option_values_not_labels():
    assert normalize(DEFS["lifecyclestage"], "lead") == "lead"
    with pytest.raises(FieldError, match="use its value 'customer'"):
        normalize(DEFS["lifecyclestage"], "Customer")
    with pytest.raises(FieldError, match="not one of the options: lead, customer"):
        normalize(DEFS["lifecyclestage"], "vip")
    assert normalize(DEFS["colors"], ["red", "blue"]) == "red;blue"
    assert normalize(DEFS["colors"], "blue;red") == "blue;red"
    with pytest.raises(FieldError):
        normalize(DEFS["colors"], "red;green")


def test_read_only_calculated_and_unknown_properties_are_refused():
    _, errors = check_properties(
        "contacts", {"hs_object_id": "1", "days_to_close": "3", "favcolor": "x"}, CONTEXT
    )
    assert errors["hs_object_id"] == "is read-only in HubSpot"
    assert errors["days_to_close"] == "is read-only in HubSpot"
    assert "no contacts property 'favcolor'" in errors["favcolor"]


def test_empty_values_clear_a_field():
    clean, errors = check_properties(
        "contacts", {"firstname": "", "amount": None, "birthday": float("nan")}, CONTEXT
    )
    assert clean == {"firstname": None, "amount": None, "birthday": None} and errors == {}


def test_owner_must_be_an_active_owner_id():
    assert check_properties("deals", {"hubspot_owner_id": "41"}, CONTEXT)[1] == {}
    assert (
        "not an active HubSpot owner"
        in check_properties("deals", {"hubspot_owner_id": "99"}, CONTEXT)[1]["hubspot_owner_id"]
    )


def test_deal_stage_must_belong_to_the_deals_pipeline():
    current = {"pipeline": "default", "dealstage": "appointmentscheduled"}
    assert check_properties("deals", {"dealstage": "closedwon"}, CONTEXT, current=current)[1] == {}
    errors = check_properties("deals", {"dealstage": "s1"}, CONTEXT, current=current)[1]
    assert errors["dealstage"] == "'s1' is not a stage of pipeline 'default'"
    assert check_properties("deals", {"pipeline": "p2", "dealstage": "s1"}, CONTEXT, current=current)[1] == {}
    errors = check_properties("deals", {"pipeline": "p2"}, CONTEXT, current=current)[1]
    assert errors == {"dealstage": "choose a stage of the new pipeline"}
    assert "not a deal pipeline" in check_properties("deals", {"pipeline": "nope"}, CONTEXT)[1]["pipeline"]


def test_a_new_contact_needs_a_valid_email():
    _, errors = check_new_record("contacts", {"firstname": "Ada"}, CONTEXT)
    assert errors == {"email": "is required for a new record"}
    _, errors = check_new_record("contacts", {"email": "ada at example.com"}, CONTEXT)
    assert "not a valid email" in errors["email"]
    clean, errors = check_new_record("contacts", {"email": " ada@example.com ", "firstname": ""}, CONTEXT)
    assert clean == {"email": "ada@example.com"} and errors == {}
