"""The caller screen: who is calling, their history, and what is still open for them.

The other services' events are projected here as they arrive (one history line per
event, plus the complaints and promised answers still open), so the screen is one
indexed look-up of the phone and one indexed query of the lines, never a call to
another service while the phone rings.

What counts as open:
- a complaint, from `complaint_filed` (or whichever of its events arrives first) until
  `complaint_resolved`; dispatched and escalated complaints stay open with that status;
- a promised answer, from `response_promised` until `item_signed_off` for the same revisit
  and department. Once `respond_by` has passed it stays on the screen marked `overdue` (a
  broken promise is what the agent most needs to see), for `OVERDUE_PROMISE_SHOWN_FOR`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, and_, bindparam, case, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from servicekit import errors, settings
from servicekit.database import insert_with_commit, prepared, without_transaction
from servicekit.events import Event
from servicekit.phones import normalise_phone
from services.guests.models import Guest, HistoryLine, OpenComplaint, PromisedResponse

# a caller's complaint is kept with one upsert through the table (see _complaint_row)
COMPLAINTS = OpenComplaint.__table__

HISTORY_LIMIT = 50
OVERDUE_PROMISE_SHOWN_FOR = timedelta(days=7)


@dataclass(frozen=True)
class Line:
    kind: str  # reservation | stay | complaint | revisit | notification
    summary: str
    ref: str  # the gateway path of what it is about, e.g. "complaints/12"
    at: datetime


def _hotel_time(moment: datetime) -> datetime:
    """A moment as the hotel's clocks show it: what staff reading a summary expect."""
    return moment.astimezone(settings.hotel_tz())


def _reservation(text: str) -> Callable[[Event], Line]:
    def line(event: Event) -> Line:
        d = event.data
        shown = {**d, "room_type_name": d.get("room_type_name") or d["room_type"]}
        if d.get("hold_until"):
            shown["hold_until"] = _hotel_time(d["hold_until"])
        return Line(
            "reservation",
            text.format(**shown),
            f"reservations/{d['reservation_id']}",
            d.get("at") or event.occurred_at,
        )

    return line


def _stay(text: str, at_field: str) -> Callable[[Event], Line]:
    def line(event: Event) -> Line:
        d = event.data
        return Line("stay", text.format(**d), f"reservations/{d['reservation_id']}", d[at_field])

    return line


def _complaint(text: str) -> Callable[[Event], Line]:
    def line(event: Event) -> Line:
        d = event.data
        return Line("complaint", text.format(**d), f"complaints/{d['complaint_id']}", d["at"])

    return line


def _revisit_scheduled(event: Event) -> Line:
    d = event.data
    what = "Post-stay" if d["kind"] == "post_stay" else "Complaint"
    return Line(
        "revisit",
        f"{what} revisit due {d['due_date']:%Y-%m-%d}",
        f"revisits/{d['revisit_id']}",
        event.occurred_at,
    )


def _revisit_completed(event: Event) -> Line:
    d = event.data
    parts = ["Revisit call: " + ("reached" if d["reached"] else "not reached")]
    if d.get("agent"):
        parts.append(f"by {d['agent']['username']}")
    if d.get("satisfaction") is not None:
        parts.append(f"satisfaction {d['satisfaction']}/5")
    if d.get("items"):
        parts.append(f"{len(d['items'])} item(s) routed")
    return Line("revisit", ", ".join(parts), f"revisits/{d['revisit_id']}", d["at"])


def _response_promised(event: Event) -> Line | None:
    d = event.data
    if d.get("reminder"):
        return None  # the reminder is for the department; the promise is already listed
    return Line(
        "revisit",
        f"Answer promised from {d['department']} by "
        f"{_hotel_time(d['respond_by']):%Y-%m-%d %H:%M}: {d['text']}",
        f"revisits/{d['revisit_id']}",
        d["at"],
    )


