"""The complaints endpoints of the contract: intake from every channel, the actions that
write the guest processing form, the departments' dispatch orders, public tracking."""

from gateway.http import PUBLIC, STAFF, route
from gateway.schemas import complaints as schemas
from gateway.schemas.common import page_of


class ComplaintRoutes:
    @route(
        "POST",
        "/complaints",
        roles=STAFF,
        body=schemas.ComplaintCreate,
        response=schemas.Complaint,
        status=201,
        idempotent=True,
        tag="complaints",
        summary="Record a complaint from any channel",
        description='Example: `{"guest_id": 7, "channel": "phone", "category": "noise", '
        '"description": "Party next door at 2am"}`, or `"contact": {"name", "phone"}` for a '
        "caller with no guest file. The department follows from the category unless given; "
        "`due_at` is the end of the hotel's day it was received.",
    )
    def file_complaint(self, call):
        return self.rpc("complaints", "file_complaint", call.body, call.actor, call.idempotency_key)

    @route(
        "GET",
        "/complaints",
        roles=STAFF,
        query=schemas.ComplaintQuery,
        response=page_of(schemas.Complaint),
        tag="complaints",
        summary="Complaints by status, department, guest, channel, overdue, tracking code; oldest first",
    )
    def list_complaints(self, call):
        filters = {k: v for k, v in call.query.items() if k not in ("limit", "cursor")}
        return self.rpc(
            "complaints", "list_complaints", filters, call.query["limit"], call.query["cursor"]
        )

    @route(
        "GET",
        "/complaints/<int:complaint_id>",
        roles=STAFF,
        response=schemas.Complaint,
        tag="complaints",
        summary="A complaint with its processing form and dispatch orders",
    )
    def get_complaint(self, call):
        return self.rpc("complaints", "get_complaint", call.path["complaint_id"])

    @route(
        "GET",
        "/complaints/<int:complaint_id>/form",
        roles=STAFF,
        response=schemas.ProcessingForm,
        tag="complaints",
        summary="The guest processing form: time, action, by, recipient, reason, result",
    )
    def get_form(self, call):
        return self.rpc("complaints", "get_form", call.path["complaint_id"])

    @route(
        "POST",
        "/complaints/<int:complaint_id>/actions",
        roles=STAFF,
        body=schemas.ComplaintAction,
        response=schemas.Complaint,
        errors=(409,),
        tag="complaints",
        summary="Investigate, verify, dispatch, escalate, resolve or note: a line of the form",
        description="`dispatch` opens a dispatch order for `department` (default: the "
        "complaint's) and its manager owns the complaint; `escalate` passes it to the "
        "director; `resolve` needs `result`; `note` needs `note`. After `resolved`, or "
        "out of order, 409 INVALID_STATE.",
    )
    def act_on_complaint(self, call):
        return self.rpc("complaints", "act", call.path["complaint_id"], call.body, call.actor)

    @route(
        "GET",
        "/dispatch-orders",
        roles=STAFF,
        query=schemas.DispatchOrderQuery,
        response=page_of(schemas.DispatchOrder),
        tag="complaints",
        summary="A department's queue of dispatch orders, oldest first",
    )
    def list_dispatch_orders(self, call):
        filters = {k: v for k, v in call.query.items() if k not in ("limit", "cursor")}
        return self.rpc(
            "complaints",
            "list_dispatch_orders",
            filters,
            call.query["limit"],
            call.query["cursor"],
        )

    @route(
        "GET",
        "/dispatch-orders/<int:order_id>",
        roles=STAFF,
        response=schemas.DispatchOrder,
        tag="complaints",
        summary="One dispatch order",
    )
    def get_dispatch_order(self, call):
        return self.rpc("complaints", "get_dispatch_order", call.path["order_id"])

    @route(
        "POST",
        "/dispatch-orders/<int:order_id>/report",
        roles=STAFF,
        body=schemas.DispatchReport,
        response=schemas.DispatchOrder,
        errors=(409,),
        tag="complaints",
        summary="The department reports what it did; the complaint's form shows it",
        description="A manager or director may report only for their own department. "
        "An order already reported, or closed by the complaint's resolution: 409.",
    )
    def report_dispatch_order(self, call):
        return self.rpc(
            "complaints", "report", call.path["order_id"], call.body["result"], call.actor
        )

    @route(
        "GET",
        "/track/<string:tracking_code>",
        roles=PUBLIC,
        response=schemas.Tracking,
        tag="complaints",
        summary="Where a complaint stands, for the guest holding its tracking code",
        description="No login. Status, handling department and the steps with their times; "
        "no personal data, no staff notes.",
    )
    def track_complaint(self, call):
        return self.rpc("complaints", "track", call.path["tracking_code"])
