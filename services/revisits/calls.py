"""The agents' side of a revisit: the worklist, taking a call, recording what the guest
said (classified and routed), and a department manager signing an item off."""

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from servicekit import errors, outbox, settings
from servicekit.pages import decode_cursor, page
from services.revisits import domain
from services.revisits.models import (
    KIT,
    Guest,
    PromisedResponse,
    Revisit,
    RevisitItem,
    StaffMember,
)

# the furthest ahead an agent may promise the guest an answer; a date past it is a typing
# mistake (and a year past 9999 in UTC could not be read back)
PROMISE_AT_MOST = timedelta(days=366)


def today() -> date:
    return datetime.now(settings.hotel_tz()).date()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def item_dict(item: RevisitItem) -> dict:
    return {
        "id": item.id,
        "kind": item.kind,
        "text": item.text,
        "department": item.department,
        "category": item.category,
        "owner": item.owner,
        "routed": True,
        "routed_at": _iso(item.routed_at),
        "complaint_id": item.complaint_id,
        "complaint_filing": (
            None if item.kind != "complaint" else ("filed" if item.complaint_id else "pending")
        ),
        "result": item.result,
        "signed_by": (
            {"id": item.signed_by_id, "username": item.signed_by_username}
            if item.signed_by_id
            else None
        ),
        "signed_at": _iso(item.signed_at),
    }


def revisit_dict(revisit: Revisit, guest: Guest | None = None) -> dict:
    return {
        "id": revisit.id,
        "kind": revisit.kind,
        "guest_id": revisit.guest_id,
        "guest": (
            {
                "name": guest.name,
                "phone": guest.phone,
                "category": guest.category,
                "language": guest.language,
            }
            if guest
            else None
        ),
        "contact": revisit.contact,
        "reservation_id": revisit.reservation_id,
        "complaint_id": revisit.complaint_id,
        "complaint_resolved": revisit.complaint_resolved_at is not None,
        "due_date": revisit.due_date.isoformat(),
        "planned_date": revisit.planned_date.isoformat(),
        "overdue": revisit.status == "due" and revisit.due_date < today(),
        "status": revisit.status,
        "attempts": revisit.attempts,
        "agent": (
            {"id": revisit.agent_id, "username": revisit.agent_username}
            if revisit.agent_id
            else None
        ),
        "taken_at": _iso(revisit.taken_at),
        "reached": revisit.reached,
        "notes": revisit.notes,
        "satisfaction": revisit.satisfaction,
        "completed_at": _iso(revisit.completed_at),
        "created_at": _iso(revisit.created_at),
        "items": [item_dict(i) for i in revisit.items],
        "pending_questions": [
            {
                "id": p.id,
                "text": p.text,
                "department": p.department,
                "respond_by": _iso(p.respond_by),
                "promised_at": _iso(p.promised_at),
                "reminded_at": _iso(p.reminded_at),
            }
            for p in revisit.promises
        ],
    }


def show(session: Session, revisit: Revisit) -> dict:
    guest = session.get(Guest, revisit.guest_id) if revisit.guest_id else None
    return _with_others(revisit_dict(revisit, guest), _due_by_guest(session, [revisit]))


def _due_by_guest(session: Session, revisits: list[Revisit]) -> dict[int, list[int]]:
    """The revisits still due of each of these revisits' guests: one call covers them all."""
    guest_ids = {r.guest_id for r in revisits if r.guest_id is not None}
    due: dict[int, list[int]] = {}
    if guest_ids:
        for revisit_id, guest_id in session.execute(
            select(Revisit.id, Revisit.guest_id)
            .where(Revisit.guest_id.in_(guest_ids), Revisit.status == "due")
            .order_by(Revisit.due_date, Revisit.id)
        ):
            due.setdefault(guest_id, []).append(revisit_id)
    return due


def _with_others(shown: dict, due: dict[int, list[int]]) -> dict:
    shown["also_due"] = [i for i in due.get(shown["guest_id"], []) if i != shown["id"]]
    return shown


def find(session: Session, revisit_id: int, lock: bool = False) -> Revisit:
    revisit = session.get(Revisit, revisit_id, with_for_update=lock)
    if revisit is None:
        raise errors.NotFound(f"no revisit {revisit_id}")
    return revisit


