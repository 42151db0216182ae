"""The revisit rules, in plain code: when a call is due, what a missed call leads to, who
owns an item, what an agent earns, and the year's evaluation.

Nothing here touches the database or the bus, so unit tests call it directly.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from servicekit import settings

KINDS = ("post_stay", "complaint")
ITEM_KINDS = ("opinion", "request", "suggestion", "complaint")
STATUSES = ("due", "done", "unreached")
# Where an item goes when the agent did not name a department: the service centre,
# whose manager decides who handles it ("no issue without an owner").
DEFAULT_DEPARTMENT = "customer_service"
# the category a complaint raised on a call is filed under when the agent names none
COMPLAINT_ITEM_CATEGORY = "other"
CENT = Decimal("0.01")


def check_defaults() -> None:
    """What this service falls back on must be the hotel's: a department and a category."""
    if DEFAULT_DEPARTMENT not in settings.departments():
        raise settings.SettingError(
            "HOTEL_DEPARTMENTS",
            ",".join(settings.departments()),
            f"{DEFAULT_DEPARTMENT} among them (a call's items no one routed go there)",
        )
    if COMPLAINT_ITEM_CATEGORY not in settings.complaint_categories():
        raise settings.SettingError(
            "COMPLAINT_CATEGORIES",
            settings.env("COMPLAINT_CATEGORIES", ""),
            f"a category {COMPLAINT_ITEM_CATEGORY} (for complaints raised on a call unnamed)",
        )


def max_attempts() -> int:
    return settings.int_setting("REVISIT_MAX_ATTEMPTS", 3, minimum=1)


def commission_rate() -> Decimal:
    return settings.decimal_setting("HOTEL_COMMISSION_RATE", "0.05", "0", "1")


def commission_window() -> timedelta:
    return timedelta(days=settings.int_setting("HOTEL_COMMISSION_WINDOW_DAYS", 365, minimum=0))


def reminder_lead() -> timedelta:
    """How long before a promised response is due the department is reminded."""
    return timedelta(minutes=settings.int_setting("REVISIT_REMINDER_LEAD_MINUTES", 60, minimum=0))


def hotel_day(moment: datetime, tz: ZoneInfo | None = None) -> date:
    return moment.astimezone(tz or settings.hotel_tz()).date()


def post_stay_due_date(checked_out_at: datetime, tz: ZoneInfo | None = None) -> date:
    """Individual and group guests get a call the day after they leave (hotel's time)."""
    return hotel_day(checked_out_at, tz) + timedelta(days=1)


def complaint_due_date(received_at: datetime, tz: ZoneInfo | None = None) -> date:
    """Every complainant is called within three days of the complaint: the last such day."""
    return hotel_day(received_at, tz) + timedelta(days=3)


@dataclass(frozen=True)
class MissedCall:
    status: str
    due_date: date
    attempts: int


def after_missed_call(due_date: date, today: date, attempts: int, limit: int) -> MissedCall:
    """A guest not reached is tried again the next day, until `limit` calls were made.

    "The next day" is the day after the call: a revisit called late does not come back
    already overdue, and one called early (a complaint's, within its three days) comes
    back while its window is still open, not after its last day.

    >>> after_missed_call(date(2026, 11, 26), date(2026, 11, 23), 0, 3).due_date
    datetime.date(2026, 11, 24)
    """
    attempts += 1
    if attempts >= limit:
        return MissedCall("unreached", due_date, attempts)
    return MissedCall("due", today + timedelta(days=1), attempts)


def owner_of(department: str, managers: list[dict]) -> dict:
    """The department's manager answers for an item; while it has none, the role does.

    `managers` are the department's active managers (`{"id", "username"}`), oldest first:
    the first is the one who answers, so the owner does not change with every new hire.
    """
    if managers:
        first = managers[0]
        return {
            "kind": "staff",
            "id": first["id"],
            "username": first["username"],
            "role": "manager",
            "department": department,
        }
    return {
        "kind": "role",
        "id": None,
        "username": None,
        "role": "manager",
        "department": department,
    }


