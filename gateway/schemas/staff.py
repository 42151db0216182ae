from marshmallow import Schema, fields, validate

from gateway.schemas.common import EmailAddress, NonBlank, PageQuery, Strict
from gateway.staff import ROLES
from servicekit import settings


class TokenRequest(Strict):
    username = NonBlank(max_length=64, required=True)
    password = fields.String(required=True, validate=validate.Length(min=1, max=200))


class Token(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "bearer"})
    expires_in = fields.Integer(required=True)


class StaffCreate(Strict):
    username = NonBlank(
        max_length=64,
        required=True,
        validate=validate.Regexp(r"^[a-z0-9_.-]{2,64}$", error="2 to 64 of a-z 0-9 _ . -"),
    )
    password = fields.String(required=True, validate=validate.Length(min=8, max=200))
    name = NonBlank(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    department = fields.String(allow_none=True, validate=validate.OneOf(settings.departments()))
    email = EmailAddress(allow_none=True)
    phone = fields.String(allow_none=True, validate=validate.Length(max=32))


class Staff(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    department = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    active = fields.Boolean()
    created_at = fields.String(allow_none=True)


class StaffQuery(PageQuery):
    role = fields.String(validate=validate.OneOf(ROLES))
    department = fields.String(validate=validate.OneOf(settings.departments()))