def worklist(session: Session, filters: dict, limit: int, cursor: str | None) -> dict:
    """Revisits by due date, a guest's revisits side by side so one call covers them.

    Filters: status, overdue (true: still due, past the due date), agent (username),
    guest_id, kind, due_before (due on or before that date).
    """
    guest_order = func.coalesce(Revisit.guest_id, 0)
    query = select(Revisit, Guest).outerjoin(Guest, Guest.id == Revisit.guest_id)
    if filters.get("status"):
        query = query.where(Revisit.status == filters["status"])
    if filters.get("overdue") is not None:
        late = (Revisit.status == "due") & (Revisit.due_date < today())
        query = query.where(late if filters["overdue"] else ~late)
    if filters.get("agent"):
        query = query.where(Revisit.agent_username == filters["agent"])
    if filters.get("guest_id") is not None:
        query = query.where(Revisit.guest_id == filters["guest_id"])
    if filters.get("kind"):
        query = query.where(Revisit.kind == filters["kind"])
    if filters.get("due_before"):
        query = query.where(Revisit.due_date <= date.fromisoformat(str(filters["due_before"])))
    after = decode_cursor(cursor, list)
    if after is not None:
        try:
            key = (date.fromisoformat(after[0]), int(after[1]), int(after[2]))
        except (IndexError, TypeError, ValueError):
            raise errors.ValidationFailed.on("cursor", "not a cursor this list gave") from None
        query = query.where(tuple_(Revisit.due_date, guest_order, Revisit.id) > key)
    rows = session.execute(
        query.order_by(Revisit.due_date, guest_order, Revisit.id).limit(limit + 1)
    ).all()
    due = _due_by_guest(session, [row[0] for row in rows[:limit]])
    return page(
        rows,
        limit,
        key=lambda row: [row[0].due_date.isoformat(), row[0].guest_id or 0, row[0].id],
        dump=lambda row: _with_others(revisit_dict(row[0], row[1]), due),
    )


def take(session: Session, revisit_id: int, actor: dict, agent_id: int | None = None) -> Revisit:
    """An agent takes a revisit to call. Someone else's revisit may be taken over only by
    a manager (or admin) handing out the work, who may also hand it to an agent
    (`agent_id`, a staff member's id)."""
    revisit = find(session, revisit_id, lock=True)
    if revisit.status != "due":
        raise errors.InvalidState(f"revisit {revisit_id} is {revisit.status}")
    _refuse_another_agents(revisit, actor)
    taker = actor if agent_id in (None, actor["id"]) else _handed_to(session, actor, agent_id)
    if revisit.agent_id != taker["id"]:
        revisit.agent_id = taker["id"]
        revisit.agent_username = taker["username"]
        revisit.taken_at = datetime.now(UTC)
    return revisit


def _handed_to(session: Session, actor: dict, agent_id: int) -> dict:
    if actor.get("role") == "agent":
        raise errors.Forbidden("an agent takes revisits for themselves; a manager hands them out")
    member = session.get(StaffMember, agent_id)
    if member is None or not member.active:
        raise errors.ValidationFailed.on("agent_id", "no active staff member has this id")
    return {"id": member.id, "username": member.username}


def record_outcome(session: Session, revisit_id: int, outcome: dict, actor: dict) -> Revisit:
    """Record one call. Reached: the revisit is done, and each item the guest raised is
    classified and routed to its department with an owner. Not reached: tried again the
    next day, until the last attempt closes it as unreached."""
    revisit = find(session, revisit_id, lock=True)
    if revisit.status != "due":
        raise errors.InvalidState(f"revisit {revisit_id} is {revisit.status}, not due")
    # the agent who took the call records it, unless a manager records it for them: the
    # call stays that agent's (the returning guest's stays are credited to whoever made it);
    # a call nobody took is the recorder's
    _refuse_another_agents(revisit, actor)
    _check_outcome(outcome)
    now = datetime.now(UTC)
    if revisit.agent_id is None:
        revisit.agent_id = actor["id"]
        revisit.agent_username = actor["username"]
    revisit.taken_at = revisit.taken_at or now
    revisit.notes = outcome.get("notes")
    if outcome["reached"]:
        revisit.status = "done"
        revisit.attempts += 1
        revisit.reached = True
        revisit.satisfaction = outcome.get("satisfaction")
        revisit.completed_at = now
        for raised in outcome.get("items") or []:
            department = raised.get("department") or domain.DEFAULT_DEPARTMENT
            revisit.items.append(
                RevisitItem(
                    kind=raised["kind"],
                    text=raised["text"],
                    department=department,
                    category=raised.get("category"),
                    owner=domain.owner_of(department, managers_of(session, department)),
                    routed_at=now,
                    filing_attempts=0,
                )
            )
        question = outcome.get("pending_question")
        if question:
            _promise(session, revisit, question, now)
    else:
        missed = domain.after_missed_call(
            revisit.due_date, today(), revisit.attempts, domain.max_attempts()
        )
        revisit.status, revisit.due_date, revisit.attempts = (
            missed.status,
            missed.due_date,
            missed.attempts,
        )
        revisit.reached = False
        if missed.status == "unreached":
            revisit.completed_at = now
    session.flush()
    if revisit.status != "due" and revisit.guest_id is not None:
        outbox.record(session, KIT, "revisit_completed", _completed_event(revisit, now))
    return revisit


def _refuse_another_agents(revisit: Revisit, actor: dict) -> None:
    if revisit.agent_id not in (None, actor["id"]) and actor.get("role") == "agent":
        raise errors.Conflict(
            f"revisit {revisit.id} is taken by {revisit.agent_username}",
            {"agent": revisit.agent_username},
        )


