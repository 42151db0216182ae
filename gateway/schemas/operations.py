"""Shapes of the operations endpoints: a scheduled job run by hand."""

from marshmallow import fields

from gateway.schemas.common import Strict


class JobOptions(Strict):
    """`POST /admin/jobs/birthday-greetings` `{"date": "2026-05-17"}`: the day to greet
    (default today, in HOTEL_TZ); the other jobs take no options."""

    date = fields.Date(metadata={"example": "2026-05-17"})
