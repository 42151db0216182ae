"""The complaint office's rules, in plain code: intake, routing, the same-day due time,
which action may follow which, and who owns a complaint at each step.

A complaint is recorded at once from any channel, investigated and verified the same day,
dispatched to the department that must act, and escalated to that department's director
when the day ends unresolved. Every step is a line of the guest processing form.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from servicekit import errors, settings
from servicekit.phones import normalise_phone

CHANNELS = ("phone", "email", "fax", "im", "web", "walk_in", "ivr", "visit", "revisit")

OPEN, INVESTIGATING, VERIFIED, DISPATCHED, REPORTED, ESCALATED, RESOLVED = (
    "open",
    "investigating",
    "verified",
    "dispatched",
    "reported",
    "escalated",
    "resolved",
)
STATUSES = (OPEN, INVESTIGATING, VERIFIED, DISPATCHED, REPORTED, ESCALATED, RESOLVED)
UNRESOLVED = tuple(s for s in STATUSES if s != RESOLVED)
# A dispatch order waits in its department's queue until the department reports back;
# it is closed unanswered when the complaint is resolved first.
ORDER_STATUSES = ("open", "reported", "closed")

# The actions staff take on a complaint (POST /complaints/{id}/actions) and the statuses
# each may follow. `receive` (the intake) and `report` (a department's answer on its
# dispatch order) are lines of the form too, but not actions one asks for.
ACTIONS = ("investigate", "verify", "dispatch", "escalate", "resolve", "note")
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "investigate": (OPEN, REPORTED, ESCALATED),
    "verify": (INVESTIGATING,),
    # one open order at a time: a dispatched complaint waits for the department's report,
    # unless it is escalated first (a dispatch then replaces the order still open)
    "dispatch": (OPEN, INVESTIGATING, VERIFIED, REPORTED, ESCALATED),
    "escalate": (OPEN, INVESTIGATING, VERIFIED, DISPATCHED, REPORTED),
    "resolve": UNRESOLVED,
    "note": UNRESOLVED,
}
STATUS_AFTER = {
    "investigate": INVESTIGATING,
    "verify": VERIFIED,
    "dispatch": DISPATCHED,
    "escalate": ESCALATED,
    "resolve": RESOLVED,
}

DESCRIPTION_MAX = 4000
SUMMARY_MAX = 200
# A clock a little ahead of ours is not a complaint from the future.
CLOCK_SKEW = timedelta(seconds=60)
# A complaint entered after it was taken (a letter, a weekend's paper forms) is at most this
# old: anything older is a typing mistake, and a year like 0001 has no end of day to be due at.
OLDEST_LATE_ENTRY = timedelta(days=366)


@dataclass(frozen=True)
class Intake:
    """A complaint as received, checked and routed, ready to be recorded."""

    guest_id: int | None
    contact: dict | None
    channel: str
    category: str
    description: str
    department: str
    received_at: datetime
    due_at: datetime


def check_intake(data: dict[str, Any], now: datetime) -> Intake:
    """Check a complaint as the desk takes it; a `ValidationFailed` naming every bad field.

    >>> from datetime import UTC
    >>> now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    >>> check_intake({"guest_id": 7, "channel": "phone", "category": "noise",
    ...     "description": "Loud party next door"}, now).department
    'security'
    """
    problems: dict[str, list[str]] = {}
    guest_id = data.get("guest_id")
    contact = _contact(data.get("contact"), problems)
    if guest_id is not None and (
        not isinstance(guest_id, int) or isinstance(guest_id, bool) or guest_id < 1
    ):
        problems["guest_id"] = ["must be a guest's id"]
    elif guest_id is None and contact is None and "contact" not in problems:
        message = "a complaint needs a guest_id or a contact"
        problems["guest_id"] = [message]
        problems["contact"] = [message]
    channel = data.get("channel")
    if channel not in CHANNELS:
        problems["channel"] = [f"must be one of: {', '.join(CHANNELS)}"]
    routes = settings.complaint_categories()
    category = data.get("category")
    if category not in routes:
        problems["category"] = [f"must be one of: {', '.join(sorted(routes))}"]
    description = data.get("description")
    description = description.strip() if isinstance(description, str) else ""
    if not description:
        problems["description"] = ["must not be empty"]
    elif len(description) > DESCRIPTION_MAX:
        problems["description"] = [f"at most {DESCRIPTION_MAX} characters"]
    department = data.get("department") or routes.get(category)
    if data.get("department") and department not in settings.departments():
        problems["department"] = [f"must be one of: {', '.join(settings.departments())}"]
    received_at = _received_at(data.get("received_at"), now, problems)
    if problems:
        raise errors.ValidationFailed("the complaint is not valid", problems)
    return Intake(
        guest_id=guest_id,
        contact=contact,
        channel=channel,
        category=category,
        description=description,
        department=department,
        received_at=received_at,
        due_at=due_at(received_at),
    )


def _contact(value: Any, problems: dict) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not str(value.get("name") or "").strip():
        problems["contact"] = ["a contact needs at least a name"]
        return None
    phone = value.get("phone") or None
    if phone is not None:
        # as the guests' files keep it, so the caller is recognised by it, and called back
        try:
            phone = normalise_phone(phone, "contact.phone")
        except errors.ValidationFailed as refused:
            problems.update(refused.details)
    return {
        "name": str(value["name"]).strip(),
        "phone": phone,
        "email": value.get("email") or None,
    }


def _received_at(value: Any, now: datetime, problems: dict) -> datetime:
    if value is None:
        return now
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except (TypeError, ValueError):
        problems["received_at"] = ["must be an ISO 8601 timestamp"]
        return now
    if at.tzinfo is None:
        at = at.replace(tzinfo=settings.hotel_tz())
    if at > now + CLOCK_SKEW:
        problems["received_at"] = ["must not be in the future"]
        return now
    if at < now - OLDEST_LATE_ENTRY:
        problems["received_at"] = ["must be within the last year"]
        return now
    return min(at, now)


def due_at(received_at: datetime) -> datetime:
    """The end of the hotel's day on which the complaint came in: same-day handling."""
    tz = settings.hotel_tz()
    day = received_at.astimezone(tz).date()
    return datetime.combine(day, time(23, 59, 59), tzinfo=tz)


