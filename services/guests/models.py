"""The guests service's own database: guest files, groups, the daily file-number counter,
and the caller screen's projection of what the other services publish."""

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.database import NAMING_CONVENTION, kit_tables


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


KIT = kit_tables(Base.metadata)


class DailySerial(Base):
    """The last serial handed out for one arrival day, shared by guests and groups.

    Incremented in the same transaction as the insert it numbers, so a rolled-back
    registration gives its serial back: no gaps; the row lock orders concurrent ones.
    """

    __tablename__ = "daily_serials"
    __table_args__ = (CheckConstraint("last between 1 and 999", name="serial_range"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, nullable=False)


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_number: Mapped[str] = mapped_column(String(9), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    arrival_date: Mapped[date] = mapped_column(Date, index=True)
    # no foreign key: guests already point at groups, and a leader may leave the group
    leader_guest_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Guest(Base):
    __tablename__ = "guests"
    __table_args__ = (
        CheckConstraint("category in ('individual', 'group', 'vip')", name="category"),
        CheckConstraint("language in ('es', 'en')", name="language"),
        # accent- and case-free name, searched anywhere in it through trigrams
        Index(
            "ix_guests_name_key_trgm",
            "name_key",
            postgresql_using="gin",
            postgresql_ops={"name_key": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    file_number: Mapped[str] = mapped_column(String(9), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    birthday: Mapped[date | None] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(2))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    arrival_date: Mapped[date] = mapped_column(Date, index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class HistoryLine(Base):
    """One line of a caller's history, projected from another service's event.

    `phone` is kept only while no guest is known for it (a complaint from a contact), and
    such lines are handed to the guest who registers with that phone later.
    """

    __tablename__ = "caller_history"
    __table_args__ = (
        Index("ix_caller_history_guest_at", "guest_id", "at"),
        Index(
            "ix_caller_history_phone_at",
            "phone",
            "at",
            postgresql_where="guest_id is null",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    guest_id: Mapped[int | None] = mapped_column(Integer)
    phone: Mapped[str | None] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    ref: Mapped[str] = mapped_column(String(64))


class OpenComplaint(Base):
    """A caller's complaint as the complaints service last told us; open until resolved.

    Events arrive on one queue per type, so a late `complaint_dispatched` may follow
    `complaint_resolved`: `resolved_at` never goes back to null.
    """

    __tablename__ = "caller_complaints"
    __table_args__ = (
        Index("ix_caller_complaints_guest", "guest_id", postgresql_where="resolved_at is null"),
        Index(
            "ix_caller_complaints_phone",
            "phone",
            postgresql_where="guest_id is null and resolved_at is null",
        ),
    )

    complaint_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    guest_id: Mapped[int | None] = mapped_column(Integer)
    phone: Mapped[str | None] = mapped_column(String(20))
    tracking_code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    status_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    department: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PromisedResponse(Base):
    """An answer a revisit promised a guest from a department, until that department's
    manager signs off an item of the revisit. A sign-off that arrives before the promise
    leaves a row with `answered_at` set, so the late promise is born answered."""

    __tablename__ = "caller_promises"
    __table_args__ = (
        Index("ix_caller_promises_guest", "guest_id", postgresql_where="answered_at is null"),
    )

    revisit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    department: Mapped[str] = mapped_column(String(64), primary_key=True)
    guest_id: Mapped[int] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(Text)
    respond_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    promised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