def may_sign_off(actor: dict, department: str) -> bool:
    """Only a manager of the item's department reports its result to the guest."""
    return actor.get("role") == "manager" and actor.get("department") == department


def commission(stays: Iterable[tuple[Decimal, Decimal]]) -> Decimal:
    """The commission on stays' charges, each at the rate it was credited at, rounded to
    the cent once, on the total.

    >>> commission([(Decimal("10.10"), Decimal("0.05")), (Decimal("10.10"), Decimal("0.05"))])
    Decimal('1.01')
    """
    earned = sum((charges * rate for charges, rate in stays), Decimal("0"))
    return earned.quantize(CENT, rounding=ROUND_HALF_UP)


def credit_window_start(checked_in_at: datetime) -> datetime:
    """A revisit counts for a stay when it was completed within the window before it."""
    return checked_in_at - commission_window()


def month_bounds(year: int, month: int | None) -> tuple[date, date]:
    """The first day of the period and the first day after it."""
    if month is None:
        return date(year, 1, 1), date(year + 1, 1, 1)
    start = date(year, month, 1)
    end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return start, end


def percent(part: int, whole: int) -> float | None:
    """A coverage in percent with one decimal; None when nothing was planned."""
    if whole == 0:
        return None
    return float((Decimal(part * 100) / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP))


@dataclass(frozen=True)
class PlannedCall:
    """One revisit as the evaluation sees it."""

    kind: str
    status: str
    planned_date: date
    due_date: date
    completed_on: date | None
    agent: str | None
    agent_id: int | None
    satisfaction: int | None
    item_kinds: tuple[str, ...] = ()


def evaluate(calls: list[PlannedCall], today: date) -> dict:
    """The annual plan's summary evaluation of the revisits planned in a period.

    - planned: revisits planned in the period; done: their calls are over (reached, or closed
      as unreached after the last attempt); reached: the guest was reached.
    - overdue: still to call, past their due date.
    - coverage_post_stay: post-stay calls that reached the guest, in percent of planned.
    - coverage_complaints: complainants reached by their due date (within three days), in
      percent of complaint revisits planned. The goal is 100.
    """
    reached = [c for c in calls if c.status == "done"]
    post_stay = [c for c in calls if c.kind == "post_stay"]
    complaints = [c for c in calls if c.kind == "complaint"]
    complaints_in_time = [
        c
        for c in complaints
        if c.status == "done" and c.completed_on and c.completed_on <= c.planned_date
    ]
    by_agent: dict[str, dict] = {}
    for call in calls:
        if call.agent is None or call.status == "due":
            continue
        row = by_agent.setdefault(
            call.agent,
            {"agent": call.agent, "agent_id": call.agent_id, "done": 0, "reached": 0, "items": 0},
        )
        row["done"] += 1
        row["reached"] += call.status == "done"
        row["items"] += len(call.item_kinds)
    item_kinds = Counter(kind for call in calls for kind in call.item_kinds)
    scores = [c.satisfaction for c in reached if c.satisfaction is not None]
    return {
        "planned": len(calls),
        "done": sum(c.status != "due" for c in calls),
        "reached": len(reached),
        "overdue": sum(c.status == "due" and c.due_date < today for c in calls),
        "coverage_post_stay": percent(sum(c.status == "done" for c in post_stay), len(post_stay)),
        "coverage_complaints": percent(len(complaints_in_time), len(complaints)),
        "coverage_complaints_goal": 100,
        "by_agent": sorted(by_agent.values(), key=lambda r: r["agent"]),
        "by_item_kind": {kind: item_kinds.get(kind, 0) for kind in ITEM_KINDS},
        "satisfaction": {
            "answers": len(scores),
            "average": (
                str((Decimal(sum(scores)) / len(scores)).quantize(CENT, ROUND_HALF_UP))
                if scores
                else None
            ),
            "distribution": {str(score): scores.count(score) for score in range(1, 6)},
        },
    }
