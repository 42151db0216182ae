"""The default hotel, so a fresh installation can take bookings at once."""

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.reservations.models import RoomType

DEFAULT_ROOM_TYPES = (
    ("suite", "Suite", "320.00", 4),
    ("deluxe", "Deluxe", "210.00", 10),
    ("double", "Double", "140.00", 30),
    ("single", "Single", "95.00", 16),
)


def load_defaults(session: Session) -> None:
    """Add the default room types, priced in EUR, when there are no room types at all."""
    if session.scalar(select(func.count()).select_from(RoomType)):
        return
    session.add_all(
        RoomType(code=code, name=name, price=Decimal(price), currency="EUR", rooms=rooms)
        for code, name, price, rooms in DEFAULT_ROOM_TYPES
    )
    session.flush()
