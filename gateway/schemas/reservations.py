"""Shapes of the reservations endpoints, and the refusal of card data.

The suite records how a guest will pay, never with what card: a request that carries
anything that looks like a card number is refused before it reaches a service, and the
answer names where it was, never the number itself.
"""

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from gateway.schemas.common import (
    EmailAddress,
    Id,
    Money,
    NonBlank,
    PageQuery,
    Strict,
    paths_where,
)

PAYMENT_METHODS = ("credit_card", "debit_card", "cash")
STATUSES = ("held", "in_house", "checked_out", "released", "cancelled")

# A whole run of digits with up to two spaces, dots or dashes between them (never the tail of
# a longer run), as a number is typed or pasted.
_DIGIT_RUN = re.compile(r"(?<!\d)(?<!\d[ .-])(?<!\d[ .-]{2})\d(?:[ .-]{0,2}\d)*")
_DIGIT_GROUP = re.compile(r"\d+")
# the most digits a phone number in international form has (E.164)
_PHONE_DIGITS_AT_MOST = 15
_CARD_DIGITS = range(13, 20)
# A payment card's first digit (ISO/IEC 7812's major industry identifier) is 1 to 6 (airlines,
# travel and entertainment, banking): 7, 8, 9 and 0 are petroleum, health, national numbering.
_CARD_FIRST_DIGITS = "123456"
# up to five groups of a card number, a month and year, a security code, a reference
_GROUPS_OF_A_PASTED_CARD = 9


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        n = int(char)
        if position % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card_sized_spans(groups: list[str]):
    """Each run of whole groups holding 13 to 19 digits that a card number could begin: a
    card number pasted with its expiry date or security code after it (or a reference
    before it) is one of them. More groups than that make a list of numbers, judged whole
    (and a long list would cost a span per group)."""
    if len(groups) > _GROUPS_OF_A_PASTED_CARD:
        groups = ["".join(groups)]
    for first, group in enumerate(groups):
        if group[0] not in _CARD_FIRST_DIGITS:
            continue
        size = 0
        for last in range(first, len(groups)):
            size += len(groups[last])
            if size >= _CARD_DIGITS.stop:
                break
            if size >= _CARD_DIGITS.start:
                yield "".join(groups[first : last + 1])


def looks_like_card_number(text: str) -> bool:
    """True if `text` holds 13 to 19 digits in a row (spaces, dots or dashes allowed between
    them) that pass the Luhn check, as every payment card number does."""
    for run in _DIGIT_RUN.finditer(text):
        groups = _DIGIT_GROUP.findall(run.group())
        # a plus sign just before, maybe with a separator or two between
        international_phone = text[max(0, run.start() - 3) : run.start()].rstrip(" .-")[-1:] == "+"
        if international_phone and sum(map(len, groups)) <= _PHONE_DIGITS_AT_MOST:
            continue  # a phone, which no card number is written as
        if any(luhn_valid(digits) for digits in _card_sized_spans(groups)):
            return True
    return False


def card_number_paths(value: Any) -> list[str]:
    return paths_where(value, looks_like_card_number)


class NoCardData(Strict):
    """A request shape that refuses card numbers anywhere in what it is given."""

    @pre_load
    def refuse_card_numbers(self, data, **kwargs):
        paths = card_number_paths(data)
        if paths:
            message = "looks like a card number: the hotel records the payment method only"
            raise ValidationError({p: [message] for p in paths})
        return data


# --- room types ----------------------------------------------------------------------

_CODE = validate.Regexp(r"^[a-z0-9_-]{1,32}$", error="1 to 32 of a-z 0-9 _ -")
_CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="an ISO 4217 code such as EUR")


class RoomTypeCreate(NoCardData):
    code = fields.String(required=True, validate=_CODE)
    name = NonBlank(max_length=100, required=True)
    price = Money(required=True)
    currency = fields.String(required=True, validate=_CURRENCY)
    rooms = fields.Integer(strict=True, required=True, validate=validate.Range(min=0, max=10000))


