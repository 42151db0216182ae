"""Shapes shared by every area of the API."""

from marshmallow import RAISE, Schema, fields, validate
from marshmallow.validate import Length

from servicekit.pages import DEFAULT_LIMIT, MAX_LIMIT


class Strict(Schema):
    """Request shapes refuse unknown fields, so a typo is a 400 naming it, not data lost."""

    class Meta:
        unknown = RAISE


class PageQuery(Strict):
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )
    cursor = fields.String(load_default=None)


class Page(Schema):
    next = fields.String(allow_none=True, required=True)


def page_of(item: type[Schema]) -> type[Schema]:
    """The list shape `{"items": [...], "next": ...}` of one item schema."""
    return type(
        f"{item.__name__}Page",
        (Page,),
        {"items": fields.List(fields.Nested(item), required=True)},
    )


class Error(Schema):
    error = fields.String(required=True, metadata={"example": "VALIDATION_ERROR"})
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields", keys=fields.String(), values=fields.Raw())


class Money(fields.Decimal):
    """Money as a decimal string ("120.00"), never a float."""

    def __init__(self, **kwargs):
        super().__init__(places=2, as_string=True, **kwargs)


class NonBlank(fields.String):
    """Text trimmed of surrounding spaces that must not be empty once trimmed."""

    def __init__(self, max_length: int = 200, validate=None, **kwargs):
        checks = [Length(min=1, max=max_length, error="must be 1 to {max} characters")]
        if validate is not None:
            checks.append(validate)
        super().__init__(validate=checks, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()
