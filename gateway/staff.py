"""Staff accounts, roles and departments: the rules, in plain code.

Roles: `agent` (call centre, front desk, customer service), `manager` and `director`
(of one department each), `admin`. Every change is announced on the bus
(`staff_registered`, `staff_updated`) so services keep their own list of who holds which
role in which department, without reading this database.
"""

import logging

from nameko.extensions import DependencyProvider
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway import auth
from gateway.models import KIT, Staff
from servicekit import errors, outbox, settings
from servicekit.database import make_engine

log = logging.getLogger(__name__)

ROLES = ("agent", "manager", "director", "admin")
ROLES_WITH_DEPARTMENT = ("manager", "director")


def as_dict(staff: Staff) -> dict:
    return {
        "id": staff.id,
        "username": staff.username,
        "name": staff.name,
        "role": staff.role,
        "department": staff.department,
        "email": staff.email,
        "phone": staff.phone,
        "active": staff.active,
        "created_at": staff.created_at.isoformat() if staff.created_at else None,
    }


def _event_data(staff: Staff) -> dict:
    data = as_dict(staff)
    data["staff_id"] = data.pop("id")
    data.pop("created_at")
    return data


def register(session: Session, data: dict) -> dict:
    """Create a staff account in `session` (the caller commits); `data` is shaped by
    `schemas.StaffCreate`."""
    role = data["role"]
    department = data.get("department")
    if role in ROLES_WITH_DEPARTMENT and not department:
        raise errors.ValidationFailed.on("department", f"a {role} belongs to a department")
    if department and department not in settings.departments():
        raise errors.ValidationFailed.on("department", "unknown department")
    staff = Staff(
        username=data["username"],
        name=data["name"],
        password_hash=auth.hash_password(data["password"]),
        role=role,
        department=department,
        email=data.get("email"),
        phone=data.get("phone"),
    )
    session.add(staff)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        existing = session.scalar(select(Staff.id).where(Staff.username == data["username"]))
        raise errors.Conflict("that username is taken", {"existing_id": existing}) from None
    outbox.record(session, KIT, "staff_registered", _event_data(staff))
    return as_dict(staff)


def authenticate(session: Session, username: str, password: str) -> Staff | None:
    staff = session.scalar(select(Staff).where(Staff.username == username))
    if staff is None or not staff.active:
        # spend the same time as a real check, so timing does not reveal usernames
        auth.check_password(password, _DUMMY_HASH)
        return None
    return staff if auth.check_password(password, staff.password_hash) else None


def list_staff(session: Session, role: str | None, department: str | None, limit: int, after: int):
    query = select(Staff).where(Staff.id > after).order_by(Staff.id).limit(limit + 1)
    if role:
        query = query.where(Staff.role == role)
    if department:
        query = query.where(Staff.department == department)
    rows = session.scalars(query).all()
    return [as_dict(s) for s in rows[:limit]], (rows[limit - 1].id if len(rows) > limit else None)


def ensure_first_admin(session: Session) -> None:
    """On a database with no staff, create `admin` so the suite can be used at all."""
    if session.scalar(select(func.count()).select_from(Staff)):
        return
    password = settings.env("HOTELCS_ADMIN_PASSWORD", "admin")
    if password == "admin":
        log.warning("created the first admin with the default password; change it")
    else:
        log.warning("created the first admin with the password from HOTELCS_ADMIN_PASSWORD")
    try:
        register(
            session,
            {"username": "admin", "password": password, "name": "Administrator", "role": "admin"},
        )
        session.commit()
    except (errors.Conflict, IntegrityError):
        session.rollback()  # another gateway process created it at the same moment


class FirstAdmin(DependencyProvider):
    """Creates the first admin when the gateway starts on an empty staff table."""

    def start(self):
        engine = make_engine(settings.database_url("gateway"), pool_size=1)
        try:
            with Session(engine) as session:
                ensure_first_admin(session)
        finally:
            engine.dispose()


_DUMMY_HASH = auth.hash_password("not-a-real-password")
