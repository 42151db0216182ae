"""Settings from environment variables, each with a default that works on one machine.

Every service reads what it needs through these functions, so the names and defaults are
written down once. Nothing personal or secret is ever logged from here.
"""

import math
import os
from datetime import time
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_PG = "postgresql+psycopg2://postgres@127.0.0.1:5432"
SERVICES = ("guests", "reservations", "complaints", "revisits", "notifications")

# The port on which each service serves /metrics and /health (the gateway serves both on
# its HTTP port).
METRICS_PORTS = {
    "guests": 9101,
    "reservations": 9102,
    "complaints": 9103,
    "revisits": 9104,
    "notifications": 9105,
}

DEPARTMENTS = (
    "front_office",
    "housekeeping",
    "engineering",
    "food_beverage",
    "security",
    "finance",
    "customer_service",
)

# What a complaint can be about, and the department each goes to unless the desk names one.
# Hotel-wide, like the departments: the complaints service routes by it, and the revisits
# service checks the category of a complaint a guest raises on a follow-up call against it.
DEFAULT_COMPLAINT_CATEGORIES = {
    "noise": "security",
    "safety": "security",
    "cleanliness": "housekeeping",
    "maintenance": "engineering",
    "food": "food_beverage",
    "billing": "finance",
    "service": "front_office",
    "reservation": "front_office",
    "other": "customer_service",
}


def env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def amqp_uri() -> str:
    return env("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")


def redis_url() -> str:
    """Where the gateway's rate-limit buckets are kept (shared by its processes)."""
    return env("REDIS_URL", "redis://127.0.0.1:6379/0")


def database_server() -> str:
    """Where the suite's databases live, unless an owner names its own URL."""
    return env("DATABASE_SERVER", DEFAULT_PG)


def database_url(owner: str) -> str:
    """The database of one owner (a service or the gateway): `<OWNER>_DATABASE_URL`, or
    `<DATABASE_NAME_PREFIX>_<owner>` on `DATABASE_SERVER`."""
    prefix = env("DATABASE_NAME_PREFIX", "hotelcs")
    return env(f"{owner.upper()}_DATABASE_URL", f"{database_server()}/{prefix}_{owner}")


def metrics_address() -> str:
    return env("METRICS_ADDRESS", "127.0.0.1")


def metrics_port(owner: str) -> int:
    return int_setting(f"{owner.upper()}_METRICS_PORT", METRICS_PORTS[owner], minimum=0)


class SettingError(ValueError):
    """A setting whose value the suite cannot use, named with what it expects."""

    def __init__(self, name: str, value: str, expected: str):
        super().__init__(f"{name}={value!r}: expected {expected}")


def hotel_tz() -> ZoneInfo:
    raw = env("HOTEL_TZ", "UTC")
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError("HOTEL_TZ", raw, "a time zone, e.g. Europe/Madrid") from None


def hotel_time(name: str, default: str) -> time:
    """A time of day in the hotel's zone, `HH:MM` (`HH:MM:SS` taken too)."""
    raw = env(name, default)
    try:
        moment = time.fromisoformat(raw)
    except ValueError:
        moment = None
    # fromisoformat also reads "18" and "1800", which here are more likely typing slips
    if moment is None or moment.tzinfo is not None or len(raw) < 5:
        raise SettingError(name, raw, "a time of day as HH:MM, e.g. 18:00")
    return moment


def hold_time() -> time:
    """Until when a booking is held on its arrival day, unless the agent says otherwise."""
    return hotel_time("HOTEL_HOLD_TIME", "18:00")


def birthday_time() -> time:
    """From when on a guest's birthday the greeting goes out."""
    return hotel_time("HOTEL_BIRTHDAY_TIME", "09:00")


def departments() -> tuple[str, ...]:
    configured = os.environ.get("HOTEL_DEPARTMENTS")
    if configured:
        return tuple(d.strip() for d in configured.split(",") if d.strip())
    return DEPARTMENTS


def complaint_categories() -> dict[str, str]:
    """Category -> department, from `COMPLAINT_CATEGORIES` ("noise:security,food:food_beverage")
    when set, else the defaults; every department one of `departments()`."""
    configured = env("COMPLAINT_CATEGORIES", "")
    if not configured:
        routes = dict(DEFAULT_COMPLAINT_CATEGORIES)
    else:
        items = [item for item in configured.split(",") if item.strip()]
        pairs = [[part.strip() for part in item.split(":", 1)] for item in items]
        if any(len(pair) != 2 or not all(pair) for pair in pairs):
            raise SettingError(
                "COMPLAINT_CATEGORIES", configured, "category:department pairs, comma-separated"
            )
        routes = dict(pairs)
    unknown = sorted(set(routes.values()) - set(departments()))
    if unknown:
        name = "COMPLAINT_CATEGORIES" if configured else "HOTEL_DEPARTMENTS"
        raise SettingError(
            name,
            configured or env("HOTEL_DEPARTMENTS", ""),
            f"every category's department among the departments (missing: {', '.join(unknown)})",
        )
    return routes


def _number(name: str, default, parse, expected: str, minimum=None, maximum=None):
    """A setting read by `parse`, finite and within its bounds; else a `SettingError`
    saying `expected` and the bounds."""
    raw = env(name, str(default))
    try:
        value = parse(raw)
        within = (
            math.isfinite(value)
            and (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum)
        )
    except (ValueError, ArithmeticError):
        within = False
    if not within:
        bounds = f" from {minimum}" if minimum is not None else ""
        bounds += f" to {maximum}" if maximum is not None else ""
        raise SettingError(name, raw, expected + bounds)
    return value


def decimal_setting(name: str, default: str, minimum: str, maximum: str) -> Decimal:
    return _number(name, default, Decimal, "a decimal number", Decimal(minimum), Decimal(maximum))


def int_setting(name: str, default: int, minimum: int | None = None) -> int:
    return _number(name, default, int, "a whole number", minimum)


def float_setting(name: str, default: float, minimum: float | None = None) -> float:
    return _number(name, default, float, "a finite number", minimum)


def check_hotel() -> None:
    """Read the hotel-wide settings once: a value the suite cannot use stops a process as it
    starts, naming the variable, instead of failing requests (or timers) later."""
    from servicekit.phones import phone_region  # phones reads its setting through here

    hotel_tz()
    hold_time()
    birthday_time()
    complaint_categories()
    phone_region()
