"""The phone-booking rules without infrastructure: card data, stays, holds, codes, prices,
availability, states, the read-back."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from marshmallow import ValidationError

from gateway.schemas.reservations import (
    CheckOut,
    ReservationCreate,
    card_number_paths,
    looks_like_card_number,
    luhn_valid,
)
from servicekit import errors
from services.reservations import domain
from services.reservations.readback import Booking, language_of, readback

MADRID = ZoneInfo("Europe/Madrid")
VISA = "4111111111111111"


# --- card numbers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        VISA,
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "pay with 5500 0000 0000 0004 please",
        "378282246310005",  # American Express, 15 digits
        "6011111111111117",
        "4222222222222",  # 13 digits
        "card:4111111111111111;exp 12/29",
        "4111  1111  1111  1111",  # pasted with two spaces between the groups
        "+4111111111111111",  # more digits than any phone number has
        "4111 1111 1111 1111 12/27",  # pasted with its expiry date
        "4111 1111 1111 1111 123",  # with its security code
        "ref 77 4111-1111-1111-1111",
        "4111.1111.1111.1111",
    ],
)
def test_card_numbers_are_recognised(text):
    assert looks_like_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # fails Luhn
        "411111111111",  # 12 digits
        "41111111111111111111",  # 20 digits, not in groups
        "1 " * 100_000,  # many short groups: no card, and no time spent on every span
        "1234.56 EUR on 24.12.2026",
        "rooms 101 102 103 104 105 106 107 108 109 110",  # a list of numbers, not a card
        "+34 600 123 456",
        "+1 415 555 2671 ext 12",
        "+44 7911 123456 7890",  # too long for a phone, but no card number either (Luhn)
        "2026-12-24",
        "K7QX3M",
        "call 600 123 456 after 18:00",
        "",
    ],
)
def test_other_numbers_are_not_card_numbers(text):
    assert not looks_like_card_number(text)


def test_luhn():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_card_numbers_are_found_anywhere_in_a_body():
    body = {
        "guest_id": 1,
        "contact": {"phone": "4111 1111 1111 1111", "email": None},
        "notes": ["fine", {"deep": 4111111111111111}],
        "5500000000000004": "key",
        "flag": True,
    }
    assert sorted(card_number_paths(body)) == [
        "5500000000000004",
        "contact.phone",
        "notes.1.deep",
    ]
    assert card_number_paths({"guest_id": 7, "nights": 3, "contact": {"phone": "+34600"}}) == []


def _booking_body(**changes):
    return {
        "guest_id": 7,
        "room_type": "deluxe",
        "arrival": "2026-12-24",
        "nights": 3,
        "rooms": 1,
        "payment_method": "credit_card",
        "contact": {"phone": "+34600111222"},
        **changes,
    }


def test_a_reservation_with_a_card_number_is_refused_naming_the_field_not_the_number():
    with pytest.raises(ValidationError) as refused:
        ReservationCreate().load(_booking_body(contact={"phone": "4111-1111-1111-1111"}))
    assert list(refused.value.messages) == ["contact.phone"]
    assert "4111" not in str(refused.value.messages)
    # in a field the shape does not even know, too: the card check comes first
    with pytest.raises(ValidationError) as refused:
        ReservationCreate().load(_booking_body(card=VISA))
    assert list(refused.value.messages) == ["card"]
    with pytest.raises(ValidationError):
        CheckOut().load({"charges": "10.00", "note": f"paid {VISA}"})


def test_a_plain_reservation_body_loads():
    loaded = ReservationCreate().load(_booking_body())
    assert loaded["arrival"] == date(2026, 12, 24)
    assert ReservationCreate().load(_booking_body(rooms=2, contact={}))["rooms"] == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"nights": 0}, "nights"),
        ({"nights": 400}, "nights"),
        ({"nights": 2.5}, "nights"),
        ({"rooms": 0}, "rooms"),
        ({"payment_method": "cheque"}, "payment_method"),
        ({"arrival": "24/12/2026"}, "arrival"),
        ({"hold_until": "2026-12-24T18:00:00"}, "hold_until"),  # no offset
        ({"guest_id": "seven"}, "guest_id"),
        ({"colour": "blue"}, "colour"),
        ({"contact": {"fax": "1"}}, "contact"),
    ],
)
def test_bad_bodies_name_the_field(changes, field):
    with pytest.raises(ValidationError) as refused:
        ReservationCreate().load(_booking_body(**changes))
    assert field in refused.value.messages


# --- stays and holds -----------------------------------------------------------------


def test_a_stay_must_start_today_or_later_and_make_sense():
    today = date(2026, 11, 24)
    domain.check_stay(today, 1, 1, today)
    for args, field in [
        ((today - timedelta(days=1), 1, 1), "arrival"),
        ((today + timedelta(days=domain.MAX_DAYS_AHEAD + 1), 1, 1), "arrival"),
        ((today, 0, 1), "nights"),
        ((today, domain.MAX_NIGHTS + 1, 1), "nights"),
        ((today, 1, 0), "rooms"),
    ]:
        with pytest.raises(errors.ValidationFailed) as refused:
            domain.check_stay(*args, today)
        assert field in refused.value.details


def test_the_nights_of_a_stay():
    assert domain.stay_nights(date(2026, 12, 30), 3) == [
        date(2026, 12, 30),
        date(2026, 12, 31),
        date(2027, 1, 1),
    ]


def test_hold_defaults_to_the_arrival_day_at_the_hold_time_in_the_hotel_zone():
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    hold = domain.hold_until(date(2026, 12, 24), None, now, MADRID, time(18, 0))
    assert hold == datetime(2026, 12, 24, 18, 0, tzinfo=MADRID)
    assert hold.isoformat() == "2026-12-24T18:00:00+01:00"


def test_a_booking_for_tonight_made_after_the_hold_time_is_held_to_the_end_of_the_day():
    now = datetime(2026, 11, 24, 20, 0, tzinfo=MADRID)
    hold = domain.hold_until(date(2026, 11, 24), None, now, MADRID, time(18, 0))
    assert hold == datetime(2026, 11, 25, 0, 0, tzinfo=MADRID)


def test_an_agent_may_choose_a_hold_within_the_arrival_day():
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    arrival = date(2026, 12, 24)
    later = datetime(2026, 12, 24, 22, 30, tzinfo=MADRID)
    assert domain.hold_until(arrival, later, now, MADRID, time(18, 0)) == later
    for asked in (
        datetime(2026, 11, 24, 8, 0, tzinfo=UTC),  # past
        datetime(2026, 12, 25, 10, 0, tzinfo=MADRID),  # after the first day
        datetime(2026, 12, 23, 10, 0, tzinfo=MADRID),  # before it
    ):
        with pytest.raises(errors.ValidationFailed) as refused:
            domain.hold_until(arrival, asked, now, MADRID, time(18, 0))
        assert "hold_until" in refused.value.details


# --- codes, prices, availability, states ---------------------------------------------


def test_codes_are_short_and_unambiguous():
    codes = {domain.new_code() for _ in range(500)}
    assert len(codes) == 500
    for code in codes:
        assert len(code) == domain.CODE_LENGTH
        assert not set(code) & set("0O1IL5S8B")


def test_total_price():
    assert domain.total_price(Decimal("120.00"), 3, 2) == Decimal("720.00")


def test_options_offer_the_highest_price_first_with_the_fewest_free_rooms():
    offers = [
        domain.Offer("single", "Single", Decimal("90.00"), "EUR", 5),
        domain.Offer("suite", "Suite", Decimal("300.00"), "EUR", 2),
        domain.Offer("double", "Double", Decimal("150.00"), "EUR", 4),
    ]
    nights = domain.stay_nights(date(2026, 12, 24), 2)
    booked = {("double", nights[1]): 3, ("suite", nights[0]): 2, ("single", nights[0]): 1}
    options = domain.options(offers, booked, nights, 2)
    assert [o["room_type"] for o in options] == ["suite", "double", "single"]
    assert [o["available"] for o in options] == [0, 1, 4]
    assert [o["bookable"] for o in options] == [False, False, True]
    assert options[2]["total_price"] == "360.00"


def test_transitions():
    assert domain.next_status("held", "check_in") == "in_house"
    assert domain.next_status("in_house", "check_out") == "checked_out"
    assert domain.next_status("held", "cancel") == "cancelled"
    assert domain.next_status("held", "release") == "released"
    for status, action in [
        ("in_house", "check_in"),
        ("held", "check_out"),
        ("in_house", "cancel"),
        ("checked_out", "cancel"),
        ("released", "check_in"),
        ("cancelled", "check_in"),
        ("in_house", "release"),
    ]:
        with pytest.raises(errors.InvalidState):
            domain.next_status(status, action)


def test_an_early_departure_frees_the_nights_left():
    frees = domain.nights_to_free_at_check_out(date(2026, 12, 24), 4, date(2026, 12, 26))
    assert frees == [date(2026, 12, 26), date(2026, 12, 27)]


# --- the read-back --------------------------------------------------------------------


def _booking(**changes):
    return Booking(
        **{
            "code": "K7QX3M",
            "guest_name": "Ana García",
            "room_type_name": "Deluxe",
            "arrival": date(2026, 12, 24),
            "nights": 3,
            "rooms": 1,
            "price": Decimal("1200.00"),
            "total_price": Decimal("3600.00"),
            "currency": "EUR",
            "payment_method": "credit_card",
            "phone": "+34600111222",
            "email": "ana@example.com",
            "hold_until": datetime(2026, 12, 24, 18, 0, tzinfo=MADRID),
            **changes,
        }
    )


def test_the_readback_in_english():
    text = readback(_booking(), "en", MADRID)
    assert "Reservation K7QX3M" in text
    assert "Name: Ana García" in text
    assert "Room type: Deluxe" in text
    assert "Arrival: Thursday, December 24, 2026" in text
    assert "Nights: 3 nights" in text
    assert "Rooms: 1 room" in text
    assert "€3,600.00" in text
    assert "Payment: credit card" in text
    assert "+34600111222, ana@example.com" in text
    assert "Held until 6:00\u202fPM on December 24, 2026" in text


def test_the_readback_in_spanish():
    text = readback(_booking(rooms=2, nights=1, payment_method="cash"), "es", MADRID)
    assert "Reserva K7QX3M" in text
    assert "Nombre: Ana García" in text
    assert "Llegada: jueves, 24 de diciembre de 2026" in text
    assert "Noches: 1 noche" in text
    assert "Habitaciones: 2 habitaciones" in text
    assert "3600,00\xa0€" in text or "3.600,00\xa0€" in text
    assert "Pago: efectivo" in text
    assert "hasta las 18:00 del 24 de diciembre de 2026" in text


def test_the_readback_speaks_english_to_other_languages():
    assert language_of("fr") == "en"
    assert language_of("es-ES") == "es"
    assert readback(_booking(), "fr", MADRID).startswith("Reservation K7QX3M")
