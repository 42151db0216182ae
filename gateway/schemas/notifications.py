from marshmallow import Schema, fields, validate

from gateway.schemas.common import Id, PageQuery, Strict
from services.notifications.domain import CHANNELS, KINDS, STATUSES


class NotificationQuery(PageQuery):
    guest_id = Id()
    kind = fields.String(validate=validate.OneOf(KINDS))
    status = fields.String(validate=validate.OneOf(STATUSES))
    channel = fields.String(validate=validate.OneOf(CHANNELS))


class Notification(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"example": "complaint_received"})
    channel = fields.String(required=True, metadata={"example": "email"})
    to = fields.String(required=True)
    status = fields.String(required=True, metadata={"example": "sent"})
    attempts = fields.Integer(required=True)
    subject = fields.String(required=True)
    body = fields.String(required=True)
    language = fields.String()
    guest_id = fields.Integer(allow_none=True)
    staff_id = fields.Integer(allow_none=True)
    ref = fields.String(allow_none=True, metadata={"example": "complaint:12"})
    last_error = fields.String(allow_none=True)
    next_attempt_at = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    sent_at = fields.String(allow_none=True)


class CallDone(Strict):
    """Nothing to say yet but that the call was made; the body may be empty."""
