"""From what happened to the notifications it calls for: the projections of guests and
staff, who is told of each event, and writing the notifications once.

Everything here works inside the caller's transaction and never sends anything: the
courier (`delivery.py`) does that after the commit.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import String, bindparam, cast, extract, literal, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from servicekit import settings
from servicekit.background import request_wakeup
from servicekit.events import Event
from services.notifications import templates
from services.notifications.domain import (
    PREFERENCE_BY_CONTACT_CHANNEL,
    Channels,
    Draft,
    Recipient,
    birthdays_falling_on,
    choose_channel,
    dedupe_key,
    language_of,
)
from services.notifications.models import Guest, Notification, StaffMember

QUEUED_FLAG = "notifications_queued"
# written through the table itself: the ORM's bulk-insert path costs more CPU than the
# insert, for every notification of a batch
NOTIFICATIONS = Notification.__table__
# the recipient key of a complaint's contact (one per complaint event)
CONTACT = "contact"


class RecipientUnknown(Exception):
    """The guest is not known here yet (their registration is still on its way): the
    event is retried by the bus, and parked for a human if they never arrive."""


def hotel_language() -> str:
    return language_of(settings.env("HOTEL_LANGUAGE", "es"), "es")


# --- projections -----------------------------------------------------------------------


def project_staff(session: Session, event: Event) -> None:
    data = event.data
    values = {
        "staff_id": data["staff_id"],
        "username": data["username"],
        "name": data["name"],
        "role": data["role"],
        "department": data.get("department"),
        "email": data.get("email"),
        "phone": data.get("phone"),
        "active": data.get("active", True),
        "as_of": event.occurred_at,
    }
    _upsert(session, StaffMember, "staff_id", values)


def project_guest(session: Session, event: Event) -> None:
    data = event.data
    values = {
        "guest_id": data["guest_id"],
        "name": data["name"],
        "phone": data.get("phone"),
        "email": data.get("email"),
        "birthday": data.get("birthday"),
        "language": data["language"],
        "as_of": event.occurred_at,
    }
    _upsert(session, Guest, "guest_id", values)


def _upsert(session: Session, model, key: str, values: dict) -> None:
    statement = insert(model).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[key],
            set_={k: statement.excluded[k] for k in values if k != key},
            # an update that happened before the one we hold changes nothing
            where=model.as_of <= statement.excluded.as_of,
        )
    )


# --- recipients ------------------------------------------------------------------------


def guests_of(session: Session, events: list[Event]) -> list[Guest]:
    """Load the guests `events` are about into the session in one read, so that
    `guest_recipient` finds each there; keep the list while the events are handled (the
    session holds its objects weakly)."""
    ids = {event.data.get("guest_id") for event in events} - {None}
    if not ids:
        return []
    return list(session.scalars(_GUESTS_OF, {"ids": list(ids)}))


# made once, the ids given at each run
_GUESTS_OF = select(Guest).where(Guest.guest_id.in_(bindparam("ids", expanding=True)))


def guest_recipient(
    session: Session,
    guest_id: int | None,
    contact: dict | None = None,
    language: str | None = None,
    preferred: str | None = None,
) -> Recipient:
    """A guest (or a complaint's contact), with the contact details given for this case
    taking precedence over the ones on file."""
    contact = contact or {}
    guest = session.get(Guest, guest_id) if guest_id is not None else None
    if (
        guest_id is not None
        and guest is None
        and not (contact.get("email") or contact.get("phone"))
    ):
        raise RecipientUnknown(f"guest {guest_id}")
    return Recipient(
        key=f"guest:{guest_id}" if guest_id is not None else CONTACT,
        label=f"guest {guest_id}" if guest_id is not None else "complaint contact",
        name=contact.get("name") or (guest.name if guest else None),
        email=contact.get("email") or (guest.email if guest else None),
        phone=contact.get("phone") or (guest.phone if guest else None),
        language=language_of(language or (guest.language if guest else None), hotel_language()),
        guest_id=guest_id,
        preferred=preferred,
    )


def staff_recipients(
    session: Session, department: str, role: str, also: dict | None = None
) -> list[Recipient]:
    """The department's active staff in `role` (and `also`, a complaint's owner); when
    nobody holds the role yet, the role itself, told through the log."""
    conditions = [(StaffMember.department == department) & (StaffMember.role == role)]
    if also and also.get("kind") == "staff" and also.get("id") is not None:
        conditions.append(StaffMember.staff_id == also["id"])
    members = session.scalars(
        select(StaffMember)
        .where(StaffMember.active, or_(*conditions))
        .order_by(StaffMember.staff_id)
    ).all()
    language = hotel_language()
    if not members:
        return [Recipient(key=f"role:{role}", label=f"{role} of {department}", language=language)]
    return [
        Recipient(
            key=f"staff:{m.staff_id}",
            label=f"staff {m.staff_id}",
            name=m.name,
            email=m.email,
            phone=m.phone,
            language=language,
            staff_id=m.staff_id,
        )
        for m in members
    ]


def _complaint_preference(session: Session, complaint_id: int) -> str | None:
    """A complaint is answered on the channel its receipt went by."""
    return session.scalar(
        select(Notification.channel).where(
            Notification.ref == f"complaint:{complaint_id}",
            Notification.kind == "complaint_received",
        )
    )


# --- events -> drafts ------------------------------------------------------------------


def drafts_for(session: Session, event: Event) -> list[Draft]:
    """The notifications an event calls for."""
    data = event.data
    kind = event.type
    if kind in ("reservation_held", "reservation_released", "reservation_cancelled"):
        # told where the booking said, in its language: the agent may have taken other
        # details for it than the guest's file holds
        guest = guest_recipient(session, data["guest_id"], data["contact"], data["language"])
        return [
            Draft(
                kind, guest, {**data, "name": guest.name}, f"reservation:{data['reservation_id']}"
            )
        ]
    if kind.startswith("complaint_"):
        return _complaint_drafts(session, event)
    if kind == "response_promised":
        if not data["reminder"]:
            return []  # the agent told the guest on the call; the department hears when it is due
        return [
            Draft("response_due", r, {**data, "name": r.name}, f"revisit:{data['revisit_id']}")
            for r in staff_recipients(session, data["department"], "manager")
        ]
    if kind == "item_signed_off":
        guest = guest_recipient(session, data["guest_id"], data.get("contact"))
        ref = f"revisit:{data['revisit_id']}/item:{data['item_id']}"
        return [Draft(kind, guest, {**data, "name": guest.name}, ref)]
    return []


def _complaint_drafts(session: Session, event: Event) -> list[Draft]:
    data = event.data
    ref = f"complaint:{data['complaint_id']}"
    if event.type == "complaint_escalated":
        return [
            Draft("complaint_escalated", r, {**data, "name": r.name}, ref)
            for r in staff_recipients(session, data["department"], "director", data["owner"])
        ]
    context = dict(data)
    if event.type == "complaint_filed":
        kind = "complaint_received"
        preferred = PREFERENCE_BY_CONTACT_CHANNEL.get(data["channel"])
        # a complaint entered after the day it was received is due already: the receipt
        # promises no time that has passed
        context["answer_by"] = data["due_at"] if data["due_at"] > data["at"] else None
    else:
        kind = event.type
        preferred = _complaint_preference(session, data["complaint_id"])
    guest = guest_recipient(
        session, data.get("guest_id"), data.get("contact"), data.get("language"), preferred
    )
    return [Draft(kind, guest, {**context, "name": guest.name}, ref)]


def birthday_drafts(session: Session, day: date) -> list[Draft]:
    """Greetings for the guests whose birthday is `day` and not yet greeted this year."""
    # the same expressions as the index on guests' birthdays
    month_day = tuple_(extract("month", Guest.birthday), extract("day", Guest.birthday))
    guests = session.scalars(
        select(Guest)
        .where(month_day.in_(birthdays_falling_on(day)))
        .where(
            ~select(Notification.id)
            .where(Notification.dedupe_key == _birthday_key(day.year, Guest.guest_id))
            .exists()
        )
        .order_by(Guest.guest_id)
    ).all()
    drafts = []
    for guest in guests:
        recipient = guest_recipient(session, guest.guest_id)
        drafts.append(Draft("birthday", recipient, {"name": guest.name}, f"guest:{guest.guest_id}"))
    return drafts


def birthday_cause(year: int) -> str:
    return f"birthday:{year}"


def _birthday_key(year: int, guest_id):
    # the same key `issue` writes for a birthday draft: dedupe_key(cause, recipient)
    return literal(f"{birthday_cause(year)}/guest:") + cast(guest_id, String)


# --- writing them ----------------------------------------------------------------------


# Made once: building the statement for every batch cost more than running it. Given a
# batch's rows, it is one multi-row INSERT (a dedupe key repeated within it is skipped too).
# A day's birthdays (thousands at once with a million guests) go in parts: rendered and
# written all together, they held 10 MB at once (0.4 MB one by one) and the process kept it.
ISSUED_TOGETHER = 100
_QUEUE = (
    insert(NOTIFICATIONS)
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    .returning(NOTIFICATIONS.c.id)
)


def issue(
    session: Session,
    drafts: list[Draft],
    cause: str,
    channels: Channels,
    now: datetime,
    event_id=None,
) -> list[int]:
    """Write each draft as a queued notification, once per cause and recipient; the ids
    of those written now (a repeated cause writes nothing)."""
    return issue_all(session, [(cause, event_id, drafts)], channels, now)


def issue_all(
    session: Session, causes: list[tuple[str, Any, list[Draft]]], channels: Channels, now
) -> list[int]:
    """`issue` for several causes at once, `(cause, event_id, drafts)` each (a batch of
    events): one statement for up to `ISSUED_TOGETHER` notifications."""
    wanted = [(cause, event_id, draft) for cause, event_id, drafts in causes for draft in drafts]
    written = []
    for start in range(0, len(wanted), ISSUED_TOGETHER):
        rows = [
            _queued(draft, cause, event_id, channels, now)
            for cause, event_id, draft in wanted[start : start + ISSUED_TOGETHER]
        ]
        written.extend(session.scalars(_QUEUE, rows))
    if written:
        request_wakeup(session, QUEUED_FLAG)
    return written


def _queued(draft: Draft, cause: str, event_id, channels: Channels, now: datetime) -> dict:
    route = choose_channel(draft.recipient, channels)
    language = draft.recipient.language
    subject, body = templates.render(draft.kind, language, draft.context)
    return {
        "dedupe_key": dedupe_key(cause, draft.recipient),
        "kind": draft.kind,
        "channel": route.channel,
        "to": route.to,
        "language": language,
        "guest_id": draft.recipient.guest_id,
        "staff_id": draft.recipient.staff_id,
        "contact_phone": draft.recipient.phone if draft.recipient.key == CONTACT else None,
        "subject": subject[:300],
        "body": body,
        "ref": draft.ref,
        "event_id": event_id,
        "status": "queued",
        "attempts": 0,
        # a call task waits for an agent; everything else for the courier, now
        "next_attempt_at": None if route.channel == "phone" else now,
    }
