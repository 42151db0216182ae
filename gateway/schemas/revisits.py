"""Shapes of the revisits endpoints: the worklist, outcomes, sign-off, the evaluation and
commissions."""

from marshmallow import Schema, fields, validate

from gateway.schemas.common import Id, NonBlank, PageQuery, Strict
from servicekit import settings

ITEM_KINDS = ("opinion", "request", "suggestion", "complaint")


class RevisitQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(["due", "done", "unreached"]))
    overdue = fields.Boolean()
    agent = fields.String(validate=validate.Length(min=1, max=64))
    guest_id = Id()
    kind = fields.String(validate=validate.OneOf(["post_stay", "complaint"]))
    due_before = fields.Date(metadata={"description": "due on or before this date"})


class RaisedItem(Strict):
    kind = fields.String(required=True, validate=validate.OneOf(ITEM_KINDS))
    text = NonBlank(max_length=2000, required=True)
    department = fields.String(allow_none=True, validate=validate.OneOf(settings.departments()))
    category = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "a complaint item's category (default: other)"},
    )


class PendingQuestion(Strict):
    text = NonBlank(max_length=2000, required=True)
    respond_by = fields.AwareDateTime(required=True)
    department = fields.String(allow_none=True, validate=validate.OneOf(settings.departments()))


class Outcome(Strict):
    reached = fields.Boolean(required=True)
    notes = fields.String(allow_none=True, validate=validate.Length(max=4000))
    satisfaction = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=5))
    items = fields.List(fields.Nested(RaisedItem), load_default=list)
    pending_question = fields.Nested(PendingQuestion, allow_none=True)


class Take(Strict):
    """Empty for the caller to take it; `{"agent_id": 31}` for a manager handing it out."""

    agent_id = Id(allow_none=True)


class SignOff(Strict):
    result = NonBlank(max_length=4000, required=True)


class Owner(Schema):
    kind = fields.String(required=True)
    id = fields.Integer(allow_none=True)
    username = fields.String(allow_none=True)
    role = fields.String(required=True)
    department = fields.String(allow_none=True)


class StaffRef(Schema):
    id = fields.Integer()
    username = fields.String()


class Item(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    text = fields.String(required=True)
    department = fields.String(required=True)
    category = fields.String(allow_none=True)
    owner = fields.Nested(Owner, required=True)
    routed = fields.Boolean()
    routed_at = fields.String()
    complaint_id = fields.Integer(allow_none=True)
    complaint_filing = fields.String(
        allow_none=True, metadata={"description": "filed | pending (complaint items)"}
    )
    result = fields.String(allow_none=True)
    signed_by = fields.Nested(StaffRef, allow_none=True)
    signed_at = fields.String(allow_none=True)


class PromisedResponse(Schema):
    id = fields.Integer()
    text = fields.String()
    department = fields.String()
    respond_by = fields.String()
    promised_at = fields.String()
    reminded_at = fields.String(allow_none=True)


class Revisit(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    guest_id = fields.Integer(allow_none=True)
    guest = fields.Dict(allow_none=True)
    contact = fields.Dict(allow_none=True)
    reservation_id = fields.Integer(allow_none=True)
    complaint_id = fields.Integer(allow_none=True)
    complaint_resolved = fields.Boolean()
    due_date = fields.String(required=True)
    planned_date = fields.String(metadata={"description": "the due date first planned"})
    overdue = fields.Boolean()
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    agent = fields.Nested(StaffRef, allow_none=True)
    taken_at = fields.String(allow_none=True)
    reached = fields.Boolean(allow_none=True)
    notes = fields.String(allow_none=True)
    satisfaction = fields.Integer(allow_none=True)
    completed_at = fields.String(allow_none=True)
    created_at = fields.String()
    items = fields.List(fields.Nested(Item))
    also_due = fields.List(
        fields.Integer(), metadata={"description": "the guest's other revisits still due"}
    )
    pending_questions = fields.List(fields.Nested(PromisedResponse))


class ReportQuery(Strict):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))
    month = fields.Integer(validate=validate.Range(min=1, max=12))


class Report(Schema):
    year = fields.Integer()
    month = fields.Integer(allow_none=True)
    planned = fields.Integer(required=True)
    done = fields.Integer(required=True)
    reached = fields.Integer(required=True)
    overdue = fields.Integer(required=True)
    coverage_post_stay = fields.Float(allow_none=True, required=True)
    coverage_complaints = fields.Float(allow_none=True, required=True)
    coverage_complaints_goal = fields.Integer()
    by_agent = fields.List(fields.Dict(), required=True)
    by_item_kind = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    satisfaction = fields.Dict(required=True)


class CommissionQuery(PageQuery):
    month = fields.String(
        required=True,
        validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="must be YYYY-MM"),
    )


class Commission(Schema):
    agent = fields.String(required=True)
    agent_id = fields.Integer(required=True)
    guests = fields.Integer(required=True)
    stays = fields.Integer(required=True)
    consumption = fields.String(required=True)
    commission = fields.String(required=True)
    currency = fields.String(required=True)


class Commissions(Schema):
    month = fields.String()
    rate = fields.String()
    items = fields.List(fields.Nested(Commission), required=True)
    next = fields.String(allow_none=True, required=True)
