"""Complaint handling on the database: every function works in the caller's session and
leaves the commit to it, so a change, its form line and its event commit together.

Locks are always taken in one order, the complaint's row first and then its dispatch
orders', so staff acting on the same complaint, a department reporting back and the
escalation timer queue up instead of deadlocking.
"""

import functools
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from servicekit import errors, outbox, settings
from servicekit.database import values_set
from servicekit.pages import page
from services.complaints import domain, tracking_codes
from services.complaints.models import KIT, Complaint, DispatchOrder, FormLine, StaffMember

ESCALATION_REASON = "not resolved by the end of the day it came in"
STAFF_ESCALATION_REASON = "escalated by staff"
ESCALATION_BATCH = 100


# --- intake ------------------------------------------------------------------------------


def file_complaint(session: Session, data: dict, actor: dict | None, now: datetime) -> dict:
    """Record a complaint as received; the taker owns it (or, for a caller that is no
    staff member, the department's manager)."""
    intake = domain.check_intake(data, now)
    if actor and actor.get("id") is not None:
        owner = domain.staff_owner(actor)
    else:
        owner = _holder_owner(session, "manager", intake.department)
    complaint = Complaint(
        # 65 random bits make a clash all but impossible; the unique index is the guard
        tracking_code=tracking_codes.new_code(),
        guest_id=intake.guest_id,
        contact=intake.contact,
        channel=intake.channel,
        category=intake.category,
        description=intake.description,
        department=intake.department,
        status=domain.OPEN,
        owner=owner,
        taken_by=domain.by(actor),
        received_at=intake.received_at,
        due_at=intake.due_at,
        updated_at=now,
    )
    received = FormLine(
        at=intake.received_at,
        action="receive",
        by=domain.by(actor),
        recipient=owner,
        reason=intake.description,
        status=domain.OPEN,
    )
    complaint.id, received.id = _insert_with_first_line(session, complaint, received)
    received.complaint_id = complaint.id
    outbox.record(
        session,
        KIT,
        "complaint_filed",
        {
            **_event_base(complaint, now),
            "channel": complaint.channel,
            "category": complaint.category,
            "summary": domain.summary(complaint.description),
            "received_at": complaint.received_at,
            "due_at": complaint.due_at,
        },
    )
    # a complaint just filed has the one line of its receipt and no dispatch order yet
    return {
        **complaint_as_dict(session, complaint, now),
        "form": [line_as_dict(received)],
        "dispatch_orders": [],
    }


def _insert_with_first_line(session: Session, complaint: Complaint, line: FormLine):
    """Write a new complaint and the first line of its form in one statement, through the
    tables (the objects stay out of the session, which has nothing else to write); their
    ids. Intake is the service's busiest write, and the unit of work was a third of its
    CPU."""
    complaint_values, line_values = values_set(complaint), values_set(line)
    row = session.execute(
        _intake_statement(tuple(complaint_values), tuple(line_values)),
        {
            **{f"complaint_{key}": value for key, value in complaint_values.items()},
            **{f"line_{key}": value for key, value in line_values.items()},
        },
    ).one()
    return row.complaint_id, row.id


@functools.cache
def _intake_statement(complaint_columns: tuple[str, ...], line_columns: tuple[str, ...]):
    """The complaint's INSERT ... RETURNING, and its first line's INSERT ... SELECT from it,
    made once for each set of columns a filing fills (building it cost more than a tenth
    of the filing's CPU)."""
    complaints, lines = Complaint.__table__, FormLine.__table__
    new = (
        insert(complaints)
        .values({key: bindparam(f"complaint_{key}") for key in complaint_columns})
        .returning(complaints.c.id)
        .cte("new")
    )
    first_line = [bindparam(f"line_{key}", type_=lines.c[key].type) for key in line_columns]
    return (
        insert(lines)
        .from_select(["complaint_id", *line_columns], select(new.c.id, *first_line))
        .returning(lines.c.complaint_id, lines.c.id)
    )


# --- actions -----------------------------------------------------------------------------


