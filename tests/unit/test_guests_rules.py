"""The guests service's plain rules: phones, names, birthdays, file numbers, and the
history line each event the caller screen shows becomes."""

from datetime import UTC, date, datetime, timedelta

import pytest

from servicekit import errors, events
from servicekit.phones import normalise_phone
from services.guests import caller_screen, domain

AT = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("600 11 22 33", "+34600112233"),
        ("+34 600-112-233", "+34600112233"),
        ("0044 20 7946 0018", "+442079460018"),
        ("+1 (212) 555-0100", "+12125550100"),
    ],
)
def test_phones_are_kept_in_e164_read_in_the_hotels_region(raw, e164):
    assert normalise_phone(raw) == e164


def test_the_region_is_the_hotels(monkeypatch):
    monkeypatch.setenv("HOTEL_PHONE_REGION", "GB")
    assert normalise_phone("020 7946 0018") == "+442079460018"
    monkeypatch.setenv("HOTEL_PHONE_REGION", "gb")  # as an operator may well write it
    assert normalise_phone("020 7946 0018") == "+442079460018"


@pytest.mark.parametrize("raw", ["", "   ", "not a phone", "12", "+34 6", None, 600112233])
def test_what_is_not_a_phone_is_refused_naming_the_field(raw):
    with pytest.raises(errors.ValidationFailed) as refused:
        normalise_phone(raw)
    assert list(refused.value.details) == ["phone"]


def test_names_are_compared_without_accents_case_or_extra_spaces():
    assert domain.name_key("  José   MUÑOZ ") == "jose munoz"
    assert domain.name_key("Ærøskøbing Çelik") == "aeroskobing celik"
    with pytest.raises(errors.ValidationFailed):
        domain.clean_name("   ")


def test_a_birthday_must_be_possible():
    today = date(2026, 11, 24)
    assert domain.check_birthday(date(1980, 2, 29), today) == date(1980, 2, 29)
    assert domain.check_birthday(None, today) is None
    for impossible in (date(2026, 11, 25), date(1899, 12, 31)):
        with pytest.raises(errors.ValidationFailed):
            domain.check_birthday(impossible, today)
    with pytest.raises(errors.ValidationFailed) as refused:
        domain.parse_date("1990-02-30", "birthday")
    assert list(refused.value.details) == ["birthday"]


def test_a_file_number_is_the_arrival_date_and_the_days_serial():
    assert domain.file_number(date(2004, 2, 14), 1) == "040214001"
    assert domain.file_number(date(2026, 11, 24), 999) == "261124999"
    for serial in (0, 1000):
        with pytest.raises(ValueError):
            domain.file_number(date(2026, 11, 24), serial)
    assert "999" in domain.day_full(date(2026, 11, 24)).message


def test_an_arrival_date_is_within_ten_years_of_today():
    today = date(2026, 11, 24)
    assert domain.check_arrival(date(2027, 3, 1), today) == date(2027, 3, 1)
    for far in (date(1926, 11, 24), date(2126, 11, 24)):  # same YYMMDD as today
        with pytest.raises(errors.ValidationFailed) as refused:
            domain.check_arrival(far, today)
        assert list(refused.value.details) == ["arrival_date"]


def test_choices():
    assert domain.check_choice("vip", "category", domain.CATEGORIES) == "vip"
    with pytest.raises(errors.ValidationFailed) as refused:
        domain.check_choice("fr", "language", domain.LANGUAGES)
    assert list(refused.value.details) == ["language"]