def _notification(outcome: str) -> Callable[[Event], Line]:
    def line(event: Event) -> Line:
        d = event.data
        about = f": {d['subject']}" if d.get("subject") else ""
        return Line(
            "notification",
            f"{d['kind'].replace('_', ' ').capitalize()} by {d['channel']} {outcome}{about}",
            f"notifications/{d['notification_id']}",
            d["at"],
        )

    return line


LINES: dict[str, Callable[[Event], Line | None]] = {
    "reservation_held": _reservation(
        "Reservation {code} held: {rooms} x {room_type_name}, {nights} night(s) from "
        "{arrival:%Y-%m-%d}, {total_price} {currency}"
    ),
    "reservation_released": _reservation(
        "Reservation {code} released: not checked in by {hold_until:%Y-%m-%d %H:%M}"
    ),
    "reservation_cancelled": _reservation("Reservation {code} cancelled"),
    "guest_checked_in": _stay("Checked in (reservation {code}, {room_type})", "checked_in_at"),
    "guest_checked_out": _stay(
        "Checked out (reservation {code}); charges {charges} {currency}", "checked_out_at"
    ),
    "complaint_filed": _complaint(
        "Complaint {tracking_code} received by {channel} ({category}): {summary}"
    ),
    "complaint_dispatched": _complaint("Complaint {tracking_code} dispatched to {department}"),
    "complaint_escalated": _complaint(
        "Complaint {tracking_code} escalated to the {department} director: {reason}"
    ),
    "complaint_reported": _complaint("Complaint {tracking_code}: {department} reported {result}"),
    "complaint_resolved": _complaint("Complaint {tracking_code} resolved: {result}"),
    "revisit_scheduled": _revisit_scheduled,
    "revisit_completed": _revisit_completed,
    "response_promised": _response_promised,
    "item_signed_off": lambda e: Line(
        "revisit",
        f"Answer from {e.data['department']}: {e.data['result']}",
        f"revisits/{e.data['revisit_id']}",
        e.data["at"],
    ),
    "notification_sent": _notification("sent"),
    "notification_failed": _notification("failed"),
}

COMPLAINT_STATUS = {
    "complaint_filed": "open",
    "complaint_dispatched": "dispatched",
    "complaint_escalated": "escalated",
    "complaint_reported": "reported",
    "complaint_resolved": "resolved",
}


def history_line(event: Event) -> Line | None:
    """The line an event adds to its guest's history (None: it adds none)."""
    return LINES[event.type](event)


def project(session: Session, events: list[Event]) -> None:
    """Project a batch of events into the screen's tables (the caller makes each happen
    once): what is open as each event tells it, and the batch's history lines in one INSERT
    sent with the transaction's COMMIT (the ORM's unit of work cost more than the statement,
    and the statement a round trip of its own)."""
    complaints: dict[tuple[bool, bool], list[dict]] = {}
    lines = [line for event in events if (line := _project(session, event, complaints)) is not None]
    # each kind of complaint upsert once for all the batch's rows of it (one round trip); the
    # order among them does not matter, as events of one complaint may come in any order
    for kind, rows in complaints.items():
        session.execute(_COMPLAINT_UPSERTS[kind], rows)
    insert_with_commit(session, HistoryLine.__table__, lines)


def _project(
    session: Session, event: Event, complaints: dict[tuple[bool, bool], list[dict]]
) -> dict | None:
    """Track what `event` opens or closes (its complaint's row added to `complaints`, by the
    kind of upsert it needs); its history line's row, if it adds one."""
    guest_id, phone = _whose(session, event.data)
    if guest_id is None and phone is None:
        return None  # about nobody we could ever show on a screen
    if event.type in COMPLAINT_STATUS:
        kind, row = _complaint_row(event, guest_id, phone)
        complaints.setdefault(kind, []).append(row)
    elif event.type == "response_promised" and guest_id is not None:
        # open promises are shown on a guest's screen (a caller without a file has the
        # promise in their history only)
        _track_promise(session, event.data, guest_id)
    elif event.type == "item_signed_off" and guest_id is not None:
        _answer_promise(session, event.data, guest_id)
    line = history_line(event)
    if line is None:
        return None
    return {
        "guest_id": guest_id,
        "phone": phone,
        "at": line.at,
        "kind": line.kind,
        "event": event.type,
        "summary": line.summary,
        "ref": line.ref,
    }


