"""The reservations service's own database."""

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from servicekit.database import NAMING_CONVENTION, kit_tables


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


KIT = kit_tables(Base.metadata)
