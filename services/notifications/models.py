"""The notifications service's own database: the messages it owes, and whom it can reach.

`staff_members` and `guests` are projections of the gateway's and the guests service's
events (contact details, role, department, language, birthday), so a notice can be
addressed without calling back. `notifications` is both the log of every message and the
courier's work queue: a row is written `queued`, then sent (or `failed` after its last
attempt) by the courier, outside the transaction that consumed the event.
"""

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.database import NAMING_CONVENTION, kit_tables
from services.notifications.domain import CHANNELS, STATUSES


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


KIT = kit_tables(Base.metadata)


class StaffMember(Base):
    """A staff account as the gateway announced it: who directs or manages a department."""

    __tablename__ = "staff_members"

    staff_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    department: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool]
    # when the announcing event happened: an older event arriving late changes nothing
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_staff_members_department_role", "department", "role"),)


class Guest(Base):
    """A guest's contact details, language and birthday, as the guests service announced."""

    __tablename__ = "guests"

    guest_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    birthday: Mapped[date | None]
    language: Mapped[str] = mapped_column(String(8))
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # the birthday job looks guests up by month and day
        Index(
            "ix_guests_birthday_month_day",
            text("(extract(month from birthday))"),
            text("(extract(day from birthday))"),
        ),
    )


class Notification(Base):
    """One message to one recipient on one channel, and where its delivery stands."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # what makes it the same message: the event (or the birthday and year) and the recipient
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    to: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8))
    guest_id: Mapped[int | None] = mapped_column(Integer)
    staff_id: Mapped[int | None] = mapped_column(Integer)
    # a complaint's contact without a guest file: the phone their caller screen is kept by
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(String(100))
    event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(String(10), server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    # when the courier may try (again); NULL while nobody should (sent, failed, a call task)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"status in {STATUSES}", name="status"),
        CheckConstraint(f"channel in {CHANNELS}", name="channel"),
        Index("ix_notifications_guest_id_id", "guest_id", "id"),
        # the courier's question: what is due now
        Index(
            "ix_notifications_due",
            "next_attempt_at",
            postgresql_where=text("status = 'queued' AND next_attempt_at IS NOT NULL"),
        ),
    )