def is_overdue(status: str, due: datetime, now: datetime) -> bool:
    return status != RESOLVED and due < now


def check_action(action: str, status: str, note: str | None, result: str | None) -> None:
    """Refuse an action the complaint's state does not allow (INVALID_STATE), or one that
    lacks what it must say (a note needs its text: VALIDATION_ERROR)."""
    if action not in ACTIONS:
        raise errors.ValidationFailed.on("action", f"must be one of: {', '.join(ACTIONS)}")
    if action == "note" and not (note or "").strip():
        raise errors.ValidationFailed.on("note", "a note needs its text")
    if status not in ALLOWED_FROM[action]:
        raise errors.InvalidState(
            f"a {status} complaint cannot be given '{action}'",
            {"status": status, "action": action},
        )
    if action == "resolve" and not (result or "").strip():
        raise errors.InvalidState(
            "a complaint is resolved with its result: say what was done",
            {"status": status, "action": action},
        )


# --- owners: nobody's issue is nobody's ------------------------------------------------


def staff_owner(staff: dict) -> dict:
    return {
        "kind": "staff",
        "id": staff["id"],
        "username": staff["username"],
        "role": staff["role"],
        "department": staff.get("department"),
    }


def role_owner(role: str, department: str) -> dict:
    """A role stands in as the owner while no staff member holds it."""
    return {"kind": "role", "id": None, "username": None, "role": role, "department": department}


def owner_of(role: str, department: str, holder: dict | None) -> dict:
    return staff_owner(holder) if holder else role_owner(role, department)


SYSTEM = {"kind": "system", "id": None, "username": None, "role": "system", "department": None}


def by(actor: dict | None) -> dict:
    """Who wrote a line of the form: the staff member from the token, or the system."""
    return staff_owner(actor) if actor and actor.get("id") is not None else dict(SYSTEM)


def summary(description: str) -> str:
    return description if len(description) <= SUMMARY_MAX else description[: SUMMARY_MAX - 1] + "…"


def as_iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None
