"""The complaints service's own database: complaints, their processing forms, the
departments' dispatch orders, and the service's own list of staff (from the gateway's
events) to find each department's manager and director."""

from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.database import NAMING_CONVENTION, kit_tables
from services.complaints.domain import ORDER_STATUSES, STATUSES


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


KIT = kit_tables(Base.metadata)


class StaffMember(Base):
    """A projection of the gateway's staff accounts: only what routing needs."""

    __tablename__ = "staff_members"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (Index("ix_staff_members_department_role", "department", "role", "id"),)


class Complaint(Base):
    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(16), unique=True)
    guest_id: Mapped[int | None] = mapped_column(index=True)
    # {"name", "phone", "email"} of a caller known only by how to reach them
    contact: Mapped[dict | None] = mapped_column(JSON)
    channel: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    department: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    # {"kind": "staff"|"role", "id", "username", "role", "department"}: never empty
    owner: Mapped[dict] = mapped_column(JSON)
    taken_by: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        _one_of("status", STATUSES),
        Index("ix_complaints_status_id", "status", "id"),
        Index("ix_complaints_department_id", "department", "id"),
        # what the escalation timer scans: unresolved and not yet escalated, by due time
        Index(
            "ix_complaints_awaiting_escalation",
            "due_at",
            postgresql_where=text("escalated_at IS NULL AND status <> 'resolved'"),
        ),
    )


class FormLine(Base):
    """One line of the guest processing form: time, action, by, recipient, reason, result."""

    __tablename__ = "form_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(16))
    by: Mapped[dict] = mapped_column(JSON)
    recipient: Mapped[dict] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    # the complaint's status after this line; the public tracking shows only its changes
    status: Mapped[str] = mapped_column(String(16))
    dispatch_order_id: Mapped[int | None] = mapped_column(ForeignKey("dispatch_orders.id"))


class DispatchOrder(Base):
    """A complaint passed to the department that must act, in that department's queue."""

    __tablename__ = "dispatch_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    department: Mapped[str] = mapped_column(String(32))
    # open -> reported (the department answered) | closed (the complaint was resolved first)
    status: Mapped[str] = mapped_column(String(16))
    instructions: Mapped[str | None] = mapped_column(Text)
    assignee: Mapped[dict] = mapped_column(JSON)
    opened_by: Mapped[dict] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reported_by: Mapped[dict | None] = mapped_column(JSON)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        _one_of("status", ORDER_STATUSES),
        Index("ix_dispatch_orders_department_status_id", "department", "status", "id"),
    )
