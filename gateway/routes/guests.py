"""The guests endpoints of the contract: guest files, groups, arrivals, the caller screen."""

from datetime import date

from gateway.http import STAFF, route
from gateway.schemas import guests as schemas
from gateway.schemas.common import page_of


def _jsonable(values: dict) -> dict:
    """Dates back to ISO strings for the RPC call."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}


class GuestRoutes:
    @route(
        "POST",
        "/guests",
        roles=STAFF,
        body=schemas.GuestCreate,
        response=schemas.Guest,
        status=201,
        idempotent=True,
        errors=(409,),
        tag="guests",
        summary="Open a guest file (file number = card number = YYMMDD + daily serial)",
        description='Example: `{"name": "Lucía Pérez", "phone": "600 11 22 33", '
        '"category": "vip", "language": "es"}`. A phone already on file -> 409 CONFLICT '
        "with `existing_id`; past 999 files in one day -> 409 CONFLICT.",
    )
    def register_guest(self, call):
        return self.rpc(
            "guests",
            "register_guest",
            _jsonable(call.body),
            idempotency_key=call.idempotency_key,
            actor=call.actor,
        )

    @route(
        "GET",
        "/guests",
        roles=STAFF,
        query=schemas.GuestQuery,
        response=page_of(schemas.Guest),
        tag="guests",
        summary="Find guests by phone, file number or part of the name",
    )
    def find_guests(self, call):
        q = call.query
        return self.rpc(
            "guests",
            "find_guests",
            phone=q.get("phone"),
            file_number=q.get("file_number"),
            name=q.get("name"),
            limit=q["limit"],
            cursor=q["cursor"],
        )

    @route(
        "GET",
        "/guests/arrivals",
        roles=STAFF,
        query=schemas.ArrivalsQuery,
        response=schemas.Arrivals,
        tag="guests",
        summary="The day's arrivals (groups, individuals, VIPs) in file-number order",
    )
    def arrivals(self, call):
        day = call.query.get("date")
        return self.rpc(
            "guests",
            "arrivals",
            day.isoformat() if day else None,
            call.query["limit"],
            call.query["cursor"],
        )

    @route(
        "GET",
        "/guests/<int:guest_id>",
        roles=STAFF,
        response=schemas.Guest,
        tag="guests",
        summary="A guest's file",
    )
    def get_guest(self, call):
        return self.rpc("guests", "get_guest", call.path["guest_id"])

    @route(
        "PATCH",
        "/guests/<int:guest_id>",
        roles=STAFF,
        body=schemas.GuestChanges,
        response=schemas.Guest,
        errors=(409,),
        tag="guests",
        summary="Change a guest's file (not its file number or arrival date)",
    )
    def update_guest(self, call):
        return self.rpc(
            "guests",
            "update_guest",
            call.path["guest_id"],
            _jsonable(call.body),
            actor=call.actor,
        )

    @route(
        "POST",
        "/groups",
        roles=STAFF,
        body=schemas.GroupCreate,
        response=schemas.Group,
        status=201,
        idempotent=True,
        errors=(409,),
        tag="guests",
        summary="Open a group's file (numbered from the guests' daily serial)",
        description='Example: `{"name": "Coro de Bilbao", "arrival_date": "2026-11-24", '
        '"leader_guest_id": 7}`; a leader in no group yet joins it.',
    )
    def register_group(self, call):
        return self.rpc(
            "guests",
            "register_group",
            _jsonable(call.body),
            idempotency_key=call.idempotency_key,
            actor=call.actor,
        )

    @route(
        "GET",
        "/groups/<int:group_id>",
        roles=STAFF,
        response=schemas.Group,
        tag="guests",
        summary="A group with its members",
    )
    def get_group(self, call):
        return self.rpc("guests", "get_group", call.path["group_id"])

    @route(
        "GET",
        "/callers/<string:phone>",
        roles=STAFF,
        query=schemas.CallerQuery,
        response=schemas.Caller,
        tag="guests",
        summary="The caller screen: who is calling, their history, what is open for them",
        description="An unknown number answers 200 with `guest: null` (and any complaint "
        "filed from that number as a contact).",
    )
    def caller(self, call):
        return self.rpc("guests", "who_is_calling", call.path["phone"], call.query["limit"])
