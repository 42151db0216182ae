"""The reservations service's own database.

Rooms are counted, not numbered: a room type has `rooms`, and `room_nights` keeps, per room
type and night, how many of them are held or in house. Its CHECK (booked <= total) is what
makes an overbooking impossible, whatever the code above it does and however many replicas
run: the row of a night is locked while a booking changes it.
"""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from servicekit.database import NAMING_CONVENTION, kit_tables


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


KIT = kit_tables(Base.metadata)

STATUSES = ("held", "in_house", "checked_out", "released", "cancelled")
PAYMENT_METHODS = ("credit_card", "debit_card", "cash")


class RoomType(Base):
    __tablename__ = "room_types"
    __table_args__ = (
        CheckConstraint("rooms >= 0", name="rooms_not_negative"),
        CheckConstraint("price >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    currency: Mapped[str] = mapped_column(String(3))
    rooms: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class RoomNight(Base):
    """How many rooms of a type are taken on one night (the night that starts on `night`)."""

    __tablename__ = "room_nights"
    __table_args__ = (
        CheckConstraint("booked >= 0", name="booked_not_negative"),
        CheckConstraint("booked <= total", name="booked_within_total"),
    )

    room_type_id: Mapped[int] = mapped_column(ForeignKey("room_types.id"), primary_key=True)
    night: Mapped[date] = mapped_column(Date, primary_key=True)
    total: Mapped[int]
    booked: Mapped[int]


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint(
            "status in ('held', 'in_house', 'checked_out', 'released', 'cancelled')",
            name="status_known",
        ),
        CheckConstraint(
            "payment_method in ('credit_card', 'debit_card', 'cash')", name="payment_method_known"
        ),
        CheckConstraint("nights >= 1 and rooms >= 1", name="stay_not_empty"),
        # The release job looks only at what is still held.
        Index("ix_reservations_held_until", "hold_until", postgresql_where="status = 'held'"),
        Index("ix_reservations_in_house", "room_type_id", postgresql_where="status = 'in_house'"),
        Index("ix_reservations_guest", "guest_id", "id"),
        Index("ix_reservations_arrival", "arrival", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    guest_id: Mapped[int]
    guest_name: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    room_type_id: Mapped[int] = mapped_column(ForeignKey("room_types.id"))
    arrival: Mapped[date] = mapped_column(Date)
    nights: Mapped[int]
    rooms: Mapped[int]
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    total_price: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    currency: Mapped[str] = mapped_column(String(3))
    payment_method: Mapped[str] = mapped_column(String(16))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    channel: Mapped[str | None] = mapped_column(String(32))
    hold_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    readback: Mapped[str] = mapped_column(Text)
    booked_by: Mapped[str | None] = mapped_column(String(64))
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    charges: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    room_type: Mapped[RoomType] = relationship(lazy="joined", innerjoin=True)


class Guest(Base):
    """What this service knows of a guest, from `guest_registered` and `guest_updated`."""

    __tablename__ = "guests"

    guest_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    phone: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    # when the event this row reflects happened: an older event arriving late changes nothing
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
