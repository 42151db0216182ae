"""The reservations endpoints of the contract: room types, availability, holds, stays."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from gateway.http import ADMINS, STAFF, route
from gateway.schemas import reservations as schemas
from gateway.schemas.common import PageQuery, page_of


def _plain(value: Any) -> Any:
    """A validated body as JSON-ready RPC arguments: dates as ISO strings, money as text."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


class ReservationRoutes:
    @route(
        "POST",
        "/room-types",
        roles=ADMINS,
        body=schemas.RoomTypeCreate,
        response=schemas.RoomType,
        status=201,
        idempotent=True,
        errors=(400, 409),
        tag="reservations",
        summary="Add a room type",
        description='Example: `{"code": "deluxe", "name": "Deluxe", "price": "180.00", '
        '"currency": "EUR", "rooms": 12}`',
    )
    def create_room_type(self, call):
        return self.rpc(
            "reservations",
            "create_room_type",
            _plain(call.body),
            idempotency_key=call.idempotency_key,
        )

    @route(
        "PATCH",
        "/room-types/<string:code>",
        roles=ADMINS,
        body=schemas.RoomTypeChange,
        response=schemas.RoomType,
        errors=(400, 404, 409),
        tag="reservations",
        summary="Change a room type's name, price, currency or number of rooms",
        description="Fewer rooms than a future night already has taken -> 409 CONFLICT.",
    )
    def update_room_type(self, call):
        return self.rpc("reservations", "update_room_type", call.path["code"], _plain(call.body))

    @route(
        "GET",
        "/room-types",
        roles=STAFF,
        query=PageQuery,
        response=schemas.RoomTypeList,
        tag="reservations",
        summary="Room types, highest price first (the order an agent offers them in)",
    )
    def list_room_types(self, call):
        return self.rpc(
            "reservations", "list_room_types", call.query["limit"], call.query["cursor"]
        )

    @route(
        "GET",
        "/availability",
        roles=STAFF,
        query=schemas.AvailabilityQuery,
        response=schemas.Availability,
        errors=(400,),
        tag="reservations",
        summary="What is free for a stay, highest price first",
        description="`available` is the fewest rooms free over the nights; `bookable` "
        "says whether `rooms` of them fit.",
    )
    def room_availability(self, call):
        q = call.query
        return self.rpc(
            "reservations", "availability", q["arrival"].isoformat(), q["nights"], q["rooms"]
        )

    @route(
        "POST",
        "/reservations",
        roles=STAFF,
        body=schemas.ReservationCreate,
        response=schemas.Reservation,
        status=201,
        idempotent=True,
        errors=(400, 409),
        tag="reservations",
        summary="Hold rooms for a guest; the answer carries the read-back",
        description='Example: `{"guest_id": 7, "room_type": "deluxe", "arrival": '
        '"2026-12-24", "nights": 3, "rooms": 1, "payment_method": "credit_card", '
        '"contact": {"phone": "+34600111222"}}`. No room -> 409 NO_AVAILABILITY with '
        "`alternatives`. A card number anywhere -> 400.",
    )
    def create_reservation(self, call):
        return self.rpc(
            "reservations",
            "create_reservation",
            _plain(call.body),
            actor=call.actor,
            idempotency_key=call.idempotency_key,
        )

    @route(
        "GET",
        "/reservations/<int:reservation_id>",
        roles=STAFF,
        response=schemas.Reservation,
        errors=(404,),
        tag="reservations",
        summary="A reservation",
    )
    def get_reservation(self, call):
        return self.rpc("reservations", "get_reservation", call.path["reservation_id"])

    @route(
        "GET",
        "/reservations",
        roles=STAFF,
        query=schemas.ReservationQuery,
        response=page_of(schemas.Reservation),
        errors=(400,),
        tag="reservations",
        summary="Reservations, newest first, by guest, status, arrival date and code",
    )
    def list_reservations(self, call):
        q = call.query
        return self.rpc(
            "reservations",
            "list_reservations",
            guest_id=q.get("guest_id"),
            status=q.get("status"),
            arrival=q["arrival"].isoformat() if q.get("arrival") else None,
            code=q.get("code"),
            limit=q["limit"],
            cursor=q["cursor"],
        )

    @route(
        "POST",
        "/reservations/<int:reservation_id>/check-in",
        roles=STAFF,
        body=schemas.CheckIn,
        response=schemas.Reservation,
        errors=(400, 404, 409),
        tag="reservations",
        summary="The guest arrived: held -> in_house",
        description="409 NO_AVAILABILITY (with `overstaying`) while guests past their "
        "departure, not checked out yet, still have every room of the type.",
    )
    def check_in_reservation(self, call):
        return self.rpc(
            "reservations",
            "check_in",
            call.path["reservation_id"],
            at=_plain(call.body.get("at")),
            actor=call.actor,
        )

    @route(
        "POST",
        "/reservations/<int:reservation_id>/check-out",
        roles=STAFF,
        body=schemas.CheckOut,
        response=schemas.Reservation,
        errors=(400, 404, 409),
        tag="reservations",
        summary="The guest left: in_house -> checked_out, with the stay's charges",
        description='Example: `{"charges": "84.50"}`',
    )
    def check_out_reservation(self, call):
        return self.rpc(
            "reservations",
            "check_out",
            call.path["reservation_id"],
            at=_plain(call.body.get("at")),
            charges=_plain(call.body.get("charges")),
            actor=call.actor,
        )

    @route(
        "POST",
        "/reservations/<int:reservation_id>/cancel",
        roles=STAFF,
        body=schemas.CancelReservation,
        response=schemas.Reservation,
        errors=(404, 409),
        tag="reservations",
        summary="Cancel a held reservation; its rooms are free again",
    )
    def cancel_reservation(self, call):
        return self.rpc("reservations", "cancel", call.path["reservation_id"], actor=call.actor)