def act(session: Session, complaint_id: int, request: dict, actor: dict | None, now: datetime):
    """Take one action on a complaint; the complaint with its form and the new `line`.

    `request` is `{"action", "note"?, "department"?, "result"?}`.
    """
    complaint = _locked(session, complaint_id)
    action = request.get("action")
    note = (request.get("note") or "").strip() or None
    result = (request.get("result") or "").strip() or None
    domain.check_action(action, complaint.status, note, result)
    if action == "dispatch":
        line = _dispatch(session, complaint, request.get("department"), note, actor, now)
    elif action == "escalate":
        line = escalate(session, complaint, actor, note, now)
    elif action == "resolve":
        line = _resolve(session, complaint, result, note, actor, now)
    else:
        complaint.status = domain.STATUS_AFTER.get(action, complaint.status)
        complaint.updated_at = now
        line = _write_line(session, complaint, action, now, actor, reason=note)
    answer = complaint_as_dict(session, complaint, now, with_form=True)
    answer["line"] = line_as_dict(line)
    return answer


def _dispatch(session, complaint, department, note, actor, now) -> FormLine:
    department = department or complaint.department
    if department not in settings.departments():
        raise errors.ValidationFailed.on(
            "department", f"must be one of: {', '.join(settings.departments())}"
        )
    manager = _holder_owner(session, "manager", department)
    # a dispatch after an escalation (the director deciding who handles it) replaces the
    # order still open: one department at a time has the complaint
    _close_open_orders(session, complaint)
    order = DispatchOrder(
        complaint_id=complaint.id,
        department=department,
        status="open",
        instructions=note,
        assignee=manager,
        opened_by=domain.by(actor),
        opened_at=now,
    )
    session.add(order)
    session.flush()
    complaint.department = department
    complaint.owner = manager
    complaint.status = domain.DISPATCHED
    complaint.updated_at = now
    line = _write_line(session, complaint, "dispatch", now, actor, reason=note, order=order)
    outbox.record(
        session,
        KIT,
        "complaint_dispatched",
        {**_event_base(complaint, now), "dispatch_order_id": order.id},
    )
    return line


def escalate(session, complaint, actor: dict | None, note: str | None, now) -> FormLine:
    """Pass the complaint to its department's director (or the director's role): by the
    timer (`actor` None) when it is overdue, or by staff, with their note if any."""
    overdue = actor is None
    reason = ESCALATION_REASON if overdue else note or STAFF_ESCALATION_REASON
    complaint.owner = _holder_owner(session, "director", complaint.department)
    complaint.status = domain.ESCALATED
    complaint.escalated_at = now
    complaint.updated_at = now
    line = _write_line(session, complaint, "escalate", now, actor, reason=reason)
    # the director's notice words why in its own language: overdue, or staff's note
    outbox.record(
        session,
        KIT,
        "complaint_escalated",
        {**_event_base(complaint, now), "reason": reason, "overdue": overdue, "note": note},
    )
    return line


def _resolve(session, complaint, result, note, actor, now) -> FormLine:
    complaint.status = domain.RESOLVED
    complaint.result = result
    complaint.resolved_at = now
    complaint.updated_at = now
    _close_open_orders(session, complaint)
    line = _write_line(session, complaint, "resolve", now, actor, reason=note, result=result)
    outbox.record(
        session, KIT, "complaint_resolved", {**_event_base(complaint, now), "result": result}
    )
    return line


def _close_open_orders(session: Session, complaint: Complaint) -> None:
    # an order still open would sit in a department's queue for nothing
    session.execute(
        update(DispatchOrder)
        .where(DispatchOrder.complaint_id == complaint.id, DispatchOrder.status == "open")
        .values(status="closed")
    )


