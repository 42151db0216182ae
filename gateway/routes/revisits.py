"""The revisits endpoints of the contract: the agents' worklist of follow-up calls, their
outcomes, the department managers' sign-off, the evaluation and the commissions."""

from gateway.http import MANAGERS, STAFF, route
from gateway.schemas import revisits as schemas
from gateway.schemas.common import page_of

FILTERS = ("status", "overdue", "agent", "guest_id", "kind", "due_before")


class RevisitRoutes:
    @route(
        "GET",
        "/revisits",
        roles=STAFF,
        query=schemas.RevisitQuery,
        response=page_of(schemas.Revisit),
        tag="revisits",
        summary="The agents' worklist of follow-up calls",
        description="Ordered by due date, then guest: a guest's revisits due together come "
        "together, so one call covers them. `overdue=true`: still due, past the due date. "
        "`agent` is a username (`me`: the caller's own); `due_before` includes that day.",
    )
    def list_revisits(self, call):
        q = call.query
        filters = {k: q[k] for k in FILTERS if q.get(k) is not None}
        if filters.get("agent") == "me":
            filters["agent"] = call.actor["username"]
        if "due_before" in filters:
            filters["due_before"] = filters["due_before"].isoformat()
        return self.rpc("revisits", "list_revisits", filters, q["limit"], q["cursor"])

    @route(
        "GET",
        "/revisits/report",
        roles=MANAGERS,
        query=schemas.ReportQuery,
        response=schemas.Report,
        tag="revisits",
        summary="The revisit plan's evaluation for a year or a month",
        description="Revisits planned (due) in the period: done (call over), reached, "
        "overdue; coverage of post-stay calls (reached / planned) and of complainants "
        "(reached within three days / planned, goal 100), by agent, by item kind, "
        "satisfaction.",
    )
    def revisit_report(self, call):
        return self.rpc("revisits", "report", call.query["year"], call.query.get("month"))

    @route(
        "GET",
        "/revisits/<int:revisit_id>",
        roles=STAFF,
        response=schemas.Revisit,
        errors=(404,),
        tag="revisits",
        summary="One revisit with its items and promised responses",
    )
    def get_revisit(self, call):
        return self.rpc("revisits", "get_revisit", call.path["revisit_id"])

    @route(
        "POST",
        "/revisits/<int:revisit_id>/take",
        roles=STAFF,
        body=schemas.Take,
        response=schemas.Revisit,
        errors=(400, 403, 404, 409),
        tag="revisits",
        summary="Take a revisit to call, or hand it to an agent",
        description="An agent cannot take one another agent holds (409 CONFLICT); a "
        'manager can take it over, or hand it to a staff member: `{"agent_id": 31}` (403 '
        "for an agent). A closed revisit: 409 INVALID_STATE.",
    )
    def take_revisit(self, call):
        return self.rpc(
            "revisits",
            "take_revisit",
            call.path["revisit_id"],
            call.actor,
            call.body.get("agent_id"),
        )

    @route(
        "POST",
        "/revisits/<int:revisit_id>/outcome",
        roles=STAFF,
        body=schemas.Outcome,
        response=schemas.Revisit,
        idempotent=True,
        errors=(400, 404, 409),
        tag="revisits",
        summary="Record a call: reached or not, satisfaction, the items the guest raised",
        description='Example: `{"reached": true, "satisfaction": 4, "items": [{"kind": '
        '"complaint", "text": "The lift was noisy", "department": "engineering"}], '
        '"pending_question": {"text": "Late check-out next time?", "respond_by": '
        '"2026-11-26T12:00:00+01:00"}}`. Items go to their department (customer_service '
        "when none is named) with an owner; a complaint item files a complaint (channel "
        "`revisit`). Not reached: tried again the next day, up to REVISIT_MAX_ATTEMPTS "
        "calls, then `unreached`. A closed revisit: 409 INVALID_STATE.",
    )
    def record_outcome(self, call):
        outcome = dict(call.body)
        question = outcome.get("pending_question")
        if question:
            outcome["pending_question"] = {
                **question,
                "respond_by": question["respond_by"].isoformat(),
            }
        return self.rpc(
            "revisits",
            "record_outcome",
            call.path["revisit_id"],
            outcome,
            call.actor,
            idempotency_key=call.idempotency_key,
            timeout=15,  # it may wait for the complaints service to file complaint items
        )

    @route(
        "POST",
        "/revisits/<int:revisit_id>/items/<int:item_id>/sign-off",
        roles=STAFF,
        body=schemas.SignOff,
        response=schemas.Revisit,
        errors=(400, 403, 404, 409),
        tag="revisits",
        summary="A department manager reports an item's result to the guest and signs it",
        description="Only a manager of the item's department (else 403 FORBIDDEN). The "
        "result goes to the guest; the form records `signed_by` and `signed_at`.",
    )
    def sign_off_item(self, call):
        return self.rpc(
            "revisits",
            "sign_off_item",
            call.path["revisit_id"],
            call.path["item_id"],
            call.body["result"],
            call.actor,
        )

    @route(
        "GET",
        "/commissions",
        roles=MANAGERS,
        query=schemas.CommissionQuery,
        response=schemas.Commissions,
        tag="revisits",
        summary="Agents' commissions on returning guests' stays in a month",
        description="A stay checked out in the month is credited to the agent who last "
        "reached the guest on a revisit within HOTEL_COMMISSION_WINDOW_DAYS before it; "
        "commission at HOTEL_COMMISSION_RATE of the stay's charges.",
    )
    def commissions(self, call):
        query = call.query
        return self.rpc("revisits", "commissions", query["month"], query["limit"], query["cursor"])