def _check_outcome(outcome: dict) -> None:
    """The gateway validates shapes; these are the rules any caller must keep."""
    if not outcome["reached"]:
        for field in ("items", "satisfaction", "pending_question"):
            if outcome.get(field):
                raise errors.ValidationFailed.on(field, "only when the guest was reached")
    satisfaction = outcome.get("satisfaction")
    if satisfaction is not None and satisfaction not in range(1, 6):
        raise errors.ValidationFailed.on("satisfaction", "must be 1 to 5")
    for n, raised in enumerate(outcome.get("items") or []):
        if raised.get("kind") not in domain.ITEM_KINDS:
            raise errors.ValidationFailed.on(f"items.{n}.kind", "not a kind of item")
        department = raised.get("department")
        if department is not None and department not in settings.departments():
            raise errors.ValidationFailed.on(f"items.{n}.department", "unknown department")
        # a complaint item is filed later, by a timer: a category the complaints service
        # refuses would leave the guest's complaint unfiled, so it is refused now, while the
        # agent is on the call
        if raised["kind"] == "complaint":
            categories = settings.complaint_categories()
            if (raised.get("category") or domain.COMPLAINT_ITEM_CATEGORY) not in categories:
                raise errors.ValidationFailed.on(
                    f"items.{n}.category", f"one of: {', '.join(sorted(categories))}"
                )


def _promise(session: Session, revisit: Revisit, question: dict, now: datetime) -> None:
    respond_by = question["respond_by"]
    if isinstance(respond_by, str):
        respond_by = datetime.fromisoformat(respond_by)
    if respond_by <= now:
        raise errors.ValidationFailed.on("pending_question.respond_by", "must be in the future")
    if respond_by > now + PROMISE_AT_MOST:
        raise errors.ValidationFailed.on("pending_question.respond_by", "must be within a year")
    # who answers: the department named, else the department of the first item raised
    department = (
        question.get("department")
        or next((i.department for i in revisit.items), None)
        or domain.DEFAULT_DEPARTMENT
    )
    if all(item.department != department for item in revisit.items):
        # the department answers through an item it signs off, as for anything routed to
        # it: the result then goes to the guest and the promise is kept
        revisit.items.append(
            RevisitItem(
                kind="request",
                text=question["text"],
                department=department,
                owner=domain.owner_of(department, managers_of(session, department)),
                routed_at=now,
                filing_attempts=0,
            )
        )
    promise = PromisedResponse(
        department=department, text=question["text"], respond_by=respond_by, promised_at=now
    )
    revisit.promises.append(promise)
    outbox.record(session, KIT, "response_promised", promise_event(revisit, promise, now))


def promise_event(revisit: Revisit, promise: PromisedResponse, now: datetime, reminder=False):
    return {
        "revisit_id": revisit.id,
        **called(revisit),
        "department": promise.department,
        "text": promise.text,
        "respond_by": promise.respond_by,
        "at": now,
        "reminder": reminder,
    }


def _completed_event(revisit: Revisit, now: datetime) -> dict:
    return {
        "revisit_id": revisit.id,
        "kind": revisit.kind,
        "guest_id": revisit.guest_id,
        "status": revisit.status,
        "reached": bool(revisit.reached),
        "attempts": revisit.attempts,
        "agent": (
            {"id": revisit.agent_id, "username": revisit.agent_username}
            if revisit.agent_id
            else None
        ),
        "satisfaction": revisit.satisfaction,
        "items": [
            {"item_id": i.id, "kind": i.kind, "department": i.department} for i in revisit.items
        ],
        "at": now,
    }


def managers_of(session: Session, department: str) -> list[dict]:
    rows = session.execute(
        select(StaffMember.id, StaffMember.username)
        .where(
            StaffMember.role == "manager",
            StaffMember.department == department,
            StaffMember.active.is_(True),
        )
        .order_by(StaffMember.id)
    ).all()
    return [{"id": r.id, "username": r.username} for r in rows]


def sign_off(
    session: Session, revisit_id: int, item_id: int, result: str, actor: dict
) -> RevisitItem:
    """The department's manager reports the item's result to the guest and signs the form."""
    item = session.get(RevisitItem, item_id, with_for_update=True)
    if item is None or item.revisit_id != revisit_id:
        raise errors.NotFound(f"revisit {revisit_id} has no item {item_id}")
    if not domain.may_sign_off(actor, item.department):
        raise errors.Forbidden(f"only a manager of {item.department} signs this item off")
    if item.signed_at is not None:
        raise errors.InvalidState(f"item {item_id} was signed off already")
    now = datetime.now(UTC)
    item.result = result
    item.signed_by_id = actor["id"]
    item.signed_by_username = actor["username"]
    item.signed_at = now
    revisit = item.revisit
    outbox.record(
        session,
        KIT,
        "item_signed_off",
        {
            "revisit_id": revisit.id,
            "item_id": item.id,
            **called(revisit),
            "department": item.department,
            "result": result,
            "signed_by": {"id": actor["id"], "username": actor["username"]},
            "at": now,
        },
    )
    return item


def called(revisit: Revisit) -> dict:
    """Whom a revisit's promise and results are for: the guest on file, or the contact of a
    complainant who has none (told as a guest would be)."""
    return {
        "guest_id": revisit.guest_id,
        "contact": revisit.contact if revisit.guest_id is None else None,
    }
