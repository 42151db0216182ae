"""What the events of other services set in motion here: the projections of guests and
staff, revisits scheduled with no one having to remember, and the commission ledger.

Each function works in the caller's transaction (the handler wraps it in `handle_once`),
and is also safe on its own when the same fact arrives twice under different event ids.
"""

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from servicekit import outbox
from services.revisits import domain
from services.revisits.models import (
    KIT,
    CommissionCredit,
    Guest,
    Revisit,
    RevisitItem,
    StaffMember,
)

log = logging.getLogger(__name__)
# a revisit is planned with one INSERT ... ON CONFLICT, through the table itself
REVISITS = Revisit.__table__


def remember_guest(session: Session, data: dict, as_of: datetime) -> None:
    guest = session.get(Guest, data["guest_id"], with_for_update=True)
    if guest is not None and guest.as_of > as_of:
        return  # a late, older announcement
    if guest is None:
        guest = Guest(id=data["guest_id"])
        session.add(guest)
    guest.name = data["name"]
    guest.category = data["category"]
    guest.phone = data["phone"]
    guest.language = data["language"]
    guest.as_of = as_of


def remember_staff(session: Session, data: dict, as_of: datetime) -> None:
    member = session.get(StaffMember, data["staff_id"], with_for_update=True)
    if member is not None and member.as_of > as_of:
        return
    if member is None:
        member = StaffMember(id=data["staff_id"])
        session.add(member)
    member.username = data["username"]
    member.role = data["role"]
    member.department = data.get("department")
    member.active = data.get("active", True)
    member.as_of = as_of
    if member.role == "manager" and member.active and member.department:
        _hand_role_items_to(session, member)


def _hand_role_items_to(session: Session, manager: StaffMember) -> None:
    """Items routed while their department had no manager go to its first one."""
    unsigned = session.scalars(
        select(RevisitItem).where(
            RevisitItem.department == manager.department,
            RevisitItem.signed_at.is_(None),
            RevisitItem.owner["kind"].as_string() == "role",
        )
    ).all()
    for item in unsigned:
        item.owner = domain.owner_of(
            manager.department, [{"id": manager.id, "username": manager.username}]
        )


def schedule_post_stay(session: Session, data: dict) -> None:
    """A check-out: credit the stay if the guest came back after a revisit, and plan the
    call of the day after. Every category is called: groups, individuals and VIPs alike
    (a VIP is an individual guest with a flag)."""
    credit_returning_stay(session, data)
    _scheduled(
        session,
        "reservation_id",
        [
            {
                "kind": "post_stay",
                "guest_id": data["guest_id"],
                "reservation_id": data["reservation_id"],
                "contact": None,
                "due_date": domain.post_stay_due_date(data["checked_out_at"]),
            }
        ],
    )


def schedule_complaint_calls(session: Session, complaints: list[dict]) -> None:
    """Every complainant gets a call within three days, one revisit per complaint; a
    batch of complaints (`complaint_filed` data) is planned in one statement.

    A complaint taken from someone with no guest file (only a contact) is matched to a
    guest by phone when one is on file; otherwise the revisit keeps the contact to call
    (or write to). One who left neither phone nor email gets a revisit all the same: the
    coverage the year-end evaluation reports must count every complainant, and the agent
    records whether they could be reached.
    """
    planned = []
    for data in complaints:
        contact = data.get("contact") or {}
        guest_id = data.get("guest_id")
        if guest_id is None and contact.get("phone"):
            guest_id = session.scalar(select(Guest.id).where(Guest.phone == contact["phone"]))
        planned.append(
            {
                "kind": "complaint",
                "guest_id": guest_id,
                "complaint_id": data["complaint_id"],
                "contact": None if guest_id is not None else dict(contact),
                "due_date": domain.complaint_due_date(data["received_at"]),
            }
        )
    _scheduled(session, "complaint_id", planned)


def note_complaint_resolved(session: Session, data: dict) -> None:
    """The agent sees, before calling, that the complaint was already resolved."""
    revisit = session.scalar(
        select(Revisit).where(Revisit.complaint_id == data["complaint_id"]).with_for_update()
    )
    if revisit is not None and revisit.complaint_resolved_at is None:
        revisit.complaint_resolved_at = data["at"]


def credit_returning_stay(session: Session, data: dict) -> CommissionCredit | None:
    """Credit a stay to the agent who last completed a reached revisit of the guest within
    the commission window before the stay began."""
    if session.scalar(
        select(CommissionCredit.id).where(CommissionCredit.reservation_id == data["reservation_id"])
    ):
        return None
    checked_in_at = data["checked_in_at"]
    revisit = session.scalar(
        select(Revisit)
        .where(
            Revisit.guest_id == data["guest_id"],
            Revisit.status == "done",
            Revisit.reached.is_(True),
            Revisit.agent_id.is_not(None),
            Revisit.completed_at < checked_in_at,
            Revisit.completed_at >= domain.credit_window_start(checked_in_at),
        )
        .order_by(Revisit.completed_at.desc(), Revisit.id.desc())
        .limit(1)
    )
    if revisit is None:
        return None
    credit = CommissionCredit(
        reservation_id=data["reservation_id"],
        guest_id=data["guest_id"],
        revisit_id=revisit.id,
        agent_id=revisit.agent_id,
        agent_username=revisit.agent_username,
        charges=data["charges"],
        currency=data["currency"],
        rate=domain.commission_rate(),
        checked_out_at=data["checked_out_at"],
        checked_out_on=domain.hotel_day(data["checked_out_at"]),
    )
    session.add(credit)
    return credit


def _scheduled(session: Session, one_per: str, revisits: list[dict]) -> None:
    """Plan revisits, each unless its stay or complaint (`one_per`) already has one.

    One statement for them all: the unique index on `one_per` settles a revisit planned
    twice (the same fact under another event id, in this batch or an earlier one), with
    no read before the write.
    """
    if not revisits:
        return
    planned = session.execute(
        insert(REVISITS)
        .on_conflict_do_nothing(index_elements=[one_per])
        .returning(REVISITS.c.id, REVISITS.c[one_per]),
        [
            {**revisit, "planned_date": revisit["due_date"], "status": "due", "attempts": 0}
            for revisit in revisits
        ],
    )
    by_ref = {revisit[one_per]: revisit for revisit in revisits}
    for revisit_id, ref in planned:
        revisit = by_ref[ref]
        # the catalogue's revisit events are about a guest file; a contact-only one has none
        if revisit["guest_id"] is not None:
            outbox.record(
                session,
                KIT,
                "revisit_scheduled",
                {
                    "revisit_id": revisit_id,
                    "kind": revisit["kind"],
                    "guest_id": revisit["guest_id"],
                    "reservation_id": revisit.get("reservation_id"),
                    "complaint_id": revisit.get("complaint_id"),
                    "due_date": revisit["due_date"],
                },
            )
