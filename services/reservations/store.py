"""Room types, the night-by-night inventory and reservations, in the service's database.

Every function works in the caller's session and leaves the commit to it, except the
release job, which commits one reservation at a time. Rows of `room_nights` are always
locked in the order of their nights, so two bookings never wait on each other in a circle.
"""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicekit import errors, outbox, pages
from servicekit.database import values_set
from servicekit.events import Event
from servicekit.phones import normalise_phone
from services.reservations import domain
from services.reservations.models import (
    KIT,
    PAYMENT_METHODS,
    Guest,
    Reservation,
    RoomNight,
    RoomType,
)
from services.reservations.readback import Booking, language_of, readback

OVERBOOKING = "ck_room_nights_booked_within_total"
CODE_TAKEN = "uq_reservations_code"
# a room type's price column, NUMERIC(10, 2), holds less than this
PRICES_BELOW = Decimal(10) ** 8
# Statements on every booking's path go through the tables: the ORM's insert and load
# paths cost more CPU than the statements themselves.
GUESTS = Guest.__table__
ROOM_NIGHTS = RoomNight.__table__
RESERVATIONS = Reservation.__table__

# --- room types ----------------------------------------------------------------------


def room_type_dict(room_type: RoomType) -> dict:
    return {
        "code": room_type.code,
        "name": room_type.name,
        "price": str(room_type.price),
        "currency": room_type.currency,
        "rooms": room_type.rooms,
    }


def create_room_type(session: Session, data: dict) -> dict:
    room_type = RoomType(
        code=data["code"],
        name=data["name"],
        price=Decimal(data["price"]),
        currency=data["currency"],
        rooms=data["rooms"],
    )
    try:
        with session.begin_nested():
            session.add(room_type)
    except IntegrityError:
        raise errors.Conflict(
            f"there is already a room type {data['code']}", {"existing_code": data["code"]}
        ) from None
    return room_type_dict(room_type)


def update_room_type(session: Session, code: str, changes: dict, today: date) -> dict:
    room_type = session.scalar(select(RoomType).where(RoomType.code == code).with_for_update())
    if room_type is None:
        raise errors.NotFound(f"no room type {code}")
    if "rooms" in changes:
        rooms = changes["rooms"]
        # the nights still to come must keep room for the bookings they already have
        taken = session.execute(
            select(RoomNight.night, RoomNight.booked)
            .where(
                RoomNight.room_type_id == room_type.id,
                RoomNight.night >= today,
                RoomNight.booked > rooms,
            )
            .order_by(RoomNight.night)
            .limit(1)
        ).first()
        if taken is not None:
            raise errors.Conflict(
                f"{taken.booked} {code} rooms are already taken on {taken.night}",
                {"night": taken.night.isoformat(), "booked": taken.booked},
            )
        session.execute(
            update(RoomNight)
            .where(RoomNight.room_type_id == room_type.id, RoomNight.night >= today)
            .values(total=rooms)
        )
        room_type.rooms = rooms
    for field in ("name", "currency"):
        if field in changes:
            setattr(room_type, field, changes[field])
    if "price" in changes:
        room_type.price = Decimal(changes["price"])
    session.flush()
    return room_type_dict(room_type)


def room_types(
    session: Session, limit: int = pages.DEFAULT_LIMIT, cursor: str | None = None
) -> dict:
    """Room types highest price first, a page at a time (the cursor: the last one's price
    and code)."""
    query = select(RoomType).order_by(RoomType.price.desc(), RoomType.code)
    after = pages.decode_cursor(cursor, list)
    if after is not None:
        try:
            price, code = Decimal(after[0]), str(after[1])
            if not price.is_finite() or abs(price) >= PRICES_BELOW:
                raise ValueError("no price a room type can have")
        except (ArithmeticError, IndexError, TypeError, ValueError):
            raise errors.ValidationFailed.on("cursor", "not a cursor this list gave") from None
        query = query.where(
            or_(RoomType.price < price, and_(RoomType.price == price, RoomType.code > code))
        )
    rows = session.scalars(query.limit(limit + 1)).all()
    return pages.page(rows, limit, lambda r: [str(r.price), r.code], room_type_dict)