RESERVATION = {
    "reservation_id": 7,
    "code": "RSV-7",
    "guest_id": 1,
    "room_type": "DLX",
    "arrival": "2026-12-01",
    "nights": 2,
    "rooms": 1,
    "total_price": "240.00",
    "currency": "EUR",
}
COMPLAINT = {
    "complaint_id": 4,
    "tracking_code": "TRK-4",
    "guest_id": 1,
    "department": "housekeeping",
    "owner": {"kind": "role", "role": "manager", "department": "housekeeping"},
    "at": AT,
}
SAMPLES = {
    "reservation_held": RESERVATION
    | {
        "room_type_name": "Deluxe",
        "payment_method": "cash",
        "hold_until": AT,
        "contact": {"phone": "+34600112233"},
        "language": "es",
        "readback": "...",
    },
    "reservation_released": RESERVATION | {"hold_until": AT, "at": AT},
    "reservation_cancelled": RESERVATION | {"hold_until": AT, "at": AT},
    "guest_checked_in": RESERVATION | {"checked_in_at": AT},
    "guest_checked_out": RESERVATION
    | {
        "checked_in_at": AT - timedelta(days=2),
        "checked_out_at": AT,
        "departure": "2026-11-24",
        "charges": "312.50",
    },
    "complaint_filed": COMPLAINT
    | {
        "channel": "phone",
        "category": "noise",
        "summary": "Noisy neighbours",
        "received_at": AT,
        "due_at": AT,
    },
    "complaint_dispatched": COMPLAINT | {"dispatch_order_id": 2},
    "complaint_escalated": COMPLAINT | {"reason": "not resolved by the end of the day"},
    "complaint_reported": COMPLAINT | {"dispatch_order_id": 2, "result": "Bar closed at 23:00"},
    "complaint_resolved": COMPLAINT | {"result": "Moved to a quiet room"},
    "revisit_scheduled": {
        "revisit_id": 3,
        "kind": "post_stay",
        "guest_id": 1,
        "reservation_id": 7,
        "due_date": "2026-11-25",
    },
    "revisit_completed": {
        "revisit_id": 3,
        "kind": "post_stay",
        "guest_id": 1,
        "status": "done",
        "reached": True,
        "attempts": 1,
        "agent": {"id": 2, "username": "maria"},
        "satisfaction": 4,
        "items": [{"item_id": 1, "kind": "request", "department": "engineering"}],
        "at": AT,
    },
    "response_promised": {
        "revisit_id": 3,
        "guest_id": 1,
        "department": "engineering",
        "text": "Heating?",
        "respond_by": AT,
        "at": AT,
    },
    "item_signed_off": {
        "revisit_id": 3,
        "item_id": 1,
        "guest_id": 1,
        "department": "engineering",
        "result": "Fixed",
        "signed_by": {"id": 5, "username": "eng"},
        "at": AT,
    },
    "notification_sent": {
        "notification_id": 8,
        "kind": "reservation_held",
        "channel": "email",
        "guest_id": 1,
        "ref": "reservations/7",
        "subject": "Your reservation",
        "at": AT,
    },
    "notification_failed": {
        "notification_id": 9,
        "kind": "birthday",
        "channel": "sms",
        "guest_id": 1,
        "at": AT,
    },
}
KINDS = {
    "reservation_held": "reservation",
    "reservation_released": "reservation",
    "reservation_cancelled": "reservation",
    "guest_checked_in": "stay",
    "guest_checked_out": "stay",
    "complaint_filed": "complaint",
    "complaint_dispatched": "complaint",
    "complaint_escalated": "complaint",
    "complaint_reported": "complaint",
    "complaint_resolved": "complaint",
    "revisit_scheduled": "revisit",
    "revisit_completed": "revisit",
    "response_promised": "revisit",
    "item_signed_off": "revisit",
    "notification_sent": "notification",
    "notification_failed": "notification",
}


def test_every_event_the_screen_subscribes_to_becomes_one_line():
    assert set(SAMPLES) == set(events.SUBSCRIPTIONS["guests"])
    for event_type, data in SAMPLES.items():
        event = events.parse(events.envelope(event_type, data))
        line = caller_screen.history_line(event)
        assert line.kind == KINDS[event_type], event_type
        assert line.summary and line.at.tzinfo is not None
        assert line.ref.split("/")[0] in (
            "reservations",
            "complaints",
            "revisits",
            "notifications",
        )


def test_lines_say_what_happened():
    def line(event_type, **changes):
        data = SAMPLES[event_type] | changes
        return caller_screen.history_line(events.parse(events.envelope(event_type, data)))

    held = line("reservation_held")
    assert held.summary == (
        "Reservation RSV-7 held: 1 x Deluxe, 2 night(s) from 2026-12-01, 240.00 EUR"
    )
    assert held.ref == "reservations/7"
    assert line("guest_checked_out").summary.endswith("charges 312.50 EUR")
    assert line("complaint_filed").summary == (
        "Complaint TRK-4 received by phone (noise): Noisy neighbours"
    )
    assert line("revisit_completed").summary == (
        "Revisit call: reached, by maria, satisfaction 4/5, 1 item(s) routed"
    )
    assert line("notification_failed").summary == "Birthday by sms failed"
    # a reminder of a promise adds nothing: the promise itself is already listed
    assert line("response_promised", reminder=True) is None


def test_times_in_a_summary_are_the_hotel_s(monkeypatch):
    monkeypatch.setenv("HOTEL_TZ", "Europe/Madrid")

    def summary(event_type):
        data = SAMPLES[event_type] | {"hold_until": AT, "respond_by": AT}
        data = {k: v for k, v in data.items() if k in SAMPLES[event_type]}
        return caller_screen.history_line(events.parse(events.envelope(event_type, data))).summary

    # 10:30 UTC is 11:30 in Madrid in November
    assert summary("reservation_released").endswith("not checked in by 2026-11-24 11:30")
    assert "by 2026-11-24 11:30:" in summary("response_promised")
