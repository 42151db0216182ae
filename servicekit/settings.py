"""Settings from environment variables, each with a default that works on one machine.

Every service reads what it needs through these functions, so the names and defaults are
written down once. Nothing personal or secret is ever logged from here.
"""

import os
from datetime import time
from decimal import Decimal
from zoneinfo import ZoneInfo

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
    return int(env(f"{owner.upper()}_METRICS_PORT", str(METRICS_PORTS[owner])))


def hotel_tz() -> ZoneInfo:
    return ZoneInfo(env("HOTEL_TZ", "UTC"))


def hotel_time(name: str, default: str) -> time:
    hours, minutes = env(name, default).split(":")
    return time(int(hours), int(minutes))


def departments() -> tuple[str, ...]:
    configured = os.environ.get("HOTEL_DEPARTMENTS")
    if configured:
        return tuple(d.strip() for d in configured.split(",") if d.strip())
    return DEPARTMENTS


def complaint_categories() -> dict[str, str]:
    """Category -> department, from `COMPLAINT_CATEGORIES` ("noise:security,food:food_beverage")
    when set, else the defaults."""
    configured = env("COMPLAINT_CATEGORIES", "")
    if not configured:
        return dict(DEFAULT_COMPLAINT_CATEGORIES)
    pairs = (item.split(":", 1) for item in configured.split(",") if ":" in item)
    return {category.strip(): department.strip() for category, department in pairs}


def decimal_setting(name: str, default: str) -> Decimal:
    return Decimal(env(name, default))


def int_setting(name: str, default: int) -> int:
    return int(env(name, str(default)))


def float_setting(name: str, default: float) -> float:
    return float(env(name, str(default)))
