from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.revisits import domain
from services.revisits.domain import PlannedCall

MADRID = ZoneInfo("Europe/Madrid")


def test_post_stay_call_is_due_the_day_after_check_out_in_the_hotels_time():
    # 23:30 UTC on the 23rd is already the 24th in Madrid: the call is due on the 25th
    assert domain.post_stay_due_date(datetime(2026, 11, 23, 23, 30, tzinfo=UTC), MADRID) == date(
        2026, 11, 25
    )
    assert domain.post_stay_due_date(datetime(2026, 11, 23, 10, 0, tzinfo=UTC), MADRID) == date(
        2026, 11, 24
    )
    assert domain.post_stay_due_date(datetime(2026, 12, 31, 12, tzinfo=UTC), UTC) == date(
        2027, 1, 1
    )


def test_complaint_call_is_due_within_three_days_of_receipt():
    received = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert domain.complaint_due_date(received, UTC) == date(2026, 11, 26)


def test_a_missed_call_is_tried_again_the_next_day_until_the_last_attempt():
    due = date(2026, 11, 24)
    first = domain.after_missed_call(due, due, attempts=0, limit=3)
    assert first == domain.MissedCall("due", date(2026, 11, 25), 1)
    second = domain.after_missed_call(first.due_date, first.due_date, first.attempts, 3)
    assert second == domain.MissedCall("due", date(2026, 11, 26), 2)
    third = domain.after_missed_call(second.due_date, second.due_date, second.attempts, 3)
    assert third == domain.MissedCall("unreached", date(2026, 11, 26), 3)


def test_a_late_missed_call_is_tried_the_day_after_the_call_not_in_the_past():
    late = domain.after_missed_call(date(2026, 11, 20), date(2026, 11, 24), 0, 3)
    assert late.due_date == date(2026, 11, 25)


def test_an_early_missed_call_is_tried_the_day_after_the_call_within_its_window():
    # a complaint's revisit, due by the 26th, called on the 23rd
    early = domain.after_missed_call(date(2026, 11, 26), date(2026, 11, 23), 0, 3)
    assert early == domain.MissedCall("due", date(2026, 11, 24), 1)


def test_an_item_is_owned_by_the_departments_first_manager_or_else_by_the_role():
    managers = [{"id": 4, "username": "lucia"}, {"id": 9, "username": "marta"}]
    assert domain.owner_of("housekeeping", managers) == {
        "kind": "staff",
        "id": 4,
        "username": "lucia",
        "role": "manager",
        "department": "housekeeping",
    }
    role = domain.owner_of("engineering", [])
    assert role["kind"] == "role" and role["role"] == "manager"
    assert role["department"] == "engineering"


@pytest.mark.parametrize(
    "actor, allowed",
    [
        ({"role": "manager", "department": "housekeeping"}, True),
        ({"role": "manager", "department": "engineering"}, False),
        ({"role": "director", "department": "housekeeping"}, False),
        ({"role": "agent", "department": None}, False),
        ({"role": "admin", "department": None}, False),
    ],
)
def test_only_a_manager_of_the_items_department_signs_it_off(actor, allowed):
    assert domain.may_sign_off(actor, "housekeeping") is allowed


def test_commission_is_the_rate_of_the_consumption_rounded_to_cents():
    assert domain.commission([(Decimal("333.33"), Decimal("0.05"))]) == Decimal("16.67")
    assert domain.commission([(Decimal("0"), Decimal("0.05"))]) == Decimal("0.00")


def test_periods_of_a_year_and_of_a_month():
    assert domain.month_bounds(2026, None) == (date(2026, 1, 1), date(2027, 1, 1))
    assert domain.month_bounds(2026, 12) == (date(2026, 12, 1), date(2027, 1, 1))
    assert domain.month_bounds(2026, 2) == (date(2026, 2, 1), date(2026, 3, 1))


def call(kind, status, planned, completed=None, agent=None, score=None, *items, due=None):
    return PlannedCall(
        kind=kind,
        status=status,
        planned_date=planned,
        due_date=due or planned,
        completed_on=completed,
        agent=agent,
        agent_id={"ana": 1, "bea": 2}.get(agent),
        satisfaction=score,
        item_kinds=items,
    )


def test_the_evaluation_counts_coverage_agents_items_and_satisfaction():
    today = date(2026, 11, 30)
    calls = [
        call(
            "post_stay",
            "done",
            date(2026, 11, 2),
            date(2026, 11, 2),
            "ana",
            5,
            "opinion",
            "request",
        ),
        call("post_stay", "unreached", date(2026, 11, 3), date(2026, 11, 5), "ana"),
        call("post_stay", "due", date(2026, 11, 4)),
        # missed once: tried again on 1 December, so not overdue yet
        call("post_stay", "due", date(2026, 11, 29), due=date(2026, 12, 1)),
        # reached within the three days
        call("complaint", "done", date(2026, 11, 10), date(2026, 11, 9), "bea", 3, "complaint"),
        # reached, but after the day planned: not covered
        call("complaint", "done", date(2026, 11, 10), date(2026, 11, 12), "bea"),
    ]
    report = domain.evaluate(calls, today)
    assert report["planned"] == 6
    assert report["done"] == 4
    assert report["reached"] == 3
    assert report["overdue"] == 1
    assert report["coverage_post_stay"] == 25.0
    assert report["coverage_complaints"] == 50.0
    assert report["by_agent"] == [
        {"agent": "ana", "agent_id": 1, "done": 2, "reached": 1, "items": 2},
        {"agent": "bea", "agent_id": 2, "done": 2, "reached": 2, "items": 1},
    ]
    assert report["by_item_kind"] == {
        "opinion": 1,
        "request": 1,
        "suggestion": 0,
        "complaint": 1,
    }
    assert report["satisfaction"]["answers"] == 2
    assert report["satisfaction"]["average"] == "4.00"
    assert report["satisfaction"]["distribution"]["5"] == 1


def test_nothing_planned_has_no_coverage_rather_than_a_division_by_zero():
    report = domain.evaluate([], date(2026, 1, 1))
    assert report["coverage_post_stay"] is None and report["coverage_complaints"] is None


def test_the_commission_window_is_configurable(monkeypatch):
    stay = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert domain.credit_window_start(stay) == datetime(2025, 11, 23, 15, 0, tzinfo=UTC)
    monkeypatch.setenv("HOTEL_COMMISSION_WINDOW_DAYS", "30")
    assert domain.credit_window_start(stay) == datetime(2026, 10, 24, 15, 0, tzinfo=UTC)
