"""The reservations service's entrypoints: the phone-booking script, as RPC.

Arguments and answers are JSON-ready (dates and timestamps as ISO strings, money as decimal
strings). The rules live in `domain`, the database work in `store`.
"""

import logging
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import eventlet
from nameko.timer import Timer
from sqlalchemy.exc import DBAPIError

from servicekit import errors, settings
from servicekit.bus import subscribe
from servicekit.checked_settings import CheckedSettings
from servicekit.cpu_share import CpuShare
from servicekit.database import Database, translate_unavailable
from servicekit.events import Event
from servicekit.heap import SteadyHeap
from servicekit.idempotency import handle_each_once, run_command_once
from servicekit.metrics import JOB_RUNS, HealthRpc, Metrics, TurnLag
from servicekit.outbox import OutboxRelay
from servicekit.pages import DEFAULT_LIMIT, decode_cursor, encode_cursor
from servicekit.rpc import ServiceRpc, rpc
from services.reservations import domain, store
from services.reservations.models import KIT, STATUSES

log = logging.getLogger(__name__)

# deadlock, serialization failure, lock not available: try the whole command again
RETRYABLE = {"40P01", "40001", "55P03"}
ATTEMPTS = 4
GUESTS_TIMEOUT = 3.0


class HoldReleaseTimer(Timer):
    """Looks for holds past their time every `HOTEL_HOLD_RELEASE_SECONDS` (default 15), read
    when the service starts rather than when the code is imported."""

    def __init__(self, **kwargs):
        super().__init__(interval=None, **kwargs)

    def setup(self):
        self.interval = settings.float_setting("HOTEL_HOLD_RELEASE_SECONDS", 15.0, minimum=0.1)
        super().setup()


