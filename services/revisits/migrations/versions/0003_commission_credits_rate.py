"""the commission rate each credited stay was credited at

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from servicekit import settings

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # stays credited before this kept no rate: they keep the one in force at the upgrade
    current = settings.decimal_setting("HOTEL_COMMISSION_RATE", "0.05", "0", "1")
    op.add_column(
        "commission_credits",
        sa.Column(
            "rate", sa.Numeric(precision=5, scale=4), nullable=False, server_default=str(current)
        ),
    )
    op.alter_column("commission_credits", "rate", server_default=None)


def downgrade() -> None:
    op.drop_column("commission_credits", "rate")
