"""Request and response shapes of the guests endpoints (CONTRACT.md "Guests")."""

from marshmallow import Schema, fields, validate

from gateway.schemas.common import EmailAddress, Id, NonBlank, PageQuery, Strict

CATEGORIES = ("individual", "group", "vip")
LANGUAGES = ("es", "en")


class GuestChanges(Strict):
    """What `PATCH /guests/{id}` may change; the file number and arrival date stay."""

    name = NonBlank()
    # normalised to E.164 by the guests service, which names `phone` if it cannot read it
    phone = fields.String(validate=validate.Length(min=1, max=32))
    email = EmailAddress(allow_none=True)
    birthday = fields.Date(allow_none=True)
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    language = fields.String(validate=validate.OneOf(LANGUAGES))
    group_id = Id(allow_none=True, strict=True)
    notes = fields.String(allow_none=True, validate=validate.Length(max=2000))


class GuestCreate(GuestChanges):
    name = NonBlank(required=True)
    phone = fields.String(required=True, validate=validate.Length(min=1, max=32))
    # omitted: "group" when `group_id` is given, else "individual"
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    language = fields.String(allow_none=True, validate=validate.OneOf(LANGUAGES))
    arrival_date = fields.Date(allow_none=True, metadata={"description": "default: today"})


class Guest(Schema):
    id = fields.Integer(required=True)
    file_number = fields.String(required=True, metadata={"example": "261124001"})
    card_number = fields.String(required=True, metadata={"example": "261124001"})
    name = fields.String(required=True)
    phone = fields.String(required=True, metadata={"example": "+34600112233"})
    email = fields.String(allow_none=True)
    birthday = fields.Date(allow_none=True)
    category = fields.String(required=True)
    language = fields.String(required=True)
    group_id = fields.Integer(allow_none=True)
    arrival_date = fields.Date(required=True)
    notes = fields.String(allow_none=True)
    vip = fields.Boolean(required=True)
    created_at = fields.String()
    updated_at = fields.String()


class GuestQuery(PageQuery):
    phone = fields.String(validate=validate.Length(min=1, max=32))
    file_number = fields.String(validate=validate.Length(min=1, max=9))
    name = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "part of the name, accents and case ignored"},
    )


class ArrivalsQuery(PageQuery):
    date = fields.Date(metadata={"description": "default: today"})


class Arrival(Schema):
    kind = fields.String(required=True, metadata={"example": "guest"})
    id = fields.Integer(required=True)
    file_number = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)
    vip = fields.Boolean(required=True)
    group_id = fields.Integer(allow_none=True, metadata={"description": "guests only"})
    members = fields.Integer(metadata={"description": "groups only: how many guests"})


class Arrivals(Schema):
    date = fields.Date(required=True)
    items = fields.List(fields.Nested(Arrival), required=True)
    next = fields.String(allow_none=True)


class GroupCreate(Strict):
    name = NonBlank(required=True)
    arrival_date = fields.Date(allow_none=True, metadata={"description": "default: today"})
    leader_guest_id = Id(allow_none=True, strict=True)


class Group(Schema):
    id = fields.Integer(required=True)
    file_number = fields.String(required=True)
    name = fields.String(required=True)
    arrival_date = fields.Date(required=True)
    leader_guest_id = fields.Integer(allow_none=True)
    created_at = fields.String()
    members = fields.List(fields.Nested(Guest))


class CallerQuery(Strict):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class HistoryLine(Schema):
    at = fields.String(required=True)
    kind = fields.String(
        required=True,
        metadata={"description": "reservation, stay, complaint, revisit or notification"},
    )
    summary = fields.String(required=True)
    ref = fields.String(required=True, metadata={"example": "complaints/12"})
    event = fields.String()


class OpenItems(Schema):
    complaints = fields.List(fields.Dict(), required=True)
    promised_responses = fields.List(fields.Dict(), required=True)


class Caller(Schema):
    phone = fields.String(required=True)
    guest = fields.Nested(Guest, allow_none=True, required=True)
    vip = fields.Boolean(required=True)
    history = fields.List(fields.Nested(HistoryLine), required=True)
    open = fields.Nested(OpenItems, required=True)
