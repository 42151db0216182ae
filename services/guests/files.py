"""Guest files and groups in the database: registration with the day's file number,
changes, look-ups, the clerk's daily arrivals list.

Each function works in the caller's session and leaves the commit to it, so the file,
the day's serial and the event announcing it commit together or not at all.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicekit import errors, outbox, pages, settings
from servicekit.phones import normalise_phone
from services.guests import domain
from services.guests.models import KIT, DailySerial, Group, Guest, HistoryLine, OpenComplaint

EDITABLE = ("name", "phone", "email", "birthday", "category", "language", "group_id", "notes")


def hotel_today() -> date:
    return datetime.now(settings.hotel_tz()).date()


def next_file_number(session: Session, day: date) -> str:
    """Take the day's next serial; the row stays locked until the caller's commit.

    A transaction that rolls back gives its serial back, so numbers have no gaps; a
    second registration for the same day waits for the first to commit.
    """
    taken = session.execute(
        insert(DailySerial)
        .values(day=day, last=1)
        .on_conflict_do_update(
            index_elements=[DailySerial.day],
            set_={"last": DailySerial.last + 1},
            where=DailySerial.last < domain.MAX_DAILY_SERIAL,
        )
        .returning(DailySerial.last)
    ).scalar_one_or_none()
    if taken is None:
        raise domain.day_full(day)
    return domain.file_number(day, taken)


def guest_dict(guest: Guest) -> dict:
    return {
        "id": guest.id,
        "file_number": guest.file_number,
        "card_number": guest.file_number,
        "name": guest.name,
        "phone": guest.phone,
        "email": guest.email,
        "birthday": _iso(guest.birthday),
        "category": guest.category,
        "language": guest.language,
        "group_id": guest.group_id,
        "arrival_date": guest.arrival_date.isoformat(),
        "notes": guest.notes,
        "vip": guest.category == "vip",
        "created_at": _iso(guest.created_at),
        "updated_at": _iso(guest.updated_at),
    }


def group_dict(group: Group, members: list[Guest] | None = None) -> dict:
    result = {
        "id": group.id,
        "file_number": group.file_number,
        "name": group.name,
        "arrival_date": group.arrival_date.isoformat(),
        "leader_guest_id": group.leader_guest_id,
        "created_at": _iso(group.created_at),
    }
    if members is not None:
        result["members"] = [guest_dict(m) for m in members]
    return result


def register_guest(session: Session, data: dict[str, Any]) -> dict:
    """Open a guest file. `data` as in `POST /guests`; returns the file."""
    today = hotel_today()
    group_id = data.get("group_id")
    guest = Guest(
        name=domain.clean_name(data.get("name")),
        phone=normalise_phone(data.get("phone")),
        email=data.get("email") or None,
        birthday=domain.check_birthday(domain.parse_date(data.get("birthday"), "birthday"), today),
        category=domain.check_choice(
            data.get("category") or ("group" if group_id else "individual"),
            "category",
            domain.CATEGORIES,
        ),
        language=domain.check_choice(data.get("language") or "es", "language", domain.LANGUAGES),
        group_id=_existing_group(session, group_id),
        arrival_date=domain.check_arrival(
            domain.parse_date(data.get("arrival_date"), "arrival_date") or today, today
        ),
        notes=data.get("notes") or None,
    )
    guest.name_key = domain.name_key(guest.name)
    _refuse_phone_on_file(session, guest.phone)
    guest.file_number = next_file_number(session, guest.arrival_date)
    session.add(guest)
    _flush_or_conflict(session, guest.phone)
    _adopt_contact_history(session, guest)
    outbox.record(session, KIT, "guest_registered", _event_data(guest))
    return guest_dict(guest)


def get_guest(session: Session, guest_id: int) -> dict:
    return guest_dict(_guest(session, guest_id))


def update_guest(session: Session, guest_id: int, changes: dict[str, Any]) -> dict:
    """Change the editable fields of a file (`EDITABLE`); the file number never changes."""
    guest = _guest(session, guest_id, lock=True)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise errors.ValidationFailed(
            "these fields cannot be changed", {f: ["cannot be changed"] for f in sorted(unknown)}
        )
    new = dict(changes)
    if "name" in new:
        new["name"] = domain.clean_name(new["name"])
    if "phone" in new:
        new["phone"] = normalise_phone(new["phone"])
        if new["phone"] != guest.phone:
            _refuse_phone_on_file(session, new["phone"])
    if "birthday" in new:
        new["birthday"] = domain.check_birthday(
            domain.parse_date(new["birthday"], "birthday"), hotel_today()
        )
    if "category" in new:
        domain.check_choice(new["category"], "category", domain.CATEGORIES)
    if "language" in new:
        domain.check_choice(new["language"], "language", domain.LANGUAGES)
    if "group_id" in new:
        _existing_group(session, new["group_id"])
        if "category" not in new:
            new["category"] = domain.category_in_group(guest.category, new["group_id"])
    for optional in ("email", "notes"):
        if optional in new:
            new[optional] = new[optional] or None
    changed = {k: v for k, v in new.items() if getattr(guest, k) != v}
    if not changed:
        return guest_dict(guest)
    for field, value in changed.items():
        setattr(guest, field, value)
    guest.name_key = domain.name_key(guest.name)
    guest.updated_at = func.now()
    _flush_or_conflict(session, guest.phone)
    if "phone" in changed:
        _adopt_contact_history(session, guest)
    session.refresh(guest)
    outbox.record(session, KIT, "guest_updated", _event_data(guest))
    return guest_dict(guest)


def find_guests(
    session: Session,
    *,
    phone: str | None = None,
    file_number: str | None = None,
    name: str | None = None,
    limit: int = pages.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> dict:
    """Guests by phone, file (card) number and name part, oldest file first, keyset-paged."""
    query = select(Guest).order_by(Guest.id).limit(limit + 1)
    after = pages.decode_cursor(cursor, int)
    if after is not None:
        query = query.where(Guest.id > after)
    if phone:
        query = query.where(Guest.phone == normalise_phone(phone))
    if file_number:
        query = query.where(Guest.file_number == file_number.strip())
    if name and domain.name_key(name):
        pattern = "%" + _like_escape(domain.name_key(name)) + "%"
        query = query.where(Guest.name_key.like(pattern, escape="\\"))
    rows = session.scalars(query).all()
    return pages.page(rows, limit, key=lambda g: g.id, dump=guest_dict)


def arrivals(
    session: Session, day: date, limit: int = pages.DEFAULT_LIMIT, cursor: str | None = None
) -> dict:
    """The clerk's list of one arrival day: groups and guests in file-number order, a page
    at a time (the cursor is the last file number listed)."""
    after = pages.decode_cursor(cursor, str)

    def of_the_day(model):
        query = select(model).where(model.arrival_date == day)
        if after is not None:
            query = query.where(model.file_number > after)
        return session.scalars(query.order_by(model.file_number).limit(limit + 1)).all()

    guests, groups = of_the_day(Guest), of_the_day(Group)
    sizes = dict(
        session.execute(
            select(Guest.group_id, func.count())
            .where(Guest.group_id.in_([g.id for g in groups]))
            .group_by(Guest.group_id)
        ).all()
    )
    items = [{"kind": "guest", **_arrival_of(g)} for g in guests] + [
        {
            "kind": "group",
            **group_dict(g),
            "category": "group",
            "vip": False,
            "members": sizes.get(g.id, 0),
        }
        for g in groups
    ]
    items.sort(key=lambda item: item["file_number"])
    listed = pages.page(items[: limit + 1], limit, lambda item: item["file_number"], dict)
    return {"date": day.isoformat(), **listed}


def register_group(session: Session, data: dict[str, Any]) -> dict:
    """Open a group's file, numbered from the same daily serial as guests. A leader who
    is in no group yet joins this one."""
    today = hotel_today()
    group = Group(
        name=domain.clean_name(data.get("name")),
        arrival_date=domain.check_arrival(
            domain.parse_date(data.get("arrival_date"), "arrival_date") or today, today
        ),
        leader_guest_id=data.get("leader_guest_id"),
    )
    leader = None
    if group.leader_guest_id is not None:
        leader = (
            session.get(Guest, group.leader_guest_id, with_for_update=True)
            if _is_id(group.leader_guest_id)
            else None
        )
        if leader is None:
            raise errors.ValidationFailed.on("leader_guest_id", "no guest has this id")
        if leader.group_id is not None:
            raise errors.ValidationFailed.on(
                "leader_guest_id", "this guest already belongs to another group"
            )
    group.file_number = next_file_number(session, group.arrival_date)
    session.add(group)
    session.flush()
    outbox.record(
        session,
        KIT,
        "group_registered",
        {
            "group_id": group.id,
            "file_number": group.file_number,
            "name": group.name,
            "arrival_date": group.arrival_date,
            "leader_guest_id": group.leader_guest_id,
        },
    )
    if leader is not None:
        leader.group_id = group.id
        leader.category = domain.category_in_group(leader.category, group.id)
        leader.updated_at = func.now()
        session.flush()
        session.refresh(leader)
        outbox.record(session, KIT, "guest_updated", _event_data(leader))
    session.refresh(group)
    return group_dict(group, _members(session, group.id))


def get_group(session: Session, group_id: int) -> dict:
    group = session.get(Group, group_id) if _is_id(group_id) else None
    if group is None:
        raise errors.NotFound(f"no group {group_id}")
    return group_dict(group, _members(session, group.id))


def _members(session: Session, group_id: int) -> list[Guest]:
    return list(
        session.scalars(select(Guest).where(Guest.group_id == group_id).order_by(Guest.file_number))
    )


def _arrival_of(guest: Guest) -> dict:
    full = guest_dict(guest)
    # the clerk's list is basic information: no birthday, no email
    return {k: v for k, v in full.items() if k not in ("birthday", "email")}


def _guest(session: Session, guest_id: int, lock: bool = False) -> Guest:
    guest = session.get(Guest, guest_id, with_for_update=lock) if _is_id(guest_id) else None
    if guest is None:
        raise errors.NotFound(f"no guest {guest_id}")
    return guest


def _is_id(value: Any) -> bool:
    """An id the database could hold (a path's 99999999999 is simply not found)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 2**31


def _existing_group(session: Session, group_id: int | None) -> int | None:
    if group_id is not None and (not _is_id(group_id) or session.get(Group, group_id) is None):
        raise errors.ValidationFailed.on("group_id", "no group has this id")
    return group_id


def _refuse_phone_on_file(session: Session, phone: str) -> None:
    existing = session.scalar(select(Guest.id).where(Guest.phone == phone))
    if existing is not None:
        raise errors.Conflict("a guest with this phone is on file", {"existing_id": existing})


def _flush_or_conflict(session: Session, phone: str) -> None:
    """Flush; a guest who took the same phone a moment ago is a conflict, not a 500."""
    try:
        session.flush()
        return
    except IntegrityError:
        session.rollback()
    # raised outside the except block: the database's message names the phone, and a
    # chained traceback would carry it into the logs
    _refuse_phone_on_file(session, phone)
    raise errors.Conflict("another change to this phone ran at the same moment; try again")


def _adopt_contact_history(session: Session, guest: Guest) -> None:
    """Hand the guest what was projected for their phone before they had a file."""
    for model in (HistoryLine, OpenComplaint):
        session.execute(
            update(model)
            .where(model.guest_id.is_(None), model.phone == guest.phone)
            .values(guest_id=guest.id, phone=None)
        )


def _event_data(guest: Guest) -> dict:
    return {
        "guest_id": guest.id,
        "file_number": guest.file_number,
        "category": guest.category,
        "name": guest.name,
        "phone": guest.phone,
        "email": guest.email,
        "birthday": guest.birthday,
        "language": guest.language,
        "arrival_date": guest.arrival_date,
        "group_id": guest.group_id,
    }


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None
