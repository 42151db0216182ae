"""The revisits service's own database.

Besides the revisits, their items and promised responses, it keeps two small projections
fed by the bus (guests and staff, so a revisit can be shown and routed without calling
back) and the commission ledger: which returning guest's stay is credited to which agent.
"""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    Text,
    func,
)
from sqlalchemy import text as sql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from servicekit.database import NAMING_CONVENTION, kit_tables


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


KIT = kit_tables(Base.metadata)


class Guest(Base):
    """What an agent needs to make the call, as the guests service last announced it."""

    __tablename__ = "guests"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(20))
    phone: Mapped[str] = mapped_column(String(32), index=True)
    language: Mapped[str] = mapped_column(String(8))
    # the announcing event's time: an older event delivered late never overwrites a newer one
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StaffMember(Base):
    """Who holds which role in which department (from the gateway's staff events)."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    department: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(server_default=sql("true"))
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_staff_role_department", "role", "department"),)


class Revisit(Base):
    __tablename__ = "revisits"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    # None only for a complaint from someone with no guest file (reached by `contact`)
    guest_id: Mapped[int | None]
    contact: Mapped[dict | None] = mapped_column(JSON)
    reservation_id: Mapped[int | None] = mapped_column(unique=True)
    complaint_id: Mapped[int | None] = mapped_column(unique=True)
    complaint_resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_date: Mapped[date] = mapped_column(Date)
    # the due date as first planned: missed calls move `due_date`, never the plan
    planned_date: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(20), server_default=sql("'due'"))
    attempts: Mapped[int] = mapped_column(server_default=sql("0"))
    agent_id: Mapped[int | None]
    agent_username: Mapped[str | None] = mapped_column(String(64))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reached: Mapped[bool | None]
    notes: Mapped[str | None] = mapped_column(Text)
    satisfaction: Mapped[int | None]
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    items: Mapped[list["RevisitItem"]] = relationship(
        back_populates="revisit", order_by="RevisitItem.id", lazy="selectin"
    )
    promises: Mapped[list["PromisedResponse"]] = relationship(
        back_populates="revisit", order_by="PromisedResponse.id", lazy="selectin"
    )

    __table_args__ = (
        CheckConstraint("kind in ('post_stay', 'complaint')", name="kind"),
        CheckConstraint("status in ('due', 'done', 'unreached')", name="status"),
        CheckConstraint("satisfaction between 1 and 5", name="satisfaction"),
        # the worklist's order: by due date, a guest's revisits side by side
        Index("ix_revisits_worklist", "due_date", "guest_id", "id"),
        Index("ix_revisits_status_due_date", "status", "due_date"),
        Index("ix_revisits_guest_completed", "guest_id", "completed_at"),
    )


class RevisitItem(Base):
    """One thing the guest raised, classified and routed to a department with an owner."""

    __tablename__ = "revisit_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    revisit_id: Mapped[int] = mapped_column(ForeignKey("revisits.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    department: Mapped[str] = mapped_column(String(40))
    # a complaint item's category, as the complaints service knows them
    category: Mapped[str | None] = mapped_column(String(32))
    owner: Mapped[dict] = mapped_column(JSON)
    routed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # a complaint item: the complaint it filed (None while the complaints service is away)
    complaint_id: Mapped[int | None]
    filing_attempts: Mapped[int] = mapped_column(server_default=sql("0"))
    result: Mapped[str | None] = mapped_column(Text)
    signed_by_id: Mapped[int | None]
    signed_by_username: Mapped[str | None] = mapped_column(String(64))
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    revisit: Mapped[Revisit] = relationship(back_populates="items")

    __table_args__ = (
        CheckConstraint("kind in ('opinion', 'request', 'suggestion', 'complaint')", name="kind"),
        # what the reminders job still has to file
        Index(
            "ix_revisit_items_unfiled",
            "id",
            postgresql_where=sql("kind = 'complaint' AND complaint_id IS NULL"),
        ),
    )


class PromisedResponse(Base):
    """A question the agent could not answer at once, and when the guest was told to expect
    the answer."""

    __tablename__ = "promised_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    revisit_id: Mapped[int] = mapped_column(ForeignKey("revisits.id"), index=True)
    department: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    respond_by: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    promised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    revisit: Mapped[Revisit] = relationship(back_populates="promises")

    __table_args__ = (
        Index(
            "ix_promised_responses_unreminded",
            "respond_by",
            postgresql_where=sql("reminded_at IS NULL"),
        ),
    )


class CommissionCredit(Base):
    """A returning guest's stay, credited to the agent who last revisited them."""

    __tablename__ = "commission_credits"

    id: Mapped[int] = mapped_column(primary_key=True)
    reservation_id: Mapped[int] = mapped_column(unique=True)
    guest_id: Mapped[int]
    revisit_id: Mapped[int] = mapped_column(ForeignKey("revisits.id"))
    agent_id: Mapped[int] = mapped_column(index=True)
    agent_username: Mapped[str] = mapped_column(String(64))
    charges: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    # the commission rate when the stay was credited: a later change of
    # HOTEL_COMMISSION_RATE does not rewrite what an agent earned in a month gone by
    rate: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    checked_out_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the hotel's day of the check-out: the month the commission falls in
    checked_out_on: Mapped[date] = mapped_column(Date, index=True)