# The whole screen in one round trip: the guest's file, the newest history lines and what
# is still open, each already shaped as the screen shows it. What was kept under the phone
# (a caller with no file yet) is shown with the guest's own: a contact's event projected
# while that phone's file was being registered is kept under the phone, and must not
# vanish from the screen. Prepared: planning it takes longer than running it.
_SCREEN = prepared(
    text(
        """
    with guest as (
        select * from guests where phone = :phone
    ), owner as (
        select (select id from guest) as guest_id
    ), lines as (
        select h.* from caller_history h, owner
        where h.guest_id = owner.guest_id
        union all
        select h.* from caller_history h
        where h.guest_id is null and h.phone = :phone
        order by at desc, id desc
        limit :limit
    ), complaints as (
        select c.* from caller_complaints c, owner
        where c.guest_id = owner.guest_id and c.resolved_at is null
        union all
        select c.* from caller_complaints c
        where c.guest_id is null and c.phone = :phone and c.resolved_at is null
    )
    select
        (select json_build_object(
            'id', id, 'file_number', file_number, 'card_number', file_number,
            'name', name, 'phone', phone, 'email', email, 'birthday', birthday,
            'category', category, 'language', language, 'group_id', group_id,
            'arrival_date', arrival_date, 'notes', notes, 'vip', category = 'vip',
            'created_at', created_at, 'updated_at', updated_at)
         from guest),
        (select coalesce(json_agg(json_build_object(
            'at', at, 'kind', kind, 'summary', summary, 'ref', ref, 'event', event)
            order by at desc, id desc), '[]')
         from lines),
        (select coalesce(json_agg(json_build_object(
            'complaint_id', complaint_id, 'tracking_code', tracking_code,
            'status', status, 'department', department, 'summary', summary,
            'received_at', received_at, 'due_at', due_at,
            'overdue', coalesce(due_at < :now, false),
            'ref', 'complaints/' || complaint_id)
            order by status_at desc), '[]')
         from complaints),
        (select coalesce(json_agg(json_build_object(
            'revisit_id', revisit_id, 'department', department, 'text', text,
            'respond_by', respond_by, 'promised_at', promised_at,
            'overdue', respond_by < :now, 'ref', 'revisits/' || revisit_id)
            order by respond_by), '[]')
         from caller_promises p, owner
         where p.guest_id = owner.guest_id and p.answered_at is null
           and p.respond_by > :shown_since)
    """
    ).bindparams(
        bindparam("now", type_=DateTime(timezone=True)),
        bindparam("shown_since", type_=DateTime(timezone=True)),
    ),
    "caller_screen",
)
# the timestamps PostgreSQL wrote into the JSON, rewritten as Python writes them
_TIMES = {
    "guest": ("created_at", "updated_at"),
    "history": ("at",),
    "complaints": ("received_at", "due_at"),
    "promised_responses": ("respond_by", "promised_at"),
}


def screen(session: Session, raw_phone: str, now: datetime, limit: int = HISTORY_LIMIT) -> dict:
    """What the agent sees when `raw_phone` calls."""
    phone = normalise_phone(raw_phone)
    guest, history, complaints, promises = (
        without_transaction(session)
        .execute(
            _SCREEN,
            {
                "phone": phone,
                "limit": limit,
                "now": now,
                "shown_since": now - OVERDUE_PROMISE_SHOWN_FOR,
            },
        )
        .one()
    )
    parts = {
        "guest": [guest] if guest else [],
        "history": history,
        "complaints": complaints,
        "promised_responses": promises,
    }
    for part, fields in _TIMES.items():
        for item in parts[part]:
            for field in fields:
                if item[field] is not None:
                    item[field] = datetime.fromisoformat(item[field]).isoformat()
    return {
        "phone": phone,
        "guest": guest,
        "vip": guest is not None and guest["vip"],
        "history": history,
        "open": {"complaints": complaints, "promised_responses": promises},
    }


