"""The reservation read back to the guest at the end of the call, in the guest's language.

Dates, times and money are written the way the language writes them (Babel); the words are
ours. Spanish and English are spoken; any other language gets the English read-back.
"""

import functools
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.numbers import format_currency

LANGUAGES = ("en", "es")

_WORDS = {
    "en": {
        "title": "Reservation {code}",
        "name": "Name: {name}",
        "room_type": "Room type: {room_type}",
        "arrival": "Arrival: {arrival}",
        "nights": ("{n} night", "{n} nights"),
        "nights_line": "Nights: {nights}",
        "rooms": ("{n} room", "{n} rooms"),
        "rooms_line": "Rooms: {rooms}",
        "price": "Price: {total} ({per_night} per room and night)",
        "payment": "Payment: {method}",
        "contact": "Contact: {contact}",
        "no_contact": "none given",
        "hold": "Held until {time} on {date}; if you have not arrived by then, "
        "the room goes to another guest.",
        "methods": {"credit_card": "credit card", "debit_card": "debit card", "cash": "cash"},
    },
    "es": {
        "title": "Reserva {code}",
        "name": "Nombre: {name}",
        "room_type": "Tipo de habitación: {room_type}",
        "arrival": "Llegada: {arrival}",
        "nights": ("{n} noche", "{n} noches"),
        "nights_line": "Noches: {nights}",
        "rooms": ("{n} habitación", "{n} habitaciones"),
        "rooms_line": "Habitaciones: {rooms}",
        "price": "Precio: {total} ({per_night} por habitación y noche)",
        "payment": "Pago: {method}",
        "contact": "Contacto: {contact}",
        "no_contact": "no indicado",
        "hold": "Se la guardamos hasta las {time} del {date}; si no ha llegado para entonces, "
        "la habitación pasa a otro huésped.",
        "methods": {
            "credit_card": "tarjeta de crédito",
            "debit_card": "tarjeta de débito",
            "cash": "efectivo",
        },
    },
}


@dataclass(frozen=True)
class Booking:
    code: str
    guest_name: str
    room_type_name: str
    arrival: date
    nights: int
    rooms: int
    price: Decimal
    total_price: Decimal
    currency: str
    payment_method: str
    phone: str | None
    email: str | None
    hold_until: datetime


def language_of(language: str | None) -> str:
    base = (language or "en").split("-")[0].split("_")[0].lower()
    return base if base in LANGUAGES else "en"


def readback(booking: Booking, language: str | None, tz: ZoneInfo) -> str:
    """The whole reservation, one line per item, as the agent reads it out."""
    lang = language_of(language)
    words = _WORDS[lang]

    def plural(key: str, n: int) -> str:
        one, many = words[key]
        return (one if n == 1 else many).format(n=n)

    held = booking.hold_until.astimezone(tz)
    contact = ", ".join(c for c in (booking.phone, booking.email) if c) or words["no_contact"]
    lines = [
        words["title"].format(code=booking.code),
        words["name"].format(name=booking.guest_name),
        words["room_type"].format(room_type=booking.room_type_name),
        words["arrival"].format(arrival=_day(booking.arrival, "full", lang)),
        words["nights_line"].format(nights=plural("nights", booking.nights)),
        words["rooms_line"].format(rooms=plural("rooms", booking.rooms)),
        words["price"].format(
            total=_money(booking.total_price, booking.currency, lang),
            per_night=_money(booking.price, booking.currency, lang),
        ),
        words["payment"].format(method=words["methods"][booking.payment_method]),
        words["contact"].format(contact=contact),
        words["hold"].format(
            time=_clock(held.time(), lang),
            date=_day(held.date(), "long", lang),
        ),
    ]
    return "\n".join(lines)


# Babel's formatting is most of a read-back's cost, and a hotel's bookings repeat the same
# few prices, days of the coming year and hold times: each is formatted once per language.


@functools.lru_cache(maxsize=4096)
def _day(day: date, form: str, lang: str) -> str:
    return format_date(day, form, locale=lang)


@functools.lru_cache(maxsize=1024)
def _money(amount: Decimal, currency: str, lang: str) -> str:
    return format_currency(amount, currency, locale=lang)


@functools.lru_cache(maxsize=256)
def _clock(moment: time, lang: str) -> str:
    return format_time(moment, "short", locale=lang)
