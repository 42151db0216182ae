"""The bus contract: the event envelope and one schema per integration event.

Publishers and consumers both import this module, so an event's shape is written once.
Every event travels in the envelope of CONTRACT.md::

    {"event_id": "5b0c...", "type": "complaint_filed", "version": 1,
     "occurred_at": "2026-11-23T10:15:00+00:00", "source": "complaints",
     "data": {"complaint_id": 12, "tracking_code": "K7QX-3MPA-WZ9D", ...}}

`data` holds ids and the few facts a consumer needs to act without calling back; consumers
ignore fields they do not know, so a publisher may add fields without a new version.
`SUBSCRIPTIONS` says which service consumes which events: the bus declares every queue
from it up front, so nothing published before a consumer first starts is lost.
"""

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate


class EventData(Schema):
    class Meta:
        unknown = EXCLUDE


class Envelope(Schema):
    class Meta:
        unknown = EXCLUDE

    event_id = fields.UUID(required=True)
    type = fields.String(required=True)
    version = fields.Integer(required=True)
    occurred_at = fields.AwareDateTime(required=True)
    source = fields.String(required=True)
    data = fields.Dict(required=True)


class Contact(EventData):
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class Owner(EventData):
    """Who answers for an item: a staff member, or a role while nobody holds it yet."""

    kind = fields.String(required=True, validate=validate.OneOf(["staff", "role"]))
    id = fields.Integer(allow_none=True)
    username = fields.String(allow_none=True)
    role = fields.String(required=True)
    department = fields.String(allow_none=True)


class StaffRef(EventData):
    id = fields.Integer(required=True)
    username = fields.String(required=True)


# --- gateway: staff accounts -------------------------------------------------------------


class StaffData(EventData):
    staff_id = fields.Integer(required=True)
    username = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    department = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    active = fields.Boolean(load_default=True)


# --- guests --------------------------------------------------------------------------


class GuestData(EventData):
    """The whole guest file as it now stands (registered and updated alike)."""

    guest_id = fields.Integer(required=True)
    file_number = fields.String(required=True)
    category = fields.String(required=True)
    name = fields.String(required=True)
    phone = fields.String(required=True)
    email = fields.String(allow_none=True)
    birthday = fields.Date(allow_none=True)
    language = fields.String(required=True)
    arrival_date = fields.Date(required=True)
    group_id = fields.Integer(allow_none=True)


class GroupRegisteredData(EventData):
    group_id = fields.Integer(required=True)
    file_number = fields.String(required=True)
    name = fields.String(required=True)
    arrival_date = fields.Date(required=True)
    leader_guest_id = fields.Integer(allow_none=True)


# --- reservations --------------------------------------------------------------------


class ReservationData(EventData):
    reservation_id = fields.Integer(required=True)
    code = fields.String(required=True)
    guest_id = fields.Integer(required=True)
    room_type = fields.String(required=True)
    arrival = fields.Date(required=True)
    nights = fields.Integer(required=True)
    rooms = fields.Integer(required=True)
    total_price = fields.Decimal(as_string=True, required=True)
    currency = fields.String(required=True)


class ReservationHeldData(ReservationData):
    room_type_name = fields.String(required=True)
    payment_method = fields.String(required=True)
    hold_until = fields.AwareDateTime(required=True)
    contact = fields.Nested(Contact, required=True)
    language = fields.String(required=True)
    readback = fields.String(required=True)
    channel = fields.String(allow_none=True)


class ReservationEndedData(ReservationData):
    """Released (a no-show at `hold_until`) or cancelled. `contact` and `language` are the
    booking's (absent from events published before they were added)."""

    hold_until = fields.AwareDateTime(required=True)
    at = fields.AwareDateTime(required=True)
    contact = fields.Nested(Contact, load_default=None)
    language = fields.String(load_default=None)


class CheckedInData(ReservationData):
    checked_in_at = fields.AwareDateTime(required=True)


class CheckedOutData(ReservationData):
    checked_in_at = fields.AwareDateTime(required=True)
    checked_out_at = fields.AwareDateTime(required=True)
    departure = fields.Date(required=True)
    charges = fields.Decimal(as_string=True, required=True)