# --- availability --------------------------------------------------------------------


def availability(session: Session, arrival: date, nights: int, rooms: int) -> list[dict]:
    stay = domain.stay_nights(arrival, nights)
    offers = [
        domain.Offer(r.code, r.name, r.price, r.currency, r.rooms)
        for r in session.scalars(select(RoomType))
    ]
    booked = {
        (code, night): taken
        for code, night, taken in session.execute(
            select(RoomType.code, RoomNight.night, RoomNight.booked)
            .join(RoomType, RoomType.id == RoomNight.room_type_id)
            .where(RoomNight.night >= stay[0], RoomNight.night <= stay[-1])
        )
    }
    return domain.options(offers, booked, stay, rooms)


def _free_rooms(session: Session, room_type_id: int, nights: list[date], rooms: int) -> None:
    for night in sorted(nights):
        session.execute(
            update(RoomNight)
            .where(RoomNight.room_type_id == room_type_id, RoomNight.night == night)
            .values(booked=RoomNight.booked - rooms)
        )


# --- guests, as this service knows them ----------------------------------------------


def remember_guest(session: Session, event: Event) -> None:
    """Keep the newest of what `guest_registered`/`guest_updated` said about a guest."""
    data = event.data
    values = {
        "guest_id": data["guest_id"],
        "name": data["name"],
        "language": data["language"],
        "phone": data.get("phone"),
        "email": data.get("email"),
        "as_of": event.occurred_at,
    }
    statement = insert(Guest).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[Guest.guest_id],
            set_={k: statement.excluded[k] for k in values if k != "guest_id"},
            where=Guest.as_of <= statement.excluded.as_of,
        )
    )


def known_guest(session: Session, guest_id: int) -> dict | None:
    # a plain row, not an ORM object: a booking only reads the guest's details
    row = session.execute(_KNOWN_GUEST, {"guest_id": guest_id}).one_or_none()
    return None if row is None else row._asdict()


_GUEST_DETAILS = (
    GUESTS.c.guest_id.label("id"),
    GUESTS.c.name,
    GUESTS.c.language,
    GUESTS.c.phone,
    GUESTS.c.email,
)
_KNOWN_GUEST = select(*_GUEST_DETAILS).where(GUESTS.c.guest_id == bindparam("guest_id"))
# what a booking reads of its guest, from this service's list or from the guests service
GUEST_KEYS = tuple(column.name for column in _GUEST_DETAILS)


class GuestNotOnFile(Exception):
    """The guest to book for is not (yet) in this service's list: ask the guests service,
    outside the transaction, and book again with what it says."""


# --- reservations --------------------------------------------------------------------


def reservation_dict(r: Reservation) -> dict:
    def iso(value):
        return value.isoformat() if value is not None else None

    return {
        "id": r.id,
        "code": r.code,
        "status": r.status,
        "guest_id": r.guest_id,
        "guest_name": r.guest_name,
        "language": r.language,
        "room_type": r.room_type.code,
        "room_type_name": r.room_type.name,
        "arrival": r.arrival.isoformat(),
        "departure": (r.arrival + timedelta(days=r.nights)).isoformat(),
        "nights": r.nights,
        "rooms": r.rooms,
        "price": str(r.price),
        "total_price": str(r.total_price),
        "currency": r.currency,
        "payment_method": r.payment_method,
        "contact": {"phone": r.contact_phone, "email": r.contact_email},
        "channel": r.channel,
        "hold_until": r.hold_until.isoformat(),
        "readback": r.readback,
        "booked_by": r.booked_by,
        "checked_in_at": iso(r.checked_in_at),
        "checked_out_at": iso(r.checked_out_at),
        "charges": str(r.charges) if r.charges is not None else None,
        "ended_at": iso(r.ended_at),
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
    }


def _event_data(r: Reservation) -> dict:
    return {
        "reservation_id": r.id,
        "code": r.code,
        "guest_id": r.guest_id,
        "room_type": r.room_type.code,
        "arrival": r.arrival,
        "nights": r.nights,
        "rooms": r.rooms,
        "total_price": r.total_price,
        "currency": r.currency,
    }


