"""Complaints, their processing forms, dispatch orders and public tracking.

Requests are checked for shape here (unknown fields, types, the contract's enumerations);
the complaints service checks the rest (known category, received_at not in the future,
a guest or a contact), so callers over RPC meet the same rules.
"""

from marshmallow import Schema, fields, validate

from gateway.schemas.common import EmailAddress, Id, NonBlank, PageQuery, Strict
from servicekit import settings
from services.complaints.domain import ACTIONS, CHANNELS, ORDER_STATUSES, STATUSES


class ComplaintContact(Strict):
    name = NonBlank(required=True)
    phone = fields.String(allow_none=True, validate=validate.Length(max=32))
    email = EmailAddress(allow_none=True)


class ComplaintCreate(Strict):
    guest_id = Id(strict=True, allow_none=True)
    contact = fields.Nested(ComplaintContact, allow_none=True)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    category = fields.String(
        required=True,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "e.g. noise, cleanliness, maintenance, food, billing, service"},
    )
    description = NonBlank(max_length=4000, required=True)
    department = fields.String(
        allow_none=True,
        validate=validate.OneOf(settings.departments()),
        metadata={"description": "default: the category's department"},
    )
    received_at = fields.String(
        allow_none=True,
        metadata={
            "format": "date-time",
            "description": "when it was taken, if earlier (never in the future); default now",
        },
    )


class Party(Schema):
    """Who owns a complaint or wrote a line: a staff member, a role nobody holds yet,
    or the system (the escalation timer)."""

    kind = fields.String(required=True, metadata={"enum": ["staff", "role", "system"]})
    id = fields.Integer(allow_none=True)
    username = fields.String(allow_none=True)
    role = fields.String(required=True)
    department = fields.String(allow_none=True)


class FormLine(Schema):
    id = fields.Integer()
    at = fields.String(required=True)
    action = fields.String(required=True, metadata={"enum": ["receive", *ACTIONS, "report"]})
    by = fields.Nested(Party, required=True)
    recipient = fields.Nested(Party, required=True)
    reason = fields.String(allow_none=True)
    result = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "the complaint's status after this line"})
    dispatch_order_id = fields.Integer(allow_none=True)


class DispatchOrder(Schema):
    id = fields.Integer(required=True)
    complaint_id = fields.Integer(required=True)
    tracking_code = fields.String()
    category = fields.String()
    description = fields.String()
    guest_id = fields.Integer(allow_none=True)
    department = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": list(ORDER_STATUSES)})
    instructions = fields.String(allow_none=True)
    assignee = fields.Nested(Party)
    opened_by = fields.Nested(Party)
    opened_at = fields.String()
    reported_by = fields.Nested(Party, allow_none=True)
    reported_at = fields.String(allow_none=True)
    result = fields.String(allow_none=True)


class Complaint(Schema):
    id = fields.Integer(required=True)
    tracking_code = fields.String(required=True, metadata={"example": "K7QX-3MPA-WZ9DR"})
    guest_id = fields.Integer(allow_none=True)
    contact = fields.Nested(ComplaintContact, allow_none=True)
    channel = fields.String(required=True)
    category = fields.String(required=True)
    description = fields.String(required=True)
    department = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    owner = fields.Nested(Party, required=True)
    taken_by = fields.Nested(Party)
    received_at = fields.String(required=True)
    due_at = fields.String(required=True)
    overdue = fields.Boolean()
    escalated_at = fields.String(allow_none=True)
    resolved_at = fields.String(allow_none=True)
    result = fields.String(allow_none=True)
    updated_at = fields.String()
    form = fields.List(fields.Nested(FormLine), metadata={"description": "not in lists"})
    dispatch_orders = fields.List(fields.Nested(DispatchOrder))
    line = fields.Nested(FormLine, metadata={"description": "the line an action just wrote"})


class ProcessingForm(Schema):
    complaint_id = fields.Integer(required=True)
    tracking_code = fields.String(required=True)
    guest_id = fields.Integer(allow_none=True)
    status = fields.String(required=True)
    lines = fields.List(fields.Nested(FormLine), required=True)


class ComplaintAction(Strict):
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    note = fields.String(allow_none=True, validate=validate.Length(max=4000))
    department = fields.String(allow_none=True, validate=validate.OneOf(settings.departments()))
    result = fields.String(allow_none=True, validate=validate.Length(max=4000))


class DispatchReport(Strict):
    result = NonBlank(max_length=4000, required=True)


class ComplaintQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(STATUSES))
    department = fields.String(validate=validate.OneOf(settings.departments()))
    guest_id = Id()
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    overdue = fields.Boolean()
    tracking_code = fields.String(
        validate=validate.Length(max=32),
        metadata={"description": "as the guest reads it: any case, dashes optional"},
    )


class DispatchOrderQuery(PageQuery):
    department = fields.String(validate=validate.OneOf(settings.departments()))
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))


class TrackingStep(Schema):
    at = fields.String(required=True)
    status = fields.String(required=True)


class Tracking(Schema):
    tracking_code = fields.String()
    status = fields.String(required=True)
    department = fields.String(required=True)
    received_at = fields.String(required=True)
    updated_at = fields.String(required=True)
    steps = fields.List(fields.Nested(TrackingStep), required=True)