# --- complaints ----------------------------------------------------------------------


class ComplaintData(EventData):
    complaint_id = fields.Integer(required=True)
    tracking_code = fields.String(required=True)
    guest_id = fields.Integer(allow_none=True)
    contact = fields.Nested(Contact, allow_none=True)
    language = fields.String(allow_none=True)
    department = fields.String(required=True)
    owner = fields.Nested(Owner, required=True)
    at = fields.AwareDateTime(required=True)


class ComplaintFiledData(ComplaintData):
    channel = fields.String(required=True)
    category = fields.String(required=True)
    summary = fields.String(required=True)
    received_at = fields.AwareDateTime(required=True)
    due_at = fields.AwareDateTime(required=True)


class ComplaintDispatchedData(ComplaintData):
    dispatch_order_id = fields.Integer(required=True)


class ComplaintEscalatedData(ComplaintData):
    reason = fields.String(required=True)  # as the processing form words it
    # by the timer, the complaint overdue; else by staff, with their note if they left one
    overdue = fields.Boolean(load_default=True)
    note = fields.String(allow_none=True, load_default=None)


class ComplaintReportedData(ComplaintData):
    """A department's answer on its dispatch order: the call centre answers the customer."""

    dispatch_order_id = fields.Integer(required=True)
    result = fields.String(required=True)


class ComplaintResolvedData(ComplaintData):
    result = fields.String(required=True)


# --- revisits ------------------------------------------------------------------------


class RevisitScheduledData(EventData):
    revisit_id = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["post_stay", "complaint"]))
    guest_id = fields.Integer(required=True)
    reservation_id = fields.Integer(allow_none=True)
    complaint_id = fields.Integer(allow_none=True)
    due_date = fields.Date(required=True)


class RevisitItemData(EventData):
    item_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    department = fields.String(allow_none=True)


class RevisitCompletedData(EventData):
    revisit_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    guest_id = fields.Integer(required=True)
    status = fields.String(required=True)
    reached = fields.Boolean(required=True)
    attempts = fields.Integer(required=True)
    agent = fields.Nested(StaffRef, allow_none=True)
    satisfaction = fields.Integer(allow_none=True)
    items = fields.List(fields.Nested(RevisitItemData), load_default=list)
    at = fields.AwareDateTime(required=True)


class ResponsePromisedData(EventData):
    revisit_id = fields.Integer(required=True)
    # the guest on file, or, for a complainant with no file, the complaint's contact
    guest_id = fields.Integer(allow_none=True)
    contact = fields.Nested(Contact, allow_none=True)
    department = fields.String(required=True)
    text = fields.String(required=True)
    respond_by = fields.AwareDateTime(required=True)
    at = fields.AwareDateTime(required=True)
    # True when sent as the reminder that the promised time is near, not the promise itself.
    reminder = fields.Boolean(load_default=False)


class ItemSignedOffData(EventData):
    revisit_id = fields.Integer(required=True)
    item_id = fields.Integer(required=True)
    # as in a promise: the guest on file, or the contact the result goes to
    guest_id = fields.Integer(allow_none=True)
    contact = fields.Nested(Contact, allow_none=True)
    department = fields.String(required=True)
    result = fields.String(required=True)
    signed_by = fields.Nested(StaffRef, required=True)
    at = fields.AwareDateTime(required=True)


# --- notifications -------------------------------------------------------------------


class NotificationData(EventData):
    notification_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    channel = fields.String(required=True)
    guest_id = fields.Integer(allow_none=True)
    # a complaint's contact with no guest file (absent from events published before it)
    contact = fields.Nested(Contact, allow_none=True, load_default=None)
    ref = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    at = fields.AwareDateTime(required=True)


@dataclass(frozen=True)
class EventType:
    name: str
    source: str
    schema: type[EventData]
    version: int = 1