def _contact(r: Reservation) -> dict:
    """Where the guest is told about this booking: what the agent took for it."""
    return {"name": r.guest_name, "phone": r.contact_phone, "email": r.contact_email}


def book(
    session: Session,
    request: dict,
    guest: dict | None,
    actor: dict | None,
    now: datetime,
    tz: ZoneInfo,
    hold_time: time,
) -> dict:
    """Hold rooms for a guest. `request` is the contract's body with dates already parsed;
    `guest` is `{"id", "name", "language", "phone", "email"}`, or None to read the guest of
    `request["guest_id"]` from this service's list (`GuestNotOnFile` if it is not there)."""
    arrival, nights, rooms = request["arrival"], request["nights"], request["rooms"]
    domain.check_stay(arrival, nights, rooms, domain.hotel_today(now, tz))
    if request["payment_method"] not in PAYMENT_METHODS:
        raise errors.ValidationFailed.on("payment_method", " or ".join(PAYMENT_METHODS))
    guest_id = guest["id"] if guest is not None else request["guest_id"]
    found = session.execute(
        _TO_BOOK, {"code": request["room_type"], "guest_id": guest_id}
    ).one_or_none()
    if guest is None:
        # a room type that does not exist reads no guest either: ask for the guest alone,
        # so that a booking for an unknown guest is still refused for its guest first
        on_file = found._asdict() if found is not None else known_guest(session, guest_id)
        if on_file is None or on_file["id"] is None:
            raise GuestNotOnFile(guest_id)
        guest = {key: on_file[key] for key in GUEST_KEYS}
    if found is None:
        raise errors.ValidationFailed.on("room_type", f"no room type {request['room_type']}")
    room_type = found.RoomType
    hold = domain.hold_until(arrival, request.get("hold_until"), now, tz, hold_time)
    stay = domain.stay_nights(arrival, nights)
    contact = request.get("contact") or {}
    language = language_of(guest.get("language"))
    reservation = Reservation(
        status="held",
        guest_id=guest["id"],
        guest_name=guest["name"],
        language=language,
        room_type_id=room_type.id,  # what the row is written with
        room_type=room_type,  # what the answer and the event read
        arrival=arrival,
        nights=nights,
        rooms=rooms,
        price=room_type.price,
        total_price=domain.total_price(room_type.price, nights, rooms),
        currency=room_type.currency,
        payment_method=request["payment_method"],
        # the guest's own details when the agent took none for this booking
        contact_phone=(
            normalise_phone(contact["phone"], "contact.phone")
            if contact.get("phone")
            else guest.get("phone")
        ),
        contact_email=contact.get("email") or guest.get("email"),
        channel=request.get("channel"),
        hold_until=hold,
        booked_by=(actor or {}).get("username"),
    )
    # 27^6 codes: a clash is rare enough to settle by running the booking again (see
    # CodeTaken) rather than with a savepoint around every insert
    reservation.code = domain.new_code()
    # the read-back is written with the row, for the code the row gets
    reservation.readback = readback(
        Booking(
            code=reservation.code,
            guest_name=reservation.guest_name,
            room_type_name=room_type.name,
            arrival=arrival,
            nights=nights,
            rooms=rooms,
            price=reservation.price,
            total_price=reservation.total_price,
            currency=reservation.currency,
            payment_method=reservation.payment_method,
            phone=reservation.contact_phone,
            email=reservation.contact_email,
            hold_until=hold,
        ),
        language,
        tz,
    )
    try:
        _hold(session, reservation, room_type, stay)
    except _NightFull:
        # The booking is refused whole; the alternatives are read in a fresh transaction
        # (no savepoint around every booking for the sake of the rare full night).
        session.rollback()
        alternatives = [o for o in availability(session, arrival, nights, rooms) if o["bookable"]]
        raise errors.NoAvailability(
            f"no {rooms} {room_type.name} free for {nights} nights from {arrival}",
            {"alternatives": alternatives},
        ) from None
    outbox.record(
        session,
        KIT,
        "reservation_held",
        {
            **_event_data(reservation),
            "room_type_name": room_type.name,
            "payment_method": reservation.payment_method,
            "hold_until": hold,
            "contact": _contact(reservation),
            "language": language,
            "readback": reservation.readback,
            "channel": reservation.channel,
        },
    )
    return reservation_dict(reservation)


