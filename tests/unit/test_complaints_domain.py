"""The complaint office's plain rules: intake checks, routing, the same-day due time,
which action may follow which, owners, and tracking codes."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from servicekit import errors
from services.complaints import domain, tracking_codes

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
GOOD = {"guest_id": 7, "channel": "phone", "category": "noise", "description": "Loud party"}


def fields_refused(change: dict) -> set[str]:
    with pytest.raises(errors.ValidationFailed) as refused:
        domain.check_intake({**GOOD, **change}, NOW)
    return set(refused.value.details)


def test_a_complaint_is_routed_by_its_category_and_due_the_same_day():
    intake = domain.check_intake(GOOD, NOW)
    assert intake.department == "security"
    assert intake.received_at == NOW
    assert intake.due_at == datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC)
    assert intake.description == "Loud party"


def test_the_department_given_wins_over_the_category():
    intake = domain.check_intake({**GOOD, "department": "front_office"}, NOW)
    assert intake.department == "front_office"


def test_the_category_map_is_configurable(monkeypatch):
    monkeypatch.setenv("COMPLAINT_CATEGORIES", "noise:front_office, towels:housekeeping")
    assert domain.check_intake({**GOOD, "category": "towels"}, NOW).department == "housekeeping"
    assert domain.check_intake(GOOD, NOW).department == "front_office"
    assert fields_refused({"category": "food"}) == {"category"}


def test_a_caller_known_only_by_a_contact_is_enough():
    intake = domain.check_intake(
        {**GOOD, "guest_id": None, "contact": {"name": " Ana ", "phone": "+34600111222"}}, NOW
    )
    assert intake.contact == {"name": "Ana", "phone": "+34600111222", "email": None}
    assert intake.guest_id is None


@pytest.mark.parametrize(
    "change, fields",
    [
        ({"channel": "pigeon"}, {"channel"}),
        ({"channel": None}, {"channel"}),
        ({"category": "ghosts"}, {"category"}),
        ({"description": "  "}, {"description"}),
        ({"description": None}, {"description"}),
        ({"description": "x" * 4001}, {"description"}),
        ({"guest_id": None}, {"guest_id", "contact"}),
        ({"guest_id": 0}, {"guest_id"}),
        ({"guest_id": True}, {"guest_id"}),
        ({"guest_id": None, "contact": {"phone": "+34600111222"}}, {"contact"}),
        ({"department": "spa"}, {"department"}),
        ({"received_at": "2026-11-23T12:00:00+00:00"}, {"received_at"}),
        ({"received_at": "last week"}, {"received_at"}),
        # more than a year back, and years with no end of day to be due at (a 500 before)
        ({"received_at": "2025-11-20T12:00:00+00:00"}, {"received_at"}),
        ({"received_at": "0001-01-01T00:00:00+05:00"}, {"received_at"}),
        ({"received_at": "0001-01-01T00:00:00"}, {"received_at"}),
        ({"channel": "pigeon", "description": ""}, {"channel", "description"}),
    ],
)
def test_bad_intake_is_refused_naming_each_field(change, fields):
    assert fields_refused(change) == fields


def test_a_complaint_taken_earlier_may_be_backdated():
    intake = domain.check_intake({**GOOD, "received_at": "2026-11-20T21:30:00+00:00"}, NOW)
    assert intake.received_at == datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
    assert intake.due_at == datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC)


def test_a_clock_slightly_ahead_is_not_the_future():
    ahead = (NOW + timedelta(seconds=20)).isoformat()
    assert domain.check_intake({**GOOD, "received_at": ahead}, NOW).received_at == NOW


def test_the_day_ends_in_the_hotels_time_zone(monkeypatch):
    monkeypatch.setenv("HOTEL_TZ", "Europe/Madrid")
    madrid = ZoneInfo("Europe/Madrid")
    # 23:30 UTC on the 22nd is already the 23rd in Madrid
    due = domain.due_at(datetime(2026, 11, 22, 23, 30, tzinfo=UTC))
    assert due == datetime(2026, 11, 23, 23, 59, 59, tzinfo=madrid)
    # a naive time is read as the hotel's
    intake = domain.check_intake({**GOOD, "received_at": "2026-11-23T09:00:00"}, NOW)
    assert intake.received_at == datetime(2026, 11, 23, 9, 0, tzinfo=madrid)


def test_overdue_means_unresolved_past_its_due_time():
    due = datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC)
    assert domain.is_overdue("dispatched", due, NOW)
    assert not domain.is_overdue("resolved", due, NOW)
    assert not domain.is_overdue("open", NOW + timedelta(hours=1), NOW)


@pytest.mark.parametrize(
    "action, status",
    [
        ("investigate", "open"),
        ("investigate", "escalated"),
        ("verify", "investigating"),
        ("dispatch", "verified"),
        ("dispatch", "open"),
        ("escalate", "dispatched"),
        ("note", "escalated"),
        ("resolve", "reported"),
    ],
)
def test_allowed_actions(action, status):
    domain.check_action(action, status, "a note", "a result")


@pytest.mark.parametrize(
    "action, status",
    [
        *((action, "resolved") for action in domain.ACTIONS),
        ("verify", "open"),
        ("dispatch", "dispatched"),
        ("escalate", "escalated"),
        ("investigate", "investigating"),
    ],
)
def test_wrong_transitions_are_invalid_state(action, status):
    with pytest.raises(errors.InvalidState):
        domain.check_action(action, status, "a note", "a result")


def test_resolving_needs_a_result_and_a_note_needs_its_text():
    with pytest.raises(errors.InvalidState):
        domain.check_action("resolve", "open", None, "  ")
    with pytest.raises(errors.ValidationFailed) as refused:
        domain.check_action("note", "open", " ", None)
    assert set(refused.value.details) == {"note"}
    with pytest.raises(errors.ValidationFailed):
        domain.check_action("shout", "open", None, None)


def test_an_owner_is_a_staff_member_or_the_role_nobody_holds_yet():
    manager = {"id": 4, "username": "lucia", "role": "manager", "department": "engineering"}
    assert domain.owner_of("manager", "engineering", manager) == {"kind": "staff", **manager}
    assert domain.owner_of("director", "finance", None) == {
        "kind": "role",
        "id": None,
        "username": None,
        "role": "director",
        "department": "finance",
    }
    assert domain.by(None)["kind"] == "system"
    assert domain.by({"id": None, "username": None, "role": "agent"})["kind"] == "system"


def test_tracking_codes_read_over_the_phone_and_never_repeat():
    codes = {tracking_codes.new_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:50]:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 5]
        assert not set("".join(groups)) & set("ILOU")
        assert tracking_codes.normalise(code) == code
    assert tracking_codes.BITS >= 60


def test_a_typed_code_is_forgiving_about_case_dashes_and_look_alikes():
    assert tracking_codes.normalise("k7qx 3mpa wz9dr") == "K7QX-3MPA-WZ9DR"
    assert tracking_codes.normalise("O1LI-0000-00000") == "0111-0000-00000"
    assert tracking_codes.normalise("K7QX-3MPA-WZ9D") is None
    assert tracking_codes.normalise("K7QX-3MPA-WZ9DU") is None
    assert tracking_codes.normalise("") is None
