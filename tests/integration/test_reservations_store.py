"""The reservations store against real PostgreSQL: the database itself refuses an
overbooking, replicas of the release job never release a hold twice, the guest list keeps
the newest news, the default hotel is loaded once."""

from datetime import UTC, date, datetime, time, timedelta

import eventlet
import pytest
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicekit import errors, settings
from servicekit.events import envelope, parse
from services.reservations import seed, store
from services.reservations.models import Guest, Reservation, RoomType
from tests.support import wait_for

UTC_ZONE = settings.hotel_tz()


@pytest.fixture
def engine(clean_databases):
    engine = create_engine(settings.database_url("reservations"))
    yield engine
    engine.dispose()


GUEST = {"id": 1, "name": "Ana", "language": "en", "phone": "+34600000001", "email": None}


def _hold(session: Session, room_type: str, arrival: date, nights: int = 1) -> dict:
    request = {
        "room_type": room_type,
        "arrival": arrival,
        "nights": nights,
        "rooms": 1,
        "payment_method": "cash",
    }
    held = store.book(session, request, GUEST, None, datetime.now(UTC), UTC_ZONE, time(18))
    session.commit()
    return held


def test_the_database_refuses_more_rooms_than_a_night_has(engine):
    arrival = date.today() + timedelta(days=5)
    with Session(engine) as session:
        store.create_room_type(
            session,
            {"code": "suite", "name": "Suite", "price": "300", "currency": "EUR", "rooms": 2},
        )
        session.commit()
        _hold(session, "suite", arrival)
        _hold(session, "suite", arrival)
        with pytest.raises(errors.NoAvailability):
            _hold(session, "suite", arrival)
        session.rollback()
    # whatever code would try: the CHECK constraint stops it
    with engine.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(text("update room_nights set booked = booked + 1"))


def test_replicas_of_the_release_job_release_each_hold_once(engine):
    arrival = date.today()
    with Session(engine) as session:
        store.create_room_type(
            session,
            {"code": "double", "name": "Double", "price": "100", "currency": "EUR", "rooms": 8},
        )
        session.commit()
        for _ in range(8):
            _hold(session, "double", arrival, nights=2)
        session.execute(text("update reservations set hold_until = now() - interval '1 minute'"))
        session.commit()

    def replica(_):
        with Session(engine) as session:
            return store.release_expired_holds(session, datetime.now(UTC))

    released = list(eventlet.GreenPool(3).imap(replica, range(3)))
    assert sum(released) == 8
    with Session(engine) as session:
        statuses = session.scalars(select(Reservation.status)).all()
        assert statuses == ["released"] * 8
        assert session.scalar(text("select max(booked) from room_nights")) == 0
        events = session.scalars(
            text("select envelope from outbox where type = 'reservation_released'")
        ).all()
        assert len(events) == 8
        # the guest is told where and in the language the booking said
        assert {
            (e["data"]["contact"]["phone"], e["data"]["contact"]["email"], e["data"]["language"])
            for e in events
        } == {(GUEST["phone"], GUEST["email"], GUEST["language"])}


def test_the_timer_releases_holds_by_itself(engine, start_services, monkeypatch):
    from services.reservations.service import ReservationsService

    monkeypatch.setenv("HOTEL_HOLD_RELEASE_SECONDS", "0.5")
    with Session(engine) as session:
        store.create_room_type(
            session,
            {"code": "single", "name": "Single", "price": "90", "currency": "EUR", "rooms": 1},
        )
        session.commit()
        held = _hold(session, "single", date.today())
        session.execute(text("update reservations set hold_until = now()"))
        session.commit()
    start_services(ReservationsService)

    def released():
        with Session(engine) as session:
            return session.get(Reservation, held["id"]).status == "released"

    wait_for(released)
    with Session(engine) as session:
        assert session.scalar(text("select booked from room_nights")) == 0
        assert _hold(session, "single", date.today())["status"] == "held"


def _guest_event(event_type: str, name: str, occurred_at: datetime):
    body = envelope(
        event_type,
        {
            "guest_id": 42,
            "file_number": "261124001",
            "category": "individual",
            "name": name,
            "phone": "+34600000042",
            "email": None,
            "language": "es",
            "arrival_date": "2026-11-24",
        },
    )
    body["occurred_at"] = occurred_at.isoformat()
    return parse(body)


def test_the_guest_list_keeps_the_newest_news(engine):
    now = datetime.now(UTC)
    with Session(engine) as session:
        store.remember_guest(session, _guest_event("guest_registered", "Ana", now))
        store.remember_guest(
            session, _guest_event("guest_updated", "Ana María", now + timedelta(1))
        )
        # the registration delivered again, late: it changes nothing
        store.remember_guest(session, _guest_event("guest_registered", "Ana", now))
        session.commit()
        assert session.get(Guest, 42).name == "Ana María"
        assert store.known_guest(session, 42)["language"] == "es"
        assert store.known_guest(session, 43) is None


def test_a_booking_reads_its_guest_from_the_list_with_the_room_type(engine):
    request = {
        "guest_id": 42,
        "room_type": "suite",
        "arrival": date.today() + timedelta(days=3),
        "nights": 1,
        "rooms": 1,
        "payment_method": "cash",
    }
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with Session(engine) as session:
        store.create_room_type(
            session,
            {"code": "suite", "name": "Suite", "price": "300", "currency": "EUR", "rooms": 2},
        )
        session.commit()

        def book(request):
            return store.book(session, request, None, None, datetime.now(UTC), UTC_ZONE, time(18))

        # not on the list yet: the service asks the guests service and books again
        with pytest.raises(store.GuestNotOnFile):
            book(request)
        session.rollback()
        # a room type that does not exist either: the guest is still what is asked first
        with pytest.raises(store.GuestNotOnFile):
            book({**request, "room_type": "palace"})
        session.rollback()

        store.remember_guest(session, _guest_event("guest_registered", "Ana", datetime.now(UTC)))
        session.commit()
        statements.clear()
        held = book(request)
        session.commit()
        assert (held["guest_name"], held["language"]) == ("Ana", "es")
        assert held["contact"] == {"phone": "+34600000042", "email": None}
        # the guest and the room type in one read, the stay and the reservation in one
        # statement (its event goes with the COMMIT)
        assert len(statements) == 2, statements
        with pytest.raises(errors.ValidationFailed) as bad:
            book({**request, "room_type": "palace"})
        assert "room_type" in bad.value.details


def test_the_default_hotel_is_loaded_once(engine):
    with Session(engine) as session:
        seed.load_defaults(session)
        seed.load_defaults(session)
        session.commit()
        listed = store.room_types(session)
        types = listed["items"]
        assert [t["code"] for t in types] == ["suite", "deluxe", "double", "single"]
        assert listed["next"] is None
        assert session.scalar(select(func.count()).select_from(RoomType)) == 4
        assert {t["currency"] for t in types} == {"EUR"}
        # a page at a time, highest price first, as every list
        first = store.room_types(session, limit=3)
        rest = store.room_types(session, limit=3, cursor=first["next"])
        assert first["items"] + rest["items"] == types and rest["next"] is None
