"""The notifications endpoints of the contract: every message sent (or owed), by guest,
kind, status and channel; and the agents' call tasks marked done."""

from gateway.http import STAFF, route
from gateway.schemas.common import page_of
from gateway.schemas.notifications import CallDone, Notification, NotificationQuery


class NotificationRoutes:
    @route(
        "GET",
        "/notifications",
        roles=STAFF,
        query=NotificationQuery,
        response=page_of(Notification),
        tag="notifications",
        summary="Notifications, newest first, by guest, kind, status and channel",
        description="A `phone` notification that is `queued` is a call task for an agent.",
    )
    def list_notifications(self, call):
        return self.rpc("notifications", "list_notifications", **call.query)

    @route(
        "POST",
        "/notifications/<int:notification_id>/call-done",
        roles=STAFF,
        body=CallDone,
        response=Notification,
        errors=(404, 409),
        tag="notifications",
        summary="An agent made the call a phone notification asked for",
    )
    def complete_call(self, call):
        return self.rpc(
            "notifications", "complete_call", call.path["notification_id"], actor=call.actor
        )
