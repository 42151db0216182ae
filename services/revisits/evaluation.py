"""The year-end evaluation of the revisit plan, and the agents' monthly commissions."""

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from servicekit import errors, pages
from services.revisits import domain
from services.revisits.calls import today
from services.revisits.models import CommissionCredit, Revisit, RevisitItem


def report(session: Session, year: int, month: int | None = None) -> dict:
    """The revisits planned in the year, or in one month of it (by the due date first
    planned, whatever later attempts did to it), evaluated."""
    if month is not None and not 1 <= month <= 12:
        raise errors.ValidationFailed.on("month", "must be 1 to 12")
    start, end = domain.month_bounds(year, month)
    revisits = session.scalars(
        select(Revisit).where(Revisit.planned_date >= start, Revisit.planned_date < end)
    ).all()
    kinds: dict[int, list[str]] = defaultdict(list)
    if revisits:
        for revisit_id, kind in session.execute(
            select(RevisitItem.revisit_id, RevisitItem.kind).where(
                RevisitItem.revisit_id.in_([r.id for r in revisits])
            )
        ):
            kinds[revisit_id].append(kind)
    calls = [
        domain.PlannedCall(
            kind=r.kind,
            status=r.status,
            planned_date=r.planned_date,
            due_date=r.due_date,
            completed_on=domain.hotel_day(r.completed_at) if r.completed_at else None,
            agent=r.agent_username,
            agent_id=r.agent_id,
            satisfaction=r.satisfaction,
            item_kinds=tuple(kinds[r.id]),
        )
        for r in revisits
    ]
    return {
        "year": year,
        "month": month,
        **domain.evaluate(calls, today()),
    }


def commissions(
    session: Session, month: str, limit: int = pages.DEFAULT_LIMIT, cursor: str | None = None
) -> dict:
    """Per agent, the returning guests' stays checked out in `month` (YYYY-MM) credited to
    them, their consumption and the commission on it; a page of agents at a time, by
    username (a month's credits are summed whole, then paged)."""
    after = pages.decode_cursor(cursor, list)
    if after is not None and [type(part) for part in after] != [str, int, str]:
        raise errors.ValidationFailed.on("cursor", "not a cursor this list gave")
    try:
        year, number = (int(part) for part in month.split("-"))
        start, end = domain.month_bounds(year, number)
    except ValueError:
        raise errors.ValidationFailed.on("month", "must be YYYY-MM") from None
    credits = session.scalars(
        select(CommissionCredit)
        .where(CommissionCredit.checked_out_on >= start, CommissionCredit.checked_out_on < end)
        .order_by(CommissionCredit.agent_username, CommissionCredit.id)
    ).all()
    rows: dict[tuple, dict] = {}
    for credit in credits:
        row = rows.setdefault(
            (credit.agent_id, credit.currency),
            {
                "agent": credit.agent_username,
                "agent_id": credit.agent_id,
                "currency": credit.currency,
                "credits": [],
            },
        )
        row["credits"].append(credit)
    rates = {credit.rate for credit in credits}
    if not rates:
        rate = domain.commission_rate()  # nothing credited yet: what a stay would earn now
    elif len(rates) == 1:
        (rate,) = rates
    else:
        rate = None  # the month's stays were credited at different rates

    def order(row: dict) -> list:
        return [row["agent"], row["agent_id"], row["currency"]]

    listed = sorted(rows.values(), key=order)
    if after is not None:
        listed = [row for row in listed if order(row) > after]

    def dump(row: dict) -> dict:
        credited = row["credits"]
        consumption = sum((credit.charges for credit in credited), Decimal("0"))
        return {
            "agent": row["agent"],
            "agent_id": row["agent_id"],
            "guests": len({credit.guest_id for credit in credited}),
            "stays": len(credited),
            "consumption": str(consumption.quantize(domain.CENT)),
            "commission": str(domain.commission((c.charges, c.rate) for c in credited)),
            "currency": row["currency"],
        }

    return {
        "month": month,
        "rate": None if rate is None else str(rate.normalize()),
        **pages.page(listed, limit, order, dump),
    }