class CodeTaken(Exception):
    """The reservation code drawn is someone else's: the booking is tried again whole."""


# Made once, the values given with each booking: building them per booking cost CPU too.
# The room type and the guest in one round trip. The room type is shared-locked so that no
# change to it (its rooms, its price) slips in between reading it and taking its nights.
_TO_BOOK = (
    select(RoomType, *_GUEST_DETAILS)
    .outerjoin(GUESTS, GUESTS.c.guest_id == bindparam("guest_id"))
    .where(RoomType.code == bindparam("code"))
    .with_for_update(read=True, of=RoomType)
)

# A stay's nights taken and the reservation written by one statement. The nights are a
# data-modifying CTE, which PostgreSQL runs to completion with the INSERT whether or not it is
# read; it takes the nights' rows in date order, as every booking does, and the CHECK refuses
# a night that is full. Either refusal (a full night, a code taken) fails the statement whole.
_STAY = (
    func.unnest(bindparam("stay_nights", type_=ARRAY(Date)))
    .table_valued("night")
    .render_derived(name="stay")
)
_TAKE_NIGHTS = insert(ROOM_NIGHTS).from_select(
    ["room_type_id", "night", "total", "booked"],
    select(
        bindparam("nights_room_type", type_=Integer),
        _STAY.c.night,
        bindparam("nights_total", type_=Integer),
        bindparam("nights_booked", type_=Integer),
    ).order_by(_STAY.c.night),
)
_HOLD = (
    insert(RESERVATIONS)
    .add_cte(
        _TAKE_NIGHTS.on_conflict_do_update(
            index_elements=[ROOM_NIGHTS.c.room_type_id, ROOM_NIGHTS.c.night],
            set_={"booked": ROOM_NIGHTS.c.booked + _TAKE_NIGHTS.excluded.booked},
        ).cte("taken")
    )
    .returning(RESERVATIONS.c.id, RESERVATIONS.c.created_at, RESERVATIONS.c.updated_at)
)


class _NightFull(Exception):
    """A night of the stay has no room left of the type."""


def _hold(
    session: Session, reservation: Reservation, room_type: RoomType, stay: list[date]
) -> None:
    # through the table: the booking's busiest statement, and the unit of work cost more
    # than the statement (the object stays out of the session, which has nothing to write)
    try:
        written = session.execute(
            _HOLD,
            {
                **values_set(reservation),
                "stay_nights": stay,
                "nights_room_type": room_type.id,
                "nights_total": room_type.rooms,
                "nights_booked": reservation.rooms,
            },
        ).one()
    except IntegrityError as exc:
        constraint = _constraint(exc)
        if constraint == CODE_TAKEN:
            raise CodeTaken(reservation.code) from None
        if constraint == OVERBOOKING:
            raise _NightFull() from None
        raise
    reservation.id, reservation.created_at, reservation.updated_at = written


def _constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


def get_reservation(session: Session, reservation_id: int, lock: bool = False) -> Reservation:
    query = select(Reservation).where(Reservation.id == reservation_id)
    if lock:
        query = query.with_for_update(of=Reservation)
    reservation = session.scalar(query)
    if reservation is None:
        raise errors.NotFound(f"no reservation {reservation_id}")
    return reservation