CATALOGUE: dict[str, EventType] = {
    e.name: e
    for e in (
        EventType("staff_registered", "gateway", StaffData),
        EventType("staff_updated", "gateway", StaffData),
        EventType("guest_registered", "guests", GuestData),
        EventType("guest_updated", "guests", GuestData),
        EventType("group_registered", "guests", GroupRegisteredData),
        EventType("reservation_held", "reservations", ReservationHeldData),
        EventType("reservation_released", "reservations", ReservationEndedData),
        EventType("reservation_cancelled", "reservations", ReservationEndedData),
        EventType("guest_checked_in", "reservations", CheckedInData),
        EventType("guest_checked_out", "reservations", CheckedOutData),
        EventType("complaint_filed", "complaints", ComplaintFiledData),
        EventType("complaint_dispatched", "complaints", ComplaintDispatchedData),
        EventType("complaint_escalated", "complaints", ComplaintEscalatedData),
        EventType("complaint_reported", "complaints", ComplaintReportedData),
        EventType("complaint_resolved", "complaints", ComplaintResolvedData),
        EventType("revisit_scheduled", "revisits", RevisitScheduledData),
        EventType("revisit_completed", "revisits", RevisitCompletedData),
        EventType("response_promised", "revisits", ResponsePromisedData),
        EventType("item_signed_off", "revisits", ItemSignedOffData),
        EventType("notification_sent", "notifications", NotificationData),
        EventType("notification_failed", "notifications", NotificationData),
    )
}

# Which events each consuming service keeps a queue for.
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    # The caller screen's history is a projection of what the other services publish.
    "guests": (
        "reservation_held",
        "reservation_released",
        "reservation_cancelled",
        "guest_checked_in",
        "guest_checked_out",
        "complaint_filed",
        "complaint_dispatched",
        "complaint_escalated",
        "complaint_reported",
        "complaint_resolved",
        "revisit_scheduled",
        "revisit_completed",
        "response_promised",
        "item_signed_off",
        "notification_sent",
        "notification_failed",
    ),
    "reservations": ("guest_registered", "guest_updated"),
    # Owners of complaints are staff: the department's manager, its director.
    "complaints": ("staff_registered", "staff_updated"),
    "revisits": (
        "guest_registered",
        "guest_updated",
        "guest_checked_out",
        "complaint_filed",
        "complaint_resolved",
        "staff_registered",
        "staff_updated",
    ),
    "notifications": (
        "staff_registered",
        "staff_updated",
        "guest_registered",
        "guest_updated",
        "reservation_held",
        "reservation_released",
        "reservation_cancelled",
        "complaint_filed",
        "complaint_dispatched",
        "complaint_escalated",
        "complaint_reported",
        "complaint_resolved",
        "response_promised",
        "item_signed_off",
    ),
}


@dataclass(frozen=True)
class Event:
    """An event as a consumer sees it: the envelope, with `data` loaded by its schema."""

    event_id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    source: str
    data: dict[str, Any]


class UnknownEvent(ValueError):
    pass


def envelope(event_type: str, data: dict[str, Any], *, event_id: uuid.UUID | None = None) -> dict:
    """Build the JSON-ready envelope of one event, checking `data` against its schema.

    >>> envelope("group_registered", {"group_id": 1, "file_number": "261123001",
    ...     "name": "Choir", "arrival_date": "2026-11-23"})["source"]
    'guests'
    """
    kind = CATALOGUE.get(event_type)
    if kind is None:
        raise UnknownEvent(event_type)
    schema = _schema(kind.schema)
    # load then dump: validates, and turns dates and decimals into their JSON form
    body = schema.dump(schema.load(_jsonable(data)))
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "type": kind.name,
        "version": kind.version,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": kind.source,
        "data": body,
    }


def parse(body: dict) -> Event:
    """Read an envelope off the bus; raises `marshmallow.ValidationError` if malformed."""
    head = _schema(Envelope).load(body)
    kind = CATALOGUE.get(head["type"])
    if kind is None:
        raise UnknownEvent(head["type"])
    return Event(
        event_id=head["event_id"],
        type=head["type"],
        version=head["version"],
        occurred_at=head["occurred_at"],
        source=head["source"],
        data=_schema(kind.schema).load(head["data"]),
    )


@functools.cache
def _schema(schema: type[Schema]) -> Schema:
    # One instance per schema, made once: making one copies every field, which costs more
    # than loading an event. Loading and dumping keep no state in the instance.
    return schema()


def _jsonable(value: Any) -> Any:
    """Dates, decimals and uuids as their JSON strings, so a schema can load them."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    return value
