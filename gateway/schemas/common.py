"""Shapes shared by every area of the API."""

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate
from marshmallow.validate import Length

from servicekit.pages import DEFAULT_LIMIT, MAX_LIMIT


class Strict(Schema):
    """Request shapes refuse unknown fields, so a typo is a 400 naming it, not data lost."""

    class Meta:
        unknown = RAISE


MAX_ID = 2**31 - 1  # ids are PostgreSQL integers


class Id(fields.Integer):
    """An id a request names: a whole number from 1 to PostgreSQL's largest integer, so a
    larger one is the caller's 400 rather than the database's refusal."""

    def __init__(self, **kwargs):
        super().__init__(validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class EmailAddress(fields.Email):
    """An email address, at most 254 characters (what SMTP carries and every table holds)."""

    def __init__(self, **kwargs):
        super().__init__(validate=validate.Length(max=254), **kwargs)


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
    """Every error answer. Some carry more, named in the contract: `existing_id` with a
    CONFLICT, `alternatives` with NO_AVAILABILITY."""

    class Meta:
        unknown = INCLUDE

    error = fields.String(required=True, metadata={"example": "VALIDATION_ERROR"})
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields", keys=fields.String(), values=fields.Raw())


MONEY_PATTERN = r"^\d{1,12}(\.\d{1,2})?$"


class Money(fields.Decimal):
    """Money as a decimal string ("120.00"), never a float: from 0 to `maximum`, in the
    published pattern (no sign, exponent or third decimal to be rounded away unsaid)."""

    def __init__(self, maximum: int = 99_999_999, **kwargs):
        self.maximum = Decimal(maximum)
        metadata = {"pattern": MONEY_PATTERN, "example": "120.00"}
        super().__init__(
            places=2,
            as_string=True,
            metadata={"type": "string", **metadata, **kwargs.pop("metadata", {})},
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not re.fullmatch(MONEY_PATTERN, value):
            raise ValidationError('money is a decimal string, e.g. "120.00"')
        amount = super()._deserialize(value, attr, data, **kwargs)
        if not Decimal(0) <= amount <= self.maximum:
            raise ValidationError(f"must be from 0 to {self.maximum}")
        return amount


class NonBlank(fields.String):
    """Text trimmed of surrounding spaces that must not be empty once trimmed."""

    def __init__(self, max_length: int = 200, validate=None, **kwargs):
        checks = [Length(min=1, max=max_length, error="must be 1 to {max} characters")]
        if validate is not None:
            checks.append(validate)
        super().__init__(validate=checks, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


def paths_where(value: Any, test: Callable[[str], bool], path: str = "") -> list[str]:
    """Where in a JSON value (strings, numbers, keys, nested objects and lists) `test`
    holds for the text, as dotted paths in document order: `["contact.phone", "notes.0"]`.
    Walked without recursion, so no depth of nesting that JSON parsing allowed breaks it."""
    found = []
    waiting = [(path, value)]
    while waiting:
        where, item = waiting.pop()
        if isinstance(item, dict):
            inner = []
            for key, nested in item.items():
                at = f"{where}.{key}" if where else str(key)
                if test(str(key)):
                    found.append(at)
                inner.append((at, nested))
            waiting.extend(reversed(inner))
        elif isinstance(item, list | tuple):
            waiting.extend(
                (f"{where}.{i}" if where else str(i), nested)
                for i, nested in reversed(list(enumerate(item)))
            )
        elif isinstance(item, str | int) and not isinstance(item, bool) and test(str(item)):
            found.append(where or "_body")
    return found