def list_reservations(
    session: Session,
    guest_id: int | None,
    status: str | None,
    arrival: date | None,
    code: str | None,
    limit: int,
    before: int | None,
) -> tuple[list[dict], int | None]:
    """Newest first; `before` is the id the previous page ended at."""
    query = select(Reservation).order_by(Reservation.id.desc()).limit(limit + 1)
    if guest_id is not None:
        query = query.where(Reservation.guest_id == guest_id)
    if status:
        query = query.where(Reservation.status == status)
    if arrival:
        query = query.where(Reservation.arrival == arrival)
    if code:
        query = query.where(Reservation.code == code)
    if before:
        query = query.where(Reservation.id < before)
    rows = session.scalars(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [reservation_dict(r) for r in rows], (rows[-1].id if more and rows else None)


def check_in(session: Session, reservation_id: int, at: datetime, tz: ZoneInfo) -> dict:
    r = get_reservation(session, reservation_id, lock=True)
    r.status = domain.next_status(r.status, "check_in")
    if at.astimezone(tz).date() < r.arrival:
        # the rooms are counted from the arrival night: an earlier night is not ours to give
        raise errors.InvalidState(
            f"the stay starts on {r.arrival}; an earlier arrival needs its own reservation",
            {"status": "held", "arrival": r.arrival.isoformat()},
        )
    _refuse_a_room_still_taken(session, r, at.astimezone(tz).date())
    r.checked_in_at = at
    session.flush()
    outbox.record(session, KIT, "guest_checked_in", {**_event_data(r), "checked_in_at": at})
    return reservation_dict(r)


def _refuse_a_room_still_taken(session: Session, r: Reservation, today: date) -> None:
    """Guests in house past their departure (not checked out yet) still have their rooms,
    which tonight's inventory no longer counts: a check-in that would put more guests in
    house than the type has rooms waits for their check-out."""
    overstaying = session.scalar(
        select(func.coalesce(func.sum(Reservation.rooms), 0)).where(
            Reservation.room_type_id == r.room_type_id,
            Reservation.status == "in_house",
            Reservation.id != r.id,
            Reservation.arrival + Reservation.nights <= today,
        )
    )
    if not overstaying:
        return
    tonight = session.get(RoomNight, (r.room_type_id, today))
    booked, total = (tonight.booked, tonight.total) if tonight else (0, r.room_type.rooms)
    if booked + overstaying > total:
        raise errors.NoAvailability(
            f"{overstaying} room(s) of this type are still taken by guests past their "
            "departure: check them out first",
            {"overstaying": overstaying},
        )


def check_out(
    session: Session, reservation_id: int, at: datetime, charges: Decimal, tz: ZoneInfo
) -> dict:
    r = get_reservation(session, reservation_id, lock=True)
    r.status = domain.next_status(r.status, "check_out")
    if at < r.checked_in_at:
        raise errors.ValidationFailed.on("at", "is before the check-in")
    departure = at.astimezone(tz).date()
    _free_rooms(
        session,
        r.room_type_id,
        domain.nights_to_free_at_check_out(r.arrival, r.nights, departure),
        r.rooms,
    )
    r.checked_out_at = at
    r.charges = charges
    session.flush()
    outbox.record(
        session,
        KIT,
        "guest_checked_out",
        {
            **_event_data(r),
            "checked_in_at": r.checked_in_at,
            "checked_out_at": at,
            "departure": departure,
            "charges": charges,
        },
    )
    return reservation_dict(r)


def end(session: Session, r: Reservation, action: str, at: datetime) -> dict:
    """Cancel or release a held reservation (locked by the caller): its rooms are free again."""
    r.status = domain.next_status(r.status, action)
    r.ended_at = at
    _free_rooms(session, r.room_type_id, domain.stay_nights(r.arrival, r.nights), r.rooms)
    session.flush()
    event_type = "reservation_cancelled" if action == "cancel" else "reservation_released"
    outbox.record(
        session,
        KIT,
        event_type,
        {
            **_event_data(r),
            "hold_until": r.hold_until,
            "at": at,
            "contact": _contact(r),
            "language": r.language,
        },
    )
    return reservation_dict(r)


def release_expired_holds(session: Session, now: datetime, limit: int = 500) -> int:
    """Release the holds whose time has passed, one reservation per transaction.

    `SKIP LOCKED` lets several replicas run this at once, each taking different rows, and
    skips a reservation that is being checked in at this very moment.
    """
    released = 0
    while released < limit:
        r = session.scalar(
            select(Reservation)
            .where(Reservation.status == "held", Reservation.hold_until <= now)
            .order_by(Reservation.hold_until, Reservation.id)
            .limit(1)
            .with_for_update(of=Reservation, skip_locked=True)
        )
        if r is None:
            session.rollback()
            break
        end(session, r, "release", now)
        session.commit()
        released += 1
    return released
