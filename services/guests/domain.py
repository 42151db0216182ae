"""The rules of a guest file, in plain code: phones, names, birthdays, file numbers.

Every rule raises `errors.ValidationFailed` naming the field, so whoever calls the
service (the gateway, another service) gets a 400 that says what to fix.
"""

import re
from datetime import date, timedelta

from unidecode import unidecode

from servicekit import errors

CATEGORIES = ("individual", "group", "vip")
LANGUAGES = ("es", "en")
# Three digits of daily serial: the 1000th file of one day cannot be numbered.
MAX_DAILY_SERIAL = 999
OLDEST_BIRTHDAY = date(1900, 1, 1)
# YYMMDD repeats every century; arrivals this far from today are typing mistakes anyway
ARRIVAL_WINDOW = timedelta(days=10 * 365)


def name_key(name: str) -> str:
    """The name without accents, case or extra spaces: what a search compares.

    >>> name_key("  José  MUÑOZ ")
    'jose munoz'
    """
    # transliteration can lengthen a name (one Chinese character -> a syllable)
    return re.sub(r"\s+", " ", unidecode(name)).strip().lower()[:200]


def clean_name(name: str | None, field: str = "name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise errors.ValidationFailed.on(field, "a name is required")
    name = name.strip()
    if len(name) > 200:
        raise errors.ValidationFailed.on(field, "at most 200 characters")
    return name


def check_birthday(birthday: date | None, today: date) -> date | None:
    """A birthday that can be one: not in the future, not before 1900."""
    if birthday is not None and not OLDEST_BIRTHDAY <= birthday <= today:
        raise errors.ValidationFailed.on("birthday", "not a possible birthday")
    return birthday


def check_arrival(arrival: date, today: date) -> date:
    if abs(arrival - today) > ARRIVAL_WINDOW:
        raise errors.ValidationFailed.on("arrival_date", "must be within ten years of today")
    return arrival


def check_choice(value: str, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise errors.ValidationFailed.on(field, f"one of: {', '.join(choices)}")
    return value


def category_in_group(category: str, group_id: int | None) -> str:
    """A guest's category once they join a group (or leave one), when nobody says
    otherwise: the arrivals list flags group members alike; a VIP stays a VIP.

    >>> category_in_group("individual", 7), category_in_group("vip", 7)
    ('group', 'vip')
    >>> category_in_group("group", None)
    'individual'
    """
    if group_id is not None and category == "individual":
        return "group"
    if group_id is None and category == "group":
        return "individual"
    return category


def parse_date(value: str | date | None, field: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise errors.ValidationFailed.on(field, "a date as YYYY-MM-DD") from None


def file_number(day: date, serial: int) -> str:
    """The arrival date as YYMMDD and the day's serial in three digits.

    >>> file_number(date(2004, 2, 14), 1)
    '040214001'
    """
    if not 1 <= serial <= MAX_DAILY_SERIAL:
        raise ValueError(f"serial {serial} is outside 1..{MAX_DAILY_SERIAL}")
    return f"{day:%y%m%d}{serial:03d}"


def day_full(day: date) -> errors.Conflict:
    return errors.Conflict(
        f"all {MAX_DAILY_SERIAL} file numbers of {day.isoformat()} are taken; "
        "no more guests or groups can be registered for that arrival date",
        {"arrival_date": day.isoformat()},
    )
