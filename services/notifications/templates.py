"""The texts of the notifications: Jinja2 files under `templates/<language>/<kind>.txt`.

A template's first line is the subject, the rest the body::

    Reserva {{ code }} confirmada
    Estimado/a {{ name }}: ...
"""

from datetime import date, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from servicekit import settings

_environment = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=StrictUndefined,  # a missing fact is a bug to see, not an empty gap in a letter
    autoescape=False,  # plain text: email bodies, SMS and fax, not HTML
    keep_trailing_newline=False,
    # the templates ship with the code and change with a deploy, which restarts the
    # service: no stat of the file before every message (1.7 -> 0.5 us, measured alone)
    auto_reload=False,
)


def _when(value: datetime | str) -> str:
    """A timestamp in the hotel's own time zone, as a guest reads it."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(settings.hotel_tz()).strftime("%Y-%m-%d %H:%M")


def _day(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


# The default departments in words; a department the hotel added reads as its code.
DEPARTMENT_NAMES = {
    "es": {
        "front_office": "recepción",
        "housekeeping": "pisos",
        "engineering": "mantenimiento",
        "food_beverage": "alimentos y bebidas",
        "security": "seguridad",
        "finance": "administración",
        "customer_service": "atención al cliente",
    },
    "en": {
        "front_office": "front office",
        "housekeeping": "housekeeping",
        "engineering": "engineering",
        "food_beverage": "food and beverage",
        "security": "security",
        "finance": "finance",
        "customer_service": "customer service",
    },
}


def _department(code: str, language: str) -> str:
    return DEPARTMENT_NAMES.get(language, {}).get(code, code.replace("_", " "))


_environment.filters.update(when=_when, day=_day, department=_department)


def render(kind: str, language: str, context: dict) -> tuple[str, str]:
    """The subject and body of one kind of message in one language."""
    text = _environment.get_template(f"{language}/{kind}.txt").render(**context)
    subject, _, body = text.strip().partition("\n")
    return subject.strip(), body.strip()
