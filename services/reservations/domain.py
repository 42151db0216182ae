"""The phone-booking rules, in plain code: stays, holds, codes, prices, availability, states.

Nothing here touches the database or the bus, so unit tests call it as it is.
"""

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from servicekit import errors

# A stay longer than this is a typo, not a booking (the agent can split a long stay).
MAX_NIGHTS = 60
MAX_ROOMS = 50
# How far ahead the hotel takes bookings.
MAX_DAYS_AHEAD = 730

# Letters and digits nobody confuses on the phone or on paper: no 0/O, 1/I/L, 5/S, 8/B.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXYZ234679"
CODE_LENGTH = 6

# action -> (the states it may start from, the state it leads to)
TRANSITIONS = {
    "check_in": (("held",), "in_house"),
    "check_out": (("in_house",), "checked_out"),
    "cancel": (("held",), "cancelled"),
    "release": (("held",), "released"),
}


def hotel_today(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


def stay_nights(arrival: date, nights: int) -> list[date]:
    """The nights of a stay, in order (each night named by the date it starts)."""
    return [arrival + timedelta(days=n) for n in range(nights)]


def check_stay(arrival: date, nights: int, rooms: int, today: date) -> None:
    """Raise `ValidationFailed` naming the first field that makes no sense."""
    if arrival < today:
        raise errors.ValidationFailed.on("arrival", f"is in the past (today is {today})")
    if arrival > today + timedelta(days=MAX_DAYS_AHEAD):
        raise errors.ValidationFailed.on("arrival", f"at most {MAX_DAYS_AHEAD} days ahead")
    if not 1 <= nights <= MAX_NIGHTS:
        raise errors.ValidationFailed.on("nights", f"must be 1 to {MAX_NIGHTS}")
    if not 1 <= rooms <= MAX_ROOMS:
        raise errors.ValidationFailed.on("rooms", f"must be 1 to {MAX_ROOMS}")


def hold_until(
    arrival: date, asked: datetime | None, now: datetime, tz: ZoneInfo, hold_time: time
) -> datetime:
    """Until when the rooms wait for the guest, in the hotel's time zone.

    By default the arrival day at `hold_time`; if that has already passed (a booking for
    tonight made in the evening), the end of the arrival day. An agent may choose another
    moment, as long as it is still to come and within the arrival day.
    """
    day_starts = datetime.combine(arrival, time(0), tz)
    day_ends = datetime.combine(arrival + timedelta(days=1), time(0), tz)
    if asked is None:
        default = datetime.combine(arrival, hold_time, tz)
        return default if default > now else day_ends
    if asked.tzinfo is None:
        raise errors.ValidationFailed.on("hold_until", "needs a time zone offset")
    asked = asked.astimezone(tz)
    if asked <= now:
        raise errors.ValidationFailed.on("hold_until", "is in the past")
    if asked > day_ends:
        raise errors.ValidationFailed.on(
            "hold_until", f"must fall within the arrival day ({arrival})"
        )
    if asked < day_starts:
        raise errors.ValidationFailed.on("hold_until", f"is before the arrival day ({arrival})")
    return asked


def new_code() -> str:
    """A reservation code to read out on the phone, e.g. `K7QX3M`."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def total_price(price: Decimal, nights: int, rooms: int) -> Decimal:
    return (price * nights * rooms).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class Offer:
    code: str
    name: str
    price: Decimal
    currency: str
    rooms: int


def options(
    offers: list[Offer], booked: dict[tuple[str, date], int], nights: list[date], rooms: int
) -> list[dict]:
    """What an agent offers, highest price first: per room type, the fewest rooms free over
    the nights (`booked` maps (room type, night) to rooms taken), the stay's price, and
    whether `rooms` of them fit."""
    answer = []
    for offer in sorted(offers, key=lambda o: (-o.price, o.code)):
        free = min(offer.rooms - booked.get((offer.code, night), 0) for night in nights)
        available = max(free, 0)
        answer.append(
            {
                "room_type": offer.code,
                "name": offer.name,
                "price": str(offer.price),
                "currency": offer.currency,
                "available": available,
                "total_price": str(total_price(offer.price, len(nights), rooms)),
                "bookable": available >= rooms,
            }
        )
    return answer


def next_status(current: str, action: str) -> str:
    """The state `action` leads to from `current`; `InvalidState` if it cannot."""
    sources, target = TRANSITIONS[action]
    if current not in sources:
        raise errors.InvalidState(
            f"a {current} reservation cannot be {target.replace('_', ' ')}",
            {"status": current},
        )
    return target


def nights_to_free_at_check_out(arrival: date, nights: int, departure: date) -> list[date]:
    """Nights of the stay on or after the day the guest left: an early departure frees them."""
    return [night for night in stay_nights(arrival, nights) if night >= departure]