class RoomTypeChange(NoCardData):
    name = NonBlank(max_length=100)
    price = Money()
    currency = fields.String(validate=_CURRENCY)
    rooms = fields.Integer(strict=True, validate=validate.Range(min=0, max=10000))

    @validates_schema
    def something_to_change(self, data, **kwargs):
        if not data:
            raise ValidationError("name, price, currency or rooms", "_body")


class RoomType(Schema):
    code = fields.String(required=True, metadata={"example": "deluxe"})
    name = fields.String(required=True)
    price = fields.String(required=True, metadata={"example": "180.00"})
    currency = fields.String(required=True)
    rooms = fields.Integer(required=True)


class RoomTypeList(Schema):
    items = fields.List(fields.Nested(RoomType), required=True)
    next = fields.String(allow_none=True)


# --- availability --------------------------------------------------------------------

# Bounds the service checks too; here they give the caller the answer without a round trip.
MAX_NIGHTS = 60
MAX_ROOMS = 50


class AvailabilityQuery(NoCardData):
    arrival = fields.Date(required=True)
    nights = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_NIGHTS))
    rooms = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_ROOMS))


class RoomOption(Schema):
    room_type = fields.String(required=True)
    name = fields.String(required=True)
    price = fields.String(required=True)
    currency = fields.String(required=True)
    available = fields.Integer(required=True)
    total_price = fields.String(required=True)
    bookable = fields.Boolean(required=True)


class Availability(Schema):
    options = fields.List(fields.Nested(RoomOption), required=True)


# --- reservations --------------------------------------------------------------------


class BookingContact(NoCardData):
    phone = fields.String(allow_none=True, validate=validate.Length(min=3, max=32))
    email = EmailAddress(allow_none=True)


class ReservationCreate(NoCardData):
    guest_id = Id(strict=True, required=True)
    room_type = fields.String(required=True, validate=validate.Length(min=1, max=32))
    arrival = fields.Date(required=True)
    nights = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=1, max=MAX_NIGHTS)
    )
    rooms = fields.Integer(
        strict=True, load_default=1, validate=validate.Range(min=1, max=MAX_ROOMS)
    )
    payment_method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    contact = fields.Nested(BookingContact, load_default=dict)
    hold_until = fields.AwareDateTime(allow_none=True)
    channel = fields.String(
        allow_none=True, validate=validate.Regexp(r"^[a-z_]{1,32}$", error="e.g. phone, web")
    )


class ReservationQuery(PageQuery, NoCardData):
    guest_id = Id()
    status = fields.String(validate=validate.OneOf(STATUSES))
    arrival = fields.Date()
    code = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9]{1,12}$", error="e.g. K7QX3M"))


class CheckIn(NoCardData):
    at = fields.AwareDateTime()


class CheckOut(NoCardData):
    at = fields.AwareDateTime()
    charges = Money(maximum=9_999_999_999)


class CancelReservation(NoCardData):
    pass


class BookingContactOut(Schema):
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class Reservation(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True, metadata={"example": "K7QX3M"})
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    guest_id = fields.Integer(required=True)
    guest_name = fields.String()
    language = fields.String()
    room_type = fields.String(required=True)
    room_type_name = fields.String()
    arrival = fields.String(required=True, metadata={"example": "2026-12-24"})
    departure = fields.String()
    nights = fields.Integer(required=True)
    rooms = fields.Integer(required=True)
    price = fields.String()
    total_price = fields.String(required=True, metadata={"example": "540.00"})
    currency = fields.String(required=True)
    payment_method = fields.String(required=True)
    contact = fields.Nested(BookingContactOut)
    channel = fields.String(allow_none=True)
    hold_until = fields.String(required=True, metadata={"example": "2026-12-24T18:00:00+00:00"})
    readback = fields.String(required=True)
    booked_by = fields.String(allow_none=True)
    checked_in_at = fields.String(allow_none=True)
    checked_out_at = fields.String(allow_none=True)
    charges = fields.String(allow_none=True)
    ended_at = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)