def report(session: Session, order_id: int, result: str, actor: dict | None, now) -> dict:
    """The department's answer on its dispatch order, written on the complaint's form."""
    found = session.get(DispatchOrder, order_id)
    if found is None:
        raise errors.NotFound(f"no dispatch order {order_id}")
    if (
        actor
        and actor.get("role") in ("manager", "director")
        and actor.get("department") != found.department
    ):
        raise errors.Forbidden(f"only {found.department} reports on this order")
    complaint = _locked(session, found.complaint_id)
    # read again under the lock, over the copy already loaded: a resolution committed while
    # this waited has closed the order
    order = session.scalars(
        select(DispatchOrder)
        .where(DispatchOrder.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if order.status != "open":
        raise errors.InvalidState(
            f"this dispatch order is {order.status}", {"status": order.status}
        )
    result = (result or "").strip()
    if not result:
        raise errors.ValidationFailed.on("result", "say what the department did")
    order.status = "reported"
    order.result = result
    order.reported_at = now
    order.reported_by = domain.by(actor)
    if complaint.status == domain.DISPATCHED:
        complaint.status = domain.REPORTED
    complaint.updated_at = now
    _write_line(session, complaint, "report", now, actor, result=result, order=order)
    # the call centre answers the customer once the department reports back
    outbox.record(
        session,
        KIT,
        "complaint_reported",
        {**_event_base(complaint, now), "dispatch_order_id": order.id, "result": result},
    )
    return order_as_dict(order, complaint)


# --- the escalation timer ----------------------------------------------------------------


def escalate_overdue(session: Session, now: datetime) -> int:
    """Escalate every complaint not resolved by its due time; how many it escalated.

    Each batch commits on its own. Rows another replica holds are skipped, not waited
    for: that replica escalates them, and nobody escalates one twice.
    """
    escalated = 0
    while True:
        batch = session.scalars(
            select(Complaint)
            .where(
                Complaint.escalated_at.is_(None),
                Complaint.status != domain.RESOLVED,
                Complaint.due_at < now,
            )
            .order_by(Complaint.due_at)
            .limit(ESCALATION_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for complaint in batch:
            escalate(session, complaint, None, None, now)
        session.commit()
        escalated += len(batch)
        if len(batch) < ESCALATION_BATCH:
            return escalated


# --- staff, as the gateway announces them -------------------------------------------------


def keep_staff(session: Session, data: dict) -> None:
    member = session.get(StaffMember, data["staff_id"]) or StaffMember(id=data["staff_id"])
    member.username = data["username"]
    member.role = data["role"]
    member.department = data.get("department")
    member.active = data.get("active", True)
    session.add(member)


def _holder_owner(session: Session, role: str, department: str) -> dict:
    holder = session.scalars(
        select(StaffMember)
        .where(
            StaffMember.role == role,
            StaffMember.department == department,
            StaffMember.active.is_(True),
        )
        .order_by(StaffMember.id)
        .limit(1)
    ).first()
    staff = (
        {
            "id": holder.id,
            "username": holder.username,
            "role": holder.role,
            "department": holder.department,
        }
        if holder
        else None
    )
    return domain.owner_of(role, department, staff)


# --- reading -----------------------------------------------------------------------------


def get_complaint(session: Session, complaint_id: int, now: datetime) -> dict:
    return complaint_as_dict(session, _found(session, complaint_id), now, with_form=True)


def get_form(session: Session, complaint_id: int) -> dict:
    complaint = _found(session, complaint_id)
    return {
        "complaint_id": complaint.id,
        "tracking_code": complaint.tracking_code,
        "guest_id": complaint.guest_id,
        "status": complaint.status,
        "lines": [line_as_dict(line) for line in _lines(session, complaint.id)],
    }


def list_complaints(session: Session, filters: dict, limit: int, after: int, now) -> dict:
    query = select(Complaint).where(Complaint.id > after).order_by(Complaint.id).limit(limit + 1)
    for name in ("status", "department", "guest_id", "channel"):
        if filters.get(name) is not None:
            query = query.where(getattr(Complaint, name) == filters[name])
    if filters.get("tracking_code"):
        code = tracking_codes.normalise(filters["tracking_code"])
        if code is None:
            raise errors.ValidationFailed.on("tracking_code", "not a tracking code")
        query = query.where(Complaint.tracking_code == code)
    overdue = filters.get("overdue")
    if overdue is True:
        query = query.where(Complaint.status != domain.RESOLVED, Complaint.due_at < now)
    elif overdue is False:
        query = query.where((Complaint.status == domain.RESOLVED) | (Complaint.due_at >= now))
    rows = session.scalars(query).all()
    return page(rows, limit, lambda c: c.id, lambda c: complaint_as_dict(session, c, now))


def list_orders(session: Session, filters: dict, limit: int, after: int) -> dict:
    query = (
        select(DispatchOrder, Complaint)
        .join(Complaint, Complaint.id == DispatchOrder.complaint_id)
        .where(DispatchOrder.id > after)
        .order_by(DispatchOrder.id)
        .limit(limit + 1)
    )
    for name in ("department", "status"):
        if filters.get(name) is not None:
            query = query.where(getattr(DispatchOrder, name) == filters[name])
    rows = session.execute(query).all()
    return page(rows, limit, lambda r: r[0].id, lambda r: order_as_dict(r[0], r[1]))


def get_order(session: Session, order_id: int) -> dict:
    order = session.get(DispatchOrder, order_id)
    if order is None:
        raise errors.NotFound(f"no dispatch order {order_id}")
    return order_as_dict(order, session.get(Complaint, order.complaint_id))


def track(session: Session, typed_code: str) -> dict:
    """Where a complaint stands, for anyone holding its code: no names, no notes."""
    code = tracking_codes.normalise(typed_code)
    complaint = (
        session.scalar(select(Complaint).where(Complaint.tracking_code == code)) if code else None
    )
    if complaint is None:
        raise errors.NotFound("no complaint has that tracking code")
    steps: list[dict] = []
    for line in _lines(session, complaint.id):
        if not steps or steps[-1]["status"] != line.status:
            steps.append({"at": line.at.isoformat(), "status": line.status})
    return {
        "tracking_code": complaint.tracking_code,
        "status": complaint.status,
        "department": complaint.department,
        "received_at": complaint.received_at.isoformat(),
        "updated_at": complaint.updated_at.isoformat(),
        "steps": steps,
    }


def complaint_as_dict(session, complaint: Complaint, now: datetime, with_form=False) -> dict:
    answer = {
        "id": complaint.id,
        "tracking_code": complaint.tracking_code,
        "guest_id": complaint.guest_id,
        "contact": complaint.contact,
        "channel": complaint.channel,
        "category": complaint.category,
        "description": complaint.description,
        "department": complaint.department,
        "status": complaint.status,
        "owner": complaint.owner,
        "taken_by": complaint.taken_by,
        "received_at": complaint.received_at.isoformat(),
        "due_at": complaint.due_at.isoformat(),
        "overdue": domain.is_overdue(complaint.status, complaint.due_at, now),
        "escalated_at": domain.as_iso(complaint.escalated_at),
        "resolved_at": domain.as_iso(complaint.resolved_at),
        "result": complaint.result,
        "updated_at": complaint.updated_at.isoformat(),
    }
    if with_form:
        answer["form"] = [line_as_dict(line) for line in _lines(session, complaint.id)]
        orders = session.scalars(
            select(DispatchOrder)
            .where(DispatchOrder.complaint_id == complaint.id)
            .order_by(DispatchOrder.id)
        ).all()
        answer["dispatch_orders"] = [order_as_dict(o, complaint) for o in orders]
    return answer


def line_as_dict(line: FormLine) -> dict:
    return {
        "id": line.id,
        "at": line.at.isoformat(),
        "action": line.action,
        "by": line.by,
        "recipient": line.recipient,
        "reason": line.reason,
        "result": line.result,
        "status": line.status,
        "dispatch_order_id": line.dispatch_order_id,
    }


def order_as_dict(order: DispatchOrder, complaint: Complaint) -> dict:
    return {
        "id": order.id,
        "complaint_id": order.complaint_id,
        "tracking_code": complaint.tracking_code,
        "category": complaint.category,
        "description": complaint.description,
        "guest_id": complaint.guest_id,
        "department": order.department,
        "status": order.status,
        "instructions": order.instructions,
        "assignee": order.assignee,
        "opened_by": order.opened_by,
        "opened_at": order.opened_at.isoformat(),
        "reported_by": order.reported_by,
        "reported_at": domain.as_iso(order.reported_at),
        "result": order.result,
    }


# --- helpers -----------------------------------------------------------------------------


def _write_line(
    session, complaint, action, now, actor, *, reason=None, result=None, order=None, at=None
) -> FormLine:
    line = FormLine(
        complaint_id=complaint.id,
        at=at or now,
        action=action,
        by=domain.by(actor),
        recipient=complaint.owner,
        reason=reason,
        result=result,
        status=complaint.status,
        dispatch_order_id=order.id if order else None,
    )
    session.add(line)
    session.flush()
    return line


def _lines(session: Session, complaint_id: int):
    return session.scalars(
        select(FormLine).where(FormLine.complaint_id == complaint_id).order_by(FormLine.id)
    ).all()


def _found(session: Session, complaint_id: int) -> Complaint:
    complaint = session.get(Complaint, complaint_id)
    if complaint is None:
        raise errors.NotFound(f"no complaint {complaint_id}")
    return complaint


def _locked(session: Session, complaint_id: int) -> Complaint:
    complaint = session.scalars(
        select(Complaint).where(Complaint.id == complaint_id).with_for_update()
    ).first()
    if complaint is None:
        raise errors.NotFound(f"no complaint {complaint_id}")
    return complaint


def _event_base(complaint: Complaint, now: datetime) -> dict:
    return {
        "complaint_id": complaint.id,
        "tracking_code": complaint.tracking_code,
        "guest_id": complaint.guest_id,
        "contact": complaint.contact,
        "language": None,
        "department": complaint.department,
        "owner": complaint.owner,
        "at": now,
    }