def _whose(session: Session, data: dict[str, Any]) -> tuple[int | None, str | None]:
    """The guest an event is about; failing that, a contact's phone (normalised)."""
    if data.get("guest_id") is not None:
        return data["guest_id"], None
    raw = (data.get("contact") or {}).get("phone")
    if not raw:
        return None, None
    try:
        phone = normalise_phone(raw)
    except errors.ValidationFailed:
        return None, None
    guest_id = session.scalar(select(Guest.id).where(Guest.phone == phone))
    return (guest_id, None) if guest_id is not None else (None, phone)


_FILED_DETAILS = ("summary", "received_at", "due_at")


def _complaint_upsert(filed: bool, resolves: bool):
    """The upsert that keeps a caller's complaint as an event tells it (made once for each
    kind of event: building one costs more than running it).

    Events of one complaint travel on different queues, so they may arrive out of order:
    the latest status wins, and a resolved complaint stays resolved.
    """
    columns = [
        "complaint_id", "guest_id", "phone", "tracking_code", "status", "status_at",
        "department", "resolved_at", *(_FILED_DETAILS if filed else ()),
    ]  # fmt: skip
    row = insert(COMPLAINTS).values({column: bindparam(column) for column in columns})
    known, told = COMPLAINTS.c, row.excluded
    newer = and_(known.resolved_at.is_(None), told.status_at >= known.status_at)
    changes = {
        "status_at": case((newer, told.status_at), else_=known.status_at),
        "department": case((newer, told.department), else_=known.department),
        **{column: told[column] for column in (_FILED_DETAILS if filed else ())},
    }
    if resolves:
        # resolved whenever it is told, even by an event older than the last status
        changes["status"] = case((known.resolved_at.is_(None), told.status), else_=known.status)
        changes["resolved_at"] = func.coalesce(known.resolved_at, told.resolved_at)
    else:
        changes["status"] = case((newer, told.status), else_=known.status)
    return row.on_conflict_do_update(index_elements=[known.complaint_id], set_=changes)


_COMPLAINT_UPSERTS = {
    (filed, resolves): _complaint_upsert(filed, resolves)
    for filed in (False, True)
    for resolves in (False, True)
}


def _complaint_row(
    event: Event, guest_id: int | None, phone: str | None
) -> tuple[tuple[bool, bool], dict]:
    d = event.data
    status = COMPLAINT_STATUS[event.type]
    filed = event.type == "complaint_filed"
    resolves = status == "resolved"
    values = {
        "complaint_id": d["complaint_id"],
        "guest_id": guest_id,
        "phone": phone,
        "tracking_code": d["tracking_code"],
        "status": status,
        "status_at": d["at"],
        "department": d["department"],
        "resolved_at": d["at"] if resolves else None,
        **({column: d[column] for column in _FILED_DETAILS} if filed else {}),
    }
    return (filed, resolves), values


def _track_promise(session: Session, d: dict[str, Any], guest_id: int) -> None:
    stmt = insert(PromisedResponse).values(
        revisit_id=d["revisit_id"],
        department=d["department"],
        guest_id=guest_id,
        text=d["text"],
        respond_by=d["respond_by"],
        promised_at=d["at"],
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[PromisedResponse.revisit_id, PromisedResponse.department],
            set_={"text": stmt.excluded.text, "respond_by": stmt.excluded.respond_by},
        )
    )


def _answer_promise(session: Session, d: dict[str, Any], guest_id: int) -> None:
    stmt = insert(PromisedResponse).values(
        revisit_id=d["revisit_id"],
        department=d["department"],
        guest_id=guest_id,
        answered_at=d["at"],
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[PromisedResponse.revisit_id, PromisedResponse.department],
            set_={"answered_at": stmt.excluded.answered_at},
            where=PromisedResponse.answered_at.is_(None),
        )
    )
