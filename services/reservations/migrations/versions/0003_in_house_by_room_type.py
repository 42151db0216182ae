"""in-house stays by room type (a check-in counts the guests staying past their departure)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 04:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_reservations_in_house",
        "reservations",
        ["room_type_id"],
        unique=False,
        postgresql_where="status = 'in_house'",
    )


def downgrade() -> None:
    op.drop_index(
        "ix_reservations_in_house",
        table_name="reservations",
        postgresql_where="status = 'in_house'",
    )
