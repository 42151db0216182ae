"""The rules of notifying, without infrastructure: who is told, on which channel, when
to try again, whose birthday it is, in which language.
"""

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

LANGUAGES = ("es", "en")
STATUSES = ("queued", "sent", "failed")
CHANNELS = ("email", "sms", "fax", "phone", "log")

# The messages the procedures promise, by kind (the `kind` of a notification).
KINDS = (
    "reservation_held",
    "reservation_released",
    "reservation_cancelled",
    "complaint_received",
    "complaint_dispatched",
    "complaint_escalated",
    "complaint_reported",
    "complaint_resolved",
    "response_due",
    "item_signed_off",
    "birthday",
)

# How a complainant reached us says how they like to be answered.
PREFERENCE_BY_CONTACT_CHANNEL = {
    "email": "email",
    "web": "email",
    "im": "sms",
    "fax": "fax",
    # the call centre calls back whoever called in
    "phone": "phone",
    "ivr": "sms",
}


@dataclass(frozen=True)
class Recipient:
    """Someone to tell: a guest, a complaint's contact, a staff member, or a role nobody
    holds yet (told through the log, so the notice is never lost)."""

    key: str  # unique per recipient within one event: "guest:12", "staff:3", "contact"
    label: str  # how the log channel names them: no personal data
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str = "es"
    guest_id: int | None = None
    staff_id: int | None = None
    preferred: str | None = None


@dataclass(frozen=True)
class Channels:
    """Which channels this installation can use (configured providers)."""

    email: bool = False
    sms: bool = False
    fax: bool = False
    # a call task for an agent: only for recipients who asked to be called
    phone: bool = True


@dataclass(frozen=True)
class Route:
    channel: str
    to: str


def choose_channel(recipient: Recipient, channels: Channels) -> Route:
    """The recipient's preferred channel if it can carry the message, else email, else
    sms, else the log (which always can).

    >>> choose_channel(Recipient("guest:1", "guest 1", email="a@b.es"), Channels(email=True))
    Route(channel='email', to='a@b.es')
    >>> choose_channel(Recipient("guest:1", "guest 1", phone="+34600000000"), Channels())
    Route(channel='log', to='guest 1')
    """
    usable = {
        "email": recipient.email if channels.email else None,
        "sms": recipient.phone if channels.sms else None,
        "fax": recipient.phone if channels.fax else None,
        "phone": recipient.phone if channels.phone else None,
    }
    order = [recipient.preferred] if recipient.preferred else []
    for channel in [*order, "email", "sms"]:
        if usable.get(channel):
            return Route(channel, usable[channel])
    return Route("log", recipient.label)


def language_of(requested: str | None, default: str) -> str:
    """A language we have templates for: the one asked for, else the hotel's, else Spanish."""
    for candidate in (requested, default):
        if candidate and candidate.lower()[:2] in LANGUAGES:
            return candidate.lower()[:2]
    return LANGUAGES[0]


def retry_delay(attempts: int, base_seconds: float, cap_seconds: float = 300.0) -> timedelta:
    """Exponential backoff after the `attempts`-th failed attempt (1, 2, ...).

    >>> [retry_delay(n, 2).total_seconds() for n in (1, 2, 3)]
    [2.0, 4.0, 8.0]
    """
    return timedelta(seconds=min(base_seconds * 2 ** (attempts - 1), cap_seconds))


def birthdays_falling_on(day: date) -> list[tuple[int, int]]:
    """The (month, day) birthdays celebrated on `day`: 29 February counts as the 28th in
    years without one."""
    dates = [(day.month, day.day)]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        dates.append((2, 29))
    return dates


def greeting_day(now: datetime, greeting_time: time) -> date | None:
    """The day whose birthdays are due for greeting at `now` (the hotel's local time):
    today once the greeting time has passed, else none yet.

    >>> greeting_day(datetime(2026, 5, 17, 8, 59), time(9, 0)) is None
    True
    >>> greeting_day(datetime(2026, 5, 17, 9, 0), time(9, 0))
    datetime.date(2026, 5, 17)
    """
    return now.date() if now.time() >= greeting_time else None


@dataclass
class Draft:
    """A notification to write: what kind, to whom, with which facts for its template."""

    kind: str
    recipient: Recipient
    context: dict = field(default_factory=dict)
    ref: str | None = None


def dedupe_key(cause: str, recipient: Recipient) -> str:
    """One notification per cause (an event id, a birthday and year) and recipient."""
    return f"{cause}/{recipient.key}"