class ReservationsService(HealthRpc):
    name = "reservations"

    db = Database("reservations")
    relay = OutboxRelay("reservations", KIT)
    heap = SteadyHeap()
    turn_lag = TurnLag()
    cpu_share = CpuShare()
    settings_checked = CheckedSettings()
    metrics = Metrics("reservations")
    guests = ServiceRpc("guests", expiration=GUESTS_TIMEOUT)

    # --- room types --------------------------------------------------------------------

    @rpc(expected_exceptions=errors.EXPECTED)
    def create_room_type(self, data: dict, idempotency_key: str | None = None) -> dict:
        """Example: `{"code": "deluxe", "name": "Deluxe", "price": "180.00",
        "currency": "EUR", "rooms": 12}` -> the room type."""
        return self._command(
            "create_room_type",
            idempotency_key,
            lambda: store.create_room_type(self.db, _room_type_fields(data)),
        )

    @rpc(expected_exceptions=errors.EXPECTED)
    def update_room_type(self, code: str, changes: dict) -> dict:
        """Example: `("deluxe", {"price": "190.00", "rooms": 14})` -> the room type."""
        today = _today()
        return self._command(
            "update_room_type",
            None,
            lambda: store.update_room_type(self.db, code, _room_type_fields(changes), today),
        )

    @rpc(expected_exceptions=errors.EXPECTED)
    def list_room_types(self, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> dict:
        """Room types, highest price first (the order an agent offers them in):
        `{"items": [{"code": "suite", "price": "320.00", ...}], "next": null}`."""
        return store.room_types(self.db, limit, cursor)

    @rpc(expected_exceptions=errors.EXPECTED)
    def availability(self, arrival: str, nights: int, rooms: int = 1) -> dict:
        """Example: `("2026-12-24", 3, 1)` -> `{"options": [{"room_type": "suite",
        "available": 2, "total_price": "960.00", "bookable": true, ...}]}`."""
        day = _date(arrival, "arrival")
        domain.check_stay(day, nights, rooms, _today())
        return {"options": store.availability(self.db, day, nights, rooms)}

    # --- reservations --------------------------------------------------------------------

    @rpc(expected_exceptions=errors.EXPECTED)
    def create_reservation(
        self, data: dict, actor: dict | None = None, idempotency_key: str | None = None
    ) -> dict:
        """Hold rooms. Example: `{"guest_id": 7, "room_type": "deluxe", "arrival":
        "2026-12-24", "nights": 3, "rooms": 1, "payment_method": "cash", "contact":
        {"phone": "+34600111222"}, "hold_until": "2026-12-24T20:00:00+01:00"}` -> the
        reservation, `status` "held", with `code`, `total_price` and `readback`."""
        request = {
            **data,
            "arrival": _date(data.get("arrival"), "arrival"),
            "hold_until": _moment(data.get("hold_until"), "hold_until"),
        }
        for field in ("nights", "rooms"):
            if not isinstance(request.get(field), int) or isinstance(request[field], bool):
                raise errors.ValidationFailed.on(field, "a whole number")
        guest_id = request.get("guest_id")
        if not isinstance(guest_id, int) or isinstance(guest_id, bool) or guest_id < 1:
            raise errors.ValidationFailed.on("guest_id", "a guest's id")
        tz = settings.hotel_tz()
        hold_time = settings.hold_time()

        def book(guest: dict | None) -> dict:
            return self._command(
                "create_reservation",
                idempotency_key,
                lambda: store.book(self.db, request, guest, actor, _now(), tz, hold_time),
            )

        try:
            # the guest from this service's own list, read with the room type
            return book(None)
        except store.GuestNotOnFile:
            # the event announcing them has not arrived yet
            return book(self._guest_from_guests_service(guest_id))

    @rpc(expected_exceptions=errors.EXPECTED)
    def get_reservation(self, reservation_id: int) -> dict:
        return store.reservation_dict(store.get_reservation(self.db, reservation_id))

    @rpc(expected_exceptions=errors.EXPECTED)
    def list_reservations(
        self,
        guest_id: int | None = None,
        status: str | None = None,
        arrival: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        code: str | None = None,
    ) -> dict:
        """Newest first: `{"items": [...], "next": cursor | null}`; `code` finds the booking
        a guest reads out on the phone, whatever the letter case."""
        if status is not None and status not in STATUSES:
            raise errors.ValidationFailed.on("status", "one of " + ", ".join(STATUSES))
        items, last = store.list_reservations(
            self.db,
            guest_id,
            status,
            _date(arrival, "arrival") if arrival else None,
            code.upper() if code else None,
            limit,
            decode_cursor(cursor, int),
        )
        return {"items": items, "next": encode_cursor(last) if last else None}

    @rpc(expected_exceptions=errors.EXPECTED)
    def check_in(self, reservation_id: int, at: str | None = None, actor: dict | None = None):
        """The guest arrived: held -> in_house. `at` defaults to now; not before the
        arrival day (409 INVALID_STATE)."""
        moment = _past_or_now(at)
        tz = settings.hotel_tz()
        return self._command(
            "check_in", None, lambda: store.check_in(self.db, reservation_id, moment, tz)
        )

    @rpc(expected_exceptions=errors.EXPECTED)
    def check_out(
        self,
        reservation_id: int,
        at: str | None = None,
        charges: str | None = None,
        actor: dict | None = None,
    ):
        """The guest left: in_house -> checked_out, with what they consumed (`"84.50"`)."""
        moment = _past_or_now(at)
        spent = _money(charges, "charges")
        tz = settings.hotel_tz()
        return self._command(
            "check_out",
            None,
            lambda: store.check_out(self.db, reservation_id, moment, spent, tz),
        )

    @rpc(expected_exceptions=errors.EXPECTED)
    def cancel(self, reservation_id: int, actor: dict | None = None):
        """held -> cancelled; the rooms are free again."""

        def execute():
            reservation = store.get_reservation(self.db, reservation_id, lock=True)
            return store.end(self.db, reservation, "cancel", _now())

        return self._command("cancel", None, execute)

    # --- the hold-release job ------------------------------------------------------------

    @HoldReleaseTimer.decorator
    def release_holds(self):
        """Every few seconds: holds past their time become `released` (no-shows)."""
        self.run_job("hold-release", {})

    @rpc(expected_exceptions=errors.EXPECTED)
    def run_job(self, job: str, options: dict) -> dict:
        """`("hold-release", {})` -> `{"job": "hold-release", "released": 2}`."""
        if job != "hold-release":
            raise errors.NotFound(f"the reservations service has no job {job}")
        released = self._retrying(lambda: store.release_expired_holds(self.db, _now()))
        if released:
            JOB_RUNS.labels("reservations", job).inc(released)
            log.info("holds released", extra={"released": released})
        return {"job": job, "released": released}

    # --- guests, from the guests service's events ----------------------------------------

    @subscribe("guest_registered")
    def on_guest_registered(self, events: list[Event]):
        self._remember_guest(events)

    @subscribe("guest_updated")
    def on_guest_updated(self, events: list[Event]):
        self._remember_guest(events)

    def _remember_guest(self, events: list[Event]) -> None:
        handle_each_once(self.db, KIT, events, store.remember_guest)

    def _guest_from_guests_service(self, guest_id: int) -> dict:
        # called outside any transaction: none is held open while the guests service answers
        try:
            with eventlet.Timeout(GUESTS_TIMEOUT):
                found = self.guests.get_guest(guest_id)
        except errors.NotFound:
            raise errors.ValidationFailed.on("guest_id", f"no guest {guest_id}") from None
        except (Exception, eventlet.Timeout):
            log.warning("the guests service could not confirm a guest", exc_info=True)
            raise errors.Unavailable("the guests service cannot confirm the guest now") from None
        return {key: found.get(key) for key in store.GUEST_KEYS}

    # --- how every command runs ------------------------------------------------------------

    def _command(self, command: str, key: str | None, execute: Callable[[], Any]) -> Any:
        return self._retrying(
            lambda: run_command_once(self.db, KIT, command, key, execute), command
        )

    def _retrying(self, work: Callable[[], Any], command: str = "job") -> Any:
        """Run `work`, again if PostgreSQL broke a lock cycle or a serialization conflict
        or the reservation code drawn was taken; a lost database is the contract's 503,
        never a 500."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return work()
            except store.CodeTaken:
                self.db.rollback()
                if attempt == ATTEMPTS:
                    raise errors.Conflict(
                        "could not find a free reservation code; try again"
                    ) from None
            except DBAPIError as exc:
                self.db.rollback()
                if getattr(exc.orig, "pgcode", None) not in RETRYABLE:
                    raise translate_unavailable(exc) from exc
                if attempt == ATTEMPTS:
                    raise errors.Conflict(f"{command}: too busy right now; try again") from None
                eventlet.sleep(random.uniform(0.01, 0.05) * attempt)
            except BaseException:
                self.db.rollback()
                raise
        raise AssertionError("unreachable")


def _now() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    return domain.hotel_today(_now(), settings.hotel_tz())


def _date(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise errors.ValidationFailed.on(field, "a date, YYYY-MM-DD") from None


def _moment(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise errors.ValidationFailed.on(field, "a timestamp, ISO 8601 with offset") from None
    if moment.tzinfo is None:
        raise errors.ValidationFailed.on(field, "needs a time zone offset")
    if not 2000 <= moment.year <= 2200:
        raise errors.ValidationFailed.on(field, "not a moment of this hotel's life")
    return moment


def _past_or_now(value: str | None) -> datetime:
    """When something happened: now, or a moment already past (entered afterwards)."""
    moment = _moment(value, "at")
    if moment is None:
        return _now()
    if moment > _now() + timedelta(minutes=5):
        raise errors.ValidationFailed.on("at", "is in the future")
    return moment


def _money(value: Any, field: str) -> Decimal:
    if value is None:
        return Decimal("0.00")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise errors.ValidationFailed.on(field, "an amount, e.g. 84.50") from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e10"):
        raise errors.ValidationFailed.on(field, "an amount from 0 to 9999999999.99")
    return amount.quantize(Decimal("0.01"))


def _room_type_fields(data: dict) -> dict:
    """Check what the gateway's schema checks too, for callers that come straight here."""
    fields = dict(data)
    if "price" in fields:
        fields["price"] = str(_money(fields["price"], "price"))
    if "rooms" in fields and (
        not isinstance(fields["rooms"], int)
        or isinstance(fields["rooms"], bool)
        or fields["rooms"] < 0
    ):
        raise errors.ValidationFailed.on("rooms", "a whole number, 0 or more")
    return fields
