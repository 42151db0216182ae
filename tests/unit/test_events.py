import uuid

import pytest
from marshmallow import ValidationError

from servicekit import events


def test_an_envelope_carries_the_contract_fields_and_typed_data():
    body = events.envelope(
        "group_registered",
        {"group_id": 7, "file_number": "040214001", "name": "Choir", "arrival_date": "2004-02-14"},
    )
    assert set(body) == {"event_id", "type", "version", "occurred_at", "source", "data"}
    assert body["source"] == "guests"
    uuid.UUID(body["event_id"])

    event = events.parse(body)
    assert event.data["arrival_date"].isoformat() == "2004-02-14"
    assert str(event.event_id) == body["event_id"]


def test_publishing_data_that_breaks_the_schema_fails_loudly():
    with pytest.raises(ValidationError) as caught:
        events.envelope("group_registered", {"group_id": "x", "name": "Choir"})
    assert {"group_id", "file_number", "arrival_date"} <= set(caught.value.messages)


def test_consumers_ignore_fields_they_do_not_know():
    body = events.envelope(
        "group_registered",
        {"group_id": 7, "file_number": "040214001", "name": "C", "arrival_date": "2004-02-14"},
    )
    body["data"]["added_in_a_later_release"] = True
    body["also_new_in_the_envelope"] = 1
    assert "added_in_a_later_release" not in events.parse(body).data


def test_unknown_event_types_are_refused_both_ways():
    with pytest.raises(events.UnknownEvent):
        events.envelope("guest_teleported", {})
    body = events.envelope(
        "group_registered",
        {"group_id": 7, "file_number": "040214001", "name": "C", "arrival_date": "2004-02-14"},
    )
    body["type"] = "guest_teleported"
    with pytest.raises(events.UnknownEvent):
        events.parse(body)


def test_every_subscription_names_an_event_of_the_catalogue_from_another_service():
    for consumer, types in events.SUBSCRIPTIONS.items():
        for event_type in types:
            assert event_type in events.CATALOGUE
            assert events.CATALOGUE[event_type].source != consumer


def test_the_contract_event_catalogue_is_complete():
    contract = {
        "guests": {"guest_registered", "guest_updated", "group_registered"},
        "reservations": {
            "reservation_held",
            "reservation_released",
            "reservation_cancelled",
            "guest_checked_in",
            "guest_checked_out",
        },
        "complaints": {
            "complaint_filed",
            "complaint_dispatched",
            "complaint_escalated",
            "complaint_resolved",
        },
        "revisits": {
            "revisit_scheduled",
            "revisit_completed",
            "response_promised",
            "item_signed_off",
        },
        "notifications": {"notification_sent", "notification_failed"},
    }
    # beyond the contract's: the department's report back, which the customer is told of
    added = {"complaints": {"complaint_reported"}}
    for source, names in contract.items():
        published = {n for n, e in events.CATALOGUE.items() if e.source == source}
        assert published == names | added.get(source, set())
